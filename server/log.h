// Structured logs: one line per event on stderr, as text or as JSON.
//
//   Log(LogLevel::kInfo, "stream_open", {{"stream", 12}, {"peer", peer}, {"model", "digits"}});
//
// text: 2026-11-27T07:00:00.123Z INFO stream_open stream=12 peer=ipv4:127.0.0.1:5555 model=digits
// json: {"ts":"2026-11-27T07:00:00.123Z","level":"info","event":"stream_open","stream":12,...}
//
// The format is chosen once at start (SetLogFormat, before other threads log).
// Log is thread-safe: each line is built in memory and handed to one write(2),
// so lines from different threads never interleave (writes to a pipe up to
// PIPE_BUF = 4096 bytes are atomic; longer lines to a file are in practice).
// Never pass secrets (tokens, keys) as field values.
#pragma once

#include <concepts>
#include <cstdint>
#include <initializer_list>
#include <string>
#include <string_view>
#include <utility>
#include <variant>

#include "absl/time/time.h"

namespace wavepool::server {

enum class LogLevel { kDebug, kInfo, kWarning, kError };
enum class LogFormat { kText, kJson };

// One field value. Strings are viewed, not copied: a LogValue lives only for
// the Log call that it is written in.
class LogValue {
 public:
  LogValue(const char* s) : v_(std::string_view(s == nullptr ? "" : s)) {}
  LogValue(std::string_view s) : v_(s) {}
  LogValue(const std::string& s) : v_(std::string_view(s)) {}
  LogValue(bool b) : v_(b) {}
  LogValue(double d) : v_(d) {}
  LogValue(float f) : v_(static_cast<double>(f)) {}
  template <std::integral T>
    requires(!std::same_as<T, bool> && !std::same_as<T, char>)
  LogValue(T i) {
    if constexpr (std::is_signed_v<T>) {
      v_ = static_cast<int64_t>(i);
    } else {
      v_ = static_cast<uint64_t>(i);
    }
  }

  const std::variant<std::string_view, int64_t, uint64_t, double, bool>& value() const {
    return v_;
  }

 private:
  std::variant<std::string_view, int64_t, uint64_t, double, bool> v_;
};

using LogField = std::pair<std::string_view, LogValue>;

// Process-wide; the default is text.
void SetLogFormat(LogFormat format);
LogFormat GetLogFormat();

// Writes one line to stderr.
void Log(LogLevel level, std::string_view event, std::initializer_list<LogField> fields = {});

// The line Log would write at `now` (with its trailing '\n'). Text: values that
// are empty or contain a space, '"', '=', '\\' or a control character are
// quoted, with \" \\ \n \r \t and \xHH escapes. JSON: strings escaped per RFC
// 8259 (bytes that are not valid UTF-8 become U+FFFD); NaN and infinities are
// null. Doubles are written in the shortest form that reads back exactly.
std::string FormatLogLine(LogFormat format, LogLevel level, std::string_view event,
                          std::initializer_list<LogField> fields, absl::Time now);

// `s` as a JSON string literal, quotes included, escaped as in FormatLogLine.
std::string JsonQuote(std::string_view s);

// "2026-11-27T07:00:00.123Z": UTC, milliseconds.
std::string FormatLogTime(absl::Time t);

}  // namespace wavepool::server
