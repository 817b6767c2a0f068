// Interval bound propagation: for random small networks covering every layer
// type, every perturbation inside the box (random sign vertices, the box's
// worst corner per logit, uniform draws) gives logits inside the bounds under
// both the GEMM and the reference convolution path; a certified window's class
// never changes; eps = 0 reproduces the forward pass; one dense layer's bounds
// are exact (attained at a vertex); no allocation per window.
#include "nn/ibp.h"

#include <cmath>
#include <random>
#include <string>

#include "gtest/gtest.h"
#include "nn/call_arena.h"
#include "nn/spec.h"

namespace wavepool::nn {
namespace {

// 8 kHz, 9 frames of 16 bands: MEL_AS_FREQ gives [1, 16, 9], MEL_AS_CHANNELS [16, 1, 9].
std::string SpecJson(const std::string& layout, const std::string& layers, int outputs) {
  std::string labels;
  for (int i = 0; i < outputs; ++i) labels += (i ? ",\"l" : "\"l") + std::to_string(i) + "\"";
  return R"({"name": "ibp", "version": "1", "kind": "FIXED_WINDOWS", "sampleRateHz": 8000,
  "windowing": {"lengthSamples": 800, "hopSamples": 400},
  "frontEnd": {"stft": {"frameLength": 160, "frameHop": 80, "fftSize": 256, "window": "HANN"},
               "mel": {"numBands": 16, "fMinHz": 0, "fMaxHz": 4000}, "layout": ")" +
         layout + R"("}, "layers": [)" + layers + R"(], "labels": [)" + labels + "]}";
}

// Every layer type between them: conv2d with stride, padding and dilation,
// folded and unfolded batch-norm (negative scales), max / avg pooling with
// padding, anti-aliased (blurred) max / avg pooling, global max / avg, dropout,
// flatten, dense, ReLU, a final softmax.
struct Net {
  const char* name;
  std::string json;
};

std::vector<Net> Nets() {
  return {
      {"conv2d", SpecJson("MEL_AS_FREQ", R"(
    {"name": "c1", "conv2d": {"outChannels": 4, "kernelTime": 3, "kernelFreq": 3, "strideTime": 2,
                              "padTime": 1, "padFreq": 2, "dilationFreq": 2}},
    {"name": "bn1", "batchNorm": {}},
    {"name": "r1", "relu": {}},
    {"name": "p1", "maxPool2d": {"kernelTime": 2, "kernelFreq": 3, "strideFreq": 2, "padFreq": 1}},
    {"name": "bn2", "batchNorm": {}},
    {"name": "p2", "avgPool2d": {"kernelTime": 2, "kernelFreq": 2, "strideTime": 1, "padTime": 1}},
    {"name": "c2", "conv2d": {"outChannels": 5, "kernelTime": 1, "kernelFreq": 1}},
    {"name": "r2", "relu": {}},
    {"name": "d1", "dropout": {"rate": 0.5}},
    {"name": "g", "globalMaxPool": {}},
    {"name": "f", "flatten": {}},
    {"name": "fc", "dense": {"outFeatures": 4}})",
                          4)},
      {"conv1d", SpecJson("MEL_AS_CHANNELS", R"(
    {"name": "c1", "conv1d": {"outChannels": 6, "kernel": 3, "stride": 2, "padding": 2, "dilation": 2}},
    {"name": "r1", "relu": {}},
    {"name": "p1", "maxPool1d": {"kernel": 2, "stride": 1, "padding": 1}},
    {"name": "p2", "avgPool1d": {"kernel": 3, "stride": 1, "padding": 1, "countIncludePad": true}},
    {"name": "bn1", "batchNorm": {}},
    {"name": "f", "flatten": {}},
    {"name": "fc1", "dense": {"outFeatures": 8}},
    {"name": "bn2", "batchNorm": {}},
    {"name": "r2", "relu": {}},
    {"name": "fc2", "dense": {"outFeatures": 3}})",
                          3)},
      {"blurred_pools", SpecJson("MEL_AS_FREQ", R"(
    {"name": "c1", "conv2d": {"outChannels": 4, "kernelTime": 3, "kernelFreq": 3, "padTime": 1, "padFreq": 1}},
    {"name": "r1", "relu": {}},
    {"name": "p1", "maxPool2d": {"kernelTime": 2, "kernelFreq": 2, "strideTime": 3, "strideFreq": 2, "blur": 3}},
    {"name": "c2", "conv2d": {"outChannels": 5, "kernelTime": 3, "kernelFreq": 1}},
    {"name": "bn1", "batchNorm": {}},
    {"name": "p2", "avgPool2d": {"kernelTime": 2, "kernelFreq": 1, "strideTime": 2, "padTime": 1, "blur": 4}},
    {"name": "g", "globalAvgPool": {}},
    {"name": "fc", "dense": {"outFeatures": 3}})",
                          3)},
      {"global_avg", SpecJson("MEL_AS_FREQ", R"(
    {"name": "c1", "conv2d": {"outChannels": 3, "kernelTime": 3, "kernelFreq": 3, "padTime": 1, "padFreq": 1, "noBias": true}},
    {"name": "bn1", "batchNorm": {}},
    {"name": "r1", "relu": {}},
    {"name": "g", "globalAvgPool": {}},
    {"name": "fc", "dense": {"outFeatures": 3}})",
                          3)},
  };
}

