// The ECG front end's cost in seconds of ECG processed per second of CPU:
// StreamingQrsDetector::Push and StreamingEcgFilter::Push on 10 s of synthetic
// 360 Hz ECG (about 70 bpm, 0.02 mV noise, 0.3 Hz baseline wander), fed in
// 1 s chunks to one long stream.
//
//   build-qrs/bench/bench_ecg --benchmark_counters_tabular=true
#include <cmath>
#include <cstdint>
#include <memory>
#include <numbers>
#include <random>
#include <span>
#include <string>
#include <vector>

#include "benchmark/benchmark.h"
#include "dsp/qrs_detector.h"

namespace wavepool::dsp {
namespace {

constexpr double kRate = 360;
constexpr double kSeconds = 10;

// R (1.2 mV), S and T waves as Gaussians every 0.85 s, plus wander and noise.
std::vector<float> TenSecondsOfEcg() {
  std::mt19937 rng(1);
  std::normal_distribution<double> noise(0.0, 0.02);
  const auto n = static_cast<size_t>(kRate * kSeconds);
  std::vector<float> x(n);
  for (size_t i = 0; i < n; ++i) {
    const double t = static_cast<double>(i) / kRate;
    double v = 0.4 * std::sin(2 * std::numbers::pi * 0.3 * t) + noise(rng);
    for (double r = 0.4; r < kSeconds; r += 0.85) {
      const double d = t - r;
      v += 1.2 * std::exp(-0.5 * (d / 0.011) * (d / 0.011)) -
           0.35 * std::exp(-0.5 * ((d - 0.028) / 0.011) * ((d - 0.028) / 0.011)) +
           0.3 * std::exp(-0.5 * ((d - 0.28) / 0.05) * ((d - 0.28) / 0.05));
    }
    x[i] = static_cast<float>(v);
  }
  return x;
}

void SetEcgRate(benchmark::State& state) {
  state.counters["ecg_s_per_s"] = benchmark::Counter(
      static_cast<double>(state.iterations()) * kSeconds, benchmark::Counter::kIsRate);
}

void BM_QrsDetectorPush(benchmark::State& state) {
  QrsDetectorOptions o;
  o.sample_rate_hz = kRate;
  absl::StatusOr<std::unique_ptr<StreamingQrsDetector>> detector = StreamingQrsDetector::Create(o);
  if (!detector.ok()) {
    state.SkipWithError(std::string(detector.status().message()).c_str());
    return;
  }
  const std::vector<float> ecg = TenSecondsOfEcg();
  const auto chunk = static_cast<size_t>(kRate);
  int64_t beats = 0;
  for (auto _ : state) {
    for (size_t at = 0; at < ecg.size(); at += chunk) {
      (*detector)->Push(std::span<const float>(ecg).subspan(at, chunk), [&](int64_t) { ++beats; });
    }
  }
  benchmark::DoNotOptimize(beats);
  SetEcgRate(state);
}
BENCHMARK(BM_QrsDetectorPush);

void BM_EcgFilterPush(benchmark::State& state) {
  absl::StatusOr<std::unique_ptr<StreamingEcgFilter>> filter = StreamingEcgFilter::Create(kRate);
  if (!filter.ok()) {
    state.SkipWithError(std::string(filter.status().message()).c_str());
    return;
  }
  const std::vector<float> ecg = TenSecondsOfEcg();
  const auto chunk = static_cast<size_t>(kRate);
  float sink = 0;
  for (auto _ : state) {
    for (size_t at = 0; at < ecg.size(); at += chunk) {
      (*filter)->Push(std::span<const float>(ecg).subspan(at, chunk),
                      [&](std::span<const float> y) { sink += y.back(); });
    }
  }
  benchmark::DoNotOptimize(sink);
  SetEcgRate(state);
}
BENCHMARK(BM_EcgFilterPush);

}  // namespace
}  // namespace wavepool::dsp

BENCHMARK_MAIN();
