// One STFT frame with FFTW: window, zero-pad, real-to-complex FFT, power or
// magnitude. Plans are created once per FFT size and shared by all threads.
#pragma once

#include <cstddef>
#include <memory>
#include <span>

#include "absl/status/statusor.h"
#include "dsp/window_function.h"

namespace wavepool::dsp {

struct StftOptions {
  size_t frame_length = 400;  // samples per frame
  size_t fft_size = 512;      // >= frame_length, frames are zero-padded to it
  WindowType window = WindowType::kHann;
  bool power = true;          // true: |X|^2, false: |X|

  size_t num_bins() const { return fft_size / 2 + 1; }
  absl::Status Validate() const;
};

// Computes the spectrum of one frame. Owns its FFT buffers (allocated at
// Create, never again). Not thread-safe: one per stream or thread; the FFTW
// plan behind it is shared and thread-safe (new-array execute).
class StftFrame {
 public:
  static absl::StatusOr<StftFrame> Create(const StftOptions& options);

  StftFrame(StftFrame&&) noexcept;
  StftFrame& operator=(StftFrame&&) noexcept;
  ~StftFrame();

  // frame.size() == frame_length, spectrum.size() == num_bins().
  void Compute(std::span<const float> frame, std::span<float> spectrum);

  const StftOptions& options() const { return options_; }

 private:
  struct Buffers;
  StftFrame(const StftOptions& options, std::unique_ptr<Buffers> buffers);
  StftOptions options_;
  std::unique_ptr<Buffers> buffers_;
};

}  // namespace wavepool::dsp