// Seeded He-uniform weights, then random biases and batch-norm statistics
// (gamma of either sign) so every affine map is exercised.
std::shared_ptr<const Model> MakeModel(const std::string& json, uint64_t seed) {
  auto spec = ParseSpecJson(json);
  EXPECT_TRUE(spec.ok()) << spec.status();
  auto weights = InitWeights(*spec, seed);
  EXPECT_TRUE(weights.ok()) << weights.status();
  std::mt19937 rng(static_cast<uint32_t>(seed));
  std::uniform_real_distribution<float> u(-1, 1);
  for (auto& [name, t] : *weights) {
    const bool var = name.ends_with("running_var");
    const bool bn = name.ends_with("running_mean") || var || t.shape.size() == 1;
    if (!bn) continue;
    for (float& v : t.data) v = var ? 0.2f + std::fabs(u(rng)) : 0.5f * u(rng);
  }
  auto model = Model::Create(*std::move(spec), *weights);
  EXPECT_TRUE(model.ok()) << model.status();
  return *model;
}

int ArgMax(const std::vector<float>& v) {
  return static_cast<int>(std::max_element(v.begin(), v.end()) - v.begin());
}

struct Bounds {
  std::vector<float> lo, hi;
};

Bounds Propagate(const IntervalModel& im, const std::vector<float>& x, float eps) {
  std::vector<float> l(x.size()), u(x.size());
  for (size_t i = 0; i < x.size(); ++i) {
    l[i] = x[i] - eps;
    u[i] = x[i] + eps;
  }
  IntervalWorkspace ws(im);
  Bounds b{std::vector<float>(im.output_size()), std::vector<float>(im.output_size())};
  im.Propagate(l.data(), u.data(), b.lo.data(), b.hi.data(), ws);
  return b;
}

TEST(Ibp, EveryPerturbationInsideTheBoxGivesLogitsInsideTheBounds) {
  for (const Net& net : Nets()) {
    for (uint64_t seed : {1u, 2u, 3u}) {
      SCOPED_TRACE(std::string(net.name) + " seed " + std::to_string(seed));
      auto model = MakeModel(net.json, seed);
      auto im = IntervalModel::Create(model);
      ASSERT_TRUE(im.ok()) << im.status();
      Workspace fast(*model, 1), ref(*model, 1, /*reference=*/true);
      std::mt19937 rng(static_cast<uint32_t>(seed) * 77u);
      std::normal_distribution<float> normal(0, 1);
      std::vector<float> x(model->input_size());
      for (float& v : x) v = normal(rng);
      for (float eps : {1e-4f, 1e-2f, 0.3f}) {
        const Bounds b = Propagate(**im, x, eps);
        std::vector<float> p(x.size()), y(model->output_size());
        std::uniform_real_distribution<float> unit(-1, 1);
        for (int trial = 0; trial < 300; ++trial) {
          // Thirds: sign vertices, uniform, and vertices with some coordinates at the centre.
          for (size_t i = 0; i < x.size(); ++i) {
            const float s = unit(rng);
            const float d = trial % 3 == 1 ? s : trial % 3 == 2 && std::fabs(s) < 0.3f ? 0 : (s < 0 ? -1 : 1);
            p[i] = x[i] + eps * d;
          }
          for (Workspace* ws : {&fast, &ref}) {
            model->Run(p.data(), 1, y.data(), *ws);
            for (size_t j = 0; j < y.size(); ++j) {
              ASSERT_LE(b.lo[j], y[j]) << "eps " << eps << " trial " << trial << " logit " << j;
              ASSERT_GE(b.hi[j], y[j]) << "eps " << eps << " trial " << trial << " logit " << j;
            }
          }
        }
      }
    }
  }
}

