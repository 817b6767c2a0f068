// ECG filter and QRS detector: a synthetic ECG with known R peaks at five
// rates, streaming == offline under random chunkings, the filter against a
// direct median + FIR reference and its measured response, reporting delays,
// EC57 scoring on hand-made lists, no allocation in Push, and the committed
// MIT-BIH excerpts.
#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <new>
#include <numbers>
#include <random>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "dsp/beat_windows.h"
#include "dsp/qrs_detector.h"
#include "dsp/wfdb.h"
#include "gtest/gtest.h"

// Counts operator new while g_counting is set (the hot-path allocation test).
namespace {
std::atomic<bool> g_counting{false};
std::atomic<int64_t> g_news{0};
void* CountedNew(std::size_t size) {
  if (g_counting.load(std::memory_order_relaxed)) g_news.fetch_add(1, std::memory_order_relaxed);
  if (void* p = std::malloc(size == 0 ? 1 : size)) return p;
  throw std::bad_alloc();
}
}  // namespace
void* operator new(std::size_t size) { return CountedNew(size); }
void* operator new[](std::size_t size) { return CountedNew(size); }
void operator delete(void* p) noexcept { std::free(p); }
void operator delete[](void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }
void operator delete[](void* p, std::size_t) noexcept { std::free(p); }

