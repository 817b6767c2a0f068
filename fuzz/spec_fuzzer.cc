// Model spec JSON: the text the server reads from models/<name>/<version>/spec.json
// and `wavepool train --spec` from specs/.
//
// Every input: ParseSpecJson, and for a spec that parses the SpecToJson round
// trip (what train writes must load back unchanged), InputShape, Describe (+ its
// text table), ValidateSpec and ExpectedWeights. A spec that validates and is
// small enough to run here (at most 2^20 parameters, 2^20 values per
// activation, 20 MFLOPs per window) is then loaded the way the server loads it
// (spec.json + seeded weights.safetensors in a folder, ModelRepository::LoadVersion)
// and a short signal is streamed through a Session (cut into chunks chosen
// from the input's hash). For fixed windows the front end's streaming output is
// compared bit for bit with the whole-signal FeatureWindows (the contract in
// dsp/log_mel.h).
#include <algorithm>
#include <cmath>
#include <cstring>
#include <functional>
#include <numbers>
#include <random>

#include "absl/strings/str_cat.h"
#include "dsp/log_mel.h"
#include "fuzz/fuzz_util.h"
#include "google/protobuf/util/field_comparator.h"
#include "google/protobuf/util/message_differencer.h"
#include "nn/describe.h"
#include "nn/front_end.h"
#include "nn/safetensors.h"
#include "nn/spec.h"
#include "server/model_repository.h"
#include "server/session.h"

