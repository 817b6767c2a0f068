// The im2col + GEMM convolution against the reference kernel (nn::Conv2d) on
// random shapes with odd sizes, unequal strides, padding and dilation; and a
// whole model run both ways.
#include "nn/conv_gemm.h"

#include <random>
#include <vector>

#include "gtest/gtest.h"
#include "nn/kernels.h"
#include "nn/model.h"
#include "nn/spec.h"

namespace wavepool::nn {
namespace {

std::vector<float> Random(size_t n, std::mt19937& rng) {
  std::normal_distribution<float> d(0, 1);
  std::vector<float> v(n);
  for (float& x : v) x = d(rng);
  return v;
}

struct Case {
  const char* name;
  Conv2dParams p;
  bool bias;
};

Conv2dParams P(uint32_t ic, uint32_t h, uint32_t w, uint32_t oc, uint32_t kh, uint32_t kw,
               uint32_t sh, uint32_t sw, uint32_t ph, uint32_t pw, uint32_t dh, uint32_t dw) {
  Conv2dParams p;
  p.in_c = ic, p.in_h = h, p.in_w = w, p.out_c = oc, p.kernel_h = kh, p.kernel_w = kw;
  p.stride_h = sh, p.stride_w = sw, p.pad_h = ph, p.pad_w = pw, p.dilation_h = dh,
  p.dilation_w = dw;
  return p;
}

class ConvGemmTest : public ::testing::TestWithParam<Case> {};

TEST_P(ConvGemmTest, EqualsTheReferenceKernel) {
  const Case& c = GetParam();
  std::mt19937 rng(17);
  const int batch = 3;
  const size_t in = size_t{c.p.in_c} * c.p.in_h * c.p.in_w;
  const size_t out = size_t{c.p.out_c} * c.p.out_h() * c.p.out_w();
  const std::vector<float> x = Random(batch * in, rng);
  const std::vector<float> w = Random(size_t{c.p.out_c} * c.p.in_c * c.p.kernel_h * c.p.kernel_w, rng);
  const std::vector<float> b = Random(c.p.out_c, rng);
  std::vector<float> want(batch * out), got(batch * out, 123.0f);
  std::vector<float> scratch(Conv2dGemmScratch(c.p));
  Conv2d(c.p, batch, x.data(), w.data(), c.bias ? b.data() : nullptr, want.data());
  Conv2dGemm(c.p, batch, x.data(), w.data(), c.bias ? b.data() : nullptr, got.data(),
             scratch.data());
  // Sums of up to in_c * taps products of unit normals: float rounding in a
  // different order stays well below 1e-4 relative to the magnitude.
  for (size_t i = 0; i < want.size(); ++i) {
    EXPECT_NEAR(got[i], want[i], 1e-4f * (1.0f + std::abs(want[i]))) << c.name << " value " << i;
  }
}

INSTANTIATE_TEST_SUITE_P(
    Shapes, ConvGemmTest,
    ::testing::Values(
        Case{"3x3_pad1", P(1, 40, 98, 16, 3, 3, 1, 1, 1, 1, 1, 1), false},
        Case{"3x3_pad1_bias", P(5, 11, 13, 7, 3, 3, 1, 1, 1, 1, 1, 1), true},
        Case{"unequal_strides", P(3, 17, 23, 4, 3, 5, 2, 3, 1, 2, 1, 1), true},
        Case{"dilated", P(2, 15, 19, 3, 3, 3, 1, 1, 2, 2, 2, 2), false},
        Case{"pointwise", P(6, 7, 9, 5, 1, 1, 1, 1, 0, 0, 1, 1), true},
        Case{"pointwise_strided", P(4, 9, 9, 3, 1, 1, 2, 2, 0, 0, 1, 1), false},
        Case{"conv1d_kernel_1xk", P(8, 1, 101, 6, 1, 7, 1, 2, 0, 3, 1, 1), true},
        Case{"kernel_bigger_than_input", P(2, 3, 4, 2, 5, 5, 1, 1, 2, 2, 1, 1), false}),
    [](const ::testing::TestParamInfo<Case>& info) { return std::string(info.param.name); });

TEST(ConvGemm, ModelRunEqualsTheReferencePath) {
  absl::StatusOr<ModelSpec> spec = ParseSpecJson(R"({
    "name": "m", "version": "1", "kind": "FIXED_WINDOWS", "sampleRateHz": 8000,
    "windowing": {"lengthSamples": 800, "hopSamples": 400},
    "frontEnd": {"stft": {"frameLength": 160, "frameHop": 80, "fftSize": 256, "window": "HANN"},
                 "mel": {"numBands": 16, "fMinHz": 0, "fMaxHz": 4000}, "layout": "MEL_AS_FREQ"},
    "layers": [
      {"name": "c1", "conv2d": {"outChannels": 8, "kernelTime": 3, "kernelFreq": 3, "padTime": 1, "padFreq": 1}},
      {"name": "r1", "relu": {}},
      {"name": "p1", "maxPool2d": {"kernelTime": 2, "kernelFreq": 2}},
      {"name": "c2", "conv2d": {"outChannels": 12, "kernelTime": 3, "kernelFreq": 3, "strideTime": 2, "padTime": 1, "padFreq": 1}},
      {"name": "r2", "relu": {}},
      {"name": "gap", "globalAvgPool": {}},
      {"name": "fc", "dense": {"outFeatures": 3}}
    ],
    "labels": ["a", "b", "c"]})");
  ASSERT_TRUE(spec.ok()) << spec.status();
  absl::StatusOr<TensorMap> weights = InitWeights(*spec, 3);
  ASSERT_TRUE(weights.ok()) << weights.status();
  absl::StatusOr<std::shared_ptr<const Model>> model = Model::Create(*spec, *weights);
  ASSERT_TRUE(model.ok()) << model.status();
  std::mt19937 rng(5);
  const int batch = 5;
  const std::vector<float> x = Random(batch * (*model)->input_size(), rng);
  std::vector<float> fast(batch * (*model)->output_size()), ref(fast.size());
  Workspace ws_fast(**model, batch, ConvPath::kGemm), ws_ref(**model, batch, ConvPath::kReference);
  (*model)->Run(x.data(), batch, fast.data(), ws_fast);
  (*model)->Run(x.data(), batch, ref.data(), ws_ref);
  for (size_t i = 0; i < fast.size(); ++i) EXPECT_NEAR(fast[i], ref[i], 1e-4f) << i;
}

}  // namespace
}  // namespace wavepool::nn
