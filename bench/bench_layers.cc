// Time per layer: Model::Profile on the shipped models (or any model folders)
// at batch 1 and 64 on one thread, as a table per model and batch: each op's
// share of the network's time, microseconds per window, GFLOP/s and that as a
// fraction of this core's measured peak for each FMA ISA it has
// (bench/peak_flops.h, measured in the same run unless --peak_gflops is
// given), then the same for all conv ops together. Writes an SVG bar chart of
// microseconds per window per op.
//
//   build/bench/bench_layers                      # from the repository root
//   build/bench/bench_layers --batches=1,8,64 --min_seconds=2 --svg=/tmp/layers.svg models/digits/1
//
// Flags: --batches=1,64  --min_seconds=1 (timed time per model and batch)
//        --peak_gflops=G (one "of peak" column instead of measuring)
//        --svg=bench_layers.svg ('' = none).
// How to read it: "avx512f fma" is the core's ceiling; "avx2 fma" is the
// ceiling of a kernel that uses 256-bit FMAs only (the OpenBLAS line says
// which kernel it picked: Debian's 0.3.21 takes "Haswell", AVX2, on Zen 5).
// Other jobs on the core slow every op: shares and fractions are comparable
// within one run only; the load average is printed first. The last column
// names the kernel that ran (LayerTime::kernel: a oneDNN segment's kernels,
// im2col+sgemm). Profile computes in Run's order (a oneDNN segment window by
// window at batch > 1, clocked per layer per window). FLOPs per window
// are describe's count (a multiply-add is 2). OpenBLAS is held to one thread
// (nn::Conv2dGemm does so; set here again).
#include <benchmark/benchmark.h>
#include <cblas.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <memory>
#include <random>
#include <string>
#include <string_view>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/strip.h"
#include "bench/model_bench_flags.h"
#include "bench/peak_flops.h"
#include "clients/svg_plot.h"
#include "nn/model.h"

namespace {

using wavepool::nn::LayerTime;
using wavepool::nn::Model;

struct Options {
  std::vector<int> batches = {1, 64};
  double min_seconds = 1;
  double peak_gflops = 0;  // 0: measure
  std::string svg = "bench_layers.svg";
  std::vector<std::string> models;
};

bool ParseFlags(int argc, char** argv, Options* o) {
  return wavepool::bench::ParseModelBenchFlags(
      argc, argv, &o->batches, &o->models, {"models/digits/1", "models/ecg-beats/2"},
      [o](absl::string_view a) {
        if (absl::ConsumePrefix(&a, "--min_seconds=")) return absl::SimpleAtod(a, &o->min_seconds);
        if (absl::ConsumePrefix(&a, "--peak_gflops=")) return absl::SimpleAtod(a, &o->peak_gflops);
        if (absl::ConsumePrefix(&a, "--svg=")) {
          o->svg = std::string(a);
          return true;
        }
        return false;
      });
}

std::string Label(const LayerTime& t) { return absl::StrJoin(t.layers, "+"); }

struct Profiled {
  std::vector<LayerTime> times;
  int repeats = 0;
  double run_seconds = 0;  // mean of the same number of plain Run calls: Profile's clocks' cost
};

// Profiles once to size the run, then enough passes for about `min_seconds`,
// then as many plain Runs.
Profiled ProfileFor(const Model& m, int batch, double min_seconds) {
  wavepool::nn::Workspace ws(m, batch);
  std::vector<float> input(m.input_size() * static_cast<size_t>(batch));
  std::vector<float> output(m.output_size() * static_cast<size_t>(batch));
  std::mt19937 rng(7);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  for (float& v : input) v = normal(rng);
  double pass = 0;
  for (const LayerTime& t : m.Profile(input.data(), batch, ws, 1)) pass += t.seconds;
  Profiled p;
  p.repeats = static_cast<int>(std::clamp(std::ceil(min_seconds / std::max(pass, 1e-9)), 3.0, 1e6));
  p.times = m.Profile(input.data(), batch, ws, p.repeats);
  const auto start = std::chrono::steady_clock::now();
  for (int r = 0; r < p.repeats; ++r) {
    m.Run(input.data(), batch, output.data(), ws);
    benchmark::DoNotOptimize(output.data());
    benchmark::ClobberMemory();
  }
  p.run_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count() / p.repeats;
  return p;
}

// A ceiling a layer's FLOP/s is compared with.
struct Peak {
  std::string name;  // table column: "avx512f fma", "avx2 fma", "peak" (given by flag)
  double flops = 0;  // per second
};

void PrintTable(const std::vector<LayerTime>& times, int batch, const std::vector<Peak>& peaks) {
  size_t lw = 6;
  for (const LayerTime& t : times) lw = std::max(lw, Label(t).size());
  const int w = static_cast<int>(lw);
  double total_s = 0, total_mflops = 0, conv_s = 0, conv_mflops = 0;
  for (const LayerTime& t : times) {
    total_s += t.seconds;
    total_mflops += t.mflops;
    if (t.op.starts_with("conv")) conv_s += t.seconds, conv_mflops += t.mflops;
  }
  std::printf("%-*s %-15s %-16s %9s %6s %9s %8s", w, "layers", "op", "output [C,H,W]", "MFLOP/win",
              "share", "us/win", "GFLOP/s");
  for (const Peak& p : peaks) std::printf(" %*s", static_cast<int>(std::max<size_t>(p.name.size(), 6)), p.name.c_str());
  std::printf("  kernel\n");
  const auto row = [&](const std::string& label, const std::string& op, const std::string& shape,
                       double mflops, double seconds, const std::string& kernel) {
    const double flops_per_s = seconds > 0 ? mflops * 1e6 * batch / seconds : 0;
    std::printf("%-*s %-15s %-16s %9.4f %5.1f%% %9.3f %8.2f", w, label.c_str(), op.c_str(), shape.c_str(),
                mflops, total_s > 0 ? 100 * seconds / total_s : 0, seconds / batch * 1e6, flops_per_s / 1e9);
    for (const Peak& p : peaks) {
      std::printf(" %*.1f%%", static_cast<int>(std::max<size_t>(p.name.size(), 6)) - 1,
                  100 * flops_per_s / p.flops);
    }
    std::printf("  %s\n", kernel.c_str());
  };
  for (const LayerTime& t : times) row(Label(t), t.op, t.output.ToString(), t.mflops, t.seconds, t.kernel);
  row("total", "", "", total_mflops, total_s, "");
  row("conv ops", "", "", conv_mflops, conv_s, "");
}

}  // namespace

