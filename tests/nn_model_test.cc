// Model: weight checks at Create (by layer name), batch-norm folding, batch
// independence, a hand-computed model, Load from a folder, and no allocation in Run.
#include "nn/model.h"

#include <cmath>
#include <filesystem>
#include <fstream>
#include <random>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nn/call_arena.h"
#include "nn/spec.h"

namespace wavepool::nn {
namespace {

using ::testing::AllOf;
using ::testing::HasSubstr;

// input [1, 16, 9] -> conv1 [4, 16, 9] -> bn1 -> relu1 -> pool1 [4, 8, 4] -> gap -> fc [3].
constexpr char kSmallSpec[] = R"({
  "name": "small", "version": "1", "kind": "FIXED_WINDOWS", "sampleRateHz": 8000,
  "windowing": {"lengthSamples": 800, "hopSamples": 400},
  "frontEnd": {"stft": {"frameLength": 160, "frameHop": 80, "fftSize": 256, "window": "HANN"},
               "mel": {"numBands": 16, "fMinHz": 0, "fMaxHz": 4000}, "layout": "MEL_AS_FREQ"},
  "layers": [
    {"name": "conv1", "conv2d": {"outChannels": 4, "kernelTime": 3, "kernelFreq": 3, "padTime": 1, "padFreq": 1}},
    {"name": "bn1", "batchNorm": {}},
    {"name": "relu1", "relu": {}},
    {"name": "pool1", "maxPool2d": {"kernelTime": 2, "kernelFreq": 2}},
    {"name": "gap", "globalAvgPool": {}},
    {"name": "fc", "dense": {"outFeatures": 3}}
  ],
  "labels": ["a", "b", "c"]
})";

ModelSpec Small() { return *ParseSpecJson(kSmallSpec); }

std::vector<float> Random(size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> u(-1, 1);
  std::vector<float> v(n);
  for (float& x : v) x = u(rng);
  return v;
}

// InitWeights leaves batch-norm the identity; give it real statistics.
TensorMap SmallWeights(uint32_t seed) {
  TensorMap w = *InitWeights(Small(), seed);
  w["bn1.weight"].data = Random(4, seed + 1);
  w["bn1.bias"].data = Random(4, seed + 2);
  w["bn1.running_mean"].data = Random(4, seed + 3);
  for (float& v : w["bn1.running_var"].data = Random(4, seed + 4)) v = 0.5f + std::abs(v);
  w["conv1.bias"].data = Random(4, seed + 5);
  return w;
}

absl::Status CreateError(const ModelSpec& spec, const TensorMap& w) {
  auto m = Model::Create(spec, w);
  return m.ok() ? absl::OkStatus() : m.status();
}

TEST(ModelCreate, MissingWeightNamesTheLayer) {
  TensorMap w = SmallWeights(1);
  w.erase("bn1.running_var");
  EXPECT_THAT(CreateError(Small(), w).message(),
              AllOf(HasSubstr("layer 'bn1' (batch_norm)"), HasSubstr("'bn1.running_var'"),
                    HasSubstr("missing")));
}

TEST(ModelCreate, WrongShapeSaysExpectedAndActual) {
  TensorMap w = SmallWeights(1);
  w["conv1.weight"] = Tensor{{4, 1, 3, 5}, std::vector<float>(60)};
  EXPECT_THAT(CreateError(Small(), w).message(),
              AllOf(HasSubstr("layer 'conv1' (conv2d)"), HasSubstr("[4, 1, 3, 5]"),
                    HasSubstr("needs [4, 1, 3, 3]")));
}

TEST(ModelCreate, DenseShapeMismatchExplainsTheFlattening) {
  ModelSpec s = Small();
  s.mutable_layers()->DeleteSubrange(4, 1);  // no gap: fc sees [4, 8, 4] = 128 features
  TensorMap w = SmallWeights(1);             // fc.weight is [3, 4]
  EXPECT_THAT(CreateError(s, w).message(),
              AllOf(HasSubstr("layer 'fc' (dense)"), HasSubstr("[3, 4]"), HasSubstr("needs [3, 128]"),
                    HasSubstr("[4, 8, 4] flattens to 128")));
}

TEST(ModelCreate, UnexpectedTensorIsAnError) {
  TensorMap w = SmallWeights(1);
  w["bn1.num_batches_tracked"] = Tensor{{}, {0}};
  EXPECT_THAT(CreateError(Small(), w).message(),
              AllOf(HasSubstr("'bn1.num_batches_tracked'"), HasSubstr("no layer")));
}

