// Interval bounds through the audio front end: for one window of samples and an
// L-infinity budget eps on them, lower and upper bounds on every feature that
// FeatureWindows / StreamingFeatures would compute for any window within eps.
// The model's input bounds for certified robustness (nn/ibp.h).
//
// Per frame (the window's frames, exactly as the feature path cuts them):
//  - windowed DFT, linear: Re X_k within eps sum_n |w[n] cos(2 pi k n / N)| of
//    the nominal value, Im X_k within eps sum_n |w[n] sin(...)|; computed in
//    double, plus an allowance for the float FFT's rounding (5 u log2 N
//    sqrt(N) ||x w||_2 + u sum |x w|, the norm-wise FFT error bound of
//    Higham 2002 §24.1 taken element-wise);
//  - power re^2 + im^2: its exact minimum and maximum over the box (0 when
//    the box holds 0); magnitude: their square roots;
//  - mel: non-negative weights, so lower bounds map to lower bounds, with
//    MelFilterbank::Apply itself (float rounding is monotone);
//  - ln(max(x, floor)): monotone; two float ulps outward for logf's error;
// then the window's normalisation: x_i - mean is linear, so its interval is
// exact from the feature intervals; the standard deviation is bounded both by
// interval arithmetic and by its Lipschitz bound (|sigma(a) - sigma(b)| <=
// ||a - b||_2 / sqrt(n)), whichever is tighter; the division is interval
// division by a positive interval.
// Units: eps is on the float samples the feature path receives (audio
// full scale, int16 / 32768), at the model's rate.
#pragma once

#include <cstddef>
#include <span>
#include <vector>

#include "absl/status/statusor.h"
#include "dsp/log_mel.h"
#include "dsp/mel.h"

namespace wavepool::dsp {

class LogMelBounds {
 public:
  static absl::StatusOr<LogMelBounds> Create(const FeatureWindowOptions& options);

  // samples: options.window_length samples of one window (a padded tail
  // window's zeros included; they are bounded like any sample). eps >= 0 and
  // finite (not checked). lower / upper: window_values() each, band-major
  // (value[band * frames + t]) and normalised, like FeatureWindows' output.
  // No allocation; not thread-safe (owns scratch).
  void Compute(std::span<const float> samples, float eps, std::span<float> lower,
               std::span<float> upper);

  const FeatureWindowOptions& options() const { return options_; }

 private:
  LogMelBounds(const FeatureWindowOptions& o, MelFilterbank mel);
  // One frame's band bounds (before normalisation) into lo / hi (num_bands).
  void Frame(const float* frame, double eps, float* lo, float* hi);

  FeatureWindowOptions options_;
  MelFilterbank mel_;
  size_t bins_ = 0;
  std::vector<double> window_;      // frame_length
  std::vector<double> cos_, sin_;   // bins x frame_length: w[n] cos / sin(2 pi k n / N)
  std::vector<double> re_gain_, im_gain_;  // per bin: sum |w cos|, sum |w sin|
  std::vector<float> spec_lo_, spec_hi_;   // bins
  std::vector<double> lo_, hi_;            // window_values(), before normalisation
};

// Bounds the normalisation of one window (NormalizeWindow's maths) in place:
// on entry lo / hi bound the unnormalised band-major features, on exit the
// normalised ones. Exposed for tests.
void NormalizeWindowBounds(FeatureNorm norm, size_t bands, size_t frames, std::span<double> lo,
                           std::span<double> hi);

}  // namespace wavepool::dsp
