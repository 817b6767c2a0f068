// The request sequence of a StreamClassify call: config and chunk messages in
// any order and with any content, driven through server::Session the way the
// stream reactor (server/classifier_service.cc, StreamReactor) drives it, with
// no network.
//
// Once per process: a model repository in a scratch folder with the committed
// models untrained-digits/1 and ecg-beats/1, 2, 5 (beat windows) and the small
// test model small/1 (seeded weights), opened with ModelRepository::Open; and
// two real signals (tests/data/demo_digits.wav, MIT-BIH 208's MLII lead).
//
// Input: a sequence of operations read with FuzzedDataProvider, each one
// message or client action: a StreamConfig with fuzzed fields (model, version,
// rate, channels, encoding, top_k, adc_gain, baseline), the same aimed at a
// served model's own rate, a SampleChunk with raw pcm bytes, with values
// (plain or any float bits), with both or neither, a request that sets
// neither, serialized request bytes straight from the input (as gRPC would
// deserialize them; bytes that do not parse end the call), a slice of a real
// or synthetic signal encoded for the current config, a half-close, or nothing
// more (the client vanishes).
//
// Each message is handled as StreamReactor::Handle does (config once and
// first, samples through Session::Accept), then Drive: stage, score inline (the
// server without a batcher), emit; a half-close ends the input and flushes.
// Checked on every result: window indexes consecutive from 0, top_k labels of
// the model in descending score order with softmax scores in [0, 1], sample
// spans ordered, beat fields only for beat models, events with a model label;
// the summary counts every window, event and accepted sample. A call that ends
// with its summary is replayed in a new session with its accepted chunks
// merged and re-split: every window and event must be identical (the
// chunking-invariance the server promises), ready_sample aside.
#include <fuzzer/FuzzedDataProvider.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <numbers>
#include <optional>

#include "absl/strings/str_cat.h"
#include "dsp/wav.h"
#include "dsp/wfdb.h"
#include "fuzz/fuzz_util.h"
#include "tests/small_spec.h"
#include "google/protobuf/stubs/logging.h"
#include "google/protobuf/util/message_differencer.h"
#include "nn/safetensors.h"
#include "nn/spec.h"
#include "server/model_repository.h"
#include "server/session.h"
#include "server/wavepool_server.h"

