// The convolution kernels side by side inside the shipped models, interleaved:
// for each model and batch, rounds of Model::Profile with the convolutions on
// im2col + OpenBLAS (ConvPath::kGemm) and on the kernels the model chose
// (ConvPath::kChosen: oneDNN where it has a JIT kernel), alternating, then per
// conv layer and for the whole network the median over rounds of the ratio
// gemm time / chosen time (> 1: the chosen kernel is faster), and the same
// for plain Model::Run calls (no per-op clocks). On a shared,
// noisy machine the ratio within a round is what to read; the absolute times
// are medians too. One thread; times are thread CPU time per window.
//
//   build/bench/bench_conv                                   # from the repository root
//   build/bench/bench_conv --batches=1,8,64 --rounds=9 --round_seconds=0.3 models/digits/2
//
// Flags: --batches=1,8,64  --rounds=7  --round_seconds=0.2 (per kernel per round).
#include <benchmark/benchmark.h>
#include <cblas.h>
#include <time.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_join.h"
#include "absl/strings/strip.h"
#include "bench/model_bench_flags.h"
#include "nn/model.h"

namespace {

using wavepool::nn::ConvPath;
using wavepool::nn::LayerTime;
using wavepool::nn::Model;
using wavepool::nn::Workspace;

struct Options {
  std::vector<int> batches = {1, 8, 64};
  int rounds = 7;
  double round_seconds = 0.2;
  std::vector<std::string> models;
};

bool ParseFlags(int argc, char** argv, Options* o) {
  return wavepool::bench::ParseModelBenchFlags(
      argc, argv, &o->batches, &o->models, {"models/digits/2", "models/ecg-beats/2"},
      [o](absl::string_view a) {
        if (absl::ConsumePrefix(&a, "--rounds=")) return absl::SimpleAtoi(a, &o->rounds) && o->rounds >= 1;
        if (absl::ConsumePrefix(&a, "--round_seconds=")) {
          return absl::SimpleAtod(a, &o->round_seconds) && o->round_seconds > 0;
        }
        return false;
      });
}

double ThreadSeconds() {
  timespec t;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
  return static_cast<double>(t.tv_sec) + 1e-9 * static_cast<double>(t.tv_nsec);
}

double Median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  return n % 2 == 1 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

// One timed block of Profile passes: per-op seconds per window (the ops' wall
// clocks, scaled so they sum to the block's thread CPU time: the CPU time is
// what another job on the core does not inflate).
std::vector<double> TimeBlock(const Model& m, const float* input, int batch, Workspace& ws, int repeats) {
  const double start = ThreadSeconds();
  const std::vector<LayerTime> t = m.Profile(input, batch, ws, repeats);
  const double cpu = (ThreadSeconds() - start) / (repeats + 1);  // Profile adds a warm-up pass
  double wall = 0;
  for (const LayerTime& l : t) wall += l.seconds;
  std::vector<double> per_op;
  for (const LayerTime& l : t) per_op.push_back(l.seconds * (wall > 0 ? cpu / wall : 1) / batch);
  return per_op;
}

// Model::Run (no per-op clocks): thread CPU seconds per window.
double TimeRun(const Model& m, const float* input, int batch, Workspace& ws, int repeats, float* output) {
  m.Run(input, batch, output, ws);
  const double start = ThreadSeconds();
  for (int r = 0; r < repeats; ++r) {
    m.Run(input, batch, output, ws);
    benchmark::DoNotOptimize(output);
    benchmark::ClobberMemory();
  }
  return (ThreadSeconds() - start) / repeats / batch;
}

}  // namespace

