// The fast path for 2-D convolution: im2col, then one single-precision GEMM
// per window from OpenBLAS (Debian's build picks its kernel for the CPU at run
// time — SSE2 up to AVX-512 — so the portable binary still uses the wide units
// where they exist). nn::Conv2d (kernels.h) stays the reference the tests
// compare this against.
#pragma once

#include <cstddef>

#include "nn/kernels.h"

namespace wavepool::nn {

// Floats of scratch Conv2dGemm needs (one window's im2col matrix,
// in_c * kernel_h * kernel_w rows by out_h * out_w columns); 0 when the input
// already is that matrix (1x1 kernel, stride 1, no padding).
size_t Conv2dGemmScratch(const Conv2dParams& p);

// Same contract as Conv2d; `scratch` holds Conv2dGemmScratch(p) floats.
// Thread-safe: OpenBLAS is held to one thread (our workers are the threads).
void Conv2dGemm(const Conv2dParams& p, int batch, const float* in, const float* weight,
                const float* bias, float* out, float* scratch);

}  // namespace wavepool::nn
