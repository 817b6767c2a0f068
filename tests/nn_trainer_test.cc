// The trainer end to end: its gradients (through every layer, batch-norm in
// training mode included) against finite differences of its own loss; loss
// falling on committed FSDD clips; seeded reproducibility; save then load.
#include "nn/trainer.h"

#include <cmath>
#include <filesystem>
#include <random>

#include "dsp/log_mel.h"
#include "dsp/wav.h"
#include "gtest/gtest.h"
#include "nn/front_end.h"
#include "nn/model.h"
#include "nn/safetensors.h"
#include "nn/spec.h"

namespace wavepool::nn {
namespace {

// Input [1, 6, 9] through conv (unequal kernel/stride/pad), batch-norm, ReLU,
// average pooling (count_include_pad), max pooling, global max, dense.
ModelSpec SmallSpec() {
  auto spec = ParseSpecJson(R"({
    "name": "t", "version": "1", "kind": "FIXED_WINDOWS", "sampleRateHz": 8000,
    "windowing": {"lengthSamples": 800, "hopSamples": 400},
    "frontEnd": {"stft": {"frameLength": 160, "frameHop": 80, "fftSize": 256, "window": "HANN"},
                 "mel": {"numBands": 6, "fMinHz": 0, "fMaxHz": 4000}},
    "layers": [
      {"name": "c1", "conv2d": {"outChannels": 3, "kernelTime": 2, "kernelFreq": 3, "strideFreq": 2, "padTime": 1, "padFreq": 1}},
      {"name": "bn", "batchNorm": {}},
      {"name": "r", "relu": {}},
      {"name": "ap", "avgPool2d": {"kernelTime": 2, "kernelFreq": 2, "strideTime": 1, "padTime": 1, "countIncludePad": true}},
      {"name": "mp", "maxPool2d": {"kernelTime": 3, "kernelFreq": 1, "strideTime": 2}},
      {"name": "g", "globalMaxPool": {}},
      {"name": "fc", "dense": {"outFeatures": 4}}
    ],
    "labels": ["a", "b", "c", "d"]})");
  EXPECT_TRUE(spec.ok()) << spec.status();
  return *spec;
}

// The same spec with both pools anti-aliased: ap blurs frequency (its time
// stride is 1), mp blurs time; 3 taps each.
ModelSpec SmallBlurredSpec() {
  ModelSpec spec = SmallSpec();
  spec.mutable_layers(3)->mutable_avg_pool2d()->set_blur(3);
  spec.mutable_layers(4)->mutable_max_pool2d()->set_blur(3);
  return spec;
}

void ExpectGradientsMatchFiniteDifferences(const ModelSpec& spec) {
  auto init = InitWeights(spec, 3);
  ASSERT_TRUE(init.ok());
  TrainOptions o;
  o.max_batch = 5;
  o.threads = 2;
  o.label_smoothing = 0.1f;
  auto t = Trainer::Create(spec, *init, o);
  ASSERT_TRUE(t.ok()) << t.status();
  std::mt19937 rng(17);
  std::uniform_real_distribution<float> u(-1, 1);
  std::vector<float> x(5 * (*t)->input_size());
  for (float& v : x) v = u(rng);
  const std::vector<int> labels = {0, 3, 1, 2, 3};
  const float class_weight[4] = {1.0f, 2.0f, 0.5f, 1.0f};
  ASSERT_TRUE((*t)->ComputeGradients(x, labels, class_weight).ok());
  const TensorMap grads = (*t)->gradients();
  const TensorMap weights = (*t)->Weights();
  // Central differences of the float loss: step 1e-3, tolerance 1e-3 absolute
  // plus 3% of the gradient (float rounding of a loss near 1.5 is ~1e-7, so the
  // difference quotient is good to ~1e-4).
  const float h = 1e-3f;
  int checked = 0;
  for (const auto& [name, g] : grads) {
    if (name.find("running_") != std::string::npos) continue;
    std::vector<float> w = weights.at(name).data;
    for (size_t i = 0; i < w.size(); ++i) {
      const float saved = w[i];
      w[i] = saved + h;
      ASSERT_TRUE((*t)->SetWeight(name, w).ok());
      const double up = *(*t)->ComputeGradients(x, labels, class_weight);
      w[i] = saved - h;
      ASSERT_TRUE((*t)->SetWeight(name, w).ok());
      const double down = *(*t)->ComputeGradients(x, labels, class_weight);
      w[i] = saved;
      ASSERT_TRUE((*t)->SetWeight(name, w).ok());
      const double numeric = (up - down) / (2.0 * h);
      EXPECT_NEAR(g.data[i], numeric, 1e-3 + 0.03 * std::abs(numeric)) << name << "[" << i << "]";
      ++checked;
    }
  }
  EXPECT_EQ(checked, 43);  // c1 18 + 3, bn 3 + 3, fc 12 + 4
}

TEST(Trainer, GradientsMatchFiniteDifferencesOfItsLoss) {
  ExpectGradientsMatchFiniteDifferences(SmallSpec());
}

// Through the trainer's blurred-pool path (per-thread scratch, two threads).
TEST(Trainer, BlurredPoolGradientsMatchFiniteDifferencesOfItsLoss) {
  ExpectGradientsMatchFiniteDifferences(SmallBlurredSpec());
}

// Features of the committed FSDD clips (digits 0-9, two speakers), one window each.
void ExcerptBatch(const ModelSpec& spec, std::vector<float>* x, std::vector<int>* labels) {
  auto fo = FeatureOptionsFromSpec(spec);
  ASSERT_TRUE(fo.ok()) << fo.status();
  for (int d = 0; d < 10; ++d) {
    for (const char* speaker : {"george", "jackson"}) {
      auto audio = dsp::ReadAudio(std::string(WP_TEST_DATA_DIR) + "/fsdd/" + std::to_string(d) +
                                  "_" + speaker + "_0.wav");
      ASSERT_TRUE(audio.ok()) << audio.status();
      std::vector<float> s = dsp::Downmix(*audio);
      s.resize(fo->window_length, 0.0f);  // one window: the clip, then zeros
      bool padded = false;
      auto w = dsp::FeatureWindows(*fo, s, &padded);
      ASSERT_TRUE(w.ok());
      ASSERT_EQ(w->size(), 1u);
      x->insert(x->end(), (*w)[0].begin(), (*w)[0].end());
      labels->push_back(d);
    }
  }
}

ModelSpec DigitSpec() {
  auto spec = ReadSpecFile(std::string(WP_SOURCE_DIR) + "/specs/digits.json");
  EXPECT_TRUE(spec.ok()) << spec.status();
  return *spec;
}

TEST(Trainer, LossFallsOnTheCommittedExcerpt) {
  const ModelSpec spec = DigitSpec();
  std::vector<float> x;
  std::vector<int> labels;
  ExcerptBatch(spec, &x, &labels);
  auto init = InitWeights(spec, 1);
  ASSERT_TRUE(init.ok());
  TrainOptions o;
  o.max_batch = 20;
  o.learning_rate = 3e-3;
  o.warmup_steps = 2;
  o.total_steps = 25;
  auto t = Trainer::Create(spec, *init, o);
  ASSERT_TRUE(t.ok()) << t.status();
  double first = 0, last = 0;
  for (int step = 0; step < 25; ++step) {
    auto s = (*t)->Step(x, labels, nullptr);
    ASSERT_TRUE(s.ok()) << s.status();
    if (step == 0) first = s->loss;
    last = s->loss;
  }
  // 20 examples of 10 classes memorised: from ~ln(11) = 2.4 to well below half.
  EXPECT_LT(last, 0.5 * first) << "first " << first << " last " << last;
}

TEST(Trainer, SameSeedSameWeightsDifferentSeedDifferent) {
  const ModelSpec spec = DigitSpec();  // has dropout, so the seed matters
  std::vector<float> x;
  std::vector<int> labels;
  ExcerptBatch(spec, &x, &labels);
  auto init = InitWeights(spec, 5);
  ASSERT_TRUE(init.ok());
  auto train = [&](uint64_t seed) {
    TrainOptions o;
    o.max_batch = 20;
    o.seed = seed;
    auto t = Trainer::Create(spec, *init, o);
    EXPECT_TRUE(t.ok());
    for (int i = 0; i < 3; ++i) EXPECT_TRUE((*t)->Step(x, labels, nullptr).ok());
    return (*t)->Weights();
  };
  const TensorMap a = train(7), b = train(7), c = train(8);
  ASSERT_EQ(a.size(), b.size());
  bool c_differs = false;
  for (const auto& [name, t] : a) {
    EXPECT_EQ(t.data, b.at(name).data) << name;
    c_differs |= t.data != c.at(name).data;
  }
  EXPECT_TRUE(c_differs);
}

TEST(Trainer, SavedThenLoadedModelGivesIdenticalOutputs) {
  const ModelSpec spec = DigitSpec();
  std::vector<float> x;
  std::vector<int> labels;
  ExcerptBatch(spec, &x, &labels);
  auto init = InitWeights(spec, 2);
  TrainOptions o;
  o.max_batch = 20;
  auto t = Trainer::Create(spec, *init, o);
  ASSERT_TRUE(t.ok());
  for (int i = 0; i < 3; ++i) ASSERT_TRUE((*t)->Step(x, labels, nullptr).ok());
  auto in_memory = Model::Create(spec, (*t)->Weights());
  ASSERT_TRUE(in_memory.ok()) << in_memory.status();
  const auto dir = std::filesystem::temp_directory_path() /
                   ("wavepool-trainer-" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  Safetensors st;
  st.tensors = (*t)->Weights();
  ASSERT_TRUE(WriteSafetensors((dir / "weights.safetensors").string(), st).ok());
  std::FILE* f = std::fopen((dir / "spec.json").c_str(), "w");
  const std::string json = SpecToJson(spec);
  std::fwrite(json.data(), 1, json.size(), f);
  std::fclose(f);
  auto loaded = Model::Load(dir.string());
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  Workspace wa(**in_memory, 20), wb(**loaded, 20);
  std::vector<float> ya(20 * 11), yb(20 * 11);
  (*in_memory)->Run(x.data(), 20, ya.data(), wa);
  (*loaded)->Run(x.data(), 20, yb.data(), wb);
  EXPECT_EQ(ya, yb);
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace wavepool::nn
