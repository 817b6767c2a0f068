// The audio front end's cost in seconds of audio processed per second of CPU,
// on the digit-like config: 8 kHz, frame 200 / hop 80 / FFT 256, 40 Slaney
// bands 20-4000 Hz, windows of 8000 samples every 2000.
//
//   build/bench/bench_frontend --benchmark_counters_tabular=true
#include <algorithm>
#include <cstdint>
#include <memory>
#include <random>
#include <span>
#include <string>
#include <vector>

#include "benchmark/benchmark.h"
#include "dsp/log_mel.h"
#include "dsp/resampler.h"

namespace wavepool::dsp {
namespace {

constexpr size_t kRate = 8000;  // 1 s of audio per iteration

std::vector<float> OneSecond(double rate) {
  std::mt19937 rng(1);
  std::uniform_real_distribution<float> dist(-1.0f, 1.0f);
  std::vector<float> x(static_cast<size_t>(rate));
  for (float& v : x) v = dist(rng);
  return x;
}

FeatureWindowOptions DigitConfig() {
  FeatureWindowOptions o;  // the defaults are the digit config
  o.log_mel.sample_rate_hz = kRate;
  o.log_mel.frame_length = 200;
  o.log_mel.frame_hop = 80;
  o.log_mel.fft_size = 256;
  o.log_mel.num_bands = 40;
  o.window_length = 8000;
  o.window_hop = 2000;
  return o;
}

void SetAudioRate(benchmark::State& state) {
  state.counters["audio_s_per_s"] =
      benchmark::Counter(static_cast<double>(state.iterations()), benchmark::Counter::kIsRate);
}

// Every frame of 1 s of audio through LogMelFrame::Compute: 98 frames.
void BM_LogMelFrameCompute(benchmark::State& state) {
  const LogMelOptions o = DigitConfig().log_mel;
  absl::StatusOr<LogMelFrame> frame_fn = LogMelFrame::Create(o);
  if (!frame_fn.ok()) {
    state.SkipWithError(std::string(frame_fn.status().message()).c_str());
    return;
  }
  const std::vector<float> audio = OneSecond(kRate);
  std::vector<float> out(o.num_bands);
  const size_t frames = (audio.size() - o.frame_length) / o.frame_hop + 1;
  for (auto _ : state) {
    for (size_t j = 0; j < frames; ++j) {
      frame_fn->Compute(std::span<const float>(audio).subspan(j * o.frame_hop, o.frame_length),
                        out);
      benchmark::DoNotOptimize(out.data());
    }
  }
  SetAudioRate(state);
  state.counters["frames_per_s"] = benchmark::Counter(
      static_cast<double>(state.iterations() * frames), benchmark::Counter::kIsRate);
}
BENCHMARK(BM_LogMelFrameCompute);

// 1 s of audio per iteration into one long stream, in chunks of range(0)
// samples (80 = 10 ms, as a client streams; 8000 = the whole second). Steady
// state: 100 frames and 4 windows of 98 x 40 per second of audio.
void BM_StreamingFeaturesPush(benchmark::State& state) {
  absl::StatusOr<StreamingFeatures> stream = StreamingFeatures::Create(DigitConfig());
  if (!stream.ok()) {
    state.SkipWithError(std::string(stream.status().message()).c_str());
    return;
  }
  const std::vector<float> audio = OneSecond(kRate);
  const size_t chunk = static_cast<size_t>(state.range(0));
  float sink = 0;
  auto on_window = [&](uint64_t, std::span<const float> v) { sink += v[0]; };
  for (auto _ : state) {
    for (size_t pos = 0; pos < audio.size(); pos += chunk) {
      stream->Push(std::span<const float>(audio).subspan(pos, std::min(chunk, audio.size() - pos)),
                   on_window);
    }
  }
  benchmark::DoNotOptimize(sink);
  SetAudioRate(state);
}
BENCHMARK(BM_StreamingFeaturesPush)->Arg(80)->Arg(8000);

// For scale: resampling a client's 16 kHz stream to the model's 8 kHz, in
// 10 ms chunks.
void BM_Resample16kTo8k(benchmark::State& state) {
  absl::StatusOr<std::unique_ptr<Resampler>> r = Resampler::Create(16000, 8000);
  if (!r.ok()) {
    state.SkipWithError(std::string(r.status().message()).c_str());
    return;
  }
  const std::vector<float> audio = OneSecond(16000);
  float sink = 0;
  auto on_output = [&](std::span<const float> v) { sink += v[0]; };
  for (auto _ : state) {
    for (size_t pos = 0; pos < audio.size(); pos += 160) {
      (void)(*r)->Push(std::span<const float>(audio).subspan(pos, 160), on_output);
    }
  }
  benchmark::DoNotOptimize(sink);
  SetAudioRate(state);
}
BENCHMARK(BM_Resample16kTo8k);

}  // namespace
}  // namespace wavepool::dsp

BENCHMARK_MAIN();
