#include "nn/backward.h"

#include <algorithm>
#include <cmath>

#include "nn/blur_axis.h"
#include "nn/valid_range.h"

namespace wavepool::nn {
namespace {

// Determinism: every reduction below runs in one fixed, data-independent order
// (no threads, no -ffast-math), so the same inputs give bit-identical outputs.
// Parameter gradients are summed over the whole call first and added to the
// caller's buffer once, so dweight += G with G independent of dweight's
// contents (calling twice on a zeroed buffer gives exactly 2 G).

using internal::Valid;
using internal::ValidRange;

// A float sum kept in eight independent lanes plus a scalar tail. Without
// -ffast-math GCC may not reorder one running sum, but it vectorises eight
// lanes written this way (two SSE registers); the final fold is in a fixed order.
constexpr uint32_t kLanes = 8;

struct LaneSum {
  float lane[kLanes] = {};
  float tail = 0.0f;

  void Add(const LaneSum& o) {
    for (uint32_t l = 0; l < kLanes; ++l) lane[l] += o.lane[l];
    tail += o.tail;
  }
  float Total() const {
    const float a = (lane[0] + lane[4]) + (lane[1] + lane[5]);
    const float b = (lane[2] + lane[6]) + (lane[3] + lane[7]);
    return (a + b) + tail;
  }
};

// acc += sum_i d[i] * x[i * stride], i < n.
inline void Dot(const float* d, const float* x, size_t n, uint32_t stride, LaneSum& acc) {
  const size_t head = n - n % kLanes;
  if (stride == 1) {
    for (size_t i = 0; i < head; i += kLanes) {
      for (uint32_t l = 0; l < kLanes; ++l) acc.lane[l] += d[i + l] * x[i + l];
    }
    for (size_t i = head; i < n; ++i) acc.tail += d[i] * x[i];
  } else {
    for (size_t i = 0; i < head; i += kLanes) {
      for (uint32_t l = 0; l < kLanes; ++l) acc.lane[l] += d[i + l] * x[(i + l) * stride];
    }
    for (size_t i = head; i < n; ++i) acc.tail += d[i] * x[i * stride];
  }
}

// acc += sum_i d[i], i < n.
inline void Sum(const float* d, size_t n, LaneSum& acc) {
  const size_t head = n - n % kLanes;
  for (size_t i = 0; i < head; i += kLanes) {
    for (uint32_t l = 0; l < kLanes; ++l) acc.lane[l] += d[i + l];
  }
  for (size_t i = head; i < n; ++i) acc.tail += d[i];
}

// Batch-norm statistics reduce over batch * H * W values per channel (~125k
// for a [16, 40, 98] activation at batch 32), where a float sum loses ~3
// digits; as GlobalAvgPool, they accumulate in double. The cost is O(values),
// negligible next to the convolutions, and four lanes break the add latency chain.
constexpr uint32_t kLanesD = 4;

struct DoubleSum {
  double lane[kLanesD] = {};
  double Total() const { return (lane[0] + lane[2]) + (lane[1] + lane[3]); }
};

}  // namespace

void Conv2dBackward(const Conv2dParams& p, int batch, const float* in, const float* weight,
                    const float* dout, float* din, float* dweight, float* dbias) {
  const uint32_t oh = p.out_h(), ow = p.out_w();
  const size_t in_plane = size_t{p.in_h} * p.in_w;
  const size_t out_plane = size_t{oh} * ow;
  const size_t taps = size_t{p.kernel_h} * p.kernel_w;
  const auto in_at = [&](int b, uint32_t c) { return (size_t(b) * p.in_c + c) * in_plane; };
  const auto out_at = [&](int b, uint32_t c) { return (size_t(b) * p.out_c + c) * out_plane; };

  if (dbias != nullptr) {
    for (uint32_t oc = 0; oc < p.out_c; ++oc) {
      LaneSum total;
      for (int b = 0; b < batch; ++b) {
        // Per-plane partial sums, then across the batch: two levels keep the
        // float error growing with the plane size, not batch * plane.
        LaneSum plane;
        Sum(dout + out_at(b, oc), out_plane, plane);
        total.Add(plane);
      }
      dbias[oc] += total.Total();
    }
  }

  if (dweight != nullptr) {
    // dw[oc, ic, ky, kx] = sum_{b, oy, ox} dout[b, oc, oy, ox] * x[b, ic, iy, ix].
    // Taps are done in chunks with the batch loop inside, so one sample's two
    // planes (dout[b, oc] and x[b, ic], 2 x 15.7 KB for the [40 x 98] input)
    // stay in L1 across all 9 taps of a 3x3 kernel. The stack holds a chunk's
    // accumulators (32 taps: up to 5x5 or a 1-D kernel of 32 in one pass).
    constexpr size_t kTapChunk = 32;
    for (uint32_t oc = 0; oc < p.out_c; ++oc) {
      for (uint32_t ic = 0; ic < p.in_c; ++ic) {
        float* dw = dweight + (size_t{oc} * p.in_c + ic) * taps;
        for (size_t t0 = 0; t0 < taps; t0 += kTapChunk) {
          const size_t nt = std::min(kTapChunk, taps - t0);
          LaneSum total[kTapChunk];
          for (int b = 0; b < batch; ++b) {
            const float* x = in + in_at(b, ic);
            const float* d = dout + out_at(b, oc);
            for (size_t t = 0; t < nt; ++t) {
              const uint32_t ky = static_cast<uint32_t>((t0 + t) / p.kernel_w);
              const uint32_t kx = static_cast<uint32_t>((t0 + t) % p.kernel_w);
              const int64_t off_h = int64_t{ky} * p.dilation_h - p.pad_h;
              const int64_t off_w = int64_t{kx} * p.dilation_w - p.pad_w;
              const ValidRange rows = Valid(off_h, p.stride_h, p.in_h, oh);
              const ValidRange cols = Valid(off_w, p.stride_w, p.in_w, ow);
              const uint32_t n = cols.end - cols.begin;
              if (n == 0) continue;
              LaneSum plane;
              for (uint32_t oy = rows.begin; oy < rows.end; ++oy) {
                const int64_t iy = int64_t{oy} * p.stride_h + off_h;
                const float* xr = x + (iy * p.in_w + int64_t{cols.begin} * p.stride_w + off_w);
                Dot(d + size_t{oy} * ow + cols.begin, xr, n, p.stride_w, plane);
              }
              total[t].Add(plane);
            }
          }
          for (size_t t = 0; t < nt; ++t) dw[t0 + t] += total[t].Total();
        }
      }
    }
  }

  if (din != nullptr) {
    // The forward's scatter reversed: din[b, ic, iy, ix] += w * dout[b, oc, oy, ox]
    // over the same (tap, oy, ox) pairs. One din plane stays hot while every
    // output channel and tap adds into it; the inner loop runs over output time
    // (contiguous in dout, stride_w apart in din), an axpy with no reduction.
    for (int b = 0; b < batch; ++b) {
      for (uint32_t ic = 0; ic < p.in_c; ++ic) {
        float* g = din + in_at(b, ic);
        std::fill(g, g + in_plane, 0.0f);
        for (uint32_t oc = 0; oc < p.out_c; ++oc) {
          const float* d = dout + out_at(b, oc);
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
                float* gr = g + (iy * p.in_w + int64_t{cols.begin} * p.stride_w + off_w);
                const float* dr = d + size_t{oy} * ow + cols.begin;
                if (p.stride_w == 1) {
                  for (uint32_t i = 0; i < n; ++i) gr[i] += wv * dr[i];
                } else {
                  const uint32_t s = p.stride_w;
                  for (uint32_t i = 0; i < n; ++i) gr[size_t{i} * s] += wv * dr[i];
                }
              }
            }
          }
        }
      }
    }
  }
}

