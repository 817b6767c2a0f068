#include "clients/bench_stats.h"

#include <algorithm>
#include <bit>
#include <cmath>
#include <numeric>
#include <random>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace wavepool::cli {

std::string_view FaultKindName(FaultKind kind) {
  switch (kind) {
    case FaultKind::kNone: return "none";
    case FaultKind::kVanish: return "vanish";
    case FaultKind::kCancel: return "cancel";
    case FaultKind::kDeadline: return "deadline";
    case FaultKind::kStall: return "stall";
    case FaultKind::kOneSample: return "one_sample";
    case FaultKind::kSilent: return "silent";
  }
  return "none";
}

std::vector<FaultKind> AssignFaults(int n, double share, uint64_t seed) {
  std::vector<FaultKind> kinds(static_cast<size_t>(std::max(n, 0)), FaultKind::kNone);
  if (kinds.empty() || !(share > 0)) return kinds;
  share = std::min(share, 1.0);
  const auto faulty = static_cast<size_t>(std::llround(share * static_cast<double>(n)));
  std::mt19937_64 rng(seed);
  std::vector<size_t> order(kinds.size());
  std::iota(order.begin(), order.end(), size_t{0});
  std::shuffle(order.begin(), order.end(), rng);
  std::vector<FaultKind> cycle = {FaultKind::kVanish,   FaultKind::kCancel,
                                  FaultKind::kDeadline, FaultKind::kStall,
                                  FaultKind::kOneSample, FaultKind::kSilent};
  std::shuffle(cycle.begin(), cycle.end(), rng);
  for (size_t i = 0; i < faulty; ++i) kinds[order[i]] = cycle[i % cycle.size()];
  return kinds;
}

uint64_t FixedWindowCount(uint64_t n, uint64_t length, uint64_t hop) {
  if (n == 0 || length == 0 || hop == 0) return 0;
  const uint64_t complete = n >= length ? (n - length) / hop + 1 : 0;
  const bool tail = complete == 0 || n > (complete - 1) * hop + length;
  return complete + (tail ? 1 : 0);
}

LatencyHistogram::LatencyHistogram() : counts_(new std::atomic<uint64_t>[kBuckets]) {
  for (size_t i = 0; i < kBuckets; ++i) counts_[i].store(0, std::memory_order_relaxed);
}

size_t LatencyHistogram::BucketOf(uint64_t v) {
  if (v < kSub) return static_cast<size_t>(v);
  const int shift = std::bit_width(v) - kSubBits;  // v >> shift is in [kHalf, kSub)
  const size_t b = kSub + static_cast<size_t>(shift - 1) * kHalf + ((v >> shift) - kHalf);
  return std::min(b, kBuckets - 1);
}

uint64_t LatencyHistogram::BucketLow(size_t b) {
  if (b < kSub) return b;
  const int shift = static_cast<int>((b - kSub) / kHalf) + 1;
  return (kHalf + (b - kSub) % kHalf) << shift;
}

uint64_t LatencyHistogram::BucketWidth(size_t b) {
  if (b < kSub) return 1;
  return uint64_t{1} << ((b - kSub) / kHalf + 1);
}

void LatencyHistogram::Record(int64_t micros) {
  const uint64_t v = micros > 0 ? static_cast<uint64_t>(micros) : 0;
  counts_[BucketOf(v)].fetch_add(1, std::memory_order_relaxed);
  count_.fetch_add(1, std::memory_order_relaxed);
  sum_.fetch_add(v, std::memory_order_relaxed);
  int64_t seen = max_.load(std::memory_order_relaxed);
  const auto sv = static_cast<int64_t>(v);
  while (sv > seen && !max_.compare_exchange_weak(seen, sv, std::memory_order_relaxed)) {
  }
}

double LatencyHistogram::mean_micros() const {
  const uint64_t n = count();
  return n ? static_cast<double>(sum_.load(std::memory_order_relaxed)) / static_cast<double>(n)
           : 0;
}

