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
#include "dsp/log_mel_bounds.h"
#include "dsp/resampler.h"
#include "dsp/resampler_bounds.h"
#include "nn/ibp.h"
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
  // Samples (per channel) one chunk may carry; more is RESOURCE_EXHAUSTED.
  uint64_t max_chunk_samples = 4000000;
  // |sample| after decoding (audio: full scale 1; ECG: millivolts). Beyond it,
  // like NaN or Inf, is INVALID_ARGUMENT, and so is an INT16 adc_gain/baseline
  // that maps a sample beyond it: a finite 1e35 would overflow the spectrum to
  // Inf and every score to NaN. 1e6 keeps every front-end sum finite in float
  // even for a 2^32-sample frame (Parseval: fft_size x frame x 1e12 < 3.4e38).
  double max_abs_sample = 1e6;
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

// A stream's work goes in stages so that inference can run elsewhere (the
// batcher) while the stream waits:
//   Accept(chunk)  decode and validate one message (a bad chunk changes nothing);
//   Stage()        run the next slice of it through resampling and the front
//                  end; each window it completes is copied to a pending slot;
//   (score)        the pending slots' inputs are scored, inline or batched;
//   Emit(out)      the pending windows' results and events, in order.
// EndInput() marks the end of the stream; the Stage() after the input runs out
// flushes the resampler and the zero-padded tail window. A slice is short
// (about 16 windows of signal), so the slots stay small whatever the message size.
class Session {
 public:
  // INVALID_ARGUMENT for a bad config (rate, channels, encoding, top_k).
  static absl::StatusOr<std::unique_ptr<Session>> Create(const v1::StreamConfig& config,
                                                         std::shared_ptr<const LoadedModel> model,
                                                         const SessionLimits& limits = {});

  // Decodes one chunk. FAILED_PRECONDITION if staged input is left or the input ended.
  absl::Status Accept(const v1::SampleChunk& chunk);
  void EndInput() { input_ended_ = true; }
  // Stages the next slice (or, once the input ended and ran out, the flush).
  // False when there was nothing left to stage.
  bool Stage();
  // Windows staged and not yet emitted; their inputs and score slots.
  size_t pending() const { return pending_.size(); }
  const float* pending_inputs() const { return inputs_.data(); }
  // Sized for pending() windows (grows to the high-water mark).
  float* pending_scores();
  // Scores the pending windows here, on this thread (no batcher).
  void ScoreInline();
  // Sends the pending windows' results (scored) and the events they end.
  void Emit(const SessionOutput& out);
  // True once the input ended, everything was staged, and everything emitted.
  bool done() const { return flushed_ && pending_.empty(); }
  v1::StreamSummary Summary(double wall_time_s) const;

  // The whole run, inline: Accept + Stage/Score/Emit until nothing is left.
  absl::Status Push(const v1::SampleChunk& chunk, const SessionOutput& out);
  absl::StatusOr<v1::StreamSummary> Finish(const SessionOutput& out, double wall_time_s);

  uint64_t samples_received() const { return samples_received_; }
  uint64_t windows_sent() const { return windows_sent_; }
  const LoadedModel& model() const { return *model_; }

 private:
  // What a pending window needs to become a WindowResult.
  struct Pending {
    uint64_t index = 0;  // fixed windows: window index
    bool padded = false;
    bool beat = false;
    int64_t r_sample = 0;  // beats: R peak in model samples
    double rr_prev_s = 0, rr_next_s = 0;
    uint64_t ready_sample = 0;  // samples received when it was staged
  };

  Session(const v1::StreamConfig& config, std::shared_ptr<const LoadedModel> model);
  absl::Status Decode(const v1::SampleChunk& chunk);
  absl::Status CheckChunkSize(uint64_t frames) const;
  // lower / upper: the features' bounds (certification; empty = none given).
  void AddPending(const Pending& p, std::span<const float> features,
                  std::span<const float> lower = {}, std::span<const float> upper = {});
  void Feed(std::span<const float> resampled);
  // Certification of fixed windows: keeps the recent model-rate samples and
  // bounds window `index`'s features from them into in_lo_ / in_hi_.
  void FeedCertified(std::span<const float> resampled);
  void BoundWindow(uint64_t index);
  absl::Status SetUpCertification(float epsilon, double client_rate);
  // model_radius_ from certify_epsilon_ and max_abs_input_: the budget on the
  // client's samples carried through the downmix and the resampler.
  void UpdateModelRadius();
  // One frame's mean from its channels' sum (in double): rounded once to float.
  float Mean(double sum) const {
    return static_cast<float>(channels_ == 1 ? sum : sum / channels_);
  }
  // Sorts the labels of one window's scores (order_) and fills the top.
  void FillTop(const float* scores, v1::WindowResult& w);
  v1::WindowResult WindowOf(const Pending& p, const float* scores);

  v1::StreamConfig config_;
  uint32_t channels_ = 1;
  uint64_t max_chunk_samples_ = 0;
  float max_abs_sample_ = 0;
  uint32_t top_k_ = 1;
  std::shared_ptr<const LoadedModel> model_;
  std::unique_ptr<dsp::Resampler> resampler_;
  std::unique_ptr<dsp::StreamingFeatures> features_;     // FIXED_WINDOWS
  std::unique_ptr<dsp::StreamingBeatWindows> beats_;    // BEAT_WINDOWS
  float pcm_scale_ = 1.0f / 32768.0f;                    // INT16 -> value
  float pcm_offset_ = 0.0f;                              // baseline, in INT16 units
  std::unique_ptr<nn::Workspace> workspace_;             // ScoreInline only, made on use
  std::unique_ptr<EventDetector> events_;
  uint64_t events_sent_ = 0;
  std::vector<float> mono_;     // decoded chunk, one value per frame
  size_t mono_pos_ = 0;         // staged up to here
  size_t slice_ = 0;            // frames per Stage()
  // Pending windows: inputs_ and scores_ grow to the most a slice has made.
  std::vector<Pending> pending_;
  std::vector<float> inputs_;
  std::vector<float> scores_;
  std::vector<float> softmax_;  // one window's scores
  std::vector<uint32_t> order_; // label indices, sorted by score
  uint64_t samples_received_ = 0;
  uint64_t windows_sent_ = 0;
  bool input_ended_ = false;
  bool flushed_ = false;
  bool events_finished_ = false;
  // certify_epsilon > 0: front-end bounds, the network's interval bounds, and
  // per pending window its logit bounds (lower then upper, output_size() each).
  float certify_epsilon_ = 0;
  // The L-infinity radius on the model-rate samples the front end sees
  // (certify_epsilon_ through the downmix and the resampler); it grows with
  // max_abs_input_, the largest |decoded sample| of any channel so far.
  float model_radius_ = 0;
  float max_abs_input_ = 0;
  float chunk_peak_ = 0;  // the last decoded chunk's largest |sample|
  dsp::ResamplerBound resampler_bound_;
  std::unique_ptr<dsp::LogMelBounds> feature_bounds_;        // FIXED_WINDOWS
  std::unique_ptr<nn::IntervalWorkspace> interval_ws_;
  std::vector<float> recent_;        // FIXED_WINDOWS: ring of model-rate samples
  uint64_t recent_count_ = 0;        // samples ever put in recent_
  std::vector<float> window_samples_, in_lo_, in_hi_;
  std::vector<float> logit_bounds_;  // grows like inputs_
};

}  // namespace wavepool::server
