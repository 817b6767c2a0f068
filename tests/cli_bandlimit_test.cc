// The steep band limit on digit recordings (clients/digit_data.h,
// ButterworthLowpass4 / BandLimit / RandomBandLimit and the ExampleSynth path
// behind --bandlimit-prob). The reference is not the code under test: the gain
// of a 4th-order Butterworth low-pass made by the bilinear transform prewarped
// at its corner, |H(f)| = 1 / sqrt(1 + (tan(pi f / fs) / tan(pi fc / fs))^8),
// checked against the gain the filter shows on steady sine waves.
#include <cmath>
#include <cstdint>
#include <ostream>
#include <random>
#include <string>
#include <vector>

#include "clients/digit_data.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace wavepool::cli {
namespace {

using ::testing::HasSubstr;

constexpr double kRate = 8000;

double AnalyticGainDb(double f, double fc) {
  const double r = std::tan(M_PI * f / kRate) / std::tan(M_PI * fc / kRate);
  return -10 * std::log10(1 + std::pow(r, 8));
}

// The gain in dB BandLimit shows on a sine at f: 1 s to settle, then the RMS
// ratio over the next 0.5 s (a whole number of periods for f a multiple of 2 Hz).
double MeasuredGainDb(double f, double fc) {
  const size_t settle = 8000, span = 4000;
  std::vector<float> s(settle + span);
  for (size_t i = 0; i < s.size(); ++i) {
    s[i] = static_cast<float>(0.5 * std::sin(2 * M_PI * f * static_cast<double>(i) / kRate));
  }
  const std::vector<float> in = s;
  BandLimit(s, fc, kRate);
  double e_in = 0, e_out = 0;
  for (size_t i = settle; i < s.size(); ++i) {
    e_in += static_cast<double>(in[i]) * in[i];
    e_out += static_cast<double>(s[i]) * s[i];
  }
  return 10 * std::log10(e_out / e_in);
}

struct GainCase {
  double corner_hz;
  double tone_hz;
};

void PrintTo(const GainCase& c, std::ostream* os) {
  *os << c.tone_hz << " Hz through a " << c.corner_hz << " Hz corner";
}

class BandLimitGain : public ::testing::TestWithParam<GainCase> {};

TEST_P(BandLimitGain, MatchesThePrewarpedButterworthMagnitude) {
  const GainCase& c = GetParam();
  const double want = AnalyticGainDb(c.tone_hz, c.corner_hz);
  const double got = MeasuredGainDb(c.tone_hz, c.corner_hz);
  // 0.05 dB in the pass band and at the corner; in the stop band (down to
  // ~-90 dB, where float samples still carry 40+ dB of headroom) 0.2 dB.
  EXPECT_NEAR(got, want, want > -20 ? 0.05 : 0.2);
}

INSTANTIATE_TEST_SUITE_P(
    BelowAtAndAboveTheCorner, BandLimitGain,
    ::testing::Values(
        // Well below: flat (1000 Hz corner: -0.0000 dB at 200 Hz, -0.04 dB at 600 Hz).
        GainCase{1000, 200}, GainCase{1000, 600}, GainCase{2500, 1000},
        // At the corner: -3.01 dB whatever the corner.
        GainCase{800, 800}, GainCase{1000, 1000}, GainCase{2500, 2500},
        // Well above: 4th order, ~24 dB an octave and steeper near Nyquist
        // (1000 Hz corner: -24.2 dB at 2000 Hz, -61.3 dB at 3000 Hz).
        GainCase{1000, 2000}, GainCase{1000, 3000}, GainCase{800, 2400}, GainCase{2500, 3600}),
    [](const ::testing::TestParamInfo<GainCase>& info) {  // e.g. Corner1000Tone3000
      return "Corner" + std::to_string(static_cast<int>(info.param.corner_hz)) + "Tone" +
             std::to_string(static_cast<int>(info.param.tone_hz));
    });

TEST(ButterworthLowpass4, UnitGainAtDcAndZerosAtNyquist) {
  for (double fc : {800.0, 1000.0, 2500.0}) {
    for (const Biquad& q : ButterworthLowpass4(fc, kRate)) {
      // H(z=1) = (b0 + b1 + b2) / (1 + a1 + a2); H(z=-1) has b0 - b1 + b2 = 0.
      EXPECT_NEAR((q.b0 + q.b1 + q.b2) / (1 + q.a1 + q.a2), 1.0, 1e-12) << fc;
      EXPECT_NEAR(q.b0 - q.b1 + q.b2, 0.0, 1e-15) << fc;
      // Stable: both poles inside the unit circle (|a2| < 1, |a1| < 1 + a2).
      EXPECT_LT(std::abs(q.a2), 1.0) << fc;
      EXPECT_LT(std::abs(q.a1), 1 + q.a2) << fc;
    }
  }
}

TEST(RandomBandLimit, SameSeedSameFilterAndCornersInRange) {
  AugmentOptions o;
  o.bandlimit_prob = 0.3;
  o.bandlimit_min_hz = 800;
  o.bandlimit_max_hz = 2500;
  std::mt19937_64 a(3), b(3), noise(9);
  std::normal_distribution<float> n(0.0f, 0.1f);
  int filtered = 0;
  for (int i = 0; i < 300; ++i) {
    std::vector<float> sa(400);
    for (float& v : sa) v = n(noise);
    std::vector<float> sb = sa;
    const std::vector<float> orig = sa;
    const double ca = RandomBandLimit(o, kRate, a, sa);
    const double cb = RandomBandLimit(o, kRate, b, sb);
    ASSERT_EQ(ca, cb) << "seed 3 draw " << i;
    ASSERT_EQ(sa, sb) << "seed 3 draw " << i;
    if (ca == 0) {
      EXPECT_EQ(sa, orig) << "draw " << i << " not filtered but changed";
    } else {
      ++filtered;
      EXPECT_GE(ca, 800);
      EXPECT_LE(ca, 2500);
      EXPECT_NE(sa, orig);
    }
  }
  // 300 draws at p = 0.3: 90 expected, sd 7.9; 55-125 is over 4 sd.
  EXPECT_GT(filtered, 55);
  EXPECT_LT(filtered, 125);
}

TEST(RandomBandLimit, OffDrawsNothingAndChangesNothing) {
  AugmentOptions o;  // bandlimit_prob 0: the shipped recipe's random stream is untouched
  std::mt19937_64 rng(5), fresh(5);
  std::vector<float> s(100, 0.25f);
  const std::vector<float> in = s;
  EXPECT_EQ(RandomBandLimit(o, kRate, rng, s), 0);
  EXPECT_EQ(s, in);
  EXPECT_EQ(rng(), fresh());
}

// A tiny data set of noise "recordings" for ExampleSynth.
DigitData NoiseData() {
  DigitData d;
  std::mt19937_64 rng(21);
  std::normal_distribution<float> n(0.0f, 0.2f);
  for (int digit = 0; digit < 10; ++digit) {
    for (int take = 0; take < 3; ++take) {
      Clip c;
      c.digit = digit;
      c.speaker = "test";
      c.take = take;
      c.samples.resize(2400 + 400 * static_cast<size_t>(take));
      for (float& v : c.samples) v = n(rng);
      d.train.push_back(std::move(c));
    }
  }
  return d;
}

std::vector<WindowExample> TwoEpochs(const DigitData& data, const AugmentOptions& o) {
  ExampleSynth synth(data, 8000, o, /*seed=*/17);
  std::vector<WindowExample> out = synth.Epoch();
  for (WindowExample& e : synth.Epoch()) out.push_back(std::move(e));
  return out;
}

TEST(ExampleSynthBandLimit, ProbZeroLeavesExamplesBitIdentical) {
  const DigitData data = NoiseData();
  AugmentOptions base;
  base.shelf_prob = 0.7;  // the shipped recipe's flag
  AugmentOptions off = base;
  off.bandlimit_prob = 0;
  off.bandlimit_min_hz = 1200;  // corners are not even read when the limit is off
  off.bandlimit_max_hz = 1300;
  const std::vector<WindowExample> a = TwoEpochs(data, base), b = TwoEpochs(data, off);
  ASSERT_EQ(a.size(), b.size());
  for (size_t i = 0; i < a.size(); ++i) {
    ASSERT_EQ(a[i].label, b[i].label) << "example " << i;
    ASSERT_EQ(a[i].samples, b[i].samples) << "example " << i;
  }
}

TEST(ExampleSynthBandLimit, ProbOneChangesTheDigitExamples) {
  const DigitData data = NoiseData();
  AugmentOptions off, on;
  on.bandlimit_prob = 1;
  const std::vector<WindowExample> a = TwoEpochs(data, off), b = TwoEpochs(data, on);
  ASSERT_EQ(a.size(), b.size());
  size_t differ = 0;
  for (size_t i = 0; i < a.size(); ++i) differ += a[i].samples != b[i].samples;
  EXPECT_GT(differ, a.size() / 2);
}

TEST(AugmentOptions, ValidateBandlimitNamesTheBadFlag) {
  AugmentOptions o;
  EXPECT_TRUE(o.ValidateBandlimit(kRate).ok());
  o.bandlimit_prob = 1.5;
  EXPECT_THAT(o.ValidateBandlimit(kRate).message(), HasSubstr("--bandlimit-prob (1.5)"));
  o.bandlimit_prob = 0.3;
  o.bandlimit_min_hz = 2000;
  o.bandlimit_max_hz = 1000;
  EXPECT_THAT(o.ValidateBandlimit(kRate).message(), HasSubstr("--bandlimit-min-hz (2000)"));
  o.bandlimit_min_hz = 800;
  o.bandlimit_max_hz = 4000;  // the Nyquist frequency at 8 kHz
  EXPECT_THAT(o.ValidateBandlimit(kRate).message(), HasSubstr("< 4000"));
  o.bandlimit_min_hz = 0;
  o.bandlimit_max_hz = 2500;
  EXPECT_THAT(o.ValidateBandlimit(kRate).message(), HasSubstr("0 < min <= max"));
}

}  // namespace
}  // namespace wavepool::cli
