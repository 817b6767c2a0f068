// Test helpers: a whole signal through dsp::Resampler, in given chunks or at
// once, then finished (as a client would resample before sending at another
// rate).
#pragma once

#include <algorithm>
#include <span>
#include <vector>

#include "dsp/resampler.h"
#include "gtest/gtest.h"

namespace wavepool::testing {

// Pushes `x` in chunks of the given sizes (the rest in one), then finishes.
inline std::vector<float> ResampleInChunks(dsp::Resampler& r, const std::vector<float>& x,
                                           const std::vector<size_t>& chunks = {}) {
  std::vector<float> out;
  auto sink = [&](std::span<const float> s) { out.insert(out.end(), s.begin(), s.end()); };
  size_t pos = 0;
  for (size_t c : chunks) {
    c = std::min(c, x.size() - pos);
    EXPECT_TRUE(r.Push(std::span<const float>(x).subspan(pos, c), sink).ok());
    pos += c;
  }
  EXPECT_TRUE(r.Push(std::span<const float>(x).subspan(pos), sink).ok());
  EXPECT_TRUE(r.Finish(sink).ok());
  return out;
}

inline std::vector<float> ResampleSignal(const std::vector<float>& x, double from_hz,
                                         double to_hz) {
  auto r = dsp::Resampler::Create(from_hz, to_hz);
  EXPECT_TRUE(r.ok()) << r.status();
  return r.ok() ? ResampleInChunks(**r, x) : std::vector<float>();
}

}  // namespace wavepool::testing
