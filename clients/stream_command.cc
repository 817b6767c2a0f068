// stream and classify: send a WAV file and print one line per window.
#include <chrono>
#include <cstdio>
#include <cstring>
#include <string>
#include <thread>

#include "absl/flags/flag.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "clients/cli.h"
#include "clients/flags.h"
#include "dsp/wav.h"
#include "dsp/wfdb.h"
#include "google/protobuf/util/json_util.h"
#include "grpcpp/client_context.h"
#include "wavepool/v1/classifier.grpc.pb.h"

namespace wavepool::cli {
namespace {

std::string FormatWindow(const v1::WindowResult& w) {
  if (w.has_beat_sample()) {
    std::string line = absl::StrFormat("beat %5d  R at sample %8d  rr %.3f/%.3f s", w.index(),
                                       w.beat_sample(), w.rr_prev_s(), w.rr_next_s());
    for (const v1::Label& l : w.top()) absl::StrAppendFormat(&line, "  %s %.3f", l.label(), l.score());
    return line;
  }
  std::string line = absl::StrFormat("window %4d  %8.3f s  samples [%d, %d)", w.index(),
                                     w.start_time_s(), w.start_sample(), w.end_sample());
  for (const v1::Label& l : w.top()) absl::StrAppendFormat(&line, "  %s %.3f", l.label(), l.score());
  if (w.padded()) line += "  (padded)";
  return line;
}

std::string FormatSummary(const v1::StreamSummary& s) {
  return absl::StrFormat("summary: %d windows, %d events, %d samples, %.3f s wall", s.windows(),
                         s.events(), s.samples_received(), s.wall_time_s());
}

std::string FormatEvent(const v1::Event& e, double rate) {
  return absl::StrFormat("EVENT  %-12s  %7.3f-%.3f s  samples [%d, %d)  score %.3f", e.label(),
                         e.start_sample() / rate, e.end_sample() / rate, e.start_sample(),
                         e.end_sample(), e.score());
}

std::string ToJson(const google::protobuf::Message& m) {
  std::string out;
  google::protobuf::util::JsonPrintOptions o;
  (void)google::protobuf::util::MessageToJsonString(m, &out, o);
  return out;
}

// The file, its config, and float32 little-endian bytes of the interleaved samples.
struct Input {
  dsp::Audio audio;            // WAV: samples; WFDB: rate and channels only
  std::vector<int16_t> int16;  // WFDB: the first signal's ADC values
  v1::StreamConfig config;
  size_t frames() const { return int16.empty() ? audio.frames() : int16.size(); }
  // Bytes of frames [begin, end) in the config's encoding.
  std::string Pcm(size_t begin, size_t end) const;
};

bool LoadInput(const std::vector<std::string>& args, Input* input, int* exit_code) {
  if (args.size() != 1) {
    *exit_code = Fail("give exactly one input file, e.g. wavepool stream clip.wav --model digits");
    return false;
  }
  const std::string model = absl::GetFlag(FLAGS_model);
  if (model.empty()) {
    *exit_code = Fail("--model is required (wavepool models lists them)");
    return false;
  }
  const std::string& path = args[0];
  if (path.size() > 4 && path.substr(path.size() - 4) == ".hea") {
    // A WFDB record: its first signal (MLII in MIT-BIH), sent as INT16 with the
    // header's gain and baseline, so the server sees the exact ADC values.
    absl::StatusOr<dsp::WfdbRecord> record = dsp::ReadWfdbRecord(path);
    if (!record.ok()) {
      *exit_code = Fail(std::string(record.status().message()));
      return false;
    }
    // MLII when the record has it (record 114 lists V5 first), else the first signal.
    const int lead = record->SignalNamed("MLII");
    const dsp::WfdbSignalInfo& sig = record->header.signals[static_cast<size_t>(lead)];
    input->int16 = record->Adc(lead);
    input->audio.sample_rate_hz = record->header.sampling_frequency;
    input->audio.channels = 1;
    input->config.set_encoding(v1::INT16);
    input->config.set_adc_gain(sig.adc_gain);
    input->config.set_baseline(sig.baseline);
  } else {
    absl::StatusOr<dsp::Audio> audio = dsp::ReadAudio(path);
    if (!audio.ok()) {
      *exit_code = Fail(std::string(audio.status().message()));
      return false;
    }
    input->audio = *std::move(audio);
    input->config.set_encoding(v1::FLOAT32);
  }
  input->config.set_model(model);
  input->config.set_version(absl::GetFlag(FLAGS_version));
  input->config.set_sample_rate_hz(input->audio.sample_rate_hz);
  input->config.set_channels(static_cast<uint32_t>(input->audio.channels));
  input->config.set_top_k(absl::GetFlag(FLAGS_top_k));
  return true;
}

// Little-endian float32 bytes of samples [begin, end) (interleaved values).
std::string PcmBytes(const std::vector<float>& s, size_t begin, size_t end) {
  std::string bytes(4 * (end - begin), '\0');
  for (size_t i = begin; i < end; ++i) {
    uint32_t bits;
    std::memcpy(&bits, &s[i], 4);
    for (int b = 0; b < 4; ++b) bytes[4 * (i - begin) + b] = static_cast<char>(bits >> (8 * b));
  }
  return bytes;
}

std::string Input::Pcm(size_t begin, size_t end) const {
  if (int16.empty()) {
    const size_t ch = static_cast<size_t>(audio.channels);
    return PcmBytes(audio.samples, begin * ch, end * ch);
  }
  std::string b(2 * (end - begin), '\0');
  for (size_t i = begin; i < end; ++i) {
    const auto u = static_cast<uint16_t>(int16[i]);
    b[2 * (i - begin)] = static_cast<char>(u & 0xff);
    b[2 * (i - begin) + 1] = static_cast<char>(u >> 8);
  }
  return b;
}

}  // namespace

int RunStream(const CommonOptions& common, const std::vector<std::string>& args) {
  Input input;
  int code = 0;
  if (!LoadInput(args, &input, &code)) return code;
  const bool json = absl::GetFlag(FLAGS_json);
  const bool events_only = absl::GetFlag(FLAGS_events_only);
  const bool realtime = absl::GetFlag(FLAGS_realtime);
  const double chunk_ms = absl::GetFlag(FLAGS_chunk_ms);
  if (!(chunk_ms > 0)) return Fail("--chunk-ms must be > 0");
  const size_t frames_per_chunk =
      std::max<size_t>(1, static_cast<size_t>(input.audio.sample_rate_hz * chunk_ms / 1000.0));

  auto stub = v1::Classifier::NewStub(MakeChannel(common));
  grpc::ClientContext context;
  SetDeadline(common, &context);
  auto stream = stub->StreamClassify(&context);

  std::thread writer([&] {
    v1::StreamClassifyRequest req;
    *req.mutable_config() = input.config;
    if (!stream->Write(req)) return;
    const auto start = std::chrono::steady_clock::now();
    const size_t frames = input.frames();
    for (size_t f = 0; f < frames; f += frames_per_chunk) {
      const size_t end = std::min(frames, f + frames_per_chunk);
      if (realtime) {
        // Send a chunk when its last sample would have been captured.
        std::this_thread::sleep_until(
            start + std::chrono::microseconds(static_cast<int64_t>(
                        1e6 * static_cast<double>(end) / input.audio.sample_rate_hz)));
      }
      v1::StreamClassifyRequest chunk;
      chunk.mutable_samples()->set_pcm(input.Pcm(f, end));
      if (!stream->Write(chunk)) return;
    }
    stream->WritesDone();
  });

  v1::StreamClassifyResponse resp;
  while (stream->Read(&resp)) {
    if (json) {
      std::printf("%s\n", ToJson(resp).c_str());
    } else if (resp.has_window()) {
      if (!events_only) std::printf("%s\n", FormatWindow(resp.window()).c_str());
    } else if (resp.has_event()) {
      std::printf("%s\n", FormatEvent(resp.event(), input.audio.sample_rate_hz).c_str());
    } else if (resp.has_summary()) {
      std::printf("%s\n", FormatSummary(resp.summary()).c_str());
    }
    std::fflush(stdout);
  }
  writer.join();
  grpc::Status status = stream->Finish();
  if (!status.ok()) return ReportRpcError(common, status);
  return 0;
}

int RunClassify(const CommonOptions& common, const std::vector<std::string>& args) {
  Input input;
  int code = 0;
  if (!LoadInput(args, &input, &code)) return code;
  v1::ClassifyRequest req;
  *req.mutable_config() = input.config;
  req.mutable_samples()->set_pcm(input.Pcm(0, input.frames()));
  v1::ClassifyResponse resp;
  grpc::ClientContext context;
  SetDeadline(common, &context);
  grpc::Status status = v1::Classifier::NewStub(MakeChannel(common))->Classify(&context, req, &resp);
  if (!status.ok()) return ReportRpcError(common, status);
  if (absl::GetFlag(FLAGS_json)) {
    std::printf("%s\n", ToJson(resp).c_str());
    return 0;
  }
  if (!absl::GetFlag(FLAGS_events_only)) {
    for (const v1::WindowResult& w : resp.windows()) std::printf("%s\n", FormatWindow(w).c_str());
  }
  for (const v1::Event& e : resp.events()) {
    std::printf("%s\n", FormatEvent(e, input.audio.sample_rate_hz).c_str());
  }
  std::printf("%s\n", FormatSummary(resp.summary()).c_str());
  return 0;
}

}  // namespace wavepool::cli
