// A shipped model's network (and, for audio models, its streaming log-mel
// front end) timed on one thread, printed as JSON for bench/compare_peers.py,
// which runs PyTorch and ONNX Runtime on the same layers and weights. Also
// dumps raw outputs so that script can check all three compute the same thing.
//
//   build/bench/bench_models models/digits/1                  # windows/s, batch 1, 8, 64
//   build/bench/bench_models models/digits/1 --dump-logits in.f32 out.f32 --batch 8
//   build/bench/bench_models models/digits/1 --frontend       # audio s per CPU s
//   build/bench/bench_models models/digits/1 --dump-features audio.f32 features.f32
//
// Timing: a warm-up, then --repeats runs of at least --repeat-s wall seconds
// each; every run reports its rate per CPU second of this process (all
// threads: a helper thread would show up) and per wall second. The best run
// is the one least disturbed by other jobs on the machine; the median is kept
// too. OpenBLAS is held to one thread by nn/conv_gemm.cc; the JSON repeats
// what OpenBLAS says about itself so a reader can check.
#include <cblas.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <ctime>
#include <fstream>
#include <memory>
#include <random>
#include <span>
#include <string>
#include <type_traits>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"
#include "dsp/log_mel.h"
#include "nn/front_end.h"
#include "nn/model.h"
#include "util/status_macros.h"

