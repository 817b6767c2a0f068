// One core's peak single-precision throughput, measured: independent chains
// of vector multiply-adds with nothing else in the loop, so the result is the
// arithmetic units' limit (no loads, no stores). Shared by bench_peak (the
// Google Benchmark targets) and bench_layers (fractions of peak in the same
// run as the layer times).
//
// The binary is built without -march: each kernel is compiled for its own ISA
// with __attribute__((target)) and picked at run time with
// __builtin_cpu_supports (which also checks that the OS saves the wide
// registers).
//
// Chains: an FMA has a latency of 4 cycles on Skylake-X to Zen 5 and two FMA
// pipes issue one each per cycle, so at least 4 x 2 = 8 independent
// accumulators keep both busy. We use 12 (AVX2: 16 ymm registers minus the two
// constants) and 16 (AVX-512: 32 zmm registers). SSE has no FMA: 6 multiply
// chains and 8 add chains, 14 of the 16 xmm registers (Zen 5, measured: 6 + 6
// chains reach 48 GFLOP/s, 7 + 7 55, 6 + 8 57; 8 + 8 spills to the stack).
//
// The values stay exactly constant (x * 1 and x + 0; an empty asm hides the
// constants from the compiler so it cannot fold them) and normal: no overflow,
// no denormal slow path.
#pragma once

#include <immintrin.h>

#include <chrono>
#include <cstdint>
#include <span>

namespace wavepool::bench {

// FLOPs one trip of a kernel's loop does: vectors x lanes x 2 for an FMA
// (multiply + add), x 1 for a lone multiply or add.
inline constexpr double kSseFlopsPerTrip = (6 + 8) * 4;
inline constexpr double kAvx2FlopsPerTrip = 12 * 8 * 2;
inline constexpr double kAvx512FlopsPerTrip = 16 * 16 * 2;

// Each returns a sum of its accumulators, for benchmark::DoNotOptimize.
inline float SseMulAddTrips(int64_t trips) {
  __m128 m = _mm_set1_ps(1.0f), a = _mm_set1_ps(0.0f);
  __asm__ volatile("" : "+x"(m), "+x"(a));
  __m128 mul[6], add[8];
  for (int i = 0; i < 6; ++i) mul[i] = _mm_set1_ps(1.0f + static_cast<float>(i));
  for (int i = 0; i < 8; ++i) add[i] = _mm_set1_ps(1.0f + static_cast<float>(i));
  for (int64_t t = 0; t < trips; ++t) {
#pragma GCC unroll 6
    for (int i = 0; i < 6; ++i) mul[i] = _mm_mul_ps(mul[i], m);
#pragma GCC unroll 8
    for (int i = 0; i < 8; ++i) add[i] = _mm_add_ps(add[i], a);
  }
  __m128 s = _mm_setzero_ps();
  for (int i = 0; i < 6; ++i) s = _mm_add_ps(s, mul[i]);
  for (int i = 0; i < 8; ++i) s = _mm_add_ps(s, add[i]);
  return _mm_cvtss_f32(s);
}

__attribute__((target("avx2,fma"))) inline float Avx2FmaTrips(int64_t trips) {
  __m256 m = _mm256_set1_ps(1.0f), a = _mm256_set1_ps(0.0f);
  __asm__ volatile("" : "+x"(m), "+x"(a));
  __m256 acc[12];
  for (int i = 0; i < 12; ++i) acc[i] = _mm256_set1_ps(1.0f + static_cast<float>(i));
  for (int64_t t = 0; t < trips; ++t) {
#pragma GCC unroll 12
    for (int i = 0; i < 12; ++i) acc[i] = _mm256_fmadd_ps(acc[i], m, a);
  }
  __m256 s = _mm256_setzero_ps();
  for (int i = 0; i < 12; ++i) s = _mm256_add_ps(s, acc[i]);
  return _mm256_cvtss_f32(s);
}

__attribute__((target("avx512f"))) inline float Avx512FmaTrips(int64_t trips) {
  __m512 m = _mm512_set1_ps(1.0f), a = _mm512_set1_ps(0.0f);
  __asm__ volatile("" : "+v"(m), "+v"(a));
  __m512 acc[16];
  for (int i = 0; i < 16; ++i) acc[i] = _mm512_set1_ps(1.0f + static_cast<float>(i));
  for (int64_t t = 0; t < trips; ++t) {
#pragma GCC unroll 16
    for (int i = 0; i < 16; ++i) acc[i] = _mm512_fmadd_ps(acc[i], m, a);
  }
  __m512 s = _mm512_setzero_ps();
  for (int i = 0; i < 16; ++i) s = _mm512_add_ps(s, acc[i]);
  return _mm512_cvtss_f32(s);
}

inline bool HasSse() { return true; }  // every x86-64
inline bool HasAvx2Fma() { return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"); }
inline bool HasAvx512() { return __builtin_cpu_supports("avx512f"); }

struct PeakKernel {
  const char* isa;          // "sse (mul+add)", "avx2 fma", "avx512f fma"
  double flops_per_trip;
  float (*trips)(int64_t);
  bool (*supported)();
};

// Narrowest first.
inline std::span<const PeakKernel> PeakKernels() {
  static constexpr PeakKernel kKernels[] = {
      {"sse (mul+add)", kSseFlopsPerTrip, SseMulAddTrips, HasSse},
      {"avx2 fma", kAvx2FlopsPerTrip, Avx2FmaTrips, HasAvx2Fma},
      {"avx512f fma", kAvx512FlopsPerTrip, Avx512FmaTrips, HasAvx512},
  };
  return kKernels;
}

// The widest kernel this CPU runs: the peak the fast paths can reach.
inline const PeakKernel& WidestPeakKernel() {
  const PeakKernel* best = &PeakKernels()[0];
  for (const PeakKernel& k : PeakKernels()) {
    if (k.supported()) best = &k;
  }
  return *best;
}

// Best of `tries` runs of about `seconds_each`, in FLOP/s (best: other jobs
// on the machine only ever make a run slower). `sink` receives a result so
// the work is kept.
inline double MeasurePeakFlops(const PeakKernel& k, double seconds_each, int tries, float* sink) {
  using Clock = std::chrono::steady_clock;
  constexpr int64_t kTrips = 1 << 16;  // ~0.1-0.5 ms per call
  double best = 0;
  for (int r = 0; r < tries; ++r) {
    int64_t calls = 0;
    const Clock::time_point start = Clock::now();
    double elapsed = 0;
    do {
      *sink += k.trips(kTrips);
      ++calls;
      elapsed = std::chrono::duration<double>(Clock::now() - start).count();
    } while (elapsed < seconds_each);
    const double flops = static_cast<double>(calls) * kTrips * k.flops_per_trip / elapsed;
    if (flops > best) best = flops;
  }
  return best;
}

}  // namespace wavepool::bench
