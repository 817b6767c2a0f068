#include "server/log.h"

#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <charconv>
#include <cmath>
#include <cstdio>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"

namespace wavepool::server {
namespace {

std::atomic<LogFormat> g_format{LogFormat::kText};

std::string_view LevelName(LogLevel level, LogFormat format) {
  const bool json = format == LogFormat::kJson;
  switch (level) {
    case LogLevel::kDebug: return json ? "debug" : "DEBUG";
    case LogLevel::kInfo: return json ? "info" : "INFO";
    case LogLevel::kWarning: return json ? "warning" : "WARNING";
    case LogLevel::kError: return json ? "error" : "ERROR";
  }
  return json ? "info" : "INFO";
}

void AppendHexByte(std::string* out, std::string_view prefix, unsigned char c, int digits) {
  static constexpr char kHex[] = "0123456789abcdef";
  out->append(prefix);
  for (int i = digits - 1; i >= 0; --i) out->push_back(kHex[(c >> (4 * i)) & 0xf]);
}

// The escapes JSON strings and quoted text values share: quote, backslash,
// newline, return, tab; other control bytes (and DEL) as `hex_prefix` + two
// hex digits ("\\u00" in JSON, "\\x" in text); everything else as is.
void AppendEscaped(std::string* out, unsigned char c, std::string_view hex_prefix) {
  switch (c) {
    case '"': out->append("\\\""); break;
    case '\\': out->append("\\\\"); break;
    case '\n': out->append("\\n"); break;
    case '\r': out->append("\\r"); break;
    case '\t': out->append("\\t"); break;
    default:
      if (c < 0x20 || c == 0x7f) {
        AppendHexByte(out, hex_prefix, c, 2);
      } else {
        out->push_back(static_cast<char>(c));
      }
  }
}

// Shortest decimal that reads back to the same double (std::to_chars, C++17).
void AppendDouble(std::string* out, double d) {
  char buf[32];
  auto [end, ec] = std::to_chars(buf, buf + sizeof(buf), d);
  out->append(buf, ec == std::errc() ? end : buf);
}

// Length of the valid UTF-8 sequence starting at s[i], or 0 if it is not one
// (overlong forms, surrogates and code points above U+10FFFF are invalid).
size_t Utf8SequenceLength(std::string_view s, size_t i) {
  const auto b = [&](size_t k) { return static_cast<unsigned char>(s[i + k]); };
  const unsigned char c = b(0);
  size_t n = 0;
  uint32_t cp = 0;
  if (c < 0x80) return 1;
  if (c >= 0xc2 && c <= 0xdf) {
    n = 2;
    cp = c & 0x1f;
  } else if (c >= 0xe0 && c <= 0xef) {
    n = 3;
    cp = c & 0x0f;
  } else if (c >= 0xf0 && c <= 0xf4) {
    n = 4;
    cp = c & 0x07;
  } else {
    return 0;
  }
  if (i + n > s.size()) return 0;
  for (size_t k = 1; k < n; ++k) {
    if ((b(k) & 0xc0) != 0x80) return 0;
    cp = (cp << 6) | (b(k) & 0x3f);
  }
  if ((n == 3 && cp < 0x800) || (n == 4 && (cp < 0x10000 || cp > 0x10ffff)) ||
      (cp >= 0xd800 && cp <= 0xdfff)) {
    return 0;
  }
  return n;
}

void AppendJsonString(std::string* out, std::string_view s) {
  out->push_back('"');
  for (size_t i = 0; i < s.size();) {
    const unsigned char c = static_cast<unsigned char>(s[i]);
    if (c >= 0x80) {
      const size_t n = Utf8SequenceLength(s, i);
      if (n == 0) {
        out->append("\\ufffd");
        ++i;
      } else {
        out->append(s.substr(i, n));
        i += n;
      }
      continue;
    }
    if (c == '\b') {
      out->append("\\b");
    } else if (c == '\f') {
      out->append("\\f");
    } else {
      AppendEscaped(out, c, "\\u00");
    }
    ++i;
  }
  out->push_back('"');
}

bool NeedsQuotes(std::string_view s) {
  if (s.empty()) return true;
  for (char ch : s) {
    const unsigned char c = static_cast<unsigned char>(ch);
    if (c <= 0x20 || c == 0x7f || c == '"' || c == '=' || c == '\\') return true;
  }
  return false;
}

void AppendTextString(std::string* out, std::string_view s) {
  if (!NeedsQuotes(s)) {
    out->append(s);
    return;
  }
  out->push_back('"');
  for (char ch : s) {
    AppendEscaped(out, static_cast<unsigned char>(ch), "\\x");
  }
  out->push_back('"');
}

void AppendValue(std::string* out, const LogValue& value, LogFormat format) {
  const bool json = format == LogFormat::kJson;
  std::visit(
      [&](const auto& v) {
        using T = std::decay_t<decltype(v)>;
        if constexpr (std::is_same_v<T, std::string_view>) {
          json ? AppendJsonString(out, v) : AppendTextString(out, v);
        } else if constexpr (std::is_same_v<T, bool>) {
          out->append(v ? "true" : "false");
        } else if constexpr (std::is_same_v<T, double>) {
          if (std::isfinite(v)) {
            AppendDouble(out, v);
          } else if (json) {
            out->append("null");
          } else {
            out->append(std::isnan(v) ? "nan" : (v > 0 ? "inf" : "-inf"));
          }
        } else {
          absl::StrAppend(out, v);
        }
      },
      value.value());
}

}  // namespace

void SetLogFormat(LogFormat format) { g_format.store(format, std::memory_order_relaxed); }
LogFormat GetLogFormat() { return g_format.load(std::memory_order_relaxed); }

std::string JsonQuote(std::string_view s) {
  std::string out;
  AppendJsonString(&out, s);
  return out;
}

std::string FormatLogTime(absl::Time t) {
  return absl::FormatTime("%Y-%m-%dT%H:%M:%E3SZ", t, absl::UTCTimeZone());
}

std::string FormatLogLine(LogFormat format, LogLevel level, std::string_view event,
                          std::initializer_list<LogField> fields, absl::Time now) {
  std::string line;
  line.reserve(128);
  if (format == LogFormat::kJson) {
    absl::StrAppend(&line, "{\"ts\":\"", FormatLogTime(now), "\",\"level\":\"");
    line.append(LevelName(level, format));
    line.append("\",\"event\":");
    AppendJsonString(&line, event);
    for (const auto& [key, value] : fields) {
      line.push_back(',');
      AppendJsonString(&line, key);
      line.push_back(':');
      AppendValue(&line, value, format);
    }
    line.append("}\n");
  } else {
    absl::StrAppend(&line, FormatLogTime(now), " ");
    line.append(LevelName(level, format));
    line.push_back(' ');
    AppendTextString(&line, event);
    for (const auto& [key, value] : fields) {
      line.push_back(' ');
      line.append(key);
      line.push_back('=');
      AppendValue(&line, value, format);
    }
    line.push_back('\n');
  }
  return line;
}

void Log(LogLevel level, std::string_view event, std::initializer_list<LogField> fields) {
  const std::string line = FormatLogLine(GetLogFormat(), level, event, fields, absl::Now());
  // One write(2) for the whole line; the loop only finishes a partial write
  // (a signal, a full pipe) and never splits a line on purpose.
  size_t done = 0;
  while (done < line.size()) {
    const ssize_t n = ::write(STDERR_FILENO, line.data() + done, line.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return;  // stderr closed: nowhere to report it
    done += static_cast<size_t>(n);
  }
}

}  // namespace wavepool::server