namespace {

using wavepool::nn::Model;
using wavepool::nn::Workspace;

constexpr char kUsage[] =
    "usage: bench_models MODEL_DIR [--batches 1,8,64] [timing flags]\n"
    "       bench_models MODEL_DIR --dump-logits IN.f32 OUT.f32 [--batch B]\n"
    "       bench_models MODEL_DIR --frontend [--audio-s 10] [--chunk 80] [timing flags]\n"
    "       bench_models MODEL_DIR --dump-features IN.f32 OUT.f32 [--chunk 80]\n"
    "timing flags: --repeats 5 --repeat-s 0.3 --warmup-s 0.3\n"
    "IN/OUT files are raw little-endian float32; logits in/out are batch-major\n"
    "(windows x input_size, windows x output_size); features are the complete\n"
    "windows x window values (band-major, as the network sees them).\n";

enum class Mode { kTimeNetwork, kDumpLogits, kTimeFrontEnd, kDumpFeatures };

struct Args {
  std::string model_dir;
  Mode mode = Mode::kTimeNetwork;
  std::string in_path, out_path;
  std::vector<int> batches = {1, 8, 64};
  int dump_batch = 8;       // windows per Run() in --dump-logits
  int repeats = 5;
  double repeat_s = 0.3;    // minimum wall seconds per timed run
  double warmup_s = 0.3;
  double audio_s = 10;      // seconds of noise per front-end iteration
  size_t chunk = 80;        // samples per Push (80 = 10 ms at 8 kHz, as a client streams)
};

absl::Status Bad(absl::string_view what) {
  return absl::InvalidArgumentError(absl::StrCat(what, "\n", kUsage));
}

template <typename T>
absl::Status ParsePositive(absl::string_view flag, absl::string_view text, T* out) {
  if constexpr (std::is_floating_point_v<T>) {
    if (!absl::SimpleAtod(text, out) || !(*out > 0)) {
      return Bad(absl::StrCat(flag, " (", text, ") must be a number > 0"));
    }
  } else {
    if (!absl::SimpleAtoi(text, out) || *out <= 0) {
      return Bad(absl::StrCat(flag, " (", text, ") must be an integer > 0"));
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<Args> ParseArgs(int argc, char** argv) {
  Args a;
  std::vector<absl::string_view> v(argv + 1, argv + argc);
  for (size_t i = 0; i < v.size(); ++i) {
    const absl::string_view f = v[i];
    const auto value = [&](size_t k = 1) -> absl::StatusOr<absl::string_view> {
      if (i + k >= v.size()) return Bad(absl::StrCat(f, " needs ", k, " value(s)"));
      return v[i + k];
    };
    if (f == "--dump-logits" || f == "--dump-features") {
      ASSIGN_OR_RETURN(absl::string_view out, value(2));
      a.mode = f == "--dump-logits" ? Mode::kDumpLogits : Mode::kDumpFeatures;
      a.in_path = std::string(v[i + 1]);
      a.out_path = std::string(out);
      i += 2;
    } else if (f == "--frontend") {
      a.mode = Mode::kTimeFrontEnd;
    } else if (f == "--batches") {
      ASSIGN_OR_RETURN(absl::string_view s, value());
      a.batches.clear();
      for (absl::string_view part : absl::StrSplit(s, ',')) {
        int b = 0;
        RETURN_IF_ERROR(ParsePositive("--batches", part, &b));
        a.batches.push_back(b);
      }
      ++i;
    } else if (f == "--batch" || f == "--repeats" || f == "--chunk") {
      ASSIGN_OR_RETURN(absl::string_view s, value());
      if (f == "--chunk") {
        RETURN_IF_ERROR(ParsePositive(f, s, &a.chunk));
      } else {
        RETURN_IF_ERROR(ParsePositive(f, s, f == "--batch" ? &a.dump_batch : &a.repeats));
      }
      ++i;
    } else if (f == "--repeat-s" || f == "--warmup-s" || f == "--audio-s") {
      ASSIGN_OR_RETURN(absl::string_view s, value());
      double* target = f == "--repeat-s" ? &a.repeat_s : f == "--warmup-s" ? &a.warmup_s : &a.audio_s;
      RETURN_IF_ERROR(ParsePositive(f, s, target));
      ++i;
    } else if (!f.empty() && f[0] == '-') {
      return Bad(absl::StrCat("unknown flag ", f));
    } else if (a.model_dir.empty()) {
      a.model_dir = std::string(f);
    } else {
      return Bad(absl::StrCat("unexpected argument ", f, " (the model folder is ", a.model_dir, ")"));
    }
  }
  if (a.model_dir.empty()) return Bad("the model folder (e.g. models/digits/1) is missing");
  return a;
}

absl::StatusOr<std::vector<float>> ReadFloats(const std::string& path) {
  std::ifstream f(path, std::ios::binary | std::ios::ate);
  if (!f) return absl::NotFoundError(absl::StrCat("cannot open ", path));
  const std::streamsize bytes = f.tellg();
  if (bytes % static_cast<std::streamsize>(sizeof(float)) != 0) {
    return absl::InvalidArgumentError(
        absl::StrCat(path, " holds ", bytes, " bytes, not a whole number of float32 values"));
  }
  std::vector<float> v(static_cast<size_t>(bytes) / sizeof(float));
  f.seekg(0);
  if (!f.read(reinterpret_cast<char*>(v.data()), bytes)) {
    return absl::DataLossError(absl::StrCat("cannot read ", bytes, " bytes from ", path));
  }
  return v;
}

absl::Status WriteFloats(const std::string& path, std::span<const float> v) {
  std::ofstream f(path, std::ios::binary | std::ios::trunc);
  f.write(reinterpret_cast<const char*>(v.data()), static_cast<std::streamsize>(v.size_bytes()));
  if (!f) return absl::UnavailableError(absl::StrCat("cannot write ", v.size(), " floats to ", path));
  return absl::OkStatus();
}

double Seconds(clockid_t clock) {
  timespec t{};
  clock_gettime(clock, &t);
  return static_cast<double>(t.tv_sec) + 1e-9 * static_cast<double>(t.tv_nsec);
}

struct Run {
  int64_t iterations = 0;
  double wall_s = 0, cpu_s = 0;
};

// Calls `once` until `min_wall_s` have passed; returns what it took.
template <typename F>
Run TimeFor(double min_wall_s, F& once) {
  Run r;
  const double wall0 = Seconds(CLOCK_MONOTONIC), cpu0 = Seconds(CLOCK_PROCESS_CPUTIME_ID);
  do {
    once();
    ++r.iterations;
    r.wall_s = Seconds(CLOCK_MONOTONIC) - wall0;
  } while (r.wall_s < min_wall_s);
  r.cpu_s = Seconds(CLOCK_PROCESS_CPUTIME_ID) - cpu0;
  return r;
}

template <typename F>
std::vector<Run> Measure(const Args& a, F once) {
  TimeFor(a.warmup_s, once);
  std::vector<Run> runs;
  for (int i = 0; i < a.repeats; ++i) runs.push_back(TimeFor(a.repeat_s, once));
  return runs;
}

double Median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  return n % 2 == 1 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

// {"per_cpu_s_best": .., "per_cpu_s_median": .., "per_wall_s_best": ..,
//  "per_wall_s_median": .., "runs": [[iterations, wall_s, cpu_s], ..]}
// where a rate is units_per_iteration * iterations / seconds.
std::string RatesJson(const std::vector<Run>& runs, double units_per_iteration) {
  std::vector<double> cpu, wall;
  std::string list;
  for (const Run& r : runs) {
    const double units = units_per_iteration * static_cast<double>(r.iterations);
    cpu.push_back(units / r.cpu_s);
    wall.push_back(units / r.wall_s);
    absl::StrAppend(&list, list.empty() ? "" : ", ", "[", r.iterations, ", ", r.wall_s, ", ",
                    r.cpu_s, "]");
  }
  return absl::StrCat("{\"per_cpu_s_best\": ", *std::max_element(cpu.begin(), cpu.end()),
                      ", \"per_cpu_s_median\": ", Median(cpu),
                      ", \"per_wall_s_best\": ", *std::max_element(wall.begin(), wall.end()),
                      ", \"per_wall_s_median\": ", Median(wall), ", \"runs\": [", list, "]}");
}

std::string BlasJson() {
  return absl::StrCat("\"openblas_config\": \"", openblas_get_config(),
                      "\", \"openblas_threads\": ", openblas_get_num_threads());
}

std::string ShapeJson(const wavepool::nn::Shape& s) {
  return absl::StrCat("[", s.c, ", ", s.h, ", ", s.w, "]");
}

absl::Status TimeNetwork(const Args& a, const Model& model) {
  const int max_batch = *std::max_element(a.batches.begin(), a.batches.end());
  Workspace ws(model, max_batch);
  std::mt19937 rng(1);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::vector<float> in(static_cast<size_t>(max_batch) * model.input_size());
  for (float& v : in) v = normal(rng);
  std::vector<float> out(static_cast<size_t>(max_batch) * model.output_size());
  std::string results;
  for (int batch : a.batches) {
    auto once = [&] { model.Run(in.data(), batch, out.data(), ws); };
    const std::vector<Run> runs = Measure(a, once);
    absl::StrAppend(&results, results.empty() ? "" : ",\n  ", "{\"batch\": ", batch,
                    ", \"windows\": ", RatesJson(runs, batch), "}");
  }
  std::printf("{\"model\": \"%s\", \"dir\": \"%s\", \"input_shape\": %s, \"output_size\": %zu, %s,\n"
              " \"results\": [\n  %s]}\n",
              model.spec().name().c_str(), a.model_dir.c_str(), ShapeJson(model.input_shape()).c_str(),
              model.output_size(), BlasJson().c_str(), results.c_str());
  return absl::OkStatus();
}

absl::Status DumpLogits(const Args& a, const Model& model) {
  ASSIGN_OR_RETURN(std::vector<float> in, ReadFloats(a.in_path));
  const size_t per_window = model.input_size();
  if (in.empty() || in.size() % per_window != 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        a.in_path, " holds ", in.size(), " floats; the model's input ", ShapeJson(model.input_shape()),
        " needs a positive multiple of ", per_window));
  }
  const size_t windows = in.size() / per_window;
  Workspace ws(model, a.dump_batch);
  std::vector<float> out(windows * model.output_size());
  for (size_t w = 0; w < windows; w += static_cast<size_t>(a.dump_batch)) {
    const size_t n = std::min(windows - w, static_cast<size_t>(a.dump_batch));
    model.Run(in.data() + w * per_window, static_cast<int>(n), out.data() + w * model.output_size(), ws);
  }
  return WriteFloats(a.out_path, out);
}

absl::StatusOr<wavepool::dsp::StreamingFeatures> FrontEnd(const Model& model) {
  auto options = wavepool::nn::FeatureOptionsFromSpec(model.spec());
  if (!options.ok()) {
    return absl::FailedPreconditionError(absl::StrCat(
        "model '", model.spec().name(), "' has no usable audio front end: ", options.status().message()));
  }
  return wavepool::dsp::StreamingFeatures::Create(*options);
}

absl::Status TimeFrontEnd(const Args& a, const Model& model) {
  ASSIGN_OR_RETURN(wavepool::dsp::StreamingFeatures stream, FrontEnd(model));
  const double rate = model.spec().sample_rate_hz();
  std::mt19937 rng(1);
  std::uniform_real_distribution<float> uniform(-1.0f, 1.0f);
  std::vector<float> audio(static_cast<size_t>(a.audio_s * rate));
  for (float& v : audio) v = uniform(rng);
  double sink = 0;
  uint64_t windows = 0;
  auto on_window = [&](uint64_t, std::span<const float> f) {
    sink += f[0];
    ++windows;
  };
  // One long stream: every iteration continues it, as a client would.
  auto once = [&] {
    const std::span<const float> s(audio);
    for (size_t pos = 0; pos < s.size(); pos += a.chunk) {
      stream.Push(s.subspan(pos, std::min(a.chunk, s.size() - pos)), on_window);
    }
  };
  const std::vector<Run> runs = Measure(a, once);
  const double audio_per_iteration = static_cast<double>(audio.size()) / rate;
  const auto& o = stream.options();
  std::printf("{\"model\": \"%s\", \"sample_rate_hz\": %g, \"chunk_samples\": %zu, \"frame_length\": %zu, "
              "\"frame_hop\": %zu, \"fft_size\": %zu, \"num_bands\": %zu, \"window_length\": %zu, "
              "\"window_hop\": %zu, \"windows_emitted\": %llu, \"checksum\": %g,\n \"audio_s\": %s}\n",
              model.spec().name().c_str(), rate, a.chunk, o.log_mel.frame_length, o.log_mel.frame_hop,
              o.log_mel.fft_size, o.log_mel.num_bands, o.window_length, o.window_hop,
              static_cast<unsigned long long>(windows), sink,
              RatesJson(runs, audio_per_iteration).c_str());
  return absl::OkStatus();
}

absl::Status DumpFeatures(const Args& a, const Model& model) {
  ASSIGN_OR_RETURN(wavepool::dsp::StreamingFeatures stream, FrontEnd(model));
  ASSIGN_OR_RETURN(std::vector<float> audio, ReadFloats(a.in_path));
  std::vector<float> out;
  uint64_t expected = 0;
  bool in_order = true;
  auto on_window = [&](uint64_t index, std::span<const float> f) {
    in_order = in_order && index == expected++;
    out.insert(out.end(), f.begin(), f.end());
  };
  const std::span<const float> s(audio);
  for (size_t pos = 0; pos < s.size(); pos += a.chunk) {
    stream.Push(s.subspan(pos, std::min(a.chunk, s.size() - pos)), on_window);
  }
  if (!in_order) return absl::InternalError("the stream emitted windows out of order");
  // Complete windows only: the padded tail window (Finish) is not written.
  return WriteFloats(a.out_path, out);
}

absl::Status Main(int argc, char** argv) {
  ASSIGN_OR_RETURN(Args a, ParseArgs(argc, argv));
  ASSIGN_OR_RETURN(std::shared_ptr<const Model> model, Model::Load(a.model_dir));
  switch (a.mode) {
    case Mode::kTimeNetwork: return TimeNetwork(a, *model);
    case Mode::kDumpLogits: return DumpLogits(a, *model);
    case Mode::kTimeFrontEnd: return TimeFrontEnd(a, *model);
    case Mode::kDumpFeatures: return DumpFeatures(a, *model);
  }
  return absl::InternalError("unknown mode");
}

}  // namespace

int main(int argc, char** argv) {
  const absl::Status status = Main(argc, argv);
  if (!status.ok()) {
    std::fprintf(stderr, "bench_models: %s\n", std::string(status.ToString()).c_str());
    return 1;
  }
  return 0;
}