int main(int argc, char** argv) {
  Options o;
  if (!ParseFlags(argc, argv, &o)) {
    std::fprintf(stderr,
                 "usage: bench_conv [--batches=1,8,64] [--rounds=7] [--round_seconds=0.2] [model_dir ...]\n");
    return 2;
  }
  openblas_set_num_threads(1);
  double load[3] = {0, 0, 0};
  if (getloadavg(load, 3) == 3) std::printf("load average %.2f %.2f %.2f (1, 5, 15 min)\n", load[0], load[1], load[2]);
  std::printf("OpenBLAS kernel %s; rounds %d x %.2f s per kernel; ratio = gemm / chosen (median of rounds)\n",
              openblas_get_corename(), o.rounds, o.round_seconds);
  for (const std::string& dir : o.models) {
    auto model = Model::Load(dir);
    if (!model.ok()) {
      std::fprintf(stderr, "%s\n", std::string(model.status().message()).c_str());
      return 1;
    }
    const Model& m = **model;
    for (const int batch : o.batches) {
      std::vector<float> input(m.input_size() * static_cast<size_t>(batch));
      std::mt19937 rng(7);
      std::normal_distribution<float> normal(0.0f, 1.0f);
      for (float& v : input) v = normal(rng);
      Workspace gemm(m, batch, ConvPath::kGemm), chosen(m, batch, ConvPath::kChosen);
      // Size a block for round_seconds from one pass of each.
      const std::vector<LayerTime> ops = m.Profile(input.data(), batch, chosen, 1);
      double pass = 0;
      for (const LayerTime& l : m.Profile(input.data(), batch, gemm, 1)) pass += l.seconds;
      const int repeats = static_cast<int>(std::clamp(std::ceil(o.round_seconds / std::max(pass, 1e-9)), 2.0, 1e6));
      const size_t n = ops.size();
      std::vector<std::vector<double>> g(n), c(n), ratio(n);
      std::vector<double> g_total, c_total, total_ratio, g_run, c_run, run_ratio;
      std::vector<float> output(m.output_size() * static_cast<size_t>(batch));
      for (int r = 0; r < o.rounds; ++r) {
        // Alternate which goes first, so neither always follows the other.
        std::vector<double> tg, tc;
        if (r % 2 == 0) {
          tg = TimeBlock(m, input.data(), batch, gemm, repeats);
          tc = TimeBlock(m, input.data(), batch, chosen, repeats);
        } else {
          tc = TimeBlock(m, input.data(), batch, chosen, repeats);
          tg = TimeBlock(m, input.data(), batch, gemm, repeats);
        }
        double sg = 0, sc = 0;
        for (size_t i = 0; i < n; ++i) {
          g[i].push_back(tg[i]);
          c[i].push_back(tc[i]);
          ratio[i].push_back(tg[i] / tc[i]);
          sg += tg[i];
          sc += tc[i];
        }
        const double rg = TimeRun(m, input.data(), batch, gemm, repeats, output.data());
        const double rc = TimeRun(m, input.data(), batch, chosen, repeats, output.data());
        g_run.push_back(rg);
        c_run.push_back(rc);
        run_ratio.push_back(rg / rc);
        g_total.push_back(sg);
        c_total.push_back(sc);
        total_ratio.push_back(sg / sc);
      }
      std::printf("\n%s (%s), batch %d, %d passes per block\n", m.spec().name().c_str(), dir.c_str(), batch, repeats);
      std::printf("%-24s %-16s %11s %11s %8s  %s\n", "layers", "output [C,H,W]", "gemm us/win",
                  "chosen us/w", "ratio", "chosen kernel");
      for (size_t i = 0; i < n; ++i) {
        if (ops[i].kernel.empty()) continue;  // not a convolution
        std::printf("%-24s %-16s %11.2f %11.2f %7.2fx  %s\n", absl::StrJoin(ops[i].layers, "+").c_str(),
                    ops[i].output.ToString().c_str(), Median(g[i]) * 1e6, Median(c[i]) * 1e6,
                    Median(ratio[i]), ops[i].kernel.c_str());
      }
      std::printf("%-24s %-16s %11.2f %11.2f %7.2fx  (min %.2fx, max %.2fx)\n", "whole network", "",
                  Median(g_total) * 1e6, Median(c_total) * 1e6, Median(total_ratio),
                  *std::min_element(total_ratio.begin(), total_ratio.end()),
                  *std::max_element(total_ratio.begin(), total_ratio.end()));
      std::printf("%-24s %-16s %11.2f %11.2f %7.2fx  (min %.2fx, max %.2fx)\n", "Model::Run", "",
                  Median(g_run) * 1e6, Median(c_run) * 1e6, Median(run_ratio),
                  *std::min_element(run_ratio.begin(), run_ratio.end()),
                  *std::max_element(run_ratio.begin(), run_ratio.end()));
    }
  }
  return 0;
}
