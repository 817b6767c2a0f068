// Audio files via libsndfile.
#pragma once

#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace wavepool::dsp {

struct Audio {
  double sample_rate_hz = 0;
  int channels = 0;
  std::vector<float> samples;  // interleaved, full scale +-1.0
  size_t frames() const { return channels ? samples.size() / channels : 0; }
};

// Reads any format libsndfile reads (WAV int16/int24/float, mono or multichannel).
absl::StatusOr<Audio> ReadAudio(const std::string& path);
// Writes 16-bit PCM WAV.
absl::Status WriteWav16(const std::string& path, const Audio& audio);
// Averages channels into one.
std::vector<float> Downmix(const Audio& audio);

}  // namespace wavepool::dsp