TEST(Ibp, CertifiedWindowsNeverChangeClass) {
  int certified = 0, uncertified = 0;
  for (const Net& net : Nets()) {
    auto model = MakeModel(net.json, 11);
    auto im = IntervalModel::Create(model);
    ASSERT_TRUE(im.ok()) << im.status();
    Workspace ws(*model, 1);
    std::mt19937 rng(5);
    std::normal_distribution<float> normal(0, 1);
    std::uniform_int_distribution<int> coin(0, 1);
    for (int window = 0; window < 20; ++window) {
      std::vector<float> x(model->input_size()), y(model->output_size());
      for (float& v : x) v = normal(rng);
      model->Run(x.data(), 1, y.data(), ws);
      const int top = ArgMax(y);
      for (float eps : {1e-3f, 1e-2f, 5e-2f}) {
        const Bounds b = Propagate(**im, x, eps);
        const Certificate c = CertifyTop(b.lo, b.hi, top);
        if (!c.certified) {
          ++uncertified;
          continue;
        }
        ++certified;
        EXPECT_GT(c.margin, 0);
        std::vector<float> p(x.size());
        for (int trial = 0; trial < 200; ++trial) {
          for (size_t i = 0; i < x.size(); ++i) p[i] = x[i] + (coin(rng) ? eps : -eps);
          model->Run(p.data(), 1, y.data(), ws);
          ASSERT_EQ(ArgMax(y), top) << net.name << " window " << window << " eps " << eps;
        }
      }
    }
  }
  // Both outcomes occur, so the test exercises the certified branch.
  EXPECT_GT(certified, 10);
  EXPECT_GT(uncertified, 0);
}

TEST(Ibp, ZeroEpsilonGivesTheForwardPass) {
  for (const Net& net : Nets()) {
    SCOPED_TRACE(net.name);
    auto model = MakeModel(net.json, 4);
    auto im = IntervalModel::Create(model);
    ASSERT_TRUE(im.ok()) << im.status();
    Workspace ws(*model, 1);
    std::mt19937 rng(9);
    std::normal_distribution<float> normal(0, 1);
    std::vector<float> x(model->input_size()), y(model->output_size());
    for (float& v : x) v = normal(rng);
    model->Run(x.data(), 1, y.data(), ws);
    const Bounds b = Propagate(**im, x, 0);
    for (size_t j = 0; j < y.size(); ++j) {
      // Only the rounding allowance separates them: gamma_n (n <= 146 here,
      // 8.7e-6) times sum |W| |x| per linear layer, a few times |y| + 1.
      EXPECT_LE(b.lo[j], y[j]);
      EXPECT_GE(b.hi[j], y[j]);
      EXPECT_NEAR(b.lo[j], y[j], 5e-4f * (1 + std::fabs(y[j])));
      EXPECT_NEAR(b.hi[j], y[j], 5e-4f * (1 + std::fabs(y[j])));
    }
  }
}

