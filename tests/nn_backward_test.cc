// The backward passes of nn/backward.h, each against central finite
// differences of a double-precision forward written here (explicit padding
// checks, naive loops), driven by one table of cases: odd sizes, unequal time /
// frequency kernels, strides, padding and dilation, batch > 1, anti-aliased
// (blurred) pooling. Each case is
// also a check that the library's float forward is the function differentiated.
//
// Loss: L = sum_i r_i y_i with r a random upstream gradient (the softmax
// cross-entropy case differentiates its own loss). Finite differences:
// (L(v + h) - L(v - h)) / 2h in double with h = 1e-5 on every element of the
// input and of every parameter. L is linear in the input for conv, pools,
// dense, ReLU and dropout (the difference is exact up to ~1e-11), smooth for
// batch-norm and softmax (truncation ~h^2 = 1e-10). Inputs are distinct with
// gaps >= 0.25 / n >= 4h and |x| >= 0.25 / n, so no max-pool arg-max and no
// ReLU sign flips between L(v - h) and L(v + h): ties are tested separately.
//
// Tolerance: |got - fd| <= kRelTol * max(1, max_j |fd_j|) over each gradient
// tensor (a norm-wise relative error; per-element relative error is undefined
// where terms cancel). The float gradients are sums of <= ~500 terms, typical
// relative error ~sqrt(n) 2^-24 ~ 1e-6; the largest seen over the table is
// 2.3e-7, so kRelTol = 5e-6 leaves 20x margin. A missed or misplaced term
// moves an element by a whole term, >= 1e-2 of the scale for these data.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "nn/backward.h"
#include "nn/kernels.h"
#include "nn/shape.h"