double LatencyHistogram::PercentileMicros(double q) const {
  const uint64_t n = count();
  if (n == 0) return 0;
  q = std::clamp(q, 0.0, 1.0);
  const auto rank = std::max<uint64_t>(1, static_cast<uint64_t>(std::ceil(q * n)));
  uint64_t seen = 0;
  for (size_t b = 0; b < kBuckets; ++b) {
    seen += counts_[b].load(std::memory_order_relaxed);
    if (seen >= rank) {
      const double mid = static_cast<double>(BucketLow(b)) +
                         (static_cast<double>(BucketWidth(b)) - 1) / 2;
      return std::min(mid, static_cast<double>(max_micros()));
    }
  }
  return static_cast<double>(max_micros());
}

void BenchResult::SetLatency(const LatencyHistogram& h) {
  if (h.count() == 0) return;
  p50_ms = h.PercentileMicros(0.50) / 1000;
  p90_ms = h.PercentileMicros(0.90) / 1000;
  p99_ms = h.PercentileMicros(0.99) / 1000;
  max_ms = static_cast<double>(h.max_micros()) / 1000;
  mean_ms = h.mean_micros() / 1000;
}

std::string StatusCodeName(int code) {
  static const char* kNames[] = {
      "OK", "CANCELLED", "UNKNOWN", "INVALID_ARGUMENT", "DEADLINE_EXCEEDED", "NOT_FOUND",
      "ALREADY_EXISTS", "PERMISSION_DENIED", "RESOURCE_EXHAUSTED", "FAILED_PRECONDITION",
      "ABORTED", "OUT_OF_RANGE", "UNIMPLEMENTED", "INTERNAL", "UNAVAILABLE", "DATA_LOSS",
      "UNAUTHENTICATED"};
  if (code >= 0 && code <= 16) return kNames[code];
  return absl::StrCat("CODE_", code);
}

namespace {

std::string JsonString(const std::string& s) {
  std::string out = "\"";
  for (const char c : s) {
    const auto u = static_cast<unsigned char>(c);
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (u < 0x20) {
      absl::StrAppendFormat(&out, "\\u%04x", u);
    } else {
      out += c;
    }
  }
  return out + "\"";
}

std::string JsonNumber(const std::optional<double>& v) {
  if (!v.has_value() || !std::isfinite(*v)) return "null";
  return absl::StrFormat("%.3f", *v);
}

std::string Fixed3(double v) { return std::isfinite(v) ? absl::StrFormat("%.3f", v) : "null"; }
std::string Fixed1(double v) { return std::isfinite(v) ? absl::StrFormat("%.1f", v) : "null"; }

double Percent(double cpu_s, double elapsed_s) {
  return elapsed_s > 0 ? 100 * cpu_s / elapsed_s : 0;
}

std::string Cell(const std::optional<double>& v) {
  return v.has_value() ? absl::StrFormat("%.2f", *v) : "-";
}

}  // namespace

