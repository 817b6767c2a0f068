// Log-mel frames, normalisation and whole-signal windows against references
// written here: a direct DFT, triangles from the mel formulas, a per-window
// recomputation.
#include <cmath>
#include <cstdint>
#include <cstring>
#include <numbers>
#include <random>
#include <string>
#include <vector>

#include "dsp/log_mel.h"
#include "gtest/gtest.h"

namespace wavepool::dsp {
namespace {

constexpr double kPi = std::numbers::pi;

std::vector<float> RandomSignal(size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> dist(-1.0f, 1.0f);
  std::vector<float> x(n);
  for (float& v : x) v = dist(rng);
  return x;
}

double MelOf(double hz, MelScaleType scale) {
  if (scale == MelScaleType::kHtk) return 2595 * std::log10(1 + hz / 700);
  return hz < 1000 ? hz * 3 / 200 : 15 + 27 * std::log(hz / 1000) / std::log(6.4);
}
double HzOf(double mel, MelScaleType scale) {
  if (scale == MelScaleType::kHtk) return 700 * (std::pow(10, mel / 2595) - 1);
  return mel < 15 ? mel * 200 / 3 : 1000 * std::pow(6.4, (mel - 15) / 27);
}

// The whole front end for one frame, composed from the definitions in double:
// periodic window, direct DFT, |X|^2 or |X|, mel triangles, ln(max(., floor)).
std::vector<double> RefLogMel(const LogMelOptions& o, const std::vector<float>& frame) {
  const double a = o.window == WindowType::kHann ? 0.5 : 0.54;
  const size_t bins = o.fft_size / 2 + 1;
  std::vector<double> spectrum(bins);
  for (size_t k = 0; k < bins; ++k) {
    double re = 0, im = 0;
    for (size_t n = 0; n < frame.size(); ++n) {
      const double w = a - (1 - a) * std::cos(2 * kPi * n / frame.size());
      const double angle = 2 * kPi * static_cast<double>((k * n) % o.fft_size) / o.fft_size;
      re += frame[n] * w * std::cos(angle);
      im -= frame[n] * w * std::sin(angle);
    }
    spectrum[k] = o.power ? re * re + im * im : std::sqrt(re * re + im * im);
  }
  const double lo = MelOf(o.f_min_hz, o.scale), hi = MelOf(o.f_max_hz, o.scale);
  std::vector<double> out(o.num_bands);
  for (size_t b = 0; b < o.num_bands; ++b) {
    const double step = (hi - lo) / (o.num_bands + 1);
    const double l = HzOf(lo + step * b, o.scale);
    const double c = HzOf(lo + step * (b + 1), o.scale);
    const double r = HzOf(lo + step * (b + 2), o.scale);
    const double peak = o.scale == MelScaleType::kSlaney ? 2 / (r - l) : 1;
    double sum = 0;
    for (size_t k = 0; k < bins; ++k) {
      const double f = k * o.sample_rate_hz / o.fft_size;
      if (f > l && f <= c) sum += spectrum[k] * peak * (f - l) / (c - l);
      if (f > c && f < r) sum += spectrum[k] * peak * (r - f) / (r - c);
    }
    out[b] = std::log(std::max(sum, static_cast<double>(o.log_floor)));
  }
  return out;
}

LogMelOptions DigitOptions() { return LogMelOptions{}; }  // 8 kHz, 200/80/256, 40 bands

LogMelOptions OddOptions() {
  LogMelOptions o;
  o.sample_rate_hz = 11025;
  o.frame_length = 201;
  o.frame_hop = 77;
  o.fft_size = 256;
  o.window = WindowType::kHamming;
  o.power = false;
  o.num_bands = 23;
  o.f_min_hz = 100;
  o.f_max_hz = 5000;
  o.scale = MelScaleType::kHtk;
  return o;
}

LogMelOptions WideOptions() {
  LogMelOptions o;
  o.sample_rate_hz = 16000;
  o.frame_length = 400;
  o.frame_hop = 160;
  o.fft_size = 512;
  o.num_bands = 64;
  o.f_min_hz = 0;
  o.f_max_hz = 8000;
  return o;
}

// Tolerance in the log domain: 2e-6 absolute, i.e. 2e-6 relative on the mel
// energies. Float FFT, float weights and float accumulation: the largest
// difference seen over these configs was 3.7e-7.
TEST(LogMelFrame, MatchesComposedReference) {
  uint32_t seed = 100;
  for (const LogMelOptions& o : {DigitOptions(), OddOptions(), WideOptions()}) {
    absl::StatusOr<LogMelFrame> frame_fn = LogMelFrame::Create(o);
    ASSERT_TRUE(frame_fn.ok()) << frame_fn.status();
    for (int rep = 0; rep < 3; ++rep) {
      const std::vector<float> frame = RandomSignal(o.frame_length, ++seed);
      std::vector<float> got(o.num_bands);
      frame_fn->Compute(frame, got);
      const std::vector<double> want = RefLogMel(o, frame);
      for (size_t b = 0; b < o.num_bands; ++b) {
        ASSERT_NEAR(got[b], want[b], 2e-6)
            << "band " << b << " frame_length " << o.frame_length << " seed " << seed;
      }
    }
  }
}

TEST(LogMelFrame, SilenceIsExactlyTheLogFloor) {
  LogMelOptions o = DigitOptions();
  o.log_floor = 1e-6f;
  absl::StatusOr<LogMelFrame> frame_fn = LogMelFrame::Create(o);
  ASSERT_TRUE(frame_fn.ok()) << frame_fn.status();
  std::vector<float> frame(o.frame_length, 0.0f), out(o.num_bands);
  frame_fn->Compute(frame, out);
  for (float v : out) EXPECT_EQ(v, std::log(1e-6f));
}

TEST(LogMelOptions, ValidateGivesActionableMessages) {
  LogMelOptions o;
  EXPECT_TRUE(o.Validate().ok());
  o.frame_hop = 0;
  EXPECT_EQ(o.Validate().message(), "frame_hop (0) must be > 0");
  o.frame_hop = 80;
  o.log_floor = 0;
  EXPECT_EQ(o.Validate().message(),
            "log_floor (0) must be finite and > 0 (features are ln(max(mel, log_floor)))");
  o.log_floor = 1e-10f;
  o.f_max_hz = 9000;
  EXPECT_EQ(o.Validate().message(), "f_max_hz (9000) must be <= sample_rate_hz / 2 (4000)");
  o.f_max_hz = 4000;
  o.fft_size = 128;
  EXPECT_EQ(o.Validate().message(), "fft_size (128) must be >= frame_length (200)");
  EXPECT_EQ(LogMelFrame::Create(o).status().code(), absl::StatusCode::kInvalidArgument);
  o.fft_size = 422;  // 2 x 211: FFTW would allocate inside every transform
  EXPECT_EQ(o.Validate().message(),
            "fft_size (422) must be even with no prime factor above 7 (e.g. 256, 400, 512): FFTW "
            "allocates scratch memory inside transforms of other sizes, which the streaming front "
            "end must not do");
  o.fft_size = 201;
  EXPECT_EQ(o.Validate().code(), absl::StatusCode::kInvalidArgument);
  o.fft_size = 210;
  EXPECT_TRUE(o.Validate().ok()) << o.Validate();
}

TEST(FeatureWindowOptions, DefaultsHold98FramesOf40Bands) {
  FeatureWindowOptions o;
  EXPECT_TRUE(o.Validate().ok()) << o.Validate();
  // (8000 - 200) / 80 = 97.5: 97 hops after the first frame, the last 40
  // samples of the window belong to no frame of it.
  EXPECT_EQ(o.frames_per_window(), 98u);
  EXPECT_EQ(o.window_values(), 98u * 40u);
}

TEST(FeatureWindowOptions, ValidateGivesActionableMessages) {
  FeatureWindowOptions o;
  o.window_length = 100;
  EXPECT_EQ(o.Validate().message(), "window_length (100) must be >= log_mel.frame_length (200)");
  o.window_length = 8000;
  o.window_hop = 0;
  EXPECT_EQ(o.Validate().message(), "window_hop (0) must be > 0");
  o.window_hop = 9000;
  EXPECT_EQ(o.Validate().message(), "window_hop (9000) must be <= window_length (8000)");
  o.window_hop = 2010;
  EXPECT_EQ(o.Validate().message(),
            "window_hop (2010) must be a multiple of log_mel.frame_hop (80) so that overlapping "
            "windows share frames");
  o.window_hop = 2000;
  o.window_length = size_t{1} << 40;
  const std::string message(o.Validate().message());
  EXPECT_NE(message.find("shorten window_length"), std::string::npos) << message;
  o.window_length = 8000;
  o.log_mel.num_bands = 0;
  EXPECT_EQ(o.Validate().message(), "num_bands (0) must be > 0");
  EXPECT_EQ(StreamingFeatures::Create(o).status().code(), absl::StatusCode::kInvalidArgument);
  bool padded = true;
  EXPECT_EQ(FeatureWindows(o, {}, &padded).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_FALSE(padded);
}

// Population statistics in double, then (x - mean) / (std + 1e-5).
void RefNormalize(std::vector<double>* v) {
  double mean = 0, var = 0;
  for (double x : *v) mean += x;
  mean /= v->size();
  for (double x : *v) var += (x - mean) * (x - mean);
  const double denom = std::sqrt(var / v->size()) + 1e-5;
  for (double& x : *v) x = (x - mean) / denom;
}

// Tolerance 5e-7 absolute on outputs of magnitude <= 3: the float result's
// rounding is at most 1.2e-7 there (6.4e-8 seen).
TEST(NormalizeWindow, PerFramePerWindowAndPerBandMeanMatchReference) {
  const size_t bands = 7, frames = 5;
  const std::vector<float> input = RandomSignal(bands * frames, 9);
  for (FeatureNorm norm :
       {FeatureNorm::kPerFrame, FeatureNorm::kPerWindow, FeatureNorm::kPerBandMean}) {
    std::vector<float> got = input;
    NormalizeWindow(norm, bands, frames, got);
    std::vector<double> want(input.begin(), input.end());
    if (norm == FeatureNorm::kPerWindow) {
      RefNormalize(&want);
    } else if (norm == FeatureNorm::kPerBandMean) {
      // Row b (band-major) loses its own mean; then the whole window is scaled.
      for (size_t b = 0; b < bands; ++b) {
        double mean = 0;
        for (size_t t = 0; t < frames; ++t) mean += input[b * frames + t];
        mean /= frames;
        for (size_t t = 0; t < frames; ++t) want[b * frames + t] = input[b * frames + t] - mean;
      }
      RefNormalize(&want);
    } else {
      for (size_t t = 0; t < frames; ++t) {
        std::vector<double> column;
        for (size_t b = 0; b < bands; ++b) column.push_back(input[b * frames + t]);
        RefNormalize(&column);
        for (size_t b = 0; b < bands; ++b) want[b * frames + t] = column[b];
      }
    }
    for (size_t i = 0; i < got.size(); ++i) {
      EXPECT_NEAR(got[i], want[i], 5e-7) << "value " << i << " seed 9 norm "
                                         << static_cast<int>(norm);
    }
  }
  std::vector<float> untouched = input;
  NormalizeWindow(FeatureNorm::kNone, bands, frames, untouched);
  EXPECT_EQ(untouched, input);
}

TEST(NormalizeWindow, ConstantInputBecomesZero) {
  std::vector<float> v(12, -23.0f);
  NormalizeWindow(FeatureNorm::kPerWindow, 3, 4, v);
  for (float x : v) EXPECT_EQ(x, 0.0f);
}

FeatureWindowOptions SmallWindows(FeatureNorm norm) {
  FeatureWindowOptions o;
  o.log_mel.sample_rate_hz = 8000;
  o.log_mel.frame_length = 25;
  o.log_mel.frame_hop = 10;
  o.log_mel.fft_size = 32;
  o.log_mel.num_bands = 8;
  o.log_mel.f_min_hz = 0;
  o.log_mel.f_max_hz = 4000;
  o.window_length = 107;  // 9 frames (8 hops + 25 = 105) and 2 samples of no frame
  o.window_hop = 30;
  o.norm = norm;
  return o;
}

// The obvious way: cut each window out of the zero-padded signal and compute
// its frames from scratch, sharing nothing between windows.
std::vector<std::vector<float>> NaiveWindows(const FeatureWindowOptions& o,
                                             const std::vector<float>& signal, size_t count) {
  absl::StatusOr<LogMelFrame> frame_fn = LogMelFrame::Create(o.log_mel);
  EXPECT_TRUE(frame_fn.ok());
  const size_t bands = o.log_mel.num_bands, frames = o.frames_per_window();
  std::vector<std::vector<float>> out;
  for (size_t i = 0; i < count; ++i) {
    std::vector<float> window(o.window_length, 0.0f);
    for (size_t n = 0; n < o.window_length && i * o.window_hop + n < signal.size(); ++n) {
      window[n] = signal[i * o.window_hop + n];
    }
    std::vector<float> values(bands * frames), column(bands);
    for (size_t t = 0; t < frames; ++t) {
      frame_fn->Compute(std::span<const float>(window).subspan(t * o.log_mel.frame_hop,
                                                               o.log_mel.frame_length),
                        column);
      for (size_t b = 0; b < bands; ++b) values[b * frames + t] = column[b];
    }
    NormalizeWindow(o.norm, bands, frames, values);
    out.push_back(values);
  }
  return out;
}

struct CountCase {
  size_t length;
  size_t windows;
  bool padded;
};

// window_length 107, window_hop 30: window i ends at 107 + 30 i.
TEST(FeatureWindows, CountsCompleteWindowsAndOnePaddedTail) {
  const std::vector<CountCase> cases = {
      {0, 0, false},   {1, 1, true},    {24, 1, true},   {106, 1, true},  {107, 1, false},
      {108, 2, true},  {136, 2, true},  {137, 2, false}, {138, 3, true},  {167, 3, false},
      {300, 8, true},  {317, 8, false},
  };
  const FeatureWindowOptions o = SmallWindows(FeatureNorm::kNone);
  for (const CountCase& c : cases) {
    bool padded = !c.padded;
    absl::StatusOr<std::vector<std::vector<float>>> windows =
        FeatureWindows(o, RandomSignal(c.length, 5), &padded);
    ASSERT_TRUE(windows.ok()) << windows.status();
    EXPECT_EQ(windows->size(), c.windows) << "length " << c.length;
    EXPECT_EQ(padded, c.padded) << "length " << c.length;
  }
}

TEST(FeatureWindows, EqualsNaivePerWindowRecomputationBitForBit) {
  uint32_t seed = 300;
  for (FeatureNorm norm : {FeatureNorm::kNone, FeatureNorm::kPerFrame, FeatureNorm::kPerWindow,
                           FeatureNorm::kPerBandMean}) {
    for (size_t length : {1, 24, 25, 106, 107, 108, 138, 331, 600}) {
      const FeatureWindowOptions o = SmallWindows(norm);
      const std::vector<float> signal = RandomSignal(length, ++seed);
      absl::StatusOr<std::vector<std::vector<float>>> got = FeatureWindows(o, signal, nullptr);
      ASSERT_TRUE(got.ok()) << got.status();
      const std::vector<std::vector<float>> want = NaiveWindows(o, signal, got->size());
      for (size_t i = 0; i < want.size(); ++i) {
        ASSERT_EQ((*got)[i].size(), o.window_values());
        EXPECT_EQ(std::memcmp((*got)[i].data(), want[i].data(), want[i].size() * sizeof(float)), 0)
            << "window " << i << " length " << length << " norm " << static_cast<int>(norm)
            << " seed " << seed;
      }
    }
  }
}

TEST(FeatureWindows, DigitConfigOnOneSecond) {
  FeatureWindowOptions o;  // 8 kHz, window 8000, hop 2000
  const std::vector<float> signal = RandomSignal(8000, 77);
  bool padded = true;
  absl::StatusOr<std::vector<std::vector<float>>> got = FeatureWindows(o, signal, &padded);
  ASSERT_TRUE(got.ok()) << got.status();
  ASSERT_EQ(got->size(), 1u);
  EXPECT_FALSE(padded);
  const std::vector<std::vector<float>> want = NaiveWindows(o, signal, 1);
  EXPECT_EQ((*got)[0], want[0]);
}

}  // namespace
}  // namespace wavepool::dsp
