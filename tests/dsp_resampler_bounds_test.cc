// ResamplerBound: the measured L-infinity gain G bounds every row of the whole
// measured map of a stream (start and flushed tail included) and is reached
// by sign-aligned perturbations; soxr's rounding stays well inside the
// allowance; perturbed streams, in random chunks, stay within OutputRadius;
// the cache is shared and thread-safe.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <map>
#include <numbers>
#include <random>
#include <thread>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "dsp/resampler.h"
#include "dsp/resampler_bounds.h"
#include "gtest/gtest.h"
#include "tests/resample_signal.h"

namespace wavepool::dsp {
namespace {

using RatePair = std::pair<double, double>;

// Short streams: a few filter lengths, so the map has start rows, interior
// rows (more than one rate period) and flushed-tail rows.
const std::vector<std::pair<RatePair, size_t>> kPairs = {
    {{16000, 8000}, 4000}, {{11025, 8000}, 4000}, {{44100, 8000}, 7000},
    {{8000, 16000}, 2500}, {{250, 360}, 1500},    {{500, 360}, 2000},
    {{1000, 360}, 3000}};

std::vector<float> Resample(Resampler& r, const std::vector<float>& x,
                            const std::vector<size_t>& chunks = {}) {
  return testing::ResampleInChunks(r, x, chunks);
}

// The whole measured map of a stream of n samples: column k is the output
// for a unit impulse at input k (an independent reference: no periodicity
// assumed). Cached per pair, it takes a second or so to build.
struct Map {
  size_t inputs = 0, outputs = 0;
  std::vector<std::vector<float>> columns;
  double At(size_t m, size_t k) const { return columns[k][m]; }
  std::vector<double> Apply(const std::vector<float>& x) const {
    std::vector<double> y(outputs, 0.0);
    for (size_t k = 0; k < inputs; ++k) {
      for (size_t m = 0; m < outputs; ++m) y[m] += At(m, k) * x[k];
    }
    return y;
  }
  double RowSum(size_t m) const {
    double s = 0;
    for (size_t k = 0; k < inputs; ++k) s += std::fabs(At(m, k));
    return s;
  }
};

const Map& MeasuredMap(RatePair rates, size_t n) {
  static auto* maps = new std::map<RatePair, Map>();
  Map& map = (*maps)[rates];
  if (!map.columns.empty()) return map;
  auto r = Resampler::Create(rates.first, rates.second);
  EXPECT_TRUE(r.ok());
  map.inputs = n;
  std::vector<float> x(n, 0.0f);
  for (size_t k = 0; k < n; ++k) {
    std::fill(x.begin(), x.end(), 0.0f);
    x[k] = 1;
    map.columns.push_back(Resample(**r, x));
  }
  map.outputs = map.columns[0].size();
  return map;
}

ResamplerBound Bound(RatePair rates) {
  auto b = MeasureResamplerBound(rates.first, rates.second);
  EXPECT_TRUE(b.ok()) << b.status();
  return b.ok() ? *b : ResamplerBound{};
}

std::string Name(RatePair p) { return absl::StrCat(p.first, " Hz -> ", p.second, " Hz"); }

TEST(ResamplerBound, GainBoundsEveryRowIncludingStartAndTailAndIsReached) {
  for (const auto& [rates, n] : kPairs) {
    SCOPED_TRACE(Name(rates));
    const Map& a = MeasuredMap(rates, n);
    const auto start = std::chrono::steady_clock::now();
    const double g = Bound(rates).linf_gain;
    const double ms =
        std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
    std::printf("%s: G %.6f (measured in %.1f ms)\n", Name(rates).c_str(), g, ms);
    double worst = 0;
    size_t worst_at = 0;
    for (size_t m = 0; m < a.outputs; ++m) {
      const double row = a.RowSum(m);
      if (row > worst) {
        worst = row;
        worst_at = m;
      }
    }
    EXPECT_LE(worst, g) << "output " << worst_at << " of " << a.outputs;
    // Not loose: an interior row reaches G within the 1e-5 margin and rounding.
    EXPECT_GE(worst, g * (1 - 2e-5));
  }
}

// soxr's float rounding against the exact product with the measured map,
// relative to the signal's peak: kept under a third of the allowance (the
// allowance is five times the worst of these, resampler_bounds.cc).
TEST(ResamplerBound, RoundingStaysFarInsideTheAllowance) {
  std::mt19937 rng(17);
  std::uniform_real_distribution<float> unit(-1, 1);
  for (const auto& [rates, n] : kPairs) {
    SCOPED_TRACE(Name(rates));
    const Map& a = MeasuredMap(rates, n);
    auto r = Resampler::Create(rates.first, rates.second);
    ASSERT_TRUE(r.ok());
    double worst = 0;
    for (int kind = 0; kind < 4; ++kind) {
      std::vector<float> x(n);
      for (size_t k = 0; k < n; ++k) {
        const double t = static_cast<double>(k) / rates.first;
        const double pi = std::numbers::pi;
        if (kind == 0) {  // full-scale noise
          x[k] = unit(rng);
        } else if (kind == 1) {  // +-1: the most energy for the peak
          x[k] = unit(rng) < 0 ? -1.0f : 1.0f;
        } else if (kind == 2) {  // a tone plus noise
          x[k] = static_cast<float>(0.9 * std::sin(2 * pi * 440 * t)) + 0.1f * unit(rng);
        } else {  // ECG-like, millivolts: 1.2 Hz spikes on a wandering baseline
          const double spike = std::exp(-std::pow(std::fmod(t, 0.83) - 0.4, 2) / 2e-4);
          x[k] = static_cast<float>(-0.4 + 0.3 * std::sin(2 * pi * 0.3 * t) + 1.6 * spike);
        }
      }
      const std::vector<float> y = Resample(**r, x);
      const std::vector<double> ax = a.Apply(x);
      ASSERT_EQ(y.size(), ax.size());
      double peak = 0;
      for (float v : x) peak = std::max(peak, double{std::fabs(v)});
      for (size_t m = 0; m < y.size(); ++m) worst = std::max(worst, std::fabs(y[m] - ax[m]) / peak);
    }
    std::printf("%s: max |soxr(x) - A x| / max |x| = %.3g (%.1f u; allowance %.3g)\n",
                Name(rates).c_str(), worst, worst * 0x1p24, kResamplerRoundingPerUnit);
    EXPECT_LT(worst, kResamplerRoundingPerUnit / 3);
    EXPECT_GT(worst, 0);  // soxr does round: the measurement is live
  }
}

// Perturbed streams within eps: every output within OutputRadius of the
// unperturbed stream's, for random chunkings; sign-aligned perturbations (the
// worst case for one output) at the start, the middle and the tail, plus random
// signs and uniform draws. eps 1e-2 is dominated by G, 1e-7 by rounding.
TEST(ResamplerBound, PerturbedStreamsStayWithinTheRadiusAndTheWorstCaseIsReached) {
  std::mt19937 rng(23);
  std::uniform_real_distribution<float> unit(-1, 1);
  for (const auto& [rates, n] : kPairs) {
    SCOPED_TRACE(Name(rates));
    const Map& a = MeasuredMap(rates, n);
    const ResamplerBound bound = Bound(rates);
    auto r = Resampler::Create(rates.first, rates.second);
    ASSERT_TRUE(r.ok());
    std::vector<float> x(n);
    for (float& v : x) v = 0.8f * unit(rng);
    const std::vector<float> y = Resample(**r, x);
    double peak = 0;
    for (float v : x) peak = std::max(peak, double{std::fabs(v)});
    size_t widest = 0;  // the row with the largest sum
    for (size_t m = 0; m < a.outputs; ++m) {
      if (a.RowSum(m) > a.RowSum(widest)) widest = m;
    }
    for (double eps : {1e-2, 1e-7}) {
      const double radius = bound.OutputRadius(eps, peak);
      double reached = 0;
      const std::vector<size_t> rows = {0, 1, widest, a.outputs / 2, a.outputs - 2, a.outputs - 1};
      for (int trial = 0; trial < static_cast<int>(rows.size()) + 6; ++trial) {
        std::vector<float> p(x);
        const bool aligned = trial < static_cast<int>(rows.size());
        for (size_t k = 0; k < n; ++k) {
          double d;
          if (aligned) {
            d = a.At(rows[static_cast<size_t>(trial)], k) < 0 ? -eps : eps;
          } else {
            d = trial % 2 ? eps * unit(rng) : (unit(rng) < 0 ? -eps : eps);
          }
          // The client sends floats: keep the perturbed sample within eps.
          float v = static_cast<float>(x[k] + d);
          if (std::fabs(double{v} - x[k]) > eps) v = std::nextafter(v, x[k]);
          p[k] = v;
        }
        std::vector<size_t> chunks;
        for (size_t sum = 0; sum < n; sum += chunks.back()) {
          chunks.push_back(std::uniform_int_distribution<size_t>(0, 3 * (*r)->block_size())(rng));
        }
        const std::vector<float> q = Resample(**r, p, chunks);
        ASSERT_EQ(q.size(), y.size());
        for (size_t m = 0; m < y.size(); ++m) {
          ASSERT_LE(std::fabs(double{q[m]} - y[m]), radius)
              << "eps " << eps << " trial " << trial << " output " << m << " of " << y.size();
          if (aligned && m == rows[static_cast<size_t>(trial)]) {
            reached = std::max(reached, std::fabs(double{q[m]} - y[m]));
          }
        }
      }
      // The sign-aligned perturbation moves its output by about G eps (float
      // rounding of the perturbed samples aside).
      if (eps == 1e-2) {
        EXPECT_GE(reached, 0.9 * bound.linf_gain * eps);
      }
    }
  }
}

// The rate pairs docs/pooling.md lists. soxr keeps DC (a row sums to 1), so
// G >= 1; a low-pass with soxr HQ's ripple and steep edge stays under 3.
TEST(ResamplerBound, ServedRatePairsHaveGainsBetweenOneAndThree) {
  const std::vector<RatePair> pairs = {{16000, 8000}, {22050, 8000}, {44100, 8000},
                                       {48000, 8000}, {11025, 8000}, {8000, 16000},
                                       {250, 360},    {500, 360},    {1000, 360}};
  for (const RatePair& p : pairs) {
    const auto start = std::chrono::steady_clock::now();
    const double g = Bound(p).linf_gain;
    const double ms =
        std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
    std::printf("%s: G %.6f (measured in %.1f ms)\n", Name(p).c_str(), g, ms);
    EXPECT_GE(g, 1.0) << Name(p);
    EXPECT_LT(g, 3.0) << Name(p);
  }
}

TEST(ResamplerBound, EqualRatesPassThroughWithGainOneAndNoRounding) {
  const ResamplerBound b = Bound({16000, 16000});
  EXPECT_EQ(b.linf_gain, 1.0);
  EXPECT_EQ(b.rounding, 0.0);
  EXPECT_EQ(b.OutputRadius(1e-3, 0.5), 1e-3 * (1 + 1e-12));
}

TEST(ResamplerBound, PeriodIsTheReducedRatio) {
  const std::vector<std::pair<RatePair, std::pair<uint64_t, uint64_t>>> cases = {
      {{44100, 8000}, {441, 80}}, {{16000, 8000}, {2, 1}},   {{250, 360}, {25, 36}},
      {{1000, 360}, {25, 9}},     {{11025.5, 8000}, {22051, 16000}}, {{8000, 44100}, {80, 441}}};
  for (const auto& [rates, want] : cases) {
    if (want.first > kMaxPeriodInputSamples) {
      auto p = ReducedRatePeriod(rates.first, rates.second);
      EXPECT_EQ(p.status().code(), absl::StatusCode::kInvalidArgument) << Name(rates);
      EXPECT_NE(p.status().message().find("22051"), std::string_view::npos) << p.status();
      continue;
    }
    auto p = ReducedRatePeriod(rates.first, rates.second);
    ASSERT_TRUE(p.ok()) << Name(rates) << p.status();
    EXPECT_EQ(p->input, want.first) << Name(rates);
    EXPECT_EQ(p->output, want.second) << Name(rates);
  }
  auto fractional = ReducedRatePeriod(16000.0001, 8000);
  EXPECT_EQ(fractional.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(fractional.status().message().find("millihertz"), std::string_view::npos);
}

// Sessions start concurrently: every thread gets the same bound, equal to a
// fresh measurement.
TEST(ResamplerBound, CacheIsSharedAcrossThreadsAndEqualsAMeasurement) {
  const std::vector<RatePair> pairs = {{16000, 8000}, {500, 360}, {48000, 8000}};
  std::vector<std::vector<ResamplerBound>> got(4);
  std::vector<std::thread> threads;
  for (size_t t = 0; t < got.size(); ++t) {
    threads.emplace_back([&, t] {
      for (const RatePair& p : pairs) {
        auto b = CachedResamplerBound(p.first, p.second);
        got[t].push_back(b.ok() ? *b : ResamplerBound{-1, -1});
      }
    });
  }
  for (std::thread& t : threads) t.join();
  for (size_t i = 0; i < pairs.size(); ++i) {
    const ResamplerBound want = Bound(pairs[i]);
    for (const auto& g : got) {
      EXPECT_EQ(g[i].linf_gain, want.linf_gain) << Name(pairs[i]);
      EXPECT_EQ(g[i].rounding, want.rounding) << Name(pairs[i]);
    }
  }
}

}  // namespace
}  // namespace wavepool::dsp
