// wavepool bench: flags, the model and input, one run per stream count, and
// the report (table, JSON lines, SVG). The streams themselves: bench_run.h.
#include "clients/bench_command.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "clients/bench_run.h"
#include "clients/bench_stats.h"
#include "clients/flags.h"
#include "clients/svg_plot.h"
#include "grpcpp/client_context.h"
#include "wavepool/v1/classifier.grpc.pb.h"

ABSL_FLAG(int, streams, 1, "bench: concurrent StreamClassify streams");
ABSL_FLAG(double, duration_s, 10, "bench: seconds measured per run, after --warmup-s");
ABSL_FLAG(double, warmup_s, 1, "bench: seconds at the start of each run left out of the figures");
ABSL_FLAG(std::string, input, "",
          "bench: signal file, WAV or WFDB .hea (default by model kind: "
          "tests/data/demo_digits.wav or tests/data/mitdb/208.hea)");
ABSL_FLAG(std::vector<std::string>, sweep, {},
          "bench: stream counts to run in turn, e.g. 1,10,50,100 (instead of --streams)");
ABSL_FLAG(std::string, plot, "", "bench: write an SVG of latency and windows/s against streams");
ABSL_FLAG(int, server_pid, 0, "bench: the server's process id, to report its CPU from /proc");
ABSL_FLAG(double, max_lead_s, 0,
          "bench without --realtime: seconds of signal a stream may send beyond its last "
          "window's end (0 = max(2, 2 x the model's window_s); negative = no limit but HTTP/2's)");
ABSL_FLAG(int64_t, chunks, 0,
          "bench: every stream sends exactly this many --chunk-ms chunks, then half-closes "
          "(0 = realtime: warm-up + duration's worth; otherwise until the interval ends)");
ABSL_FLAG(double, faulty_share, 0,
          "bench: share of streams (0-1) that misbehave, each in one way: vanish, cancel, "
          "deadline, stall, one_sample, silent (docs/bench.md); the rest are checked for "
          "every window exactly once and in order");
ABSL_FLAG(uint64_t, faulty_seed, 1, "bench: seed of which streams are faulty and how");
ABSL_FLAG(int, streams_per_channel, 100,
          "bench: streams per gRPC channel (see docs/bench.md on channels and connections)");

