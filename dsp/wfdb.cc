#include "dsp/wfdb.h"

#include <array>
#include <charconv>
#include <cmath>
#include <cstddef>
#include <filesystem>
#include <fstream>
#include <limits>
#include <optional>
#include <system_error>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "util/status_macros.h"

namespace wavepool::dsp {
namespace {

// Size limits. A 30-min two-signal MIT-BIH record is 1.95 MB of .dat and
// about 8 kB of .atr; these leave room for days-long multi-signal records
// while refusing to allocate gigabytes because a file or header says so.
constexpr size_t kMaxHeaderBytes = size_t{1} << 20;        // 1 MiB of text
constexpr size_t kMaxSignalFileBytes = size_t{1} << 30;    // 1 GiB of samples
constexpr size_t kMaxAnnotationBytes = size_t{256} << 20;  // 256 MiB
constexpr int kMaxSignals = 256;
// |annotation time| stays below 2^53 samples (800 000 years at 360 Hz), far
// from int64 overflow even if every word of a huge file were a SKIP.
constexpr int64_t kMaxAnnotationTime = int64_t{1} << 53;

constexpr double kDefaultGain = 200;  // WFDB DEFGAIN: ADC units per mV

// Format modifiers and field presence that WfdbSignalInfo has no place for but
// ReadWfdbRecord needs (header(5): "FORMAT[xSPF][:skew][+offset]").
struct SignalLayout {
  int samples_per_frame = 1;
  int skew = 0;
  int64_t byte_offset = 0;
  bool has_checksum = false;
};

struct ParsedHeader {
  WfdbHeader header;
  std::vector<SignalLayout> layout;  // one per signal
};

// A token for an error message: printable ASCII kept, other bytes as \xNN,
// long tokens cut, so that a binary file gives a readable message.
std::string Quote(std::string_view s) {
  constexpr size_t kMaxShown = 40;
  std::string out = "'";
  for (size_t i = 0; i < s.size() && i < kMaxShown; ++i) {
    const unsigned char c = static_cast<unsigned char>(s[i]);
    if (c >= 0x20 && c < 0x7f) {
      out.push_back(static_cast<char>(c));
    } else {
      constexpr char kHex[] = "0123456789abcdef";
      out += "\\x";
      out.push_back(kHex[c >> 4]);
      out.push_back(kHex[c & 0xf]);
    }
  }
  if (s.size() > kMaxShown) out += "...";
  return out + "'";
}

bool IsBlank(char c) { return c == ' ' || c == '\t'; }

std::string_view TrimBlanks(std::string_view s) {
  while (!s.empty() && IsBlank(s.front())) s.remove_prefix(1);
  while (!s.empty() && IsBlank(s.back())) s.remove_suffix(1);
  return s;
}

// Takes the next blank-separated token off the front of `*rest`.
std::string_view NextToken(std::string_view* rest) {
  *rest = TrimBlanks(*rest);
  size_t end = 0;
  while (end < rest->size() && !IsBlank((*rest)[end])) ++end;
  std::string_view token = rest->substr(0, end);
  rest->remove_prefix(end);
  return token;
}

// Whole-string integer and floating-point parsers: "12x" or "" fail.
template <typename Int>
std::optional<Int> ParseInt(std::string_view s) {
  Int v{};
  const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || end != s.data() + s.size() || s.empty()) return std::nullopt;
  return v;
}

std::optional<double> ParseFinite(std::string_view s) {
  double v = 0;
  const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || end != s.data() + s.size() || s.empty() || !std::isfinite(v)) {
    return std::nullopt;
  }
  return v;
}

bool AllOf(std::string_view s, std::string_view allowed_punctuation) {
  if (s.empty()) return false;
  for (char c : s) {
    if (!(c >= '0' && c <= '9') && allowed_punctuation.find(c) == std::string_view::npos) {
      return false;
    }
  }
  return true;
}

absl::Status LineError(int line, std::string_view what) {
  return absl::InvalidArgumentError(absl::StrCat("header line ", line, ": ", std::string(what)));
}

