// Window and STFT frame against a direct O(N^2) DFT in double.
#include <cmath>
#include <cstdint>
#include <numbers>
#include <ostream>
#include <random>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "dsp/stft.h"
#include "dsp/window_function.h"
#include "gtest/gtest.h"

namespace wavepool::dsp {
namespace {

constexpr double kPi = std::numbers::pi;

double RefWindow(WindowType type, size_t n, size_t length) {
  const double a = type == WindowType::kHann ? 0.5 : 0.54;
  return a - (1 - a) * std::cos(2 * kPi * static_cast<double>(n) / static_cast<double>(length));
}

// |X_k|^2 or |X_k| of the windowed, zero-padded frame, k = 0..fft_size/2,
// straight from the definition X_k = sum_n x_n w_n e^{-2 pi i k n / fft_size}.
std::vector<double> RefSpectrum(const std::vector<float>& frame, size_t fft_size, WindowType type,
                                bool power) {
  std::vector<double> out(fft_size / 2 + 1);
  for (size_t k = 0; k < out.size(); ++k) {
    double re = 0, im = 0;
    for (size_t n = 0; n < frame.size(); ++n) {
      const double x = frame[n] * RefWindow(type, n, frame.size());
      // k * n reduced mod fft_size keeps the angle small and exact.
      const double angle = 2 * kPi * static_cast<double>((k * n) % fft_size) /
                           static_cast<double>(fft_size);
      re += x * std::cos(angle);
      im -= x * std::sin(angle);
    }
    const double p = re * re + im * im;
    out[k] = power ? p : std::sqrt(p);
  }
  return out;
}

std::vector<float> RandomFrame(size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> dist(-1.0f, 1.0f);
  std::vector<float> x(n);
  for (float& v : x) v = dist(rng);
  return x;
}

TEST(FillWindow, MatchesFormulaForOddAndEvenLengths) {
  for (WindowType type : {WindowType::kHann, WindowType::kHamming}) {
    for (size_t length : {1, 2, 7, 200, 201, 400}) {
      std::vector<float> w(length);
      FillWindow(type, w);
      for (size_t n = 0; n < length; ++n) {
        // One float rounding of a value <= 1: error <= 2^-24.
        EXPECT_NEAR(w[n], RefWindow(type, n, length), 6e-8) << "length " << length << " n " << n;
      }
    }
  }
}

TEST(FillWindow, IsPeriodicNotSymmetric) {
  std::vector<float> hann(4), hamming(4);
  FillWindow(WindowType::kHann, hann);
  FillWindow(WindowType::kHamming, hamming);
  // The DFT-even form: w[N/2] is the peak and w[0] has no mirror at w[N-1].
  EXPECT_EQ(hann, (std::vector<float>{0.0f, 0.5f, 1.0f, 0.5f}));
  EXPECT_NEAR(hamming[0], 0.08f, 1e-7);
  EXPECT_NEAR(hamming[1], 0.54f, 1e-7);
  EXPECT_NEAR(hamming[2], 1.0f, 1e-7);
  EXPECT_NEAR(hamming[3], 0.54f, 1e-7);
}

struct StftCase {
  size_t frame_length;
  size_t fft_size;
};

void PrintTo(const StftCase& c, std::ostream* os) {
  *os << "frame_length " << c.frame_length << " fft_size " << c.fft_size;
}

class StftReferenceTest : public ::testing::TestWithParam<StftCase> {};

// Tolerance, relative to the reference's largest bin: 1e-6 for magnitude and
// 2e-6 for power (|X|^2 doubles the relative error). A float FFT's error is
// about eps (6e-8) * log2(N) of that peak; the largest seen over these cases
// with FFTW 3.3.10 was 1.9e-7 (magnitude) and 4.6e-7 (power).
TEST_P(StftReferenceTest, MatchesDirectDft) {
  const StftCase c = GetParam();
  uint32_t seed = 1000 + static_cast<uint32_t>(c.frame_length * 7 + c.fft_size);
  for (WindowType type : {WindowType::kHann, WindowType::kHamming}) {
    for (bool power : {true, false}) {
      StftOptions o;
      o.frame_length = c.frame_length;
      o.fft_size = c.fft_size;
      o.window = type;
      o.power = power;
      absl::StatusOr<StftFrame> stft = StftFrame::Create(o);
      ASSERT_TRUE(stft.ok()) << stft.status();
      const std::vector<float> frame = RandomFrame(c.frame_length, ++seed);
      std::vector<float> got(o.num_bins());
      stft->Compute(frame, got);
      const std::vector<double> want = RefSpectrum(frame, c.fft_size, type, power);
      double peak = 0;
      for (double v : want) peak = std::max(peak, v);
      const double tol = (power ? 2e-6 : 1e-6) * peak;
      for (size_t k = 0; k < want.size(); ++k) {
        ASSERT_NEAR(got[k], want[k], tol)
            << "bin " << k << " frame_length " << c.frame_length << " fft_size " << c.fft_size
            << (type == WindowType::kHann ? " hann" : " hamming")
            << (power ? " power" : " magnitude") << " seed " << seed;
      }
    }
  }
}

INSTANTIATE_TEST_SUITE_P(
    OddAndPaddedSizes, StftReferenceTest,
    ::testing::Values(StftCase{1, 1}, StftCase{7, 8}, StftCase{25, 32}, StftCase{63, 63},
                      StftCase{101, 128}, StftCase{200, 256}, StftCase{201, 256},
                      StftCase{97, 211}, StftCase{400, 512}),
    [](const ::testing::TestParamInfo<StftCase>& info) {
      return absl::StrCat("frame", info.param.frame_length, "_fft", info.param.fft_size);
    });

TEST(StftFrame, ZeroFrameGivesZeroSpectrum) {
  StftOptions o;
  absl::StatusOr<StftFrame> stft = StftFrame::Create(o);
  ASSERT_TRUE(stft.ok()) << stft.status();
  std::vector<float> frame(o.frame_length, 0.0f), spectrum(o.num_bins(), 1.0f);
  stft->Compute(frame, spectrum);
  for (float v : spectrum) EXPECT_EQ(v, 0.0f);
}

TEST(StftFrame, RepeatedAndMovedComputeIsBitIdentical) {
  StftOptions o;
  o.frame_length = 201;
  o.fft_size = 256;
  absl::StatusOr<StftFrame> a = StftFrame::Create(o);
  ASSERT_TRUE(a.ok()) << a.status();
  const std::vector<float> frame = RandomFrame(o.frame_length, 7);
  std::vector<float> first(o.num_bins()), second(o.num_bins()), moved(o.num_bins());
  a->Compute(frame, first);
  a->Compute(frame, second);
  StftFrame b = std::move(*a);
  b.Compute(frame, moved);
  EXPECT_EQ(first, second);
  EXPECT_EQ(first, moved);
}

// Many threads create frames of new and shared sizes (the plan cache under
// contention) and compute at once; each result equals the serial one bit for
// bit.
TEST(StftFrame, ConcurrentCreateAndComputeMatchSerial) {
  const std::vector<size_t> sizes = {96, 160, 250, 330, 96, 160, 250, 330};
  std::vector<std::vector<float>> serial(sizes.size()), parallel(sizes.size());
  auto run = [&](size_t i, std::vector<float>* out) {
    StftOptions o;
    o.frame_length = sizes[i] - 3;
    o.fft_size = sizes[i];
    absl::StatusOr<StftFrame> stft = StftFrame::Create(o);
    if (!stft.ok()) return;
    const std::vector<float> frame = RandomFrame(o.frame_length, static_cast<uint32_t>(i));
    out->assign(o.num_bins(), 0.0f);
    for (int rep = 0; rep < 50; ++rep) stft->Compute(frame, *out);
  };
  {
    std::vector<std::thread> threads;
    for (size_t i = 0; i < sizes.size(); ++i) threads.emplace_back(run, i, &parallel[i]);
    for (std::thread& t : threads) t.join();
  }
  for (size_t i = 0; i < sizes.size(); ++i) run(i, &serial[i]);
  for (size_t i = 0; i < sizes.size(); ++i) {
    ASSERT_FALSE(serial[i].empty()) << "size " << sizes[i];
    EXPECT_EQ(parallel[i], serial[i]) << "size " << sizes[i];
  }
}

TEST(FftSizeIsAllocationFree, EvenAndSevenSmooth) {
  for (size_t n : {2, 4, 6, 14, 200, 210, 256, 400, 441 * 2, 512, 1 << 20}) {
    EXPECT_TRUE(FftSizeIsAllocationFree(n)) << n;
  }
  for (size_t n : {0, 1, 15, 63, 201, 211, 22, 34, 422, 1000 * 11}) {
    EXPECT_FALSE(FftSizeIsAllocationFree(n)) << n;
  }
}

TEST(StftOptions, ValidateNamesTheField) {
  StftOptions o;
  o.frame_length = 0;
  EXPECT_EQ(o.Validate().message(), "frame_length (0) must be > 0");
  o.frame_length = 400;
  o.fft_size = 256;
  EXPECT_EQ(o.Validate().message(), "fft_size (256) must be >= frame_length (400)");
  EXPECT_EQ(StftFrame::Create(o).status().code(), absl::StatusCode::kInvalidArgument);
  o.fft_size = size_t{1} << 21;
  EXPECT_EQ(o.Validate().message(), "fft_size (2097152) must be <= 1048576");
  o.fft_size = 400;
  EXPECT_TRUE(o.Validate().ok());
}

}  // namespace
}  // namespace wavepool::dsp
