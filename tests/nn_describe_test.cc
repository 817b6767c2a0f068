// Describe: hand-computed shapes, steps, receptive fields, parameters and
// FLOPs for a small spec; what a stride override does; the text table.
#include "nn/describe.h"

#include <cmath>
#include <string>

#include "absl/strings/match.h"
#include "absl/strings/str_split.h"
#include "dsp/mel.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace wavepool::nn {
namespace {

using ::testing::HasSubstr;

// 16 kHz; frames of 400 samples (25 ms) every 160 (10 ms); 40 Slaney bands
// 0-8000 Hz; windows of 400 + 99 * 160 = 16240 samples (1015 ms, 100 frames).
// conv1: 8 channels, kernel 5 (time) x 3 (freq), stride_time 2 -> [8, 38, 48]
// pool1: max, kernel 3 (time) x 2 (freq), strides = kernels  -> [8, 19, 16]
// gap                                                         -> [8, 1, 1]
constexpr char kSpec[] = R"({
  "name": "tiny", "version": "2", "kind": "FIXED_WINDOWS", "sampleRateHz": 16000,
  "windowing": {"lengthSamples": 16240, "hopSamples": 1600},
  "frontEnd": {"stft": {"frameLength": 400, "frameHop": 160, "fftSize": 512, "window": "HANN"},
               "mel": {"numBands": 40, "fMinHz": 0, "fMaxHz": 8000, "scale": "SLANEY"}},
  "layers": [
    {"name": "conv1", "conv2d": {"outChannels": 8, "kernelTime": 5, "kernelFreq": 3, "strideTime": 2}},
    {"name": "pool1", "maxPool2d": {"kernelTime": 3, "kernelFreq": 2}},
    {"name": "gap", "globalMaxPool": {}}
  ],
  "labels": ["0", "1", "2", "3", "4", "5", "6", "7"]
})";

ModelSpec Tiny() { return *ParseSpecJson(kSpec); }

dsp::MelFilterbank Bank() {
  dsp::MelOptions o;
  o.sample_rate_hz = 16000;
  o.fft_size = 512;
  o.num_bands = 40;
  o.f_min_hz = 0;
  o.f_max_hz = 8000;
  return *dsp::MelFilterbank::Create(o);
}

std::vector<uint32_t> ShapeOf(const ::wavepool::v1::LayerDescription& l) {
  return {l.output_shape().begin(), l.output_shape().end()};
}

