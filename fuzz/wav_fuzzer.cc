// Audio files: what `wavepool stream|classify|eval|train` read with
// dsp::ReadAudio (libsndfile underneath: WAV, and whatever else it detects).
//
// Every input is written to a scratch file and read with ReadAudio (which
// takes a path). A file that reads: interleaving is whole, Downmix gives one
// value per frame; and when the rate is a whole number WriteWav16 + ReadAudio
// gives back the same shape and every sample within half a 16-bit step of the
// original clipped to [-1, 1 - 2^-15].
#include <algorithm>
#include <cmath>

#include "absl/strings/str_cat.h"
#include "dsp/wav.h"
#include "fuzz/fuzz_util.h"

namespace wavepool::fuzz {
namespace {

ScratchDir& Scratch() {
  static ScratchDir dir;
  return dir;
}

// Round trips beyond this many samples cost more than they find.
constexpr size_t kMaxRoundTripSamples = size_t{1} << 18;

void CheckRoundTrip(const dsp::Audio& audio) {
  const std::string path = (Scratch().path() / "out.wav").string();
  bool finite = true;
  for (float v : audio.samples) finite = finite && std::isfinite(v);
  const absl::Status written = dsp::WriteWav16(path, audio);
  if (!finite) {
    Require(!written.ok(), "WriteWav16 accepted a non-finite sample");
    return;
  }
  if (audio.sample_rate_hz != std::floor(audio.sample_rate_hz)) return;
  Require(written.ok(), absl::StrCat("WriteWav16 refused audio it read: ", written.ToString()));
  absl::StatusOr<dsp::Audio> back = dsp::ReadAudio(path);
  Require(back.ok(),
          absl::StrCat("ReadAudio refused what WriteWav16 wrote: ", back.status().ToString()));
  Require(back->channels == audio.channels && back->sample_rate_hz == audio.sample_rate_hz &&
              back->samples.size() == audio.samples.size(),
          "WriteWav16 + ReadAudio changed the channels, rate or length");
  constexpr float kStep = 1.0f / 32768.0f;
  for (size_t i = 0; i < audio.samples.size(); ++i) {
    const float want = std::clamp(audio.samples[i], -1.0f, 1.0f - kStep);
    Require(
        std::fabs(back->samples[i] - want) <= 0.5f * kStep * 1.0001f,
        absl::StrCat("sample ", i, " was ", audio.samples[i], ", read back as ", back->samples[i]));
  }
}

}  // namespace
}  // namespace wavepool::fuzz

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace wavepool;
  using fuzz::Require;
  const std::string path = (fuzz::Scratch().path() / "in.wav").string();
  if (!fuzz::WriteFile(path, std::string_view(reinterpret_cast<const char*>(data), size))) {
    fuzz::Fail("cannot write the scratch file");
  }
  absl::StatusOr<dsp::Audio> audio = dsp::ReadAudio(path);
  if (!audio.ok()) return 0;
  Require(audio->channels > 0 && audio->sample_rate_hz > 0,
          "ReadAudio returned no channels or rate");
  Require(audio->samples.size() % static_cast<size_t>(audio->channels) == 0,
          "ReadAudio returned a partial frame");
  const std::vector<float> mono = dsp::Downmix(*audio);
  Require(mono.size() == audio->frames(), "Downmix did not give one value per frame");
  if (audio->samples.size() <= fuzz::kMaxRoundTripSamples) fuzz::CheckRoundTrip(*audio);
  return 0;
}