// Record line: "RECORD[/NSEG] NSIG [FS[/COUNTER[(BASE)]] [NSAMP [TIME [DATE]]]]".
absl::Status ParseRecordLine(std::string_view text, int line, WfdbHeader* h) {
  std::string_view rest = text;
  const std::string_view name = NextToken(&rest);
  if (name.find('/') != std::string_view::npos) {
    return absl::UnimplementedError(
        absl::StrCat("header line ", line, ": record ", Quote(name),
                     " is a multi-segment record (RECORD/SEGMENTS); only single-segment "
                     "records are supported"));
  }
  h->record_name = std::string(name);
  const std::string_view nsig = NextToken(&rest);
  if (nsig.empty()) return LineError(line, "record line has no number of signals");
  const std::optional<int> n = ParseInt<int>(nsig);
  if (!n || *n < 0 || *n > kMaxSignals) {
    return LineError(line, absl::StrCat("number of signals ", Quote(nsig),
                                        " must be an integer in [0, ", kMaxSignals, "]"));
  }
  h->num_signals = *n;

  const std::string_view freq = NextToken(&rest);
  if (!freq.empty()) {
    const size_t slash = freq.find('/');
    const std::optional<double> fs = ParseFinite(freq.substr(0, slash));
    if (!fs || *fs <= 0) {
      return LineError(line, absl::StrCat("sampling frequency ", Quote(freq.substr(0, slash)),
                                          " must be a number > 0"));
    }
    h->sampling_frequency = *fs;
    if (slash != std::string_view::npos) {
      // Counter frequency and base counter value: checked, not kept.
      std::string_view counter = freq.substr(slash + 1);
      const size_t paren = counter.find('(');
      if (paren != std::string_view::npos) {
        const std::string_view base = counter.substr(paren);
        if (base.size() < 2 || base.back() != ')' ||
            !ParseFinite(base.substr(1, base.size() - 2))) {
          return LineError(line, absl::StrCat("base counter value ", Quote(base),
                                              " must be a number in parentheses"));
        }
        counter = counter.substr(0, paren);
      }
      if (!ParseFinite(counter)) {
        return LineError(line,
                         absl::StrCat("counter frequency ", Quote(counter), " is not a number"));
      }
    }
  }
  const std::string_view nsamp = NextToken(&rest);
  if (!nsamp.empty()) {
    const std::optional<int64_t> ns = ParseInt<int64_t>(nsamp);
    if (!ns || *ns < 0) {
      return LineError(
          line, absl::StrCat("number of samples ", Quote(nsamp), " must be an integer >= 0"));
    }
    h->num_samples = *ns;
  }
  // Base time (HH:MM:SS[.sss]) and date (DD/MM/YYYY): checked, not kept.
  const std::string_view time = NextToken(&rest);
  if (!time.empty() && !AllOf(time, ":.")) {
    return LineError(line, absl::StrCat("base time ", Quote(time), " is not HH:MM:SS"));
  }
  const std::string_view date = NextToken(&rest);
  if (!date.empty() && !AllOf(date, "/")) {
    return LineError(line, absl::StrCat("base date ", Quote(date), " is not DD/MM/YYYY"));
  }
  const std::string_view extra = NextToken(&rest);
  if (!extra.empty()) {
    return LineError(line, absl::StrCat("unexpected field ", Quote(extra),
                                        " after the base date on the record line"));
  }
  return absl::OkStatus();
}

