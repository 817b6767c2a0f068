// How far Resampler's output can move when its input moves: the L-infinity
// gain of the linear map soxr applies, measured from soxr itself, plus an
// allowance for soxr's float rounding. Certified robustness (docs/pooling.md,
// "Certified robustness") uses it to carry a noise budget on the client's
// samples to the model's rate.
#pragma once

#include <cstdint>

#include "absl/status/statusor.h"

namespace wavepool::dsp {

// Input samples per period of the rate ratio and the output samples in it:
// the reduced fraction of the two rates (44100 -> 8000: 441 in, 80 out).
struct RatePeriod {
  uint64_t input = 1;
  uint64_t output = 1;
};

// Rates are taken as exact multiples of 1 mHz (44100, 11025.5, 0.25 all are).
// INVALID_ARGUMENT when a rate is not one, or the period is longer than
// kMaxPeriodInputSamples input samples (measuring it would take too long).
inline constexpr uint64_t kMaxPeriodInputSamples = 20000;
absl::StatusOr<RatePeriod> ReducedRatePeriod(double input_rate_hz, double output_rate_hz);

struct ResamplerBound {
  // G = max over output samples m of sum_n |A[m, n]|, with A the linear map
  // from input to output that soxr computes (up to rounding). Equal rates: 1.
  double linf_gain = 1;
  // alpha: float rounding per unit of the stream's largest |input| (0 for
  // equal rates, which pass samples through untouched).
  double rounding = 0;
  // Radius on every output sample when every input sample so far moves by at
  // most eps and |input| <= max_abs_input throughout the stream so far:
  // G eps + alpha (2 max_abs_input + eps), rounded up. Both soxr(x + d) and
  // soxr(x) carry rounding, each within alpha times its stream's max |input|.
  double OutputRadius(double eps, double max_abs_input) const;
};

// The rounding allowance alpha (see resampler_bounds.cc for the measurements
// behind it: five times the worst measured).
inline constexpr double kResamplerRoundingPerUnit = 4e-6;

// Runs soxr (through Resampler, with its 10 ms blocks) on one unit impulse
// per input phase of the rate period, far enough from the stream's start that
// the filter lies inside, and takes every output's row sum from those
// responses (A is periodic: A[m + period.output][n + period.input] = A[m][n]).
// Costs one short stream per input phase: about 30-60 ms for 44100 or 11025
// -> 8000 (441 phases), under 7 ms for 16000 / 48000 -> 8000 and for the ECG
// rates (250, 500, 1000 -> 360). Errors: the rates' (Resampler::Create,
// ReducedRatePeriod), or INTERNAL if soxr's response is longer than the probe
// can hold.
absl::StatusOr<ResamplerBound> MeasureResamplerBound(double input_rate_hz, double output_rate_hz);

// MeasureResamplerBound once per (input rate, output rate) for the process:
// later calls for the same pair return the cached result. Thread-safe; a
// failed measurement is not cached.
absl::StatusOr<ResamplerBound> CachedResamplerBound(double input_rate_hz, double output_rate_hz);

}  // namespace wavepool::dsp
