// wavepool sweep: trains one digit model per pooling choice (kind x time stride
// x frequency stride), then prints and plots accuracy against cost (MFLOPs per
// window, measured latency) with each model's receptive field. Every model is
// trained with the same flags and seed; only its pooling layers differ.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <random>

#include "absl/flags/flag.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "clients/cli.h"
#include "clients/digit_train.h"
#include "clients/flags.h"
#include "clients/shift_eval.h"
#include "clients/svg_plot.h"
#include "clients/sweep_grid.h"
#include "nn/describe.h"
#include "nn/model.h"
#include "nn/spec.h"

ABSL_FLAG(std::vector<std::string>, time_strides, std::vector<std::string>({"1", "2", "3"}),
          "sweep: time strides of the pooling layers");
ABSL_FLAG(std::vector<std::string>, freq_strides, std::vector<std::string>({"1", "2", "3"}),
          "sweep: frequency strides of the pooling layers");
ABSL_FLAG(std::vector<std::string>, pool_kinds, std::vector<std::string>({"max"}),
          "sweep: pooling kinds (max, avg, conv = strided convolution, blur = anti-aliased max)");
ABSL_FLAG(std::vector<std::string>, points, {},
          "sweep: explicit points KIND-tT-fF (e.g. max-t2-f2,conv-t3-f2) instead of the grid");
ABSL_FLAG(std::vector<std::string>, sweep_layers, {},
          "sweep: the pooling layers to change (default: every max/average pooling layer)");
ABSL_FLAG(int, latency_runs, 200, "sweep: batch-1 inference runs timed per model (median)");

namespace wavepool::cli {
namespace {

struct Row {
  SweepPoint point;
  std::string tag;
  std::string invalid;  // why the point has no model (strides leave nothing to pool, ...)
  std::string last_conv_shape;
  double rf_ms = 0, rf_bands = 0, mflops = 0, latency_ms = 0, accuracy = -1;
  double consistency = -1, score_change = -1;  // shift consistency over the test clips
  uint64_t parameters = 0;
  bool reused = false;
};

absl::StatusOr<std::vector<uint32_t>> ParseStrides(const std::vector<std::string>& v,
                                                   const char* flag) {
  std::vector<uint32_t> out;
  for (const std::string& s : v) {
    uint32_t x = 0;
    if (!absl::SimpleAtoi(s, &x) || x == 0 || x > 64) {
      return absl::InvalidArgumentError(
          absl::StrCat("--", flag, ": \"", s, "\" is not a stride in 1..64"));
    }
    out.push_back(x);
  }
  if (out.empty()) return absl::InvalidArgumentError(absl::StrCat("--", flag, " is empty"));
  return out;
}

// The deepest conv layer's receptive field and output shape: what one feature
// the global pooling averages over sees.
void FillDescription(const v1::ModelDescription& d, Row* row) {
  row->mflops = d.total_mflops();
  row->parameters = d.total_parameters();
  for (const v1::LayerDescription& l : d.layers()) {
    if (l.op() != "conv2d" && l.op() != "conv1d") continue;
    row->rf_ms = l.receptive_field_ms();
    row->rf_bands = l.receptive_field_bands();
    row->last_conv_shape.clear();
    for (int i = 0; i < l.output_shape_size(); ++i) {
      absl::StrAppend(&row->last_conv_shape, i ? "x" : "", l.output_shape(i));
    }
  }
}

// Median wall time of one batch-1 window, single thread, on a fixed random input.
double MedianLatencyMs(const nn::Model& model, int runs) {
  nn::Workspace ws(model, 1);
  std::vector<float> in(model.input_size()), out(model.output_size());
  std::mt19937 rng(1);
  std::normal_distribution<float> g(0, 1);
  for (float& v : in) v = g(rng);
  for (int i = 0; i < 10; ++i) model.Run(in.data(), 1, out.data(), ws);
  std::vector<double> ms;
  for (int i = 0; i < runs; ++i) {
    const auto t0 = std::chrono::steady_clock::now();
    model.Run(in.data(), 1, out.data(), ws);
    ms.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0)
                     .count());
  }
  std::nth_element(ms.begin(), ms.begin() + static_cast<long>(ms.size() / 2), ms.end());
  return ms[ms.size() / 2];
}