// "FORMAT[xSPF][:SKEW][+OFFSET]", modifiers in that order.
absl::Status ParseFormat(std::string_view token, int line, WfdbSignalInfo* s, SignalLayout* l) {
  const size_t end = token.find_first_of("x:+");
  const std::optional<int> format = ParseInt<int>(token.substr(0, end));
  if (!format || *format < 0) {
    return LineError(
        line, absl::StrCat("format ", Quote(token.substr(0, end)), " must be an integer >= 0"));
  }
  s->format = *format;
  std::string_view rest = end == std::string_view::npos ? std::string_view() : token.substr(end);
  const auto take_modifier = [&](char sep, int64_t min_value, const char* what,
                                 int64_t* value) -> absl::Status {
    if (rest.empty() || rest.front() != sep) return absl::OkStatus();
    const size_t next = rest.find_first_of("x:+", 1);
    const std::string_view digits =
        rest.substr(1, next == std::string_view::npos ? rest.npos : next - 1);
    const std::optional<int> v = ParseInt<int>(digits);
    if (!v || *v < min_value) {
      return LineError(line, absl::StrCat(what, " ", Quote(digits), " in format ", Quote(token),
                                          " must be an integer >= ", min_value));
    }
    *value = *v;
    rest = next == std::string_view::npos ? std::string_view() : rest.substr(next);
    return absl::OkStatus();
  };
  int64_t spf = 1, skew = 0, offset = 0;
  RETURN_IF_ERROR(take_modifier('x', 1, "samples per frame", &spf));
  RETURN_IF_ERROR(take_modifier(':', 0, "skew", &skew));
  RETURN_IF_ERROR(take_modifier('+', 0, "byte offset", &offset));
  if (!rest.empty()) {
    return LineError(line,
                     absl::StrCat("format ", Quote(token), " is not FORMAT[xSPF][:SKEW][+OFFSET]"));
  }
  l->samples_per_frame = static_cast<int>(spf);
  l->skew = static_cast<int>(skew);
  l->byte_offset = offset;
  return absl::OkStatus();
}

// "GAIN[(BASELINE)][/UNITS]". Returns whether a baseline was given.
absl::StatusOr<bool> ParseGain(std::string_view token, int line, WfdbSignalInfo* s) {
  const size_t end = token.find_first_of("(/");
  const std::optional<double> gain = ParseFinite(token.substr(0, end));
  if (!gain) {
    return LineError(line,
                     absl::StrCat("ADC gain ", Quote(token.substr(0, end)), " is not a number"));
  }
  // header(5): "If the gain is zero or missing ... a value of 200 may be assumed".
  s->adc_gain = *gain == 0 ? kDefaultGain : *gain;
  std::string_view rest = end == std::string_view::npos ? std::string_view() : token.substr(end);
  bool has_baseline = false;
  if (!rest.empty() && rest.front() == '(') {
    const size_t close = rest.find(')');
    const std::optional<int> baseline =
        close == std::string_view::npos ? std::nullopt : ParseInt<int>(rest.substr(1, close - 1));
    if (!baseline) {
      return LineError(
          line, absl::StrCat("baseline in ", Quote(token), " must be an integer in parentheses"));
    }
    s->baseline = *baseline;
    has_baseline = true;
    rest.remove_prefix(close + 1);
  }
  if (!rest.empty()) {
    if (rest.front() != '/' || rest.size() < 2) {
      return LineError(
          line, absl::StrCat("ADC gain field ", Quote(token), " is not GAIN[(BASELINE)][/UNITS]"));
    }
    s->units = std::string(rest.substr(1));
  }
  return has_baseline;
}

// Default ADC resolution when the field is 0 or missing (header(5): 12 bits
// for amplitude formats, 10 for difference format 8, unless the format holds
// fewer bits).
int DefaultResolution(int format) {
  switch (format) {
    case 8:
    case 310:
    case 311:
      return 10;
    case 80:
      return 8;
    default:
      return 12;
  }
}

