// LogMelBounds: for every normalisation, power and magnitude spectra, every
// perturbation of the samples within eps (sign vertices, uniform draws) gives
// features (computed by FeatureWindows, the real front end) inside the bounds;
// eps = 0 gives bounds at the features themselves.
#include "dsp/log_mel_bounds.h"

#include <cmath>
#include <numbers>
#include <random>
#include <string>

#include "gtest/gtest.h"

namespace wavepool::dsp {
namespace {

FeatureWindowOptions Options(FeatureNorm norm, bool power) {
  FeatureWindowOptions o;
  o.log_mel.sample_rate_hz = 8000;
  o.log_mel.frame_length = 160;
  o.log_mel.frame_hop = 80;
  o.log_mel.fft_size = 256;
  o.log_mel.num_bands = 16;
  o.log_mel.f_min_hz = 0;
  o.log_mel.f_max_hz = 4000;
  o.log_mel.power = power;
  o.log_mel.log_floor = 1e-6f;
  o.window_length = 800;
  o.window_hop = 400;
  o.norm = norm;
  return o;
}

// A tone, noise and a silent stretch (where the log floor matters).
std::vector<float> Signal(uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> noise(0, 0.05f);
  std::vector<float> x(800);
  for (size_t n = 0; n < x.size(); ++n) {
    x[n] = n > 600 ? 0.0f
                   : 0.3f * static_cast<float>(std::sin(2 * std::numbers::pi * 440.0 * n / 8000)) +
                         noise(rng);
  }
  return x;
}

const char* NormName(FeatureNorm n) {
  switch (n) {
    case FeatureNorm::kNone: return "none";
    case FeatureNorm::kPerFrame: return "per_frame";
    case FeatureNorm::kPerWindow: return "per_window";
    case FeatureNorm::kPerBandMean: return "per_band_mean";
  }
  return "?";
}

TEST(LogMelBounds, EveryPerturbationWithinEpsStaysInsideTheBounds) {
  for (FeatureNorm norm : {FeatureNorm::kNone, FeatureNorm::kPerFrame, FeatureNorm::kPerWindow,
                           FeatureNorm::kPerBandMean}) {
    for (bool power : {true, false}) {
      const FeatureWindowOptions o = Options(norm, power);
      auto bounds = LogMelBounds::Create(o);
      ASSERT_TRUE(bounds.ok()) << bounds.status();
      const std::vector<float> x = Signal(3);
      for (float eps : {1e-5f, 1e-3f, 3e-2f}) {
        SCOPED_TRACE(std::string(NormName(norm)) + (power ? " power" : " magnitude") +
                     " eps " + std::to_string(eps));
        std::vector<float> lo(o.window_values()), hi(o.window_values());
        bounds->Compute(x, eps, lo, hi);
        std::mt19937 rng(17);
        std::uniform_real_distribution<float> unit(-1, 1);
        std::vector<float> p(x.size());
        for (int trial = 0; trial < 80; ++trial) {
          if (trial < 20) {
            // The corner that moves one DFT bin's real or imaginary part the
            // most in the first frame (samples 0..159) and in the last, silent
            // one (640..799), where nothing else widens the bound.
            const double k = 3 + 4 * (trial / 2);
            for (size_t n = 0; n < x.size(); ++n) {
              const double a = 2 * std::numbers::pi * k * static_cast<double>(n >= 640 ? n - 640 : n) / 256;
              const double v = trial % 2 ? std::sin(a) : std::cos(a);
              p[n] = x[n] + (v < 0 ? -eps : eps);
            }
          } else {
            for (size_t n = 0; n < x.size(); ++n) {
              const float s = unit(rng);
              p[n] = x[n] + eps * (trial % 2 == 0 ? (s < 0 ? -1.0f : 1.0f) : s);
            }
          }
          auto features = FeatureWindows(o, p, nullptr);
          ASSERT_TRUE(features.ok()) << features.status();
          ASSERT_EQ(features->size(), 1u);
          const std::vector<float>& f = (*features)[0];
          for (size_t i = 0; i < f.size(); ++i) {
            ASSERT_LE(lo[i], f[i]) << "trial " << trial << " value " << i;
            ASSERT_GE(hi[i], f[i]) << "trial " << trial << " value " << i;
          }
        }
      }
    }
  }
}

TEST(LogMelBounds, ZeroEpsilonBoundsTheFeaturesTightly) {
  for (FeatureNorm norm : {FeatureNorm::kNone, FeatureNorm::kPerWindow, FeatureNorm::kPerBandMean}) {
    SCOPED_TRACE(NormName(norm));
    const FeatureWindowOptions o = Options(norm, true);
    auto bounds = LogMelBounds::Create(o);
    ASSERT_TRUE(bounds.ok());
    const std::vector<float> x = Signal(4);
    std::vector<float> lo(o.window_values()), hi(o.window_values());
    bounds->Compute(x, 0, lo, hi);
    auto features = FeatureWindows(o, x, nullptr);
    ASSERT_TRUE(features.ok());
    const std::vector<float>& f = (*features)[0];
    for (size_t i = 0; i < f.size(); ++i) {
      EXPECT_LE(lo[i], f[i]);
      EXPECT_GE(hi[i], f[i]);
      // Log-mel features of a few units: the FFT rounding allowance keeps the
      // width to about 1e-3 where the spectrum is 60 dB under the frame's peak.
      EXPECT_LT(hi[i] - lo[i], 2e-2f) << "value " << i;
    }
  }
}

// The normalisation step alone against brute force: the extreme corners of a
// small box all land inside the bounds.
TEST(LogMelBounds, NormalizeBoundsContainEveryCorner) {
  const size_t bands = 2, frames = 3, n = bands * frames;
  std::mt19937 rng(2);
  std::uniform_real_distribution<double> u(-2, 2);
  for (FeatureNorm norm : {FeatureNorm::kPerFrame, FeatureNorm::kPerWindow, FeatureNorm::kPerBandMean}) {
    SCOPED_TRACE(NormName(norm));
    std::vector<double> lo(n), hi(n);
    for (size_t i = 0; i < n; ++i) {
      // Float-representable, like the features they stand for.
      lo[i] = static_cast<float>(u(rng));
      hi[i] = static_cast<float>(lo[i] + 0.3 * std::fabs(u(rng)));
    }
    std::vector<double> blo = lo, bhi = hi;
    NormalizeWindowBounds(norm, bands, frames, blo, bhi);
    for (unsigned corner = 0; corner < (1u << n); ++corner) {
      std::vector<float> v(n);
      for (size_t i = 0; i < n; ++i) v[i] = static_cast<float>((corner >> i) & 1 ? hi[i] : lo[i]);
      NormalizeWindow(norm, bands, frames, v);
      for (size_t i = 0; i < n; ++i) {
        ASSERT_LE(blo[i], v[i]) << "corner " << corner << " value " << i;
        ASSERT_GE(bhi[i], v[i]) << "corner " << corner << " value " << i;
      }
    }
  }
}

}  // namespace
}  // namespace wavepool::dsp
