#include "nn/kernels.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "nn/blur_axis.h"
#include "nn/valid_range.h"

namespace wavepool::nn {
namespace {

using internal::Valid;
using internal::ValidRange;

}  // namespace

void BinomialTaps(uint32_t taps, float* out) {
  // Pascal's row in double, exact for these sizes, then normalised to sum 1.
  double row[kMaxBlurTaps] = {1};
  for (uint32_t n = 1; n < taps; ++n) {
    for (uint32_t k = n; k > 0; --k) row[k] += row[k - 1];
  }
  const double sum = std::ldexp(1.0, static_cast<int>(taps) - 1);
  for (uint32_t k = 0; k < taps; ++k) out[k] = static_cast<float>(row[k] / sum);
}

Pool2dParams BlurStage(const Pool2dParams& p) {
  Pool2dParams q = p;
  q.c = 1;
  if (p.blur_h > 1) q.stride_h = 1;
  if (p.blur_w > 1) q.stride_w = 1;
  q.blur_h = q.blur_w = 1;
  return q;
}

size_t BlurPoolScratch(const Pool2dParams& p) {
  const Pool2dParams q = BlurStage(p);
  return size_t{q.out_h()} * q.out_w() + size_t{q.out_h()} * p.out_w();
}

void BlurPool2d(PoolKind kind, const Pool2dParams& p, int batch, const float* in, float* out,
                float* scratch) {
  const Pool2dParams q = BlurStage(p);
  const uint32_t sh = q.out_h(), sw = q.out_w();  // stage size
  const uint32_t oh = p.out_h(), ow = p.out_w();
  const internal::BlurAxis bt = internal::MakeBlurAxis(p.blur_w, p.stride_w);
  const internal::BlurAxis bf = internal::MakeBlurAxis(p.blur_h, p.stride_h);
  float* stage = scratch;
  float* rows = scratch + size_t{sh} * sw;  // [sh, ow] after the time pass
  const size_t in_plane = size_t{p.in_h} * p.in_w;
  const size_t planes = size_t(batch) * p.c;
  for (size_t pl = 0; pl < planes; ++pl) {
    if (kind == PoolKind::kMax) {
      MaxPool2d(q, 1, in + pl * in_plane, stage);
    } else {
      AvgPool2d(q, 1, in + pl * in_plane, stage);
    }
    for (uint32_t y = 0; y < sh; ++y) {
      const float* s = stage + size_t{y} * sw;
      float* r = rows + size_t{y} * ow;
      for (uint32_t ox = 0; ox < ow; ++ox) {
        const int64_t x0 = int64_t{ox} * bt.stride - bt.pad_before;
        float acc = 0.0f;
        for (uint32_t k = 0; k < bt.taps; ++k) acc += bt.f[k] * s[internal::Reflect(x0 + k, sw)];
        r[ox] = acc;
      }
    }
    float* o = out + pl * size_t{oh} * ow;
    for (uint32_t oy = 0; oy < oh; ++oy) {
      const int64_t y0 = int64_t{oy} * bf.stride - bf.pad_before;
      float* orow = o + size_t{oy} * ow;
      std::fill(orow, orow + ow, 0.0f);
      for (uint32_t k = 0; k < bf.taps; ++k) {
        const float f = bf.f[k];
        const float* r = rows + size_t(internal::Reflect(y0 + k, sh)) * ow;
        for (uint32_t ox = 0; ox < ow; ++ox) orow[ox] += f * r[ox];
      }
    }
  }
}

uint32_t ConvOutSize(uint32_t in, uint32_t kernel, uint32_t stride, uint32_t pad, uint32_t dilation) {
  if (stride == 0 || kernel == 0) return 0;
  const int64_t span = int64_t{dilation} * (int64_t{kernel} - 1) + 1;
  const int64_t padded = int64_t{in} + 2 * int64_t{pad};
  if (padded < span) return 0;
  const int64_t out = (padded - span) / stride + 1;
  return out > UINT32_MAX ? UINT32_MAX : static_cast<uint32_t>(out);
}

uint32_t PoolOutSize(uint32_t in, uint32_t kernel, uint32_t stride, uint32_t pad) {
  return ConvOutSize(in, kernel, stride, pad, 1);
}

void Conv2d(const Conv2dParams& p, int batch, const float* in, const float* weight,
            const float* bias, float* out) {
  const uint32_t oh = p.out_h(), ow = p.out_w();
  const size_t in_plane = size_t{p.in_h} * p.in_w;
  const size_t out_plane = size_t{oh} * ow;
  const size_t taps = size_t{p.kernel_h} * p.kernel_w;
  for (int b = 0; b < batch; ++b) {
    for (uint32_t oc = 0; oc < p.out_c; ++oc) {
      float* o = out + (size_t(b) * p.out_c + oc) * out_plane;
      std::fill(o, o + out_plane, bias != nullptr ? bias[oc] : 0.0f);
      for (uint32_t ic = 0; ic < p.in_c; ++ic) {
        const float* x = in + (size_t(b) * p.in_c + ic) * in_plane;
        const float* wk = weight + (size_t{oc} * p.in_c + ic) * taps;
        for (uint32_t ky = 0; ky < p.kernel_h; ++ky) {
          const int64_t off_h = int64_t{ky} * p.dilation_h - p.pad_h;
          const ValidRange rows = Valid(off_h, p.stride_h, p.in_h, oh);
          for (uint32_t kx = 0; kx < p.kernel_w; ++kx) {
            const float wv = wk[size_t{ky} * p.kernel_w + kx];
            const int64_t off_w = int64_t{kx} * p.dilation_w - p.pad_w;
            const ValidRange cols = Valid(off_w, p.stride_w, p.in_w, ow);
            const uint32_t n = cols.end - cols.begin;
            if (n == 0) continue;
            for (uint32_t oy = rows.begin; oy < rows.end; ++oy) {
              const int64_t iy = int64_t{oy} * p.stride_h + off_h;
              const float* xr = x + (iy * p.in_w + int64_t{cols.begin} * p.stride_w + off_w);
              float* orow = o + size_t{oy} * ow + cols.begin;
              if (p.stride_w == 1) {
                // Contiguous in both arrays: the loop the compiler vectorises.
                for (uint32_t i = 0; i < n; ++i) orow[i] += wv * xr[i];
              } else {
                const uint32_t s = p.stride_w;
                for (uint32_t i = 0; i < n; ++i) orow[i] += wv * xr[size_t{i} * s];
              }
            }
          }
        }
      }
    }
  }
}

void MaxPool2dReference(const Pool2dParams& p, int batch, const float* in, float* out) {
  const uint32_t oh = p.out_h(), ow = p.out_w();
  const size_t in_plane = size_t{p.in_h} * p.in_w;
  const size_t planes = size_t(batch) * p.c;
  for (size_t pl = 0; pl < planes; ++pl) {
    const float* x = in + pl * in_plane;
    float* o = out + pl * size_t{oh} * ow;
    for (uint32_t oy = 0; oy < oh; ++oy) {
      const int64_t y0 = int64_t{oy} * p.stride_h - p.pad_h;
      const int64_t ya = std::max<int64_t>(y0, 0);
      const int64_t yb = std::min<int64_t>(y0 + p.kernel_h, p.in_h);
      for (uint32_t ox = 0; ox < ow; ++ox) {
        const int64_t x0 = int64_t{ox} * p.stride_w - p.pad_w;
        const int64_t xa = std::max<int64_t>(x0, 0);
        const int64_t xb = std::min<int64_t>(x0 + p.kernel_w, p.in_w);
        // pad < kernel guarantees at least one real cell. Scan is row-major
        // (frequency outer, time inner) and `>` is strict: the first maximum wins.
        float m = x[ya * p.in_w + xa];
        for (int64_t y = ya; y < yb; ++y) {
          const float* row = x + y * p.in_w;
          for (int64_t xx = xa; xx < xb; ++xx) {
            if (row[xx] > m) m = row[xx];
          }
        }
        o[size_t{oy} * ow + ox] = m;
      }
    }
  }
}

void MaxPool2d(const Pool2dParams& p, int batch, const float* in, float* out) {
  if (p.pad_h != 0 || p.pad_w != 0) {
    MaxPool2dReference(p, batch, in, out);
    return;
  }
  // No padding: every window lies inside the input. The same fold as the
  // reference (cells in row-major order, `v > m` keeps the first maximum), but
  // with the output row innermost, so the compiler vectorises across outputs.
  const uint32_t oh = p.out_h(), ow = p.out_w(), sw = p.stride_w;
  const size_t in_plane = size_t{p.in_h} * p.in_w;
  const size_t planes = size_t(batch) * p.c;
  for (size_t pl = 0; pl < planes; ++pl) {
    const float* x = in + pl * in_plane;
    for (uint32_t oy = 0; oy < oh; ++oy) {
      float* __restrict o = out + (pl * oh + oy) * ow;
      const float* top = x + size_t{oy} * p.stride_h * p.in_w;
      for (uint32_t ox = 0; ox < ow; ++ox) o[ox] = top[size_t{ox} * sw];
      for (uint32_t ky = 0; ky < p.kernel_h; ++ky) {
        const float* row = top + size_t{ky} * p.in_w;
        for (uint32_t kx = ky == 0 ? 1 : 0; kx < p.kernel_w; ++kx) {
          for (uint32_t ox = 0; ox < ow; ++ox) {
            const float v = row[size_t{ox} * sw + kx];
            o[ox] = v > o[ox] ? v : o[ox];
          }
        }
      }
    }
  }
}

void AvgPool2d(const Pool2dParams& p, int batch, const float* in, float* out) {
  const uint32_t oh = p.out_h(), ow = p.out_w();
  const size_t in_plane = size_t{p.in_h} * p.in_w;
  const size_t planes = size_t(batch) * p.c;
  const float full = static_cast<float>(p.kernel_h) * static_cast<float>(p.kernel_w);
  for (size_t pl = 0; pl < planes; ++pl) {
    const float* x = in + pl * in_plane;
    float* o = out + pl * size_t{oh} * ow;
    for (uint32_t oy = 0; oy < oh; ++oy) {
      const int64_t y0 = int64_t{oy} * p.stride_h - p.pad_h;
      const int64_t ya = std::max<int64_t>(y0, 0);
      const int64_t yb = std::min<int64_t>(y0 + p.kernel_h, p.in_h);
      for (uint32_t ox = 0; ox < ow; ++ox) {
        const int64_t x0 = int64_t{ox} * p.stride_w - p.pad_w;
        const int64_t xa = std::max<int64_t>(x0, 0);
        const int64_t xb = std::min<int64_t>(x0 + p.kernel_w, p.in_w);
        float sum = 0.0f;
        for (int64_t y = ya; y < yb; ++y) {
          const float* row = x + y * p.in_w;
          for (int64_t xx = xa; xx < xb; ++xx) sum += row[xx];
        }
        const float count =
            p.count_include_pad ? full : static_cast<float>((yb - ya) * (xb - xa));
        o[size_t{oy} * ow + ox] = sum / count;
      }
    }
  }
}

void GlobalAvgPool(uint32_t c, uint32_t hw, int batch, const float* in, float* out) {
  const size_t planes = size_t(batch) * c;
  for (size_t pl = 0; pl < planes; ++pl) {
    const float* x = in + pl * hw;
    // Double accumulator: a 40 x 100 plane summed in float loses ~3 digits.
    double sum = 0.0;
    for (uint32_t i = 0; i < hw; ++i) sum += x[i];
    out[pl] = static_cast<float>(sum / hw);
  }
}

void GlobalMaxPool(uint32_t c, uint32_t hw, int batch, const float* in, float* out) {
  const size_t planes = size_t(batch) * c;
  for (size_t pl = 0; pl < planes; ++pl) {
    const float* x = in + pl * hw;
    float m = x[0];
    for (uint32_t i = 1; i < hw; ++i) {
      if (x[i] > m) m = x[i];
    }
    out[pl] = m;
  }
}

void Dense(uint32_t in_f, uint32_t out_f, int batch, const float* in, const float* weight,
           const float* bias, float* out) {
  // Eight independent partial sums: without -ffast-math the compiler may not
  // reorder one float sum, but it does vectorise eight lanes written this way.
  constexpr uint32_t kLanes = 8;
  const uint32_t head = in_f - in_f % kLanes;
  for (int b = 0; b < batch; ++b) {
    const float* x = in + size_t(b) * in_f;
    for (uint32_t o = 0; o < out_f; ++o) {
      const float* w = weight + size_t{o} * in_f;
      float acc[kLanes] = {};
      for (uint32_t i = 0; i < head; i += kLanes) {
        for (uint32_t l = 0; l < kLanes; ++l) acc[l] += w[i + l] * x[i + l];
      }
      float sum = 0.0f;
      for (uint32_t i = head; i < in_f; ++i) sum += w[i] * x[i];
      for (uint32_t l = 0; l < kLanes; ++l) sum += acc[l];
      out[size_t(b) * out_f + o] = sum + (bias != nullptr ? bias[o] : 0.0f);
    }
  }
}

void Relu(size_t n, float* x) {
  for (size_t i = 0; i < n; ++i) x[i] = x[i] > 0.0f ? x[i] : 0.0f;
}

void ChannelAffine(uint32_t c, uint32_t hw, int batch, const float* scale, const float* shift,
                   float* x) {
  for (int b = 0; b < batch; ++b) {
    for (uint32_t ch = 0; ch < c; ++ch) {
      float* p = x + (size_t(b) * c + ch) * hw;
      const float s = scale[ch], t = shift[ch];
      for (uint32_t i = 0; i < hw; ++i) p[i] = p[i] * s + t;
    }
  }
}

void Softmax(size_t n, float* x) {
  if (n == 0) return;
  const float m = *std::max_element(x, x + n);
  double sum = 0.0;
  for (size_t i = 0; i < n; ++i) {
    x[i] = std::exp(x[i] - m);
    sum += x[i];
  }
  const float inv = static_cast<float>(1.0 / sum);
  for (size_t i = 0; i < n; ++i) x[i] *= inv;
}

}  // namespace wavepool::nn