void MaxPool2dBackward(const Pool2dParams& p, int batch, const float* in, const float* dout,
                       float* din) {
  if (din == nullptr) return;
  const uint32_t oh = p.out_h(), ow = p.out_w();
  const size_t in_plane = size_t{p.in_h} * p.in_w;
  const size_t planes = size_t(batch) * p.c;
  std::fill(din, din + planes * in_plane, 0.0f);
  for (size_t pl = 0; pl < planes; ++pl) {
    const float* x = in + pl * in_plane;
    const float* d = dout + pl * size_t{oh} * ow;
    float* g = din + pl * in_plane;
    for (uint32_t oy = 0; oy < oh; ++oy) {
      const int64_t y0 = int64_t{oy} * p.stride_h - p.pad_h;
      const int64_t ya = std::max<int64_t>(y0, 0);
      const int64_t yb = std::min<int64_t>(y0 + p.kernel_h, p.in_h);
      for (uint32_t ox = 0; ox < ow; ++ox) {
        const int64_t x0 = int64_t{ox} * p.stride_w - p.pad_w;
        const int64_t xa = std::max<int64_t>(x0, 0);
        const int64_t xb = std::min<int64_t>(x0 + p.kernel_w, p.in_w);
        // Exactly the forward's scan: start at the first real cell, row-major,
        // strict `>`, so the first maximum (and the forward's NaN behaviour) wins.
        int64_t best = ya * p.in_w + xa;
        float m = x[best];
        for (int64_t y = ya; y < yb; ++y) {
          const float* row = x + y * p.in_w;
          for (int64_t xx = xa; xx < xb; ++xx) {
            if (row[xx] > m) {
              m = row[xx];
              best = y * p.in_w + xx;
            }
          }
        }
        g[best] += d[size_t{oy} * ow + ox];
      }
    }
  }
}

