// Model::Profile: one entry per compiled op that together name every spec
// layer once, in order (folded batch-norm, dropout and flatten with the op
// that computes them), with hand-computed FLOPs; and the same outputs as Run,
// on a small model and on every shipped one. No timing is asserted.
#include <filesystem>
#include <random>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nn/describe.h"
#include "nn/model.h"
#include "nn/spec.h"

namespace wavepool::nn {
namespace {

using ::testing::ElementsAre;

// input [1, 16, 9]. Ops (layers they compute -> output, FLOPs per window):
//   drop0 + conv1 + bn1 (folded) + relu1 (fused) -> [4, 16, 9]:
//                                   576 outputs x (2 x 9 taps + 1 bias) + 576 = 11520
//   pool1 (2x2 max)              -> [4, 8, 4]:  128 x 4 = 512
//   bn2 (after a pool: kept) + flat -> [4, 8, 4]: 2 x 128 = 256
//   fc + bn3 (folded)            -> [3, 1, 1]:  3 x (2 x 128 + 1) = 771
//   sm                           -> [3, 1, 1]:  3 x 3 = 9
constexpr char kSpec[] = R"({
  "name": "profiled", "version": "1", "kind": "FIXED_WINDOWS", "sampleRateHz": 8000,
  "windowing": {"lengthSamples": 800, "hopSamples": 400},
  "frontEnd": {"stft": {"frameLength": 160, "frameHop": 80, "fftSize": 256, "window": "HANN"},
               "mel": {"numBands": 16, "fMinHz": 0, "fMaxHz": 4000}, "layout": "MEL_AS_FREQ"},
  "layers": [
    {"name": "drop0", "dropout": {"rate": 0.1}},
    {"name": "conv1", "conv2d": {"outChannels": 4, "kernelTime": 3, "kernelFreq": 3, "padTime": 1, "padFreq": 1}},
    {"name": "bn1", "batchNorm": {}},
    {"name": "relu1", "relu": {}},
    {"name": "pool1", "maxPool2d": {"kernelTime": 2, "kernelFreq": 2}},
    {"name": "bn2", "batchNorm": {}},
    {"name": "flat", "flatten": {}},
    {"name": "fc", "dense": {"outFeatures": 3}},
    {"name": "bn3", "batchNorm": {}},
    {"name": "sm", "softmax": {}}
  ],
  "labels": ["a", "b", "c"]
})";

std::vector<float> Random(size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> u(-1, 1);
  std::vector<float> v(n);
  for (float& x : v) x = u(rng);
  return v;
}

std::shared_ptr<const Model> Profiled() {
  const ModelSpec spec = *ParseSpecJson(kSpec);
  TensorMap w = *InitWeights(spec, 3);
  // Non-identity batch-norms, so folding and the kept affine change values.
  for (const char* bn : {"bn1", "bn2", "bn3"}) {
    const std::string n = bn;
    const size_t c = w[n + ".weight"].data.size();
    w[n + ".weight"].data = Random(c, 4);
    w[n + ".bias"].data = Random(c, 5);
    w[n + ".running_mean"].data = Random(c, 6);
    for (float& v : w[n + ".running_var"].data = Random(c, 7)) v = 0.5f + std::abs(v);
  }
  auto m = Model::Create(spec, w);
  EXPECT_TRUE(m.ok()) << m.status();
  return m.ok() ? *m : nullptr;
}

std::vector<std::string> CoveredLayers(const std::vector<LayerTime>& times) {
  std::vector<std::string> all;
  for (const LayerTime& t : times) all.insert(all.end(), t.layers.begin(), t.layers.end());
  return all;
}

std::vector<std::string> SpecLayers(const ModelSpec& spec) {
  std::vector<std::string> names;
  for (const auto& l : spec.layers()) names.push_back(l.name());
  return names;
}

// Run and Profile on the same input; Profile's output must be Run's, bit for bit
// (the same kernels in the same order), and a Run after Profile on the same
// workspace too.
void ExpectProfileOutputEqualsRun(const Model& m, int batch, bool reference) {
  SCOPED_TRACE(testing::Message() << m.spec().name() << " batch " << batch << " reference " << reference
                                  << " (input seed 11)");
  const std::vector<float> x = Random(m.input_size() * batch, 11);
  std::vector<float> run(m.output_size() * batch), profiled(run.size(), -7.0f), after(run.size());
  Workspace ws(m, batch, reference);
  m.Run(x.data(), batch, run.data(), ws);
  const std::vector<LayerTime> times = m.Profile(x.data(), batch, ws, 2, profiled.data());
  m.Run(x.data(), batch, after.data(), ws);
  EXPECT_EQ(profiled, run);
  EXPECT_EQ(after, run);
}