// A model folder from an earlier run of the same sweep (same epochs) is reused,
// so an interrupted sweep resumes where it stopped.
bool Reusable(const std::string& dir, int epochs, double* accuracy) {
  auto model = nn::Model::Load(dir);
  if (!model.ok()) return false;
  const v1::Provenance& p = (*model)->spec().provenance();
  const auto it = p.metrics().find("test_accuracy");
  if (!p.trained() || p.epochs() != static_cast<uint32_t>(epochs) || it == p.metrics().end()) {
    return false;
  }
  *accuracy = it->second;
  return true;
}

std::string Json(const Row& r) {
  return absl::StrFormat(
      "{\"tag\":\"%s\",\"pool\":\"%s\",\"time_stride\":%u,\"freq_stride\":%u,%s"
      "\"last_conv_shape\":\"%s\",\"receptive_field_ms\":%.1f,\"receptive_field_bands\":%.1f,"
      "\"parameters\":%u,\"mflops\":%.3f,\"latency_ms\":%.4f,\"accuracy\":%s,"
      "\"shift_consistency\":%s,\"shift_score_change\":%s}",
      r.tag, PoolKindName(r.point.kind), r.point.time_stride, r.point.freq_stride,
      r.invalid.empty() ? "" : absl::StrFormat("\"invalid\":\"%s\",", r.invalid),
      r.last_conv_shape, r.rf_ms, r.rf_bands, r.parameters, r.mflops, r.latency_ms,
      r.accuracy >= 0 ? absl::StrFormat("%.4f", r.accuracy) : "null",
      r.consistency >= 0 ? absl::StrFormat("%.4f", r.consistency) : "null",
      r.score_change >= 0 ? absl::StrFormat("%.4f", r.score_change) : "null");
}

std::string Table(const std::vector<Row>& rows) {
  std::string t =
      "| model | pool | t | f | last conv [C,F,T] | RF ms | RF bands | params | MFLOPs | "
      "latency ms (b1) | accuracy | shift consistency | score change |\n"
      "|---|---|---|---|---|---|---|---|---|---|---|---|---|\n";
  for (const Row& r : rows) {
    if (!r.invalid.empty()) {
      absl::StrAppendFormat(&t, "| %s | %s | %u | %u | invalid: %s |||||||||\n", r.tag,
                            PoolKindName(r.point.kind), r.point.time_stride, r.point.freq_stride,
                            r.invalid);
      continue;
    }
    absl::StrAppendFormat(
        &t, "| %s | %s | %u | %u | %s | %.0f | %.0f | %u | %.1f | %.3f | %s | %s | %s |\n", r.tag,
        PoolKindName(r.point.kind), r.point.time_stride, r.point.freq_stride, r.last_conv_shape,
        r.rf_ms, r.rf_bands, r.parameters, r.mflops, r.latency_ms,
        r.accuracy >= 0 ? absl::StrFormat("%.2f%%", 100 * r.accuracy) : "-",
        r.consistency >= 0 ? absl::StrFormat("%.2f%%", 100 * r.consistency) : "-",
        r.score_change >= 0 ? absl::StrFormat("%.4f", r.score_change) : "-");
  }
  return t;
}

