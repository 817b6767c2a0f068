// The machine's limit: one core's peak single-precision FLOP/s per ISA
// (bench/peak_flops.h says how the kernels are built and why that many
// chains). Kernels the CPU lacks are skipped with a message.
//
//   build/bench/bench_peak --benchmark_min_time=1 --benchmark_repetitions=5
//
// How to read it: the FLOP/s counter of a row is what one core does with
// nothing but that ISA's multiply-adds in flight; "avx512f fma" (or "avx2 fma"
// without AVX-512) is the ceiling for any kernel here, and a layer's FLOP/s
// divided by it is its fraction of peak (bench_layers prints exactly that).
// An FMA lane counts 2 FLOPs, an SSE multiply or add 1. Per cycle, the ceiling
// is 2 pipes x lanes x 2: 32 (AVX2) or 64 (AVX-512 on a full-width core such
// as Zen 5 or Xeon with two 512-bit FMA units; 32 on cores that split zmm in
// two halves); FLOP/s / that = the clock the core ran at. Other jobs on the
// core only lower the figure: take the max (or the median with a quiet load).
#include <benchmark/benchmark.h>

#include <cstdint>
#include <string>

#include "bench/peak_flops.h"

namespace {

using wavepool::bench::PeakKernel;
using wavepool::bench::PeakKernels;

constexpr int64_t kTripsPerIteration = 1 << 14;

void BM_PeakFlops(benchmark::State& state, const PeakKernel* k) {
  if (!k->supported()) {
    state.SkipWithError((std::string("this CPU lacks ") + k->isa).c_str());
    return;
  }
  for (auto _ : state) {
    float r = k->trips(kTripsPerIteration);
    benchmark::DoNotOptimize(r);
  }
  state.counters["FLOP/s"] = benchmark::Counter(
      static_cast<double>(kTripsPerIteration) * k->flops_per_trip,
      benchmark::Counter::kIsIterationInvariantRate);
}

// Registered by name so the rows read "BM_PeakFlops/avx2 fma".
const bool kRegistered = [] {
  for (const PeakKernel& k : PeakKernels()) {
    benchmark::RegisterBenchmark((std::string("BM_PeakFlops/") + k.isa).c_str(), BM_PeakFlops, &k)
        ->Unit(benchmark::kMicrosecond);
  }
  return true;
}();

}  // namespace

BENCHMARK_MAIN();
