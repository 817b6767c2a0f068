// The audio front end: log-mel features, frame by frame, and the streaming
// wrapper that cuts a stream into windows of frames.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

#include "absl/functional/function_ref.h"
#include "absl/status/statusor.h"
#include "dsp/mel.h"
#include "dsp/stft.h"

namespace wavepool::dsp {

enum class FeatureNorm {
  kNone,
  kPerFrame,   // each frame's bands to zero mean, unit variance (std + 1e-5)
  kPerWindow,  // all of a window's values to zero mean, unit variance (std + 1e-5)
  kPerBandMean,  // each band's mean over the window removed, then all values
                 // divided by their std (+ 1e-5): removes a channel's colouring
};

struct LogMelOptions {
  double sample_rate_hz = 8000;
  size_t frame_length = 200;
  size_t frame_hop = 80;
  size_t fft_size = 256;  // >= frame_length; FftSizeIsAllocationFree (even, factors <= 7)
  WindowType window = WindowType::kHann;
  bool power = true;
  size_t num_bands = 40;
  double f_min_hz = 20;
  double f_max_hz = 4000;
  MelScaleType scale = MelScaleType::kSlaney;
  float log_floor = 1e-10f;  // features are ln(max(mel, log_floor))

  StftOptions stft() const;
  MelOptions mel() const;
  absl::Status Validate() const;
};

// The pure per-frame function: frame_length samples in, num_bands log-mel
// values out. Owns scratch (sized at Create); not thread-safe.
class LogMelFrame {
 public:
  static absl::StatusOr<LogMelFrame> Create(const LogMelOptions& options);
  void Compute(std::span<const float> frame, std::span<float> out);
  const LogMelOptions& options() const { return options_; }
  const MelFilterbank& filterbank() const { return mel_; }

 private:
  LogMelFrame(const LogMelOptions& o, StftFrame stft, MelFilterbank mel);
  LogMelOptions options_;
  StftFrame stft_;
  MelFilterbank mel_;
  std::vector<float> spectrum_;
};

struct FeatureWindowOptions {
  LogMelOptions log_mel;
  // Samples; >= frame_length. A window holds every frame that lies wholly
  // inside it: frames_per_window() = (window_length - frame_length) / frame_hop
  // + 1, rounded down. When window_length - frame_length is not a multiple of
  // frame_hop (the defaults: 7800 / 80 = 97.5) the window's last
  // (window_length - frame_length) % frame_hop samples (40) belong to no frame
  // of that window; the window is still complete only once they arrive.
  size_t window_length = 8000;
  size_t window_hop = 2000;     // samples; a multiple of frame_hop, <= window_length
  FeatureNorm norm = FeatureNorm::kNone;

  size_t frames_per_window() const;
  // Values in one window: num_bands * frames_per_window, band-major
  // (value[band * frames + t]).
  size_t window_values() const;
  absl::Status Validate() const;
};

// Normalises one window of band-major features in place.
void NormalizeWindow(FeatureNorm norm, size_t bands, size_t frames, std::span<float> values);

// Whole-signal path: the features of every complete window of `signal`, plus a
// zero-padded tail window if samples remain after the last complete one (or the
// signal is shorter than a window). Returns windows x window_values(), and sets
// *padded_last when the last window is the padded one. Independent of the
// streaming path's buffering: the reference the streaming path must equal.
absl::StatusOr<std::vector<std::vector<float>>> FeatureWindows(
    const FeatureWindowOptions& options, std::span<const float> signal, bool* padded_last);

// The streaming wrapper. Each STFT frame is computed once, when its last sample
// arrives, and kept in a ring while any window still needs it; overlapping
// windows reuse frames. Output is identical (bit for bit) however the stream is
// chunked, and identical to FeatureWindows(). All memory is allocated at Create.
class StreamingFeatures {
 public:
  // index: 0-based window number; window i covers samples
  // [i * window_hop, i * window_hop + window_length). features: window_values()
  // values, valid only during the call.
  using WindowFn = absl::FunctionRef<void(uint64_t index, std::span<const float> features)>;

  static absl::StatusOr<StreamingFeatures> Create(const FeatureWindowOptions& options);

  void Push(std::span<const float> samples, WindowFn on_window);
  // Ends the stream: if samples remain after the last complete window (or no
  // window was complete and any sample arrived), emits one last window with the
  // missing samples as zeros and returns true. Afterwards the object is reset.
  bool Finish(WindowFn on_window);

  uint64_t samples_pushed() const { return samples_pushed_; }
  uint64_t windows_emitted() const { return next_window_; }
  const FeatureWindowOptions& options() const { return options_; }

 private:
  StreamingFeatures(const FeatureWindowOptions& o, LogMelFrame frame);
  // Handles the events at samples_pushed_: computes the frame and emits the
  // window whose last sample this is, if any.
  void ComputeReadyFrames(WindowFn on_window);
  // Computes frame `frame` from frame_length samples into its ring slot.
  void StoreFrame(uint64_t frame, std::span<const float> samples);
  void EmitWindow(uint64_t index, WindowFn on_window);
  void Reset();

  FeatureWindowOptions options_;
  LogMelFrame frame_;
  size_t frames_per_window_ = 0;
  size_t frames_per_hop_ = 0;
  // Samples not yet consumed by a complete frame; pending_[0] is sample
  // next_frame_ * frame_hop.
  std::vector<float> pending_;
  size_t pending_size_ = 0;
  // Ring of computed frames (num_bands each), capacity ring_frames_.
  std::vector<float> ring_;
  size_t ring_frames_ = 0;
  std::vector<float> window_;    // assembled window, window_values()
  std::vector<float> scratch_;   // frame_length samples for padded frames
  uint64_t samples_pushed_ = 0;
  uint64_t next_frame_ = 0;      // frames computed so far
  uint64_t next_window_ = 0;     // windows emitted so far
};

}  // namespace wavepool::dsp
