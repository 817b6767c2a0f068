// Anti-aliased pooling (kernels.h BlurPool2d; Zhang 2019): the kernel against
// PyTorch (tests/data/blur_pool/torch_cases.json, written by
// scripts/blur_pool_fixture.py: F.max_pool2d / F.avg_pool2d at stride 1, then
// ReflectionPad + a depthwise conv2d of the binomial filter, as the paper's
// code), the filter taps against Pascal's triangle, and the layer through the
// spec: validation, the `blur` override, and Model::Run against the kernel.
// Gradients are checked in nn_backward_test (the blurred rows of its table).
//
// Tolerance against PyTorch (double there, float here): outputs are weighted
// means (weights >= 0 summing to 1) of at most 49 stage values in [-1, 1],
// themselves means of at most 9 inputs, so the float error is below
// (49 + 9 + 2) 2^-24 ~ 3.6e-6; 1e-5 leaves room and still catches any
// misplaced tap (>= 1/64 of a value difference).
#include <cmath>
#include <fstream>
#include <limits>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "google/protobuf/struct.pb.h"
#include "google/protobuf/util/json_util.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nn/kernels.h"
#include "nn/model.h"
#include "nn/spec.h"
#include "tests/small_spec.h"

namespace wavepool::nn {
namespace {

using ::google::protobuf::Struct;
using ::google::protobuf::Value;
using ::testing::HasSubstr;

constexpr double kTorchTol = 1e-5;

std::vector<double> Numbers(const Value& v) {
  std::vector<double> out;
  for (const Value& e : v.list_value().values()) out.push_back(e.number_value());
  return out;
}

uint32_t U(const Value& v, int i) { return static_cast<uint32_t>(v.list_value().values(i).number_value()); }

TEST(BinomialTaps, AreRowsOfPascalsTriangleOverTheirSum) {
  const std::vector<std::vector<double>> rows = {
      {1}, {1, 1}, {1, 2, 1}, {1, 3, 3, 1}, {1, 4, 6, 4, 1}, {1, 5, 10, 10, 5, 1},
      {1, 6, 15, 20, 15, 6, 1}};
  for (uint32_t n = 1; n <= kMaxBlurTaps; ++n) {
    float f[kMaxBlurTaps];
    BinomialTaps(n, f);
    for (uint32_t k = 0; k < n; ++k) {
      EXPECT_EQ(f[k], static_cast<float>(rows[n - 1][k] / std::pow(2.0, n - 1)))
          << "taps " << n << ", k " << k;
    }
  }
}

TEST(BlurPool2d, MatchesPyTorchReflectPadDepthwiseConv) {
  std::ifstream in(std::string(WP_TEST_DATA_DIR) + "/blur_pool/torch_cases.json");
  ASSERT_TRUE(in) << "missing tests/data/blur_pool/torch_cases.json";
  std::stringstream ss;
  ss << in.rdbuf();
  Struct root;
  ASSERT_TRUE(google::protobuf::util::JsonStringToMessage(ss.str(), &root).ok());
  const auto& cases = root.fields().at("cases").list_value().values();
  ASSERT_GE(cases.size(), 7);
  for (const Value& cv : cases) {
    const auto& f = cv.struct_value().fields();
    SCOPED_TRACE("case " + f.at("name").string_value());
    Pool2dParams p;
    p.c = U(f.at("in"), 0), p.in_h = U(f.at("in"), 1), p.in_w = U(f.at("in"), 2);
    p.kernel_h = U(f.at("kernel"), 0), p.kernel_w = U(f.at("kernel"), 1);
    p.stride_h = U(f.at("stride"), 0), p.stride_w = U(f.at("stride"), 1);
    p.pad_h = U(f.at("pad"), 0), p.pad_w = U(f.at("pad"), 1);
    p.count_include_pad = f.at("include_pad").bool_value();
    const auto blur = static_cast<uint32_t>(f.at("blur").number_value());
    p.blur_h = p.stride_h > 1 ? blur : 1;
    p.blur_w = p.stride_w > 1 ? blur : 1;
    const int batch = static_cast<int>(f.at("batch").number_value());
    ASSERT_EQ(p.out_h(), U(f.at("out"), 1)) << "output height";
    ASSERT_EQ(p.out_w(), U(f.at("out"), 2)) << "output width";
    const std::vector<double> xd = Numbers(f.at("x")), yd = Numbers(f.at("y"));
    const std::vector<float> x(xd.begin(), xd.end());
    ASSERT_EQ(x.size(), size_t(batch) * p.c * p.in_h * p.in_w);
    ASSERT_EQ(yd.size(), size_t(batch) * p.c * p.out_h() * p.out_w());
    // Guard values after the output and the scratch catch a write past either.
    constexpr float kGuard = -777.0f;
    std::vector<float> y(yd.size() + 8, kGuard);
    std::vector<float> scratch(BlurPoolScratch(p) + 8, kGuard);
    std::fill(scratch.begin(), scratch.end() - 8, std::numeric_limits<float>::quiet_NaN());
    const PoolKind kind = f.at("kind").string_value() == "max" ? PoolKind::kMax : PoolKind::kAvg;
    BlurPool2d(kind, p, batch, x.data(), y.data(), scratch.data());
    int shown = 0;
    for (size_t i = 0; i < yd.size(); ++i) {
      if (!(std::abs(y[i] - yd[i]) <= kTorchTol) && shown++ < 5) {
        ADD_FAILURE() << "y[" << i << "] = " << y[i] << ", PyTorch " << yd[i];
      }
    }
    for (size_t i = yd.size(); i < y.size(); ++i) EXPECT_EQ(y[i], kGuard) << "wrote past the output";
    for (size_t i = scratch.size() - 8; i < scratch.size(); ++i) {
      EXPECT_EQ(scratch[i], kGuard) << "wrote past the scratch";
    }
  }
}

TEST(BlurPool2d, HandComputedMaxBlurPool1d) {
  // max k2 s1 of [0 4 0 0 8 0] = [4 4 0 8 8]; reflect-padded by 1 each side
  // ([4 | 4 4 0 8 8 | 8]) and [1 2 1]/4 at positions 0, 2, 4:
  // (4 + 8 + 4)/4 = 4, (4 + 0 + 8)/4 = 3, (8 + 16 + 8)/4 = 8.
  Pool2dParams p;
  p.in_w = 6, p.kernel_w = 2, p.stride_w = 2, p.blur_w = 3;
  ASSERT_EQ(p.out_w(), 3u);
  const float x[6] = {0, 4, 0, 0, 8, 0};
  float y[3];
  std::vector<float> scratch(BlurPoolScratch(p));
  BlurPool2d(PoolKind::kMax, p, 1, x, y, scratch.data());
  EXPECT_FLOAT_EQ(y[0], 4.0f);
  EXPECT_FLOAT_EQ(y[1], 3.0f);
  EXPECT_FLOAT_EQ(y[2], 8.0f);
}

// tests/small_spec.h: input [1, 16, 9] -> conv1 [4, 16, 9] -> relu1 ->
// pool1 [4, 8, 4] -> gap -> fc [3].
const std::string kSpec = wavepool::testing::SmallSpecJson("small", 1);

absl::Status Override(const std::string& text, ModelSpec* spec) {
  auto o = ParsePoolOverride(text);
  if (!o.ok()) return o.status();
  return ApplyPoolOverrides({&*o, 1}, spec);
}

TEST(BlurSpec, OverrideSetsBlurAndKeepsShapes) {
  ModelSpec spec = *ParseSpecJson(kSpec);
  auto plain = ValidateSpec(spec);
  ASSERT_TRUE(plain.ok()) << plain.status();
  ASSERT_TRUE(Override("pool1.blur=3", &spec).ok());
  EXPECT_EQ(spec.layers(2).max_pool2d().blur(), 3u);
  auto blurred = ValidateSpec(spec);
  ASSERT_TRUE(blurred.ok()) << blurred.status();
  EXPECT_EQ(*blurred, *plain);  // same shapes: the same weights load
}

TEST(BlurSpec, TooManyTapsIsAnErrorNamingTheLayer) {
  ModelSpec spec = *ParseSpecJson(kSpec);
  ASSERT_TRUE(Override("pool1.blur=8", &spec).ok());  // range is ValidateSpec's job
  auto st = ValidateSpec(spec);
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(st.status().message(), HasSubstr("layer 'pool1' (max_pool2d): blur (8) must be"));
}

TEST(BlurSpec, BlurOverrideOnANonPoolIsAnError) {
  ModelSpec spec = *ParseSpecJson(kSpec);
  auto st = Override("gap.blur=3", &spec);
  ASSERT_FALSE(st.ok());
  EXPECT_THAT(st.message(), HasSubstr("no kernel, stride, padding or blur"));
  EXPECT_FALSE(Override("conv1.blur=3", &spec).ok());
}

TEST(BlurSpec, JsonFieldParses) {
  std::string json = kSpec;
  json.replace(json.find(R"("kernelFreq": 2})"), 16, R"("kernelFreq": 2, "blur": 5})");
  auto spec = ParseSpecJson(json);
  ASSERT_TRUE(spec.ok()) << spec.status();
  EXPECT_EQ(spec->layers(2).max_pool2d().blur(), 5u);
}

// The compiled model runs the blurred pool as the kernel does: the model's
// output equals conv -> relu -> BlurPool2d -> mean -> dense computed here
// from the kernels, and differs from the unblurred model's.
TEST(BlurModel, RunEqualsKernelChainAndDiffersFromUnblurred) {
  ModelSpec spec = *ParseSpecJson(kSpec);
  const TensorMap w = *InitWeights(spec, 5);
  ModelSpec blurred_spec = spec;
  ASSERT_TRUE(Override("pool1.blur=3", &blurred_spec).ok());
  auto plain = Model::Create(spec, w);
  auto blurred = Model::Create(blurred_spec, w);
  ASSERT_TRUE(plain.ok() && blurred.ok());
  std::mt19937 rng(11);
  std::uniform_real_distribution<float> u(-1, 1);
  std::vector<float> x((*blurred)->input_size() * 2);
  for (float& v : x) v = u(rng);
  // Reference convolutions (nn::Conv2d), so the chain below is bit-identical.
  Workspace ws(**blurred, 2, /*reference=*/true), wp(**plain, 2, true);
  std::vector<float> got(6), unblurred(6);
  (*blurred)->Run(x.data(), 2, got.data(), ws);
  (*plain)->Run(x.data(), 2, unblurred.data(), wp);

  Conv2dParams c{1, 16, 9, 4, 3, 3, 1, 1, 1, 1, 1, 1};
  std::vector<float> a(2 * 4 * 16 * 9), b(2 * 4 * 8 * 4), g(2 * 4), want(6);
  Conv2d(c, 2, x.data(), w.at("conv1.weight").data.data(), w.at("conv1.bias").data.data(), a.data());
  Relu(a.size(), a.data());
  Pool2dParams p{4, 16, 9, 2, 2, 2, 2, 0, 0, false};
  p.blur_h = p.blur_w = 3;
  std::vector<float> scratch(BlurPoolScratch(p));
  BlurPool2d(PoolKind::kMax, p, 2, a.data(), b.data(), scratch.data());
  GlobalAvgPool(4, 32, 2, b.data(), g.data());
  Dense(4, 3, 2, g.data(), w.at("fc.weight").data.data(), w.at("fc.bias").data.data(), want.data());
  for (int i = 0; i < 6; ++i) EXPECT_EQ(got[i], want[i]) << i;
  double diff = 0;
  for (int i = 0; i < 6; ++i) diff += std::abs(got[i] - unblurred[i]);
  EXPECT_GT(diff, 1e-4);
}

}  // namespace
}  // namespace wavepool::nn
