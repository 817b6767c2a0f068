#include "dsp/resampler_bounds.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <memory>
#include <mutex>
#include <numeric>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "dsp/resampler.h"
#include "util/status_macros.h"

namespace wavepool::dsp {
namespace {

// The probe impulse sits this many input samples into a silent stream, and as
// many follow it: far beyond soxr HQ's reach at every ratio we serve (the
// widest measured, 48000 -> 8000, spans about 7000 input samples).
constexpr size_t kProbeSide = 32768;
// Added to each side of the measured reach in the per-phase runs: two blocks
// of 10 ms would already do; 512 samples more costs little.
constexpr size_t kReachMargin = 512;

// Feeds `x` and then finishes, collecting every output. `out` is reused.
absl::Status RunStream(Resampler& r, const std::vector<float>& x, std::vector<float>& out) {
  out.clear();
  auto sink = [&](std::span<const float> s) { out.insert(out.end(), s.begin(), s.end()); };
  RETURN_IF_ERROR(r.Push(x, sink));
  return r.Finish(sink);
}

}  // namespace

absl::StatusOr<RatePeriod> ReducedRatePeriod(double input_rate_hz, double output_rate_hz) {
  // mHz: the rates times 1000 must be whole numbers (and small enough that
  // the product is exact in a double).
  auto millihertz = [](const char* name, double rate) -> absl::StatusOr<uint64_t> {
    const double m = rate * 1000.0;
    if (!std::isfinite(m) || m < 1 || m > 1e15 || m != std::round(m)) {
      return absl::InvalidArgumentError(absl::StrCat(
          name, " (", rate, " Hz) must be a whole number of millihertz to bound the resampler"));
    }
    return static_cast<uint64_t>(m);
  };
  ASSIGN_OR_RETURN(const uint64_t in, millihertz("input rate", input_rate_hz));
  ASSIGN_OR_RETURN(const uint64_t out, millihertz("output rate", output_rate_hz));
  const uint64_t g = std::gcd(in, out);
  const RatePeriod p{in / g, out / g};
  if (p.input > kMaxPeriodInputSamples) {
    return absl::InvalidArgumentError(absl::StrCat(
        "the rate ratio ", input_rate_hz, " Hz : ", output_rate_hz, " Hz repeats only every ",
        p.input, " input samples; the resampler's bound is measured for periods up to ",
        kMaxPeriodInputSamples, " (use a rate with a smaller ratio to the model's, e.g. 16000)"));
  }
  return p;
}

double ResamplerBound::OutputRadius(double eps, double max_abs_input) const {
  const double r = linf_gain * eps + rounding * (2 * max_abs_input + eps);
  // Relative 1e-12 for this sum's own double rounding, many times over.
  return r * (1 + 1e-12);
}

// G carries a relative margin of 1e-5: the measured responses are soxr's float
// output, so the same column measured at another position differs by
// rounding; a row of the whole measured map of a short stream exceeded the
// periodic G by at most 1e-6 relative (250 -> 360 Hz).
//
// Why alpha = kResamplerRoundingPerUnit is safe. soxr HQ runs in float (its
// 20-bit quality uses the single-precision engine): FIR and FFT-based
// (overlap-save) stages, so each output differs from A x by rounding of a few
// u = 2^-24 per stage times the input's magnitude within the filter's and the
// FFT block's reach, hence by at most a constant times u times the stream's
// max |x|. The constant was measured as max over every output (start and
// flushed tail included) of |soxr(x) - A x| / max |x|, A the whole measured
// map of the stream: 3.7-9 u for uniform full-scale noise and sines plus
// noise, and the most, 13.4 u (8.0e-7), for random +-1 signs, which have the
// most energy for their peak (16000, 11025, 44100 -> 8000; 250, 500 -> 360).
// tests/dsp_resampler_bounds_test.cc repeats this and keeps it under a third
// of alpha. alpha = 4e-6 = 67 u, five times the worst seen.
absl::StatusOr<ResamplerBound> MeasureResamplerBound(double input_rate_hz,
                                                     double output_rate_hz) {
  ASSIGN_OR_RETURN(std::unique_ptr<Resampler> r,
                   Resampler::Create(input_rate_hz, output_rate_hz));
  if (r->passthrough()) return ResamplerBound{1, 0};
  ASSIGN_OR_RETURN(const RatePeriod period, ReducedRatePeriod(input_rate_hz, output_rate_hz));
  const double ratio = output_rate_hz / input_rate_hz;

  // 1. One impulse in a long silent stream: how far the response reaches.
  std::vector<float> x(2 * kProbeSide + 1, 0.0f);
  std::vector<float> y;
  x[kProbeSide] = 1;
  RETURN_IF_ERROR(RunStream(*r, x, y));
  size_t first = y.size(), last = 0;
  for (size_t m = 0; m < y.size(); ++m) {
    if (y[m] != 0) {
      first = std::min(first, m);
      last = m;
    }
  }
  const double centre = static_cast<double>(kProbeSide) * ratio;
  if (first >= y.size() || static_cast<double>(first) < 0.25 * centre ||
      static_cast<double>(last) > 1.75 * centre) {
    return absl::InternalError(absl::StrCat("the resampler's impulse response (", input_rate_hz,
                                            " Hz to ", output_rate_hz,
                                            " Hz) does not fit the probe"));
  }
  const size_t before = static_cast<size_t>(std::ceil((centre - first) / ratio)) + kReachMargin;
  const size_t after = static_cast<size_t>(std::ceil((last - centre) / ratio)) + kReachMargin;

  // 2. One impulse per input phase j, at input `before + j`; output m of it
  // is A[m][before + j], which by periodicity is also A[m + k P_out][before +
  // j + k P_in]. So row m's sum collects every response's outputs at indices
  // congruent to m modulo P_out.
  std::vector<double> row_sum(period.output, 0.0);
  x.assign(before + period.input + after, 0.0f);
  for (size_t j = 0; j < period.input; ++j) {
    std::fill(x.begin(), x.end(), 0.0f);
    x[before + j] = 1;
    RETURN_IF_ERROR(RunStream(*r, x, y));
    for (size_t m = 0; m < y.size(); ++m) row_sum[m % period.output] += std::fabs(double{y[m]});
  }
  const double g = *std::max_element(row_sum.begin(), row_sum.end());
  return ResamplerBound{g * (1 + 1e-5), kResamplerRoundingPerUnit};
}

absl::StatusOr<ResamplerBound> CachedResamplerBound(double input_rate_hz, double output_rate_hz) {
  static std::mutex mu;
  static auto* cache = new std::map<std::pair<double, double>, ResamplerBound>();
  const std::pair<double, double> key(input_rate_hz, output_rate_hz);
  {
    std::lock_guard<std::mutex> lock(mu);
    if (auto it = cache->find(key); it != cache->end()) return it->second;
  }
  // Measured outside the lock, so a first stream at one rate pair does not
  // hold up streams at others; two racing first streams measure it twice and
  // agree (the measurement is deterministic).
  ASSIGN_OR_RETURN(const ResamplerBound b, MeasureResamplerBound(input_rate_hz, output_rate_hz));
  std::lock_guard<std::mutex> lock(mu);
  cache->emplace(key, b);
  return b;
}

}  // namespace wavepool::dsp
