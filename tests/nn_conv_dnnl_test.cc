// The oneDNN convolution (nn::DnnlConv) against the reference kernel
// (nn::Conv2d, a direct 7-deep loop) on random weights and inputs: odd sizes
// and channel counts that are not multiples of oneDNN's 8/16-channel blocks,
// unequal strides, padding, dilation, a negative right padding, 1-D shapes,
// batch 1 and batches around the batched primitive's chunk; fused ReLU; two
// threads on one compiled convolution; and whole models run with the chosen
// kernels against the reference path.
#include "nn/conv_dnnl.h"

#include <algorithm>
#include <cmath>
#include <random>
#include <string>
#include <thread>
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

Conv2dParams P(uint32_t ic, uint32_t h, uint32_t w, uint32_t oc, uint32_t kh, uint32_t kw,
               uint32_t sh, uint32_t sw, uint32_t ph, uint32_t pw, uint32_t dh, uint32_t dw) {
  Conv2dParams p;
  p.in_c = ic, p.in_h = h, p.in_w = w, p.out_c = oc, p.kernel_h = kh, p.kernel_w = kw;
  p.stride_h = sh, p.stride_w = sw, p.pad_h = ph, p.pad_w = pw, p.dilation_h = dh,
  p.dilation_w = dw;
  return p;
}

struct Case {
  const char* name;
  Conv2dParams p;
  bool bias;
};

// Sums of up to in_c * taps products of unit normals, accumulated in another
// order than the reference: float rounding stays well below 1e-4 relative to
// the magnitude (the largest case sums 64 * 9 terms).
void ExpectNear(const std::vector<float>& got, const std::vector<float>& want, const std::string& what) {
  ASSERT_EQ(got.size(), want.size());
  for (size_t i = 0; i < want.size(); ++i) {
    ASSERT_NEAR(got[i], want[i], 1e-4f * (1.0f + std::abs(want[i]))) << what << " value " << i;
  }
}

class DnnlConvTest : public ::testing::TestWithParam<Case> {};

TEST_P(DnnlConvTest, EqualsTheReferenceKernelAtEveryBatch) {
  const Case& c = GetParam();
  std::mt19937 rng(29);
  const size_t in = size_t{c.p.in_c} * c.p.in_h * c.p.in_w;
  const size_t out = size_t{c.p.out_c} * c.p.out_h() * c.p.out_w();
  const std::vector<float> w = Random(size_t{c.p.out_c} * c.p.in_c * c.p.kernel_h * c.p.kernel_w, rng);
  const std::vector<float> b = Random(c.p.out_c, rng);
  for (const bool relu : {false, true}) {
    absl::StatusOr<std::unique_ptr<const DnnlConv>> conv =
        DnnlConv::Create(c.p, w.data(), c.bias ? b.data() : nullptr, relu);
    ASSERT_TRUE(conv.ok()) << conv.status();
    absl::StatusOr<DnnlConv::ThreadPtr> t = (*conv)->NewThread();
    ASSERT_TRUE(t.ok()) << t.status();
    // 1, a chunk and a remainder, and below/at/above the chunk.
    const int chunk = (*conv)->chunk();
    for (const int batch : {1, 3, chunk, chunk + 3, 2 * chunk + 1}) {
      const std::vector<float> x = Random(batch * in, rng);
      std::vector<float> want(batch * out), got(batch * out, 123.0f);
      Conv2d(c.p, batch, x.data(), w.data(), c.bias ? b.data() : nullptr, want.data());
      if (relu) Relu(want.size(), want.data());
      ASSERT_TRUE((*conv)->Run(batch, x.data(), got.data(), **t));
      ExpectNear(got, want,
                 std::string(c.name) + " (" + (*conv)->impl() + ") batch " + std::to_string(batch) +
                     (relu ? " relu" : ""));
    }
  }
}

INSTANTIATE_TEST_SUITE_P(
    Shapes, DnnlConvTest,
    ::testing::Values(
        // The digit model's first and third layers, the ECG model's first.
        Case{"digits_conv1", P(1, 40, 101, 16, 3, 3, 1, 1, 1, 1, 1, 1), false},
        Case{"digits_conv3", P(32, 10, 25, 64, 3, 3, 1, 1, 1, 1, 1, 1), true},
        Case{"ecg_conv1", P(6, 1, 234, 16, 1, 7, 1, 1, 0, 3, 1, 1), false},
        Case{"3x3_pad1_odd_channels", P(5, 11, 13, 7, 3, 3, 1, 1, 1, 1, 1, 1), true},
        Case{"unequal_strides", P(3, 17, 23, 4, 3, 5, 2, 3, 1, 2, 1, 1), true},
        Case{"dilated", P(2, 15, 19, 3, 3, 3, 1, 1, 2, 2, 2, 2), false},
        Case{"dilated_strided_17_channels", P(17, 9, 21, 19, 3, 2, 2, 1, 1, 0, 2, 3), true},
        // Floor division leaves the last input column unused: right pad -1.
        Case{"negative_right_pad", P(4, 6, 11, 8, 2, 2, 2, 2, 0, 0, 1, 1), true},
        Case{"pointwise", P(6, 7, 9, 5, 1, 1, 1, 1, 0, 0, 1, 1), true},
        Case{"pointwise_strided", P(4, 9, 9, 3, 1, 1, 2, 2, 0, 0, 1, 1), false},
        Case{"conv1d_kernel_1xk", P(8, 1, 101, 6, 1, 7, 1, 2, 0, 3, 1, 1), true},
        Case{"kernel_bigger_than_input", P(2, 3, 4, 2, 5, 5, 1, 1, 2, 2, 1, 1), false}),
    [](const ::testing::TestParamInfo<Case>& info) { return std::string(info.param.name); });