std::string Plot(const std::vector<Row>& rows, const std::string& title) {
  static const char* kColors[] = {"#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e"};
  ScatterPlot plot;
  plot.title = title;
  ScatterPanel by_flops{"MFLOPs per window", "accuracy (%)", true, {}};
  ScatterPanel by_latency{"latency per window, batch 1 (ms)", "accuracy (%)", true, {}};
  ScatterPanel by_shift{"MFLOPs per window", "shift consistency (%)", true, {}};
  for (const Row& r : rows) {
    if (!r.invalid.empty() || r.accuracy < 0) continue;
    const std::string kind = PoolKindName(r.point.kind);
    auto series_of = [&](ScatterPanel& panel) -> ScatterSeries& {
      for (ScatterSeries& s : panel.series) {
        if (s.name == kind) return s;
      }
      panel.series.push_back(
          {kind, kColors[panel.series.size() % (sizeof kColors / sizeof *kColors)], {}});
      return panel.series.back();
    };
    const std::string label = absl::StrFormat("t%u f%u, RF %.0f ms", r.point.time_stride,
                                              r.point.freq_stride, r.rf_ms);
    series_of(by_flops).points.push_back({r.mflops, 100 * r.accuracy, label});
    series_of(by_latency).points.push_back({r.latency_ms, 100 * r.accuracy, label});
    if (r.consistency >= 0) {
      series_of(by_shift).points.push_back({r.mflops, 100 * r.consistency, label});
    }
  }
  plot.panels = {by_flops, by_latency};
  if (!by_shift.series.empty()) plot.panels.push_back(by_shift);
  return ScatterPlotSvg(plot);
}

}  // namespace

