// Spec JSON, validation (one failing case per rule, asserting the message names
// the layer or field), expected weights, pooling overrides and InitWeights.
#include "nn/spec.h"

#include <cmath>
#include <functional>
#include <random>
#include <set>
#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace wavepool::nn {
namespace {

using ::testing::AllOf;
using ::testing::HasSubstr;
using ::wavepool::v1::PoolOverride;

// 8 kHz, 800-sample windows of 9 frames (160 / 80), 16 mel bands:
// input [1, 16, 9] -> conv1 [4, 16, 9] -> pool1 [4, 8, 4] -> gap [4, 1, 1] -> fc [3, 1, 1].
constexpr char kSmallSpec[] = R"({
  "name": "small", "version": "3", "kind": "FIXED_WINDOWS", "sampleRateHz": 8000,
  "windowing": {"lengthSamples": 800, "hopSamples": 400},
  "frontEnd": {"stft": {"frameLength": 160, "frameHop": 80, "fftSize": 256, "window": "HANN"},
               "mel": {"numBands": 16, "fMinHz": 0, "fMaxHz": 4000}, "layout": "MEL_AS_FREQ"},
  "layers": [
    {"name": "conv1", "conv2d": {"outChannels": 4, "kernelTime": 3, "kernelFreq": 3, "padTime": 1, "padFreq": 1}},
    {"name": "relu1", "relu": {}},
    {"name": "pool1", "maxPool2d": {"kernelTime": 2, "kernelFreq": 2}},
    {"name": "gap", "globalAvgPool": {}},
    {"name": "fc", "dense": {"outFeatures": 3}}
  ],
  "labels": ["a", "b", "c"]
})";

ModelSpec Small() {
  auto spec = ParseSpecJson(kSmallSpec);
  EXPECT_TRUE(spec.ok()) << spec.status();
  return *spec;
}

TEST(SpecJson, ParsesTheRepositorySpec) {
  auto spec = ReadSpecFile(std::string(WP_SOURCE_DIR) + "/specs/untrained-digits.json");
  ASSERT_TRUE(spec.ok()) << spec.status();
  EXPECT_EQ(spec->name(), "untrained-digits");
  EXPECT_EQ(spec->layers_size(), 14);
  auto shapes = ValidateSpec(*spec);
  ASSERT_TRUE(shapes.ok()) << shapes.status();
  EXPECT_EQ(shapes->back(), (Shape{11, 1, 1}));
}

TEST(SpecJson, UnknownFieldIsNamed) {
  auto spec = ParseSpecJson(R"({"frontEnd": {"stft": {"frameLenght": 160}}})");
  ASSERT_FALSE(spec.ok());
  EXPECT_THAT(spec.status().message(), HasSubstr("frameLenght"));
}

TEST(SpecJson, BadValueIsNamed) {
  auto spec = ParseSpecJson(R"({"layers": [{"name": "c", "conv2d": {"kernelTime": -1}}]})");
  ASSERT_FALSE(spec.ok());
  EXPECT_THAT(spec.status().message(), HasSubstr("kernel_time"));
}