namespace wavepool::nn {
namespace {

constexpr double kStep = 1e-5;
constexpr double kRelTol = 5e-6;

enum class Op {
  kConv, kMaxPool, kAvgPool, kGlobalAvgPool, kGlobalMaxPool, kDense, kRelu, kBatchNorm,
  kDropout, kSoftmaxCe,
};

struct BackwardCase {
  const char* name;
  Op op;
  Shape in;  // per sample [C, H = freq, W = time]; softmax: [classes, 1, 1]
  int batch;
  uint32_t out_c = 0;  // conv channels, dense features
  uint32_t kh = 1, kw = 1, sh = 1, sw = 1, ph = 0, pw = 0, dh = 1, dw = 1;
  bool bias = true;          // conv, dense
  bool include_pad = false;  // avg pool
  uint32_t blur = 0;         // pools: binomial taps on each axis of stride > 1 (BlurPool2d)
  float eps = 1e-5f;         // batch-norm
  float rate = 0.0f;         // dropout
  float smoothing = 0.0f;    // softmax cross-entropy
  bool class_weights = false;
};

// clang-format off
const BackwardCase kCases[] = {
  {.name = "conv2d_3x5_same_pad", .op = Op::kConv, .in = {2, 9, 13}, .batch = 3, .out_c = 3, .kh = 3, .kw = 5, .ph = 1, .pw = 2},
  {.name = "conv2d_unequal_strides", .op = Op::kConv, .in = {3, 11, 17}, .batch = 2, .out_c = 2, .kh = 3, .kw = 4, .sh = 2, .sw = 3, .pw = 1},
  {.name = "conv2d_dilation", .op = Op::kConv, .in = {2, 12, 19}, .batch = 3, .out_c = 3, .kh = 2, .kw = 3, .sw = 2, .ph = 2, .pw = 1, .dh = 3, .dw = 2},
  {.name = "conv2d_freq_stride_time_dilation", .op = Op::kConv, .in = {2, 13, 21}, .batch = 2, .out_c = 2, .kh = 3, .kw = 2, .sh = 3, .ph = 1, .pw = 2, .dw = 3},
  {.name = "conv2d_kernel_larger_than_input", .op = Op::kConv, .in = {1, 2, 3}, .batch = 2, .out_c = 2, .kh = 3, .kw = 5, .ph = 1, .pw = 2},
  {.name = "conv2d_no_bias_stride_over_kernel", .op = Op::kConv, .in = {2, 7, 10}, .batch = 3, .out_c = 3, .kh = 2, .kw = 2, .sh = 3, .sw = 3, .bias = false},
  {.name = "conv2d_3x3_rows_longer_than_lanes", .op = Op::kConv, .in = {3, 6, 37}, .batch = 2, .out_c = 4, .kh = 3, .kw = 3, .ph = 1, .pw = 1},
  {.name = "conv1d_stride_pad_dilation", .op = Op::kConv, .in = {5, 1, 23}, .batch = 3, .out_c = 4, .kw = 7, .sw = 2, .pw = 3, .dw = 2},
  {.name = "conv1d_kernel_over_one_tap_chunk", .op = Op::kConv, .in = {2, 1, 50}, .batch = 2, .out_c = 2, .kw = 35, .pw = 3},
  {.name = "conv2d_5x7_taps_over_one_chunk", .op = Op::kConv, .in = {2, 8, 15}, .batch = 2, .out_c = 2, .kh = 5, .kw = 7, .sh = 2, .ph = 2, .pw = 3},
  {.name = "max_pool2d_non_overlapping", .op = Op::kMaxPool, .in = {2, 9, 13}, .batch = 2, .kh = 2, .kw = 3, .sh = 2, .sw = 3},
  {.name = "max_pool2d_overlapping_pad", .op = Op::kMaxPool, .in = {3, 11, 17}, .batch = 3, .kh = 4, .kw = 3, .sh = 2, .sw = 1, .ph = 2, .pw = 1},
  {.name = "max_pool2d_stride_over_kernel", .op = Op::kMaxPool, .in = {1, 10, 21}, .batch = 2, .kh = 1, .kw = 2, .sh = 2, .sw = 3},
  {.name = "max_pool1d_pad", .op = Op::kMaxPool, .in = {4, 1, 19}, .batch = 2, .kw = 3, .sw = 2, .pw = 1},
  {.name = "avg_pool2d_exclude_pad", .op = Op::kAvgPool, .in = {2, 9, 14}, .batch = 2, .kh = 3, .kw = 3, .sh = 2, .sw = 2, .ph = 1, .pw = 1},
  {.name = "avg_pool2d_include_pad", .op = Op::kAvgPool, .in = {2, 9, 14}, .batch = 2, .kh = 3, .kw = 3, .sh = 2, .sw = 2, .ph = 1, .pw = 1, .include_pad = true},
  {.name = "avg_pool2d_unequal_overlapping", .op = Op::kAvgPool, .in = {3, 10, 11}, .batch = 3, .kh = 2, .kw = 4, .sh = 3, .sw = 1, .pw = 2},
  {.name = "avg_pool1d_include_pad", .op = Op::kAvgPool, .in = {4, 1, 20}, .batch = 2, .kw = 4, .sw = 4, .pw = 2, .include_pad = true},
  {.name = "avg_pool1d_exclude_pad", .op = Op::kAvgPool, .in = {3, 1, 17}, .batch = 3, .kw = 5, .sw = 3, .pw = 2},
  {.name = "max_pool2d_blur3_unequal_strides", .op = Op::kMaxPool, .in = {2, 9, 13}, .batch = 2, .kh = 2, .kw = 3, .sh = 2, .sw = 3, .blur = 3},
  {.name = "max_pool2d_blur4_time_only_pad", .op = Op::kMaxPool, .in = {2, 7, 15}, .batch = 2, .kh = 3, .kw = 2, .sh = 1, .sw = 2, .ph = 1, .blur = 4},
  {.name = "max_pool2d_blur6_stride_over_kernel", .op = Op::kMaxPool, .in = {1, 10, 21}, .batch = 2, .kh = 1, .kw = 2, .sh = 2, .sw = 3, .blur = 6},
  {.name = "max_pool1d_blur5_pad", .op = Op::kMaxPool, .in = {3, 1, 19}, .batch = 2, .kw = 3, .sw = 2, .pw = 1, .blur = 5},
  {.name = "avg_pool2d_blur2_include_pad", .op = Op::kAvgPool, .in = {2, 9, 14}, .batch = 2, .kh = 3, .kw = 3, .sh = 2, .sw = 2, .ph = 1, .pw = 1, .include_pad = true, .blur = 2},
  {.name = "avg_pool2d_blur3_freq_only_exclude_pad", .op = Op::kAvgPool, .in = {3, 11, 8}, .batch = 2, .kh = 3, .kw = 2, .sh = 3, .sw = 1, .ph = 1, .blur = 3},
  {.name = "avg_pool1d_blur7_axis_shorter_than_pad", .op = Op::kAvgPool, .in = {2, 1, 4}, .batch = 3, .kw = 2, .sw = 2, .blur = 7},
  {.name = "global_avg_pool", .op = Op::kGlobalAvgPool, .in = {3, 7, 11}, .batch = 3},
  {.name = "global_max_pool", .op = Op::kGlobalMaxPool, .in = {2, 5, 9}, .batch = 2},
  {.name = "dense_flattens", .op = Op::kDense, .in = {3, 4, 5}, .batch = 3, .out_c = 7},
  {.name = "dense_no_bias", .op = Op::kDense, .in = {13, 1, 1}, .batch = 2, .out_c = 3, .bias = false},
  {.name = "dense_input_over_one_chunk", .op = Op::kDense, .in = {3, 10, 10}, .batch = 2, .out_c = 2},
  {.name = "relu", .op = Op::kRelu, .in = {3, 6, 7}, .batch = 2},
  {.name = "batch_norm_2d", .op = Op::kBatchNorm, .in = {4, 5, 6}, .batch = 3, .eps = 1e-3f},
  {.name = "batch_norm_1d", .op = Op::kBatchNorm, .in = {3, 1, 9}, .batch = 2},
  {.name = "batch_norm_batch_of_one", .op = Op::kBatchNorm, .in = {2, 3, 3}, .batch = 1},
  {.name = "dropout", .op = Op::kDropout, .in = {2, 3, 4}, .batch = 2, .rate = 0.3f},
  {.name = "softmax_ce", .op = Op::kSoftmaxCe, .in = {5, 1, 1}, .batch = 4},
  {.name = "softmax_ce_smoothing", .op = Op::kSoftmaxCe, .in = {7, 1, 1}, .batch = 3, .smoothing = 0.1f},
  {.name = "softmax_ce_class_weights", .op = Op::kSoftmaxCe, .in = {4, 1, 1}, .batch = 5, .class_weights = true},
  {.name = "softmax_ce_smoothing_and_weights", .op = Op::kSoftmaxCe, .in = {11, 1, 1}, .batch = 6, .smoothing = 0.2f, .class_weights = true},
};
// clang-format on

int64_t OutSize(int64_t in, int64_t k, int64_t s, int64_t p, int64_t d) {
  return (in + 2 * p - d * (k - 1) - 1) / s + 1;
}

Shape OutShape(const BackwardCase& c) {
  switch (c.op) {
    case Op::kConv:
      return {c.out_c, uint32_t(OutSize(c.in.h, c.kh, c.sh, c.ph, c.dh)),
              uint32_t(OutSize(c.in.w, c.kw, c.sw, c.pw, c.dw))};
    case Op::kMaxPool:
    case Op::kAvgPool:
      return {c.in.c, uint32_t(OutSize(c.in.h, c.kh, c.sh, c.ph, 1)),
              uint32_t(OutSize(c.in.w, c.kw, c.sw, c.pw, 1))};
    case Op::kGlobalAvgPool:
    case Op::kGlobalMaxPool:
      return {c.in.c, 1, 1};
    case Op::kDense:
      return {c.out_c, 1, 1};
    default:
      return c.in;
  }
}
size_t InCount(const BackwardCase& c) { return c.in.size() * c.batch; }
// Values of y; the loss case's y is the loss itself.
size_t OutCount(const BackwardCase& c) {
  return c.op == Op::kSoftmaxCe ? 1 : OutShape(c).size() * c.batch;
}
size_t WeightCount(const BackwardCase& c) {
  if (c.op == Op::kConv) return size_t{c.out_c} * c.in.c * c.kh * c.kw;
  if (c.op == Op::kDense) return size_t{c.out_c} * c.in.size();
  if (c.op == Op::kBatchNorm) return c.in.c;  // gamma
  return 0;
}
size_t BiasCount(const BackwardCase& c) {
  if ((c.op == Op::kConv || c.op == Op::kDense) && c.bias) return c.out_c;
  if (c.op == Op::kBatchNorm) return c.in.c;  // beta
  return 0;
}

Conv2dParams ConvParams(const BackwardCase& c) {
  return {c.in.c, c.in.h, c.in.w, c.out_c, c.kh, c.kw, c.sh, c.sw, c.ph, c.pw, c.dh, c.dw};
}
Pool2dParams PoolParams(const BackwardCase& c) {
  Pool2dParams p{c.in.c, c.in.h, c.in.w, c.kh, c.kw, c.sh, c.sw, c.ph, c.pw, c.include_pad};
  p.blur_h = c.blur > 1 && c.sh > 1 ? c.blur : 1;
  p.blur_w = c.blur > 1 && c.sw > 1 ? c.blur : 1;
  return p;
}

// Written out here, independent of the library's: mirror an index into
// [0, n) (no edge repeat), again and again until it lands.
int64_t Mirror(int64_t i, int64_t n) {
  if (n == 1) return 0;
  while (i < 0 || i >= n) i = i < 0 ? -i : 2 * (n - 1) - i;
  return i;
}

// Pascal's row n - 1 over 2^(n - 1).
std::vector<double> Binomial(uint32_t n) {
  std::vector<double> f(n);
  for (uint32_t k = 0; k < n; ++k) {
    double c = 1;
    for (uint32_t j = 0; j < k; ++j) c = c * (n - 1 - j) / (j + 1);
    f[k] = c / std::pow(2.0, n - 1);
  }
  return f;
}

// Anti-aliased pooling in double, the way the paper's code does it: the pool
// at stride 1 on each blurred axis, then one 2-D (outer product) binomial
// filter over the reflect-padded stage, sampled every stride. `pool` is the
// unblurred pool's reference with the strides given.
template <typename PoolFn>
std::vector<double> RefBlurPool(const BackwardCase& c, PoolFn pool) {
  const bool bh = c.blur > 1 && c.sh > 1, bw = c.blur > 1 && c.sw > 1;
  const uint32_t ssh = bh ? 1 : c.sh, ssw = bw ? 1 : c.sw;
  const int64_t sh = OutSize(c.in.h, c.kh, ssh, c.ph, 1), sw = OutSize(c.in.w, c.kw, ssw, c.pw, 1);
  const std::vector<double> stage = pool(ssh, ssw);
  const std::vector<double> fh = bh ? Binomial(c.blur) : std::vector<double>{1.0};
  const std::vector<double> fw = bw ? Binomial(c.blur) : std::vector<double>{1.0};
  const int64_t ph = (int64_t(fh.size()) - 1) / 2, pw = (int64_t(fw.size()) - 1) / 2;
  const Shape out = OutShape(c);
  std::vector<double> y(OutCount(c), 0.0);
  for (int64_t p = 0; p < int64_t{c.in.c} * c.batch; ++p)
    for (int64_t oy = 0; oy < out.h; ++oy)
      for (int64_t ox = 0; ox < out.w; ++ox) {
        double acc = 0;
        for (size_t ky = 0; ky < fh.size(); ++ky)
          for (size_t kx = 0; kx < fw.size(); ++kx) {
            const int64_t iy = Mirror(oy * (bh ? c.sh : 1) - ph + int64_t(ky), sh);
            const int64_t ix = Mirror(ox * (bw ? c.sw : 1) - pw + int64_t(kx), sw);
            acc += fh[ky] * fw[kx] * stage[(p * sh + iy) * sw + ix];
          }
        y[(p * out.h + oy) * out.w + ox] = acc;
      }
  return y;
}

std::vector<float> Uniform(size_t n, std::mt19937& rng, float lo, float hi) {
  std::uniform_real_distribution<float> u(lo, hi);
  std::vector<float> v(n);
  for (float& x : v) x = u(rng);
  return v;
}

// n values in (-1, 1), random signs, magnitudes (i + 0.5 + jitter) / n with
// |jitter| <= 0.25, shuffled: any two differ by >= 0.25 / n, and |x| >= 0.25 / n.
std::vector<float> Distinct(size_t n, std::mt19937& rng) {
  std::uniform_real_distribution<double> jitter(-0.25, 0.25);
  std::bernoulli_distribution negative(0.5);
  std::vector<float> v(n);
  for (size_t i = 0; i < n; ++i) {
    const double mag = (double(i) + 0.5 + jitter(rng)) / double(n);
    v[i] = static_cast<float>(negative(rng) ? -mag : mag);
  }
  std::shuffle(v.begin(), v.end(), rng);
  return v;
}

struct Inputs {
  std::vector<float> x, weight, bias;  // batch-norm: weight = gamma, bias = beta
  std::vector<uint8_t> mask;
  std::vector<int> labels;
  std::vector<float> class_weight;
  std::vector<float> dout;  // r in L = sum r y
};

Inputs MakeInputs(const BackwardCase& c, std::mt19937& rng) {
  Inputs t;
  t.x = Distinct(InCount(c), rng);
  if (c.op == Op::kBatchNorm) {
    t.weight = Uniform(WeightCount(c), rng, 0.5f, 2.0f);
  } else {
    t.weight = Uniform(WeightCount(c), rng, -1.0f, 1.0f);
  }
  t.bias = Uniform(BiasCount(c), rng, -1.0f, 1.0f);
  if (c.op == Op::kDropout) {
    std::bernoulli_distribution keep(1.0 - c.rate);
    for (size_t i = 0; i < InCount(c); ++i) t.mask.push_back(keep(rng) ? 1 : 0);
  }
  if (c.op == Op::kSoftmaxCe) {
    for (float& z : t.x) z *= 3.0f;  // logits in (-3, 3)
    std::uniform_int_distribution<int> label(0, static_cast<int>(c.in.c) - 1);
    for (int b = 0; b < c.batch; ++b) t.labels.push_back(label(rng));
    if (c.class_weights) t.class_weight = Uniform(c.in.c, rng, 0.25f, 2.0f);
  }
  t.dout = Uniform(OutCount(c), rng, -1.0f, 1.0f);
  return t;
}

// A channel's batch mean and biased variance over (batch, H, W), in double.
struct BatchStats {
  double mean, var;
};
BatchStats RefBatchStats(const BackwardCase& c, const std::vector<double>& x, int64_t ch) {
  const int64_t hw = int64_t{c.in.h} * c.in.w;
  const double m = double(c.batch) * hw;
  double sum = 0, sq = 0;
  for (int64_t b = 0; b < c.batch; ++b)
    for (int64_t i = 0; i < hw; ++i) sum += x[(b * c.in.c + ch) * hw + i];
  const double mean = sum / m;
  for (int64_t b = 0; b < c.batch; ++b)
    for (int64_t i = 0; i < hw; ++i) sq += std::pow(x[(b * c.in.c + ch) * hw + i] - mean, 2);
  return {mean, sq / m};
}

// The layer's forward in double, on (possibly perturbed) x, weight and bias.
std::vector<double> RefForward(const BackwardCase& c, const Inputs& t, const std::vector<double>& x,
                               const std::vector<double>& w, const std::vector<double>& bias) {
  const Shape in = c.in, out = OutShape(c);
  const int64_t hw = int64_t{in.h} * in.w;
  std::vector<double> y(OutCount(c), 0.0);
  const auto X = [&](int64_t b, int64_t ch, int64_t h, int64_t tt) {
    return x[((b * in.c + ch) * in.h + h) * in.w + tt];
  };
  const auto at = [&](int64_t b, int64_t ch, int64_t h, int64_t tt) {
    return ((b * out.c + ch) * out.h + h) * out.w + tt;
  };
  switch (c.op) {
    case Op::kConv:  // the seven loops
      for (int64_t b = 0; b < c.batch; ++b)
        for (int64_t oc = 0; oc < out.c; ++oc)
          for (int64_t oy = 0; oy < out.h; ++oy)
            for (int64_t ox = 0; ox < out.w; ++ox) {
              double acc = c.bias ? bias[oc] : 0.0;
              for (int64_t ic = 0; ic < in.c; ++ic)
                for (int64_t ky = 0; ky < c.kh; ++ky)
                  for (int64_t kx = 0; kx < c.kw; ++kx) {
                    const int64_t iy = oy * c.sh - c.ph + ky * c.dh;
                    const int64_t ix = ox * c.sw - c.pw + kx * c.dw;
                    if (iy < 0 || iy >= in.h || ix < 0 || ix >= in.w) continue;  // zero padding
                    acc += w[((oc * in.c + ic) * c.kh + ky) * c.kw + kx] * X(b, ic, iy, ix);
                  }
              y[at(b, oc, oy, ox)] = acc;
            }
      break;
    case Op::kMaxPool:
    case Op::kAvgPool: {
      // The plain pool at strides (sy, sx), [batch, C, oh, ow].
      const auto pool = [&](uint32_t sy, uint32_t sx) {
        const int64_t oh = OutSize(in.h, c.kh, sy, c.ph, 1), ow = OutSize(in.w, c.kw, sx, c.pw, 1);
        std::vector<double> p(size_t(c.batch) * in.c * oh * ow);
        for (int64_t b = 0; b < c.batch; ++b)
          for (int64_t ch = 0; ch < in.c; ++ch)
            for (int64_t oy = 0; oy < oh; ++oy)
              for (int64_t ox = 0; ox < ow; ++ox) {
                double m = 0, sum = 0;
                int real = 0;
                for (int64_t ky = 0; ky < c.kh; ++ky)
                  for (int64_t kx = 0; kx < c.kw; ++kx) {
                    const int64_t iy = oy * sy - c.ph + ky, ix = ox * sx - c.pw + kx;
                    if (iy < 0 || iy >= in.h || ix < 0 || ix >= in.w) continue;  // padding
                    const double v = X(b, ch, iy, ix);
                    if (real == 0 || v > m) m = v;
                    sum += v;
                    ++real;
                  }
                const double area = c.include_pad ? double(c.kh) * c.kw : double(real);
                p[((b * in.c + ch) * oh + oy) * ow + ox] = c.op == Op::kMaxPool ? m : sum / area;
              }
        return p;
      };
      if (c.blur > 1) return RefBlurPool(c, pool);
      y = pool(c.sh, c.sw);
      break;
    }
    case Op::kGlobalAvgPool:
    case Op::kGlobalMaxPool:
      for (int64_t p = 0; p < int64_t{in.c} * c.batch; ++p) {
        double m = x[p * hw], sum = 0;
        for (int64_t i = 0; i < hw; ++i) {
          m = std::max(m, x[p * hw + i]);
          sum += x[p * hw + i];
        }
        y[p] = c.op == Op::kGlobalMaxPool ? m : sum / double(hw);
      }
      break;
    case Op::kDense: {
      const int64_t n = in.size();
      for (int64_t b = 0; b < c.batch; ++b)
        for (int64_t o = 0; o < out.c; ++o) {
          double acc = c.bias ? bias[o] : 0.0;
          for (int64_t i = 0; i < n; ++i) acc += w[o * n + i] * x[b * n + i];
          y[b * out.c + o] = acc;
        }
      break;
    }
    case Op::kRelu:
      for (size_t i = 0; i < x.size(); ++i) y[i] = std::max(x[i], 0.0);
      break;
    case Op::kBatchNorm:
      // Training mode: the statistics are functions of x, differentiated through.
      for (int64_t ch = 0; ch < in.c; ++ch) {
        const BatchStats st = RefBatchStats(c, x, ch);
        const double sd = std::sqrt(st.var + c.eps);
        for (int64_t b = 0; b < c.batch; ++b)
          for (int64_t i = 0; i < hw; ++i) {
            const int64_t k = (b * in.c + ch) * hw + i;
            y[k] = w[ch] * (x[k] - st.mean) / sd + bias[ch];
          }
      }
      break;
    case Op::kDropout:
      for (size_t i = 0; i < x.size(); ++i) y[i] = x[i] * t.mask[i] / (1.0 - c.rate);
      break;
    case Op::kSoftmaxCe: {
      const int64_t k_n = in.c;
      double loss = 0, weights = 0;
      for (int64_t b = 0; b < c.batch; ++b) {
        double z = 0;
        for (int64_t k = 0; k < k_n; ++k) z += std::exp(x[b * k_n + k]);
        double sample = 0;
        for (int64_t k = 0; k < k_n; ++k) {
          const double target = (k == t.labels[b] ? 1.0 - c.smoothing : 0.0) + c.smoothing / k_n;
          sample -= target * std::log(std::exp(x[b * k_n + k]) / z);
        }
        const double wb = c.class_weights ? t.class_weight[t.labels[b]] : 1.0;
        loss += wb * sample;
        weights += wb;
      }
      y[0] = loss / weights;
      break;
    }
  }
  return y;
}

double RefLoss(const BackwardCase& c, const Inputs& t, const std::vector<double>& x,
               const std::vector<double>& w, const std::vector<double>& bias) {
  const std::vector<double> y = RefForward(c, t, x, w, bias);
  if (c.op == Op::kSoftmaxCe) return y[0];
  double l = 0;
  for (size_t i = 0; i < y.size(); ++i) l += t.dout[i] * y[i];
  return l;
}

std::vector<double> ToDouble(const std::vector<float>& v) { return {v.begin(), v.end()}; }

// dL/d(which) by central differences; which is 0 (x), 1 (weight) or 2 (bias).
std::vector<double> FiniteDifference(const BackwardCase& c, const Inputs& t, int which) {
  std::vector<double> v[3] = {ToDouble(t.x), ToDouble(t.weight), ToDouble(t.bias)};
  std::vector<double> grad(v[which].size());
  for (size_t i = 0; i < grad.size(); ++i) {
    const double saved = v[which][i];
    v[which][i] = saved + kStep;
    const double plus = RefLoss(c, t, v[0], v[1], v[2]);
    v[which][i] = saved - kStep;
    const double minus = RefLoss(c, t, v[0], v[1], v[2]);
    v[which][i] = saved;
    grad[i] = (plus - minus) / (2 * kStep);
  }
  return grad;
}

// A buffer with sentinel guards on both sides, to catch out-of-range writes.
class Guarded {
 public:
  Guarded(size_t n, float fill) : buf_(n + 2 * kGuard, kSentinel), n_(n) {
    std::fill(data(), data() + n, fill);
  }
  float* data() { return buf_.data() + kGuard; }
  float* data_or_null() { return n_ == 0 ? nullptr : data(); }
  std::vector<float> values() const { return {buf_.begin() + kGuard, buf_.end() - kGuard}; }
  void ExpectGuardsIntact(const char* what) const {
    for (size_t i = 0; i < kGuard; ++i) {
      EXPECT_EQ(buf_[i], kSentinel) << what << ": write before the buffer";
      EXPECT_EQ(buf_[buf_.size() - 1 - i], kSentinel) << what << ": write after the buffer";
    }
  }