// "FILE FORMAT [GAIN [RES [ZERO [INIT [CHECKSUM [BLOCKSIZE [DESCRIPTION...]]]]]]]".
absl::Status ParseSignalLine(std::string_view text, int line, WfdbSignalInfo* s, SignalLayout* l) {
  std::string_view rest = text;
  s->file_name = std::string(NextToken(&rest));
  const std::string_view format = NextToken(&rest);
  if (format.empty()) {
    return LineError(line,
                     absl::StrCat("signal line for file ", Quote(s->file_name), " has no format"));
  }
  RETURN_IF_ERROR(ParseFormat(format, line, s, l));
  s->adc_gain = kDefaultGain;
  bool has_baseline = false;
  if (const std::string_view gain = NextToken(&rest); !gain.empty()) {
    ASSIGN_OR_RETURN(has_baseline, ParseGain(gain, line, s));
  }
  s->adc_resolution = DefaultResolution(s->format);
  s->adc_zero = 0;
  const auto take_int = [&](const char* what, int* out) -> absl::StatusOr<bool> {
    const std::string_view token = NextToken(&rest);
    if (token.empty()) return false;
    const std::optional<int> v = ParseInt<int>(token);
    if (!v) return LineError(line, absl::StrCat(what, " ", Quote(token), " is not an integer"));
    *out = *v;
    return true;
  };
  int resolution = 0;
  RETURN_IF_ERROR(take_int("ADC resolution", &resolution).status());
  if (resolution < 0 || resolution > 32) {
    return LineError(line, absl::StrCat("ADC resolution ", resolution, " must be in [0, 32]"));
  }
  if (resolution != 0) s->adc_resolution = resolution;
  RETURN_IF_ERROR(take_int("ADC zero", &s->adc_zero).status());
  if (!has_baseline) s->baseline = s->adc_zero;
  s->initial_value = s->adc_zero;
  RETURN_IF_ERROR(take_int("initial value", &s->initial_value).status());
  ASSIGN_OR_RETURN(l->has_checksum, take_int("checksum", &s->checksum));
  int block_size = 0;  // only matters for tape devices; checked, not kept
  RETURN_IF_ERROR(take_int("block size", &block_size).status());
  s->description = std::string(TrimBlanks(rest));
  return absl::OkStatus();
}

absl::StatusOr<ParsedHeader> ParseHeaderWithLayout(std::string_view text) {
  if (text.size() > kMaxHeaderBytes) {
    return absl::InvalidArgumentError(
        absl::StrCat("header is ", text.size(), " bytes; the limit is ", kMaxHeaderBytes));
  }
  if (const size_t nul = text.find('\0'); nul != std::string_view::npos) {
    return absl::InvalidArgumentError(
        absl::StrCat("header has a NUL byte at offset ", nul, ": not a text header"));
  }
  ParsedHeader parsed;
  WfdbHeader& h = parsed.header;
  bool have_record_line = false;
  int line = 0;
  while (!text.empty()) {
    ++line;
    const size_t nl = text.find('\n');
    std::string_view raw = text.substr(0, nl);
    text.remove_prefix(nl == std::string_view::npos ? text.size() : nl + 1);
    if (!raw.empty() && raw.back() == '\r') raw.remove_suffix(1);  // CRLF
    const std::string_view content = TrimBlanks(raw);
    if (content.empty()) continue;
    if (content.front() == '#') {
      h.comments.emplace_back(raw);
      continue;
    }
    if (!have_record_line) {
      RETURN_IF_ERROR(ParseRecordLine(content, line, &h));
      have_record_line = true;
      continue;
    }
    // header(5): lines beyond the declared signals are not read.
    if (static_cast<int>(h.signals.size()) >= h.num_signals) continue;
    WfdbSignalInfo signal;
    SignalLayout layout;
    RETURN_IF_ERROR(ParseSignalLine(content, line, &signal, &layout));
    h.signals.push_back(std::move(signal));
    parsed.layout.push_back(layout);
  }
  if (!have_record_line) {
    return absl::InvalidArgumentError("header has no record line (only blank or comment lines)");
  }
  if (static_cast<int>(h.signals.size()) != h.num_signals) {
    return absl::InvalidArgumentError(
        absl::StrCat("header declares ", h.num_signals, " signals but has ", h.signals.size(),
                     " signal specification lines (file truncated?)"));
  }
  return parsed;
}

