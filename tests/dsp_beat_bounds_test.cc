// StreamingBeatWindows::EnableBounds: on MIT-BIH record 101 (tests/data), every
// perturbation of the samples within eps that leaves the detector's R peaks
// where they were (the stated assumption) gives beat windows inside the
// bounds; eps = 0 bounds the features within rounding; bounds do not change
// the features; bad budgets are refused.
#include <cmath>
#include <random>
#include <string>
#include <vector>

#include "dsp/beat_windows.h"
#include "dsp/wfdb.h"
#include "gtest/gtest.h"

namespace wavepool::dsp {
namespace {

struct BeatRun {
  std::vector<int64_t> peaks;
  std::vector<std::vector<float>> features, lower, upper;
};

BeatWindowOptions Options(double rate) {
  BeatWindowOptions o;
  o.sample_rate_hz = rate;
  o.rr_context = true;
  o.template_context = true;
  return o;
}

BeatRun Beats(const std::vector<float>& mv, double rate, double eps) {
  auto bw = StreamingBeatWindows::Create(Options(rate));
  EXPECT_TRUE(bw.ok()) << bw.status();
  if (eps >= 0) {
    EXPECT_TRUE((*bw)->EnableBounds(eps).ok());
  }
  BeatRun run;
  const auto keep = [&](const Beat& b) {
    run.peaks.push_back(b.r_sample);
    run.features.emplace_back(b.features.begin(), b.features.end());
    run.lower.emplace_back(b.lower.begin(), b.lower.end());
    run.upper.emplace_back(b.upper.begin(), b.upper.end());
  };
  for (size_t i = 0; i < mv.size(); i += 1000) {
    (*bw)->Push(std::span(mv).subspan(i, std::min<size_t>(1000, mv.size() - i)), keep);
  }
  (*bw)->Finish(keep);
  return run;
}

std::vector<float> Record101(double* rate) {
  auto rec = ReadWfdbRecord(std::string(WP_TEST_DATA_DIR) + "/mitdb/101.hea");
  EXPECT_TRUE(rec.ok()) << rec.status();
  *rate = rec->header.sampling_frequency;
  std::vector<float> mv = rec->Physical(rec->SignalNamed("MLII"));
  mv.resize(std::min<size_t>(mv.size(), static_cast<size_t>(20 * *rate)));  // 20 s
  return mv;
}

TEST(BeatBounds, PerturbationsThatKeepThePeaksStayInsideTheBounds) {
  double rate = 0;
  const std::vector<float> mv = Record101(&rate);
  for (double eps : {1e-3, 2e-2}) {
    SCOPED_TRACE("eps " + std::to_string(eps));
    const BeatRun bounded = Beats(mv, rate, eps);
    ASSERT_GT(bounded.peaks.size(), 10u);
    const BeatRun plain = Beats(mv, rate, -1);
    EXPECT_EQ(plain.features, bounded.features);  // bounds change nothing else
    std::mt19937 rng(23);
    std::uniform_real_distribution<float> unit(-1, 1);
    int compared = 0;
    for (int trial = 0; trial < 12; ++trial) {
      std::vector<float> p(mv.size());
      for (size_t n = 0; n < mv.size(); ++n) {
        const float s = unit(rng);
        // Sign vertices, uniform draws, and a slow square wave (baseline steps).
        const float d = trial % 3 == 0 ? (s < 0 ? -1.0f : 1.0f)
                        : trial % 3 == 1 ? s
                                         : ((n / 97) % 2 ? 1.0f : -1.0f);
        p[n] = mv[n] + static_cast<float>(eps) * d;
      }
      const BeatRun moved = Beats(p, rate, -1);
      if (moved.peaks != bounded.peaks) continue;  // outside the stated assumption
      ++compared;
      for (size_t b = 0; b < moved.features.size(); ++b) {
        for (size_t i = 0; i < moved.features[b].size(); ++i) {
          ASSERT_LE(bounded.lower[b][i], moved.features[b][i]) << "trial " << trial << " beat " << b << " value " << i;
          ASSERT_GE(bounded.upper[b][i], moved.features[b][i]) << "trial " << trial << " beat " << b << " value " << i;
        }
      }
    }
    EXPECT_GE(compared, 4);  // 12 and 5 of 12 kept every peak when written
  }
}

TEST(BeatBounds, ZeroEpsilonBoundsAreTight) {
  double rate = 0;
  const std::vector<float> mv = Record101(&rate);
  const BeatRun run = Beats(mv, rate, 0);
  ASSERT_GT(run.peaks.size(), 10u);
  for (size_t b = 0; b < run.features.size(); ++b) {
    for (size_t i = 0; i < run.features[b].size(); ++i) {
      EXPECT_LE(run.lower[b][i], run.features[b][i]);
      EXPECT_GE(run.upper[b][i], run.features[b][i]);
      // The float-rounding allowance only: 1e-5 mV x gain over a scale near 1 mV.
      EXPECT_LT(run.upper[b][i] - run.lower[b][i], 1e-3f) << "beat " << b << " value " << i;
    }
  }
}

TEST(BeatBounds, BadBudgetsAreRefused) {
  auto bw = StreamingBeatWindows::Create(Options(360));
  ASSERT_TRUE(bw.ok());
  EXPECT_EQ((*bw)->EnableBounds(-1).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ((*bw)->EnableBounds(std::nan("")).code(), absl::StatusCode::kInvalidArgument);
  std::vector<float> x(720, 0.1f);
  (*bw)->Push(x, [](const Beat&) {});
  EXPECT_EQ((*bw)->EnableBounds(0.01).code(), absl::StatusCode::kFailedPrecondition);
}

// A budget raised mid-stream (the session's, as the stream's peak grows)
// widens the next beats' lead bounds exactly as that budget from the start
// would; beats already out keep theirs; it needs EnableBounds first.
TEST(BeatBounds, SetBoundsBudgetWidensTheBeatsThatFollow) {
  double rate = 0;
  const std::vector<float> mv = Record101(&rate);
  const BeatRun small = Beats(mv, rate, 1e-5);
  const BeatRun large = Beats(mv, rate, 1e-3);
  auto bw = StreamingBeatWindows::Create(Options(rate));
  ASSERT_TRUE(bw.ok());
  EXPECT_EQ((*bw)->SetBoundsBudget(1e-3).code(), absl::StatusCode::kFailedPrecondition);
  ASSERT_TRUE((*bw)->EnableBounds(1e-5).ok());
  BeatRun run;
  const auto keep = [&](const Beat& b) {
    run.lower.emplace_back(b.lower.begin(), b.lower.end());
    run.upper.emplace_back(b.upper.begin(), b.upper.end());
  };
  const size_t half = mv.size() / 2;
  (*bw)->Push(std::span(mv).first(half), keep);
  const size_t before = run.lower.size();
  EXPECT_EQ((*bw)->SetBoundsBudget(-1).code(), absl::StatusCode::kInvalidArgument);
  ASSERT_TRUE((*bw)->SetBoundsBudget(1e-3).ok());
  (*bw)->Push(std::span(mv).subspan(half), keep);
  (*bw)->Finish(keep);
  ASSERT_EQ(run.lower.size(), small.lower.size());
  ASSERT_GT(before, 2u);
  ASSERT_LT(before + 2, run.lower.size());
  const size_t len = static_cast<size_t>(Options(rate).window_samples());
  for (size_t b = 0; b < run.lower.size(); ++b) {
    const BeatRun& want = b < before ? small : large;
    // The lead channel: its radius is the budget's (the scale's and the
    // template's rings still hold the earlier beats' narrower intervals).
    for (size_t i = 0; i < len; ++i) {
      const float width = run.upper[b][i] - run.lower[b][i];
      const float want_width = want.upper[b][i] - want.lower[b][i];
      if (b < before) {
        EXPECT_EQ(run.lower[b][i], want.lower[b][i]) << "beat " << b << " value " << i;
        EXPECT_EQ(run.upper[b][i], want.upper[b][i]) << "beat " << b << " value " << i;
      } else {
        EXPECT_GT(width, 10 * (small.upper[b][i] - small.lower[b][i])) << "beat " << b;
        EXPECT_LE(width, want_width * 1.0001f) << "beat " << b << " value " << i;
      }
    }
  }
}

}  // namespace
}  // namespace wavepool::dsp