 private:
  static constexpr size_t kGuard = 16;
  static constexpr float kSentinel = -12345.0f;
  std::vector<float> buf_;
  size_t n_;
};

struct Grads {
  explicit Grads(const BackwardCase& c)
      : din(InCount(c), std::numeric_limits<float>::quiet_NaN()),  // must be overwritten
        dweight(WeightCount(c), 0.0f),
        dbias(BiasCount(c), 0.0f) {}
  Guarded din, dweight, dbias;
  double loss = 0;
  void ExpectGuardsIntact() const {
    din.ExpectGuardsIntact("din");
    dweight.ExpectGuardsIntact("dweight");
    dbias.ExpectGuardsIntact("dbias");
  }
};

// The library's float forward (the loss case: its loss).
std::vector<float> RunForward(const BackwardCase& c, const Inputs& t) {
  std::vector<float> y(OutCount(c));
  const float* x = t.x.data();
  const uint32_t hw = c.in.h * c.in.w;
  switch (c.op) {
    case Op::kConv:
      Conv2d(ConvParams(c), c.batch, x, t.weight.data(), c.bias ? t.bias.data() : nullptr, y.data());
      break;
    case Op::kMaxPool:
    case Op::kAvgPool: {
      const Pool2dParams p = PoolParams(c);
      const PoolKind kind = c.op == Op::kMaxPool ? PoolKind::kMax : PoolKind::kAvg;
      if (p.blurred()) {
        std::vector<float> scratch(BlurPoolScratch(p));
        BlurPool2d(kind, p, c.batch, x, y.data(), scratch.data());
      } else if (kind == PoolKind::kMax) {
        MaxPool2d(p, c.batch, x, y.data());
      } else {
        AvgPool2d(p, c.batch, x, y.data());
      }
      break;
    }
    case Op::kGlobalAvgPool: GlobalAvgPool(c.in.c, hw, c.batch, x, y.data()); break;
    case Op::kGlobalMaxPool: GlobalMaxPool(c.in.c, hw, c.batch, x, y.data()); break;
    case Op::kDense:
      Dense(uint32_t(c.in.size()), c.out_c, c.batch, x, t.weight.data(),
            c.bias ? t.bias.data() : nullptr, y.data());
      break;
    case Op::kRelu:
      y = t.x;
      Relu(y.size(), y.data());
      break;
    case Op::kBatchNorm: {
      std::vector<float> mean(c.in.c), inv_std(c.in.c), var(c.in.c);
      BatchNormTrainForward(c.in.c, hw, c.batch, c.eps, x, t.weight.data(), t.bias.data(),
                            y.data(), mean.data(), inv_std.data(), var.data());
      break;
    }
    case Op::kDropout: DropoutApply(y.size(), c.rate, t.mask.data(), x, y.data()); break;
    case Op::kSoftmaxCe: {
      std::vector<float> dlogits(InCount(c));
      y[0] = static_cast<float>(SoftmaxCrossEntropy(
          c.in.c, c.batch, x, t.labels.data(), c.smoothing,
          c.class_weights ? t.class_weight.data() : nullptr, dlogits.data()));
      break;
    }
  }
  return y;
}

// The backward under test, adding into g's parameter gradients.
void RunBackward(const BackwardCase& c, const Inputs& t, bool with_din, Grads& g) {
  const float* x = t.x.data();
  const float* dy = t.dout.data();
  float* din = with_din ? g.din.data() : nullptr;
  const uint32_t hw = c.in.h * c.in.w;
  switch (c.op) {
    case Op::kConv:
      Conv2dBackward(ConvParams(c), c.batch, x, t.weight.data(), dy, din, g.dweight.data(),
                     g.dbias.data_or_null());
      break;
    case Op::kMaxPool:
    case Op::kAvgPool: {
      const Pool2dParams p = PoolParams(c);
      const PoolKind kind = c.op == Op::kMaxPool ? PoolKind::kMax : PoolKind::kAvg;
      if (p.blurred()) {
        // Scratch filled with NaN: the backward must not read what it did not write.
        std::vector<float> scratch(BlurPoolScratch(p), std::numeric_limits<float>::quiet_NaN());
        BlurPool2dBackward(kind, p, c.batch, x, dy, din, scratch.data());
      } else if (kind == PoolKind::kMax) {
        MaxPool2dBackward(p, c.batch, x, dy, din);
      } else {
        AvgPool2dBackward(p, c.batch, dy, din);
      }
      break;
    }
    case Op::kGlobalAvgPool: GlobalAvgPoolBackward(c.in.c, hw, c.batch, dy, din); break;
    case Op::kGlobalMaxPool: GlobalMaxPoolBackward(c.in.c, hw, c.batch, x, dy, din); break;
    case Op::kDense:
      DenseBackward(uint32_t(c.in.size()), c.out_c, c.batch, x, t.weight.data(), dy, din,
                    g.dweight.data(), g.dbias.data_or_null());
      break;
    case Op::kRelu: ReluBackward(InCount(c), x, dy, din); break;
    case Op::kBatchNorm: {
      std::vector<float> y(InCount(c)), mean(c.in.c), inv_std(c.in.c), var(c.in.c);
      BatchNormTrainForward(c.in.c, hw, c.batch, c.eps, x, t.weight.data(), t.bias.data(),
                            y.data(), mean.data(), inv_std.data(), var.data());
      BatchNormBackward(c.in.c, hw, c.batch, x, t.weight.data(), mean.data(), inv_std.data(), dy,
                        din, g.dweight.data(), g.dbias.data());
      break;
    }
    case Op::kDropout: DropoutApply(InCount(c), c.rate, t.mask.data(), dy, din); break;
    case Op::kSoftmaxCe:  // dlogits is not optional
      g.loss = SoftmaxCrossEntropy(c.in.c, c.batch, x, t.labels.data(), c.smoothing,
                                   c.class_weights ? t.class_weight.data() : nullptr,
                                   g.din.data());
      break;
  }
}

// |got - ref| <= tol * max(1, max |ref|), the first five failures shown.
void ExpectClose(const std::vector<double>& ref, const std::vector<float>& got, double tol,
                 const char* what) {
  ASSERT_EQ(ref.size(), got.size()) << what;
  double scale = 1.0;
  for (double r : ref) scale = std::max(scale, std::abs(r));
  int shown = 0;
  for (size_t i = 0; i < got.size(); ++i) {
    const double err = std::abs(got[i] - ref[i]);
    if (!(err <= tol * scale) && shown++ < 5) {
      ADD_FAILURE() << what << "[" << i << "] is " << got[i] << ", reference " << ref[i]
                    << " (error " << err << " > " << tol * scale << ")";
    }
  }
}

std::vector<uint8_t> Bytes(const std::vector<float>& v) {
  std::vector<uint8_t> b(v.size() * sizeof(float));
  if (!v.empty()) std::memcpy(b.data(), v.data(), b.size());
  return b;
}

class BackwardCaseTest : public ::testing::TestWithParam<size_t> {
 protected:
  const BackwardCase& Case() const { return kCases[GetParam()]; }
  uint32_t Seed() const { return 2000 + static_cast<uint32_t>(GetParam()); }
  std::string Trace() const {
    return std::string("case ") + Case().name + ", seed " + std::to_string(Seed());
  }
};

TEST_P(BackwardCaseTest, GradientsMatchFiniteDifferences) {
  const BackwardCase& c = Case();
  SCOPED_TRACE(Trace());
  std::mt19937 rng(Seed());
  const Inputs t = MakeInputs(c, rng);
  ASSERT_GT(0.25 / double(InCount(c)), 4 * kStep) << "inputs too close for the step";
  // The double forward is the function the float forward computes (for the
  // loss case, this is the loss against a direct computation).
  const std::vector<double> ref_y =
      RefForward(c, t, ToDouble(t.x), ToDouble(t.weight), ToDouble(t.bias));
  ExpectClose(ref_y, RunForward(c, t), kRelTol, "forward");

  Grads g(c);
  RunBackward(c, t, /*with_din=*/true, g);
  g.ExpectGuardsIntact();
  if (c.op == Op::kSoftmaxCe) {
    EXPECT_NEAR(g.loss, ref_y[0], 1e-6 * std::abs(ref_y[0]));
  }
  ExpectClose(FiniteDifference(c, t, 0), g.din.values(), kRelTol, "din");
  ExpectClose(FiniteDifference(c, t, 1), g.dweight.values(), kRelTol, "dweight");
  ExpectClose(FiniteDifference(c, t, 2), g.dbias.values(), kRelTol, "dbias");
}

TEST_P(BackwardCaseTest, AccumulatesParameterGradientsAndOverwritesInputGradient) {
  const BackwardCase& c = Case();
  SCOPED_TRACE(Trace());
  std::mt19937 rng(Seed());
  const Inputs t = MakeInputs(c, rng);
  Grads g(c);  // din starts as NaN: a += would leave NaN
  RunBackward(c, t, true, g);
  const std::vector<float> din1 = g.din.values(), dw1 = g.dweight.values(),
                           db1 = g.dbias.values();
  for (size_t i = 0; i < din1.size(); ++i) ASSERT_FALSE(std::isnan(din1[i])) << "din[" << i << "]";
  RunBackward(c, t, true, g);
  g.ExpectGuardsIntact();
  EXPECT_EQ(Bytes(g.din.values()), Bytes(din1)) << "din must be overwritten, not added to";
  // Each call adds its total once, so the second call doubles exactly.
  const std::vector<float> dw2 = g.dweight.values(), db2 = g.dbias.values();
  for (size_t i = 0; i < dw1.size(); ++i) EXPECT_EQ(dw2[i], 2 * dw1[i]) << "dweight[" << i << "]";
  for (size_t i = 0; i < db1.size(); ++i) EXPECT_EQ(db2[i], 2 * db1[i]) << "dbias[" << i << "]";
  // Deterministic: fresh buffers give bit-identical results.
  Grads again(c);
  RunBackward(c, t, true, again);
  EXPECT_EQ(Bytes(again.din.values()), Bytes(din1));
  EXPECT_EQ(Bytes(again.dweight.values()), Bytes(dw1));
  EXPECT_EQ(Bytes(again.dbias.values()), Bytes(db1));
}

TEST_P(BackwardCaseTest, NullInputGradientGivesSameParameterGradients) {
  const BackwardCase& c = Case();
  if (c.op == Op::kSoftmaxCe) GTEST_SKIP() << "dlogits is the loss's only output, not optional";
  SCOPED_TRACE(Trace());
  std::mt19937 rng(Seed());
  const Inputs t = MakeInputs(c, rng);
  Grads with(c), without(c);
  RunBackward(c, t, true, with);
  RunBackward(c, t, false, without);
  without.ExpectGuardsIntact();
  EXPECT_EQ(Bytes(without.dweight.values()), Bytes(with.dweight.values()));
  EXPECT_EQ(Bytes(without.dbias.values()), Bytes(with.dbias.values()));
  const std::vector<float> din = without.din.values();  // untouched: still NaN
  EXPECT_TRUE(std::all_of(din.begin(), din.end(), [](float v) { return std::isnan(v); }));
}

INSTANTIATE_TEST_SUITE_P(Table, BackwardCaseTest, ::testing::Range<size_t>(0, std::size(kCases)),
                         [](const ::testing::TestParamInfo<size_t>& info) {
                           return std::string(kCases[info.param].name);
                         });

TEST(BatchNormTrainForward, StatisticsMatchDirectComputation) {
  for (size_t ci = 0; ci < std::size(kCases); ++ci) {
    const BackwardCase& c = kCases[ci];
    if (c.op != Op::kBatchNorm) continue;
    const uint32_t seed = 2000 + static_cast<uint32_t>(ci);
    SCOPED_TRACE(std::string("case ") + c.name + ", seed " + std::to_string(seed));
    std::mt19937 rng(seed);
    const Inputs t = MakeInputs(c, rng);
    const uint32_t hw = c.in.h * c.in.w;
    std::vector<float> y(InCount(c)), mean(c.in.c), inv_std(c.in.c), var(c.in.c);
    BatchNormTrainForward(c.in.c, hw, c.batch, c.eps, t.x.data(), t.weight.data(), t.bias.data(),
                          y.data(), mean.data(), inv_std.data(), var.data());
    for (uint32_t ch = 0; ch < c.in.c; ++ch) {
      const BatchStats st = RefBatchStats(c, ToDouble(t.x), ch);
      const double v = st.var;
      // One float rounding of each (2^-24 relative), plus slack.
      EXPECT_NEAR(mean[ch], st.mean, 1e-7) << "channel " << ch;
      EXPECT_NEAR(var[ch], v, 1e-6 * v) << "channel " << ch;
      EXPECT_NEAR(inv_std[ch], 1 / std::sqrt(v + c.eps), 1e-6 / std::sqrt(v + c.eps))
          << "channel " << ch;
    }
  }
}

TEST(MaxPool2dBackward, TieGoesToFirstMaximumInScanOrder) {
  // One 2 x 3 window: the 5s at (0, 1), (1, 0) and (1, 2) tie; row-major scan
  // (frequency outer, time inner) reaches (0, 1) first although (1, 0) has the
  // smaller time index.
  const float in[6] = {1, 5, 2,
                       5, 0, 5};
  Pool2dParams p;
  p.in_h = 2, p.in_w = 3, p.kernel_h = 2, p.kernel_w = 3, p.stride_h = 2, p.stride_w = 3;
  const float dout[1] = {0.75f};
  float din[6];
  MaxPool2dBackward(p, 1, in, dout, din);
  EXPECT_EQ(std::vector<float>(din, din + 6), (std::vector<float>{0, 0.75f, 0, 0, 0, 0}));
}

TEST(MaxPool2dBackward, TiedOverlappingWindowsEachPickTheirFirst) {
  // Row [3, 3, 3], kernel 2, stride 1: windows {0, 1} and {1, 2} pick 0 and 1.
  const float in[3] = {3, 3, 3};
  Pool2dParams p;
  p.in_w = 3, p.kernel_w = 2, p.stride_w = 1;
  const float dout[2] = {1.5f, -2.0f};
  float din[3];
  MaxPool2dBackward(p, 1, in, dout, din);
  EXPECT_EQ(std::vector<float>(din, din + 3), (std::vector<float>{1.5f, -2.0f, 0}));
}

TEST(MaxPool2dBackward, PaddedCellsNeverWin) {
  // All negative: a padded zero would win if it took part. 2-D padding: the
  // top-left window holds one real cell among three padded ones.
  const float in[6] = {-3, -2, -5,
                       -1, -4, -6};
  Pool2dParams p;
  p.in_h = 2, p.in_w = 3, p.kernel_h = 2, p.kernel_w = 2, p.stride_h = 2, p.stride_w = 2;
  p.pad_h = 1, p.pad_w = 1;
  // Windows: rows {pad, 0} x cols {pad, 0} -> (0, 0); x cols {1, 2} -> (0, 1);
  //          rows {1, pad} x cols {pad, 0} -> (1, 0); x cols {1, 2} -> (1, 1).
  const float dout[4] = {1, 2, 3, 4};
  float din[6];
  MaxPool2dBackward(p, 1, in, dout, din);
  EXPECT_EQ(std::vector<float>(din, din + 6), (std::vector<float>{1, 2, 0, 3, 4, 0}));
}

TEST(GlobalMaxPoolBackward, TieGoesToFirstMaximum) {
  const float in[8] = {2, 7, 7, 1,   // channel 0: 7 at 1 and 2
                       4, 4, 4, 4};  // channel 1: all equal
  const float dout[2] = {0.5f, -1.0f};
  float din[8];
  GlobalMaxPoolBackward(2, 4, 1, in, dout, din);
  EXPECT_EQ(std::vector<float>(din, din + 8), (std::vector<float>{0, 0.5f, 0, 0, -1.0f, 0, 0, 0}));
}

TEST(ReluBackward, ZeroInputPassesNoGradient) {
  const float x[4] = {-1, 0, -0.0f, 2};
  const float dout[4] = {1, 2, 3, 4};
  float din[4];
  ReluBackward(4, x, dout, din);
  EXPECT_EQ(std::vector<float>(din, din + 4), (std::vector<float>{0, 0, 0, 4}));
}

TEST(DropoutApply, BackwardIsTheForwardProduct) {
  // rate 0.5 scales kept values by exactly 2; dropped cells are 0 even for inf.
  const float x[5] = {1.5f, -2, 3, 4, std::numeric_limits<float>::infinity()};
  const uint8_t mask[5] = {1, 0, 1, 1, 0};
  float y[5];
  DropoutApply(5, 0.5f, mask, x, y);
  EXPECT_EQ(std::vector<float>(y, y + 5), (std::vector<float>{3, 0, 6, 8, 0}));
  // The backward is the forward's transpose: <dout, F x> == <F dout, x> for
  // the same mask (F is diagonal), checked on random data at rate 0.3.
  std::mt19937 rng(77);
  SCOPED_TRACE("seed 77");
  const std::vector<float> in = Uniform(101, rng, -1, 1), dout = Uniform(101, rng, -1, 1);
  std::vector<uint8_t> m(101);
  std::bernoulli_distribution keep(0.7);
  for (auto& v : m) v = keep(rng) ? 1 : 0;
  std::vector<float> fx(101), fd(101);
  DropoutApply(101, 0.3f, m.data(), in.data(), fx.data());
  DropoutApply(101, 0.3f, m.data(), dout.data(), fd.data());
  double lhs = 0, rhs = 0;
  for (size_t i = 0; i < 101; ++i) {
    EXPECT_EQ(fx[i], m[i] ? in[i] * static_cast<float>(1 / 0.7) : 0.0f) << i;
    lhs += double{dout[i]} * fx[i];
    rhs += double{fd[i]} * in[i];
  }
  EXPECT_NEAR(lhs, rhs, 1e-6);
}

TEST(SoftmaxCrossEntropy, WeightedMeanDividesBySumOfWeights) {
  // Sample 0: logits [0, 0], label 0 -> p = 1/2. Sample 1: [0, ln 3], label 1 -> p = 3/4.
  const float logits[4] = {0, 0, 0, static_cast<float>(std::log(3.0))};
  const int labels[2] = {0, 1};
  const float weight[2] = {1, 3};
  float d[4];
  const double loss = SoftmaxCrossEntropy(2, 2, logits, labels, 0.0f, weight, d);
  EXPECT_NEAR(loss, (std::log(2.0) + 3 * -std::log(0.75)) / 4, 1e-7);
  // dlogits = w / sum w * (p - onehot): sample 0 (1/4)(1/2 - 1, 1/2), sample 1 (3/4)(1/4, 3/4 - 1).
  EXPECT_NEAR(d[0], -0.125, 1e-7);
  EXPECT_NEAR(d[1], 0.125, 1e-7);
  EXPECT_NEAR(d[2], 0.1875, 1e-7);
  EXPECT_NEAR(d[3], -0.1875, 1e-7);
}

TEST(SoftmaxCrossEntropy, ZeroWeightSumGivesZeroLossAndGradient) {
  const float logits[4] = {1, -1, 0.5f, 2};
  const int labels[2] = {1, 1};
  const float weight[2] = {1, 0};  // both samples carry label 1, weight 0
  float d[4] = {7, 7, 7, 7};
  EXPECT_EQ(SoftmaxCrossEntropy(2, 2, logits, labels, 0.1f, weight, d), 0.0);
  EXPECT_EQ(std::vector<float>(d, d + 4), (std::vector<float>{0, 0, 0, 0}));
}

TEST(SoftmaxCrossEntropy, LargeLogitsStayFinite) {
  const float logits[3] = {1000, 1001, 999};
  const int label = 1;
  float d[3];
  const double loss = SoftmaxCrossEntropy(3, 1, logits, &label, 0.0f, nullptr, d);
  const double e = std::exp(1.0), sum = 1 + e + 1 / e;
  EXPECT_NEAR(loss, -std::log(e / sum), 1e-6);
  EXPECT_NEAR(d[0], 1 / sum, 1e-6);
  EXPECT_NEAR(d[1], e / sum - 1, 1e-6);
  EXPECT_NEAR(d[2], 1 / e / sum, 1e-6);
}

}  // namespace
}  // namespace wavepool::nn