// Reads a whole file of at most `max_bytes`.
absl::StatusOr<std::string> ReadFileLimited(const std::string& path, size_t max_bytes,
                                            std::string_view what) {
  std::error_code ec;
  const auto size = std::filesystem::file_size(path, ec);
  if (ec) {
    return absl::NotFoundError(
        absl::StrCat("cannot open ", std::string(what), " '", path, "': ", ec.message()));
  }
  if (size > max_bytes) {
    return absl::InvalidArgumentError(absl::StrCat(std::string(what), " '", path, "' is ", size,
                                                   " bytes; the limit is ", max_bytes));
  }
  std::ifstream f(path, std::ios::binary);
  if (!f) {
    return absl::NotFoundError(absl::StrCat("cannot open ", std::string(what), " '", path, "'"));
  }
  std::string bytes(static_cast<size_t>(size), '\0');
  f.read(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  if (static_cast<size_t>(f.gcount()) != bytes.size()) {
    return absl::DataLossError(absl::StrCat("read ", f.gcount(), " of ", size, " bytes of ",
                                            std::string(what), " '", path, "'"));
  }
  return bytes;
}

absl::Status Prefixed(const absl::Status& s, const std::string& path) {
  return absl::Status(s.code(), absl::StrCat(path, ": ", std::string(s.message())));
}

// A signal file named by a header must be a plain name in the header's folder:
// no directories, so a header cannot make us read elsewhere.
bool IsPlainFileName(const std::string& name) {
  return !name.empty() && name != "." && name != ".." && name != "-" &&
         name.find_first_of("/\\") == std::string::npos;
}

int16_t SignExtend12(unsigned v) {
  return static_cast<int16_t>(static_cast<int>(v & 0xfff) - ((v & 0x800) ? 0x1000 : 0));
}

// Symbols of the ecgcodes.h annotation codes 0..41 (WFDB Programmer's Guide,
// "Annotation Codes"); codes 0, 15 and 17 have none.
// clang-format off
constexpr std::array<char, 42> kSymbols = {
    '?', 'N', 'L', 'R', 'a', 'V', 'F', 'J', 'A', 'S', 'E', 'j', '/', 'Q',
    '~', '?', '|', '?', 's', 'T', '*', 'D', '"', '=', 'p', 'B', '^', 't',
    '+', 'u', '?', '!', '[', ']', 'e', 'n', '@', 'x', 'f', '(', ')', 'r'};
// clang-format on

constexpr int kMaxCode = 49;  // ACMAX
constexpr int kSkip = 59, kNum = 60, kSub = 61, kChn = 62, kAux = 63;

// subtyp and num are signed in WFDB and written as their low 10 bits, so a
// noise annotation's subtype -1 ("all signals unreadable") is stored as 1023.
int SignExtend10(int v) { return (v & 0x200) ? v - 0x400 : v; }

}  // namespace

absl::StatusOr<WfdbHeader> ParseWfdbHeader(std::string_view text) {
  ASSIGN_OR_RETURN(ParsedHeader parsed, ParseHeaderWithLayout(text));
  return std::move(parsed.header);
}

absl::StatusOr<std::vector<int16_t>> DecodeFormat212(std::string_view bytes, int num_signals) {
  if (num_signals < 1 || num_signals > kMaxSignals) {
    return absl::InvalidArgumentError(
        absl::StrCat("num_signals (", num_signals, ") must be in [1, ", kMaxSignals, "]"));
  }
  const size_t groups = bytes.size() / 3;
  const size_t rem = bytes.size() % 3;
  if (rem == 1) {
    return absl::InvalidArgumentError(absl::StrCat("format 212 data of ", bytes.size(),
                                                   " bytes ends in a stray byte (3 bytes hold 2 "
                                                   "samples; a final odd sample takes 2)"));
  }
  size_t samples = 2 * groups + (rem == 2 ? 1 : 0);
  const size_t n = static_cast<size_t>(num_signals);
  // An odd sample count may also be written as a full 3-byte group whose
  // second sample is padding.
  if (samples % n != 0 && rem == 0 && samples > 0 && (samples - 1) % n == 0) --samples;
  if (samples % n != 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("format 212 data of ", bytes.size(), " bytes holds ", samples,
                     " samples, not a whole "
                     "number of frames of ",
                     num_signals, " signals (trailing partial frame)"));
  }
  std::vector<int16_t> out(samples);
  const auto byte = [&](size_t i) { return static_cast<unsigned>(static_cast<uint8_t>(bytes[i])); };
  for (size_t k = 0; k < samples; ++k) {
    const size_t g = 3 * (k / 2);
    if (k % 2 == 0) {
      out[k] = SignExtend12(byte(g) | ((byte(g + 1) & 0x0f) << 8));
    } else {
      out[k] = SignExtend12(byte(g + 2) | ((byte(g + 1) & 0xf0) << 4));
    }
  }
  return out;
}

