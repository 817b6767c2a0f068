// Mel scale and filterbank against the formulas, recomputed here in double.
#include <cmath>
#include <cstdint>
#include <ostream>
#include <random>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "dsp/mel.h"
#include "gtest/gtest.h"

namespace wavepool::dsp {
namespace {

// Slaney written as the Auditory Toolbox states it: 66.67 Hz per mel below
// 1 kHz, then 27 mel per factor of 6.4.
double RefSlaneyMel(double hz) {
  return hz < 1000 ? hz / (200.0 / 3.0) : 15 + 27 * std::log(hz / 1000) / std::log(6.4);
}
double RefSlaneyHz(double mel) {
  return mel < 15 ? mel * (200.0 / 3.0) : 1000 * std::pow(6.4, (mel - 15) / 27);
}
double RefHtkMel(double hz) { return 2595 * std::log10(1 + hz / 700); }
double RefHtkHz(double mel) { return 700 * (std::pow(10, mel / 2595) - 1); }

struct RefBank {
  std::vector<double> edges;                // num_bands + 2, Hz
  std::vector<std::vector<double>> weight;  // [band][bin]
};

// The triangles from the definition: piecewise-linear, zero outside
// (left, right), 1 (HTK) or 2 / (right - left) (Slaney) at the centre.
RefBank MakeRefBank(const MelOptions& o) {
  const bool slaney = o.scale == MelScaleType::kSlaney;
  auto to_mel = [&](double hz) { return slaney ? RefSlaneyMel(hz) : RefHtkMel(hz); };
  auto to_hz = [&](double mel) { return slaney ? RefSlaneyHz(mel) : RefHtkHz(mel); };
  RefBank bank;
  const double lo = to_mel(o.f_min_hz), hi = to_mel(o.f_max_hz);
  for (size_t i = 0; i < o.num_bands + 2; ++i) {
    bank.edges.push_back(to_hz(lo + (hi - lo) * static_cast<double>(i) / (o.num_bands + 1)));
  }
  const size_t bins = o.fft_size / 2 + 1;
  bank.weight.assign(o.num_bands, std::vector<double>(bins, 0.0));
  for (size_t b = 0; b < o.num_bands; ++b) {
    const double l = bank.edges[b], c = bank.edges[b + 1], r = bank.edges[b + 2];
    const double peak = slaney ? 2 / (r - l) : 1;
    for (size_t k = 0; k < bins; ++k) {
      const double f = static_cast<double>(k) * o.sample_rate_hz / static_cast<double>(o.fft_size);
      if (f > l && f <= c) bank.weight[b][k] = peak * (f - l) / (c - l);
      if (f > c && f < r) bank.weight[b][k] = peak * (r - f) / (r - c);
    }
  }
  return bank;
}

MelOptions Options(double rate, size_t fft, size_t bands, double f_min, double f_max,
                   MelScaleType scale) {
  MelOptions o;
  o.sample_rate_hz = rate;
  o.fft_size = fft;
  o.num_bands = bands;
  o.f_min_hz = f_min;
  o.f_max_hz = f_max;
  o.scale = scale;
  return o;
}

TEST(MelScale, KnownPoints) {
  EXPECT_EQ(HzToMel(1000, MelScaleType::kSlaney), 15.0);
  EXPECT_EQ(HzToMel(0, MelScaleType::kSlaney), 0.0);
  EXPECT_DOUBLE_EQ(HzToMel(500, MelScaleType::kSlaney), 7.5);
  EXPECT_NEAR(HzToMel(6400, MelScaleType::kSlaney), 42.0, 1e-12);  // 15 + 27
  EXPECT_EQ(HzToMel(700, MelScaleType::kHtk), 2595 * std::log10(2.0));
  EXPECT_EQ(HzToMel(0, MelScaleType::kHtk), 0.0);
  EXPECT_EQ(MelToHz(15, MelScaleType::kSlaney), 1000.0);
}

TEST(MelScale, MatchesReferenceAndRoundTrips) {
  for (double hz : {0.0, 1.0, 20.0, 440.0, 999.0, 1000.0, 1001.0, 4000.0, 8000.0, 22050.0}) {
    const double slaney = HzToMel(hz, MelScaleType::kSlaney);
    const double htk = HzToMel(hz, MelScaleType::kHtk);
    EXPECT_NEAR(slaney, RefSlaneyMel(hz), 1e-12 * (1 + slaney)) << hz;
    EXPECT_NEAR(htk, RefHtkMel(hz), 1e-12 * (1 + htk)) << hz;
    EXPECT_NEAR(MelToHz(slaney, MelScaleType::kSlaney), hz, 1e-9 * (1 + hz)) << hz;
    EXPECT_NEAR(MelToHz(htk, MelScaleType::kHtk), hz, 1e-9 * (1 + hz)) << hz;
  }
}

class MelFilterbankTest : public ::testing::TestWithParam<MelOptions> {};

}  // namespace

// Found by argument-dependent lookup, so test names print readable options.
void PrintTo(const MelOptions& o, std::ostream* os) {
  *os << (o.scale == MelScaleType::kSlaney ? "slaney " : "htk ") << o.sample_rate_hz << " Hz fft "
      << o.fft_size << " bands " << o.num_bands << " " << o.f_min_hz << "-" << o.f_max_hz << " Hz";
}

namespace {

// Weights are stored as float: tolerance 1e-6 of the band's reference peak
// (float rounding is 6e-8 relative; the rest covers edge points computed by a
// differently written but equal formula).
TEST_P(MelFilterbankTest, WeightsMatchTrianglesFromTheFormula) {
  const MelOptions o = GetParam();
  absl::StatusOr<MelFilterbank> bank = MelFilterbank::Create(o);
  ASSERT_TRUE(bank.ok()) << bank.status();
  const RefBank ref = MakeRefBank(o);
  size_t nonzeros = 0;
  for (size_t b = 0; b < o.num_bands; ++b) {
    EXPECT_NEAR(bank->LowerHz(b), ref.edges[b], 1e-9 * ref.edges[b] + 1e-9) << "band " << b;
    EXPECT_NEAR(bank->CenterHz(b), ref.edges[b + 1], 1e-9 * ref.edges[b + 1]) << "band " << b;
    EXPECT_NEAR(bank->UpperHz(b), ref.edges[b + 2], 1e-9 * ref.edges[b + 2]) << "band " << b;
    double peak = 0;
    for (double w : ref.weight[b]) peak = std::max(peak, w);
    for (size_t k = 0; k < ref.weight[b].size(); ++k) {
      ASSERT_NEAR(bank->Weight(b, k), ref.weight[b][k], 1e-6 * peak) << "band " << b << " bin " << k;
      if (bank->Weight(b, k) != 0) ++nonzeros;
    }
  }
  EXPECT_EQ(bank->nonzeros(), nonzeros);
  // Sparse: each triangle spans a few bins, not all of them.
  EXPECT_LT(bank->nonzeros(), o.num_bands * (o.fft_size / 2 + 1) / 4);
  EXPECT_EQ(bank->Weight(o.num_bands, 0), 0.0f);  // out of range reads as zero
}

// Apply is the dense product with the weights, accumulated in float:
// tolerance 1e-6 relative (a band sums at most a few dozen positive terms).
TEST_P(MelFilterbankTest, ApplyEqualsDenseProduct) {
  const MelOptions o = GetParam();
  absl::StatusOr<MelFilterbank> bank = MelFilterbank::Create(o);
  ASSERT_TRUE(bank.ok()) << bank.status();
  const RefBank ref = MakeRefBank(o);
  std::mt19937 rng(42);
  std::uniform_real_distribution<float> dist(0.0f, 10.0f);
  std::vector<float> spectrum(o.fft_size / 2 + 1);
  for (float& v : spectrum) v = dist(rng);
  std::vector<float> bands(o.num_bands);
  bank->Apply(spectrum, bands);
  for (size_t b = 0; b < o.num_bands; ++b) {
    double want = 0;
    for (size_t k = 0; k < spectrum.size(); ++k) want += ref.weight[b][k] * spectrum[k];
    EXPECT_NEAR(bands[b], want, 1e-6 * want) << "band " << b << " seed 42";
  }
}

INSTANTIATE_TEST_SUITE_P(
    Configs, MelFilterbankTest,
    ::testing::Values(Options(8000, 256, 40, 20, 4000, MelScaleType::kSlaney),
                      Options(16000, 512, 64, 0, 8000, MelScaleType::kHtk),
                      Options(16000, 400, 80, 60, 7600, MelScaleType::kSlaney),
                      Options(16000, 400, 40, 60, 7600, MelScaleType::kHtk),
                      Options(11025, 255, 23, 100, 5000, MelScaleType::kSlaney),
                      Options(8000, 256, 40, 1000, 4000, MelScaleType::kSlaney)),
    [](const ::testing::TestParamInfo<MelOptions>& info) {
      return absl::StrCat(info.param.scale == MelScaleType::kSlaney ? "slaney" : "htk", "_",
                          static_cast<int>(info.param.sample_rate_hz), "hz_fft",
                          info.param.fft_size, "_bands", info.param.num_bands, "_from",
                          static_cast<int>(info.param.f_min_hz));
    });

TEST(MelFilterbank, HtkPeaksAreOneAndSlaneyAreasAreOne) {
  // 4096-point FFT at 8 kHz: 1.95 Hz bins, fine enough that the sampled
  // triangle shows its continuous shape: HTK peak 1 within a bin's slope,
  // Slaney area (sum of weights x bin width) 1 within 1%.
  const double bin_hz = 8000.0 / 4096;
  absl::StatusOr<MelFilterbank> htk =
      MelFilterbank::Create(Options(8000, 4096, 20, 100, 4000, MelScaleType::kHtk));
  absl::StatusOr<MelFilterbank> slaney =
      MelFilterbank::Create(Options(8000, 4096, 20, 100, 4000, MelScaleType::kSlaney));
  ASSERT_TRUE(htk.ok() && slaney.ok());
  for (size_t b = 0; b < 20; ++b) {
    float peak = 0;
    double area = 0;
    for (size_t k = 0; k <= 2048; ++k) {
      peak = std::max(peak, htk->Weight(b, k));
      area += slaney->Weight(b, k) * bin_hz;
    }
    const double slope = bin_hz / (htk->CenterHz(b) - htk->LowerHz(b));
    EXPECT_LE(peak, 1.0f) << "band " << b;
    EXPECT_GE(peak, 1.0 - slope) << "band " << b;
    EXPECT_NEAR(area, 1.0, 0.01) << "band " << b;
  }
}

TEST(MelOptions, ValidateGivesActionableMessages) {
  MelOptions o = Options(8000, 256, 40, 20, 9000, MelScaleType::kSlaney);
  EXPECT_EQ(o.Validate().message(), "f_max_hz (9000) must be <= sample_rate_hz / 2 (4000)");
  EXPECT_EQ(MelFilterbank::Create(o).status().code(), absl::StatusCode::kInvalidArgument);
  o.f_max_hz = 4000;
  EXPECT_TRUE(o.Validate().ok());
  o.f_min_hz = 4000;
  EXPECT_EQ(o.Validate().message(), "f_min_hz (4000) must be < f_max_hz (4000)");
  o.f_min_hz = -5;
  EXPECT_EQ(o.Validate().message(), "f_min_hz (-5) must be finite and >= 0");
  o.f_min_hz = 20;
  o.num_bands = 0;
  EXPECT_EQ(o.Validate().message(), "num_bands (0) must be > 0");
  o.num_bands = 40;
  o.fft_size = 0;
  EXPECT_EQ(o.Validate().message(), "fft_size (0) must be > 0");
  o.fft_size = 256;
  o.sample_rate_hz = std::nan("");
  EXPECT_EQ(o.Validate().message(), "sample_rate_hz (nan) must be finite and > 0");
  o.sample_rate_hz = 8000;
  o.f_max_hz = std::nan("");
  EXPECT_EQ(o.Validate().message(), "f_max_hz (nan) must be <= sample_rate_hz / 2 (4000)");
}

TEST(MelFilterbank, BandWithNoBinIsRejectedWithAFix) {
  // 128 HTK bands over 0-8 kHz are 13.7 Hz apart at the bottom: narrower than
  // the 31.25 Hz bins of a 512-point FFT at 16 kHz, so band 0 catches no bin.
  absl::StatusOr<MelFilterbank> bank =
      MelFilterbank::Create(Options(16000, 512, 128, 0, 8000, MelScaleType::kHtk));
  ASSERT_EQ(bank.status().code(), absl::StatusCode::kInvalidArgument);
  const std::string message(bank.status().message());
  EXPECT_NE(message.find("mel band 0"), std::string::npos) << message;
  EXPECT_NE(message.find("covers no FFT bin"), std::string::npos) << message;
  EXPECT_NE(message.find("31.25 Hz apart"), std::string::npos) << message;
  EXPECT_NE(message.find("use fewer num_bands (128)"), std::string::npos) << message;
}

}  // namespace
}  // namespace wavepool::dsp
