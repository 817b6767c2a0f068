// The small fixed-window model spec the server tests and the fuzz targets
// share. Header-only and free of gtest and gRPC, so fuzz/ can include it.
#pragma once

#include <string>

namespace wavepool::testing {

// A small fixed-window model: 8 kHz, window 800 samples (100 ms), hop 400,
// frames 160/80 (9 frames per window), 16 mel bands, labels a, b, c.
inline std::string SmallSpecJson(const std::string& name, int version) {
  return R"({
  "name": ")" + name + R"(", "version": ")" + std::to_string(version) + R"(",
  "kind": "FIXED_WINDOWS", "sampleRateHz": 8000,
  "windowing": {"lengthSamples": 800, "hopSamples": 400},
  "frontEnd": {"stft": {"frameLength": 160, "frameHop": 80, "fftSize": 256, "window": "HANN"},
               "mel": {"numBands": 16, "fMinHz": 0, "fMaxHz": 4000},
               "layout": "MEL_AS_FREQ"},
  "layers": [
    {"name": "conv1", "conv2d": {"outChannels": 4, "kernelTime": 3, "kernelFreq": 3, "padTime": 1, "padFreq": 1}},
    {"name": "relu1", "relu": {}},
    {"name": "pool1", "maxPool2d": {"kernelTime": 2, "kernelFreq": 2}},
    {"name": "gap", "globalAvgPool": {}},
    {"name": "fc", "dense": {"outFeatures": 3}}
  ],
  "labels": ["a", "b", "c"]
})";
}

}  // namespace wavepool::testing