namespace wavepool::fuzz {
namespace {

using server::Session;

// Caps that keep one input's work to well under a second.
constexpr size_t kMaxPcmBytes = 4096;
constexpr size_t kMaxValues = 2048;
constexpr size_t kMaxRawMessageBytes = 1024;
constexpr size_t kMaxSignalFrames = size_t{1} << 16;  // client rate
constexpr double kMaxSignalModelSamples = 1 << 16;    // after resampling

struct World {
  ScratchDir scratch;
  std::unique_ptr<server::ModelRepository> repository;
  server::SessionLimits limits;  // the server's defaults (ServerOptions, StreamLimits)
  std::vector<float> speech;     // demo_digits.wav, 8 kHz, full scale 1
  std::vector<float> ecg_mv;     // MIT-BIH 208 MLII, 360 Hz, millivolts
};

void CopyModel(const std::filesystem::path& repo, const std::string& name, int version) {
  const std::filesystem::path from = SourceDir() / "models" / name / std::to_string(version);
  const std::filesystem::path to = repo / name / std::to_string(version);
  std::filesystem::create_directories(to);
  for (const char* file : {"spec.json", "weights.safetensors"}) {
    std::filesystem::copy_file(from / file, to / file);
  }
}

void WriteSmallModel(const std::filesystem::path& repo) {
  absl::StatusOr<nn::ModelSpec> spec = nn::ParseSpecJson(testing::SmallSpecJson("small", 1));
  if (!spec.ok()) Fail(spec.status().ToString());
  absl::StatusOr<nn::TensorMap> weights = nn::InitWeights(*spec, 11);
  if (!weights.ok()) Fail(weights.status().ToString());
  const std::filesystem::path dir = repo / "small" / "1";
  std::filesystem::create_directories(dir);
  nn::Safetensors st;
  st.tensors = *std::move(weights);
  if (!WriteFile(dir / "spec.json", nn::SpecToJson(*spec)) ||
      !WriteFile(dir / "weights.safetensors", nn::SerializeSafetensors(st))) {
    Fail("cannot write the small model");
  }
}

World& TheWorld() {
  // Destroyed at exit, which removes the scratch folder.
  static const std::unique_ptr<World> world = [] {
    auto w = std::make_unique<World>();
    const std::filesystem::path repo = w->scratch.path() / "models";
    CopyModel(repo, "untrained-digits", 1);
    CopyModel(repo, "ecg-beats", 1);
    CopyModel(repo, "ecg-beats", 2);
    CopyModel(repo, "ecg-beats", 5);  // aligned beats, irregularity channel, an ensemble
    WriteSmallModel(repo);
    absl::StatusOr<std::unique_ptr<server::ModelRepository>> r =
        server::ModelRepository::Open(repo.string());
    if (!r.ok()) Fail(r.status().ToString());
    w->repository = *std::move(r);
    for (const server::LoadError& e : w->repository->load_errors()) {
      Fail(absl::StrCat(e.dir, ": ", e.status.ToString()));
    }
    const server::ServerOptions defaults;
    w->limits = defaults.limits;
    w->limits.max_chunk_samples = defaults.stream_limits.max_chunk_samples;

    absl::StatusOr<dsp::Audio> audio =
        dsp::ReadAudio((SourceDir() / "tests/data/demo_digits.wav").string());
    if (!audio.ok()) Fail(audio.status().ToString());
    w->speech = dsp::Downmix(*audio);
    absl::StatusOr<dsp::WfdbRecord> record =
        dsp::ReadWfdbRecord((SourceDir() / "tests/data/mitdb/208").string());
    if (!record.ok()) Fail(record.status().ToString());
    w->ecg_mv = record->Physical(record->SignalNamed("MLII"));
    return w;
  }();
  return *world;
}

uint64_t FramesOf(const v1::SampleChunk& chunk, const v1::StreamConfig& config) {
  const uint64_t channels = config.has_channels() ? config.channels() : 1;
  if (chunk.values_size() > 0) return static_cast<uint64_t>(chunk.values_size()) / channels;
  return chunk.pcm().size() / ((config.encoding() == v1::INT16 ? 2 : 4) * channels);
}

// What a call sent back, and how it ended.
struct Outcome {
  std::vector<v1::WindowResult> windows;
  std::vector<v1::Event> events;
  std::optional<v1::StreamSummary> summary;
  absl::Status status;  // OK with a summary, else why the call failed
};

// One StreamClassify call, handled as StreamReactor handles it.
class Call {
 public:
  bool open() const { return open_; }
  const Outcome& outcome() const { return outcome_; }
  const v1::StreamConfig& config() const { return config_; }
  const std::vector<v1::SampleChunk>& accepted() const { return accepted_; }
  // The config in force, for encoding generated signals (mono FLOAT32 before one).
  bool has_session() const { return session_ != nullptr; }

  // A message arrived (OnReadDone(true)).
  void Read(const v1::StreamClassifyRequest& request) {
    if (!open_) return;
    const absl::Status status = Handle(request);
    if (!status.ok()) return End(status);
    Next();
  }
  // The client half-closed (OnReadDone(false), not cancelled: EndOfInput).
  void HalfClose() {
    if (!open_) return;
    if (!session_) {
      return End(absl::InvalidArgumentError("the stream ended before a StreamConfig"));
    }
    session_->EndInput();
    Next();
    Require(!open_, "a half-closed stream did not end");
  }
  // The client vanished, or gRPC could not deserialize a message.
  void Cancel() {
    if (open_) End(absl::CancelledError("cancelled"));
  }

 private:
  absl::Status Handle(const v1::StreamClassifyRequest& request) {
    switch (request.kind_case()) {
      case v1::StreamClassifyRequest::kConfig: {
        if (session_) return absl::InvalidArgumentError("a second StreamConfig arrived");
        const v1::StreamConfig& config = request.config();
        if (config.model().empty())
          return absl::InvalidArgumentError("StreamConfig.model is empty");
        World& world = TheWorld();
        absl::StatusOr<std::shared_ptr<const server::LoadedModel>> model =
            world.repository->Find(config.model(), config.version());
        if (!model.ok()) return model.status();
        absl::StatusOr<std::unique_ptr<Session>> session =
            Session::Create(config, *model, world.limits);
        if (!session.ok()) return session.status();
        session_ = *std::move(session);
        config_ = config;
        model_ = *model;
        return absl::OkStatus();
      }
      case v1::StreamClassifyRequest::kSamples: {
        if (!session_) return absl::InvalidArgumentError("samples arrived before the StreamConfig");
        const uint64_t before = session_->samples_received();
        absl::Status s = session_->Accept(request.samples());
        if (s.ok()) {
          accepted_.push_back(request.samples());
          frames_accepted_ += FramesOf(request.samples(), config_);
        }
        Require(session_->samples_received() == before, "Accept staged samples");
        return s;
      }
      default:
        return absl::InvalidArgumentError("a request that sets neither config nor samples");
    }
  }

