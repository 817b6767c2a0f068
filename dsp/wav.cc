#include "dsp/wav.h"

#include <sndfile.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <limits>
#include <memory>
#include <system_error>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

namespace wavepool::dsp {
namespace {

// Frames per sf_readf_float / sf_writef_short call. Files are read in pieces
// rather than sized from the header's frame count, so a header that lies
// costs no memory.
constexpr sf_count_t kReadFrames = 4096;

struct SndfileCloser {
  void operator()(SNDFILE* f) const { sf_close(f); }
};
using SndfilePtr = std::unique_ptr<SNDFILE, SndfileCloser>;

}  // namespace

absl::StatusOr<Audio> ReadAudio(const std::string& path) {
  std::error_code ec;
  if (!std::filesystem::exists(path, ec)) {
    return absl::NotFoundError(absl::StrCat("audio file '", path, "' does not exist"));
  }
  SF_INFO info{};
  SndfilePtr file(sf_open(path.c_str(), SFM_READ, &info));
  if (file == nullptr) {
    return absl::InvalidArgumentError(absl::StrCat("cannot read audio file '", path,
                                                   "': ", sf_strerror(nullptr)));
  }
  if (info.channels <= 0 || info.samplerate <= 0) {
    return absl::InvalidArgumentError(absl::StrCat("audio file '", path, "' has ", info.channels,
                                                   " channels at ", info.samplerate,
                                                   " Hz; both must be > 0"));
  }
  Audio audio;
  audio.sample_rate_hz = info.samplerate;
  audio.channels = info.channels;
  const size_t channels = static_cast<size_t>(info.channels);
  while (true) {
    const size_t old_size = audio.samples.size();
    audio.samples.resize(old_size + static_cast<size_t>(kReadFrames) * channels);
    const sf_count_t got = sf_readf_float(file.get(), audio.samples.data() + old_size, kReadFrames);
    audio.samples.resize(old_size + static_cast<size_t>(std::max<sf_count_t>(got, 0)) * channels);
    if (got < kReadFrames) break;
  }
  if (sf_error(file.get()) != SF_ERR_NO_ERROR) {
    return absl::DataLossError(absl::StrCat("error reading audio file '", path,
                                            "' after ", audio.frames(),
                                            " frames: ", sf_strerror(file.get())));
  }
  return audio;
}

absl::Status WriteWav16(const std::string& path, const Audio& audio) {
  if (audio.channels <= 0) {
    return absl::InvalidArgumentError(absl::StrCat("cannot write '", path, "': channels (",
                                                   audio.channels, ") must be > 0"));
  }
  const double rate = audio.sample_rate_hz;
  if (!(rate >= 1 && rate <= std::numeric_limits<int>::max()) || rate != std::floor(rate)) {
    return absl::InvalidArgumentError(absl::StrCat("cannot write '", path, "': sample_rate_hz (",
                                                   rate, ") must be a whole number >= 1 for WAV"));
  }
  const size_t channels = static_cast<size_t>(audio.channels);
  if (audio.samples.size() % channels != 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        "cannot write '", path, "': ", audio.samples.size(), " samples is not a multiple of ",
        channels, " channels"));
  }
  for (size_t i = 0; i < audio.samples.size(); ++i) {
    if (!std::isfinite(audio.samples[i])) {
      return absl::InvalidArgumentError(absl::StrCat("cannot write '", path, "': sample ", i,
                                                     " is ", audio.samples[i]));
    }
  }
  SF_INFO info{};
  info.samplerate = static_cast<int>(rate);
  info.channels = audio.channels;
  info.format = SF_FORMAT_WAV | SF_FORMAT_PCM_16;
  SndfilePtr file(sf_open(path.c_str(), SFM_WRITE, &info));
  if (file == nullptr) {
    return absl::InvalidArgumentError(
        absl::StrCat("cannot write audio file '", path, "': ", sf_strerror(nullptr)));
  }
  // Quantised here rather than by libsndfile: its float path either wraps
  // values beyond +-1 to the other sign or, with clipping on, truncates (a
  // -0.5 LSB bias). Here v = round(x * 32768) clipped to [-32768, 32767], the
  // exact inverse of reading v / 32768, so a round trip is within half a step.
  const size_t frames = audio.frames();
  std::vector<short> pcm(static_cast<size_t>(kReadFrames) * channels);
  for (size_t first = 0; first < frames; first += static_cast<size_t>(kReadFrames)) {
    const size_t count = std::min(frames - first, static_cast<size_t>(kReadFrames));
    for (size_t i = 0; i < count * channels; ++i) {
      const float scaled = std::nearbyint(audio.samples[first * channels + i] * 32768.0f);
      pcm[i] = static_cast<short>(std::clamp(scaled, -32768.0f, 32767.0f));
    }
    const sf_count_t written =
        sf_writef_short(file.get(), pcm.data(), static_cast<sf_count_t>(count));
    if (written != static_cast<sf_count_t>(count)) {
      return absl::DataLossError(absl::StrCat("wrote only ", first + std::max<sf_count_t>(written, 0),
                                              " of ", frames, " frames to '", path,
                                              "': ", sf_strerror(file.get())));
    }
  }
  if (sf_close(file.release()) != 0) {
    return absl::DataLossError(absl::StrCat("cannot finish writing audio file '", path, "'"));
  }
  return absl::OkStatus();
}

std::vector<float> Downmix(const Audio& audio) {
  if (audio.channels <= 0) return {};
  const size_t channels = static_cast<size_t>(audio.channels);
  const size_t frames = audio.frames();
  std::vector<float> mono(frames);
  for (size_t f = 0; f < frames; ++f) {
    float sum = 0.0f;
    for (size_t c = 0; c < channels; ++c) sum += audio.samples[f * channels + c];
    mono[f] = sum / static_cast<float>(channels);
  }
  return mono;
}

}  // namespace wavepool::dsp