TEST(ModelProfile, OpsCoverEveryLayerOnceInOrder) {
  const auto m = Profiled();
  ASSERT_NE(m, nullptr);
  Workspace ws(*m, 1);
  const std::vector<float> x = Random(m->input_size(), 1);
  const std::vector<LayerTime> t = m->Profile(x.data(), 1, ws, 1);
  ASSERT_EQ(t.size(), 5u);
  EXPECT_THAT(t[0].layers, ElementsAre("drop0", "conv1", "bn1", "relu1"));
  EXPECT_THAT(t[1].layers, ElementsAre("pool1"));
  EXPECT_THAT(t[2].layers, ElementsAre("bn2", "flat"));
  EXPECT_THAT(t[3].layers, ElementsAre("fc", "bn3"));
  EXPECT_THAT(t[4].layers, ElementsAre("sm"));
  EXPECT_EQ(CoveredLayers(t), SpecLayers(m->spec()));
  const std::vector<std::string> ops = {"conv2d", "max_pool2d", "batch_norm", "dense", "softmax"};
  const std::vector<Shape> shapes = {{4, 16, 9}, {4, 8, 4}, {4, 8, 4}, {3, 1, 1}, {3, 1, 1}};
  const std::vector<double> flops = {11520, 512, 256, 771, 9};
  for (size_t i = 0; i < t.size(); ++i) {
    EXPECT_EQ(t[i].op, ops[i]) << "op " << i;
    EXPECT_EQ(t[i].output, shapes[i]) << "op " << i;
    EXPECT_DOUBLE_EQ(t[i].mflops * 1e6, flops[i]) << "op " << i;
    EXPECT_GE(t[i].seconds, 0) << "op " << i;
  }
}

TEST(ModelProfile, OutputEqualsRun) {
  const auto m = Profiled();
  ASSERT_NE(m, nullptr);
  for (int batch : {1, 3}) {
    for (bool reference : {false, true}) ExpectProfileOutputEqualsRun(*m, batch, reference);
  }
}

TEST(ModelProfile, EmptyBatchListsOpsWithoutRunning) {
  const auto m = Profiled();
  ASSERT_NE(m, nullptr);
  Workspace ws(*m, 1);
  const std::vector<LayerTime> t = m->Profile(nullptr, 0, ws, 3);
  EXPECT_EQ(CoveredLayers(t), SpecLayers(m->spec()));
  for (const LayerTime& op : t) EXPECT_EQ(op.seconds, 0);
}

// Every shipped model: every layer covered once, FLOPs summing to describe's
// total, outputs equal to Run's.
TEST(ModelProfile, ShippedModelsCoverEveryLayerAndMatchRun) {
  const std::filesystem::path root = std::filesystem::path(WP_SOURCE_DIR) / "models";
  int models = 0;
  for (const auto& name : std::filesystem::directory_iterator(root)) {
    if (!name.is_directory()) continue;
    for (const auto& version : std::filesystem::directory_iterator(name.path())) {
      if (!std::filesystem::exists(version.path() / "spec.json")) continue;
      SCOPED_TRACE(version.path().string());
      auto m = Model::Load(version.path().string());
      ASSERT_TRUE(m.ok()) << m.status();
      ++models;
      Workspace ws(**m, 2);
      const std::vector<float> x = Random((*m)->input_size() * 2, 2);
      const std::vector<LayerTime> t = (*m)->Profile(x.data(), 2, ws, 1);
      EXPECT_EQ(CoveredLayers(t), SpecLayers((*m)->spec()));
      auto d = Describe((*m)->spec());
      ASSERT_TRUE(d.ok()) << d.status();
      double mflops = 0;
      for (const LayerTime& op : t) mflops += op.mflops;
      EXPECT_NEAR(mflops, d->total_mflops(), 1e-9 * d->total_mflops());
      ExpectProfileOutputEqualsRun(**m, 2, false);
    }
  }
  EXPECT_GE(models, 3) << "expected the shipped digits, ecg-beats and untrained-digits under " << root;
}

}  // namespace
}  // namespace wavepool::nn