TEST(DnnlConv, EmptyOutputIsAnError) {
  const Conv2dParams p = P(2, 3, 3, 2, 5, 5, 1, 1, 0, 0, 1, 1);  // 5x5 kernel, 3x3 input, no pad
  const std::vector<float> w(2 * 2 * 25, 1.0f);
  absl::StatusOr<std::unique_ptr<const DnnlConv>> conv = DnnlConv::Create(p, w.data(), nullptr);
  EXPECT_EQ(conv.status().code(), absl::StatusCode::kInvalidArgument);
}

// One compiled convolution, two threads each with its own Thread state, at the
// same time: the primitives and weights are shared read-only.
TEST(DnnlConv, TwoThreadsShareOneCompiledConvolution) {
  const Conv2dParams p = P(16, 20, 50, 32, 3, 3, 1, 1, 1, 1, 1, 1);
  std::mt19937 rng(31);
  const std::vector<float> w = Random(size_t{32} * 16 * 9, rng);
  const std::vector<float> b = Random(32, rng);
  absl::StatusOr<std::unique_ptr<const DnnlConv>> conv = DnnlConv::Create(p, w.data(), b.data());
  ASSERT_TRUE(conv.ok()) << conv.status();
  const int batch = 2;
  const size_t out = size_t{32} * 20 * 50;
  std::vector<float> x[2] = {Random(batch * size_t{16} * 20 * 50, rng),
                             Random(batch * size_t{16} * 20 * 50, rng)};
  std::vector<float> got[2] = {std::vector<float>(batch * out), std::vector<float>(batch * out)};
  bool ok[2] = {false, false};
  std::vector<std::thread> threads;
  for (int i = 0; i < 2; ++i) {
    threads.emplace_back([&, i] {
      absl::StatusOr<DnnlConv::ThreadPtr> t = (*conv)->NewThread();
      if (!t.ok()) return;
      ok[i] = true;
      for (int rep = 0; rep < 20 && ok[i]; ++rep) {
        ok[i] = (*conv)->Run(batch, x[i].data(), got[i].data(), **t);
      }
    });
  }
  for (auto& t : threads) t.join();
  for (int i = 0; i < 2; ++i) {
    ASSERT_TRUE(ok[i]) << "thread " << i;
    std::vector<float> want(batch * out);
    Conv2d(p, batch, x[i].data(), w.data(), b.data(), want.data());
    ExpectNear(got[i], want, "thread " + std::to_string(i));
  }
}

// A model with the chosen kernels (oneDNN where it has a JIT kernel), with
// im2col + GEMM forced, and with the reference loop: the same outputs, and
// Profile names the kernel that ran.
TEST(DnnlConv, ModelRunEqualsTheReferencePathOnEveryConvPath) {
  absl::StatusOr<ModelSpec> spec = ParseSpecJson(R"({
    "name": "m", "version": "1", "kind": "FIXED_WINDOWS", "sampleRateHz": 8000,
    "windowing": {"lengthSamples": 800, "hopSamples": 400},
    "frontEnd": {"stft": {"frameLength": 160, "frameHop": 80, "fftSize": 256, "window": "HANN"},
                 "mel": {"numBands": 16, "fMinHz": 0, "fMaxHz": 4000}, "layout": "MEL_AS_FREQ"},
    "layers": [
      {"name": "c1", "conv2d": {"outChannels": 8, "kernelTime": 3, "kernelFreq": 3, "padTime": 1, "padFreq": 1}},
      {"name": "bn1", "batchNorm": {}},
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
  std::mt19937 rng(7);
  const int max_batch = 11;
  const std::vector<float> x = Random(max_batch * (*model)->input_size(), rng);
  Workspace chosen(**model, max_batch, ConvPath::kChosen);
  Workspace gemm(**model, max_batch, ConvPath::kGemm);
  Workspace ref(**model, max_batch, ConvPath::kReference);
  for (const int batch : {1, 2, 9, 11}) {
    std::vector<float> want(batch * (*model)->output_size());
    std::vector<float> a(want.size()), b(want.size());
    (*model)->Run(x.data(), batch, want.data(), ref);
    (*model)->Run(x.data(), batch, a.data(), chosen);
    (*model)->Run(x.data(), batch, b.data(), gemm);
    ExpectNear(a, want, "chosen, batch " + std::to_string(batch));
    ExpectNear(b, want, "gemm, batch " + std::to_string(batch));
  }
  for (const auto& [ws, prefix] : {std::pair<Workspace*, std::string>{&chosen, "onednn "},
                                   {&gemm, "im2col+sgemm"},
                                   {&ref, "reference"}}) {
    for (const LayerTime& t : (*model)->Profile(x.data(), 1, *ws, 1)) {
      if (t.op == "conv2d") {
        EXPECT_EQ(t.kernel.rfind(prefix, 0), 0u) << t.kernel;
      } else {
        EXPECT_EQ(t.kernel, "") << t.op;
      }
    }
  }
}

}  // namespace
}  // namespace wavepool::nn
