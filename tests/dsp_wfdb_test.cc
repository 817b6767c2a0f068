// WFDB reading (dsp/wfdb.h), checked against hand-written headers,
// hand-decoded format-212 bytes, hand-assembled annotation words, naive
// decoders written here, and the committed MIT-BIH excerpts in
// tests/data/mitdb (see its README.md for how they were cut).
#include <unistd.h>

#include <array>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <random>
#include <string>
#include <vector>

#include "dsp/wfdb.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace wavepool::dsp {
namespace {

using ::testing::HasSubstr;

// ---- helpers -------------------------------------------------------------

std::string ReadBytes(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(f), {});
}

void WriteBytes(const std::string& path, const std::string& bytes) {
  std::ofstream f(path, std::ios::binary);
  f.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

std::string TempDir(const std::string& name) {
  const std::filesystem::path dir = std::filesystem::path(::testing::TempDir()) /
                                    ("dsp_wfdb_test_" + std::to_string(::getpid()) + "_" + name);
  std::filesystem::create_directories(dir);
  return dir.string();
}

std::string Excerpt(const std::string& record) {
  return std::string(WP_TEST_DATA_DIR) + "/mitdb/" + record;
}

// One MIT annotation word: 6-bit code A, 10-bit time difference I, LSB first.
std::string Word(int a, int i) {
  const int w = (a << 10) | i;
  return {static_cast<char>(w & 0xff), static_cast<char>(w >> 8)};
}

std::string Aux(const std::string& s) {  // AUX word, bytes, pad to even
  return Word(63, static_cast<int>(s.size())) + s + (s.size() % 2 ? std::string(1, '\0') : "");
}

// Packs 12-bit samples as format 212 from the bit layout in signal(5): per
// pair, bits 0-11 of a 24-bit little-endian group are sample 0, bits 16-23 the
// low byte of sample 1, bits 12-15 its high nibble. An odd last sample takes 2 bytes.
std::string Pack212(const std::vector<int>& samples) {
  std::string out;
  for (size_t k = 0; k < samples.size(); k += 2) {
    const uint32_t s0 = static_cast<uint32_t>(samples[k]) & 0xfff;
    const uint32_t s1 = k + 1 < samples.size() ? static_cast<uint32_t>(samples[k + 1]) & 0xfff : 0;
    const uint32_t v = s0 | ((s1 >> 8) << 12) | ((s1 & 0xff) << 16);
    out.push_back(static_cast<char>(v & 0xff));
    out.push_back(static_cast<char>((v >> 8) & 0xff));
    if (k + 1 < samples.size()) out.push_back(static_cast<char>(v >> 16));
  }
  return out;
}

// Naive format-212 reader: a 24-bit little-endian integer per byte triple.
std::vector<int> Naive212(const std::string& bytes) {
  std::vector<int> out;
  for (size_t k = 0; k + 3 <= bytes.size(); k += 3) {
    const uint32_t v = static_cast<uint8_t>(bytes[k]) | (static_cast<uint8_t>(bytes[k + 1]) << 8) |
                       (static_cast<uint32_t>(static_cast<uint8_t>(bytes[k + 2])) << 16);
    const int s0 = static_cast<int>(v & 0xfff);
    const int s1 = static_cast<int>(((v >> 16) & 0xff) | (((v >> 12) & 0xf) << 8));
    out.push_back(s0 >= 2048 ? s0 - 4096 : s0);
    out.push_back(s1 >= 2048 ? s1 - 4096 : s1);
  }
  return out;
}

// Naive beat count per AAMI class straight from MIT annotation codes (ecgcodes.h
// numbers, not symbols): walks the words, skipping SKIP's 4 bytes and AUX's
// padded string.
std::map<char, int> NaiveAamiCounts(const std::string& atr) {
  static const std::map<int, char> kClassOfCode = {
      {1, 'N'}, {2, 'N'}, {3, 'N'},  {34, 'N'}, {11, 'N'}, {8, 'S'},  {4, 'S'}, {7, 'S'},
      {9, 'S'}, {5, 'V'}, {10, 'V'}, {6, 'F'},  {12, 'Q'}, {38, 'Q'}, {13, 'Q'}};
  std::map<char, int> counts;
  for (size_t p = 0; p + 1 < atr.size();) {
    const int w = static_cast<uint8_t>(atr[p]) | (static_cast<uint8_t>(atr[p + 1]) << 8);
    p += 2;
    if (w == 0) break;
    if (w >> 10 == 59) p += 4;
    if (w >> 10 == 63) p += static_cast<size_t>((w & 0x3ff) + 1) / 2 * 2;
    if (const auto it = kClassOfCode.find(w >> 10); it != kClassOfCode.end()) ++counts[it->second];
  }
  return counts;
}

std::map<char, int> LibraryAamiCounts(const std::vector<Annotation>& annotations) {
  std::map<char, int> counts;
  for (const Annotation& a : annotations) {
    if (const char c = AamiClass(a.Symbol()); c != '\0') ++counts[c];
  }
  return counts;
}

// ---- header --------------------------------------------------------------

constexpr char kHeader101Lf[] =
    "101 2 360 650000\n"
    "101.dat 212 200 11 1024 955 29832 0 MLII\n"
    "101.dat 212 200 11 1024 992 19589 0 V1\n"
    "# 75 F 1011 654 x1\n"
    "# Diapres\n";

std::string ToCrlf(const std::string& lf) {
  std::string out;
  for (char c : lf) {
    if (c == '\n') out += '\r';
    out += c;
  }
  return out;
}

TEST(ParseWfdbHeader, ReadsMitBihHeaderWithCrlfAndLf) {
  for (const std::string& text : {ToCrlf(kHeader101Lf), std::string(kHeader101Lf)}) {
    SCOPED_TRACE(text.find('\r') != std::string::npos ? "CRLF" : "LF");
    absl::StatusOr<WfdbHeader> h = ParseWfdbHeader(text);
    ASSERT_TRUE(h.ok()) << h.status();
    EXPECT_EQ(h->record_name, "101");
    EXPECT_EQ(h->num_signals, 2);
    EXPECT_EQ(h->sampling_frequency, 360);
    EXPECT_EQ(h->num_samples, 650000);
    ASSERT_EQ(h->signals.size(), 2u);
    const WfdbSignalInfo& s = h->signals[1];
    EXPECT_EQ(s.file_name, "101.dat");
    EXPECT_EQ(s.format, 212);
    EXPECT_EQ(s.adc_gain, 200);
    EXPECT_EQ(s.baseline, 1024);  // no (baseline): the ADC zero
    EXPECT_EQ(s.units, "mV");
    EXPECT_EQ(s.adc_resolution, 11);
    EXPECT_EQ(s.adc_zero, 1024);
    EXPECT_EQ(s.initial_value, 992);
    EXPECT_EQ(s.checksum, 19589);
    EXPECT_EQ(s.description, "V1");
    EXPECT_EQ(h->signals[0].description, "MLII");
    EXPECT_EQ(h->signals[0].checksum, 29832);
    EXPECT_EQ(h->comments, (std::vector<std::string>{"# 75 F 1011 654 x1", "# Diapres"}));
  }
}

TEST(ParseWfdbHeader, SkipsCommentsAnywhereBlankLinesAndExtraSignalLines) {
  absl::StatusOr<WfdbHeader> h = ParseWfdbHeader(
      "# before the record line\r\n\r\n  \t\n"
      "rec 1 128\n"
      "   # indented comment\n"
      "rec.dat 212 100 12 0 0 0 0 ECG lead II  \n"
      "extra.dat 16\n"  // header(5): lines beyond NSIG are not read
      "#last");
  ASSERT_TRUE(h.ok()) << h.status();
  EXPECT_EQ(h->sampling_frequency, 128);
  ASSERT_EQ(h->signals.size(), 1u);
  EXPECT_EQ(h->signals[0].description, "ECG lead II");  // inner spaces kept, trailing cut
  EXPECT_EQ(h->comments, (std::vector<std::string>{"# before the record line",
                                                   "   # indented comment", "#last"}));
}

TEST(ParseWfdbHeader, DefaultsForMissingFields) {
  absl::StatusOr<WfdbHeader> h = ParseWfdbHeader(
      "r 4\n"
      "r.dat 212\n"                   // everything after the format missing
      "r.dat 212 0(5)/uV 0 7\n"       // gain 0 -> 200; resolution 0 -> 12
      "r.dat 8 100 0 -3\n"            // baseline -> ADC zero; format 8 -> 10 bits
      "r.dat 212 50/mmHg 12 3 9\n");  // units without baseline
  ASSERT_TRUE(h.ok()) << h.status();
  EXPECT_EQ(h->sampling_frequency, 250);  // DEFREQ
  EXPECT_EQ(h->num_samples, 0);
  const std::vector<WfdbSignalInfo>& s = h->signals;
  ASSERT_EQ(s.size(), 4u);
  EXPECT_EQ(s[0].adc_gain, 200);
  EXPECT_EQ(s[0].baseline, 0);
  EXPECT_EQ(s[0].units, "mV");
  EXPECT_EQ(s[0].adc_resolution, 12);
  EXPECT_EQ(s[0].initial_value, 0);
  EXPECT_EQ(s[0].description, "");
  EXPECT_EQ(s[1].adc_gain, 200);
  EXPECT_EQ(s[1].baseline, 5);
  EXPECT_EQ(s[1].units, "uV");
  EXPECT_EQ(s[1].adc_resolution, 12);
  EXPECT_EQ(s[1].adc_zero, 7);
  EXPECT_EQ(s[1].initial_value, 7);  // initial value defaults to the ADC zero
  EXPECT_EQ(s[2].baseline, -3);
  EXPECT_EQ(s[2].adc_resolution, 10);
  EXPECT_EQ(s[3].adc_gain, 50);
  EXPECT_EQ(s[3].units, "mmHg");
  EXPECT_EQ(s[3].baseline, 3);
  EXPECT_EQ(s[3].initial_value, 9);
}

TEST(ParseWfdbHeader, AcceptsCounterFrequencyTimeDateAndFormatModifiers) {
  absl::StatusOr<WfdbHeader> h = ParseWfdbHeader(
      "rec 2 3.6e2/180(5.5) 1000 13:05:00.5 25/4/1989\n"
      "a.dat 16x4:3+512 200(-7)/mV 16 0 0 0 0\n"
      "a.dat 16x4:3+512\n");
  ASSERT_TRUE(h.ok()) << h.status();
  EXPECT_EQ(h->sampling_frequency, 360);
  EXPECT_EQ(h->num_samples, 1000);
  EXPECT_EQ(h->signals[0].format, 16);
  EXPECT_EQ(h->signals[0].baseline, -7);
  EXPECT_EQ(h->signals[0].adc_resolution, 16);
}

TEST(ParseWfdbHeader, MalformedLinesGiveErrorsNamingTheLine) {
  struct Case {
    std::string text;
    std::string message;
  };
  const std::vector<Case> cases = {
      {"", "no record line"},
      {"# only\n\n", "no record line"},
      {"rec\n", "line 1: record line has no number of signals"},
      {"rec x\n", "line 1: number of signals 'x'"},
      {"rec -1\n", "line 1: number of signals '-1'"},
      {"rec 257\n", "line 1: number of signals '257' must be an integer in [0, 256]"},
      {"rec 1 0\n", "line 1: sampling frequency '0' must be a number > 0"},
      {"rec 1 abc\n", "line 1: sampling frequency 'abc'"},
      {"rec 1 nan\n", "line 1: sampling frequency 'nan'"},
      {"rec 1 360/x\n", "line 1: counter frequency 'x'"},
      {"rec 1 360/1(2\n", "line 1: base counter value '(2'"},
      {"rec 1 360 -5\n", "line 1: number of samples '-5'"},
      {"rec 1 360 5 noon\n", "line 1: base time 'noon'"},
      {"rec 1 360 5 1:00 1-1-2000\n", "line 1: base date '1-1-2000'"},
      {"rec 1 360 5 1:00 1/1/2000 x\n", "line 1: unexpected field 'x'"},
      {"rec 1\r\n# c\r\nr.dat\r\n", "line 3: signal line for file 'r.dat' has no format"},
      {"rec 1\nr.dat 21a\n", "line 2: format '21a'"},
      {"rec 1\nr.dat 212x0\n", "line 2: samples per frame '0'"},
      {"rec 1\nr.dat 212+\n", "line 2: byte offset ''"},
      {"rec 1\nr.dat 212:1x2\n", "line 2: format '212:1x2' is not FORMAT[xSPF][:SKEW][+OFFSET]"},
      {"rec 1\nr.dat 212 2O0\n", "line 2: ADC gain '2O0' is not a number"},
      {"rec 1\nr.dat 212 200(1\n", "line 2: baseline in '200(1'"},
      {"rec 1\nr.dat 212 200(1)mV\n", "line 2: ADC gain field '200(1)mV'"},
      {"rec 1\nr.dat 212 200 x\n", "line 2: ADC resolution 'x' is not an integer"},
      {"rec 1\nr.dat 212 200 40\n", "line 2: ADC resolution 40 must be in [0, 32]"},
      {"rec 1\nr.dat 212 200 12 z\n", "line 2: ADC zero 'z'"},
      {"rec 1\nr.dat 212 200 12 0 1.5\n", "line 2: initial value '1.5'"},
      {"rec 1\nr.dat 212 200 12 0 0 99999999999\n", "line 2: checksum '99999999999'"},
      {"rec 1\nr.dat 212 200 12 0 0 0 b\n", "line 2: block size 'b'"},
      {"rec 2\nr.dat 212\n", "declares 2 signals but has 1 signal specification lines"},
      {std::string("rec 1\nr.dat 212\0", 16), "NUL byte at offset 15"},
  };
  for (const Case& c : cases) {
    absl::StatusOr<WfdbHeader> h = ParseWfdbHeader(c.text);
    ASSERT_FALSE(h.ok()) << "accepted: " << c.text;
    EXPECT_EQ(h.status().code(), absl::StatusCode::kInvalidArgument) << c.text;
    EXPECT_THAT(std::string(h.status().message()), HasSubstr(c.message)) << c.text;
  }
  absl::StatusOr<WfdbHeader> big = ParseWfdbHeader("rec 0\n" + std::string(1 << 20, '#'));
  EXPECT_THAT(std::string(big.status().message()), HasSubstr("the limit is 1048576"));
}

TEST(ParseWfdbHeader, MultiSegmentRecordIsUnimplemented) {
  absl::StatusOr<WfdbHeader> h = ParseWfdbHeader("multi/3 2 360 1000\nseg1 500\n");
  EXPECT_EQ(h.status().code(), absl::StatusCode::kUnimplemented);
  EXPECT_THAT(std::string(h.status().message()), HasSubstr("multi-segment"));
}

// ---- format 212 ----------------------------------------------------------

TEST(DecodeFormat212, MatchesHandDecodedBytes) {
  // Pairs decoded by hand from signal(5):
  //   01 F0 FF: s0 = 0x001 = 1, s1 = 0xF (high nibble of F0) : 0xFF = 0xFFF = -1
  //   00 78 FF: s0 = 0x800 = -2048, s1 = 0x7FF = 2047
  //   23 E1 DD: s0 = 0x123 = 291, s1 = 0xEDD = -291
  const std::string bytes("\x01\xF0\xFF\x00\x78\xFF\x23\xE1\xDD", 9);
  absl::StatusOr<std::vector<int16_t>> one = DecodeFormat212(bytes, 1);
  ASSERT_TRUE(one.ok()) << one.status();
  EXPECT_EQ(*one, (std::vector<int16_t>{1, -1, -2048, 2047, 291, -291}));
  // Two signals interleave sample-major: out[i * 2 + s].
  absl::StatusOr<std::vector<int16_t>> two = DecodeFormat212(bytes, 2);
  ASSERT_TRUE(two.ok()) << two.status();
  EXPECT_EQ(*two, *one);
  EXPECT_EQ(DecodeFormat212("", 2).value(), std::vector<int16_t>{});
}

TEST(DecodeFormat212, OddSignalCountPacksPairsAcrossFrames) {
  // 3 signals x 2 frames = 6 samples = 3 pairs; frame 0's third sample shares
  // a byte group with frame 1's first.
  const std::vector<int> samples = {10, -20, 30, -40, 2047, -2048};
  absl::StatusOr<std::vector<int16_t>> got = DecodeFormat212(Pack212(samples), 3);
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(*got, (std::vector<int16_t>{10, -20, 30, -40, 2047, -2048}));
  // 3 signals x 1 frame: the odd last sample in 2 bytes (01 0F: 0xF01 = -255),
  // or in a full group whose second sample is padding.
  const std::string odd("\x05\x00\x07\x01\x0F", 5);  // 5, 7, -255
  EXPECT_EQ(DecodeFormat212(odd, 3).value(), (std::vector<int16_t>{5, 7, -255}));
  EXPECT_EQ(DecodeFormat212(odd + '\0', 3).value(), (std::vector<int16_t>{5, 7, -255}));
}

TEST(DecodeFormat212, RejectsPartialFramesAndBadSignalCounts) {
  const std::string three = Pack212({1, 2, 3});  // 5 bytes: 3 samples
  EXPECT_THAT(std::string(DecodeFormat212(three, 2).status().message()),
              HasSubstr("trailing partial frame"));
  EXPECT_THAT(std::string(DecodeFormat212(three.substr(0, 4), 1).status().message()),
              HasSubstr("stray byte"));
  for (int n : {0, -1, 257}) {
    EXPECT_EQ(DecodeFormat212(three, n).status().code(), absl::StatusCode::kInvalidArgument) << n;
  }
}

TEST(DecodeFormat212, MatchesIndependentPackerOnRandomSamples) {
  constexpr uint32_t kSeed = 212;
  std::mt19937 rng(kSeed);
  std::uniform_int_distribution<int> value(-2048, 2047), signals(1, 7), frames(0, 50);
  for (int trial = 0; trial < 200; ++trial) {
    const int n = signals(rng), f = frames(rng);
    std::vector<int> samples(static_cast<size_t>(n * f));
    for (int& v : samples) v = value(rng);
    absl::StatusOr<std::vector<int16_t>> got = DecodeFormat212(Pack212(samples), n);
    ASSERT_TRUE(got.ok()) << "seed " << kSeed << " trial " << trial << ": " << got.status();
    EXPECT_EQ(std::vector<int>(got->begin(), got->end()), samples)
        << "seed " << kSeed << " trial " << trial;
  }
}

// ---- annotations -----------------------------------------------------------

void ExpectAnnotation(const Annotation& a, int64_t sample, char symbol, int subtype, int channel,
                      int num, const std::string& aux) {
  EXPECT_EQ(a.sample, sample);
  EXPECT_EQ(a.Symbol(), symbol);
  EXPECT_EQ(a.subtype, subtype);
  EXPECT_EQ(a.channel, channel);
  EXPECT_EQ(a.num, num);
  EXPECT_EQ(a.aux, aux);
}

TEST(ParseMitAnnotations, AppliesEveryPseudoCode) {
  // SKIP 0x12345678 in PDP-11 order: code word 00 EC (59 << 10), then the high
  // word 0x1234 as 34 12, then the low word 0x5678 as 78 56.
  const std::string skip_up("\x00\xEC\x34\x12\x78\x56", 6);
  // SKIP -305420000 (0xEDCBA920): high word 0xEDCB, low word 0xA920.
  const std::string skip_down("\x00\xEC\xCB\xED\x20\xA9", 6);
  // N at 5 with SUB 3, NUM 7, CHN 2 after it:
  std::string bytes = Word(1, 5) + Word(61, 3) + Word(60, 7) + Word(62, 2);
  bytes += Word(5, 10) + Aux("(VT");                  // V at 15, odd AUX
  bytes += skip_up + Word(28, 1) + Aux("(N");         // + at 15 + 0x12345678 + 1, even AUX
  bytes += Word(14, 1023) + Word(61, 1023);           // ~ 1023 later, SUB -1
  bytes += Word(60, 0) + Word(62, 0);                 // NUM 0 and CHN 0 again
  bytes += Word(8, 0) + Aux(std::string("(B\0", 3));  // A at the same sample, AUX with NUL
  bytes += skip_down + Word(1, 0);                    // back to sample 935
  bytes += Word(0, 0) + "trailing bytes are not read";
  ASSERT_EQ(Word(5, 10), std::string("\x0A\x14", 2));  // 5 << 10 | 10 = 0x140A, LSB first
  absl::StatusOr<std::vector<Annotation>> got = ParseMitAnnotations(bytes);
  ASSERT_TRUE(got.ok()) << got.status();
  ASSERT_EQ(got->size(), 6u);
  const std::vector<Annotation>& a = *got;
  ExpectAnnotation(a[0], 5, 'N', 3, 2, 7, "");
  ExpectAnnotation(a[1], 15, 'V', 0, 2, 7, "(VT");
  ExpectAnnotation(a[2], 305419912, '+', 0, 2, 7, "(N");
  ExpectAnnotation(a[3], 305420935, '~', -1, 0, 0, "");
  ExpectAnnotation(a[4], 305420935, 'A', 0, 0, 0, "(B");
  ExpectAnnotation(a[5], 935, 'N', 0, 0, 0, "");
}

TEST(ParseMitAnnotations, NumAndChnBeforeTheFirstAnnotationApplyToLaterOnes) {
  absl::StatusOr<std::vector<Annotation>> got =
      ParseMitAnnotations(Word(60, 1022) + Word(62, 4) + Word(1, 1) + Word(5, 1) + Word(0, 0));
  ASSERT_TRUE(got.ok()) << got.status();
  ASSERT_EQ(got->size(), 2u);
  ExpectAnnotation((*got)[0], 1, 'N', 0, 4, -2, "");
  ExpectAnnotation((*got)[1], 2, 'V', 0, 4, -2, "");
  EXPECT_TRUE(ParseMitAnnotations(Word(0, 0)).value().empty());
}

TEST(ParseMitAnnotations, ErrorsNameTheByteOffset) {
  struct Case {
    std::string bytes;
    std::string message;
  };
  const std::string n5 = Word(1, 5);
  const std::vector<Case> cases = {
      {"", "byte offset 0: end of data before the end-of-file word"},
      {n5, "byte offset 2: end of data before the end-of-file word (0) after 1 annotations"},
      {n5 + '\0', "byte offset 2: odd trailing byte"},
      {n5 + Word(59, 0) + "\x01", "byte offset 2: SKIP needs a 4-byte interval; 1 bytes left"},
      {n5 + Word(63, 5) + "abcde", "byte offset 2: AUX of 5 bytes (6 with padding) but 5"},
      {Word(61, 1) + n5 + Word(0, 0), "byte offset 0: SUB before any annotation"},
      {Word(63, 2) + "ab" + Word(0, 0), "byte offset 0: AUX before any annotation"},
      {n5 + Word(50, 1) + Word(0, 0), "byte offset 2: undefined annotation code 50"},
      {Word(0, 5) + Word(0, 0), "byte offset 0: undefined annotation code 0"},
      {std::string("\x00\xEC\xFF\xFF\xF6\xFF", 6) + n5 + Word(0, 0),  // SKIP -10 = 0xFFFFFFF6
       "byte offset 6: annotation time -5 is negative"},
  };
  for (const Case& c : cases) {
    absl::StatusOr<std::vector<Annotation>> got = ParseMitAnnotations(c.bytes);
    ASSERT_FALSE(got.ok()) << c.message;
    EXPECT_EQ(got.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(std::string(got.status().message()), HasSubstr(c.message));
  }
}

TEST(Annotation, SymbolsFollowEcgcodesAndAamiClasses) {
  // ecgcodes.h codes 0..41 and their mnemonics (WFDB Programmer's Guide);
  // '?' marks codes without one (and LEARN, 30, whose mnemonic is '?').
  const std::string kSymbols = "?NLRaVFJASEj/Q~?|?sT*D\"=pB^t+u?![]en@xf()r";
  ASSERT_EQ(kSymbols.size(), 42u);
  for (int code = 0; code < 64; ++code) {
    Annotation a;
    a.code = code;
    EXPECT_EQ(a.Symbol(), code < 42 ? kSymbols[static_cast<size_t>(code)] : '?') << code;
  }
  const std::map<char, std::string> kClasses = {
      {'N', "NLRej"}, {'S', "AaJS"}, {'V', "VE"}, {'F', "F"}, {'Q', "/fQ"}};
  int beats = 0;
  for (const auto& [cls, symbols] : kClasses) {
    for (char s : symbols) EXPECT_EQ(AamiClass(s), cls) << s;
    beats += static_cast<int>(symbols.size());
  }
  int non_beats = 0;
  for (char s : kSymbols) non_beats += AamiClass(s) == '\0';
  EXPECT_EQ(beats, 15);
  EXPECT_EQ(non_beats, 42 - 15);  // every table entry that is not one of the 15 beat symbols
}

// ---- whole records in a temporary folder -------------------------------------

// A 2-signal, 3-frame record; `header` gets "r.dat" lines appended by callers.
struct TinyRecord {
  std::string dir = TempDir("tiny");
  std::vector<int> samples = {100, -100, 2047, -2048, 0, 5};
  void Write(const std::string& header, const std::string& dat) const {
    WriteBytes(dir + "/r.hea", header);
    WriteBytes(dir + "/r.dat", dat);
  }
};

TEST(ReadWfdbRecord, ReadsRecordVerifiesChecksumsAndConvertsUnits) {
  TinyRecord t;
  // Checksums: 100 + 2047 + 0 = 2147; -100 - 2048 + 5 = -2143.
  t.Write(
      "r 2 500 3\nr.dat 212 200(10)/mV 12 0 100 2147 0 I\nr.dat 212+0 50 12 0 -100 -2143 0 II\n",
      Pack212(t.samples) + "ignored: beyond NSAMP");
  for (const std::string& path : {t.dir + "/r", t.dir + "/r.hea"}) {
    absl::StatusOr<WfdbRecord> rec = ReadWfdbRecord(path);
    ASSERT_TRUE(rec.ok()) << rec.status();
    EXPECT_EQ(rec->frames(), 3);
    EXPECT_EQ(std::vector<int>(rec->adc.begin(), rec->adc.end()), t.samples);
    EXPECT_EQ(rec->Physical(0), (std::vector<float>{0.45f, 10.185f, -0.05f}));
    EXPECT_EQ(rec->Physical(1), (std::vector<float>{-2.0f, -40.96f, 0.1f}));
    EXPECT_TRUE(rec->Physical(2).empty());
    const std::vector<int16_t> second = rec->Adc(1);
    EXPECT_EQ(std::vector<int>(second.begin(), second.end()),
              (std::vector<int>{t.samples[1], t.samples[3], t.samples[5]}));
    EXPECT_TRUE(rec->Adc(2).empty());
    EXPECT_EQ(rec->SignalNamed("II"), 1);
    EXPECT_EQ(rec->SignalNamed("I"), 0);
    EXPECT_EQ(rec->SignalNamed("MLII"), 0);  // absent: the first signal
  }
  // A wrong checksum, a short file, NSAMP 0 (whole file, no checksum check).
  t.Write("r 2 500 3\nr.dat 212 200 12 0 0 2147 0\nr.dat 212 200 12 0 0 -2142 0\n",
          Pack212(t.samples));
  EXPECT_THAT(std::string(ReadWfdbRecord(t.dir + "/r").status().message()),
              HasSubstr("checksum of signal 1 is -2143 but the header says -2142"));
  t.Write("r 2 500 3\nr.dat 212\nr.dat 212\n", Pack212(t.samples).substr(0, 8));
  absl::StatusOr<WfdbRecord> short_file = ReadWfdbRecord(t.dir + "/r");
  EXPECT_EQ(short_file.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(std::string(short_file.status().message()), HasSubstr("truncated"));
  t.Write("r 2 500\nr.dat 212+2 200 12 0 0 1 0\nr.dat 212+2\n", "<>" + Pack212(t.samples));
  absl::StatusOr<WfdbRecord> whole = ReadWfdbRecord(t.dir + "/r");
  ASSERT_TRUE(whole.ok()) << whole.status();
  EXPECT_EQ(std::vector<int>(whole->adc.begin(), whole->adc.end()), t.samples);
}

TEST(ReadWfdbRecord, PhysicalUnitsWithExtremeBaselinesDoNotOverflow) {
  // Found by fuzz/wfdb_record_fuzzer: Physical computed adc - baseline in int,
  // which overflows (undefined) for a baseline near INT_MIN or INT_MAX.
  TinyRecord t;
  t.Write("r 2 500 3\nr.dat 212 200(-2147483648) 12 0 100\nr.dat 212 0.5(2147483647) 12 0 -100\n",
          Pack212(t.samples));
  absl::StatusOr<WfdbRecord> rec = ReadWfdbRecord(t.dir + "/r");
  ASSERT_TRUE(rec.ok()) << rec.status();
  // (adc - baseline) / gain, the differences exact in double.
  EXPECT_EQ(rec->Physical(0), (std::vector<float>{static_cast<float>((100 + 2147483648.0) / 200),
                                                  static_cast<float>((2047 + 2147483648.0) / 200),
                                                  static_cast<float>((0 + 2147483648.0) / 200)}));
  EXPECT_EQ(rec->Physical(1), (std::vector<float>{static_cast<float>((-100 - 2147483647.0) / 0.5),
                                                  static_cast<float>((-2048 - 2147483647.0) / 0.5),
                                                  static_cast<float>((5 - 2147483647.0) / 0.5)}));
}

TEST(ReadWfdbRecord, UnsupportedLayoutsAreUnimplementedOrRejected) {
  TinyRecord t;
  struct Case {
    std::string header;
    absl::StatusCode code;
    std::string message;
  };
  const std::vector<Case> cases = {
      {"r 2\nr.dat 212\nr.dat 16\n", absl::StatusCode::kUnimplemented,
       "signal 1 is in format 16; only format 212 is implemented"},
      {"r 2\nr.dat 212\ns.dat 212\n", absl::StatusCode::kUnimplemented, "is in file 's.dat'"},
      {"r 1\nr.dat 212x2\n", absl::StatusCode::kUnimplemented, "2 samples per frame"},
      {"r 1\nr.dat 212:1\n", absl::StatusCode::kUnimplemented, "skew 1"},
      {"r 2\nr.dat 212+3\nr.dat 212\n", absl::StatusCode::kInvalidArgument, "one byte offset"},
      {"r 1\n../r.dat 212\n", absl::StatusCode::kInvalidArgument, "plain file name"},
      {"r 1\nmissing.dat 212\n", absl::StatusCode::kNotFound, "missing.dat"},
      {"r/2 1\n", absl::StatusCode::kUnimplemented, "multi-segment"},
      {"r 1\nr.dat 212+99\n", absl::StatusCode::kDataLoss, "past the end"},
  };
  for (const Case& c : cases) {
    t.Write(c.header, Pack212(t.samples));
    absl::StatusOr<WfdbRecord> rec = ReadWfdbRecord(t.dir + "/r");
    EXPECT_EQ(rec.status().code(), c.code) << c.header << rec.status();
    EXPECT_THAT(std::string(rec.status().message()), HasSubstr(c.message)) << c.header;
  }
  EXPECT_EQ(ReadWfdbRecord(t.dir + "/nothing").status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(ReadMitAnnotations(t.dir + "/nothing.atr").status().code(),
            absl::StatusCode::kNotFound);
}

// ---- committed MIT-BIH excerpts ------------------------------------------------

// 60 s excerpts: 21600 frames of 2 signals at 360 Hz.
constexpr int kExcerptFrames = 21600;

void ExpectExcerptSignals(const std::string& record, int initial0, int initial1) {
  absl::StatusOr<WfdbRecord> rec = ReadWfdbRecord(Excerpt(record));
  ASSERT_TRUE(rec.ok()) << rec.status();
  EXPECT_EQ(rec->header.sampling_frequency, 360);
  EXPECT_EQ(rec->header.num_samples, kExcerptFrames);
  EXPECT_EQ(rec->frames(), kExcerptFrames);
  ASSERT_EQ(rec->header.signals.size(), 2u);
  EXPECT_EQ(rec->header.signals[0].description, "MLII");
  EXPECT_EQ(rec->header.signals[1].description, "V1");
  EXPECT_EQ(rec->adc[0], initial0);  // the header's initial values
  EXPECT_EQ(rec->adc[1], initial1);
  EXPECT_EQ(rec->header.signals[0].initial_value, initial0);
  const std::vector<int> naive = Naive212(ReadBytes(Excerpt(record) + ".dat"));
  EXPECT_EQ(std::vector<int>(rec->adc.begin(), rec->adc.end()), naive);
}

TEST(MitdbExcerpt, Record101IsNormalRhythm) {
  ExpectExcerptSignals("101", 955, 992);  // header with LF line ends
  absl::StatusOr<std::vector<Annotation>> ann = ReadMitAnnotations(Excerpt("101.atr"));
  ASSERT_TRUE(ann.ok()) << ann.status();
  ASSERT_EQ(ann->size(), 72u);
  ExpectAnnotation(ann->front(), 7, '+', 0, 0, 0, "(N");
  EXPECT_EQ(ann->back().sample, 21498);
  // Counted with tests/data/mitdb/make_excerpt.py's decoder: 71 N, 1 rhythm '+'.
  const std::map<char, int> expected = {{'N', 71}};
  EXPECT_EQ(LibraryAamiCounts(*ann), expected);
  EXPECT_EQ(NaiveAamiCounts(ReadBytes(Excerpt("101.atr"))), expected);
}

TEST(MitdbExcerpt, Record208HasVentricularAndFusionBeats) {
  ExpectExcerptSignals("208", 1003, 1062);  // header with CRLF line ends
  absl::StatusOr<std::vector<Annotation>> ann = ReadMitAnnotations(Excerpt("208.atr"));
  ASSERT_TRUE(ann.ok()) << ann.status();
  ASSERT_EQ(ann->size(), 111u);
  ExpectAnnotation(ann->front(), 9, '+', 0, 0, 0, "(N");
  ExpectAnnotation((*ann)[2], 209, 'V', 1, 0, 0, "");  // V with SUB 1 after it
  int noise = 0;
  for (const Annotation& a : *ann) {
    EXPECT_LT(a.sample, kExcerptFrames);
    noise += a.Symbol() == '~';
  }
  EXPECT_EQ(noise, 4);
  const std::map<char, int> expected = {{'N', 64}, {'V', 30}, {'F', 12}};
  EXPECT_EQ(LibraryAamiCounts(*ann), expected);
  EXPECT_EQ(NaiveAamiCounts(ReadBytes(Excerpt("208.atr"))), expected);
}

// ---- truncation and corruption: errors, never crashes (run under ASan too) ---

TEST(WfdbFuzz, EveryPrefixParsesOrFails) {
  const std::string header = ReadBytes(Excerpt("208.hea"));
  ASSERT_GT(header.size(), 100u);
  for (size_t n = 0; n <= header.size(); ++n) {
    absl::StatusOr<WfdbHeader> h = ParseWfdbHeader(std::string_view(header).substr(0, n));
    if (h.ok()) {
      EXPECT_EQ(static_cast<int>(h->signals.size()), h->num_signals) << n;
    }
  }
  const std::string dat = ReadBytes(Excerpt("101.dat")).substr(0, 900);
  for (size_t n = 0; n <= dat.size(); ++n) {
    for (int signals : {1, 2, 3}) {
      absl::StatusOr<std::vector<int16_t>> s =
          DecodeFormat212(std::string_view(dat).substr(0, n), signals);
      if (s.ok()) {
        EXPECT_EQ(s->size() % static_cast<size_t>(signals), 0u);
      }
    }
  }
  for (const char* record : {"101.atr", "208.atr"}) {
    const std::string atr = ReadBytes(Excerpt(record));
    for (size_t n = 0; n < atr.size(); ++n) {  // the whole file is the only full parse
      absl::StatusOr<std::vector<Annotation>> a = ParseMitAnnotations(atr.substr(0, n));
      EXPECT_FALSE(a.ok()) << record << " prefix " << n << " lacks the terminator";
    }
    EXPECT_TRUE(ParseMitAnnotations(atr).ok());
  }
}

TEST(WfdbFuzz, RandomByteFlipsParseOrFail) {
  constexpr uint32_t kSeed = 20240607;
  std::mt19937 rng(kSeed);
  const std::string header = ReadBytes(Excerpt("208.hea"));
  const std::string dat = ReadBytes(Excerpt("208.dat")).substr(0, 600);
  const std::string atr = ReadBytes(Excerpt("208.atr"));
  const auto corrupt = [&](std::string s) {
    const int flips = std::uniform_int_distribution<int>(1, 8)(rng);
    for (int f = 0; f < flips; ++f) {
      s[std::uniform_int_distribution<size_t>(0, s.size() - 1)(rng)] =
          static_cast<char>(std::uniform_int_distribution<int>(0, 255)(rng));
    }
    return s;
  };
  for (int trial = 0; trial < 3000; ++trial) {
    SCOPED_TRACE(testing::Message() << "seed " << kSeed << " trial " << trial);
    absl::StatusOr<WfdbHeader> h = ParseWfdbHeader(corrupt(header));
    if (h.ok()) {
      EXPECT_EQ(static_cast<int>(h->signals.size()), h->num_signals);
      EXPECT_GT(h->sampling_frequency, 0);
      EXPECT_GE(h->num_samples, 0);
    }
    absl::StatusOr<std::vector<int16_t>> s = DecodeFormat212(corrupt(dat), 2);
    ASSERT_TRUE(s.ok()) << s.status();  // any 600 bytes are 200 valid frames
    absl::StatusOr<std::vector<Annotation>> a = ParseMitAnnotations(corrupt(atr));
    if (a.ok()) {
      for (const Annotation& x : *a) {
        EXPECT_GE(x.sample, 0);
        EXPECT_TRUE(x.code >= 1 && x.code <= 49) << x.code;
      }
    }
  }
}

TEST(WfdbFuzz, DamagedSignalFilesAreDataLoss) {
  constexpr uint32_t kSeed = 4242;
  std::mt19937 rng(kSeed);
  const std::string dir = TempDir("damaged");
  std::filesystem::copy_file(Excerpt("101.hea"), dir + "/101.hea",
                             std::filesystem::copy_options::overwrite_existing);
  const std::string dat = ReadBytes(Excerpt("101.dat"));
  for (int trial = 0; trial < 40; ++trial) {
    SCOPED_TRACE(testing::Message() << "seed " << kSeed << " trial " << trial);
    std::string bad = dat;
    if (trial % 2 == 0) {  // truncated anywhere
      bad.resize(std::uniform_int_distribution<size_t>(0, dat.size() - 1)(rng));
    } else {  // one bit flipped: changes one sample by +-2^k < 4096, so its checksum
      const size_t at = std::uniform_int_distribution<size_t>(0, dat.size() - 1)(rng);
      bad[at] = static_cast<char>(bad[at] ^ (1 << std::uniform_int_distribution<int>(0, 7)(rng)));
    }
    WriteBytes(dir + "/101.dat", bad);
    EXPECT_EQ(ReadWfdbRecord(dir + "/101").status().code(), absl::StatusCode::kDataLoss);
  }
}

}  // namespace
}  // namespace wavepool::dsp