std::vector<float> WfdbRecord::Physical(int signal) const {
  std::vector<float> out;
  const int n = header.num_signals;
  if (signal < 0 || signal >= n || static_cast<int>(header.signals.size()) != n) return out;
  const WfdbSignalInfo& info = header.signals[static_cast<size_t>(signal)];
  const double gain = info.adc_gain == 0 ? kDefaultGain : info.adc_gain;
  const size_t frames = static_cast<size_t>(this->frames());
  out.reserve(frames);
  for (size_t i = 0; i < frames; ++i) {
    // In double: the header's baseline is any int, and v - baseline in int
    // overflows for one near INT_MIN or INT_MAX (found by fuzz/wfdb_record_fuzzer).
    const double v = adc[i * static_cast<size_t>(n) + static_cast<size_t>(signal)];
    out.push_back(static_cast<float>((v - info.baseline) / gain));
  }
  return out;
}

std::vector<int16_t> WfdbRecord::Adc(int signal) const {
  std::vector<int16_t> out;
  const int n = header.num_signals;
  if (signal < 0 || signal >= n) return out;
  const size_t frames = static_cast<size_t>(this->frames());
  out.resize(frames);
  for (size_t i = 0; i < frames; ++i) {
    out[i] = adc[i * static_cast<size_t>(n) + static_cast<size_t>(signal)];
  }
  return out;
}

int WfdbRecord::SignalNamed(std::string_view description) const {
  for (size_t i = 0; i < header.signals.size(); ++i) {
    if (header.signals[i].description == description) return static_cast<int>(i);
  }
  return 0;
}

