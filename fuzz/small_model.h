// The small fixed-window model the server tests use (tests/server_test_util.h,
// SmallSpecJson): 8 kHz, 100 ms windows with a 50 ms hop, 16 mel bands, one
// 3x3 conv, 2x2 max pooling, global pooling and a dense layer to labels a, b, c.
// Cheap enough to run thousands of windows per second under the sanitizers.
#pragma once

#include <string>

namespace wavepool::fuzz {

inline std::string SmallSpecJson(const std::string& name, int version) {
  return R"({
  "name": ")" +
         name + R"(", "version": ")" + std::to_string(version) + R"(",
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

}  // namespace wavepool::fuzz