TEST(SpecJson, MissingFileSaysWhich) {
  auto spec = ReadSpecFile("/nonexistent/spec.json");
  EXPECT_EQ(spec.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(spec.status().message(), HasSubstr("/nonexistent/spec.json"));
}

TEST(SpecJson, ToJsonIsLowerCamelCaseAndRoundTrips) {
  const ModelSpec spec = Small();
  const std::string json = SpecToJson(spec);
  EXPECT_THAT(json, HasSubstr("\"sampleRateHz\": 8000"));
  EXPECT_THAT(json, HasSubstr("\"outChannels\": 4"));
  EXPECT_THAT(json, ::testing::Not(HasSubstr("noBias")));  // default values omitted
  EXPECT_THAT(json, HasSubstr("\n"));                       // pretty-printed
  auto back = ParseSpecJson(json);
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(back->SerializeAsString(), spec.SerializeAsString());
}

TEST(ValidateSpec, SmallSpecShapes) {
  auto shapes = ValidateSpec(Small());
  ASSERT_TRUE(shapes.ok()) << shapes.status();
  const std::vector<Shape> want = {{4, 16, 9}, {4, 16, 9}, {4, 8, 4}, {4, 1, 1}, {3, 1, 1}};
  EXPECT_EQ(*shapes, want);
  EXPECT_EQ(*InputShape(Small()), (Shape{1, 16, 9}));
}

TEST(ValidateSpec, MelAsChannelsInput) {
  ModelSpec s = Small();
  s.mutable_front_end()->set_layout(::wavepool::v1::MEL_AS_CHANNELS);
  EXPECT_EQ(*InputShape(s), (Shape{16, 1, 9}));
}

struct Rule {
  const char* name;
  std::function<void(ModelSpec&)> mutate;
  std::vector<std::string> message;  // substrings the error must hold
};

::wavepool::v1::LayerSpec* Layer(ModelSpec& s, const std::string& name) {
  for (auto& l : *s.mutable_layers()) {
    if (l.name() == name) return &l;
  }
  ADD_FAILURE() << "no layer " << name;
  return s.mutable_layers(0);
}

std::vector<Rule> Rules() {
  using S = ModelSpec&;
  return {
      {"rate_zero", [](S s) { s.set_sample_rate_hz(0); }, {"sample_rate_hz (0)"}},
      {"rate_too_high", [](S s) { s.set_sample_rate_hz(2e6); }, {"sample_rate_hz", "1000000"}},
      {"rate_nan", [](S s) { s.set_sample_rate_hz(std::nan("")); }, {"sample_rate_hz"}},
      {"kind_unspecified", [](S s) { s.set_kind(::wavepool::v1::MODEL_KIND_UNSPECIFIED); }, {"kind", "FIXED_WINDOWS"}},
      {"kind_beat_rate", [](S s) { s.set_kind(::wavepool::v1::BEAT_WINDOWS); }, {"BEAT_WINDOWS", "[100, 1000]"}},
      {"kind_beat_window", [](S s) {
         s.set_kind(::wavepool::v1::BEAT_WINDOWS);
         s.set_sample_rate_hz(360);
       }, {"before_s (0)", "(0, 1] seconds"}},
      {"omit_lead_without_template", [](S s) {
         s.set_kind(::wavepool::v1::BEAT_WINDOWS);
         s.set_sample_rate_hz(360);
         s.mutable_beat_windowing()->set_before_s(0.25);
         s.mutable_beat_windowing()->set_after_s(0.4);
         s.mutable_beat_windowing()->set_omit_lead(true);
       }, {"omit_lead needs template_context"}},
      {"frame_length_zero", [](S s) { s.mutable_front_end()->mutable_stft()->set_frame_length(0); }, {"frame_length (0)"}},
      {"frame_hop_zero", [](S s) { s.mutable_front_end()->mutable_stft()->set_frame_hop(0); }, {"frame_hop (0)"}},
      {"fft_below_frame", [](S s) { s.mutable_front_end()->mutable_stft()->set_fft_size(128); }, {"fft_size (128)", "frame_length (160)"}},
      {"window_unset", [](S s) { s.mutable_front_end()->mutable_stft()->clear_window(); }, {"front_end.stft.window"}},
      {"bands_zero", [](S s) { s.mutable_front_end()->mutable_mel()->set_num_bands(0); }, {"num_bands (0)"}},
      {"f_min_negative", [](S s) { s.mutable_front_end()->mutable_mel()->set_f_min_hz(-1); }, {"f_min_hz (-1)"}},
      {"f_max_over_nyquist", [](S s) { s.mutable_front_end()->mutable_mel()->set_f_max_hz(4001); }, {"f_max_hz (4001)", "4000"}},
      {"f_min_not_below_f_max", [](S s) { s.mutable_front_end()->mutable_mel()->set_f_min_hz(4000); }, {"f_min_hz (4000)"}},
      {"band_covers_no_bin", [](S s) { s.mutable_front_end()->mutable_mel()->set_num_bands(200); }, {"front_end.mel", "covers no FFT bin"}},
      {"log_floor_negative", [](S s) { s.mutable_front_end()->mutable_log()->set_floor(-1); }, {"front_end.log.floor"}},
      {"window_shorter_than_frame", [](S s) { s.mutable_windowing()->set_length_samples(100); }, {"length_samples (100)", "frame_length (160)"}},
      {"window_not_whole_frames", [](S s) { s.mutable_windowing()->set_length_samples(810); }, {"length_samples (810)", "frame_hop (80)", "800 or 880"}},
      {"hop_zero", [](S s) { s.mutable_windowing()->set_hop_samples(0); }, {"hop_samples (0)"}},
      {"hop_not_frame_multiple", [](S s) { s.mutable_windowing()->set_hop_samples(100); }, {"hop_samples (100)", "frame_hop (80)"}},
      {"hop_over_length", [](S s) { s.mutable_windowing()->set_hop_samples(880); }, {"hop_samples (880)", "length_samples (800)"}},
      {"no_layers", [](S s) { s.clear_layers(); }, {"no layers"}},
      {"empty_name", [](S s) { Layer(s, "relu1")->set_name(""); }, {"layers[1]", "relu", "name"}},
      {"duplicate_name", [](S s) { Layer(s, "relu1")->set_name("conv1"); }, {"layers[1]", "'conv1'", "twice"}},
      {"no_op", [](S s) { Layer(s, "relu1")->clear_relu(); }, {"'relu1'", "no op"}},
      {"conv_no_channels", [](S s) { Layer(s, "conv1")->mutable_conv2d()->set_out_channels(0); }, {"layer 'conv1' (conv2d)", "out_channels"}},
      {"conv_zero_kernel", [](S s) { Layer(s, "conv1")->mutable_conv2d()->set_kernel_freq(0); }, {"layer 'conv1' (conv2d)", "kernel_freq"}},
      {"pool_zero_kernel", [](S s) { Layer(s, "pool1")->mutable_max_pool2d()->set_kernel_time(0); }, {"layer 'pool1' (max_pool2d)", "kernel_time"}},
      {"pool_pad_not_below_kernel", [](S s) { Layer(s, "pool1")->mutable_max_pool2d()->set_pad_freq(2); }, {"layer 'pool1' (max_pool2d)", "pad_freq (2)", "kernel_freq (2)"}},
      {"pool_shrinks_time_to_nothing", [](S s) { Layer(s, "pool1")->mutable_max_pool2d()->set_kernel_time(10); },
       {"layer 'pool1' (max_pool2d)", "input time size 9", "kernel_time 10", "1 short", "lower the kernel or the earlier time strides"}},
      {"conv_shrinks_freq_to_nothing", [](S s) {
         auto* c = Layer(s, "conv1")->mutable_conv2d();
         c->set_kernel_freq(9);
         c->set_dilation_freq(2);
         c->set_pad_freq(0);
       }, {"layer 'conv1' (conv2d)", "input freq size 16", "dilation 2 (span 17)", "1 short"}},
      {"conv1d_needs_h1", [](S s) {
         auto* l = Layer(s, "conv1");
         l->mutable_conv1d()->set_out_channels(4);
         l->mutable_conv1d()->set_kernel(3);
       }, {"layer 'conv1' (conv1d)", "H (frequency) = 16", "MEL_AS_CHANNELS"}},
      {"pool1d_needs_h1", [](S s) { Layer(s, "pool1")->mutable_avg_pool1d()->set_kernel(2); }, {"layer 'pool1' (avg_pool1d)", "H == 1"}},
      {"pool1d_pad_not_below_kernel", [](S s) {
         s.mutable_front_end()->set_layout(::wavepool::v1::MEL_AS_CHANNELS);
         Layer(s, "conv1")->mutable_conv2d()->set_kernel_freq(1);
         Layer(s, "conv1")->mutable_conv2d()->set_pad_freq(0);
         auto* p = Layer(s, "pool1")->mutable_max_pool1d();
         p->set_kernel(2);
         p->set_padding(2);
       }, {"layer 'pool1' (max_pool1d)", "padding (2)", "kernel (2)"}},
      {"dense_no_outputs", [](S s) { Layer(s, "fc")->mutable_dense()->set_out_features(0); }, {"layer 'fc' (dense)", "out_features"}},
      {"dropout_rate_one", [](S s) { Layer(s, "relu1")->mutable_dropout()->set_rate(1); }, {"layer 'relu1' (dropout)", "rate (1)"}},
      {"batch_norm_negative_epsilon", [](S s) { Layer(s, "relu1")->mutable_batch_norm()->set_epsilon(-1); }, {"layer 'relu1' (batch_norm)", "epsilon (-1)"}},
      {"softmax_needs_1x1", [](S s) { Layer(s, "relu1")->mutable_softmax(); }, {"layer 'relu1' (softmax)", "[4, 16, 9]", "H == W == 1"}},
      {"output_not_1x1", [](S s) { s.mutable_layers()->DeleteSubrange(3, 2); }, {"'pool1'", "[4, 8, 4]", "[labels, 1, 1]"}},
      {"labels_count", [](S s) { s.add_labels("d"); }, {"'fc'", "3 values", "4 labels"}},
      {"label_empty", [](S s) { s.set_labels(1, ""); }, {"labels[1]", "empty"}},
      {"label_twice", [](S s) { s.set_labels(2, "a"); }, {"labels[2]", "'a'", "twice"}},
      {"activation_too_large", [](S s) { Layer(s, "conv1")->mutable_conv2d()->set_out_channels(1u << 30); }, {"layer 'conv1' (conv2d)", "limit"}},
  };
}

TEST(ValidateSpec, EveryRuleHasAnActionableMessage) {
  for (const Rule& r : Rules()) {
    SCOPED_TRACE(r.name);
    ModelSpec s = Small();
    r.mutate(s);
    auto shapes = ValidateSpec(s);
    ASSERT_FALSE(shapes.ok());
    for (const std::string& want : r.message) EXPECT_THAT(shapes.status().message(), HasSubstr(want));
  }
}

TEST(InputShape, BeatWindowsAreTheLeadPlusRrChannels) {
  ModelSpec s = Small();
  s.set_kind(::wavepool::v1::BEAT_WINDOWS);
  s.set_sample_rate_hz(360);
  s.mutable_beat_windowing()->set_before_s(0.25);  // 90 samples
  s.mutable_beat_windowing()->set_after_s(0.4);    // 144 samples
  auto shape = InputShape(s);
  ASSERT_TRUE(shape.ok()) << shape.status();
  EXPECT_EQ(*shape, (Shape{1, 1, 234}));
  s.mutable_beat_windowing()->set_rr_context(true);
  EXPECT_EQ(*InputShape(s), (Shape{5, 1, 234}));
  s.mutable_beat_windowing()->set_template_context(true);
  EXPECT_EQ(*InputShape(s), (Shape{6, 1, 234}));
  s.mutable_beat_windowing()->set_omit_lead(true);  // ecg-beats v3: template + RR
  EXPECT_EQ(*InputShape(s), (Shape{5, 1, 234}));
  s.mutable_beat_windowing()->set_rr_irregularity(true);  // a fifth RR channel
  EXPECT_EQ(*InputShape(s), (Shape{6, 1, 234}));
  s.mutable_beat_windowing()->set_align_s(0.06);  // moves beats, adds no channel
  EXPECT_EQ(*InputShape(s), (Shape{6, 1, 234}));
  s.mutable_beat_windowing()->set_align_s(0.2);
  EXPECT_FALSE(InputShape(s).ok());
  s.mutable_beat_windowing()->set_align_s(0.06);
  s.mutable_beat_windowing()->set_rr_context(false);
  auto no_rr = InputShape(s);
  ASSERT_FALSE(no_rr.ok());
  EXPECT_NE(no_rr.status().message().find("rr_irregularity needs rr_context"), std::string::npos) << no_rr.status();
}

TEST(ExpectedWeights, NamesAndPyTorchShapes) {
  ModelSpec s = Small();
  Layer(s, "relu1")->mutable_batch_norm();
  Layer(s, "conv1")->mutable_conv2d()->set_kernel_time(5);
  Layer(s, "conv1")->mutable_conv2d()->set_pad_time(2);
  Layer(s, "pool1")->mutable_max_pool2d()->set_stride_freq(4);  // [4, 4, 4]
  s.mutable_layers()->DeleteSubrange(3, 1);                       // no gap: dense sees 64
  auto w = ExpectedWeights(s);
  ASSERT_TRUE(w.ok()) << w.status();
  const std::map<std::string, std::vector<int64_t>> want = {
      {"conv1.weight", {4, 1, 3, 5}},   {"conv1.bias", {4}},
      {"relu1.weight", {4}},            {"relu1.bias", {4}},
      {"relu1.running_mean", {4}},      {"relu1.running_var", {4}},
      {"fc.weight", {3, 64}},           {"fc.bias", {3}},
  };
  EXPECT_EQ(*w, want);
}

TEST(ExpectedWeights, Conv1dAndNoBias) {
  ModelSpec s = Small();
  s.mutable_front_end()->set_layout(::wavepool::v1::MEL_AS_CHANNELS);
  auto* c = Layer(s, "conv1")->mutable_conv1d();
  c->set_out_channels(8);
  c->set_kernel(3);
  c->set_no_bias(true);
  Layer(s, "pool1")->mutable_max_pool1d()->set_kernel(2);
  Layer(s, "fc")->mutable_dense()->set_no_bias(true);
  auto w = ExpectedWeights(s);
  ASSERT_TRUE(w.ok()) << w.status();
  const std::map<std::string, std::vector<int64_t>> want = {{"conv1.weight", {8, 16, 3}},
                                                            {"fc.weight", {3, 8}}};
  EXPECT_EQ(*w, want);
}

TEST(PoolOverride, ParsesTheCliForm) {
  auto o = ParsePoolOverride("pool1.stride_time=4");
  ASSERT_TRUE(o.ok()) << o.status();
  EXPECT_EQ(o->layer(), "pool1");
  EXPECT_EQ(o->field(), "stride_time");
  EXPECT_EQ(o->value(), 4u);
  // Layer names may hold dots; the field is after the last one. Blanks are trimmed.
  o = ParsePoolOverride(" block1.pool.kernel = 3 ");
  ASSERT_TRUE(o.ok()) << o.status();
  EXPECT_EQ(o->layer(), "block1.pool");
  EXPECT_EQ(o->field(), "kernel");
  EXPECT_EQ(o->value(), 3u);
}

TEST(PoolOverride, ParseErrors) {
  const std::pair<const char*, const char*> cases[] = {
      {"pool1.stride_time", "no '='"},
      {"pool1=4", "no '.'"},
      {".stride_time=4", "empty layer"},
      {"pool1.stride=-1", "'-1'"},
      {"pool1.stride=", "not a non-negative integer"},
      {"pool1.stride=x4", "'x4'"},
      {"pool1.stride=99999999999", "'99999999999'"},
      {"pool1.dilation=2", "unknown field 'dilation'"},
  };
  for (const auto& [text, want] : cases) {
    SCOPED_TRACE(text);
    auto o = ParsePoolOverride(text);
    ASSERT_FALSE(o.ok());
    EXPECT_THAT(o.status().message(), AllOf(HasSubstr(want), HasSubstr("layer.field=value")));
  }
}

PoolOverride Override(const std::string& layer, const std::string& field, uint32_t value) {
  PoolOverride o;
  o.set_layer(layer);
  o.set_field(field);
  o.set_value(value);
  return o;
}

TEST(PoolOverride, AppliesInOrder) {
  ModelSpec s = Small();
  const PoolOverride os[] = {Override("pool1", "stride_time", 3), Override("pool1", "kernel_freq", 4),
                             Override("pool1", "stride_time", 1)};
  ASSERT_TRUE(ApplyPoolOverrides(os, &s).ok());
  EXPECT_EQ(Layer(s, "pool1")->max_pool2d().stride_time(), 1u);
  EXPECT_EQ(Layer(s, "pool1")->max_pool2d().kernel_freq(), 4u);
  auto shapes = ValidateSpec(s);
  ASSERT_TRUE(shapes.ok()) << shapes.status();
  EXPECT_EQ((*shapes)[2], (Shape{4, 4, 8}));  // freq (16 - 4) / 4 + 1, time (9 - 2) / 1 + 1
}

TEST(PoolOverride, ErrorsNameTheLayerAndField) {
  ModelSpec s = Small();
  s.add_layers()->set_name("extra");  // a 1-D pool to check its field set
  s.mutable_layers()->rbegin()->mutable_avg_pool1d()->set_kernel(2);
  const ModelSpec before = s;
  const std::pair<PoolOverride, std::vector<std::string>> cases[] = {
      {Override("pool9", "stride_time", 2), {"no layer named 'pool9'", "pool1, extra"}},
      {Override("conv1", "stride_time", 2), {"layer 'conv1' (conv2d)", "not a pooling layer"}},
      {Override("gap", "kernel", 2), {"layer 'gap' (global_avg_pool)", "no kernel, stride"}},
      {Override("pool1", "kernel", 2), {"layer 'pool1' (max_pool2d)", "no field 'kernel'", "kernel_time"}},
      {Override("extra", "stride_time", 2), {"layer 'extra' (avg_pool1d)", "no field 'stride_time'", "kernel, stride, padding"}},
      {Override("pool1", "kernel_time", 0), {"layer 'pool1' (max_pool2d)", "kernel_time must be > 0"}},
      {Override("extra", "kernel", 0), {"layer 'extra' (avg_pool1d)", "kernel must be > 0"}},
  };
  for (const auto& [o, want] : cases) {
    SCOPED_TRACE(o.layer() + "." + o.field());
    // A good override first: an error must leave the spec untouched (all or nothing).
    const PoolOverride os[] = {Override("pool1", "stride_freq", 1), o};
    const absl::Status st = ApplyPoolOverrides(os, &s);
    ASSERT_FALSE(st.ok());
    for (const std::string& w : want) EXPECT_THAT(st.message(), HasSubstr(w));
    EXPECT_EQ(s.SerializeAsString(), before.SerializeAsString());
  }
}

TEST(InitWeights, SameSeedSameWeightsDifferentSeedDifferent) {
  ModelSpec s = Small();
  Layer(s, "relu1")->mutable_batch_norm();
  auto a = InitWeights(s, 42), b = InitWeights(s, 42), c = InitWeights(s, 43);
  ASSERT_TRUE(a.ok() && b.ok() && c.ok());
  EXPECT_EQ(a->size(), ExpectedWeights(s)->size());
  for (const auto& [name, t] : *a) {
    SCOPED_TRACE(name);
    EXPECT_EQ(t.shape, ExpectedWeights(s)->at(name));
    EXPECT_EQ(t.data, b->at(name).data);
  }
  EXPECT_NE(a->at("conv1.weight").data, c->at("conv1.weight").data);
  EXPECT_NE(a->at("fc.weight").data, c->at("fc.weight").data);
}

TEST(InitWeights, HeUniformZeroBiasIdentityBatchNorm) {
  ModelSpec s = Small();
  Layer(s, "relu1")->mutable_batch_norm();
  auto w = InitWeights(s, 7);
  ASSERT_TRUE(w.ok()) << w.status();
  // conv1: fan_in 1 * 3 * 3 = 9; fc: fan_in 4.
  for (const auto& [name, fan_in] : {std::pair<std::string, double>{"conv1.weight", 9}, {"fc.weight", 4}}) {
    const double limit = std::sqrt(6 / fan_in);
    for (float v : w->at(name).data) {
      EXPECT_GE(v, -limit);
      EXPECT_LT(v, limit);
    }
  }
  for (const char* zero : {"conv1.bias", "fc.bias", "relu1.bias", "relu1.running_mean"}) {
    for (float v : w->at(zero).data) EXPECT_EQ(v, 0.0f) << zero;
  }
  for (const char* one : {"relu1.weight", "relu1.running_var"}) {
    for (float v : w->at(one).data) EXPECT_EQ(v, 1.0f) << one;
  }
}

TEST(InitWeights, FollowsTheDocumentedDraws) {
  // Layer order, row-major, one mt19937_64 draw per value: u = (x >> 40) 2^-24,
  // w = (2u - 1) sqrt(6 / fan_in). mt19937_64's sequence is fixed by the standard.
  auto w = InitWeights(Small(), 123);
  ASSERT_TRUE(w.ok());
  std::mt19937_64 rng(123);
  const auto next = [&](double fan_in) {
    const double u = static_cast<double>(rng() >> 40) * 0x1p-24;
    return static_cast<float>((2 * u - 1) * std::sqrt(6 / fan_in));
  };
  for (float v : w->at("conv1.weight").data) EXPECT_EQ(v, next(9));
  for (float v : w->at("fc.weight").data) EXPECT_EQ(v, next(4));
  // The standard's own check value (10000th draw from the default seed).
  std::mt19937_64 check;
  check.discard(9999);
  EXPECT_EQ(check(), 9981545732273789042ull);
}

}  // namespace
}  // namespace wavepool::nn
