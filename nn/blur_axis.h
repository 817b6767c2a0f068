// Internal to nn/: one axis of the anti-aliasing blur (kernels.h, BlurPool2d),
// shared by the forward kernel and its backward pass, which must agree exactly
// on the taps and on where the reflected padding reads.
#pragma once

#include <cstdint>

#include "nn/kernels.h"

namespace wavepool::nn::internal {

// The blur along one axis: out[o] = sum_k f[k] in[Reflect(o stride - pad_before + k)].
// The default (1 tap of weight 1, stride 1) is the identity, for an unblurred axis.
struct BlurAxis {
  uint32_t taps = 1;
  uint32_t stride = 1;
  uint32_t pad_before = 0;
  float f[kMaxBlurTaps] = {1.0f};
};

// Index i mirrored into [0, n) without repeating the edge (numpy "reflect",
// torch ReflectionPad): -1 -> 1, n -> n - 2. Folded again for any i, so it is
// defined for pads longer than the axis; n == 1 gives 0.
inline int64_t Reflect(int64_t i, int64_t n) {
  // Inside: the common case, without the division below (a 64-bit modulo per
  // tap cost more than the rest of the blur).
  if (i >= 0 && i < n) return i;
  if (n <= 1) return 0;
  const int64_t period = 2 * (n - 1);
  i %= period;
  if (i < 0) i += period;
  return i < n ? i : period - i;
}

// taps <= 1: the identity axis. Else the binomial filter of `taps` taps applied
// every `stride` positions, padded by floor((taps - 1) / 2) before (and
// ceil((taps - 1) / 2) after, implied by the output size), as the paper's code.
inline BlurAxis MakeBlurAxis(uint32_t taps, uint32_t stride) {
  BlurAxis a;
  if (taps <= 1) return a;
  a.taps = taps;
  a.stride = stride;
  a.pad_before = (taps - 1) / 2;
  BinomialTaps(taps, a.f);
  return a;
}

}  // namespace wavepool::nn::internal