std::string BenchJson(const BenchResult& r) {
  std::string out = "{";
  absl::StrAppend(&out, "\"model\":", JsonString(r.model), ",\"version\":", r.version,
                  ",\"kind\":", JsonString(r.kind), ",\"input\":", JsonString(r.input));
  absl::StrAppend(&out, ",\"streams\":", r.streams, ",\"channels\":", r.channels,
                  ",\"realtime\":", r.realtime ? "true" : "false",
                  ",\"chunk_ms\":", Fixed3(r.chunk_ms), ",\"duration_s\":", Fixed3(r.duration_s),
                  ",\"warmup_s\":", Fixed3(r.warmup_s), ",\"elapsed_s\":", Fixed3(r.elapsed_s));
  absl::StrAppend(&out, ",\"windows\":", r.windows, ",\"windows_per_s\":",
                  Fixed3(r.windows_per_s()), ",\"windows_arrived\":", r.windows_arrived,
                  ",\"windows_all\":", r.windows_all,
                  ",\"events\":", r.events, ",\"signal_s\":", Fixed3(r.signal_s),
                  ",\"signal_s_per_s\":", Fixed3(r.signal_s_per_s()));
  absl::StrAppend(&out, ",\"latency_ms\":{\"p50\":", JsonNumber(r.p50_ms),
                  ",\"p90\":", JsonNumber(r.p90_ms), ",\"p99\":", JsonNumber(r.p99_ms),
                  ",\"max\":", JsonNumber(r.max_ms), ",\"mean\":", JsonNumber(r.mean_ms), "}");
  absl::StrAppend(&out, ",\"errors\":", r.errors, ",\"errors_by_code\":{");
  bool first = true;
  for (const auto& [code, n] : r.errors_by_code) {
    absl::StrAppend(&out, first ? "" : ",", JsonString(code), ":", n);
    first = false;
  }
  absl::StrAppend(&out, "}");
  if (!r.first_error.empty()) absl::StrAppend(&out, ",\"first_error\":", JsonString(r.first_error));
  absl::StrAppend(&out, ",\"streams_completed\":", r.streams_completed,
                  ",\"unmatched_windows\":", r.unmatched_windows);
  absl::StrAppend(&out, ",\"faulty_share\":", Fixed3(r.faulty_share),
                  ",\"faulty_streams\":", r.faulty_streams, ",\"faults\":{");
  first = true;
  for (const auto& [kind, codes] : r.faults) {
    absl::StrAppend(&out, first ? "" : ",", JsonString(kind), ":{");
    bool first_code = true;
    for (const auto& [code, n] : codes) {
      absl::StrAppend(&out, first_code ? "" : ",", JsonString(code), ":", n);
      first_code = false;
    }
    absl::StrAppend(&out, "}");
    first = false;
  }
  absl::StrAppend(&out, "},\"checked_streams\":", r.checked_streams,
                  ",\"checked_errors\":", r.checked_errors,
                  ",\"windows_expected\":", r.windows_expected,
                  ",\"windows_lost\":", r.windows_lost,
                  ",\"windows_disordered\":", r.windows_disordered);
  if (r.realtime) {
    absl::StrAppend(&out, ",\"max_send_lag_ms\":", Fixed3(r.max_send_lag_ms));
  } else {
    absl::StrAppend(&out, ",\"max_lead_s\":", Fixed3(r.max_lead_s));
  }
  absl::StrAppend(&out, ",\"client_cpu_s\":", Fixed3(r.client_cpu_s), ",\"client_cpu_percent\":",
                  Fixed1(Percent(r.client_cpu_s, r.cpu_interval_s)));
  if (r.server_cpu_s.has_value()) {
    absl::StrAppend(&out, ",\"server_cpu_s\":", Fixed3(*r.server_cpu_s),
                    ",\"server_cpu_percent\":", Fixed1(Percent(*r.server_cpu_s, r.cpu_interval_s)));
  }
  return out + "}";
}

std::string BenchTableHeader() {
  return absl::StrFormat("%7s %9s %10s %8s %8s %8s %8s %7s %8s %8s", "STREAMS", "WINDOWS",
                         "WINDOWS/S", "P50_MS", "P90_MS", "P99_MS", "MAX_MS", "ERRORS",
                         "CLIENT%", "SERVER%");
}

std::string BenchTableRow(const BenchResult& r) {
  return absl::StrFormat(
      "%7d %9d %10.1f %8s %8s %8s %8s %7d %8.1f %8s", r.streams, r.windows, r.windows_per_s(),
      Cell(r.p50_ms), Cell(r.p90_ms), Cell(r.p99_ms), Cell(r.max_ms), r.errors,
      Percent(r.client_cpu_s, r.cpu_interval_s),
      r.server_cpu_s.has_value()
          ? absl::StrFormat("%.1f", Percent(*r.server_cpu_s, r.cpu_interval_s))
          : std::string("-"));
}

}  // namespace wavepool::cli