// One dense layer: IBP is exact, each logit's bound is attained at the vertex
// x + eps sign(W[j]); computed here independently in double.
TEST(Ibp, DenseLayerBoundsAreAttainedAtAVertex) {
  auto model = MakeModel(SpecJson("MEL_AS_FREQ", R"({"name": "fc", "dense": {"outFeatures": 3}})", 3), 8);
  auto im = IntervalModel::Create(model);
  ASSERT_TRUE(im.ok()) << im.status();
  auto spec = model->spec();
  auto weights = InitWeights(spec, 8);
  ASSERT_TRUE(weights.ok());
  std::mt19937 rng(8);
  std::uniform_real_distribution<float> u(-1, 1);
  // MakeModel replaced the 1-D tensors (the bias) with draws from the same stream.
  std::vector<float> bias(3);
  for (float& v : bias) v = 0.5f * u(rng);
  const auto& w = weights->at("fc.weight").data;
  std::vector<float> x(model->input_size());
  for (float& v : x) v = u(rng);
  const float eps = 0.05f;
  const Bounds b = Propagate(**im, x, eps);
  for (size_t j = 0; j < 3; ++j) {
    double centre = bias[j], radius = 0, magnitude = std::fabs(bias[j]);
    for (size_t i = 0; i < x.size(); ++i) {
      const double wi = w[j * x.size() + i];
      centre += wi * x[i];
      radius += std::fabs(wi) * eps;
      magnitude += std::fabs(wi) * (std::fabs(x[i]) + eps);
    }
    // Sound: never inside the exact range. Tight: wider only by the stated
    // rounding allowance, about 2 gamma_n sum |W| (|x| + eps) per side.
    const double allowance = 3 * (x.size() + 2) * 0x1p-24 * magnitude + 1e-6;
    EXPECT_LE(b.lo[j], centre - radius);
    EXPECT_GE(b.hi[j], centre + radius);
    EXPECT_NEAR(b.lo[j], centre - radius, allowance);
    EXPECT_NEAR(b.hi[j], centre + radius, allowance);
  }
}

TEST(Ibp, FinalSoftmaxIsSkippedAndMidSoftmaxRefused) {
  const std::string body = R"({"name": "fc", "dense": {"outFeatures": 3}})";
  auto plain = MakeModel(SpecJson("MEL_AS_FREQ", body, 3), 6);
  auto soft = MakeModel(SpecJson("MEL_AS_FREQ", body + R"(, {"name": "sm", "softmax": {}})", 3), 6);
  auto a = IntervalModel::Create(plain);
  auto b = IntervalModel::Create(soft);
  ASSERT_TRUE(a.ok() && b.ok());
  std::vector<float> x(plain->input_size(), 0.25f);
  const Bounds ba = Propagate(**a, x, 0.01f), bb = Propagate(**b, x, 0.01f);
  EXPECT_EQ(ba.lo, bb.lo);
  EXPECT_EQ(ba.hi, bb.hi);
  auto mid = MakeModel(
      SpecJson("MEL_AS_FREQ",
               body + R"(, {"name": "sm", "softmax": {}}, {"name": "fc2", "dense": {"outFeatures": 3}})", 3),
      6);
  auto c = IntervalModel::Create(mid);
  EXPECT_EQ(c.status().code(), absl::StatusCode::kUnimplemented);
  EXPECT_NE(c.status().message().find("'sm'"), std::string_view::npos) << c.status();
}

TEST(Ibp, CertifyTopMargin) {
  const std::vector<float> lo = {1.0f, -2.0f, 0.5f}, hi = {3.0f, 0.75f, 0.9f};
  const Certificate c = CertifyTop(lo, hi, 0);
  EXPECT_TRUE(c.certified);
  EXPECT_FLOAT_EQ(c.margin, 0.1f);
  const Certificate d = CertifyTop(lo, hi, 2);
  EXPECT_FALSE(d.certified);
  EXPECT_FLOAT_EQ(d.margin, 0.5f - 3.0f);
  const std::vector<float> inf_lo = {-INFINITY, 0}, inf_hi = {INFINITY, 1};
  EXPECT_FALSE(CertifyTop(inf_lo, inf_hi, 0).certified);
}

TEST(Ibp, PropagateDoesNotAllocate) {
  auto model = MakeModel(Nets()[0].json, 2);
  auto im = IntervalModel::Create(model);
  ASSERT_TRUE(im.ok());
  IntervalWorkspace ws(**im);
  std::vector<float> l(model->input_size(), -0.1f), u(model->input_size(), 0.1f);
  std::vector<float> ol(model->output_size()), ou(model->output_size());
  (*im)->Propagate(l.data(), u.data(), ol.data(), ou.data(), ws);  // OpenBLAS first-call set-up
  const long before = HeapAllocationsOnThisThread();
  for (int i = 0; i < 10; ++i) (*im)->Propagate(l.data(), u.data(), ol.data(), ou.data(), ws);
  EXPECT_EQ(HeapAllocationsOnThisThread(), before);
}

}  // namespace
}  // namespace wavepool::nn
