// One table of layer cases drives two tests: each kernel called directly, and
// the same layer compiled from a spec by Model::Create and run by Model::Run.
// Both are compared with a naive, obviously-correct reference written here
// (explicit padding checks, double accumulation), on random inputs with fixed
// seeds (printed on failure), odd sizes, unequal time / frequency kernels and
// strides, padding, dilation and batch > 1.
//
// Tolerance: |got - ref| <= 1e-6 + (n + 1) * 2^-23 * sum |terms|, the forward
// error bound of an n-term float sum (Higham, "Accuracy and Stability of
// Numerical Algorithms", 2nd ed., eq. 4.4, with u = 2^-24 doubled for the
// product roundings). Max pooling, ReLU, dropout and flatten must be exact.
#include <array>
#include <cmath>
#include <cstring>
#include <map>
#include <random>
#include <string>
#include <vector>

#include "google/protobuf/util/json_util.h"
#include "gtest/gtest.h"
#include "nn/kernels.h"
#include "nn/model.h"
#include "nn/spec.h"

namespace wavepool::nn {
namespace {

using ::wavepool::v1::LayerSpec;

struct LayerCase {
  const char* name;
  Shape in;
  const char* layer_json;  // the LayerSpec without its name
  int batch;
};

// clang-format off
const LayerCase kCases[] = {
  {"conv2d_1x1", {3, 5, 7}, R"({"conv2d": {"outChannels": 4, "kernelTime": 1, "kernelFreq": 1}})", 2},
  {"conv2d_3x5_same_pad", {2, 9, 13}, R"({"conv2d": {"outChannels": 3, "kernelTime": 5, "kernelFreq": 3, "padTime": 2, "padFreq": 1}})", 3},
  {"conv2d_unequal_strides", {3, 11, 17}, R"({"conv2d": {"outChannels": 2, "kernelTime": 4, "kernelFreq": 3, "strideTime": 3, "strideFreq": 2, "padTime": 1}})", 2},
  {"conv2d_dilation", {2, 12, 19}, R"({"conv2d": {"outChannels": 3, "kernelTime": 3, "kernelFreq": 2, "strideTime": 2, "padTime": 1, "padFreq": 2, "dilationTime": 2, "dilationFreq": 3}})", 3},
  {"conv2d_kernel_larger_than_input", {1, 2, 3}, R"({"conv2d": {"outChannels": 2, "kernelTime": 5, "kernelFreq": 3, "padTime": 2, "padFreq": 1}})", 2},
  {"conv2d_no_bias_stride_over_kernel", {2, 7, 10}, R"({"conv2d": {"outChannels": 3, "kernelTime": 2, "kernelFreq": 2, "strideTime": 3, "strideFreq": 3, "noBias": true}})", 3},
  {"conv2d_one_input_channel", {1, 10, 15}, R"({"conv2d": {"outChannels": 5, "kernelTime": 3, "kernelFreq": 3}})", 1},
  {"conv1d_stride_pad_dilation", {5, 1, 23}, R"({"conv1d": {"outChannels": 4, "kernel": 7, "stride": 2, "padding": 3, "dilation": 2}})", 3},
  {"conv1d_one_tap_no_bias", {3, 1, 9}, R"({"conv1d": {"outChannels": 2, "kernel": 1, "noBias": true}})", 2},
  {"max_pool2d_default_stride", {2, 9, 13}, R"({"maxPool2d": {"kernelTime": 3, "kernelFreq": 2}})", 2},
  {"max_pool2d_unequal_strides_pad", {3, 11, 17}, R"({"maxPool2d": {"kernelTime": 3, "kernelFreq": 4, "strideTime": 1, "strideFreq": 2, "padTime": 1, "padFreq": 2}})", 3},
  {"max_pool2d_stride_over_kernel", {1, 10, 21}, R"({"maxPool2d": {"kernelTime": 2, "kernelFreq": 1, "strideTime": 3, "strideFreq": 2}})", 2},
  {"avg_pool2d_exclude_pad", {2, 9, 14}, R"({"avgPool2d": {"kernelTime": 3, "kernelFreq": 3, "strideTime": 2, "strideFreq": 2, "padTime": 1, "padFreq": 1}})", 2},
  {"avg_pool2d_include_pad", {2, 9, 14}, R"({"avgPool2d": {"kernelTime": 3, "kernelFreq": 3, "strideTime": 2, "strideFreq": 2, "padTime": 1, "padFreq": 1, "countIncludePad": true}})", 2},
  {"avg_pool2d_unequal", {3, 10, 11}, R"({"avgPool2d": {"kernelTime": 4, "kernelFreq": 2, "strideTime": 1, "strideFreq": 3, "padTime": 2}})", 3},
  {"max_pool1d_pad", {4, 1, 19}, R"({"maxPool1d": {"kernel": 3, "stride": 2, "padding": 1}})", 2},
  {"avg_pool1d_include_pad", {4, 1, 20}, R"({"avgPool1d": {"kernel": 4, "padding": 2, "countIncludePad": true}})", 2},
  {"avg_pool1d_exclude_pad", {3, 1, 17}, R"({"avgPool1d": {"kernel": 5, "stride": 3, "padding": 2}})", 3},
  {"global_avg_pool", {3, 7, 11}, R"({"globalAvgPool": {}})", 3},
  {"global_max_pool", {2, 5, 9}, R"({"globalMaxPool": {}})", 2},
  {"dense_flattens", {3, 4, 5}, R"({"dense": {"outFeatures": 7}})", 3},
  {"dense_no_bias", {13, 1, 1}, R"({"dense": {"outFeatures": 3, "noBias": true}})", 2},
  {"relu", {3, 6, 7}, R"({"relu": {}})", 2},
  // After the 1x1 prefix conv the model folds this into it; the next case has
  // nothing to fold into and runs as a channel affine.
  {"batch_norm_folded", {4, 5, 6}, R"({"batchNorm": {"epsilon": 0.001}})", 2},
  {"batch_norm_affine", {4, 1, 9}, R"({"batchNorm": {}})", 3},
  {"softmax", {6, 1, 1}, R"({"softmax": {}})", 3},
  {"dropout_identity", {2, 3, 4}, R"({"dropout": {"rate": 0.5}})", 2},
  {"flatten_identity", {2, 3, 4}, R"({"flatten": {}})", 2},
};
// clang-format on

using Weights = std::map<std::string, Tensor>;

LayerSpec ParseLayer(const LayerCase& c) {
  LayerSpec layer;
  const auto st = google::protobuf::util::JsonStringToMessage(c.layer_json, &layer);
  EXPECT_TRUE(st.ok()) << st.message();
  layer.set_name("layer");
  return layer;
}

uint32_t Or(uint32_t v, uint32_t fallback) { return v == 0 ? fallback : v; }
uint32_t OutSize(int64_t in, int64_t k, int64_t s, int64_t p, int64_t d) {
  return static_cast<uint32_t>((in + 2 * p - d * (k - 1) - 1) / s + 1);
}

// The geometry of a conv or pool case on (H = freq, W = time), defaults applied
// independently of the library: conv stride / dilation 0 -> 1, pool stride 0 -> kernel.
struct Geometry {
  uint32_t kh = 1, kw = 1, sh = 1, sw = 1, ph = 0, pw = 0, dh = 1, dw = 1;
  uint32_t out_c = 0;
  bool bias = false, include_pad = false;
};

Geometry GeometryOf(const LayerSpec& l) {
  Geometry g;
  if (l.has_conv2d()) {
    const auto& c = l.conv2d();
    g = {c.kernel_freq(), c.kernel_time(), Or(c.stride_freq(), 1), Or(c.stride_time(), 1),
         c.pad_freq(), c.pad_time(), Or(c.dilation_freq(), 1), Or(c.dilation_time(), 1),
         c.out_channels(), !c.no_bias(), false};
  } else if (l.has_conv1d()) {
    const auto& c = l.conv1d();
    g = {1, c.kernel(), 1, Or(c.stride(), 1), 0, c.padding(), 1, Or(c.dilation(), 1),
         c.out_channels(), !c.no_bias(), false};
  } else if (l.has_max_pool2d() || l.has_avg_pool2d()) {
    const auto& p = l.has_max_pool2d() ? l.max_pool2d() : l.avg_pool2d();
    g = {p.kernel_freq(), p.kernel_time(), Or(p.stride_freq(), p.kernel_freq()),
         Or(p.stride_time(), p.kernel_time()), p.pad_freq(), p.pad_time(), 1, 1, 0, false,
         p.count_include_pad()};
  } else if (l.has_max_pool1d() || l.has_avg_pool1d()) {
    const auto& p = l.has_max_pool1d() ? l.max_pool1d() : l.avg_pool1d();
    g = {1, p.kernel(), 1, Or(p.stride(), p.kernel()), 0, p.padding(), 1, 1, 0, false,
         p.count_include_pad()};
  }
  return g;
}

Shape RefOutShape(const LayerSpec& l, const Shape& in) {
  const Geometry g = GeometryOf(l);
  if (l.has_conv2d() || l.has_conv1d()) {
    return {g.out_c, OutSize(in.h, g.kh, g.sh, g.ph, g.dh), OutSize(in.w, g.kw, g.sw, g.pw, g.dw)};
  }
  if (l.has_max_pool2d() || l.has_avg_pool2d() || l.has_max_pool1d() || l.has_avg_pool1d()) {
    return {in.c, OutSize(in.h, g.kh, g.sh, g.ph, 1), OutSize(in.w, g.kw, g.sw, g.pw, 1)};
  }
  if (l.has_global_avg_pool() || l.has_global_max_pool()) return {in.c, 1, 1};
  if (l.has_dense()) return {l.dense().out_features(), 1, 1};
  return in;
}

std::vector<float> Uniform(size_t n, std::mt19937& rng, float lo = -1, float hi = 1) {
  std::uniform_real_distribution<float> u(lo, hi);
  std::vector<float> v(n);
  for (float& x : v) x = u(rng);
  return v;
}

// Random weights for the layer, PyTorch shapes, named as in the weights file.
Weights MakeWeights(const LayerSpec& l, const Shape& in, std::mt19937& rng) {
  Weights w;
  const Geometry g = GeometryOf(l);
  const auto add = [&](const std::string& n, std::vector<int64_t> shape, float lo, float hi) {
    size_t count = 1;
    for (int64_t d : shape) count *= static_cast<size_t>(d);
    w[n] = Tensor{shape, Uniform(count, rng, lo, hi)};
  };
  if (l.has_conv2d()) add("layer.weight", {g.out_c, in.c, g.kh, g.kw}, -1, 1);
  if (l.has_conv1d()) add("layer.weight", {g.out_c, in.c, g.kw}, -1, 1);
  if (l.has_dense()) add("layer.weight", {l.dense().out_features(), static_cast<int64_t>(in.size())}, -1, 1);
  if (l.has_dense() && !l.dense().no_bias()) add("layer.bias", {l.dense().out_features()}, -1, 1);
  if (g.bias) add("layer.bias", {g.out_c}, -1, 1);
  if (l.has_batch_norm()) {
    add("layer.weight", {in.c}, 0.5, 2);
    add("layer.bias", {in.c}, -1, 1);
    add("layer.running_mean", {in.c}, -1, 1);
    add("layer.running_var", {in.c}, 0.1, 2);
  }
  return w;
}

struct RefOut {
  std::vector<double> value;
  std::vector<double> tol;  // per element, see the file comment
};

constexpr double kU = 1.0 / (1 << 23);

RefOut Reference(const LayerSpec& l, const Shape& in, int batch, const std::vector<float>& x,
                 const Weights& w) {
  const Shape out = RefOutShape(l, in);
  const Geometry g = GeometryOf(l);
  RefOut r;
  r.value.assign(out.size() * batch, 0.0);
  r.tol.assign(out.size() * batch, 0.0);
  const auto X = [&](int b, int64_t c, int64_t h, int64_t t) {
    return double{x[((size_t(b) * in.c + c) * in.h + h) * in.w + t]};
  };
  const auto at = [&](int b, int64_t c, int64_t h, int64_t t) {
    return ((size_t(b) * out.c + c) * out.h + h) * out.w + t;
  };
  const auto finish = [&](size_t i, double v, double sum_abs, double terms) {
    r.value[i] = v;
    r.tol[i] = 1e-6 + (terms + 1) * kU * sum_abs;
  };
  if (l.has_conv2d() || l.has_conv1d()) {
    const std::vector<float>& wt = w.at("layer.weight").data;
    const float* bias = g.bias ? w.at("layer.bias").data.data() : nullptr;
    // The seven loops.
    for (int b = 0; b < batch; ++b)
      for (int64_t oc = 0; oc < out.c; ++oc)
        for (int64_t oy = 0; oy < out.h; ++oy)
          for (int64_t ox = 0; ox < out.w; ++ox) {
            double acc = bias ? bias[oc] : 0.0, sum_abs = std::abs(acc), terms = 0;
            for (int64_t ic = 0; ic < in.c; ++ic)
              for (int64_t ky = 0; ky < g.kh; ++ky)
                for (int64_t kx = 0; kx < g.kw; ++kx) {
                  const int64_t iy = oy * g.sh - g.ph + ky * g.dh;
                  const int64_t ix = ox * g.sw - g.pw + kx * g.dw;
                  if (iy < 0 || iy >= in.h || ix < 0 || ix >= in.w) continue;  // zero padding
                  const double t = wt[((oc * in.c + ic) * g.kh + ky) * g.kw + kx] * X(b, ic, iy, ix);
                  acc += t;
                  sum_abs += std::abs(t);
                  ++terms;
                }
            finish(at(b, oc, oy, ox), acc, sum_abs, terms);
          }
  } else if (l.has_max_pool2d() || l.has_avg_pool2d() || l.has_max_pool1d() || l.has_avg_pool1d()) {
    const bool is_max = l.has_max_pool2d() || l.has_max_pool1d();
    for (int b = 0; b < batch; ++b)
      for (int64_t c = 0; c < out.c; ++c)
        for (int64_t oy = 0; oy < out.h; ++oy)
          for (int64_t ox = 0; ox < out.w; ++ox) {
            double m = 0, sum = 0, sum_abs = 0;
            int real = 0;
            for (int64_t ky = 0; ky < g.kh; ++ky)
              for (int64_t kx = 0; kx < g.kw; ++kx) {
                const int64_t iy = oy * g.sh - g.ph + ky;
                const int64_t ix = ox * g.sw - g.pw + kx;
                if (iy < 0 || iy >= in.h || ix < 0 || ix >= in.w) continue;  // padding
                const double v = X(b, c, iy, ix);
                if (real == 0 || v > m) m = v;  // first maximum wins
                sum += v;
                sum_abs += std::abs(v);
                ++real;
              }
            const double area = g.include_pad ? double(g.kh) * g.kw : double(real);
            if (is_max) {
              finish(at(b, c, oy, ox), m, 0, 0);
              r.tol[at(b, c, oy, ox)] = 0;
            } else {
              finish(at(b, c, oy, ox), sum / area, sum_abs / area, real + 1);
            }
          }
  } else if (l.has_global_avg_pool() || l.has_global_max_pool()) {
    for (int b = 0; b < batch; ++b)
      for (int64_t c = 0; c < in.c; ++c) {
        double m = X(b, c, 0, 0), sum = 0, sum_abs = 0;
        for (int64_t h = 0; h < in.h; ++h)
          for (int64_t t = 0; t < in.w; ++t) {
            m = std::max(m, X(b, c, h, t));
            sum += X(b, c, h, t);
            sum_abs += std::abs(X(b, c, h, t));
          }
        const double n = double(in.h) * in.w;
        if (l.has_global_max_pool()) {
          r.value[b * in.c + c] = m;
        } else {
          finish(b * in.c + c, sum / n, sum_abs / n, n);
        }
      }
  } else if (l.has_dense()) {
    const size_t n = in.size();
    const std::vector<float>& wt = w.at("layer.weight").data;
    const bool has_bias = !l.dense().no_bias();
    for (int b = 0; b < batch; ++b)
      for (size_t o = 0; o < out.c; ++o) {
        double acc = has_bias ? w.at("layer.bias").data[o] : 0.0, sum_abs = std::abs(acc);
        for (size_t i = 0; i < n; ++i) {
          const double t = double{wt[o * n + i]} * x[b * n + i];
          acc += t;
          sum_abs += std::abs(t);
        }
        finish(b * out.c + o, acc, sum_abs, double(n));
      }
  } else if (l.has_batch_norm()) {
    const double eps = l.batch_norm().epsilon() == 0 ? 1e-5 : l.batch_norm().epsilon();
    const size_t hw = size_t{in.h} * in.w;
    for (int b = 0; b < batch; ++b)
      for (size_t c = 0; c < in.c; ++c)
        for (size_t i = 0; i < hw; ++i) {
          const size_t k = (b * in.c + c) * hw + i;
          const double y = (x[k] - w.at("layer.running_mean").data[c]) /
                               std::sqrt(w.at("layer.running_var").data[c] + eps) *
                               w.at("layer.weight").data[c] +
                           w.at("layer.bias").data[c];
          finish(k, y, 8 * (std::abs(y) + std::abs(x[k]) + 1), 2);
        }
  } else if (l.has_softmax()) {
    for (int b = 0; b < batch; ++b) {
      double sum = 0;
      for (size_t c = 0; c < in.c; ++c) sum += std::exp(double{x[b * in.c + c]});
      for (size_t c = 0; c < in.c; ++c) {
        finish(b * in.c + c, std::exp(double{x[b * in.c + c]}) / sum, 1, 4 * in.c);
      }
    }
  } else {  // relu, dropout, flatten
    for (size_t i = 0; i < r.value.size(); ++i) {
      r.value[i] = l.has_relu() ? std::max(0.0, double{x[i]}) : double{x[i]};
    }
  }
  return r;
}

void ExpectNear(const RefOut& ref, const std::vector<float>& got, const std::string& what) {
  ASSERT_EQ(ref.value.size(), got.size()) << what;
  int shown = 0;
  for (size_t i = 0; i < got.size(); ++i) {
    if (std::abs(got[i] - ref.value[i]) > ref.tol[i] && shown++ < 5) {
      ADD_FAILURE() << what << ": element " << i << " is " << got[i] << ", reference "
                    << ref.value[i] << " (tolerance " << ref.tol[i] << ")";
    }
  }
}

// Calls the kernel directly, with guard values around the output.
std::vector<float> RunKernel(const LayerSpec& l, const Shape& in, int batch, std::vector<float> x,
                             const Weights& w) {
  constexpr size_t kGuard = 16;
  constexpr float kSentinel = -12345.0f;
  const Shape out = RefOutShape(l, in);
  std::vector<float> buf(out.size() * batch + 2 * kGuard, kSentinel);
  float* o = buf.data() + kGuard;
  const Geometry g = GeometryOf(l);
  const auto wt = [&](const char* n) { return w.count(n) ? w.at(n).data.data() : nullptr; };
  if (l.has_conv2d() || l.has_conv1d()) {
    Conv2dParams p{in.c, in.h, in.w, g.out_c, g.kh, g.kw, g.sh, g.sw, g.ph, g.pw, g.dh, g.dw};
    Conv2d(p, batch, x.data(), wt("layer.weight"), g.bias ? wt("layer.bias") : nullptr, o);
  } else if (l.has_max_pool2d() || l.has_max_pool1d() || l.has_avg_pool2d() || l.has_avg_pool1d()) {
    Pool2dParams p{in.c, in.h, in.w, g.kh, g.kw, g.sh, g.sw, g.ph, g.pw, g.include_pad};
    if (l.has_max_pool2d() || l.has_max_pool1d()) {
      MaxPool2d(p, batch, x.data(), o);
    } else {
      AvgPool2d(p, batch, x.data(), o);
    }
  } else if (l.has_global_avg_pool()) {
    GlobalAvgPool(in.c, in.h * in.w, batch, x.data(), o);
  } else if (l.has_global_max_pool()) {
    GlobalMaxPool(in.c, in.h * in.w, batch, x.data(), o);
  } else if (l.has_dense()) {
    Dense(static_cast<uint32_t>(in.size()), out.c, batch, x.data(), wt("layer.weight"),
          l.dense().no_bias() ? nullptr : wt("layer.bias"), o);
  } else {
    // In-place kernels.
    std::copy(x.begin(), x.end(), o);
    if (l.has_relu()) Relu(x.size(), o);
    if (l.has_softmax()) {
      for (int b = 0; b < batch; ++b) Softmax(in.c, o + b * in.c);
    }
    if (l.has_batch_norm()) {
      const double eps = l.batch_norm().epsilon() == 0 ? 1e-5 : l.batch_norm().epsilon();
      std::vector<float> scale(in.c), shift(in.c);
      for (size_t c = 0; c < in.c; ++c) {
        const double s = w.at("layer.weight").data[c] / std::sqrt(w.at("layer.running_var").data[c] + eps);
        scale[c] = static_cast<float>(s);
        shift[c] = static_cast<float>(w.at("layer.bias").data[c] - w.at("layer.running_mean").data[c] * s);
      }
      ChannelAffine(in.c, in.h * in.w, batch, scale.data(), shift.data(), o);
    }
  }
  for (size_t i = 0; i < kGuard; ++i) {
    EXPECT_EQ(buf[i], kSentinel) << "write before the output at " << i;
    EXPECT_EQ(buf[buf.size() - 1 - i], kSentinel) << "write after the output";
  }
  return std::vector<float>(o, o + out.size() * batch);
}

class LayerCaseTest : public ::testing::TestWithParam<size_t> {
 protected:
  const LayerCase& Case() const { return kCases[GetParam()]; }
  uint32_t Seed() const { return 1000 + static_cast<uint32_t>(GetParam()); }
};

TEST_P(LayerCaseTest, KernelMatchesReference) {
  const LayerCase& c = Case();
  SCOPED_TRACE(std::string("case ") + c.name + ", seed " + std::to_string(Seed()));
  const LayerSpec l = ParseLayer(c);
  std::mt19937 rng(Seed());
  const std::vector<float> x = Uniform(c.in.size() * c.batch, rng);
  const Weights w = MakeWeights(l, c.in, rng);
  ExpectNear(Reference(l, c.in, c.batch, x, w), RunKernel(l, c.in, c.batch, x, w), "kernel");
}

// A spec whose network is: [a 1x1 conv "pre" from 1 to C channels when the case
// needs C > 1 channels and H > 1] + the layer + flatten; labels one per output.
ModelSpec SpecFor(const LayerSpec& layer, const Shape& in, const Shape& out, bool* prefix) {
  ModelSpec s;
  s.set_kind(::wavepool::v1::FIXED_WINDOWS);
  s.set_sample_rate_hz(16000);
  auto* fe = s.mutable_front_end();
  fe->mutable_stft()->set_frame_length(16);
  fe->mutable_stft()->set_frame_hop(16);
  fe->mutable_stft()->set_fft_size(1024);
  fe->mutable_stft()->set_window(::wavepool::v1::HANN);
  fe->mutable_mel()->set_f_max_hz(8000);
  const bool channels = in.h == 1 && in.c > 1;
  fe->set_layout(channels ? ::wavepool::v1::MEL_AS_CHANNELS : ::wavepool::v1::MEL_AS_FREQ);
  fe->mutable_mel()->set_num_bands(channels ? in.c : in.h);
  s.mutable_windowing()->set_length_samples(16 * in.w);
  s.mutable_windowing()->set_hop_samples(16);
  *prefix = !channels && in.c > 1;
  if (*prefix) {
    auto* pre = s.add_layers();
    pre->set_name("pre");
    pre->mutable_conv2d()->set_out_channels(in.c);
    pre->mutable_conv2d()->set_kernel_time(1);
    pre->mutable_conv2d()->set_kernel_freq(1);
  }
  *s.add_layers() = layer;
  auto* flat = s.add_layers();
  flat->set_name("flat");
  flat->mutable_flatten();
  for (size_t i = 0; i < out.size(); ++i) s.add_labels(std::string("l").append(std::to_string(i)));
  return s;
}

TEST_P(LayerCaseTest, ModelMatchesReference) {
  const LayerCase& c = Case();
  SCOPED_TRACE(std::string("case ") + c.name + ", seed " + std::to_string(Seed()));
  const LayerSpec l = ParseLayer(c);
  const Shape out = RefOutShape(l, c.in);
  bool prefix = false;
  const ModelSpec spec = SpecFor(l, c.in, out, &prefix);
  std::mt19937 rng(Seed());
  Weights w = MakeWeights(l, c.in, rng);
  const Shape model_in = prefix ? Shape{1, c.in.h, c.in.w} : c.in;
  const std::vector<float> input = Uniform(model_in.size() * c.batch, rng);
  // The layer's input: the prefix conv computed here, in float as the model does.
  std::vector<float> x = input;
  if (prefix) {
    const std::vector<float> pw = Uniform(c.in.c, rng), pb = Uniform(c.in.c, rng);
    w["pre.weight"] = Tensor{{c.in.c, 1, 1, 1}, pw};
    w["pre.bias"] = Tensor{{c.in.c}, pb};
    const size_t hw = size_t{c.in.h} * c.in.w;
    x.assign(c.in.size() * c.batch, 0);
    for (int b = 0; b < c.batch; ++b)
      for (size_t ch = 0; ch < c.in.c; ++ch)
        for (size_t i = 0; i < hw; ++i) {
          float v = pb[ch];
          v += pw[ch] * input[b * hw + i];
          x[(b * c.in.c + ch) * hw + i] = v;
        }
  }
  auto model = Model::Create(spec, w);
  ASSERT_TRUE(model.ok()) << model.status();
  ASSERT_EQ((*model)->input_shape(), model_in);
  ASSERT_EQ((*model)->output_size(), out.size());
  Workspace ws(**model, c.batch);
  std::vector<float> got(out.size() * c.batch);
  (*model)->Run(input.data(), c.batch, got.data(), ws);
  RefOut ref = Reference(l, c.in, c.batch, x, w);
  if (l.has_batch_norm() && prefix) {
    // Folding rounds the conv weights once more: widen by the folded product.
    for (size_t i = 0; i < ref.tol.size(); ++i) ref.tol[i] += 4 * kU * (std::abs(ref.value[i]) + 4);
  }
  ExpectNear(ref, got, "model");
}

INSTANTIATE_TEST_SUITE_P(Table, LayerCaseTest, ::testing::Range<size_t>(0, std::size(kCases)),
                         [](const ::testing::TestParamInfo<size_t>& info) {
                           return std::string(kCases[info.param].name);
                         });

TEST(MaxPool2d, FirstMaximumWinsTies) {
  // +0 and -0 compare equal; the sign of the result shows which cell won.
  const float in[4] = {-0.0f, 0.0f, 0.0f, -0.0f};  // one row of 4, two windows of 2
  Pool2dParams p;
  p.in_w = 4;
  p.kernel_w = 2;
  p.stride_w = 2;
  float out[2] = {1, 1};
  MaxPool2d(p, 1, in, out);
  EXPECT_TRUE(std::signbit(out[0])) << "window [-0, +0] must give the first, -0";
  EXPECT_FALSE(std::signbit(out[1])) << "window [+0, -0] must give the first, +0";
}

TEST(MaxPool2d, FastPathEqualsReferenceBitForBit) {
  // Unpadded pools take the vectorised path; it must give the reference scan's
  // exact bits (ties between +0 and -0 included) for any kernel and stride.
  std::mt19937 rng(7);
  std::uniform_int_distribution<int> pick(0, 4);
  for (const auto [c, h, w, kh, kw, sh, sw] : {std::array<uint32_t, 7>{3, 7, 11, 2, 2, 2, 2},
                                              {2, 1, 33, 1, 2, 1, 2},
                                              {4, 9, 10, 3, 2, 2, 3},
                                              {1, 5, 5, 5, 5, 1, 1},
                                              {2, 6, 13, 2, 3, 3, 1}}) {
    Pool2dParams p{c, h, w, kh, kw, sh, sw, 0, 0, false};
    const int batch = 2;
    std::vector<float> in(size_t{batch} * c * h * w);
    // Few distinct values, signed zeros among them, so ties are common.
    const float values[5] = {-0.0f, 0.0f, 1.5f, -2.0f, 1.5f};
    for (float& v : in) v = values[pick(rng)];
    const size_t n = size_t{batch} * c * p.out_h() * p.out_w();
    std::vector<float> fast(n, 7.0f), ref(n, 9.0f);
    MaxPool2d(p, batch, in.data(), fast.data());
    MaxPool2dReference(p, batch, in.data(), ref.data());
    ASSERT_EQ(0, std::memcmp(fast.data(), ref.data(), n * sizeof(float)))
        << "pool " << kh << "x" << kw << " stride " << sh << "x" << sw << " on " << h << "x" << w;
  }
}

TEST(MaxPool2d, PaddedCellsNeverWin) {
  // All-negative input with padding: a padded zero would win if counted.
  const float in[3] = {-3, -2, -5};
  Pool2dParams p;
  p.in_w = 3;
  p.kernel_w = 2;
  p.stride_w = 2;
  p.pad_w = 1;
  float out[2] = {};
  MaxPool2d(p, 1, in, out);
  EXPECT_EQ(out[0], -3);  // window {pad, -3}
  EXPECT_EQ(out[1], -2);  // window {-2, -5}
}

TEST(Softmax, LargeLogitsStayFinite) {
  float x[3] = {1000, 1001, 999};
  Softmax(3, x);
  const double e = std::exp(1.0), sum = 1 + e + 1 / e;
  EXPECT_NEAR(x[0], 1 / sum, 1e-6);
  EXPECT_NEAR(x[1], e / sum, 1e-6);
  EXPECT_NEAR(x[2], 1 / e / sum, 1e-6);
}

TEST(OutSize, MatchesTheProtoFormulas) {
  EXPECT_EQ(ConvOutSize(98, 3, 1, 1, 1), 98u);
  EXPECT_EQ(ConvOutSize(98, 3, 2, 0, 2), 47u);  // (98 - 4 - 1) / 2 + 1
  EXPECT_EQ(ConvOutSize(2, 5, 1, 0, 1), 0u);    // kernel larger than the input
  EXPECT_EQ(PoolOutSize(7, 2, 2, 0), 3u);       // floor, no ceil mode
  EXPECT_EQ(PoolOutSize(7, 2, 2, 1), 4u);
}

}  // namespace
}  // namespace wavepool::nn