TEST(ModelCreate, BadValuesAreErrors) {
  TensorMap w = SmallWeights(1);
  w["fc.bias"].data[1] = std::nanf("");
  EXPECT_THAT(CreateError(Small(), w).message(), AllOf(HasSubstr("'fc.bias'"), HasSubstr("finite")));
  w = SmallWeights(1);
  w["bn1.running_var"].data[2] = -0.5f;
  EXPECT_THAT(CreateError(Small(), w).message(), AllOf(HasSubstr("'bn1.running_var'"), HasSubstr(">= 0")));
  w = SmallWeights(1);
  w["fc.bias"].data.pop_back();
  EXPECT_THAT(CreateError(Small(), w).message(), AllOf(HasSubstr("'fc.bias'"), HasSubstr("holds 2")));
}

TEST(ModelCreate, InvalidSpecIsAnError) {
  ModelSpec s = Small();
  s.add_labels("d");
  EXPECT_THAT(CreateError(s, SmallWeights(1)).message(), HasSubstr("4 labels"));
}

// conv1 + bn1 folded, against conv1 alone followed by the batch-norm formula.
TEST(ModelRun, FoldedBatchNormEqualsConvThenBatchNorm) {
  ModelSpec with_bn = Small(), conv_only = Small();
  with_bn.mutable_layers()->DeleteSubrange(2, 4);    // conv1, bn1
  conv_only.mutable_layers()->DeleteSubrange(1, 5);  // conv1
  for (ModelSpec* s : {&with_bn, &conv_only}) {
    s->add_layers()->set_name("flat");
    s->mutable_layers()->rbegin()->mutable_flatten();
    s->clear_labels();
    for (int i = 0; i < 4 * 16 * 9; ++i) s->add_labels(std::to_string(i));
  }
  with_bn.mutable_layers(1)->mutable_batch_norm()->set_epsilon(0.01f);
  TensorMap w = SmallWeights(3);
  w.erase("pool1.weight");
  w.erase("fc.weight");
  w.erase("fc.bias");
  TensorMap conv_w = {{"conv1.weight", w["conv1.weight"]}, {"conv1.bias", w["conv1.bias"]}};
  auto a = Model::Create(with_bn, w);
  ASSERT_TRUE(a.ok()) << a.status();
  auto b = Model::Create(conv_only, conv_w);
  ASSERT_TRUE(b.ok()) << b.status();
  const int batch = 2;
  const std::vector<float> x = Random((*a)->input_size() * batch, 11);
  std::vector<float> got((*a)->output_size() * batch), conv((*b)->output_size() * batch);
  Workspace wa(**a, batch), wb(**b, batch);
  (*a)->Run(x.data(), batch, got.data(), wa);
  (*b)->Run(x.data(), batch, conv.data(), wb);
  const size_t hw = 16 * 9;
  for (size_t i = 0; i < got.size(); ++i) {
    const size_t c = (i / hw) % 4;
    const double y = (conv[i] - w["bn1.running_mean"].data[c]) /
                         std::sqrt(double{w["bn1.running_var"].data[c]} + 0.01) *
                         w["bn1.weight"].data[c] +
                     w["bn1.bias"].data[c];
    // Folding rounds the scaled weights once: a few ulps of the conv's terms (9 taps of |w x| <= 0.82).
    EXPECT_NEAR(got[i], y, 1e-5 * (1 + std::abs(y))) << "element " << i;
  }
}

TEST(ModelRun, BatchOfThreeEqualsThreeSingleRuns) {
  auto m = Model::Create(Small(), SmallWeights(5));
  ASSERT_TRUE(m.ok()) << m.status();
  const Model& model = **m;
  const std::vector<float> x = Random(model.input_size() * 3, 21);
  Workspace ws3(model, 3), ws1(model, 1);
  std::vector<float> out3(model.output_size() * 3), out1(model.output_size());
  model.Run(x.data(), 3, out3.data(), ws3);
  for (int b = 0; b < 3; ++b) {
    model.Run(x.data() + b * model.input_size(), 1, out1.data(), ws1);
    for (size_t i = 0; i < out1.size(); ++i) {
      // Every kernel treats batch rows independently with the same operations: exact.
      EXPECT_EQ(out3[b * model.output_size() + i], out1[i]) << "row " << b << " output " << i;
    }
  }
  // A workspace for 3 also runs smaller batches.
  model.Run(x.data(), 1, out1.data(), ws3);
  EXPECT_EQ(out1[0], out3[0]);
}

