// One stream's state: validated config, PCM decoding and downmix, resampling to
// the model's rate, the streaming front end, inference and post-processing.
// Everything is sized at Create; Push allocates only to grow its decode buffer
// to the largest chunk seen (amortised), never per window.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "absl/functional/function_ref.h"
#include "absl/status/statusor.h"
#include "dsp/log_mel.h"
#include "dsp/resampler.h"
#include "nn/model.h"
#include "server/event_detector.h"
#include "server/model_repository.h"
#include "wavepool/v1/classifier.pb.h"

namespace wavepool::server {

// What a client may ask for. Rates outside [min, max] are rejected as absurd.
struct SessionLimits {
  double min_sample_rate_hz = 50;
  double max_sample_rate_hz = 768000;
  uint32_t max_channels = 32;
};

// Server-wide limits on streams; each breach is RESOURCE_EXHAUSTED with the
// limit's name, so a client can tell which one it hit.
struct StreamLimits {
  uint32_t max_streams = 10000;           // open StreamClassify calls
  uint32_t max_streams_per_peer = 2000;   // per client IP address
  uint64_t max_message_bytes = 16 << 20;  // one gRPC message
  uint64_t max_chunk_samples = 4000000;   // per channel, one message
  double max_stream_duration_s = 0;       // wall time; 0 = unlimited
  double idle_timeout_s = 60;             // no message for this long; 0 = never
};

// Where a session's results go, in order: each window's result as soon as it
// is computed, and each event right after the window that ended it.
struct SessionOutput {
  absl::FunctionRef<void(v1::WindowResult&& window)> window;
  absl::FunctionRef<void(v1::Event&& event)> event;
};

class Session {
 public:
  // INVALID_ARGUMENT for a bad config (rate, channels, encoding, top_k).
  static absl::StatusOr<std::unique_ptr<Session>> Create(const v1::StreamConfig& config,
                                                         std::shared_ptr<const LoadedModel> model,
                                                         const SessionLimits& limits = {});

  // Decodes one chunk (validated whole before any of it is used: a bad chunk
  // changes nothing) and emits a result for every window it completes, in order.
  absl::Status Push(const v1::SampleChunk& chunk, const SessionOutput& out);
  // Ends the stream: flushes the resampler, emits the zero-padded tail window if
  // samples remain after the last complete window, closes an open event, and
  // returns the summary.
  absl::StatusOr<v1::StreamSummary> Finish(const SessionOutput& out, double wall_time_s);

  uint64_t samples_received() const { return samples_received_; }
  uint64_t windows_sent() const { return windows_sent_; }
  const LoadedModel& model() const { return *model_; }

 private:
  Session(const v1::StreamConfig& config, std::shared_ptr<const LoadedModel> model);
  absl::Status Decode(const v1::SampleChunk& chunk);
  void Classify(uint64_t index, std::span<const float> features, bool padded,
                const SessionOutput& out);
  void ClassifyBeat(const dsp::Beat& beat, const SessionOutput& out);
  // Runs the network on one window and sorts the labels (scores_, order_).
  void Score(std::span<const float> features);
  void FillTop(v1::WindowResult& w) const;
  // Routes resampled samples to the model's front end.
  void Feed(std::span<const float> resampled, const SessionOutput& out);

  v1::StreamConfig config_;
  uint32_t channels_ = 1;
  uint32_t top_k_ = 1;
  std::shared_ptr<const LoadedModel> model_;
  std::unique_ptr<dsp::Resampler> resampler_;
  std::unique_ptr<dsp::StreamingFeatures> features_;     // FIXED_WINDOWS
  std::unique_ptr<dsp::StreamingBeatWindows> beats_;    // BEAT_WINDOWS
  float pcm_scale_ = 1.0f / 32768.0f;                    // INT16 -> value
  float pcm_offset_ = 0.0f;                              // baseline, in INT16 units
  std::unique_ptr<nn::Workspace> workspace_;
  std::unique_ptr<EventDetector> events_;
  uint64_t events_sent_ = 0;
  std::vector<float> mono_;     // decoded chunk, one value per frame
  std::vector<float> scores_;   // output_size()
  std::vector<uint32_t> order_; // label indices, sorted by score
  uint64_t samples_received_ = 0;
  uint64_t windows_sent_ = 0;
  bool finished_ = false;
};

}  // namespace wavepool::server