  // StreamReactor::Next with SessionDriver::Drive, scoring inline.
  void Next() {
    if (!session_) return;
    for (;;) {
      while (session_->pending() == 0 && session_->Stage()) {
      }
      if (session_->pending() == 0) break;
      session_->ScoreInline();
      auto window = [this](v1::WindowResult&& w) { OnWindow(std::move(w)); };
      auto event = [this](v1::Event&& e) { OnEvent(std::move(e)); };
      session_->Emit(server::SessionOutput{window, event});
      Require(session_->pending() == 0, "Emit left windows pending");
    }
    if (session_->done()) {
      const v1::StreamSummary summary = session_->Summary(0);
      Require(summary.windows() == outcome_.windows.size(),
              "summary.windows differs from windows sent");
      Require(summary.events() == outcome_.events.size(),
              "summary.events differs from events sent");
      Require(summary.samples_received() == frames_accepted_,
              absl::StrCat("summary.samples_received ", summary.samples_received(),
                           " differs from the ", frames_accepted_, " accepted"));
      outcome_.summary = summary;
      End(absl::OkStatus());
    }
  }

  void OnWindow(v1::WindowResult&& w) {
    const nn::ModelSpec& spec = model_->model->spec();
    const std::string where = absl::StrCat("window ", outcome_.windows.size(), ": ");
    Require(w.index() == outcome_.windows.size(), where + "index not consecutive from 0");
    const uint32_t want_top = std::min<uint32_t>(config_.has_top_k() ? config_.top_k() : 1,
                                                 static_cast<uint32_t>(spec.labels_size()));
    Require(static_cast<uint32_t>(w.top_size()) == want_top, where + "top has the wrong size");
    for (int i = 0; i < w.top_size(); ++i) {
      const v1::Label& l = w.top(i);
      Require(
          std::find(spec.labels().begin(), spec.labels().end(), l.label()) != spec.labels().end(),
          where + "a label the model does not have");
      Require(l.score() >= 0 && l.score() <= 1,
              absl::StrCat(where, "score ", l.score(), " of '", l.label(), "' outside [0, 1]"));
      if (i > 0) Require(w.top(i - 1).score() >= l.score(), where + "top not in descending order");
      for (int j = 0; j < i; ++j) Require(w.top(j).label() != l.label(), where + "a label twice");
    }
    Require(
        w.start_sample() <= w.end_sample(),
        absl::StrCat(where, "start_sample ", w.start_sample(), " > end_sample ", w.end_sample()));
    Require(w.end_sample() <= session_->samples_received(),
            absl::StrCat(where, "end_sample ", w.end_sample(), " beyond the ",
                         session_->samples_received(), " samples received"));
    Require(w.has_beat_sample() == model_->beat_windows, where + "beat fields on the wrong kind");
    if (w.has_beat_sample()) {
      Require(w.rr_prev_s() >= 0 && w.rr_next_s() >= 0, where + "negative RR interval");
    }
    outcome_.windows.push_back(std::move(w));
  }

  void OnEvent(v1::Event&& e) {
    const nn::ModelSpec& spec = model_->model->spec();
    Require(std::find(spec.labels().begin(), spec.labels().end(), e.label()) != spec.labels().end(),
            "an event with a label the model does not have");
    Require(e.start_sample() <= e.end_sample(), "an event ends before it starts");
    Require(e.score() >= 0 && e.score() <= 1, "an event score outside [0, 1]");
    outcome_.events.push_back(std::move(e));
  }

  void End(const absl::Status& status) {
    open_ = false;
    outcome_.status = status;
  }