// input [1, 2, 3] (2 bands x 3 frames); conv 1x1 to 2 channels; relu; global
// average; dense 2 -> 3. Logits worked out by hand in the comments.
ModelSpec TinySpec(bool softmax) {
  auto s = ParseSpecJson(R"({
    "kind": "FIXED_WINDOWS", "sampleRateHz": 8000,
    "windowing": {"lengthSamples": 320, "hopSamples": 160},
    "frontEnd": {"stft": {"frameLength": 160, "frameHop": 80, "fftSize": 256, "window": "HAMMING"},
                 "mel": {"numBands": 2, "fMinHz": 0, "fMaxHz": 4000}},
    "layers": [
      {"name": "c", "conv2d": {"outChannels": 2, "kernelTime": 1, "kernelFreq": 1}},
      {"name": "r", "relu": {}},
      {"name": "g", "globalAvgPool": {}},
      {"name": "d", "dense": {"outFeatures": 3}}
    ],
    "labels": ["x", "y", "z"]})");
  EXPECT_TRUE(s.ok()) << s.status();
  if (softmax) {
    s->add_layers()->set_name("s");
    s->mutable_layers()->rbegin()->mutable_softmax();
  }
  return *s;
}

TensorMap TinyWeights() {
  return {{"c.weight", {{2, 1, 1, 1}, {2, -1}}},
          {"c.bias", {{2}, {0.5f, 0}}},
          {"d.weight", {{3, 2}, {1, 0, 0, 1, 1, -1}}},
          {"d.bias", {{3}, {0, 1, -2}}}};
}

TEST(ModelRun, HandComputedTinyModel) {
  auto m = Model::Create(TinySpec(false), TinyWeights());
  ASSERT_TRUE(m.ok()) << m.status();
  EXPECT_EQ((*m)->input_shape(), (Shape{1, 2, 3}));
  EXPECT_FALSE((*m)->outputs_probabilities());
  // Rows are bands (H), columns frames (W).
  const float x[6] = {1, 2, 3, 4, 5, 6};
  // Channel 0: 2x + 0.5 = 2.5 .. 12.5, mean 7.5. Channel 1: -x < 0, relu 0, mean 0.
  // Dense: [7.5, 0] -> [7.5 + 0, 0 + 1, 7.5 - 0 - 2] = [7.5, 1, 5.5].
  float out[3];
  Workspace ws(**m, 1);
  (*m)->Run(x, 1, out, ws);
  EXPECT_FLOAT_EQ(out[0], 7.5f);
  EXPECT_FLOAT_EQ(out[1], 1.0f);
  EXPECT_FLOAT_EQ(out[2], 5.5f);

  auto p = Model::Create(TinySpec(true), TinyWeights());
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_TRUE((*p)->outputs_probabilities());
  Workspace wp(**p, 1);
  (*p)->Run(x, 1, out, wp);
  const double sum = std::exp(7.5) + std::exp(1.0) + std::exp(5.5);
  EXPECT_NEAR(out[0], std::exp(7.5) / sum, 1e-6);
  EXPECT_NEAR(out[1], std::exp(1.0) / sum, 1e-6);
  EXPECT_NEAR(out[2], std::exp(5.5) / sum, 1e-6);
}

// No path allocates per call: our own kernels never do, and oneDNN's per-call
// bookkeeping comes from the thread's CallArena (nn/call_arena.h). The first
// call is left out: oneDNN and OpenBLAS set up per-thread state on first use.
void ExpectRunDoesNotAllocate(const ModelSpec& spec) {
  auto m = Model::Create(spec, SmallWeights(2));
  ASSERT_TRUE(m.ok()) << m.status();
  for (const ConvPath path : {ConvPath::kChosen, ConvPath::kGemm, ConvPath::kReference}) {
    Workspace ws(**m, 4, path);
    const std::vector<float> x = Random((*m)->input_size() * 4, 3);
    std::vector<float> out((*m)->output_size() * 4);
    (*m)->Run(x.data(), 1, out.data(), ws);
    const long before = HeapAllocationsOnThisThread();
    for (int round = 0; round < 100; ++round) {
      for (int batch = 1; batch <= 4; ++batch) (*m)->Run(x.data(), batch, out.data(), ws);
    }
    EXPECT_EQ(HeapAllocationsOnThisThread() - before, 0) << "conv path " << static_cast<int>(path);
  }
}

TEST(ModelRun, RunDoesNotAllocate) { ExpectRunDoesNotAllocate(Small()); }

// Blurred pooling runs plane by plane in the Workspace's scratch.
TEST(ModelRun, BlurredPoolRunDoesNotAllocate) {
  ModelSpec spec = Small();
  spec.mutable_layers(3)->mutable_max_pool2d()->set_blur(5);
  ExpectRunDoesNotAllocate(spec);
}

