// Structured log lines: the documented text form byte for byte, text quoting,
// JSON escaping checked by protobuf's JSON parser (an independent reader), and
// whole lines from many threads at once.
#include "server/log.h"

#include <fcntl.h>
#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <fstream>
#include <limits>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "google/protobuf/struct.pb.h"
#include "google/protobuf/util/json_util.h"
#include "gtest/gtest.h"

namespace wavepool::server {
namespace {

// 2026-11-27T07:00:00.123Z
absl::Time ExampleTime() {
  return absl::FromCivil(absl::CivilSecond(2026, 11, 27, 7, 0, 0), absl::UTCTimeZone()) +
         absl::Milliseconds(123);
}

std::string Text(std::initializer_list<LogField> fields) {
  return FormatLogLine(LogFormat::kText, LogLevel::kInfo, "e", fields, ExampleTime());
}

google::protobuf::Struct ParseJson(const std::string& line) {
  google::protobuf::Struct s;
  const auto st = google::protobuf::util::JsonStringToMessage(line, &s);
  EXPECT_TRUE(st.ok()) << st.message().ToString() << "\n" << line;
  return s;
}

TEST(Log, TextLineMatchesTheDocumentedForm) {
  const std::string peer = "ipv4:127.0.0.1:5555";
  EXPECT_EQ(FormatLogLine(LogFormat::kText, LogLevel::kInfo, "stream_open",
                          {{"stream", 12}, {"peer", peer}, {"model", "digits"}}, ExampleTime()),
            "2026-11-27T07:00:00.123Z INFO stream_open stream=12 peer=ipv4:127.0.0.1:5555 "
            "model=digits\n");
}

TEST(Log, JsonLineMatchesTheDocumentedForm) {
  EXPECT_EQ(FormatLogLine(LogFormat::kJson, LogLevel::kWarning, "stream_open",
                          {{"stream", 12}, {"model", "digits"}, {"ok", true}}, ExampleTime()),
            "{\"ts\":\"2026-11-27T07:00:00.123Z\",\"level\":\"warning\",\"event\":\"stream_open\","
            "\"stream\":12,\"model\":\"digits\",\"ok\":true}\n");
}

TEST(Log, TextQuotesValuesThatWouldSplitTheLine) {
  EXPECT_EQ(Text({{"k", "a b"}}), "2026-11-27T07:00:00.123Z INFO e k=\"a b\"\n");
  EXPECT_EQ(Text({{"k", ""}}), "2026-11-27T07:00:00.123Z INFO e k=\"\"\n");
  EXPECT_EQ(Text({{"k", "x=y"}}), "2026-11-27T07:00:00.123Z INFO e k=\"x=y\"\n");
  EXPECT_EQ(Text({{"k", "say \"hi\"\\"}}),
            "2026-11-27T07:00:00.123Z INFO e k=\"say \\\"hi\\\"\\\\\"\n");
  EXPECT_EQ(Text({{"k", "two\nlines\t\x01"}}),
            "2026-11-27T07:00:00.123Z INFO e k=\"two\\nlines\\t\\x01\"\n");
  // No quotes when nothing needs them, UTF-8 passes through.
  EXPECT_EQ(Text({{"k", "caf\xc3\xa9/1:2"}}), "2026-11-27T07:00:00.123Z INFO e k=caf\xc3\xa9/1:2\n");
}

TEST(Log, TextNumbersAndBooleans) {
  EXPECT_EQ(Text({{"i", -3}, {"u", uint64_t{18446744073709551615u}}, {"d", 0.1}, {"b", false},
                  {"n", std::nan("")}, {"inf", -HUGE_VAL}}),
            "2026-11-27T07:00:00.123Z INFO e i=-3 u=18446744073709551615 d=0.1 b=false n=nan "
            "inf=-inf\n");
}

TEST(Log, JsonEscapesEveryStringSoAParserReadsItBack) {
  const std::string nasty = std::string("q\"b\\s/n\nr\rt\tc\x01\x1f del\x7f caf\xc3\xa9 ") +
                            "\xf0\x9f\x8e\xb5";  // U+1F3B5
  const std::string line = FormatLogLine(LogFormat::kJson, LogLevel::kError, "ev\"nt",
                                         {{"s", nasty}, {"k\"ey", 1}}, ExampleTime());
  ASSERT_EQ(line.back(), '\n');
  EXPECT_EQ(line.find('\n'), line.size() - 1) << "one line";
  const google::protobuf::Struct s = ParseJson(line);
  EXPECT_EQ(s.fields().at("event").string_value(), "ev\"nt");
  EXPECT_EQ(s.fields().at("s").string_value(), nasty);
  EXPECT_EQ(s.fields().at("k\"ey").number_value(), 1);
  EXPECT_EQ(s.fields().at("level").string_value(), "error");
  EXPECT_NE(line.find("\\u0001"), std::string::npos);
  EXPECT_NE(line.find("\\u001f"), std::string::npos);
}

TEST(Log, JsonReplacesInvalidUtf8) {
  // A lone continuation byte, a truncated 2-byte sequence, an overlong '/', a
  // UTF-16 surrogate: each invalid byte becomes U+FFFD.
  const std::string line = FormatLogLine(
      LogFormat::kJson, LogLevel::kInfo, "e",
      {{"a", "x\x80y"}, {"b", "\xc3"}, {"c", "\xc0\xaf"}, {"d", "\xed\xa0\x80"}}, ExampleTime());
  const google::protobuf::Struct s = ParseJson(line);
  EXPECT_EQ(s.fields().at("a").string_value(), "x\xef\xbf\xbdy");
  EXPECT_EQ(s.fields().at("b").string_value(), "\xef\xbf\xbd");
  EXPECT_EQ(s.fields().at("c").string_value(), "\xef\xbf\xbd\xef\xbf\xbd");
  EXPECT_EQ(s.fields().at("d").string_value(), "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd");
}

TEST(Log, JsonNumbersRoundTripAndNonFiniteIsNull) {
  const double third = 1.0 / 3.0;
  const std::string line =
      FormatLogLine(LogFormat::kJson, LogLevel::kInfo, "e",
                    {{"d", third}, {"big", int64_t{-9007199254740991}}, {"nan", std::nan("")},
                     {"inf", HUGE_VAL}, {"f", 2.5f}},
                    ExampleTime());
  EXPECT_NE(line.find("\"d\":0.3333333333333333,"), std::string::npos) << line;
  EXPECT_NE(line.find("\"big\":-9007199254740991,"), std::string::npos) << line;
  EXPECT_NE(line.find("\"nan\":null,\"inf\":null,\"f\":2.5}"), std::string::npos) << line;
  const google::protobuf::Struct s = ParseJson(line);
  EXPECT_EQ(s.fields().at("d").number_value(), third);
}

// Log() from 8 threads into a file standing in for stderr: every line whole.
TEST(Log, ConcurrentLinesNeverInterleave) {
  char path[] = "/tmp/wavepool_log_testXXXXXX";
  const int fd = mkstemp(path);
  ASSERT_GE(fd, 0);
  const int saved = dup(STDERR_FILENO);
  ASSERT_GE(saved, 0);
  ASSERT_EQ(dup2(fd, STDERR_FILENO), STDERR_FILENO);
  SetLogFormat(LogFormat::kJson);
  constexpr int kThreads = 8, kLines = 500;
  const std::string padding(300, 'x');  // lines of ~400 bytes
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kLines; ++i) {
        Log(LogLevel::kInfo, "tick", {{"thread", t}, {"i", i}, {"pad", padding}});
      }
    });
  }
  for (auto& th : threads) th.join();
  SetLogFormat(LogFormat::kText);
  dup2(saved, STDERR_FILENO);
  close(saved);
  close(fd);

  std::ifstream in(path);
  std::string line;
  std::vector<int> next(kThreads, 0);
  int count = 0;
  while (std::getline(in, line)) {
    const google::protobuf::Struct s = ParseJson(line);
    const int t = static_cast<int>(s.fields().at("thread").number_value());
    ASSERT_GE(t, 0);
    ASSERT_LT(t, kThreads);
    EXPECT_EQ(static_cast<int>(s.fields().at("i").number_value()), next[t]++) << "in order per thread";
    ++count;
  }
  std::remove(path);
  EXPECT_EQ(count, kThreads * kLines);
}

}  // namespace
}  // namespace wavepool::server
