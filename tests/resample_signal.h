// Test helper: a whole signal through dsp::Resampler (pushed at once, then
// finished), as a client would resample before sending at another rate.
#pragma once

#include <span>
#include <vector>

#include "dsp/resampler.h"
#include "gtest/gtest.h"

namespace wavepool::testing {

inline std::vector<float> ResampleSignal(const std::vector<float>& x, double from_hz,
                                         double to_hz) {
  auto r = dsp::Resampler::Create(from_hz, to_hz);
  EXPECT_TRUE(r.ok()) << r.status();
  std::vector<float> y;
  if (!r.ok()) return y;
  auto sink = [&](std::span<const float> s) { y.insert(y.end(), s.begin(), s.end()); };
  EXPECT_TRUE((*r)->Push(x, sink).ok());
  EXPECT_TRUE((*r)->Finish(sink).ok());
  return y;
}

}  // namespace wavepool::testing