void AvgPool2dBackward(const Pool2dParams& p, int batch, const float* dout, float* din) {
  if (din == nullptr) return;
  const uint32_t oh = p.out_h(), ow = p.out_w();
  const size_t in_plane = size_t{p.in_h} * p.in_w;
  const size_t planes = size_t(batch) * p.c;
  const float full = static_cast<float>(p.kernel_h) * static_cast<float>(p.kernel_w);
  std::fill(din, din + planes * in_plane, 0.0f);
  for (size_t pl = 0; pl < planes; ++pl) {
    const float* d = dout + pl * size_t{oh} * ow;
    float* g = din + pl * in_plane;
    for (uint32_t oy = 0; oy < oh; ++oy) {
      const int64_t y0 = int64_t{oy} * p.stride_h - p.pad_h;
      const int64_t ya = std::max<int64_t>(y0, 0);
      const int64_t yb = std::min<int64_t>(y0 + p.kernel_h, p.in_h);
      for (uint32_t ox = 0; ox < ow; ++ox) {
        const int64_t x0 = int64_t{ox} * p.stride_w - p.pad_w;
        const int64_t xa = std::max<int64_t>(x0, 0);
        const int64_t xb = std::min<int64_t>(x0 + p.kernel_w, p.in_w);
        // The forward's divisor, computed the same way.
        const float count =
            p.count_include_pad ? full : static_cast<float>((yb - ya) * (xb - xa));
        const float v = d[size_t{oy} * ow + ox] / count;
        for (int64_t y = ya; y < yb; ++y) {
          float* row = g + y * p.in_w;
          for (int64_t xx = xa; xx < xb; ++xx) row[xx] += v;
        }
      }
    }
  }
}