  bool open_ = true;
  std::unique_ptr<Session> session_;
  std::shared_ptr<const server::LoadedModel> model_;
  v1::StreamConfig config_;
  std::vector<v1::SampleChunk> accepted_;
  uint64_t frames_accepted_ = 0;
  Outcome outcome_;
};

// ---- building messages from the input ----

const char* const kModels[] = {"small", "untrained-digits", "ecg-beats", "", "digits", "small "};
const double kRates[] = {8000,  16000, 44100, 48000,  360,    250, 500,      1000,
                         11025, 22050, 50,    768000, 8000.5, 100, 7999.999, 32000};

v1::StreamConfig FuzzedConfig(FuzzedDataProvider& in) {
  v1::StreamConfig c;
  const size_t m = in.ConsumeIntegralInRange<size_t>(0, std::size(kModels));
  c.set_model(m < std::size(kModels) ? kModels[m] : in.ConsumeRandomLengthString(32));
  c.set_version(in.ConsumeIntegralInRange<int64_t>(-1, 6));
  switch (in.ConsumeIntegralInRange(0, 2)) {
    case 0:
      c.set_sample_rate_hz(in.PickValueInArray(kRates));
      break;
    case 1:
      c.set_sample_rate_hz(in.ConsumeFloatingPointInRange<double>(40, 800000));
      break;
    default:
      c.set_sample_rate_hz(in.ConsumeFloatingPoint<double>());
      break;
  }
  if (in.ConsumeBool()) c.set_channels(in.ConsumeIntegralInRange<uint32_t>(0, 40));
  c.set_encoding(static_cast<v1::Encoding>(in.ConsumeIntegralInRange(0, 3)));
  if (in.ConsumeBool()) c.set_top_k(in.ConsumeIntegralInRange<uint32_t>(0, 12));
  switch (in.ConsumeIntegralInRange(0, 3)) {
    case 0:
      break;
    case 1:
      c.set_adc_gain(200);
      c.set_baseline(1024);
      break;
    default:
      c.set_adc_gain(in.ConsumeFloatingPoint<double>());
      c.set_baseline(in.ConsumeFloatingPoint<double>());
      break;
  }
  return c;
}

// A config a served model accepts: its own rate, a valid encoding.
v1::StreamConfig ServedConfig(FuzzedDataProvider& in) {
  const std::vector<std::shared_ptr<const server::LoadedModel>> models =
      TheWorld().repository->List();
  const auto& m = models[in.ConsumeIntegralInRange<size_t>(0, models.size() - 1)];
  v1::StreamConfig c;
  c.set_model(m->name);
  c.set_version(in.ConsumeBool() ? m->version : 0);
  c.set_sample_rate_hz(m->model->spec().sample_rate_hz());
  const bool int16 = in.ConsumeBool();
  c.set_encoding(int16 ? v1::INT16 : v1::FLOAT32);
  if (int16 && m->beat_windows) {
    c.set_adc_gain(200);
    c.set_baseline(1024);
  }
  if (in.ConsumeBool()) c.set_channels(in.ConsumeIntegralInRange<uint32_t>(1, 3));
  if (in.ConsumeBool()) c.set_top_k(in.ConsumeIntegralInRange<uint32_t>(1, 12));
  return c;
}

float FuzzedValue(FuzzedDataProvider& in, bool any_bits) {
  if (!any_bits) return static_cast<float>(in.ConsumeIntegral<int16_t>()) / 32768.0f;
  const uint32_t bits = in.ConsumeIntegral<uint32_t>();
  float v;
  std::memcpy(&v, &bits, sizeof v);
  return v;
}

void AddValues(FuzzedDataProvider& in, v1::SampleChunk* chunk) {
  const size_t n = in.ConsumeIntegralInRange<size_t>(0, kMaxValues);
  const bool any_bits = in.ConsumeIntegralInRange(0, 7) == 0;
  for (size_t i = 0; i < n && in.remaining_bytes() > 0; ++i) {
    chunk->add_values(FuzzedValue(in, any_bits));
  }
}

void AddPcm(FuzzedDataProvider& in, v1::SampleChunk* chunk) {
  const std::vector<char> bytes =
      in.ConsumeBytes<char>(in.ConsumeIntegralInRange<size_t>(0, kMaxPcmBytes));
  chunk->set_pcm(std::string(bytes.begin(), bytes.end()));
}

// A slice of a real or synthetic signal, encoded for `config` (values or pcm,
// every channel the same sample plus a small per-channel offset).
v1::SampleChunk SignalChunk(FuzzedDataProvider& in, const v1::StreamConfig& config) {
  const World& world = TheWorld();
  const double rate = std::isfinite(config.sample_rate_hz()) && config.sample_rate_hz() > 0
                          ? config.sample_rate_hz()
                          : 8000;
  // Cap the frames so that, resampled to a model rate of up to 8 kHz, the
  // slice stays within kMaxSignalModelSamples.
  const size_t cap = static_cast<size_t>(std::clamp(kMaxSignalModelSamples * rate / 8000.0, 1.0,
                                                    static_cast<double>(kMaxSignalFrames)));
  const size_t frames = in.ConsumeIntegralInRange<size_t>(0, cap);
  const int source = in.ConsumeIntegralInRange(0, 3);
  const size_t offset = in.ConsumeIntegral<uint32_t>();
  const float gain = in.ConsumeFloatingPointInRange<float>(0.0f, 4.0f);
  const uint32_t channels = config.has_channels() ? std::max<uint32_t>(1, config.channels()) : 1;
  std::vector<float> x(frames);
  for (size_t i = 0; i < frames; ++i) {
    switch (source) {
      case 0:
        x[i] = world.speech[(offset + i) % world.speech.size()];
        break;
      case 1:
        x[i] = world.ecg_mv[(offset + i) % world.ecg_mv.size()];
        break;
      case 2:
        x[i] = static_cast<float>(
            std::sin(2 * std::numbers::pi * 440.0 * static_cast<double>(i) / rate));
        break;
      default: {
        // A cheap fixed pseudo-random sequence (xorshift) seeded by the offset.
        uint32_t s = static_cast<uint32_t>(offset + i) * 2654435761u + 1;
        s ^= s << 13;
        s ^= s >> 17;
        s ^= s << 5;
        x[i] = static_cast<float>(s) / 4294967296.0f - 0.5f;
      }
    }
    x[i] *= gain;
  }
  v1::SampleChunk chunk;
  const bool as_values = in.ConsumeBool();
  if (as_values) {
    for (float v : x) {
      for (uint32_t c = 0; c < channels; ++c) chunk.add_values(v + 1e-3f * static_cast<float>(c));
    }
    return chunk;
  }
  std::string& pcm = *chunk.mutable_pcm();
  const double adc_gain = config.adc_gain() > 0 ? config.adc_gain() : 32768.0;
  const double baseline = config.adc_gain() > 0 ? config.baseline() : 0.0;
  for (float v : x) {
    for (uint32_t c = 0; c < channels; ++c) {
      const float s = v + 1e-3f * static_cast<float>(c);
      if (config.encoding() == v1::INT16) {
        const double q = std::nearbyint(s * adc_gain + baseline);
        const auto i16 =
            static_cast<int16_t>(std::clamp(std::isfinite(q) ? q : 0.0, -32768.0, 32767.0));
        const auto u = static_cast<uint16_t>(i16);
        pcm.push_back(static_cast<char>(u & 0xff));
        pcm.push_back(static_cast<char>(u >> 8));
      } else {
        uint32_t bits;
        std::memcpy(&bits, &s, sizeof bits);
        for (int b = 0; b < 4; ++b) pcm.push_back(static_cast<char>((bits >> (8 * b)) & 0xff));
      }
    }
  }
  return chunk;
}

// ---- the chunking-invariance replay ----

bool SameWindow(v1::WindowResult a, v1::WindowResult b) {
  a.clear_ready_sample();
  b.clear_ready_sample();
  // Scores compared by bits: the same input must give the same computation.
  return a.SerializeAsString() == b.SerializeAsString();
}

// The accepted chunks with runs of one kind merged, then cut every
// `piece` frames: a different chunking of the same samples.
std::vector<v1::SampleChunk> Rechunk(const std::vector<v1::SampleChunk>& chunks,
                                     const v1::StreamConfig& config, size_t piece_frames) {
  const size_t channels = config.has_channels() ? config.channels() : 1;
  const size_t frame_bytes = (config.encoding() == v1::INT16 ? 2 : 4) * channels;
  std::vector<v1::SampleChunk> runs;
  for (const v1::SampleChunk& c : chunks) {
    const bool values = c.values_size() > 0;
    if (runs.empty() || (runs.back().values_size() > 0) != values) {
      runs.push_back(c);
    } else if (values) {
      runs.back().mutable_values()->Add(c.values().begin(), c.values().end());
    } else {
      runs.back().mutable_pcm()->append(c.pcm());
    }
  }
  std::vector<v1::SampleChunk> out;
  for (const v1::SampleChunk& r : runs) {
    if (r.values_size() > 0) {
      const size_t step = piece_frames * channels;
      for (size_t at = 0; at < static_cast<size_t>(r.values_size()); at += step) {
        const size_t end = std::min(at + step, static_cast<size_t>(r.values_size()));
        out.emplace_back().mutable_values()->Add(r.values().begin() + static_cast<int>(at),
                                                 r.values().begin() + static_cast<int>(end));
      }
    } else {
      const size_t step = piece_frames * frame_bytes;
      for (size_t at = 0; at < r.pcm().size(); at += step) {
        out.emplace_back().set_pcm(r.pcm().substr(at, step));
      }
    }
  }
  return out;
}

void CheckReplay(const Call& call, size_t piece_frames) {
  Call replay;
  v1::StreamClassifyRequest request;
  *request.mutable_config() = call.config();
  replay.Read(request);
  for (const v1::SampleChunk& c : Rechunk(call.accepted(), call.config(), piece_frames)) {
    *request.mutable_samples() = c;
    replay.Read(request);
    Require(replay.open(), absl::StrCat("the replay refused a re-chunked chunk: ",
                                        replay.outcome().status.ToString()));
  }
  replay.HalfClose();
  const Outcome& a = call.outcome();
  const Outcome& b = replay.outcome();
  Require(b.status.ok(), absl::StrCat("the replay failed: ", b.status.ToString()));
  Require(a.windows.size() == b.windows.size(),
          absl::StrCat("re-chunking changed the window count: ", a.windows.size(), " vs ",
                       b.windows.size()));
  for (size_t i = 0; i < a.windows.size(); ++i) {
    Require(SameWindow(a.windows[i], b.windows[i]),
            absl::StrCat("re-chunking changed window ", i, ":\n", a.windows[i].DebugString(),
                         "vs\n", b.windows[i].DebugString()));
  }
  Require(a.events.size() == b.events.size(), "re-chunking changed the event count");
  for (size_t i = 0; i < a.events.size(); ++i) {
    Require(google::protobuf::util::MessageDifferencer::Equals(a.events[i], b.events[i]),
            absl::StrCat("re-chunking changed event ", i));
  }
  Require(a.summary->samples_received() == b.summary->samples_received(),
          "re-chunking changed samples_received");
}

}  // namespace
}  // namespace wavepool::fuzz

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  // Protobuf logs every string field with invalid UTF-8 it refuses to parse;
  // refusing is the behaviour under test, the log lines are noise.
  google::protobuf::SetLogHandler(nullptr);
  (void)wavepool::fuzz::TheWorld();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace wavepool;
  using namespace wavepool::fuzz;
  FuzzedDataProvider in(data, size);
  Call call;
  while (call.open() && in.remaining_bytes() > 0) {
    v1::StreamClassifyRequest request;
    switch (in.ConsumeIntegralInRange(0, 9)) {
      case 0:
        *request.mutable_config() = FuzzedConfig(in);
        break;
      case 1:
        *request.mutable_config() = ServedConfig(in);
        break;
      case 2:
        AddPcm(in, request.mutable_samples());
        break;
      case 3:
        AddValues(in, request.mutable_samples());
        break;
      case 4:
        AddPcm(in, request.mutable_samples());
        AddValues(in, request.mutable_samples());
        break;
      case 5:
        request.mutable_samples();  // a chunk with neither pcm nor values
        break;
      case 6:
        break;  // a request with neither config nor samples
      case 7: {
        const std::vector<char> bytes =
            in.ConsumeBytes<char>(in.ConsumeIntegralInRange<size_t>(0, kMaxRawMessageBytes));
        if (!request.ParseFromArray(bytes.data(), static_cast<int>(bytes.size()))) {
          call.Cancel();  // gRPC cannot deserialize it: the call ends
          continue;
        }
        break;
      }
      case 8:
        *request.mutable_samples() =
            SignalChunk(in, call.has_session() ? call.config() : v1::StreamConfig());
        break;
      default:
        call.HalfClose();
        continue;
    }
    if (std::getenv("WAVEPOOL_FUZZ_VERBOSE") != nullptr) {
      std::fprintf(stderr, "request: %.300s\n", request.ShortDebugString().c_str());
    }
    call.Read(request);
  }
  if (call.open()) call.Cancel();  // the input ran out without a half-close: the client vanished
  if (std::getenv("WAVEPOOL_FUZZ_VERBOSE") != nullptr) {
    const Outcome& o = call.outcome();
    std::fprintf(
        stderr, "stream: model '%s' at %g Hz, %zu chunks accepted, %zu windows, %zu events, %s\n",
        call.config().model().c_str(), call.config().sample_rate_hz(), call.accepted().size(),
        o.windows.size(), o.events.size(), o.status.ToString().c_str());
  }
  if (!call.outcome().summary) return 0;
  if (!call.accepted().empty()) {
    CheckReplay(call, 1 + data[0] % 97 + (size > 1 ? data[1] : 0) * 13);
  }
  return 0;
}
