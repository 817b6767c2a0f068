#include "dsp/mel.h"

#include <algorithm>
#include <cassert>
#include <cmath>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "util/status_macros.h"

namespace wavepool::dsp {
namespace {

// Slaney, "Auditory Toolbox" (Interval Research TR 1998-010), as in librosa:
// 200/3 Hz per mel up to 1 kHz (= 15 mel), then 27 mel per factor 6.4 in Hz.
constexpr double kSlaneyBreakHz = 1000.0;
constexpr double kSlaneyBreakMel = 15.0;
double SlaneyLogStep() { return std::log(6.4) / 27.0; }

}  // namespace

double HzToMel(double hz, MelScaleType scale) {
  if (scale == MelScaleType::kHtk) return 2595.0 * std::log10(1.0 + hz / 700.0);
  if (hz < kSlaneyBreakHz) return 3.0 * hz / 200.0;
  return kSlaneyBreakMel + std::log(hz / kSlaneyBreakHz) / SlaneyLogStep();
}

double MelToHz(double mel, MelScaleType scale) {
  if (scale == MelScaleType::kHtk) return 700.0 * (std::pow(10.0, mel / 2595.0) - 1.0);
  if (mel < kSlaneyBreakMel) return 200.0 * mel / 3.0;
  return kSlaneyBreakHz * std::exp(SlaneyLogStep() * (mel - kSlaneyBreakMel));
}

absl::Status MelOptions::Validate() const {
  if (!std::isfinite(sample_rate_hz) || sample_rate_hz <= 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("sample_rate_hz (", sample_rate_hz, ") must be finite and > 0"));
  }
  if (fft_size == 0) return absl::InvalidArgumentError("fft_size (0) must be > 0");
  if (num_bands == 0) return absl::InvalidArgumentError("num_bands (0) must be > 0");
  if (!std::isfinite(f_min_hz) || f_min_hz < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("f_min_hz (", f_min_hz, ") must be finite and >= 0"));
  }
  if (!(f_max_hz <= sample_rate_hz / 2)) {  // also rejects NaN
    return absl::InvalidArgumentError(absl::StrCat("f_max_hz (", f_max_hz,
                                                   ") must be <= sample_rate_hz / 2 (",
                                                   sample_rate_hz / 2, ")"));
  }
  if (!(f_min_hz < f_max_hz)) {
    return absl::InvalidArgumentError(absl::StrCat("f_min_hz (", f_min_hz,
                                                   ") must be < f_max_hz (", f_max_hz, ")"));
  }
  return absl::OkStatus();
}

absl::StatusOr<MelFilterbank> MelFilterbank::Create(const MelOptions& options) {
  RETURN_IF_ERROR(options.Validate());
  MelFilterbank bank;
  bank.options_ = options;
  const size_t bands = options.num_bands;
  const double mel_lo = HzToMel(options.f_min_hz, options.scale);
  const double mel_hi = HzToMel(options.f_max_hz, options.scale);
  bank.edges_hz_.resize(bands + 2);
  for (size_t i = 0; i < bands + 2; ++i) {
    const double mel = mel_lo + (mel_hi - mel_lo) * static_cast<double>(i) /
                                    static_cast<double>(bands + 1);
    bank.edges_hz_[i] = MelToHz(mel, options.scale);
  }

  const size_t bins = options.fft_size / 2 + 1;
  const double bin_hz = options.sample_rate_hz / static_cast<double>(options.fft_size);
  bank.first_bin_.resize(bands);
  bank.offset_.resize(bands + 1);
  bank.offset_[0] = 0;
  for (size_t b = 0; b < bands; ++b) {
    const double left = bank.edges_hz_[b];
    const double centre = bank.edges_hz_[b + 1];
    const double right = bank.edges_hz_[b + 2];
    // Slaney: unit area (2 / width); HTK: unit peak.
    const double gain = options.scale == MelScaleType::kSlaney ? 2.0 / (right - left) : 1.0;
    size_t first = bins;
    for (size_t k = 0; k < bins; ++k) {
      const double hz = static_cast<double>(k) * bin_hz;
      const double rising = (hz - left) / (centre - left);
      const double falling = (right - hz) / (right - centre);
      const double w = std::max(0.0, std::min(rising, falling)) * gain;
      if (w <= 0) continue;
      // A triangle is convex, so its nonzero bins are contiguous.
      if (first == bins) first = k;
      bank.weights_.push_back(static_cast<float>(w));
    }
    if (first == bins) {
      return absl::InvalidArgumentError(absl::StrCat(
          "mel band ", b, " (", left, " Hz to ", right, " Hz) covers no FFT bin: bins are ",
          bin_hz, " Hz apart (sample_rate_hz ", options.sample_rate_hz, ", fft_size ",
          options.fft_size, "); use fewer num_bands (", bands,
          "), a larger fft_size or a wider f_min_hz..f_max_hz"));
    }
    bank.first_bin_[b] = first;
    bank.offset_[b + 1] = bank.weights_.size();
  }
  return bank;
}

void MelFilterbank::Apply(std::span<const float> spectrum, std::span<float> bands) const {
  assert(spectrum.size() == options_.fft_size / 2 + 1);
  assert(bands.size() == options_.num_bands);
  for (size_t b = 0; b < bands.size(); ++b) {
    const float* x = spectrum.data() + first_bin_[b];
    float sum = 0.0f;
    for (size_t i = offset_[b]; i < offset_[b + 1]; ++i) sum += weights_[i] * *x++;
    bands[b] = sum;
  }
}

float MelFilterbank::Weight(size_t band, size_t bin) const {
  if (band >= first_bin_.size() || bin < first_bin_[band]) return 0.0f;
  const size_t i = offset_[band] + (bin - first_bin_[band]);
  return i < offset_[band + 1] ? weights_[i] : 0.0f;
}

double MelFilterbank::CenterHz(size_t band) const { return edges_hz_[band + 1]; }
double MelFilterbank::LowerHz(size_t band) const { return edges_hz_[band]; }
double MelFilterbank::UpperHz(size_t band) const { return edges_hz_[band + 2]; }

}  // namespace wavepool::dsp
