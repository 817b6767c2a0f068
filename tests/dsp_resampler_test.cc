// Resampler: analytic sines through soxr, chunk invariance, passthrough.
#include <cmath>
#include <cstdint>
#include <cstring>
#include <memory>
#include <numbers>
#include <random>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "dsp/resampler.h"
#include "gtest/gtest.h"
#include "tests/resample_signal.h"

namespace wavepool::dsp {
namespace {

constexpr double kPi = std::numbers::pi;

std::vector<float> Sine(double hz, double amplitude, double rate, size_t n) {
  std::vector<float> x(n);
  for (size_t i = 0; i < n; ++i) x[i] = static_cast<float>(amplitude * std::sin(2 * kPi * hz * i / rate));
  return x;
}

std::vector<float> RandomSignal(size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> dist(-1.0f, 1.0f);
  std::vector<float> x(n);
  for (float& v : x) v = dist(rng);
  return x;
}

std::vector<float> Resample(Resampler& r, const std::vector<float>& x,
                            const std::vector<size_t>& chunks = {}) {
  return testing::ResampleInChunks(r, x, chunks);
}

std::vector<size_t> RandomChunks(size_t total, size_t max_chunk, uint32_t seed) {
  std::mt19937 rng(seed);
  std::vector<size_t> chunks;
  for (size_t sum = 0; sum < total;) {
    const size_t c = std::uniform_int_distribution<size_t>(0, max_chunk)(rng);
    chunks.push_back(c);
    sum += c;
  }
  return chunks;
}

std::unique_ptr<Resampler> Make(double in, double out) {
  absl::StatusOr<std::unique_ptr<Resampler>> r = Resampler::Create(in, out);
  EXPECT_TRUE(r.ok()) << r.status();
  return r.ok() ? std::move(*r) : nullptr;
}

// soxr HQ removes its filter delay, so output sample m is the sine at time
// m / output_rate. Edges are skipped: the input starts and stops abruptly and
// the filter rings for ~10 ms (error 1.5e-2 in the first ms, 5e-7 by 11 ms).
// Tolerance 2e-6 on amplitude 0.5 (-108 dB); measured 2.4e-7 (16k->8k) and
// 4.6e-7 (8k->44.1k).
void ExpectSineKept(double in_rate, double out_rate) {
  SCOPED_TRACE(absl::StrCat(in_rate, " Hz -> ", out_rate, " Hz"));
  const size_t n = static_cast<size_t>(in_rate);  // 1 s
  std::unique_ptr<Resampler> r = Make(in_rate, out_rate);
  ASSERT_NE(r, nullptr);
  EXPECT_FALSE(r->passthrough());
  const std::vector<float> out = Resample(*r, Sine(440, 0.5, in_rate, n), {});
  EXPECT_NEAR(static_cast<double>(out.size()), n * out_rate / in_rate, 1.0);
  const size_t skip = static_cast<size_t>(0.020 * out_rate);
  double worst = 0;
  for (size_t m = skip; m + skip < out.size(); ++m) {
    worst = std::max(worst, std::fabs(out[m] - 0.5 * std::sin(2 * kPi * 440 * m / out_rate)));
  }
  EXPECT_LT(worst, 2e-6);
}

TEST(Resampler, Sine440Downsampled16kTo8kKeepsFrequencyAndAmplitude) { ExpectSineKept(16000, 8000); }

TEST(Resampler, Sine440Upsampled8kTo44k1KeepsFrequencyAndAmplitude) { ExpectSineKept(8000, 44100); }

TEST(Resampler, RemovesContentAboveTheNewNyquist) {
  // 6 kHz cannot exist at 8 kHz: soxr HQ's stop band (20-bit precision) must
  // leave less than 1e-6 of the 0.5 input (-120 dB) 20 ms from the edges;
  // measured 6.5e-8.
  std::unique_ptr<Resampler> r = Make(16000, 8000);
  ASSERT_NE(r, nullptr);
  const std::vector<float> out = Resample(*r, Sine(6000, 0.5, 16000, 16000), {});
  double worst = 0;
  for (size_t m = 160; m + 160 < out.size(); ++m) worst = std::max(worst, std::fabs(double{out[m]}));
  EXPECT_LT(worst, 0.5e-6);
}

TEST(Resampler, OutputIsBitIdenticalForAnyChunking) {
  const std::vector<std::pair<double, double>> pairs = {
      {16000, 8000}, {8000, 44100}, {44100, 16000}, {22050, 16000}, {8000, 11025}};
  uint32_t seed = 50;
  for (auto [in_rate, out_rate] : pairs) {
    const std::vector<float> signal = RandomSignal(static_cast<size_t>(1.3 * in_rate) + 7, seed);
    std::unique_ptr<Resampler> whole = Make(in_rate, out_rate);
    ASSERT_NE(whole, nullptr);
    const std::vector<float> want = Resample(*whole, signal, {});
    for (int rep = 0; rep < 3; ++rep, ++seed) {
      std::unique_ptr<Resampler> r = Make(in_rate, out_rate);
      ASSERT_NE(r, nullptr);
      const size_t max_chunk = rep == 0 ? 3 : 3 * r->block_size();
      const std::vector<float> got = Resample(*r, signal, RandomChunks(signal.size(), max_chunk, seed));
      ASSERT_EQ(got.size(), want.size()) << in_rate << " -> " << out_rate << " chunk seed " << seed;
      EXPECT_EQ(std::memcmp(got.data(), want.data(), want.size() * sizeof(float)), 0)
          << in_rate << " -> " << out_rate << " chunk seed " << seed;
    }
  }
}

TEST(Resampler, FinishResetsForANewStream) {
  std::unique_ptr<Resampler> r = Make(44100, 16000);
  ASSERT_NE(r, nullptr);
  const std::vector<float> signal = RandomSignal(20000, 3);
  const std::vector<float> first = Resample(*r, signal, {1000});
  const std::vector<float> second = Resample(*r, signal, {17, 4000});
  EXPECT_EQ(first, second);
}

// Total output is N * out / in within +-1 (measured: exactly round(N * out /
// in), halves rounded up, for every case here).
TEST(Resampler, OutputLengthFollowsTheRatio) {
  const std::vector<std::pair<double, double>> pairs = {
      {16000, 8000}, {8000, 44100}, {44100, 16000}, {48000, 8000}, {8000, 11025}};
  for (auto [in_rate, out_rate] : pairs) {
    for (size_t n : {0, 1, 7, 100, 12345, 44100}) {
      std::unique_ptr<Resampler> r = Make(in_rate, out_rate);
      ASSERT_NE(r, nullptr);
      const std::vector<float> out = Resample(*r, RandomSignal(n, 9), {});
      EXPECT_NEAR(static_cast<double>(out.size()), n * out_rate / in_rate, 1.0)
          << in_rate << " -> " << out_rate << " n " << n;
    }
  }
}

TEST(Resampler, BlocksAreTenMillisecondsOfInput) {
  for (auto [rate, block] : std::vector<std::pair<double, size_t>>{
           {8000, 80}, {16000, 160}, {44100, 441}, {22050, 221}, {50, 1}}) {
    std::unique_ptr<Resampler> r = Make(rate, rate == 50 ? 100 : 48000);
    ASSERT_NE(r, nullptr);
    EXPECT_EQ(r->block_size(), block) << rate;
  }
}

TEST(Resampler, EqualRatesPassSamplesThroughUntouched) {
  std::unique_ptr<Resampler> r = Make(16000, 16000);
  ASSERT_NE(r, nullptr);
  EXPECT_TRUE(r->passthrough());
  EXPECT_EQ(r->block_size(), 0u);
  const std::vector<float> signal = RandomSignal(5000, 4);
  EXPECT_EQ(Resample(*r, signal, RandomChunks(signal.size(), 300, 4)), signal);
}

TEST(Resampler, RejectsBadRatesWithTheReason) {
  struct Case {
    double in, out;
    std::string message;
  };
  const std::vector<Case> cases = {
      {0, 8000, "input_rate_hz (0) must be finite, > 0 and <= 1e+06 Hz"},
      {-16000, 8000, "input_rate_hz (-16000) must be finite, > 0 and <= 1e+06 Hz"},
      {std::nan(""), 8000, "input_rate_hz (nan) must be finite, > 0 and <= 1e+06 Hz"},
      {16000, INFINITY, "output_rate_hz (inf) must be finite, > 0 and <= 1e+06 Hz"},
      {16000, 2e6, "output_rate_hz (2e+06) must be finite, > 0 and <= 1e+06 Hz"},
  };
  for (const Case& c : cases) {
    absl::StatusOr<std::unique_ptr<Resampler>> r = Resampler::Create(c.in, c.out);
    EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_EQ(r.status().message(), c.message);
  }
}

}  // namespace
}  // namespace wavepool::dsp
