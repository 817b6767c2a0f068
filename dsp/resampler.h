// Streaming sample-rate conversion with libsoxr (high quality, linear phase).
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <vector>

#include "absl/functional/function_ref.h"
#include "absl/status/statusor.h"

// libsoxr's handle (soxr_t is `struct soxr*`), declared at global scope: an
// elaborated `struct soxr*` inside the namespace would name a different type.
struct soxr;

namespace wavepool::dsp {

// Mono. Input is fed to soxr in fixed blocks of block_size() samples whatever
// the caller's chunking, so the output is bit-identical for any split of the
// same input. soxr compensates its filter delay: output sample m corresponds to
// input time m / output_rate. When the rates are equal, samples pass through
// untouched. Buffers are allocated at Create.
class Resampler {
 public:
  using OutputFn = absl::FunctionRef<void(std::span<const float> out)>;

  static absl::StatusOr<std::unique_ptr<Resampler>> Create(double input_rate_hz,
                                                          double output_rate_hz);
  ~Resampler();

  absl::Status Push(std::span<const float> in, OutputFn on_output);
  // Flushes the tail (soxr's delay line) and ends the stream.
  absl::Status Finish(OutputFn on_output);

  bool passthrough() const { return soxr_ == nullptr; }
  size_t block_size() const { return block_.size(); }
  double input_rate_hz() const { return in_rate_; }
  double output_rate_hz() const { return out_rate_; }

 private:
  Resampler(double in_rate, double out_rate);
  absl::Status ProcessBlock(const float* in, size_t n, OutputFn on_output);

  double in_rate_;
  double out_rate_;
  ::soxr* soxr_ = nullptr;
  std::vector<float> block_;
  size_t block_fill_ = 0;
  std::vector<float> out_;
};

}  // namespace wavepool::dsp