TEST(Describe, HandComputedSmallSpec) {
  auto d = Describe(Tiny());
  ASSERT_TRUE(d.ok()) << d.status();
  ASSERT_EQ(d->layers_size(), 3);
  EXPECT_EQ(std::vector<uint32_t>(d->input_shape().begin(), d->input_shape().end()),
            (std::vector<uint32_t>{1, 40, 100}));
  EXPECT_DOUBLE_EQ(d->window_ms(), 1015);
  EXPECT_DOUBLE_EQ(d->hop_ms(), 100);
  const dsp::MelFilterbank bank = Bank();

  const auto& conv = d->layers(0);
  EXPECT_EQ(conv.op(), "conv2d");
  EXPECT_EQ(ShapeOf(conv), (std::vector<uint32_t>{8, 38, 48}));  // 40 - 3 + 1, (100 - 5) / 2 + 1
  EXPECT_DOUBLE_EQ(conv.time_step_ms(), 20);                      // stride 2 x 10 ms
  EXPECT_DOUBLE_EQ(conv.receptive_field_ms(), 65);                // 5 frames: (4 x 160 + 400) / 16 kHz
  EXPECT_DOUBLE_EQ(conv.freq_step_bands(), 1);
  EXPECT_DOUBLE_EQ(conv.freq_step_hz(), 200);                     // 8000 Hz / 40 bands
  EXPECT_DOUBLE_EQ(conv.receptive_field_bands(), 3);
  // Slaney bands widen upwards: 3 bands are narrowest at the bottom (edges 0..4,
  // 4 steps of 45.245 / 41 mel x 200/3 Hz = 294 Hz) and widest at the top.
  EXPECT_DOUBLE_EQ(conv.receptive_field_hz_min(), bank.UpperHz(2) - bank.LowerHz(0));
  EXPECT_NEAR(conv.receptive_field_hz_min(), 294.3, 0.5);
  EXPECT_DOUBLE_EQ(conv.receptive_field_hz_max(), bank.UpperHz(39) - bank.LowerHz(37));
  EXPECT_EQ(conv.parameters(), 8u * 1 * 3 * 5 + 8);
  EXPECT_DOUBLE_EQ(conv.mflops(), 8 * 38 * 48 * (2 * 15 + 1) / 1e6);  // MACs x 2 + bias

  const auto& pool = d->layers(1);
  EXPECT_EQ(ShapeOf(pool), (std::vector<uint32_t>{8, 19, 16}));
  EXPECT_DOUBLE_EQ(pool.time_step_ms(), 60);          // 2 x 3 frames
  EXPECT_DOUBLE_EQ(pool.receptive_field_ms(), 105);  // 5 + (3 - 1) x 2 = 9 frames
  EXPECT_DOUBLE_EQ(pool.freq_step_bands(), 2);
  EXPECT_DOUBLE_EQ(pool.freq_step_hz(), 400);
  EXPECT_DOUBLE_EQ(pool.receptive_field_bands(), 4);  // 3 + (2 - 1) x 1
  EXPECT_EQ(pool.parameters(), 0u);
  EXPECT_DOUBLE_EQ(pool.mflops(), 8 * 19 * 16 * 6 / 1e6);  // one compare per window cell

  const auto& gap = d->layers(2);
  EXPECT_EQ(ShapeOf(gap), (std::vector<uint32_t>{8, 1, 1}));
  EXPECT_DOUBLE_EQ(gap.receptive_field_ms(), 1015);  // the whole window
  EXPECT_DOUBLE_EQ(gap.receptive_field_bands(), 40);
  EXPECT_DOUBLE_EQ(gap.receptive_field_hz_min(), 8000);
  EXPECT_DOUBLE_EQ(gap.receptive_field_hz_max(), 8000);
  EXPECT_DOUBLE_EQ(gap.time_step_ms(), 0);  // a single position
  EXPECT_DOUBLE_EQ(gap.mflops(), 8 * 19 * 16 / 1e6);

  EXPECT_EQ(d->total_parameters(), 128u);
  EXPECT_NEAR(d->total_mflops(), (452352 + 14592 + 2432) / 1e6, 1e-12);
  // Per frame: 400 (window) + 2.5 x 512 x 9 (FFT) + 3 x 257 (power) + 2 x nonzeros
  // (mel) + 40 (log); 100 frames.
  const double per_frame = 400 + 11520 + 771 + 2.0 * bank.nonzeros() + 40;
  EXPECT_NEAR(d->front_end_mflops(), 100 * per_frame / 1e6, 1e-12);
}

TEST(Describe, StrideOverrideChangesStepAndDownstreamShapes) {
  ModelSpec spec = Tiny();
  ::wavepool::v1::PoolOverride o;
  o.set_layer("pool1");
  o.set_field("stride_time");
  o.set_value(1);
  ASSERT_TRUE(ApplyPoolOverrides({&o, 1}, &spec).ok());
  auto d = Describe(spec);
  ASSERT_TRUE(d.ok()) << d.status();
  const auto& pool = d->layers(1);
  EXPECT_EQ(ShapeOf(pool), (std::vector<uint32_t>{8, 19, 46}));  // (48 - 3) / 1 + 1
  EXPECT_DOUBLE_EQ(pool.time_step_ms(), 20);                     // 2 x 1 frames
  EXPECT_DOUBLE_EQ(pool.receptive_field_ms(), 105);              // the kernel, not the stride, sets it
  EXPECT_DOUBLE_EQ(pool.mflops(), 8 * 19 * 46 * 6 / 1e6);
  EXPECT_DOUBLE_EQ(d->layers(2).mflops(), 8 * 19 * 46 / 1e6);  // downstream cost follows
  EXPECT_DOUBLE_EQ(d->layers(0).time_step_ms(), 20);           // upstream unchanged
}

