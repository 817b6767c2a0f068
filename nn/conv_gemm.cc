#include "nn/conv_gemm.h"

#include <cblas.h>

#include <algorithm>
#include <cstring>
#include <mutex>

#include "nn/valid_range.h"

namespace wavepool::nn {
namespace {

using internal::Valid;
using internal::ValidRange;

bool IsPointwise(const Conv2dParams& p) {
  return p.kernel_h == 1 && p.kernel_w == 1 && p.stride_h == 1 && p.stride_w == 1 &&
         p.pad_h == 0 && p.pad_w == 0;
}

// One window's input [in_c, in_h, in_w] -> col [in_c * kh * kw, oh * ow]:
// row (c, ky, kx), column (oy, ox) holds the input cell that tap sees, or 0
// where it falls in the padding.
void Im2Col(const Conv2dParams& p, const float* x, float* col) {
  const uint32_t oh = p.out_h(), ow = p.out_w();
  const size_t n = size_t{oh} * ow;
  for (uint32_t c = 0; c < p.in_c; ++c) {
    const float* plane = x + size_t{c} * p.in_h * p.in_w;
    for (uint32_t ky = 0; ky < p.kernel_h; ++ky) {
      const int64_t off_h = int64_t{ky} * p.dilation_h - p.pad_h;
      const ValidRange rows = Valid(off_h, p.stride_h, p.in_h, oh);
      for (uint32_t kx = 0; kx < p.kernel_w; ++kx) {
        float* row = col + ((size_t{c} * p.kernel_h + ky) * p.kernel_w + kx) * n;
        const int64_t off_w = int64_t{kx} * p.dilation_w - p.pad_w;
        const ValidRange cols = Valid(off_w, p.stride_w, p.in_w, ow);
        std::fill(row, row + size_t{rows.begin} * ow, 0.0f);
        for (uint32_t oy = rows.begin; oy < rows.end; ++oy) {
          float* r = row + size_t{oy} * ow;
          std::fill(r, r + cols.begin, 0.0f);
          const float* xr = plane + (int64_t{oy} * p.stride_h + off_h) * p.in_w + off_w;
          if (p.stride_w == 1) {
            std::memcpy(r + cols.begin, xr + cols.begin, (cols.end - cols.begin) * sizeof(float));
          } else {
            for (uint32_t ox = cols.begin; ox < cols.end; ++ox) {
              r[ox] = xr[int64_t{ox} * p.stride_w];
            }
          }
          std::fill(r + cols.end, r + ow, 0.0f);
        }
        std::fill(row + size_t{rows.end} * ow, row + n, 0.0f);
      }
    }
  }
}

void UseOneBlasThread() {
  static std::once_flag once;
  std::call_once(once, [] { openblas_set_num_threads(1); });
}

}  // namespace

size_t Conv2dGemmScratch(const Conv2dParams& p) {
  if (IsPointwise(p)) return 0;
  return size_t{p.in_c} * p.kernel_h * p.kernel_w * p.out_h() * p.out_w();
}

void Conv2dGemm(const Conv2dParams& p, int batch, const float* in, const float* weight,
                const float* bias, float* out, float* scratch) {
  UseOneBlasThread();
  const int m = static_cast<int>(p.out_c);
  const int n = static_cast<int>(p.out_h() * p.out_w());
  const int k = static_cast<int>(p.in_c * p.kernel_h * p.kernel_w);
  const size_t in_size = size_t{p.in_c} * p.in_h * p.in_w;
  const size_t out_size = size_t{p.out_c} * static_cast<size_t>(n);
  const bool pointwise = IsPointwise(p);
  for (int b = 0; b < batch; ++b) {
    const float* x = in + static_cast<size_t>(b) * in_size;
    float* o = out + static_cast<size_t>(b) * out_size;
    const float* col = x;
    if (!pointwise) {
      Im2Col(p, x, scratch);
      col = scratch;
    }
    float beta = 0.0f;
    if (bias != nullptr) {
      for (int oc = 0; oc < m; ++oc) std::fill(o + size_t(oc) * n, o + size_t(oc + 1) * n, bias[oc]);
      beta = 1.0f;
    }
    // out[m, n] = weight[m, k] * col[k, n] (+ the bias already there).
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, m, n, k, 1.0f, weight, k, col, n,
                beta, o, n);
  }
}

}  // namespace wavepool::nn