void BlurPool2dBackward(PoolKind kind, const Pool2dParams& p, int batch, const float* in,
                        const float* dout, float* din, float* scratch) {
  if (din == nullptr) return;
  const Pool2dParams q = BlurStage(p);
  const uint32_t sh = q.out_h(), sw = q.out_w();
  const uint32_t oh = p.out_h(), ow = p.out_w();
  const internal::BlurAxis bt = internal::MakeBlurAxis(p.blur_w, p.stride_w);
  const internal::BlurAxis bf = internal::MakeBlurAxis(p.blur_h, p.stride_h);
  float* dstage = scratch;
  float* drows = scratch + size_t{sh} * sw;  // [sh, ow]
  const size_t in_plane = size_t{p.in_h} * p.in_w;
  const size_t planes = size_t(batch) * p.c;
  for (size_t pl = 0; pl < planes; ++pl) {
    const float* d = dout + pl * size_t{oh} * ow;
    // Transpose of the frequency pass.
    std::fill(drows, drows + size_t{sh} * ow, 0.0f);
    for (uint32_t oy = 0; oy < oh; ++oy) {
      const int64_t y0 = int64_t{oy} * bf.stride - bf.pad_before;
      const float* drow = d + size_t{oy} * ow;
      for (uint32_t k = 0; k < bf.taps; ++k) {
        const float f = bf.f[k];
        float* r = drows + size_t(internal::Reflect(y0 + k, sh)) * ow;
        for (uint32_t ox = 0; ox < ow; ++ox) r[ox] += f * drow[ox];
      }
    }
    // Transpose of the time pass.
    std::fill(dstage, dstage + size_t{sh} * sw, 0.0f);
    for (uint32_t y = 0; y < sh; ++y) {
      const float* r = drows + size_t{y} * ow;
      float* s = dstage + size_t{y} * sw;
      for (uint32_t ox = 0; ox < ow; ++ox) {
        const int64_t x0 = int64_t{ox} * bt.stride - bt.pad_before;
        for (uint32_t k = 0; k < bt.taps; ++k) s[internal::Reflect(x0 + k, sw)] += bt.f[k] * r[ox];
      }
    }
    if (kind == PoolKind::kMax) {
      MaxPool2dBackward(q, 1, in + pl * in_plane, dstage, din + pl * in_plane);
    } else {
      AvgPool2dBackward(q, 1, dstage, din + pl * in_plane);
    }
  }
}

void GlobalAvgPoolBackward(uint32_t c, uint32_t hw, int batch, const float* dout, float* din) {
  if (din == nullptr) return;
  const size_t planes = size_t(batch) * c;
  for (size_t pl = 0; pl < planes; ++pl) {
    const float v = static_cast<float>(double{dout[pl]} / hw);
    std::fill(din + pl * hw, din + (pl + 1) * hw, v);
  }
}

void GlobalMaxPoolBackward(uint32_t c, uint32_t hw, int batch, const float* in,
                           const float* dout, float* din) {
  if (din == nullptr) return;
  const size_t planes = size_t(batch) * c;
  for (size_t pl = 0; pl < planes; ++pl) {
    const float* x = in + pl * hw;
    float* g = din + pl * hw;
    std::fill(g, g + hw, 0.0f);
    if (hw == 0) continue;
    // The forward's scan: start at x[0], strict `>`.
    uint32_t best = 0;
    float m = x[0];
    for (uint32_t i = 1; i < hw; ++i) {
      if (x[i] > m) {
        m = x[i];
        best = i;
      }
    }
    g[best] = dout[pl];
  }
}

void DenseBackward(uint32_t in_f, uint32_t out_f, int batch, const float* in,
                   const float* weight, const float* dout, float* din, float* dweight,
                   float* dbias) {
  if (dbias != nullptr) {
    for (uint32_t o = 0; o < out_f; ++o) {
      float s = 0.0f;
      for (int b = 0; b < batch; ++b) s += dout[size_t(b) * out_f + o];
      dbias[o] += s;
    }
  }
  if (dweight != nullptr) {
    // dw[o, i] = sum_b dout[b, o] x[b, i], summed over the batch in a stack
    // chunk (1 KB) and then added once; the inner loop is a contiguous axpy.
    constexpr uint32_t kChunk = 256;
    float acc[kChunk];
    for (uint32_t o = 0; o < out_f; ++o) {
      float* dw = dweight + size_t{o} * in_f;
      for (uint32_t i0 = 0; i0 < in_f; i0 += kChunk) {
        const uint32_t n = std::min(kChunk, in_f - i0);
        std::fill(acc, acc + n, 0.0f);
        for (int b = 0; b < batch; ++b) {
          const float dv = dout[size_t(b) * out_f + o];
          const float* x = in + size_t(b) * in_f + i0;
          for (uint32_t i = 0; i < n; ++i) acc[i] += dv * x[i];
        }
        for (uint32_t i = 0; i < n; ++i) dw[i0 + i] += acc[i];
      }
    }
  }
  if (din != nullptr) {
    for (int b = 0; b < batch; ++b) {
      float* g = din + size_t(b) * in_f;
      std::fill(g, g + in_f, 0.0f);
      for (uint32_t o = 0; o < out_f; ++o) {
        const float dv = dout[size_t(b) * out_f + o];
        const float* w = weight + size_t{o} * in_f;
        for (uint32_t i = 0; i < in_f; ++i) g[i] += dv * w[i];
      }
    }
  }
}