TEST(Describe, BlurWidensReceptiveFieldNotStepAndCountsItsCost) {
  ModelSpec spec = Tiny();
  ::wavepool::v1::PoolOverride o;
  o.set_layer("pool1");
  o.set_field("blur");
  o.set_value(3);
  ASSERT_TRUE(ApplyPoolOverrides({&o, 1}, &spec).ok());
  auto d = Describe(spec);
  ASSERT_TRUE(d.ok()) << d.status();
  const auto& pool = d->layers(1);
  EXPECT_EQ(ShapeOf(pool), (std::vector<uint32_t>{8, 19, 16}));  // as unblurred
  // Time, in frames: conv1 rf 5 jump 2; max k3 at stride 1: rf 5 + 2 x 2 = 9;
  // blur 3 taps at stride 3: rf 9 + 2 x 2 = 13, jump 6 (unblurred: rf 9).
  EXPECT_DOUBLE_EQ(pool.time_step_ms(), 60);
  EXPECT_DOUBLE_EQ(pool.receptive_field_ms(), (12 * 160 + 400) / 16.0);  // 145 ms
  // Frequency, in bands: conv1 rf 3; max k2 at stride 1: 4; blur 3 at stride 2: 6.
  EXPECT_DOUBLE_EQ(pool.freq_step_bands(), 2);
  EXPECT_DOUBLE_EQ(pool.receptive_field_bands(), 6);
  // Stage [8, 37, 46] at 6 cells each; time pass 2 x 3 per [8, 37, 16] value;
  // frequency pass 2 x 3 per [8, 19, 16] value.
  EXPECT_DOUBLE_EQ(pool.mflops(),
                   (8.0 * 37 * 46 * 6 + 2.0 * 8 * 37 * 16 * 3 + 2.0 * 8 * 19 * 16 * 3) / 1e6);
  EXPECT_THAT(FormatDescription(spec, *d), HasSubstr("max_pool2d+blur3"));
}

TEST(Describe, BlurSkipsAnAxisOfStrideOne) {
  ModelSpec spec = Tiny();
  ::wavepool::v1::PoolOverride o[2];
  o[0].set_layer("pool1"), o[0].set_field("blur"), o[0].set_value(5);
  o[1].set_layer("pool1"), o[1].set_field("stride_freq"), o[1].set_value(1);
  ASSERT_TRUE(ApplyPoolOverrides({o, 2}, &spec).ok());
  auto d = Describe(spec);
  ASSERT_TRUE(d.ok()) << d.status();
  const auto& pool = d->layers(1);
  EXPECT_EQ(ShapeOf(pool), (std::vector<uint32_t>{8, 37, 16}));
  EXPECT_DOUBLE_EQ(pool.receptive_field_bands(), 4);  // conv 3 + pool 2 - 1: no blur
  EXPECT_DOUBLE_EQ(pool.receptive_field_ms(), ((9 + 4 * 2 - 1) * 160 + 400) / 16.0);  // + 4 taps x jump 2
  // Stage [8, 37, 46]; only the time pass (5 taps).
  EXPECT_DOUBLE_EQ(pool.mflops(), (8.0 * 37 * 46 * 6 + 2.0 * 8 * 37 * 16 * 5) / 1e6);
}