absl::StatusOr<WfdbRecord> ReadWfdbRecord(const std::string& path) {
  std::string base = path;
  if (base.size() > 4 && base.compare(base.size() - 4, 4, ".hea") == 0)
    base.resize(base.size() - 4);
  const std::string header_path = base + ".hea";
  ASSIGN_OR_RETURN(const std::string text,
                   ReadFileLimited(header_path, kMaxHeaderBytes, "WFDB header"));
  absl::StatusOr<ParsedHeader> parsed = ParseHeaderWithLayout(text);
  if (!parsed.ok()) return Prefixed(parsed.status(), header_path);
  WfdbRecord record;
  record.header = std::move(parsed->header);
  const WfdbHeader& h = record.header;
  if (h.num_signals == 0) return record;

  const std::string& file_name = h.signals[0].file_name;
  for (int i = 0; i < h.num_signals; ++i) {
    const WfdbSignalInfo& s = h.signals[static_cast<size_t>(i)];
    const SignalLayout& l = parsed->layout[static_cast<size_t>(i)];
    std::string problem;
    if (s.format != 212) {
      problem = absl::StrCat("is in format ", s.format, "; only format 212 is implemented");
    } else if (s.file_name != file_name) {
      problem = absl::StrCat("is in file '", s.file_name, "' but signal 0 is in '", file_name,
                             "'; only records with all signals in one file are implemented");
    } else if (l.samples_per_frame != 1) {
      problem =
          absl::StrCat("has ", l.samples_per_frame, " samples per frame; only 1 is implemented");
    } else if (l.skew != 0) {
      problem = absl::StrCat("has skew ", l.skew, "; only 0 is implemented");
    }
    if (!problem.empty()) {
      return absl::UnimplementedError(absl::StrCat(
          header_path, ": signal ", i,
          s.description.empty() ? "" : absl::StrCat(" (", s.description, ")"), " ", problem));
    }
    if (l.byte_offset != parsed->layout[0].byte_offset) {
      return absl::InvalidArgumentError(
          absl::StrCat(header_path, ": signals of one file must share one byte offset (signal 0: ",
                       parsed->layout[0].byte_offset, ", signal ", i, ": ", l.byte_offset, ")"));
    }
  }
  if (!IsPlainFileName(file_name)) {
    return absl::InvalidArgumentError(
        absl::StrCat(header_path, ": signal file ", Quote(file_name),
                     " must be a plain file name in the header's folder"));
  }
  const std::string dat_path =
      (std::filesystem::path(header_path).parent_path() / file_name).string();
  ASSIGN_OR_RETURN(const std::string dat,
                   ReadFileLimited(dat_path, kMaxSignalFileBytes, "WFDB signal file"));
  const size_t offset = static_cast<size_t>(parsed->layout[0].byte_offset);
  if (offset > dat.size()) {
    return absl::DataLossError(absl::StrCat(dat_path, ": byte offset ", offset,
                                            " is past the end of the file (", dat.size(),
                                            " bytes)"));
  }
  std::string_view samples = std::string_view(dat).substr(offset);
  const size_t n = static_cast<size_t>(h.num_signals);
  if (h.num_samples > 0) {
    // The header's length must be present in full; bytes beyond it are not
    // read (header(5): the record has NSAMP samples per signal).
    const size_t max_samples = 2 * (kMaxSignalFileBytes / 3) + 1;
    if (static_cast<uint64_t>(h.num_samples) > max_samples / n) {
      return absl::DataLossError(absl::StrCat(dat_path, ": header says ", h.num_samples,
                                              " samples per signal; more than the file limit"));
    }
    const size_t want = static_cast<size_t>(h.num_samples) * n;
    const size_t want_bytes = want / 2 * 3 + (want % 2) * 2;
    if (samples.size() < want_bytes) {
      return absl::DataLossError(absl::StrCat(
          dat_path, ": truncated: the header says ", h.num_samples, " frames of ", n, " signals (",
          want_bytes, " bytes) but the file has ", samples.size(), " bytes after the byte offset"));
    }
    samples = samples.substr(0, want_bytes);
  }
  absl::StatusOr<std::vector<int16_t>> adc = DecodeFormat212(samples, h.num_signals);
  if (!adc.ok()) return Prefixed(adc.status(), dat_path);
  record.adc = std::move(*adc);

  // header(5): the checksum (16-bit sum of all samples) is verified when the
  // header gives the number of samples and the whole record is read.
  if (h.num_samples > 0) {
    std::vector<uint16_t> sums(n, 0);
    for (size_t i = 0; i < record.adc.size(); ++i) {
      sums[i % n] = static_cast<uint16_t>(sums[i % n] + static_cast<uint16_t>(record.adc[i]));
    }
    for (size_t s = 0; s < n; ++s) {
      const int expected = h.signals[s].checksum;
      if (parsed->layout[s].has_checksum && sums[s] != static_cast<uint16_t>(expected)) {
        return absl::DataLossError(absl::StrCat(
            dat_path, ": checksum of signal ", s, " is ", static_cast<int16_t>(sums[s]),
            " but the header says ", expected, " (corrupt signal file?)"));
      }
    }
  }
  return record;
}

char Annotation::Symbol() const {
  return code >= 0 && code < static_cast<int>(kSymbols.size()) ? kSymbols[static_cast<size_t>(code)]
                                                               : '?';
}

