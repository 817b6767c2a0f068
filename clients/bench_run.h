// One `wavepool bench` run: N concurrent StreamClassify streams on the gRPC
// callback API (one reactor per stream, one pacing thread, never a thread per
// stream), each looping one signal, and the latency of every window from the
// moment its last sample was sent to the moment its result arrived
// (docs/bench.md).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "clients/bench_stats.h"
#include "clients/cli.h"
#include "wavepool/v1/classifier.pb.h"

namespace wavepool::cli {

// The signal every stream sends, in the config's encoding. `loop` is the whole
// signal followed by its first chunk_frames frames again, so the looped
// stream's chunk k is one contiguous slice and every chunk is full (which keeps
// "sample s is in chunk s / chunk_frames" exact).
struct BenchInput {
  std::string path;
  v1::StreamConfig config;
  double rate_hz = 0;
  size_t frames = 0;       // frames in the signal
  size_t frame_bytes = 0;  // bytes per frame, all channels
  size_t chunk_frames = 0;
  std::string loop;
  // The model's window length and hop in the input's samples, when it has
  // fixed windows at the input's rate (the caller sets them); 0 = unknown
  // (beat windows, or resampled), and a stream's summary gives its count.
  uint64_t window_length = 0, window_hop = 0;

  std::string_view Chunk(int64_t k) const {
    const size_t first = (static_cast<size_t>(k) * chunk_frames) % frames;
    return {loop.data() + first * frame_bytes, chunk_frames * frame_bytes};
  }
};

// Reads a WAV (sent as FLOAT32) or a WFDB record (its MLII lead, else its first
// signal, sent as INT16 with the header's gain and baseline), as `wavepool
// stream` does, and cuts it into chunks of chunk_ms (whole samples, >= 1).
// Sets the config's encoding, rate, channels and ADC scaling; the caller sets
// model, version and top_k.
absl::Status LoadBenchInput(const std::string& path, double chunk_ms, BenchInput* in);

struct BenchOptions {
  double duration_s = 10;
  double warmup_s = 1;
  bool realtime = false;
  double grace_s = 30;  // after the last chunk, how long streams may take to finish
  int streams_per_channel = 100;
  int server_pid = 0;
  // As fast as possible: seconds of signal a stream may send beyond the end of
  // the last window it received; 0 = no limit but HTTP/2 flow control. Without
  // one the server's receive window (grown by BDP probing to megabytes) queues
  // tens of seconds of signal and the measured "latency" is that queue.
  double max_lead_s = 0;
  // > 0: every stream sends exactly this many chunks, then half-closes (both
  // modes), so the signal each stream sends, and with it its window count, is
  // known in advance. 0: realtime streams send warm-up + duration worth of
  // chunks; as-fast-as-possible ones half-close when the interval ends.
  int64_t chunks = 0;
  // A share of the streams misbehave, each in one way (FaultKind); which ones
  // and how is fixed by faulty_seed.
  double faulty_share = 0;
  uint64_t faulty_seed = 1;
};

// Runs `streams` streams over channels from MakeChannel(common) (one per
// opt.streams_per_channel) for opt.warmup_s + opt.duration_s and fills the
// run's fields of `base` (model and input fields are the caller's). Blocks
// until every stream has ended.
BenchResult RunStreams(const CommonOptions& common, const BenchOptions& opt,
                       const BenchInput& input, int streams, BenchResult base);

// User + system CPU seconds of a process from /proc/PID/stat; nullopt when
// pid <= 0 or unreadable.
std::optional<double> ProcessCpuSecondsOf(int pid);

}  // namespace wavepool::cli
