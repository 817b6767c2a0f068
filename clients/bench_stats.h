// Statistics for `wavepool bench`: a latency histogram that gRPC callback
// threads record into without locks, and one run's result with its JSON and
// table forms (docs/bench.md describes every field).
#pragma once

#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace wavepool::cli {

// What a faulty bench stream does (--faulty-share; docs/bench.md).
//   kVanish     cancels right after a chunk's write completes, without
//               half-closing or reading what is in flight (RST_STREAM: what the
//               server sees of a client library torn down mid-call);
//   kCancel     cancels after it has read a few windows;
//   kDeadline   has a deadline of 0.5-3 s, passed mid-stream;
//   kStall      stops reading after a few windows and keeps writing;
//   kOneSample  sends its first chunk as one-sample messages, then goes on as
//               a healthy stream (its windows are checked like one);
//   kSilent     opens the call and sends nothing, not even the config.
enum class FaultKind { kNone, kVanish, kCancel, kDeadline, kStall, kOneSample, kSilent };
inline constexpr int kFaultKinds = 6;  // kNone excluded

std::string_view FaultKindName(FaultKind kind);  // "vanish", ...; "none"

// The kind of each of n streams: exactly round(share x n) are faulty, picked
// by a shuffle seeded with `seed`, and their kinds go round the six in a
// seeded order (so every kind appears once 6 streams are faulty). share is
// clamped to [0, 1].
std::vector<FaultKind> AssignFaults(int n, double share, uint64_t seed);

// Windows of an n-sample stream that half-closes, for a fixed-window model
// with windows of `length` samples every `hop` (docs/api.md): every complete
// window, plus one zero-padded window when samples remain after the last (or
// the stream is shorter than one window). 0 samples: none.
uint64_t FixedWindowCount(uint64_t n, uint64_t length, uint64_t hop);

// Latencies in microseconds, HdrHistogram's log-linear layout: values below
// 256 µs have a bucket each; above, every power of two is split into 128
// buckets, so a percentile (reported as its bucket's midpoint) is within 0.4%
// of the exact order statistic. Values >= 2^40 µs (12 days) share the last
// bucket. 4352 buckets, 34 KiB, allocated once.
//
// Thread-safety: Record() may be called from any number of threads at once
// (relaxed atomics: counts only, no ordering needed). The readers see every
// Record() that happened-before them, e.g. after the recording threads have
// been joined or have signalled completion under a mutex.
class LatencyHistogram {
 public:
  LatencyHistogram();

  void Record(int64_t micros);  // negative values count as 0

  uint64_t count() const { return count_.load(std::memory_order_relaxed); }
  int64_t max_micros() const { return max_.load(std::memory_order_relaxed); }
  double mean_micros() const;
  // The smallest bucket value v with at least ceil(q * count) recorded values
  // <= v, as the bucket's midpoint clamped to [0, max]. q in [0, 1]; 0 when
  // empty.
  double PercentileMicros(double q) const;

  // Bucket arithmetic, exposed for the tests.
  static size_t BucketOf(uint64_t micros);
  static uint64_t BucketLow(size_t bucket);    // smallest value in the bucket
  static uint64_t BucketWidth(size_t bucket);  // values in the bucket

 private:
  static constexpr int kSubBits = 8;  // 2^8 sub-buckets per power of two (half used)
  static constexpr size_t kSub = size_t{1} << kSubBits;
  static constexpr size_t kHalf = kSub / 2;
  static constexpr int kMaxBits = 40;
  static constexpr size_t kBuckets = kSub + (kMaxBits - kSubBits) * kHalf;

  std::unique_ptr<std::atomic<uint64_t>[]> counts_;
  std::atomic<uint64_t> count_{0};
  std::atomic<uint64_t> sum_{0};
  std::atomic<int64_t> max_{0};
};

// One bench run (one stream count). Times in seconds unless the name says ms.
struct BenchResult {
  std::string model;
  int64_t version = 0;  // as served (the latest when --version is 0); 0 = not listed
  std::string kind;     // ModelKind name, "" when the server does not list the model
  std::string input;    // the signal file
  int streams = 0;
  int channels = 0;  // gRPC channels the streams were spread over
  bool realtime = false;
  double chunk_ms = 0;    // actual chunk length (whole samples)
  double duration_s = 0;  // requested measurement time
  double warmup_s = 0;
  double max_lead_s = 0;  // as fast as possible: the lead limit, 0 = none (or realtime)
  double elapsed_s = 0;   // end of warm-up to the last stream's end (drain included)
  double cpu_interval_s = 0;  // what the CPU figures cover: the measurement interval

  uint64_t windows = 0;  // windows whose last sample was sent after warm-up
  uint64_t windows_all = 0;  // every window received, warm-up included
  uint64_t windows_arrived = 0;  // windows received during the measurement interval
  uint64_t unmatched_windows = 0;  // end_sample outside what was sent (a server bug)
  uint64_t events = 0;
  double signal_s = 0;  // seconds of signal sent during the measurement interval, all streams
  // Latency percentiles over `windows`; unset when there are none.
  std::optional<double> p50_ms, p90_ms, p99_ms, max_ms, mean_ms;

  uint64_t errors = 0;  // streams that ended with a non-OK status
  std::map<std::string, uint64_t> errors_by_code;
  std::string first_error;  // "CODE: message" of one failed stream
  std::string first_checked_error;  // the same, of a checked stream (below); not in the JSON
  int streams_completed = 0;  // ended OK with a summary

  // Faults (--faulty-share) and the check of the others' windows. "Checked"
  // streams are the healthy ones and kOneSample: each must end OK with every
  // window exactly once and in order (index consecutive from 0). Expected
  // windows come from FixedWindowCount of the samples it sent when the model
  // has fixed windows at the input's rate, else from its StreamSummary.
  double faulty_share = 0;
  int faulty_streams = 0;
  std::map<std::string, std::map<std::string, uint64_t>> faults;  // kind -> code -> streams
  int checked_streams = 0;
  uint64_t checked_errors = 0;      // checked streams that did not end OK
  uint64_t windows_expected = 0;    // over checked streams that ended OK
  uint64_t windows_lost = 0;        // expected - received in order, over those
  uint64_t windows_disordered = 0;  // a window whose index was not the next one
  // What makes the run fail: a checked stream with an error or a window lost
  // or out of order (faulty streams' errors are expected).
  bool healthy_failed() const {
    return checked_errors > 0 || windows_lost > 0 || windows_disordered > 0;
  }

  double max_send_lag_ms = 0;  // realtime: worst delay of a chunk behind its schedule
  double client_cpu_s = 0;     // this process, user + system, over cpu_interval_s
  std::optional<double> server_cpu_s;  // --server-pid, over cpu_interval_s

  // Throughput: windows received during the measurement interval per second.
  double windows_per_s() const { return duration_s > 0 ? windows_arrived / duration_s : 0; }
  double signal_s_per_s() const { return duration_s > 0 ? signal_s / duration_s : 0; }
  void SetLatency(const LatencyHistogram& h);
};

// One line of JSON (no trailing newline).
std::string BenchJson(const BenchResult& r);
// A fixed-width table: the header, then one row per run.
std::string BenchTableHeader();
std::string BenchTableRow(const BenchResult& r);

// "NOT_FOUND" for grpc::StatusCode 5, "CODE_<n>" beyond the known codes.
std::string StatusCodeName(int code);

}  // namespace wavepool::cli
