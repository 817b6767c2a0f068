// The sweep's model family (clients/sweep_grid.h) and its scatter chart.
#include <string>

#include "clients/svg_plot.h"
#include "clients/sweep_grid.h"
#include "gtest/gtest.h"
#include "nn/spec.h"

namespace wavepool::cli {
namespace {

v1::ModelSpec Digits() {
  auto spec = nn::ReadSpecFile(std::string(WP_SOURCE_DIR) + "/specs/digits.json");
  EXPECT_TRUE(spec.ok()) << spec.status();
  return *spec;
}

int Count(const std::string& text, const std::string& what) {
  int n = 0;
  for (size_t at = text.find(what); at != std::string::npos; at = text.find(what, at + 1)) ++n;
  return n;
}

TEST(SweepVariant, MaxSetsKernelEqualToStrideOnEveryPoolLayer) {
  const v1::ModelSpec base = Digits();
  auto v = SweepVariant(base, {}, {PoolKind::kMax, 3, 1});
  ASSERT_TRUE(v.ok()) << v.status();
  ASSERT_EQ(v->layers_size(), base.layers_size());
  int pools = 0;
  for (int i = 0; i < v->layers_size(); ++i) {
    EXPECT_EQ(v->layers(i).name(), base.layers(i).name());
    if (!base.layers(i).has_max_pool2d()) {
      EXPECT_EQ(v->layers(i).SerializeAsString(), base.layers(i).SerializeAsString());
      continue;
    }
    ++pools;
    const v1::Pool2dSpec& p = v->layers(i).max_pool2d();
    EXPECT_EQ(p.kernel_time(), 3u);
    EXPECT_EQ(p.stride_time(), 3u);
    EXPECT_EQ(p.kernel_freq(), 1u);
    EXPECT_EQ(p.stride_freq(), 1u);
  }
  EXPECT_EQ(pools, 3);
  // 101 frames / 3 / 3 / 3 (floor) = 3; 40 bands kept: the last conv is [96, 40, 3].
  auto shapes = nn::ValidateSpec(*v);
  ASSERT_TRUE(shapes.ok()) << shapes.status();
  bool checked = false;
  for (int i = 0; i < v->layers_size(); ++i) {
    if (v->layers(i).name() != "conv4") continue;
    EXPECT_EQ((*shapes)[static_cast<size_t>(i)].h, 40);
    EXPECT_EQ((*shapes)[static_cast<size_t>(i)].w, 3);
    checked = true;
  }
  EXPECT_TRUE(checked);
}

TEST(SweepVariant, AvgReplacesTheLayerType) {
  auto v = SweepVariant(Digits(), {}, {PoolKind::kAvg, 2, 2});
  ASSERT_TRUE(v.ok()) << v.status();
  int avg = 0;
  for (const auto& l : v->layers()) {
    EXPECT_FALSE(l.has_max_pool2d()) << l.name();
    if (l.has_avg_pool2d()) {
      ++avg;
      EXPECT_EQ(l.avg_pool2d().kernel_time(), 2u);
      EXPECT_EQ(l.avg_pool2d().kernel_freq(), 2u);
    }
  }
  EXPECT_EQ(avg, 3);
}

TEST(SweepVariant, ConvMovesTheStrideIntoThePrecedingConvolution) {
  const v1::ModelSpec base = Digits();
  auto v = SweepVariant(base, {}, {PoolKind::kConv, 2, 3});
  ASSERT_TRUE(v.ok()) << v.status();
  EXPECT_EQ(v->layers_size(), base.layers_size() - 3);
  for (const auto& l : v->layers()) {
    EXPECT_FALSE(l.has_max_pool2d() || l.has_avg_pool2d()) << l.name();
    if (!l.has_conv2d()) continue;
    const bool strided = l.name() != "conv4";
    EXPECT_EQ(l.conv2d().stride_time(), strided ? 2u : 0u) << l.name();
    EXPECT_EQ(l.conv2d().stride_freq(), strided ? 3u : 0u) << l.name();
  }
  // 3x3 convs, pad 1, stride (3 freq, 2 time): out = floor((in + 2 - 3) / s) + 1.
  // freq 40 -> 14 -> 5 -> 2; time 101 -> 51 -> 26 -> 13.
  auto shapes = nn::ValidateSpec(*v);
  ASSERT_TRUE(shapes.ok()) << shapes.status();
  for (int i = 0; i < v->layers_size(); ++i) {
    if (v->layers(i).name() != "conv4") continue;
    EXPECT_EQ((*shapes)[static_cast<size_t>(i)].h, 2);
    EXPECT_EQ((*shapes)[static_cast<size_t>(i)].w, 13);
  }
}

TEST(SweepVariant, BlurIsMaxPoolingWithAThreeTapBlur) {
  auto v = SweepVariant(Digits(), {}, {PoolKind::kBlur, 3, 2});
  ASSERT_TRUE(v.ok()) << v.status();
  int blurred = 0;
  for (const auto& l : v->layers()) {
    if (!l.has_max_pool2d()) continue;
    ++blurred;
    EXPECT_EQ(l.max_pool2d().blur(), 3u);
    EXPECT_EQ(l.max_pool2d().kernel_time(), 3u);
    EXPECT_EQ(l.max_pool2d().stride_freq(), 2u);
  }
  EXPECT_EQ(blurred, 3);
  EXPECT_TRUE(nn::ValidateSpec(*v).ok());
}

TEST(SweepVariant, ChangesOnlyTheNamedLayers) {
  const v1::ModelSpec base = Digits();
  auto v = SweepVariant(base, {"pool2"}, {PoolKind::kAvg, 4, 1});
  ASSERT_TRUE(v.ok()) << v.status();
  for (int i = 0; i < v->layers_size(); ++i) {
    if (v->layers(i).name() == "pool2") {
      EXPECT_TRUE(v->layers(i).has_avg_pool2d());
      EXPECT_EQ(v->layers(i).avg_pool2d().stride_time(), 4u);
    } else {
      EXPECT_EQ(v->layers(i).SerializeAsString(), base.layers(i).SerializeAsString());
    }
  }
}

TEST(SweepVariant, ErrorsNameTheLayer) {
  const v1::ModelSpec base = Digits();
  auto not_pool = SweepVariant(base, {"conv1"}, {PoolKind::kMax, 2, 2});
  ASSERT_FALSE(not_pool.ok());
  EXPECT_NE(not_pool.status().message().find("conv1"), std::string::npos);
  auto missing = SweepVariant(base, {"pool9"}, {PoolKind::kMax, 2, 2});
  ASSERT_FALSE(missing.ok());
  EXPECT_NE(missing.status().message().find("pool9"), std::string::npos);
  EXPECT_FALSE(SweepVariant(base, {}, {PoolKind::kMax, 0, 2}).ok());
  // Too much frequency pooling leaves nothing: the variant is made, validation says why.
  auto too_far = SweepVariant(base, {}, {PoolKind::kMax, 2, 4});
  ASSERT_TRUE(too_far.ok());
  EXPECT_FALSE(nn::ValidateSpec(*too_far).ok());
}

TEST(SweepVariant, OneDimensionalPoolingTakesNoFrequencyStride) {
  auto ecg = nn::ReadSpecFile(std::string(WP_SOURCE_DIR) + "/specs/ecg-beats-v2.json");
  ASSERT_TRUE(ecg.ok()) << ecg.status();
  auto bad = SweepVariant(*ecg, {}, {PoolKind::kMax, 2, 2});
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("frequency stride 1"), std::string::npos);
  auto conv = SweepVariant(*ecg, {}, {PoolKind::kConv, 3, 1});
  ASSERT_TRUE(conv.ok()) << conv.status();
  for (const auto& l : conv->layers()) EXPECT_FALSE(l.has_max_pool1d() || l.has_avg_pool1d());
}

TEST(SweepGrid, NamesAndKinds) {
  EXPECT_EQ(SweepTag({PoolKind::kConv, 2, 3}), "conv-t2-f3");
  for (const char* k : {"max", "avg", "conv", "blur"}) {
    auto kind = ParsePoolKind(k);
    ASSERT_TRUE(kind.ok());
    EXPECT_EQ(PoolKindName(*kind), k);
  }
  EXPECT_FALSE(ParsePoolKind("median").ok());
  auto p = ParseSweepTag("avg-t3-f12");
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_EQ(SweepTag(*p), "avg-t3-f12");
  for (const char* bad : {"avg-t3", "avg-3-f2", "avg-t0-f1", "mean-t2-f2", "max-tx-f2", "max-t2-f"}) {
    EXPECT_FALSE(ParseSweepTag(bad).ok()) << bad;
  }
}

TEST(ScatterPlotSvg, OnePointPerPlottableValueAndALegend) {
  ScatterPlot plot;
  plot.title = "a & b";
  ScatterPanel panel{"MFLOPs", "accuracy (%)", true, {}};
  panel.series.push_back({"max", "#111", {{10, 95, "t2"}, {100, 97, "t1"}, {0, 99, "bad"}}});
  panel.series.push_back({"avg", "#222", {{30, 96, "t2"}}});
  plot.panels = {panel};
  const std::string svg = ScatterPlotSvg(plot);
  // Three plottable points (x = 0 has no place on a log axis) + two legend marks.
  EXPECT_EQ(Count(svg, "<circle"), 5);
  EXPECT_EQ(Count(svg, ">t2<"), 2);
  EXPECT_EQ(Count(svg, ">bad<"), 0);
  EXPECT_NE(svg.find("a &amp; b"), std::string::npos);
  EXPECT_NE(svg.find("MFLOPs (log)"), std::string::npos);
}

}  // namespace
}  // namespace wavepool::cli
