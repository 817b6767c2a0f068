// Internal to nn/: which output positions of a strided, padded window see a
// real input cell. Shared by the forward kernels and their backward passes,
// which must agree exactly on which taps are real.
#pragma once

#include <algorithm>
#include <cstdint>

namespace wavepool::nn::internal {

// Range [begin, end) of output positions o along one axis whose input position
// o * stride + offset lies in [0, in). Lets inner loops run without
// per-element bounds checks (zero padding contributes nothing to a sum).
struct ValidRange {
  uint32_t begin = 0, end = 0;
};

inline ValidRange Valid(int64_t offset, uint32_t stride, uint32_t in, uint32_t out) {
  const int64_t s = stride;
  // Smallest o with o * s + offset >= 0.
  const int64_t first = offset >= 0 ? 0 : (-offset + s - 1) / s;
  // Largest o with o * s + offset <= in - 1, plus one.
  const int64_t last_num = int64_t{in} - 1 - offset;
  const int64_t end = last_num < 0 ? 0 : last_num / s + 1;
  ValidRange r;
  r.begin = static_cast<uint32_t>(std::min<int64_t>(first, out));
  r.end = static_cast<uint32_t>(std::clamp<int64_t>(end, r.begin, out));
  return r;
}

}  // namespace wavepool::nn::internal