// The shipped models, batch 1 (a stream's window) and 8, on the path the
// server picks.
TEST(ModelRun, ShippedModelsRunWithoutAllocating) {
  for (const char* dir : {"models/digits/2", "models/ecg-beats/2", "models/ecg-beats/3", "models/ecg-beats/4",
                          "models/ecg-beats/5"}) {
    auto m = Model::Load(std::filesystem::path(WP_SOURCE_DIR) / dir);
    ASSERT_TRUE(m.ok()) << dir << ": " << m.status();
    Workspace ws(**m, 8);
    const std::vector<float> x = Random((*m)->input_size() * 8, 5);
    std::vector<float> out((*m)->output_size() * 8);
    (*m)->Run(x.data(), 8, out.data(), ws);
    const long before = HeapAllocationsOnThisThread();
    for (int round = 0; round < 20; ++round) {
      (*m)->Run(x.data(), 1, out.data(), ws);
      (*m)->Run(x.data(), 8, out.data(), ws);
    }
    EXPECT_EQ(HeapAllocationsOnThisThread() - before, 0) << dir;
  }
}

// oneDNN has no blurred pooling: a blurred pool ends the oneDNN segment and runs
// on our kernel, so the chosen path gives the reference path's outputs.
TEST(ModelRun, BlurredPoolGivesTheSameOutputsOnEveryPath) {
  ModelSpec spec = Small();
  spec.mutable_layers(3)->mutable_max_pool2d()->set_blur(3);
  auto m = Model::Create(spec, SmallWeights(4));
  ASSERT_TRUE(m.ok()) << m.status();
  const std::vector<float> x = Random((*m)->input_size() * 3, 8);
  std::vector<float> ref((*m)->output_size() * 3), got(ref.size());
  Workspace ws_ref(**m, 3, ConvPath::kReference);
  (*m)->Run(x.data(), 3, ref.data(), ws_ref);
  for (const ConvPath path : {ConvPath::kChosen, ConvPath::kGemm}) {
    Workspace ws(**m, 3, path);
    (*m)->Run(x.data(), 3, got.data(), ws);
    for (size_t i = 0; i < ref.size(); ++i) {
      EXPECT_NEAR(got[i], ref[i], 1e-4f * (1 + std::fabs(ref[i]))) << i << " path " << static_cast<int>(path);
    }
  }
}

class ModelLoad : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = ::testing::TempDir() + "/nn_model_load_" +
           ::testing::UnitTest::GetInstance()->current_test_info()->name();
    std::filesystem::create_directories(dir_);
    std::ofstream(dir_ + "/spec.json") << SpecToJson(Small());
    Safetensors st;
    st.tensors = SmallWeights(9);
    st.metadata["seed"] = "9";
    ASSERT_TRUE(WriteSafetensors(dir_ + "/weights.safetensors", st).ok());
  }
  std::string dir_;
};

TEST_F(ModelLoad, LoadsAndMatchesCreate) {
  auto loaded = Model::Load(dir_);
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  auto created = Model::Create(Small(), SmallWeights(9));
  ASSERT_TRUE(created.ok());
  const std::vector<float> x = Random((*loaded)->input_size(), 4);
  float a[3], b[3];
  Workspace wa(**loaded, 1), wb(**created, 1);
  (*loaded)->Run(x.data(), 1, a, wa);
  (*created)->Run(x.data(), 1, b, wb);
  for (int i = 0; i < 3; ++i) EXPECT_EQ(a[i], b[i]);
}

TEST_F(ModelLoad, AppliesOverridesFirst) {
  ::wavepool::v1::PoolOverride o;
  o.set_layer("pool1");
  o.set_field("stride_time");
  o.set_value(1);
  auto m = Model::Load(dir_, {&o, 1});
  ASSERT_TRUE(m.ok()) << m.status();
  EXPECT_EQ((*m)->spec().layers(3).max_pool2d().stride_time(), 1u);
  o.set_field("kernel_time");
  o.set_value(20);  // longer than the 9 frames
  auto bad = Model::Load(dir_, {&o, 1});
  ASSERT_FALSE(bad.ok());
  EXPECT_THAT(bad.status().message(), AllOf(HasSubstr("layer 'pool1'"), HasSubstr("kernel_time 20")));
}

TEST_F(ModelLoad, ErrorsSayWhichFile) {
  std::filesystem::remove(dir_ + "/weights.safetensors");
  auto m = Model::Load(dir_);
  ASSERT_FALSE(m.ok());
  EXPECT_THAT(m.status().message(), HasSubstr("weights.safetensors"));
  std::ofstream(dir_ + "/spec.json") << "{ not json";
  m = Model::Load(dir_);
  ASSERT_FALSE(m.ok());
  EXPECT_THAT(m.status().message(), HasSubstr("spec.json"));
}

}  // namespace
}  // namespace wavepool::nn
