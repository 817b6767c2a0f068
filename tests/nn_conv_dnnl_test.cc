// The oneDNN segments (nn::DnnlSegment) against the reference kernels
// (nn::Conv2d, a direct 7-deep loop; nn::MaxPool2dReference, nn::AvgPool2d)
// on random weights and inputs: one convolution on odd sizes and channel
// counts that are not multiples of oneDNN's 8/16-channel blocks, unequal
// strides, padding, dilation, a negative right padding, 1-D shapes, with and
// without fused ReLU, batch 1 and > 1; chains of convolutions and max/average
// poolings (padding, count_include_pad either way) kept in oneDNN's blocked
// layout between layers; two threads on one compiled segment; and whole
// models on every ConvPath against the reference path.
#include "nn/conv_dnnl.h"

#include <dlfcn.h>

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

class DnnlSegmentConvTest : public ::testing::TestWithParam<Case> {};

DnnlLayer ConvLayer(const Conv2dParams& p, const std::vector<float>& w, const float* bias, bool relu) {
  DnnlLayer l;
  l.conv = p;
  l.weight = w.data();
  l.bias = bias;
  l.relu = relu;
  return l;
}

TEST_P(DnnlSegmentConvTest, OneConvolutionEqualsTheReferenceKernel) {
  const Case& c = GetParam();
  std::mt19937 rng(29);
  const size_t in = size_t{c.p.in_c} * c.p.in_h * c.p.in_w;
  const size_t out = size_t{c.p.out_c} * c.p.out_h() * c.p.out_w();
  const std::vector<float> w = Random(size_t{c.p.out_c} * c.p.in_c * c.p.kernel_h * c.p.kernel_w, rng);
  const std::vector<float> b = Random(c.p.out_c, rng);
  for (const bool relu : {false, true}) {
    const DnnlLayer layer = ConvLayer(c.p, w, c.bias ? b.data() : nullptr, relu);
    absl::StatusOr<std::unique_ptr<const DnnlSegment>> seg = DnnlSegment::Create({&layer, 1});
    ASSERT_TRUE(seg.ok()) << seg.status();
    ASSERT_EQ((*seg)->out_floats(0), out);  // the last layer writes NCHW
    absl::StatusOr<DnnlSegment::ThreadPtr> t = (*seg)->NewThread();
    ASSERT_TRUE(t.ok()) << t.status();
    for (const int batch : {1, 3}) {
      const std::vector<float> x = Random(batch * in, rng);
      std::vector<float> want(batch * out), got(batch * out, 123.0f);
      Conv2d(c.p, batch, x.data(), w.data(), c.bias ? b.data() : nullptr, want.data());
      if (relu) Relu(want.size(), want.data());
      ASSERT_TRUE((*seg)->Run(0, batch, x.data(), got.data(), **t));
      ExpectNear(got, want,
                 std::string(c.name) + " (" + (*seg)->impl(0) + ") batch " + std::to_string(batch) +
                     (relu ? " relu" : ""));
    }
  }
}