TEST(Describe, MelAsChannelsSeesAllBands) {
  ModelSpec spec = Tiny();
  spec.mutable_front_end()->set_layout(::wavepool::v1::MEL_AS_CHANNELS);
  auto* c = spec.mutable_layers(0)->mutable_conv1d();
  c->set_out_channels(8);
  c->set_kernel(3);
  c->set_dilation(2);
  spec.mutable_layers(1)->mutable_avg_pool1d()->set_kernel(2);
  auto d = Describe(spec);
  ASSERT_TRUE(d.ok()) << d.status();
  const auto& conv = d->layers(0);
  EXPECT_EQ(ShapeOf(conv), (std::vector<uint32_t>{8, 1, 96}));  // 100 - 2 x 2
  EXPECT_EQ(conv.parameters(), 8u * 40 * 3 + 8);
  EXPECT_DOUBLE_EQ(conv.receptive_field_ms(), 65);              // 1 + 2 x 2 = 5 frames
  EXPECT_DOUBLE_EQ(conv.receptive_field_bands(), 40);
  EXPECT_DOUBLE_EQ(conv.receptive_field_hz_min(), 8000);
  EXPECT_DOUBLE_EQ(conv.freq_step_hz(), 0);
  EXPECT_DOUBLE_EQ(d->layers(1).time_step_ms(), 20);
  EXPECT_DOUBLE_EQ(d->layers(1).receptive_field_ms(), 75);       // 5 + 1 = 6 frames
}

TEST(Describe, BatchNormCountsFourPerChannelAndFoldsForFree) {
  ModelSpec spec = Tiny();
  auto* bn = spec.mutable_layers()->Add();
  bn->set_name("bn");
  bn->mutable_batch_norm();
  // conv1, bn (folds), pool1, gap, bn2 (after a pool: a real per-value affine).
  spec.mutable_layers()->SwapElements(1, 3);
  spec.mutable_layers()->SwapElements(2, 3);
  auto* bn2 = spec.mutable_layers()->Add();
  bn2->set_name("bn2");
  bn2->mutable_batch_norm();
  auto d = Describe(spec);
  ASSERT_TRUE(d.ok()) << d.status();
  ASSERT_EQ(d->layers(1).name(), "bn");
  EXPECT_EQ(d->layers(1).parameters(), 4u * 8);
  EXPECT_DOUBLE_EQ(d->layers(1).mflops(), 0);
  EXPECT_EQ(d->layers(4).name(), "bn2");
  EXPECT_DOUBLE_EQ(d->layers(4).mflops(), 2 * 8 / 1e6);
  EXPECT_EQ(d->total_parameters(), 128u + 64);
}

TEST(Describe, InvalidSpecIsAnError) {
  ModelSpec spec = Tiny();
  spec.mutable_layers(1)->mutable_max_pool2d()->set_kernel_time(60);
  auto d = Describe(spec);
  ASSERT_FALSE(d.ok());
  EXPECT_THAT(d.status().message(), HasSubstr("layer 'pool1'"));
}

TEST(FormatDescription, AlignedTableWithTotalsIn100Columns) {
  auto spec = ReadSpecFile(std::string(WP_SOURCE_DIR) + "/specs/untrained-digits.json");
  ASSERT_TRUE(spec.ok()) << spec.status();
  auto d = Describe(*spec);
  ASSERT_TRUE(d.ok()) << d.status();
  const std::string text = FormatDescription(*spec, *d);
  EXPECT_THAT(text, HasSubstr("model untrained-digits v1"));
  EXPECT_THAT(text, HasSubstr("layer"));
  EXPECT_THAT(text, HasSubstr("MFLOPs"));
  EXPECT_THAT(text, HasSubstr("total"));
  for (const auto& l : d->layers()) EXPECT_THAT(text, HasSubstr(l.name()));
  size_t column_of_params = std::string::npos;
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    EXPECT_LE(line.size(), 100u) << line;
    EXPECT_FALSE(!line.empty() && line.back() == ' ') << "trailing blank: " << line;
    // Every layer row ends its parameter count in the same column.
    if (absl::StartsWith(line, "conv1 ") || absl::StartsWith(line, "fc ")) {
      const size_t end = line.rfind(' ');
      if (column_of_params == std::string::npos) column_of_params = end;
      EXPECT_EQ(end, column_of_params) << line;
    }
  }
}

}  // namespace
}  // namespace wavepool::nn