namespace wavepool::cli {
namespace {

// The default signal for a model kind, looked up from the working directory,
// then from the source tree two levels above the binary (build/clients/wavepool).
std::string DefaultInput(v1::ModelKind kind) {
  const std::string rel =
      kind == v1::BEAT_WINDOWS ? "tests/data/mitdb/208.hea" : "tests/data/demo_digits.wav";
  std::error_code ec;
  if (std::filesystem::exists(rel, ec)) return rel;
  const std::filesystem::path exe = std::filesystem::read_symlink("/proc/self/exe", ec);
  if (!ec) {
    const std::filesystem::path p = exe.parent_path() / ".." / ".." / rel;
    if (std::filesystem::exists(p, ec)) return p.lexically_normal().string();
  }
  return "";
}

std::string PlotSvg(const std::vector<BenchResult>& runs) {
  LinePlot plot;
  const BenchResult& r0 = runs.front();
  plot.title = absl::StrFormat("wavepool bench: %s v%d, %s, chunk %g ms, %g s per point",
                               r0.model, r0.version,
                               r0.realtime ? "realtime" : "as fast as possible", r0.chunk_ms,
                               r0.duration_s);
  plot.x_label = "concurrent streams";
  PlotSeries p50{"p50 latency", "#1f77b4", {}}, p99{"p99 latency", "#d62728", {}},
      wps{"windows/s", "#2ca02c", {}};
  std::vector<const BenchResult*> sorted;
  for (const BenchResult& r : runs) sorted.push_back(&r);
  std::sort(sorted.begin(), sorted.end(),
            [](const BenchResult* a, const BenchResult* b) { return a->streams < b->streams; });
  for (const BenchResult* r : sorted) {
    plot.x.push_back(r->streams);
    p50.y.push_back(r->p50_ms.value_or(NAN));
    p99.y.push_back(r->p99_ms.value_or(NAN));
    wps.y.push_back(r->windows_per_s());
  }
  plot.log_x = plot.x.front() > 0 && plot.x.back() / plot.x.front() >= 10;
  plot.panels.push_back({"window latency, ms", true, {p50, p99}});
  plot.panels.push_back({"windows per second", false, {wps}});
  return LinePlotSvg(plot);
}

}  // namespace

int RunBench(const CommonOptions& common, const std::vector<std::string>& args) {
  if (!args.empty()) {
    return Fail("bench takes flags only, e.g. wavepool bench --model digits --streams 10");
  }
  const std::string model = absl::GetFlag(FLAGS_model);
  if (model.empty()) return Fail("--model is required (wavepool models lists them)");
  BenchOptions opt;
  opt.duration_s = absl::GetFlag(FLAGS_duration_s);
  opt.warmup_s = absl::GetFlag(FLAGS_warmup_s);
  opt.realtime = absl::GetFlag(FLAGS_realtime);
  opt.streams_per_channel = absl::GetFlag(FLAGS_streams_per_channel);
  opt.server_pid = absl::GetFlag(FLAGS_server_pid);
  opt.max_lead_s = absl::GetFlag(FLAGS_max_lead_s);
  opt.chunks = absl::GetFlag(FLAGS_chunks);
  opt.faulty_share = absl::GetFlag(FLAGS_faulty_share);
  opt.faulty_seed = absl::GetFlag(FLAGS_faulty_seed);
  if (common.timeout_s > 0) opt.grace_s = common.timeout_s;
  const double chunk_ms = absl::GetFlag(FLAGS_chunk_ms);
  if (!(opt.duration_s > 0)) return Fail("--duration-s must be > 0");
  if (!(opt.warmup_s >= 0)) return Fail("--warmup-s must be >= 0");
  if (!(chunk_ms > 0)) return Fail("--chunk-ms must be > 0");
  if (opt.streams_per_channel < 1) return Fail("--streams-per-channel must be >= 1");
  if (opt.chunks < 0) return Fail("--chunks must be >= 0 (0 = as many as the duration takes)");
  if (!(opt.faulty_share >= 0 && opt.faulty_share <= 1)) {
    return Fail("--faulty-share must be in [0, 1] (0.1 = one stream in ten misbehaves)");
  }
  std::vector<int> counts;
  for (const std::string& s : absl::GetFlag(FLAGS_sweep)) {
    int v = 0;
    if (!absl::SimpleAtoi(s, &v) || v < 1) {
      return Fail(absl::StrCat("--sweep wants stream counts >= 1, e.g. 1,10,50; got \"", s, "\""));
    }
    counts.push_back(v);
  }
  if (counts.empty()) counts.push_back(absl::GetFlag(FLAGS_streams));
  if (counts.front() < 1) return Fail("--streams must be >= 1");
  if (opt.server_pid != 0 && !ProcessCpuSecondsOf(opt.server_pid).has_value()) {
    return Fail(absl::StrCat("cannot read /proc/", opt.server_pid, "/stat (--server-pid)"));
  }

  // The model's kind and served version, for the default input and the report.
  v1::ListModelsResponse models;
  {
    grpc::ClientContext context;
    const double timeout_s = common.timeout_s > 0 ? common.timeout_s : 10;
    context.set_deadline(std::chrono::system_clock::now() +
                         std::chrono::milliseconds(static_cast<int64_t>(1000 * timeout_s)));
    grpc::Status status = v1::Classifier::NewStub(MakeChannel(common))
                              ->ListModels(&context, v1::ListModelsRequest(), &models);
    if (!status.ok()) return ReportRpcError(common, status);
  }
  const int64_t want_version = absl::GetFlag(FLAGS_version);
  const v1::ModelInfo* info = nullptr;
  for (const v1::ModelInfo& m : models.models()) {
    if (m.name() != model) continue;
    if (want_version != 0 ? m.version() == want_version
                          : info == nullptr || m.version() > info->version()) {
      info = &m;
    }
  }
  std::string path = absl::GetFlag(FLAGS_input);
  if (path.empty()) {
    if (info != nullptr && info->kind() != v1::FIXED_WINDOWS && info->kind() != v1::BEAT_WINDOWS) {
      return Fail(absl::StrCat("model ", model, " is neither audio nor ECG: give --input FILE"));
    }
    path = DefaultInput(info != nullptr ? info->kind() : v1::FIXED_WINDOWS);
    if (path.empty()) {
      return Fail("no --input given and tests/data is not here or two levels above the binary: "
                  "give --input FILE (WAV or WFDB .hea)");
    }
  }
  BenchInput input;
  if (absl::Status s = LoadBenchInput(path, chunk_ms, &input); !s.ok()) {
    return Fail(std::string(s.message()));
  }
  input.config.set_model(model);
  input.config.set_version(want_version);
  input.config.set_top_k(absl::GetFlag(FLAGS_top_k));
  if (info != nullptr && info->kind() == v1::FIXED_WINDOWS &&
      info->sample_rate_hz() == input.rate_hz) {
    // The expected window count of a stream follows from what it sent.
    input.window_length = static_cast<uint64_t>(std::llround(info->window_s() * input.rate_hz));
    input.window_hop = static_cast<uint64_t>(std::llround(info->hop_s() * input.rate_hz));
  }

  BenchResult base;
  base.model = model;
  base.version = info != nullptr ? info->version() : want_version;
  base.kind = info != nullptr ? v1::ModelKind_Name(info->kind()) : "";
  base.input = path;
  base.realtime = opt.realtime;
  base.chunk_ms = 1000.0 * static_cast<double>(input.chunk_frames) / input.rate_hz;
  base.duration_s = opt.duration_s;
  base.warmup_s = opt.warmup_s;
  if (!opt.realtime) {
    if (opt.max_lead_s == 0) opt.max_lead_s = std::max(2.0, 2 * (info ? info->window_s() : 0));
    if (opt.max_lead_s < 0) opt.max_lead_s = 0;
    base.max_lead_s = opt.max_lead_s;
  }

  const bool json = absl::GetFlag(FLAGS_json);
  if (!json) {
    std::printf("wavepool bench: %s v%lld%s, input %s (%.0f Hz), %s, chunk %.1f ms, "
                "%g s after %g s warm-up%s\n",
                model.c_str(), static_cast<long long>(base.version),
                info == nullptr ? " (not listed by the server)" : "", path.c_str(), input.rate_hz,
                opt.realtime ? "realtime" : "as fast as possible", base.chunk_ms, opt.duration_s,
                opt.warmup_s,
                opt.chunks > 0 ? absl::StrCat(", ", opt.chunks, " chunks per stream").c_str() : "");
    std::printf("%s\n", BenchTableHeader().c_str());
    std::fflush(stdout);
  }
  std::vector<BenchResult> runs;
  bool failed = false;
  for (const int n : counts) {
    runs.push_back(RunStreams(common, opt, input, n, base));
    const BenchResult& r = runs.back();
    // Faulty streams are meant to fail; only the checked ones decide.
    failed = failed || r.healthy_failed();
    std::printf("%s\n", json ? BenchJson(r).c_str() : BenchTableRow(r).c_str());
    std::fflush(stdout);
    if (r.checked_errors > 0) {
      std::fprintf(stderr, "wavepool: bench: %llu of %d streams failed, e.g. %s\n",
                   static_cast<unsigned long long>(r.checked_errors), r.checked_streams,
                   r.first_checked_error.c_str());
    }
    if (r.windows_lost > 0 || r.windows_disordered > 0) {
      std::fprintf(stderr, "wavepool: bench: %llu windows lost, %llu out of order\n",
                   static_cast<unsigned long long>(r.windows_lost),
                   static_cast<unsigned long long>(r.windows_disordered));
    }
  }
  const std::string plot_path = absl::GetFlag(FLAGS_plot);
  if (!plot_path.empty()) {
    std::ofstream f(plot_path);
    f << PlotSvg(runs);
    if (!f.good()) return Fail(absl::StrCat("cannot write ", plot_path));
  }
  return failed ? 1 : 0;
}

}  // namespace wavepool::cli