absl::StatusOr<std::vector<Annotation>> ParseMitAnnotations(std::string_view bytes) {
  std::vector<Annotation> out;
  int64_t time = 0;
  int num = 0, chan = 0;  // NUM and CHN carry over to later annotations
  size_t pos = 0;
  const auto word_at = [&](size_t p) {
    return static_cast<unsigned>(static_cast<uint8_t>(bytes[p])) |
           (static_cast<unsigned>(static_cast<uint8_t>(bytes[p + 1])) << 8);
  };
  const auto error = [&](size_t at, std::string_view what) {
    return absl::InvalidArgumentError(
        absl::StrCat("annotation file, byte offset ", at, ": ", std::string(what)));
  };
  while (true) {
    if (bytes.size() - pos < 2) {
      return error(pos, absl::StrCat(bytes.size() - pos == 1 ? "odd trailing byte" : "end of data",
                                     " before the end-of-file word (0) after ", out.size(),
                                     " annotations: truncated?"));
    }
    const size_t at = pos;
    const unsigned word = word_at(pos);
    pos += 2;
    if (word == 0) break;
    const int a = static_cast<int>(word >> 10);
    const int i = static_cast<int>(word & 0x3ff);
    // SUB, CHN, NUM and AUX follow the annotation they modify (annot(5):
    // "current annotation"); SKIP precedes the one whose time it moves.
    Annotation* current = out.empty() ? nullptr : &out.back();
    if (a >= 1 && a <= kMaxCode) {
      time += i;
      if (time < 0) {
        return error(at, absl::StrCat("annotation time ", time, " is negative"));
      }
      Annotation ann;
      ann.sample = time;
      ann.code = a;
      ann.num = num;
      ann.channel = chan;
      out.push_back(std::move(ann));
    } else if (a == kSkip) {
      if (bytes.size() - pos < 4) {
        return error(
            at, absl::StrCat("SKIP needs a 4-byte interval; ", bytes.size() - pos, " bytes left"));
      }
      // PDP-11 long: high 16-bit word first, each word little-endian.
      const uint32_t interval = (static_cast<uint32_t>(word_at(pos)) << 16) | word_at(pos + 2);
      pos += 4;
      time += static_cast<int32_t>(interval);
      if (time <= -kMaxAnnotationTime || time >= kMaxAnnotationTime) {
        return error(at, absl::StrCat("annotation time ", time, " after SKIP is out of range"));
      }
    } else if (a == kNum) {
      num = SignExtend10(i);
      if (current != nullptr) current->num = num;
    } else if (a == kChn) {
      chan = i;
      if (current != nullptr) current->channel = i;
    } else if (a == kSub || a == kAux) {
      if (current == nullptr) {
        return error(at, absl::StrCat(a == kSub ? "SUB" : "AUX", " before any annotation"));
      }
      if (a == kSub) {
        current->subtype = SignExtend10(i);
        continue;
      }
      const size_t padded = static_cast<size_t>(i) + (i % 2);  // padded to an even length
      if (bytes.size() - pos < padded) {
        return error(at, absl::StrCat("AUX of ", i, " bytes (", padded, " with padding) but ",
                                      bytes.size() - pos, " bytes left"));
      }
      std::string_view aux = bytes.substr(pos, static_cast<size_t>(i));
      // MIT-BIH stores rhythm strings as C strings: "(N" often comes with its NUL.
      while (!aux.empty() && aux.back() == '\0') aux.remove_suffix(1);
      current->aux = std::string(aux);
      pos += padded;
    } else {
      return error(at, absl::StrCat("undefined annotation code ", a, " (time difference ", i, ")"));
    }
  }
  return out;
}

absl::StatusOr<std::vector<Annotation>> ReadMitAnnotations(const std::string& path) {
  ASSIGN_OR_RETURN(const std::string bytes,
                   ReadFileLimited(path, kMaxAnnotationBytes, "annotation file"));
  absl::StatusOr<std::vector<Annotation>> annotations = ParseMitAnnotations(bytes);
  if (!annotations.ok()) return Prefixed(annotations.status(), path);
  return annotations;
}

char AamiClass(char mit_symbol) {
  switch (mit_symbol) {
    case 'N':
    case 'L':
    case 'R':
    case 'e':
    case 'j':
      return 'N';
    case 'A':
    case 'a':
    case 'J':
    case 'S':
      return 'S';
    case 'V':
    case 'E':
      return 'V';
    case 'F':
      return 'F';
    case '/':
    case 'f':
    case 'Q':
      return 'Q';
    default:
      return '\0';
  }
}

}  // namespace wavepool::dsp