int RunSweep(const CommonOptions& common, const std::vector<std::string>& args) {
  if (!args.empty()) return Fail("sweep takes flags only: --spec, --data, --out, ...");
  const std::string spec_path = absl::GetFlag(FLAGS_spec);
  const std::string data_dir = absl::GetFlag(FLAGS_data);
  const std::string out = absl::GetFlag(FLAGS_out);
  if (spec_path.empty() || data_dir.empty() || out.empty()) {
    return Fail("sweep needs --spec BASE.json --data DIR --out DIR");
  }
  auto base = nn::ReadSpecFile(spec_path);
  if (!base.ok()) return Fail(std::string(base.status().message()));
  if (base->kind() == v1::BEAT_WINDOWS) {
    return Fail("sweep trains fixed-window (audio) models; ECG beat models are not supported yet");
  }
  auto ts = ParseStrides(absl::GetFlag(FLAGS_time_strides), "time-strides");
  if (!ts.ok()) return Fail(std::string(ts.status().message()));
  auto fs = ParseStrides(absl::GetFlag(FLAGS_freq_strides), "freq-strides");
  if (!fs.ok()) return Fail(std::string(fs.status().message()));
  std::vector<PoolKind> kinds;
  for (const std::string& k : absl::GetFlag(FLAGS_pool_kinds)) {
    auto kind = ParsePoolKind(k);
    if (!kind.ok()) return Fail(std::string(kind.status().message()));
    kinds.push_back(*kind);
  }
  const std::vector<std::string> layers = absl::GetFlag(FLAGS_sweep_layers);
  const int epochs = absl::GetFlag(FLAGS_epochs);
  const int latency_runs = std::max(1, absl::GetFlag(FLAGS_latency_runs));
  // Shift consistency of every trained point on the split's test clips, at
  // shifts --shift-step..--max-shift (the eval flags), as `eval --shift-consistency`.
  ShiftEvalOptions shift_options;
  if (auto shifts = ShiftsFromFlags(); shifts.ok()) {
    shift_options.shifts = *std::move(shifts);
  } else {
    return Fail(std::string(shifts.status().message()));
  }
  if (auto s = shift_options.Validate(); !s.ok()) return Fail(std::string(s.message()));
  // Loaded once: every point trains on it and is scored on its test clips.
  auto data = LoadDigitData(data_dir, absl::GetFlag(FLAGS_split), base->sample_rate_hz());
  if (!data.ok()) return Fail(std::string(data.status().message()));

  // Every point is checked before any training, so a bad grid fails at once.
  std::vector<SweepPoint> points;
  for (const std::string& tag : absl::GetFlag(FLAGS_points)) {
    auto p = ParseSweepTag(tag);
    if (!p.ok()) return Fail(std::string(p.status().message()));
    points.push_back(*p);
  }
  if (points.empty()) {
    for (const PoolKind kind : kinds) {
      for (const uint32_t t : *ts) {
        for (const uint32_t f : *fs) points.push_back({kind, t, f});
      }
    }
  }
  std::vector<Row> rows;
  std::vector<v1::ModelSpec> specs;
  for (const SweepPoint& point : points) {
    Row row;
    row.point = point;
    row.tag = SweepTag(row.point);
    auto spec = SweepVariant(*base, layers, row.point);
    if (!spec.ok()) return Fail(std::string(spec.status().message()));
    spec->set_name(absl::StrCat(base->name(), "-", row.tag));
    spec->set_description(absl::StrCat("wavepool sweep point ", row.tag, " of ", base->name(),
                                       ": ", base->description()));
    if (auto d = nn::Describe(*spec); d.ok()) {
      FillDescription(*d, &row);
    } else {
      row.invalid = std::string(d.status().message());
    }
    rows.push_back(row);
    specs.push_back(*spec);
  }
  std::error_code ec;
  std::filesystem::create_directories(out, ec);
  if (ec) return Fail(absl::StrCat("cannot create ", out, ": ", ec.message()));
  const size_t valid = static_cast<size_t>(
      std::count_if(rows.begin(), rows.end(), [](const Row& r) { return r.invalid.empty(); }));
  std::printf("sweep: %zu points (%zu valid), %d epochs each, into %s\n", rows.size(), valid,
              epochs, out.c_str());
  std::ofstream jsonl(out + "/sweep.jsonl");
  for (size_t i = 0; i < rows.size(); ++i) {
    Row& row = rows[i];
    if (row.invalid.empty()) {
      const std::string dir = out + "/" + row.tag;
      row.reused = Reusable(dir, epochs, &row.accuracy);
      std::printf("\n== %s (%zu/%zu): %.1f MFLOPs, receptive field %.0f ms x %.0f bands%s\n",
                  row.tag.c_str(), i + 1, rows.size(), row.mflops, row.rf_ms, row.rf_bands,
                  row.reused ? ", reusing the trained model" : "");
      std::fflush(stdout);
      if (!row.reused) {
        auto result = TrainDigitModel(common, specs[i], *data, data_dir, dir);
        if (!result.ok()) {
          return Fail(absl::StrCat(row.tag, ": ", result.status().message()));
        }
        row.accuracy = result->test_accuracy;
      }
      auto model = nn::Model::Load(dir);
      if (!model.ok()) return Fail(std::string(model.status().message()));
      row.latency_ms = MedianLatencyMs(**model, latency_runs);
      if (!data->test.empty()) {
        auto shifts = EvalDigitShifts(**model, data->test, shift_options);
        if (!shifts.ok()) return Fail(absl::StrCat(row.tag, ": ", shifts.status().message()));
        row.consistency = shifts->mean_consistency;
        double change = 0;
        for (const double c : shifts->score_change) change += c;
        row.score_change = change / static_cast<double>(shifts->score_change.size());
        std::printf("%s: shift consistency %.2f%% over shifts %d..%d samples\n", row.tag.c_str(),
                    100 * row.consistency, shift_options.shifts.front(),
                    shift_options.shifts.back());
      }
    } else {
      std::printf("\n== %s: skipped: %s\n", row.tag.c_str(), row.invalid.c_str());
    }
    jsonl << Json(row) << "\n";
    jsonl.flush();
  }
  const std::string table = Table(rows);
  std::printf("\n%s", table.c_str());
  std::ofstream(out + "/sweep.md") << table;
  std::ofstream svg(out + "/sweep.svg");
  svg << Plot(rows, absl::StrCat("wavepool sweep: ", base->name(), ", ", epochs,
                                 " epochs per model, split ", absl::GetFlag(FLAGS_split)));
  if (!svg) return Fail(absl::StrCat("cannot write ", out, "/sweep.svg"));
  std::printf("wrote %s/sweep.jsonl, sweep.md, sweep.svg\n", out.c_str());
  return 0;
}

}  // namespace wavepool::cli