int main(int argc, char** argv) {
  Options o;
  if (!ParseFlags(argc, argv, &o)) {
    std::fprintf(stderr,
                 "usage: bench_layers [--batches=1,64] [--min_seconds=1] [--peak_gflops=G] "
                 "[--svg=PATH] [model_dir ...]\n");
    return 2;
  }
  openblas_set_num_threads(1);
  double load[3] = {0, 0, 0};
  if (getloadavg(load, 3) == 3) {
    std::printf("load average %.2f %.2f %.2f (1, 5, 15 min)\n", load[0], load[1], load[2]);
  }
  std::printf("OpenBLAS %s, kernel %s, %d thread(s)\n", openblas_get_config(), openblas_get_corename(),
              openblas_get_num_threads());

  // Fraction columns: of each FMA ISA's measured peak, widest first (the
  // GEMM library may use a narrower one than the core has), or of --peak_gflops.
  std::vector<Peak> peaks;
  if (o.peak_gflops > 0) {
    peaks.push_back({"of peak", o.peak_gflops * 1e9});
  } else {
    float sink = 0;
    for (const auto& k : wavepool::bench::PeakKernels()) {
      if (!k.supported()) {
        std::printf("peak %-14s: not on this CPU\n", k.isa);
        continue;
      }
      const double f = wavepool::bench::MeasurePeakFlops(k, 0.2, 5, &sink);
      std::printf("peak %-14s: %7.2f GFLOP/s (best of 5 x 0.2 s, one core)\n", k.isa, f / 1e9);
      if (std::string_view(k.isa).ends_with("fma")) peaks.insert(peaks.begin(), {k.isa, f});
    }
    benchmark::DoNotOptimize(sink);
  }
  std::printf("fraction-of-peak columns: %% of %s\n",
              absl::StrJoin(peaks, ", ", [](std::string* out, const Peak& p) {
                absl::StrAppend(out, p.name, " (", absl::SixDigits(p.flops / 1e9), " GFLOP/s)");
              }).c_str());

  wavepool::cli::BarPlot plot;
  plot.title = "Time per layer, one thread (microseconds per window)";
  plot.value_label = "microseconds per window";
  constexpr const char* kColors[] = {"#1f77b4", "#ff7f0e", "#2ca02c", "#d62728"};
  for (const std::string& dir : o.models) {
    auto model = Model::Load(dir);
    if (!model.ok()) {
      std::fprintf(stderr, "%s\n", std::string(model.status().message()).c_str());
      return 1;
    }
    const Model& m = **model;
    wavepool::cli::BarPanel panel;
    panel.title = m.spec().name() + " v" + std::to_string(m.spec().version()) + " (" + dir + ")";
    for (size_t b = 0; b < o.batches.size(); ++b) {
      const int batch = o.batches[b];
      const Profiled p = ProfileFor(m, batch, o.min_seconds);
      const std::vector<LayerTime>& times = p.times;
      std::printf("\n%s, batch %d, mean of %d passes\n", panel.title.c_str(), batch, p.repeats);
      PrintTable(times, batch, peaks);
      std::printf("Model::Run without the clocks, as many passes: %.3f us/win\n", p.run_seconds / batch * 1e6);
      if (panel.categories.empty()) {
        for (const LayerTime& t : times) panel.categories.push_back(Label(t));
      }
      wavepool::cli::PlotSeries series{"batch " + std::to_string(batch), kColors[b % 4], {}};
      for (const LayerTime& t : times) series.y.push_back(t.seconds / batch * 1e6);
      panel.series.push_back(std::move(series));
    }
    plot.panels.push_back(std::move(panel));
  }
  if (!o.svg.empty()) {
    std::ofstream f(o.svg);
    f << wavepool::cli::BarPlotSvg(plot);
    if (!f) {
      std::fprintf(stderr, "cannot write %s\n", o.svg.c_str());
      return 1;
    }
    std::printf("\nwrote %s\n", o.svg.c_str());
  }
  return 0;
}
