// Vocal-tract-length perturbation on the log-mel window (clients/digit_data.h,
// VtlpWarpHz / VtlpWarp / RandomVtlp). The expected figures were computed by a
// separate Python implementation of Jaitly & Hinton's eq. 1 and the Slaney mel
// scale (band centres of specs/digits.json's front end: 40 bands, 20-4000 Hz;
// band 20 at 1242.4 Hz, band 36 at 3165.9 Hz), not by the code under test.
#include <algorithm>
#include <cstdint>
#include <ostream>
#include <random>
#include <string>
#include <vector>

#include "clients/digit_data.h"
#include "dsp/mel.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace wavepool::cli {
namespace {

using ::testing::HasSubstr;

constexpr size_t kBands = 40, kFrames = 7;
constexpr double kBoundary = 0.6;  // F_hi = 2400 Hz of 4000

dsp::MelOptions DigitsMel() {
  dsp::MelOptions m;
  m.sample_rate_hz = 8000;
  m.fft_size = 256;
  m.num_bands = kBands;
  m.f_min_hz = 20;
  m.f_max_hz = 4000;
  m.scale = dsp::MelScaleType::kSlaney;
  return m;
}

std::vector<float> RandomWindow(uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> n(0.0f, 1.0f);
  std::vector<float> w(kBands * kFrames);
  for (float& v : w) v = n(rng);
  return w;
}

TEST(VtlpWarpHz, PiecewiseLinearKeepsZeroAndTop) {
  // alpha 1.1: f0 = 2400 / 1.1 = 2181.8 Hz; above it the line from
  // (2181.8, 2400) to (4000, 4000): W(3000) = 4000 - 1600 / 1818.18 * 1000 = 3120.
  EXPECT_DOUBLE_EQ(VtlpWarpHz(0, 1.1, 2400, 4000), 0);
  EXPECT_DOUBLE_EQ(VtlpWarpHz(1000, 1.1, 2400, 4000), 1100);
  EXPECT_NEAR(VtlpWarpHz(2400 / 1.1, 1.1, 2400, 4000), 2400, 1e-9);
  EXPECT_NEAR(VtlpWarpHz(3000, 1.1, 2400, 4000), 3120, 1e-9);
  EXPECT_DOUBLE_EQ(VtlpWarpHz(4000, 1.1, 2400, 4000), 4000);
  // alpha 0.9: f0 = 2400, W(f0) = 2160; W(3000) = 4000 - 1840 / 1600 * 1000 = 2850.
  EXPECT_NEAR(VtlpWarpHz(2400, 0.9, 2400, 4000), 2160, 1e-9);
  EXPECT_NEAR(VtlpWarpHz(3000, 0.9, 2400, 4000), 2850, 1e-9);
  EXPECT_DOUBLE_EQ(VtlpWarpHz(4000, 0.9, 2400, 4000), 4000);
}

TEST(VtlpWarp, AlphaOneIsExactlyTheIdentity) {
  const std::vector<float> in = RandomWindow(7);
  std::vector<float> out = in;
  VtlpWarp(DigitsMel(), kFrames, 1.0, kBoundary, out);
  EXPECT_EQ(out, in) << "seed 7";
}

struct PeakCase {
  double alpha;
  size_t peak_band;      // the one band at 1 in a window of 0s
  size_t expected_band;  // where the output's maximum lands
  float expected_value;  // its value: 1 - |x - peak| for its fractional source x
};

void PrintTo(const PeakCase& c, std::ostream* os) {
  *os << "alpha " << c.alpha << ", peak band " << c.peak_band << " -> band " << c.expected_band;
}

class VtlpPeak : public ::testing::TestWithParam<PeakCase> {};

TEST_P(VtlpPeak, MovesToTheBandTheWarpPredicts) {
  const PeakCase& c = GetParam();
  std::vector<float> w(kBands * kFrames, 0.0f);
  for (size_t t = 0; t < kFrames; ++t) w[c.peak_band * kFrames + t] = 1.0f;
  VtlpWarp(DigitsMel(), kFrames, c.alpha, kBoundary, w);
  for (size_t t = 0; t < kFrames; ++t) {
    size_t best = 0;
    for (size_t b = 1; b < kBands; ++b) {
      if (w[b * kFrames + t] > w[best * kFrames + t]) best = b;
    }
    EXPECT_EQ(best, c.expected_band) << "alpha " << c.alpha << " frame " << t;
    EXPECT_NEAR(w[best * kFrames + t], c.expected_value, 1e-4) << "alpha " << c.alpha;
  }
}

INSTANTIATE_TEST_SUITE_P(
    BelowAndAboveTheBoundary, VtlpPeak,
    ::testing::Values(
        // Below f0: band b reads alpha * c_b. alpha 0.9 reads lower, so the peak
        // moves up (band 22 reads x = 20.198); alpha 1.1 moves it down (band 18
        // reads 19.630).
        PeakCase{0.9, 20, 22, 0.8022f}, PeakCase{1.1, 20, 18, 0.6303f},
        // Above f0, on the line to the top: band 37 reads 36.501 (alpha 0.9),
        // band 35 reads 35.683 (alpha 1.1).
        PeakCase{0.9, 36, 37, 0.4991f}, PeakCase{1.1, 36, 35, 0.6831f},
        // The top band reads past the last centre at alpha 1.1 and is clamped
        // to it: the top of the band stays where it was.
        PeakCase{1.1, 39, 39, 1.0f}),
    [](const ::testing::TestParamInfo<PeakCase>& info) {  // e.g. Alpha90Peak20
      return "Alpha" + std::to_string(static_cast<int>(info.param.alpha * 100 + 0.5)) + "Peak" +
             std::to_string(info.param.peak_band);
    });

TEST(VtlpWarp, StaysWithinEachFramesRange) {
  const std::vector<float> in = RandomWindow(11);
  for (double alpha : {0.8, 0.88, 0.93, 1.05, 1.12, 1.2}) {
    std::vector<float> out = in;
    VtlpWarp(DigitsMel(), kFrames, alpha, kBoundary, out);
    for (size_t t = 0; t < kFrames; ++t) {
      float lo = in[t], hi = in[t];
      for (size_t b = 0; b < kBands; ++b) {
        lo = std::min(lo, in[b * kFrames + t]);
        hi = std::max(hi, in[b * kFrames + t]);
      }
      for (size_t b = 0; b < kBands; ++b) {
        EXPECT_GE(out[b * kFrames + t], lo) << "seed 11 alpha " << alpha << " band " << b;
        EXPECT_LE(out[b * kFrames + t], hi) << "seed 11 alpha " << alpha << " band " << b;
      }
    }
    EXPECT_NE(out, in) << "alpha " << alpha << " changed nothing";
  }
}

TEST(RandomVtlp, SameSeedSameWarpsAndAlphasInRange) {
  AugmentOptions o;
  o.vtlp_prob = 0.8;
  o.vtlp_min = 0.88;
  o.vtlp_max = 1.12;
  std::mt19937_64 a(3), b(3);
  int warped = 0;
  for (int i = 0; i < 200; ++i) {
    std::vector<float> wa = RandomWindow(100 + static_cast<uint64_t>(i)), wb = wa;
    const double alpha_a = RandomVtlp(o, DigitsMel(), kFrames, a, wa);
    const double alpha_b = RandomVtlp(o, DigitsMel(), kFrames, b, wb);
    ASSERT_EQ(alpha_a, alpha_b) << "seed 3 draw " << i;
    ASSERT_EQ(wa, wb) << "seed 3 draw " << i;
    if (alpha_a != 1.0) {
      ++warped;
      EXPECT_GE(alpha_a, 0.88);
      EXPECT_LE(alpha_a, 1.12);
    }
  }
  // 200 draws at p = 0.8: 160 expected, sd 5.7; 130-190 is over 5 sd.
  EXPECT_GT(warped, 130);
  EXPECT_LT(warped, 190);
}

TEST(RandomVtlp, OffDrawsNothingAndChangesNothing) {
  AugmentOptions o;  // vtlp_prob 0: the shipped recipe's random stream is untouched
  std::mt19937_64 rng(5), fresh(5);
  const std::vector<float> in = RandomWindow(5);
  std::vector<float> w = in;
  EXPECT_EQ(RandomVtlp(o, DigitsMel(), kFrames, rng, w), 1.0);
  EXPECT_EQ(w, in);
  EXPECT_EQ(rng(), fresh());
}

TEST(AugmentOptions, ValidateVtlpNamesTheBadFlag) {
  AugmentOptions o;
  EXPECT_TRUE(o.ValidateVtlp().ok());
  o.vtlp_prob = 1.5;
  EXPECT_THAT(o.ValidateVtlp().message(), HasSubstr("--vtlp-prob (1.5)"));
  o.vtlp_prob = 0.5;
  o.vtlp_min = 1.2;
  o.vtlp_max = 1.1;
  EXPECT_THAT(o.ValidateVtlp().message(), HasSubstr("--vtlp-min (1.2)"));
  o.vtlp_min = 0;
  EXPECT_THAT(o.ValidateVtlp().message(), HasSubstr("0 < min <= max"));
}

}  // namespace
}  // namespace wavepool::cli
