// Mel filterbank as a sparse product over FFT bins.
#pragma once

#include <cstddef>
#include <span>
#include <vector>

#include "absl/status/statusor.h"

namespace wavepool::dsp {

enum class MelScaleType {
  // Slaney's Auditory Toolbox: linear below 1 kHz (f / (200/3)), logarithmic
  // above (15 + ln(f / 1000) / (ln(6.4) / 27)); triangles area-normalised
  // (weights scaled by 2 / (f_right - f_left)), as librosa's defaults.
  kSlaney,
  // HTK: mel = 2595 log10(1 + f / 700); triangles of peak 1.
  kHtk,
};

double HzToMel(double hz, MelScaleType scale);
double MelToHz(double mel, MelScaleType scale);

struct MelOptions {
  double sample_rate_hz = 16000;
  size_t fft_size = 512;
  size_t num_bands = 40;
  double f_min_hz = 0;
  double f_max_hz = 8000;  // <= sample_rate_hz / 2
  MelScaleType scale = MelScaleType::kSlaney;

  absl::Status Validate() const;
};

// Band b's triangle has its edges at mel points b and b+2 and its peak at b+1 of
// num_bands+2 points spaced evenly in mel between f_min_hz and f_max_hz. Bin k
// sits at k * sample_rate_hz / fft_size Hz.
class MelFilterbank {
 public:
  static absl::StatusOr<MelFilterbank> Create(const MelOptions& options);

  // spectrum.size() == fft_size / 2 + 1, bands.size() == num_bands.
  void Apply(std::span<const float> spectrum, std::span<float> bands) const;

  // Dense weight of band b at FFT bin k (for tests and describe).
  float Weight(size_t band, size_t bin) const;
  // Centre frequency (the triangle's peak) of band b.
  double CenterHz(size_t band) const;
  // Lower / upper edge of band b.
  double LowerHz(size_t band) const;
  double UpperHz(size_t band) const;

  const MelOptions& options() const { return options_; }
  // Number of nonzero weights: the multiply-adds per frame.
  size_t nonzeros() const { return weights_.size(); }

 private:
  MelOptions options_;
  std::vector<double> edges_hz_;   // num_bands + 2 points
  std::vector<size_t> first_bin_;  // per band
  std::vector<size_t> offset_;     // per band + 1, into weights_
  std::vector<float> weights_;
};

}  // namespace wavepool::dsp