void ReluBackward(size_t n, const float* x, const float* dout, float* din) {
  if (din == nullptr) return;
  for (size_t i = 0; i < n; ++i) din[i] = x[i] > 0.0f ? dout[i] : 0.0f;
}

void BatchNormTrainForward(uint32_t c, uint32_t hw, int batch, float eps, const float* in,
                           const float* gamma, const float* beta, float* out, float* mean,
                           float* inv_std, float* var) {
  const size_t m = size_t(batch) * hw;
  const size_t head = hw - hw % kLanesD;
  const auto plane = [&](int b, uint32_t ch) { return (size_t(b) * c + ch) * hw; };
  for (uint32_t ch = 0; ch < c; ++ch) {
    if (m == 0) {
      mean[ch] = 0.0f;
      var[ch] = 0.0f;
      inv_std[ch] = static_cast<float>(1.0 / std::sqrt(double{eps}));
      continue;
    }
    DoubleSum sum;
    for (int b = 0; b < batch; ++b) {
      const float* x = in + plane(b, ch);
      for (size_t i = 0; i < head; i += kLanesD) {
        for (uint32_t l = 0; l < kLanesD; ++l) sum.lane[l] += x[i + l];
      }
      for (size_t i = head; i < hw; ++i) sum.lane[0] += x[i];
    }
    const double mu = sum.Total() / static_cast<double>(m);
    // Two passes (mean, then squared deviations): no cancellation.
    DoubleSum sq;
    for (int b = 0; b < batch; ++b) {
      const float* x = in + plane(b, ch);
      for (size_t i = 0; i < head; i += kLanesD) {
        for (uint32_t l = 0; l < kLanesD; ++l) {
          const double dev = x[i + l] - mu;
          sq.lane[l] += dev * dev;
        }
      }
      for (size_t i = head; i < hw; ++i) {
        const double dev = x[i] - mu;
        sq.lane[0] += dev * dev;
      }
    }
    const double v = sq.Total() / static_cast<double>(m);
    const double is = 1.0 / std::sqrt(v + eps);
    mean[ch] = static_cast<float>(mu);
    var[ch] = static_cast<float>(v);
    inv_std[ch] = static_cast<float>(is);
    const float mu_f = mean[ch];
    const float scale = static_cast<float>(gamma[ch] * is);
    const float shift = beta[ch];
    for (int b = 0; b < batch; ++b) {
      const float* x = in + plane(b, ch);
      float* y = out + plane(b, ch);
      for (uint32_t i = 0; i < hw; ++i) y[i] = (x[i] - mu_f) * scale + shift;
    }
  }
}

