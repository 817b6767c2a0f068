// MergeEnsemble: the merged network's output against the mean of the members'
// outputs, each member run on its own as an ordinary model.
#include "nn/ensemble.h"

#include <random>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "nn/model.h"
#include "nn/spec.h"

namespace wavepool::nn {
namespace {

// A member: the spec's seeded initial weights with every tensor (batch-norm
// statistics included) perturbed, so no block is an identity or a zero.
SpecAndWeights Member(const ModelSpec& spec, uint64_t seed) {
  SpecAndWeights m{spec, *InitWeights(spec, seed)};
  std::mt19937_64 rng(seed * 7919);
  std::uniform_real_distribution<float> jitter(-0.2f, 0.2f);
  for (auto& [name, t] : m.weights) {
    for (float& v : t.data) {
      v += jitter(rng);
      if (name.ends_with("running_var")) v = 0.5f + std::abs(v);
    }
  }
  m.spec.mutable_provenance()->set_split("records:101,106");
  m.spec.mutable_provenance()->set_seed(seed);
  return m;
}

ModelSpec SpecFile(const std::string& name) {
  absl::StatusOr<ModelSpec> spec = ReadSpecFile(std::string(WP_SOURCE_DIR) + "/specs/" + name);
  EXPECT_TRUE(spec.ok()) << spec.status();
  return *spec;
}

// Runs `members` one by one and the merged model on the same random windows
// and returns the largest difference between the merged output and the mean.
float LargestDifference(const std::vector<SpecAndWeights>& members, const SpecAndWeights& merged, int batch) {
  auto model = Model::Create(merged.spec, merged.weights);
  EXPECT_TRUE(model.ok()) << model.status();
  std::mt19937_64 rng(42);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::vector<float> input((*model)->input_size() * static_cast<size_t>(batch));
  for (float& v : input) v = normal(rng);
  const size_t outputs = (*model)->output_size() * static_cast<size_t>(batch);
  std::vector<double> mean(outputs, 0.0);
  for (const SpecAndWeights& m : members) {
    auto one = Model::Create(m.spec, m.weights);
    EXPECT_TRUE(one.ok()) << one.status();
    Workspace ws(**one, batch);
    std::vector<float> out(outputs);
    (*one)->Run(input.data(), batch, out.data(), ws);
    for (size_t i = 0; i < outputs; ++i) mean[i] += out[i] / static_cast<double>(members.size());
  }
  Workspace ws(**model, batch);
  std::vector<float> got(outputs);
  (*model)->Run(input.data(), batch, got.data(), ws);
  float worst = 0.0f;
  for (size_t i = 0; i < outputs; ++i) worst = std::max(worst, std::abs(got[i] - static_cast<float>(mean[i])));
  return worst;
}

TEST(Ensemble, BeatModelOutputIsTheMeanOfItsMembersLogits) {
  const ModelSpec spec = SpecFile("ecg-beats-v4.json");  // conv1d, bn, max pool, flatten, dense, dense
  std::vector<SpecAndWeights> members = {Member(spec, 1), Member(spec, 2), Member(spec, 3)};
  auto merged = MergeEnsemble(members);
  ASSERT_TRUE(merged.ok()) << merged.status();
  EXPECT_EQ(merged->spec.layers(0).conv1d().out_channels(), 3 * spec.layers(0).conv1d().out_channels());
  EXPECT_EQ(merged->spec.layers(spec.layers_size() - 1).dense().out_features(), 5u);
  EXPECT_EQ(merged->spec.provenance().split(), "records:101,106");
  EXPECT_LT(LargestDifference(members, *merged, 5), 1e-4f);
}

TEST(Ensemble, SpectrogramModelWithGlobalPoolingOutputIsTheMeanOfItsMembersLogits) {
  const ModelSpec spec = SpecFile("digits.json");  // conv2d blocks, global average pooling, one dense
  std::vector<SpecAndWeights> members = {Member(spec, 4), Member(spec, 5)};
  auto merged = MergeEnsemble(members);
  ASSERT_TRUE(merged.ok()) << merged.status();
  EXPECT_LT(LargestDifference(members, *merged, 2), 1e-4f);
}

TEST(Ensemble, OneMemberIsTheSameNetwork) {
  const ModelSpec spec = SpecFile("ecg-beats-v4.json");
  std::vector<SpecAndWeights> members = {Member(spec, 6)};
  auto merged = MergeEnsemble(members);
  ASSERT_TRUE(merged.ok()) << merged.status();
  EXPECT_LT(LargestDifference(members, *merged, 3), 1e-5f);
}

TEST(Ensemble, RefusesMembersFromDifferentSpecs) {
  const ModelSpec spec = SpecFile("ecg-beats-v4.json");
  ModelSpec wider = spec;
  wider.mutable_layers(0)->mutable_conv1d()->set_out_channels(8);
  std::vector<SpecAndWeights> members = {Member(spec, 1), Member(wider, 2)};
  auto merged = MergeEnsemble(members);
  ASSERT_FALSE(merged.ok());
  EXPECT_NE(merged.status().message().find("another spec"), std::string::npos) << merged.status();
}

TEST(Ensemble, VersionAndDescriptionMayDiffer) {
  const ModelSpec spec = SpecFile("ecg-beats-v4.json");
  ModelSpec renamed = spec;
  renamed.set_version(9);
  renamed.set_description("another run");
  std::vector<SpecAndWeights> members = {Member(spec, 1), Member(renamed, 2)};
  EXPECT_TRUE(MergeEnsemble(members).ok());
}

TEST(Ensemble, RefusesMembersWithDifferentHeldOutSets) {
  const ModelSpec spec = SpecFile("ecg-beats-v4.json");
  std::vector<SpecAndWeights> members = {Member(spec, 1), Member(spec, 2)};
  members[1].spec.mutable_provenance()->set_split("records:203");
  auto merged = MergeEnsemble(members);
  ASSERT_FALSE(merged.ok());
  EXPECT_NE(merged.status().message().find("held-out"), std::string::npos) << merged.status();
}

TEST(Ensemble, RefusesAMissingOrMisshapenTensor) {
  const ModelSpec spec = SpecFile("ecg-beats-v4.json");
  std::vector<SpecAndWeights> members = {Member(spec, 1), Member(spec, 2)};
  members[1].weights.erase("conv2.weight");
  EXPECT_FALSE(MergeEnsemble(members).ok());
  members[1] = Member(spec, 2);
  members[1].weights["fc1.weight"].shape[1] += 1;
  members[1].weights["fc1.weight"].data.resize(members[1].weights["fc1.weight"].data.size() + 32);
  EXPECT_FALSE(MergeEnsemble(members).ok());
}

TEST(Ensemble, RefusesANetworkThatDoesNotEndInADenseLayer) {
  ModelSpec spec = SpecFile("ecg-beats-v4.json");
  auto* relu = spec.add_layers();  // a ReLU after the logits: the mean no longer commutes
  relu->set_name("relu_out");
  relu->mutable_relu();
  std::vector<SpecAndWeights> members = {Member(spec, 1), Member(spec, 2)};
  auto merged = MergeEnsemble(members);
  ASSERT_FALSE(merged.ok());
  EXPECT_NE(merged.status().message().find("relu_out"), std::string::npos) << merged.status();
  EXPECT_FALSE(MergeEnsemble(std::vector<SpecAndWeights>{}).ok());
}

}  // namespace
}  // namespace wavepool::nn
