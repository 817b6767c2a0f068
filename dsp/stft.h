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

// True for the FFT sizes whose FFTW transform allocates nothing while it runs:
// even, with no prime factor above 7 (200, 256, 400, 480, 512, ...). FFTW
// 3.3.10 with FFTW_ESTIMATE was measured allocation-free for all 1083 such
// sizes up to 2^20; odd sizes from 17 up and most sizes with a prime factor
// of 17 or more malloc scratch inside every transform. LogMelOptions accepts
// only these sizes, so the streaming front end never touches the heap.
bool FftSizeIsAllocationFree(size_t fft_size);

// Computes the spectrum of one frame. Owns its FFT buffers (allocated at
// Create, never again; FFTW itself allocates nothing inside Compute when
// FftSizeIsAllocationFree(fft_size)). Not thread-safe: one per stream or
// thread; the FFTW plan behind it is shared and thread-safe (new-array
// execute).
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