namespace wavepool::fuzz {
namespace {

constexpr uint64_t kMaxParameters = uint64_t{1} << 20;
constexpr uint64_t kMaxActivation = uint64_t{1} << 20;
constexpr double kMaxMflops = 20;
constexpr size_t kMaxWindowSamples = size_t{1} << 16;
constexpr uint32_t kMaxFftSize = 1u << 14;

ScratchDir& Scratch() {
  static ScratchDir dir;
  return dir;
}

// Small enough to load and run within a fuzz iteration.
bool SmallEnough(const nn::ModelSpec& spec, const v1::ModelDescription& d) {
  if (d.total_parameters() > kMaxParameters) return false;
  if (!(d.total_mflops() + d.front_end_mflops() <= kMaxMflops)) return false;
  for (const v1::LayerDescription& l : d.layers()) {
    uint64_t values = 1;
    for (uint32_t n : l.output_shape()) values *= n;  // each <= 2^26 after validation
    if (values > kMaxActivation) return false;
  }
  if (spec.kind() == v1::BEAT_WINDOWS) return true;
  return spec.windowing().length_samples() <= kMaxWindowSamples &&
         spec.front_end().stft().fft_size() <= kMaxFftSize;
}

// Chunk sizes from 1 to about two hops, from a generator seeded by the input.
std::vector<size_t> Chunks(size_t total, size_t typical, std::mt19937_64& rng) {
  std::vector<size_t> out;
  std::uniform_int_distribution<size_t> size(1, std::max<size_t>(1, 2 * typical));
  for (size_t done = 0; done < total;) {
    const size_t n = std::min(total - done, size(rng));
    out.push_back(n);
    done += n;
  }
  return out;
}

// A test signal: two tones in noise for audio, QRS-like spikes every 0.8 s for ECG.
std::vector<float> Signal(const nn::ModelSpec& spec, size_t n, std::mt19937_64& rng) {
  std::vector<float> x(n);
  std::normal_distribution<float> noise(0.0f, 0.05f);
  const double rate = spec.sample_rate_hz();
  for (size_t i = 0; i < n; ++i) {
    const double t = static_cast<double>(i) / rate;
    float v = noise(rng);
    if (spec.kind() == v1::BEAT_WINDOWS) {
      const double phase = std::fmod(t, 0.8);
      v += static_cast<float>(1.5 * std::exp(-phase * phase / (2 * 0.01 * 0.01)));
    } else {
      v += static_cast<float>(0.3 * std::sin(2 * std::numbers::pi * 0.05 * rate * t) +
                              0.2 * std::sin(2 * std::numbers::pi * 0.21 * rate * t));
    }
    x[i] = v;
  }
  return x;
}

// StreamingFeatures under `chunks` equals FeatureWindows on the whole signal.
void CheckStreamingFeatures(const dsp::FeatureWindowOptions& options,
                            const std::vector<float>& signal, const std::vector<size_t>& chunks) {
  bool padded_last = false;
  absl::StatusOr<std::vector<std::vector<float>>> want =
      dsp::FeatureWindows(options, signal, &padded_last);
  Require(want.ok(), absl::StrCat("FeatureWindows failed on a validated front end: ",
                                  want.status().ToString()));
  absl::StatusOr<dsp::StreamingFeatures> stream = dsp::StreamingFeatures::Create(options);
  Require(stream.ok(), absl::StrCat("StreamingFeatures::Create failed on a validated front end: ",
                                    stream.status().ToString()));
  size_t got = 0;
  auto on_window = [&](uint64_t index, std::span<const float> features) {
    Require(index == got, "streaming window indexes are not consecutive from 0");
    Require(got < want->size(), "streaming made more windows than FeatureWindows");
    const std::vector<float>& w = (*want)[got];
    Require(features.size() == w.size() &&
                std::memcmp(features.data(), w.data(), w.size() * sizeof(float)) == 0,
            absl::StrCat("streaming window ", index, " differs from FeatureWindows"));
    ++got;
  };
  size_t at = 0;
  for (size_t n : chunks) {
    stream->Push(std::span<const float>(signal.data() + at, n), on_window);
    at += n;
  }
  const bool padded = stream->Finish(on_window);
  Require(got == want->size(), "streaming made fewer windows than FeatureWindows");
  Require(padded == padded_last, "streaming and FeatureWindows disagree on the padded window");
}

// Loads the spec as the server does: a version folder with spec.json (the
// fuzz input itself) and seeded weights.
void LoadAndServe(std::string_view json, const nn::ModelSpec& spec) {
  absl::StatusOr<nn::TensorMap> weights = nn::InitWeights(spec, 7);
  Require(weights.ok(),
          absl::StrCat("InitWeights failed on a validated spec: ", weights.status().ToString()));
  const std::filesystem::path dir = Scratch().path() / "model";
  std::filesystem::create_directories(dir);
  nn::Safetensors st;
  st.tensors = *std::move(weights);
  if (!WriteFile(dir / "spec.json", json)) Fail("cannot write spec.json to the scratch folder");
  if (!WriteFile(dir / "weights.safetensors", nn::SerializeSafetensors(st))) {
    Fail("cannot write weights.safetensors to the scratch folder");
  }
  absl::StatusOr<std::shared_ptr<server::LoadedModel>> loaded =
      server::ModelRepository::LoadVersion(dir.string(), spec.name(), spec.version());
  // A front end whose window size differs from the network's input, for
  // example, is refused here with a message; that is the contract.
  if (!loaded.ok()) return;

  std::mt19937_64 rng(std::hash<std::string_view>()(json));
  const double rate = spec.sample_rate_hz();
  size_t n = 0, typical = 0;
  if (spec.kind() == v1::BEAT_WINDOWS) {
    n = static_cast<size_t>(4 * rate);
    typical = static_cast<size_t>(rate / 4) + 1;
  } else {
    n = 2 * spec.windowing().length_samples() + spec.windowing().hop_samples() + 17;
    typical = spec.windowing().hop_samples();
  }
  const std::vector<float> signal = Signal(spec, n, rng);
  const std::vector<size_t> chunks = Chunks(n, typical, rng);
  if (spec.kind() != v1::BEAT_WINDOWS) CheckStreamingFeatures((*loaded)->features, signal, chunks);

  v1::StreamConfig config;
  config.set_model(spec.name());
  config.set_sample_rate_hz(rate);
  config.set_top_k(3);
  absl::StatusOr<std::unique_ptr<server::Session>> session =
      server::Session::Create(config, *loaded);
  Require(session.ok(), absl::StrCat("Session::Create failed for a loaded model at its own rate: ",
                                     session.status().ToString()));
  uint64_t windows = 0;
  auto on_window = [&](v1::WindowResult&& w) {
    Require(w.index() == windows, "window indexes are not consecutive from 0");
    ++windows;
  };
  auto on_event = [](v1::Event&&) {};
  const server::SessionOutput out{on_window, on_event};
  size_t at = 0;
  for (size_t c : chunks) {
    v1::SampleChunk chunk;
    chunk.mutable_values()->Add(signal.begin() + static_cast<ptrdiff_t>(at),
                                signal.begin() + static_cast<ptrdiff_t>(at + c));
    at += c;
    const absl::Status s = (*session)->Push(chunk, out);
    Require(s.ok(), absl::StrCat("Push of finite values failed: ", s.ToString()));
  }
  absl::StatusOr<v1::StreamSummary> summary = (*session)->Finish(out, 0);
  Require(summary.ok(), absl::StrCat("Finish failed: ", summary.status().ToString()));
  Require(summary->windows() == windows,
          "the summary's window count differs from the windows sent");
  Require(summary->samples_received() == n, "the summary's sample count differs from the input");
}

}  // namespace
}  // namespace wavepool::fuzz

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace wavepool;
  using fuzz::Require;
  const std::string_view json(reinterpret_cast<const char*>(data), size);
  absl::StatusOr<nn::ModelSpec> spec = nn::ParseSpecJson(json);
  if (!spec.ok()) return 0;

  absl::StatusOr<nn::ModelSpec> again = nn::ParseSpecJson(nn::SpecToJson(*spec));
  Require(again.ok(),
          absl::StrCat("SpecToJson output does not parse: ", again.status().ToString()));
  google::protobuf::util::DefaultFieldComparator nan_equal;
  nan_equal.set_treat_nan_as_equal(true);
  google::protobuf::util::MessageDifferencer differ;
  differ.set_field_comparator(&nan_equal);
  Require(differ.Compare(*spec, *again), "SpecToJson + ParseSpecJson changed the spec");

  (void)nn::InputShape(*spec);
  absl::StatusOr<v1::ModelDescription> description = nn::Describe(*spec);
  if (description.ok()) (void)nn::FormatDescription(*spec, *description);
  absl::StatusOr<std::vector<nn::Shape>> shapes = nn::ValidateSpec(*spec);
  if (!shapes.ok()) return 0;
  Require(description.ok(),
          absl::StrCat("Describe failed on a validated spec: ", description.status().ToString()));
  Require(static_cast<size_t>(description->layers_size()) == shapes->size(),
          "Describe and ValidateSpec disagree on the number of layers");
  absl::StatusOr<std::map<std::string, std::vector<int64_t>>> expected = nn::ExpectedWeights(*spec);
  Require(expected.ok(), absl::StrCat("ExpectedWeights failed on a validated spec: ",
                                      expected.status().ToString()));
  if (fuzz::SmallEnough(*spec, *description)) fuzz::LoadAndServe(json, *spec);
  return 0;
}