INSTANTIATE_TEST_SUITE_P(
    Shapes, DnnlSegmentConvTest,
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

TEST(DnnlSegment, EmptyOutputIsAnError) {
  const Conv2dParams p = P(2, 3, 3, 2, 5, 5, 1, 1, 0, 0, 1, 1);  // 5x5 kernel, 3x3 input, no pad
  const std::vector<float> w(2 * 2 * 25, 1.0f);
  const DnnlLayer layer = ConvLayer(p, w, nullptr, false);
  absl::StatusOr<std::unique_ptr<const DnnlSegment>> seg = DnnlSegment::Create({&layer, 1});
  EXPECT_EQ(seg.status().code(), absl::StatusCode::kInvalidArgument);
}

Pool2dParams Pool(uint32_t c, uint32_t h, uint32_t w, uint32_t kh, uint32_t kw, uint32_t sh, uint32_t sw,
                  uint32_t ph, uint32_t pw, bool include_pad) {
  Pool2dParams p;
  p.c = c, p.in_h = h, p.in_w = w, p.kernel_h = kh, p.kernel_w = kw, p.stride_h = sh, p.stride_w = sw;
  p.pad_h = ph, p.pad_w = pw, p.count_include_pad = include_pad;
  return p;
}

// conv (ReLU) -> 2x2 max pool (odd width: the floor drops a column) -> conv
// with 13 channels (not a block multiple) -> 3x2 average pool, stride 2x1,
// padding 1x1 (include_pad either way) -> strided conv (ReLU) -> 3x3 max pool
// with padding: each layer's output stays in oneDNN's layout until the last.
TEST(DnnlSegment, ChainOfConvolutionsAndPoolingsEqualsTheReferenceKernels) {
  for (const bool include_pad : {false, true}) {
    std::mt19937 rng(37);
    const Conv2dParams c1 = P(3, 17, 29, 16, 3, 3, 1, 1, 1, 1, 1, 1);           // [16, 17, 29]
    const Pool2dParams p1 = Pool(16, 17, 29, 2, 2, 2, 2, 0, 0, false);        // [16, 8, 14]
    const Conv2dParams c2 = P(16, 8, 14, 13, 3, 3, 1, 1, 1, 1, 1, 1);          // [13, 8, 14]
    const Pool2dParams p2 = Pool(13, 8, 14, 3, 2, 2, 1, 1, 1, include_pad);   // [13, 4, 15]
    const Conv2dParams c3 = P(13, 4, 15, 24, 3, 3, 1, 2, 1, 1, 1, 1);          // [24, 4, 8]
    const Pool2dParams p3 = Pool(24, 4, 8, 3, 3, 1, 1, 1, 1, false);          // [24, 4, 8]
    const std::vector<float> w1 = Random(size_t{16} * 3 * 9, rng), b1 = Random(16, rng);
    const std::vector<float> w2 = Random(size_t{13} * 16 * 9, rng);
    const std::vector<float> w3 = Random(size_t{24} * 13 * 9, rng), b3 = Random(24, rng);
    std::vector<DnnlLayer> layers = {ConvLayer(c1, w1, b1.data(), true), {}, ConvLayer(c2, w2, nullptr, false),
                                     {}, ConvLayer(c3, w3, b3.data(), true), {}};
    layers[1].kind = DnnlLayer::Kind::kMaxPool, layers[1].pool = p1;
    layers[3].kind = DnnlLayer::Kind::kAvgPool, layers[3].pool = p2;
    layers[5].kind = DnnlLayer::Kind::kMaxPool, layers[5].pool = p3;
    absl::StatusOr<std::unique_ptr<const DnnlSegment>> seg = DnnlSegment::Create(layers);
    ASSERT_TRUE(seg.ok()) << seg.status();
    absl::StatusOr<DnnlSegment::ThreadPtr> t = (*seg)->NewThread();
    ASSERT_TRUE(t.ok()) << t.status();
    for (const int batch : {1, 3}) {
      const std::vector<float> x = Random(batch * size_t{3} * 17 * 29, rng);
      // The reference, NCHW all the way.
      std::vector<float> a(batch * size_t{16} * 17 * 29), b(batch * size_t{16} * 8 * 14);
      Conv2d(c1, batch, x.data(), w1.data(), b1.data(), a.data());
      Relu(a.size(), a.data());
      MaxPool2dReference(p1, batch, a.data(), b.data());
      a.assign(batch * size_t{13} * 8 * 14, 0.0f);
      Conv2d(c2, batch, b.data(), w2.data(), nullptr, a.data());
      b.assign(batch * size_t{13} * 4 * 15, 0.0f);
      AvgPool2d(p2, batch, a.data(), b.data());
      a.assign(batch * size_t{24} * 4 * 8, 0.0f);
      Conv2d(c3, batch, b.data(), w3.data(), b3.data(), a.data());
      Relu(a.size(), a.data());
      std::vector<float> want(batch * size_t{24} * 4 * 8);
      MaxPool2dReference(p3, batch, a.data(), want.data());
      // The segment, through buffers as large as its blocked layouts need.
      size_t most = 0;
      for (size_t i = 0; i < (*seg)->size(); ++i) most = std::max(most, (*seg)->out_floats(i));
      std::vector<float> bufs[2] = {std::vector<float>(batch * most, 55.0f), std::vector<float>(batch * most, 66.0f)};
      const float* in = x.data();
      for (size_t i = 0; i < (*seg)->size(); ++i) {
        ASSERT_TRUE((*seg)->Run(i, batch, in, bufs[i % 2].data(), **t)) << "layer " << i;
        in = bufs[i % 2].data();
      }
      const std::vector<float> got(in, in + want.size());
      ExpectNear(got, want, "include_pad " + std::to_string(include_pad) + " batch " + std::to_string(batch));
      // Window by window through one-window buffers: the same kernels on the
      // same data, so the same bits.
      std::vector<float> windows(want.size(), 77.0f);
      ASSERT_TRUE((*seg)->RunWindows(batch, x.data(), windows.data(), **t));
      EXPECT_EQ(windows, got);
    }
  }
}

// One compiled segment, two threads each with its own Thread state, at the
// same time: the primitives and weights are shared read-only.
TEST(DnnlSegment, TwoThreadsShareOneCompiledSegment) {
  const Conv2dParams p = P(16, 20, 50, 32, 3, 3, 1, 1, 1, 1, 1, 1);
  std::mt19937 rng(31);
  const std::vector<float> w = Random(size_t{32} * 16 * 9, rng);
  const std::vector<float> b = Random(32, rng);
  const DnnlLayer layer = ConvLayer(p, w, b.data(), false);
  absl::StatusOr<std::unique_ptr<const DnnlSegment>> seg = DnnlSegment::Create({&layer, 1});
  ASSERT_TRUE(seg.ok()) << seg.status();
  const int batch = 2;
  const size_t out = size_t{32} * 20 * 50;
  std::vector<float> x[2] = {Random(batch * size_t{16} * 20 * 50, rng),
                             Random(batch * size_t{16} * 20 * 50, rng)};
  std::vector<float> got[2] = {std::vector<float>(batch * out), std::vector<float>(batch * out)};
  bool ok[2] = {false, false};
  std::vector<std::thread> threads;
  for (int i = 0; i < 2; ++i) {
    threads.emplace_back([&, i] {
      absl::StatusOr<DnnlSegment::ThreadPtr> t = (*seg)->NewThread();
      if (!t.ok()) return;
      ok[i] = true;
      for (int rep = 0; rep < 20 && ok[i]; ++rep) {
        ok[i] = (*seg)->Run(0, batch, x[i].data(), got[i].data(), **t);
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

// oneDNN's OpenMP runtime (looked up as nn/conv_dnnl.cc does) allows the
// calling thread one thread once a segment has run there, a thread that had
// not set it before (fresh threads start with one OpenMP thread per core).
TEST(DnnlSegment, RunHoldsTheCallingThreadToOneOpenMpThread) {
  using GetMaxThreads = int (*)();
  const auto get_max_threads = reinterpret_cast<GetMaxThreads>(dlsym(RTLD_DEFAULT, "omp_get_max_threads"));
  ASSERT_NE(get_max_threads, nullptr) << "Debian's oneDNN loads libgomp";
  const Conv2dParams p = P(8, 9, 11, 16, 3, 3, 1, 1, 1, 1, 1, 1);
  std::mt19937 rng(41);
  const std::vector<float> w = Random(size_t{16} * 8 * 9, rng);
  const DnnlLayer layer = ConvLayer(p, w, nullptr, false);
  absl::StatusOr<std::unique_ptr<const DnnlSegment>> seg = DnnlSegment::Create({&layer, 1});
  ASSERT_TRUE(seg.ok()) << seg.status();
  int before = -1, after = -1;
  bool ran = false;
  std::thread worker([&] {
    before = get_max_threads();
    absl::StatusOr<DnnlSegment::ThreadPtr> t = (*seg)->NewThread();
    if (!t.ok()) return;
    const std::vector<float> x(size_t{8} * 9 * 11, 1.0f);
    std::vector<float> y(size_t{16} * 9 * 11);
    ran = (*seg)->Run(0, 1, x.data(), y.data(), **t);
    after = get_max_threads();
  });
  worker.join();
  ASSERT_TRUE(ran);
  EXPECT_EQ(after, 1) << "before the first Run: " << before;
}

// A model with the chosen kernels (conv -> pool -> conv as one oneDNN
// segment, the global pool and dense after it on ours), with im2col + GEMM
// forced, and with the reference loop: the same outputs, and Profile names
// the kernel that ran.
TEST(DnnlSegment, ModelRunEqualsTheReferencePathOnEveryConvPath) {
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
  // On x86-64 oneDNN has JIT kernels from SSE4.1 up, for these shapes too.
  for (const auto& [ws, prefix] : {std::pair<Workspace*, std::string>{&chosen, "onednn "},
                                   {&gemm, "im2col+sgemm"},
                                   {&ref, "reference"}}) {
    for (const LayerTime& t : (*model)->Profile(x.data(), 1, *ws, 1)) {
      if (t.op == "conv2d" || (ws == &chosen && t.op == "max_pool2d")) {
        EXPECT_EQ(t.kernel.rfind(prefix, 0), 0u) << t.op << ": " << t.kernel;
      } else {
        EXPECT_EQ(t.kernel, "") << t.op;
      }
    }
  }
}

}  // namespace
}  // namespace wavepool::nn