void BatchNormBackward(uint32_t c, uint32_t hw, int batch, const float* in, const float* gamma,
                       const float* mean, const float* inv_std, const float* dout, float* din,
                       float* dgamma, float* dbeta) {
  // With x^ = (x - mean) inv_std and m = batch * hw values per channel
  // (Ioffe & Szegedy 2015, sec. 3, through the batch mean and variance):
  //   dbeta  = sum dy,   dgamma = sum dy x^,
  //   dx     = gamma inv_std (dy - dbeta / m - x^ dgamma / m).
  const size_t m = size_t(batch) * hw;
  const size_t head = hw - hw % kLanesD;
  const auto plane = [&](int b, uint32_t ch) { return (size_t(b) * c + ch) * hw; };
  for (uint32_t ch = 0; ch < c; ++ch) {
    const double mu = mean[ch], is = inv_std[ch];
    DoubleSum sdy, sdyx;
    for (int b = 0; b < batch; ++b) {
      const float* x = in + plane(b, ch);
      const float* dy = dout + plane(b, ch);
      for (size_t i = 0; i < head; i += kLanesD) {
        for (uint32_t l = 0; l < kLanesD; ++l) {
          sdy.lane[l] += dy[i + l];
          sdyx.lane[l] += dy[i + l] * ((x[i + l] - mu) * is);
        }
      }
      for (size_t i = head; i < hw; ++i) {
        sdy.lane[0] += dy[i];
        sdyx.lane[0] += dy[i] * ((x[i] - mu) * is);
      }
    }
    const double sum_dy = sdy.Total(), sum_dyx = sdyx.Total();
    if (dbeta != nullptr) dbeta[ch] += static_cast<float>(sum_dy);
    if (dgamma != nullptr) dgamma[ch] += static_cast<float>(sum_dyx);
    if (din == nullptr || m == 0) continue;
    const float k = static_cast<float>(gamma[ch] * is);
    const float mean_dy = static_cast<float>(sum_dy / static_cast<double>(m));
    const float mean_dyx = static_cast<float>(sum_dyx / static_cast<double>(m));
    const float mu_f = mean[ch], is_f = inv_std[ch];
    for (int b = 0; b < batch; ++b) {
      const float* x = in + plane(b, ch);
      const float* dy = dout + plane(b, ch);
      float* g = din + plane(b, ch);
      for (uint32_t i = 0; i < hw; ++i) {
        const float xh = (x[i] - mu_f) * is_f;
        g[i] = k * ((dy[i] - mean_dy) - xh * mean_dyx);
      }
    }
  }
}

void DropoutApply(size_t n, float rate, const uint8_t* mask, const float* in, float* out) {
  if (out == nullptr) return;
  const float scale = static_cast<float>(1.0 / (1.0 - double{rate}));
  // A select, not in * 0: a dropped cell is exactly 0 even when in is inf / NaN.
  for (size_t i = 0; i < n; ++i) out[i] = mask[i] != 0 ? in[i] * scale : 0.0f;
}

double SoftmaxCrossEntropy(uint32_t classes, int batch, const float* logits, const int* labels,
                           float label_smoothing, const float* class_weight, float* dlogits) {
  if (batch <= 0 || classes == 0) return 0.0;
  const size_t total = size_t(batch) * classes;
  double weight_sum = 0.0;
  for (int b = 0; b < batch; ++b) {
    weight_sum += class_weight != nullptr ? double{class_weight[labels[b]]} : 1.0;
  }
  if (!(weight_sum > 0.0)) {
    // Every sample weighs 0: nothing to learn from this batch (0 / 0 otherwise).
    std::fill(dlogits, dlogits + total, 0.0f);
    return 0.0;
  }
  // target = (1 - s) one-hot + s / K; per sample loss = -sum_k t_k log p_k,
  // d/dz_k = p_k - t_k (the targets sum to 1), scaled by w_label / sum w.
  const double s = label_smoothing;
  const double off = s / classes;
  const double on = 1.0 - s + off;
  double loss = 0.0;
  for (int b = 0; b < batch; ++b) {
    const float* z = logits + size_t(b) * classes;
    float* g = dlogits + size_t(b) * classes;
    const int label = labels[b];
    const double w = class_weight != nullptr ? double{class_weight[label]} : 1.0;
    const double zmax = *std::max_element(z, z + classes);
    double sum_exp = 0.0;
    for (uint32_t k = 0; k < classes; ++k) sum_exp += std::exp(z[k] - zmax);
    const double lse = zmax + std::log(sum_exp);
    const double scale = w / weight_sum;
    double sample = 0.0;
    for (uint32_t k = 0; k < classes; ++k) {
      const double t = static_cast<int>(k) == label ? on : off;
      const double log_p = z[k] - lse;
      sample -= t * log_p;
      g[k] = static_cast<float>(scale * (std::exp(log_p) - t));
    }
    loss += w * sample;
  }
  return loss / weight_sum;
}

}  // namespace wavepool::nn