namespace wavepool::dsp {
namespace {

constexpr double kRates[] = {125, 250, 360, 500, 1000};

struct SyntheticEcg {
  std::vector<float> mv;
  std::vector<int64_t> r_peaks;  // round(t_R * rate)
};

// Sum of Gaussian P, Q, R, S and T waves per beat (amplitude mV, centre and
// width in s relative to R), RR between 0.45 and 1.2 s (a slow swing, jitter,
// and every 9th beat premature at 0.6 of the RR before it), plus baseline
// wander (0.5 mV at 0.3 Hz, 0.3 mV at 0.05 Hz), mains (0.05 mV at 50 Hz,
// 0.03 mV at 60 Hz) and white noise of 0.02 mV rms.
SyntheticEcg MakeEcg(double rate, double seconds, uint32_t seed) {
  struct Wave {
    double amp, centre, width;
  };
  constexpr Wave kWaves[] = {{0.15, -0.18, 0.025},
                             {-0.12, -0.03, 0.010},
                             {1.2, 0.0, 0.011},
                             {-0.35, 0.028, 0.011},
                             {0.3, 0.28, 0.05}};
  std::mt19937 rng(seed);
  std::uniform_real_distribution<double> jitter(-0.06, 0.06);
  std::normal_distribution<double> noise(0.0, 0.02);
  std::vector<double> r_times;
  double t = 0.6, rr = 0.8;
  for (int k = 0; t < seconds - 0.6; ++k) {
    r_times.push_back(t);
    const double base = 0.8 + 0.3 * std::sin(2 * std::numbers::pi * k / 25.0) + jitter(rng);
    rr = (k % 9 == 8) ? 0.6 * rr : std::clamp(base, 0.45, 1.2);
    t += rr;
  }
  SyntheticEcg ecg;
  const auto n = static_cast<size_t>(seconds * rate);
  ecg.mv.resize(n);
  for (size_t i = 0; i < n; ++i) {
    const double ti = static_cast<double>(i) / rate;
    double v = 0.5 * std::sin(2 * std::numbers::pi * 0.3 * ti) +
               0.3 * std::sin(2 * std::numbers::pi * 0.05 * ti + 1.0) +
               0.05 * std::sin(2 * std::numbers::pi * 50 * ti) +
               0.03 * std::sin(2 * std::numbers::pi * 60 * ti) + noise(rng);
    for (double r : r_times) {
      if (std::abs(ti - r) > 0.6) continue;
      for (const Wave& w : kWaves) {
        const double z = (ti - r - w.centre) / w.width;
        v += w.amp * std::exp(-0.5 * z * z);
      }
    }
    ecg.mv[i] = static_cast<float>(v);
  }
  for (double r : r_times) ecg.r_peaks.push_back(std::llround(r * rate));
  return ecg;
}

QrsDetectorOptions Options(double rate) {
  QrsDetectorOptions o;
  o.sample_rate_hz = rate;
  return o;
}

// Random chunk sizes from 0 (empty chunks) to 2 s of samples.
std::vector<size_t> RandomChunks(size_t n, double rate, uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_int_distribution<size_t> size(0, static_cast<size_t>(2 * rate));
  std::vector<size_t> chunks;
  for (size_t done = 0; done < n;) {
    const size_t c = std::min(n - done, size(rng) / (rng() % 4 == 0 ? 1 : 50));
    chunks.push_back(c);
    done += c;
  }
  return chunks;
}

TEST(QrsDetector, FindsEverySyntheticBeatWithin20MsAndNothingElse) {
  for (double rate : kRates) {
    SCOPED_TRACE(absl::StrCat("rate ", rate));
    const SyntheticEcg ecg = MakeEcg(rate, 60, 7);
    absl::StatusOr<std::vector<int64_t>> peaks = DetectRPeaks(ecg.mv, Options(rate));
    ASSERT_TRUE(peaks.ok()) << peaks.status();
    ASSERT_EQ(peaks->size(), ecg.r_peaks.size());
    const double tolerance = 0.020 * rate;
    for (size_t i = 0; i < peaks->size(); ++i) {
      EXPECT_LE(std::abs(static_cast<double>((*peaks)[i] - ecg.r_peaks[i])), tolerance)
          << "beat " << i << " at sample " << ecg.r_peaks[i];
    }
  }
}

TEST(QrsDetector, StreamingEqualsOfflineUnderRandomChunkings) {
  for (double rate : kRates) {
    const SyntheticEcg ecg = MakeEcg(rate, 40, 11);
    absl::StatusOr<std::vector<int64_t>> offline = DetectRPeaks(ecg.mv, Options(rate));
    ASSERT_TRUE(offline.ok()) << offline.status();
    auto detector = StreamingQrsDetector::Create(Options(rate));
    ASSERT_TRUE(detector.ok()) << detector.status();
    for (uint32_t seed = 1; seed <= 4; ++seed) {
      SCOPED_TRACE(absl::StrCat("rate ", rate, " chunking seed ", seed));
      std::vector<int64_t> streamed;
      auto collect = [&](int64_t r) { streamed.push_back(r); };
      size_t at = 0;
      for (size_t c : RandomChunks(ecg.mv.size(), rate, seed)) {
        (*detector)->Push(std::span<const float>(ecg.mv).subspan(at, c), collect);
        at += c;
      }
      (*detector)->Finish(collect);  // also resets it for the next chunking
      EXPECT_EQ(streamed, *offline);
    }
  }
}

TEST(QrsDetector, ReportsEveryBeatWithinItsStatedDelay) {
  for (double max_delay_s : {0.5, 0.45}) {
    for (double rate : kRates) {
      SCOPED_TRACE(absl::StrCat("rate ", rate, " max_delay_s ", max_delay_s));
      QrsDetectorOptions o = Options(rate);
      o.max_delay_s = max_delay_s;
      auto detector = StreamingQrsDetector::Create(o);
      ASSERT_TRUE(detector.ok()) << detector.status();
      const int64_t delay = (*detector)->delay_samples();
      EXPECT_LE(delay, static_cast<int64_t>(std::floor(max_delay_s * rate)));
      const SyntheticEcg ecg = MakeEcg(rate, 30, 5);
      int64_t newest = -1, worst = 0, found = 0;
      for (float v : ecg.mv) {
        ++newest;
        (*detector)->Push(std::span<const float>(&v, 1), [&](int64_t r) {
          worst = std::max(worst, newest - r);
          ++found;
        });
      }
      EXPECT_LE(worst, delay);
      // Finish only flushes beats whose deadline lies beyond the input's end.
      (*detector)->Finish([&](int64_t r) {
        EXPECT_GT(r + delay, newest);
        ++found;
      });
      EXPECT_EQ(found, static_cast<int64_t>(ecg.r_peaks.size()));
    }
  }
}

TEST(QrsDetector, StatesItsDelayAndRejectsBadOptions) {
  // 360 Hz: band-pass 10 + 29, derivative 4, integrator 27, look-ahead 90,
  // R search 18 samples.
  auto detector = StreamingQrsDetector::Create(Options(360));
  ASSERT_TRUE(detector.ok());
  EXPECT_EQ((*detector)->delay_samples(), 178);
  QrsDetectorOptions o;
  o.sample_rate_hz = 100;
  EXPECT_EQ(o.Validate().code(), absl::StatusCode::kInvalidArgument);
  o.sample_rate_hz = std::nan("");
  EXPECT_EQ(o.Validate().code(), absl::StatusCode::kInvalidArgument);
  o.sample_rate_hz = 360;
  o.max_delay_s = 0.6;
  EXPECT_EQ(o.Validate().code(), absl::StatusCode::kInvalidArgument);
  o.max_delay_s = 0.44;  // below the 160 samples (0.444 s) the stages need at 360 Hz
  EXPECT_EQ(o.Validate().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(o.Validate().message().find("max_delay_s (0.44) must be >= 0.444"), std::string::npos)
      << o.Validate();
  o.max_delay_s = 0.45;
  EXPECT_TRUE(o.Validate().ok()) << o.Validate();
}

TEST(QrsDetector, SurvivesNonFiniteSamplesAndSilence) {
  std::vector<float> x(3600, 0.0f);
  absl::StatusOr<std::vector<int64_t>> peaks = DetectRPeaks(x, Options(360));
  ASSERT_TRUE(peaks.ok());
  EXPECT_TRUE(peaks->empty());
  SyntheticEcg ecg = MakeEcg(360, 20, 3);
  std::vector<float> with_nan = ecg.mv;
  with_nan[1000] = std::nanf("");
  with_nan[5000] = INFINITY;
  peaks = DetectRPeaks(with_nan, Options(360));
  ASSERT_TRUE(peaks.ok());
  EXPECT_EQ(peaks->size(), ecg.r_peaks.size());
}

TEST(QrsDetector, IgnoresALeadOffAndRelearnsAfterIt) {
  // 20 s of ECG, 20 s of 0.01 mV noise (electrode off), 20 s of ECG: nothing
  // inside the gap, every beat after it (the 8 s reset re-learns the level).
  for (double rate : {125.0, 360.0}) {
    SCOPED_TRACE(absl::StrCat("rate ", rate));
    SyntheticEcg ecg = MakeEcg(rate, 60, 9);
    std::mt19937 rng(4);
    std::normal_distribution<double> noise(0.0, 0.01);
    const auto gap_lo = static_cast<int64_t>(20 * rate), gap_hi = static_cast<int64_t>(40 * rate);
    for (int64_t i = gap_lo; i < gap_hi; ++i)
      ecg.mv[static_cast<size_t>(i)] = static_cast<float>(noise(rng));
    absl::StatusOr<std::vector<int64_t>> peaks = DetectRPeaks(ecg.mv, Options(rate));
    ASSERT_TRUE(peaks.ok());
    std::vector<int64_t> outside;
    for (int64_t r : ecg.r_peaks) {
      if (r < gap_lo || r >= gap_hi) outside.push_back(r);
    }
    std::vector<int64_t> in_gap;
    for (int64_t r : *peaks) {
      // The step into and out of the gap may look like one beat each.
      if (r > gap_lo + rate / 2 && r < gap_hi - rate / 2) in_gap.push_back(r);
    }
    EXPECT_TRUE(in_gap.empty()) << in_gap.size() << " beats in the gap, first at " << in_gap[0];
    const DetectionScore s = ScoreDetections(outside, *peaks, rate, 0.02);
    EXPECT_EQ(s.false_negatives, 0);
    EXPECT_LE(s.false_positives, 2);
  }
}

// ---------------------------------------------------------------------------
// StreamingEcgFilter.

// Direct form of the filter: medians by sorting each window, the signal
// before sample 0 equal to sample 0 and after the end equal to the last
// sample, then the 37.5 Hz Hamming sinc of 2 * round(0.08 rate) + 1 taps.
std::vector<float> ReferenceFilter(const std::vector<float>& x, double rate) {
  const int64_t n = static_cast<int64_t>(x.size());
  const int64_t h1 = std::llround(0.1 * rate), h2 = std::llround(0.3 * rate),
                hl = std::llround(0.08 * rate);
  auto xa = [&](int64_t i) { return x[static_cast<size_t>(std::clamp<int64_t>(i, 0, n - 1))]; };
  auto median = [](std::vector<float> w) {
    std::sort(w.begin(), w.end());
    return w[w.size() / 2];
  };
  // m1 over [-h2 - hl, n + h2 + hl), m2 and y over [-hl, n + hl).
  const int64_t m1_lo = -h2 - hl, m1_hi = n + h2 + hl;
  std::vector<float> m1(static_cast<size_t>(m1_hi - m1_lo)), w;
  for (int64_t j = m1_lo; j < m1_hi; ++j) {
    w.clear();
    for (int64_t k = j - h1; k <= j + h1; ++k) w.push_back(xa(k));
    m1[static_cast<size_t>(j - m1_lo)] = median(w);
  }
  std::vector<float> y(static_cast<size_t>(n + 2 * hl));
  for (int64_t j = -hl; j < n + hl; ++j) {
    w.clear();
    for (int64_t k = j - h2; k <= j + h2; ++k) w.push_back(m1[static_cast<size_t>(k - m1_lo)]);
    y[static_cast<size_t>(j + hl)] = xa(j) - median(w);
  }
  std::vector<double> taps;
  double sum = 0;
  for (int64_t i = -hl; i <= hl; ++i) {
    const double fc = 37.5 / rate;
    const double sinc =
        i == 0 ? 2 * fc : std::sin(2 * std::numbers::pi * fc * i) / (std::numbers::pi * i);
    taps.push_back(sinc * (0.54 + 0.46 * std::cos(std::numbers::pi * i / (hl + 1))));
    sum += taps.back();
  }
  std::vector<float> out(x.size());
  for (int64_t i = 0; i < n; ++i) {
    double acc = 0;
    for (int64_t k = -hl; k <= hl; ++k) {
      acc += taps[static_cast<size_t>(k + hl)] / sum * y[static_cast<size_t>(i + k + hl)];
    }
    out[static_cast<size_t>(i)] = static_cast<float>(acc);
  }
  return out;
}

TEST(EcgFilter, MatchesDirectMediansAndFirAligned) {
  for (double rate : {125.0, 360.0}) {
    SCOPED_TRACE(absl::StrCat("rate ", rate));
    const SyntheticEcg ecg = MakeEcg(rate, 12, 21);
    absl::StatusOr<std::vector<float>> y = FilterEcg(ecg.mv, rate);
    ASSERT_TRUE(y.ok()) << y.status();
    const std::vector<float> ref = ReferenceFilter(ecg.mv, rate);
    ASSERT_EQ(y->size(), ref.size());
    float worst = 0;
    for (size_t i = 0; i < ref.size(); ++i) worst = std::max(worst, std::abs((*y)[i] - ref[i]));
    EXPECT_LT(worst, 2e-6f);  // float rounding of the FIR sum; signals ~1 mV
  }
}

TEST(EcgFilter, StreamingEqualsOfflineUnderRandomChunkings) {
  for (double rate : kRates) {
    const SyntheticEcg ecg = MakeEcg(rate, 20, 13);
    absl::StatusOr<std::vector<float>> offline = FilterEcg(ecg.mv, rate);
    ASSERT_TRUE(offline.ok());
    auto filter = StreamingEcgFilter::Create(rate);
    ASSERT_TRUE(filter.ok());
    const auto delay = static_cast<size_t>((*filter)->delay_samples());
    for (uint32_t seed = 1; seed <= 4; ++seed) {
      SCOPED_TRACE(absl::StrCat("rate ", rate, " chunking seed ", seed));
      std::vector<float> streamed;
      auto collect = [&](std::span<const float> y) {
        streamed.insert(streamed.end(), y.begin(), y.end());
      };
      size_t at = 0;
      for (size_t c : RandomChunks(ecg.mv.size(), rate, seed)) {
        (*filter)->Push(std::span<const float>(ecg.mv).subspan(at, c), collect);
        at += c;
      }
      (*filter)->Finish(collect);
      ASSERT_EQ(streamed.size(), ecg.mv.size() + delay);
      EXPECT_TRUE(std::equal(offline->begin(), offline->end(), streamed.begin() + delay));
    }
  }
}

// Steady-state gain of the filter for a sine, over the middle half of 60 s (or
// six periods), in dB.
double SineGainDb(double hz, double rate) {
  const auto n = static_cast<size_t>(rate * std::max(60.0, 6 / hz));
  std::vector<float> x(n);
  for (size_t i = 0; i < n; ++i)
    x[i] = static_cast<float>(std::sin(2 * std::numbers::pi * hz * i / rate));
  absl::StatusOr<std::vector<float>> y = FilterEcg(x, rate);
  double ex = 0, ey = 0;
  for (size_t i = n / 4; i < 3 * n / 4; ++i) {
    ex += x[i] * x[i];
    ey += (*y)[i] * (*y)[i];
  }
  return 10 * std::log10(ey / ex);
}

TEST(EcgFilter, RemovesBaselineKeepsQrsBandCutsMains) {
  for (double rate : kRates) {
    SCOPED_TRACE(absl::StrCat("rate ", rate));
    // Measured (all five rates): 0.1 Hz -58.1 to -59.0 dB; 10 Hz +0.01 dB;
    // 35 Hz -2.8 to -3.0 dB; 50 Hz -52 to -89 dB; 60 Hz -64 to -89 dB.
    EXPECT_LT(SineGainDb(0.1, rate), -55);
    EXPECT_NEAR(SineGainDb(10, rate), 0, 0.1);
    EXPECT_NEAR(SineGainDb(35, rate), -3, 0.3);
    EXPECT_LT(SineGainDb(50, rate), -50);
    EXPECT_LT(SineGainDb(60, rate), -50);
  }
}

TEST(EcgFilter, StatesItsDelay) {
  // 360 Hz: medians 36 + 108 samples, low-pass 29: 173 samples = 480.6 ms.
  auto filter = StreamingEcgFilter::Create(360);
  ASSERT_TRUE(filter.ok());
  EXPECT_EQ((*filter)->delay_samples(), 173);
  auto f250 = StreamingEcgFilter::Create(250);
  ASSERT_TRUE(f250.ok());
  EXPECT_EQ((*f250)->delay_samples(), 25 + 75 + 20);
  EXPECT_EQ(StreamingEcgFilter::Create(2000).status().code(), absl::StatusCode::kInvalidArgument);
}

// ---------------------------------------------------------------------------

TEST(QrsAllocation, PushNeverAllocates) {
  const SyntheticEcg ecg = MakeEcg(360, 20, 17);
  auto detector = StreamingQrsDetector::Create(Options(360));
  auto filter = StreamingEcgFilter::Create(360);
  ASSERT_TRUE(detector.ok() && filter.ok());
  int64_t beats = 0, outputs = 0;
  const std::vector<size_t> chunks = RandomChunks(ecg.mv.size(), 360, 3);
  g_news = 0;
  g_counting = true;
  size_t at = 0;
  for (size_t c : chunks) {
    const auto chunk = std::span<const float>(ecg.mv).subspan(at, c);
    (*detector)->Push(chunk, [&](int64_t) { ++beats; });
    (*filter)->Push(chunk,
                    [&](std::span<const float> y) { outputs += static_cast<int64_t>(y.size()); });
    at += c;
  }
  (*detector)->Finish([&](int64_t) { ++beats; });
  (*filter)->Finish([&](std::span<const float> y) { outputs += static_cast<int64_t>(y.size()); });
  g_counting = false;
  EXPECT_EQ(g_news.load(), 0);
  EXPECT_EQ(beats, static_cast<int64_t>(ecg.r_peaks.size()));
  EXPECT_EQ(outputs, static_cast<int64_t>(ecg.mv.size()) + 173);
}

// The beat classifier's front end on top: windows with RR and template
// context, with and without certification bounds (EnableBounds).
TEST(QrsAllocation, BeatWindowsPushNeverAllocates) {
  const SyntheticEcg ecg = MakeEcg(360, 20, 19);
  for (const bool bounds : {false, true}) {
    BeatWindowOptions o;
    o.sample_rate_hz = 360;
    o.rr_context = true;
    o.template_context = true;
    auto bw = StreamingBeatWindows::Create(o);
    ASSERT_TRUE(bw.ok()) << bw.status();
    if (bounds) {
      ASSERT_TRUE((*bw)->EnableBounds(1e-3).ok());
    }
    int64_t beats = 0;
    const auto count = [&](const Beat& b) {
      ++beats;
      EXPECT_EQ(b.lower.empty(), !bounds);
    };
    const std::vector<size_t> chunks = RandomChunks(ecg.mv.size(), 360, 4);
    g_news = 0;
    g_counting = true;
    size_t at = 0;
    for (size_t c : chunks) {
      (*bw)->Push(std::span<const float>(ecg.mv).subspan(at, c), count);
      at += c;
    }
    (*bw)->Finish(count);
    g_counting = false;
    EXPECT_EQ(g_news.load(), 0) << (bounds ? "with bounds" : "without bounds");
    EXPECT_EQ(beats, static_cast<int64_t>(ecg.r_peaks.size()));
  }
}

// ---------------------------------------------------------------------------
// ScoreDetections: greedy nearest pairs first, window inclusive.

TEST(ScoreDetections, CountsHandMadeMatches) {
  // 100 Hz, window 0.15 s = 15 samples. 200 takes 195 (5 away) over 190 (10);
  // 300 has nothing within 15; 190 and 500 match nothing.
  const std::vector<int64_t> ref = {100, 200, 300};
  const std::vector<int64_t> det = {500, 105, 190, 195};  // order does not matter
  DetectionScore s = ScoreDetections(ref, det, 100);
  EXPECT_EQ(s.true_positives, 2);
  EXPECT_EQ(s.false_negatives, 1);
  EXPECT_EQ(s.false_positives, 2);
  EXPECT_DOUBLE_EQ(s.sensitivity(), 2.0 / 3);
  EXPECT_DOUBLE_EQ(s.positive_predictivity(), 0.5);
}

TEST(ScoreDetections, WindowIsInclusiveAndEachDetectionMatchesOnce) {
  EXPECT_EQ(
      ScoreDetections(std::vector<int64_t>{100}, std::vector<int64_t>{154}, 360).true_positives, 1);
  EXPECT_EQ(
      ScoreDetections(std::vector<int64_t>{100}, std::vector<int64_t>{155}, 360).true_positives, 0);
  // One detection between two beats 20 samples apart, equidistant: it goes to
  // the earlier beat; the later one is missed.
  DetectionScore s =
      ScoreDetections(std::vector<int64_t>{100, 120}, std::vector<int64_t>{110}, 100);
  EXPECT_EQ(s.true_positives, 1);
  EXPECT_EQ(s.false_negatives, 1);
  EXPECT_EQ(s.false_positives, 0);
  // Nearest first, not time order: 112 takes 110 (2 away), so 100 is left
  // without a detection and 125 is an extra, though a time-ordered matcher
  // would have paired 100-110 and 112-125.
  s = ScoreDetections(std::vector<int64_t>{100, 112}, std::vector<int64_t>{110, 125}, 100);
  EXPECT_EQ(s.true_positives, 1);
  EXPECT_EQ(s.false_negatives, 1);
  EXPECT_EQ(s.false_positives, 1);
}

TEST(ScoreDetections, EmptyListsScoreOne) {
  DetectionScore s = ScoreDetections({}, {}, 360);
  EXPECT_EQ(s.sensitivity(), 1.0);
  EXPECT_EQ(s.positive_predictivity(), 1.0);
  s = ScoreDetections(std::vector<int64_t>{5}, {}, 360);
  EXPECT_EQ(s.sensitivity(), 0.0);
  EXPECT_EQ(s.false_negatives, 1);
}

// ---------------------------------------------------------------------------
// The committed 60 s excerpts of MIT-BIH records 101 and 208 (MLII).

TEST(QrsDetector, MitBihExcerptsScoreAtLeast99Percent) {
  const std::string dir = WP_TEST_DATA_DIR "/mitdb";
  for (const char* name : {"101", "208"}) {
    SCOPED_TRACE(name);
    absl::StatusOr<WfdbRecord> rec = ReadWfdbRecord(dir + "/" + name);
    ASSERT_TRUE(rec.ok()) << rec.status();
    absl::StatusOr<std::vector<Annotation>> ann = ReadMitAnnotations(dir + "/" + name + ".atr");
    ASSERT_TRUE(ann.ok()) << ann.status();
    int lead = 0;
    for (size_t s = 0; s < rec->header.signals.size(); ++s) {
      if (rec->header.signals[s].description == "MLII") lead = static_cast<int>(s);
    }
    const double rate = rec->header.sampling_frequency;
    absl::StatusOr<std::vector<int64_t>> peaks = DetectRPeaks(rec->Physical(lead), Options(rate));
    ASSERT_TRUE(peaks.ok()) << peaks.status();
    std::vector<int64_t> beats;
    for (const Annotation& a : *ann) {
      if (AamiClass(a.Symbol()) != 0) beats.push_back(a.sample);
    }
    const DetectionScore s = ScoreDetections(beats, *peaks, rate);
    std::printf("%s: %zu beats, TP %lld FN %lld FP %lld\n", name, beats.size(),
                static_cast<long long>(s.true_positives), static_cast<long long>(s.false_negatives),
                static_cast<long long>(s.false_positives));
    EXPECT_GE(s.sensitivity(), 0.99) << s.false_negatives << " missed of " << beats.size();
    EXPECT_GE(s.positive_predictivity(), 0.99) << s.false_positives << " extra";
  }
}

}  // namespace
}  // namespace wavepool::dsp
