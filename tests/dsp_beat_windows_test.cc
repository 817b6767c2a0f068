// StreamingBeatWindows' RR channels, checked against RR intervals computed
// here from the emitted R peaks themselves (an independent reference), in both
// encodings: RR over the long-term mean (ecg-beats v1/v2/v3) and log ratios;
// and the template channel, alone when the lead is omitted (ecg-beats v3),
// against a median template computed here from the emitted lead windows.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <numeric>
#include <string>
#include <vector>

#include "dsp/beat_windows.h"
#include "dsp/wfdb.h"
#include "gtest/gtest.h"

namespace wavepool::dsp {
namespace {

struct Emitted {
  int64_t r = 0;
  double rr_prev = 0, rr_next = 0;
  float rr[4] = {};  // the four RR channels' value (constant over the window)
};

// Streams mv through bw in chunks of `chunk` samples, then finishes.
void StreamAll(StreamingBeatWindows& bw, const std::vector<float>& mv, size_t chunk,
               StreamingBeatWindows::BeatFn keep) {
  for (size_t i = 0; i < mv.size(); i += chunk) {
    bw.Push(std::span(mv).subspan(i, std::min(chunk, mv.size() - i)), keep);
  }
  bw.Finish(keep);
}

// A committed excerpt's MLII lead in millivolts, and its sampling rate.
std::vector<float> MlIILead(const std::string& record, double* rate) {
  auto rec = ReadWfdbRecord(std::string(WP_TEST_DATA_DIR) + "/mitdb/" + record + ".hea");
  EXPECT_TRUE(rec.ok()) << rec.status();
  if (!rec.ok()) return {};
  *rate = rec->header.sampling_frequency;
  return rec->Physical(rec->SignalNamed("MLII"));
}

std::vector<Emitted> RunBeats(bool log_ratios, const std::vector<float>& mv, double rate) {
  BeatWindowOptions o;
  o.sample_rate_hz = rate;
  o.rr_context = true;
  o.template_context = true;
  o.rr_log_ratios = log_ratios;
  auto bw = StreamingBeatWindows::Create(o);
  EXPECT_TRUE(bw.ok()) << bw.status();
  std::vector<Emitted> out;
  const auto keep = [&](const Beat& b) {
    Emitted e;
    e.r = b.r_sample;
    e.rr_prev = b.rr_prev_s;
    e.rr_next = b.rr_next_s;
    const size_t len = static_cast<size_t>(o.window_samples());
    for (int c = 0; c < 4; ++c) {
      const size_t first = (2 + c) * len;
      e.rr[c] = b.features[first];
      for (size_t k = 1; k < len; ++k) EXPECT_EQ(b.features[first + k], e.rr[c]) << "not constant";
    }
    out.push_back(e);
  };
  StreamAll(**bw, mv, 997, keep);
  return out;
}

TEST(BeatWindows, RrChannelsMatchIntervalsBetweenTheEmittedPeaks) {
  double rate = 0;
  const std::vector<float> mv = MlIILead("208", &rate);
  ASSERT_FALSE(mv.empty());
  const std::vector<Emitted> scaled = RunBeats(false, mv, rate);
  const std::vector<Emitted> logs = RunBeats(true, mv, rate);
  ASSERT_GT(scaled.size(), 20u);  // record 208 has frequent ventricular beats: RR varies
  ASSERT_EQ(scaled.size(), logs.size());
  // RR intervals from the peaks, in seconds; the local mean is of the last 10
  // (this beat's previous RR included), the long-term one of all so far.
  std::vector<double> rrs;
  for (size_t i = 0; i < scaled.size(); ++i) {
    ASSERT_EQ(scaled[i].r, logs[i].r);
    const double prev = i > 0 ? static_cast<double>(scaled[i].r - scaled[i - 1].r) / rate : 0;
    const double next =
        i + 1 < scaled.size() ? static_cast<double>(scaled[i + 1].r - scaled[i].r) / rate : 0;
    EXPECT_NEAR(scaled[i].rr_prev, prev, 1e-9);
    EXPECT_NEAR(scaled[i].rr_next, next, 1e-9);
    if (i == 0 || i + 1 == scaled.size()) continue;  // unknown RRs are stood in for
    rrs.push_back(prev);
    const size_t n_local = std::min<size_t>(10, rrs.size());
    const double local = std::accumulate(rrs.end() - static_cast<long>(n_local), rrs.end(), 0.0) /
                         static_cast<double>(n_local);
    const double longer = std::accumulate(rrs.begin(), rrs.end(), 0.0) / static_cast<double>(rrs.size());
    const float tol = 2e-5f;
    EXPECT_NEAR(scaled[i].rr[0], prev / longer, tol) << "beat " << i;
    EXPECT_NEAR(scaled[i].rr[1], next / longer, tol) << "beat " << i;
    EXPECT_NEAR(scaled[i].rr[2], local / longer, tol) << "beat " << i;
    EXPECT_NEAR(scaled[i].rr[3], longer, tol) << "beat " << i;
    EXPECT_NEAR(logs[i].rr[0], std::log(prev / local), tol) << "beat " << i;
    EXPECT_NEAR(logs[i].rr[1], std::log(next / local), tol) << "beat " << i;
    EXPECT_NEAR(logs[i].rr[2], std::log(next / prev), tol) << "beat " << i;
    EXPECT_NEAR(logs[i].rr[3], std::log(local / longer), tol) << "beat " << i;
  }
}

// The irregularity channel against a median computed here from the emitted R
// peaks: for each of the last 32 RRs up to the beat's previous RR that has
// three RRs before it, the smallest |log(RR_i / RR_{i-lag})| over lags 1..3;
// sorted, the middle value (mean of the two for an even count).
TEST(BeatWindows, IrregularityChannelIsTheMedianSuccessiveRrChange) {
  double rate = 0;
  const std::vector<float> mv = MlIILead("208", &rate);
  ASSERT_FALSE(mv.empty());
  BeatWindowOptions o;
  o.sample_rate_hz = rate;
  o.rr_context = true;
  o.template_context = true;
  o.lead_channel = false;
  o.rr_log_ratios = true;
  BeatWindowOptions plain = o;
  o.rr_irregularity = true;
  ASSERT_EQ(o.channels(), plain.channels() + 1);
  const size_t len = static_cast<size_t>(o.window_samples());
  std::vector<std::vector<float>> with, without;
  std::vector<int64_t> peaks;
  for (auto [opts, out] : {std::pair{o, &with}, std::pair{plain, &without}}) {
    auto bw = StreamingBeatWindows::Create(opts);
    ASSERT_TRUE(bw.ok()) << bw.status();
    StreamAll(**bw, mv, 613, [&, out = out](const Beat& b) {
      out->emplace_back(b.features.begin(), b.features.end());
      if (out == &with) peaks.push_back(b.r_sample);
    });
  }
  ASSERT_GT(peaks.size(), 45u);  // more than 32 + 3 RRs: the window slides
  ASSERT_EQ(with.size(), without.size());
  std::vector<double> rrs;  // previous RR of every beat after the first, seconds
  size_t checked_full = 0;
  for (size_t i = 0; i < with.size(); ++i) {
    // The first channels are exactly the five-channel layout's.
    ASSERT_EQ(with[i].size(), without[i].size() + len);
    EXPECT_TRUE(std::equal(without[i].begin(), without[i].end(), with[i].begin())) << "beat " << i;
    if (i > 0) rrs.push_back(static_cast<double>(peaks[i] - peaks[i - 1]) / rate);
    std::vector<double> changes;
    for (size_t j = rrs.size(); j >= 4 && changes.size() < 32; --j) {
      double change = std::abs(std::log(rrs[j - 1] / rrs[j - 2]));
      change = std::min(change, std::abs(std::log(rrs[j - 1] / rrs[j - 3])));
      change = std::min(change, std::abs(std::log(rrs[j - 1] / rrs[j - 4])));
      changes.push_back(change);
    }
    double median = 0.03;
    if (changes.size() >= 4) {
      std::sort(changes.begin(), changes.end());
      const size_t m = changes.size() / 2;
      median = changes.size() % 2 ? changes[m] : 0.5 * (changes[m - 1] + changes[m]);
    }
    checked_full += changes.size() == 32;
    const float* channel = with[i].data() + without[i].size();
    EXPECT_NEAR(channel[0], std::log(0.01 + median), 1e-5) << "beat " << i;
    for (size_t k = 1; k < len; ++k) ASSERT_EQ(channel[k], channel[0]) << "not constant";
  }
  EXPECT_GT(checked_full, 5u);
}

TEST(BeatWindows, IrregularityNeedsTheRrContext) {
  BeatWindowOptions o;
  o.rr_context = false;
  o.rr_irregularity = true;
  EXPECT_FALSE(StreamingBeatWindows::Create(o).ok());
}

// Alignment against the unaligned windows of the same stream: each emitted
// lead window must be the detected beat's window moved by some s in
// [-align, align]; s must be the least-squares best match to the template
// (the median of the previous emitted, moved windows, computed here) over
// the QRS, or 0 when the best does not quarter the mismatch at 0; and the
// template channel must be the moved beat minus that template.
void CheckAlignment(const std::string& record, int* moved_beats) {
  double rate = 0;
  const std::vector<float> mv = MlIILead(record, &rate);
  ASSERT_FALSE(mv.empty());
  BeatWindowOptions aligned;
  aligned.sample_rate_hz = rate;
  aligned.rr_context = false;
  aligned.template_context = true;
  aligned.align_s = 0.06;
  BeatWindowOptions wide = aligned;  // unaligned, `align` more on each side
  wide.align_s = 0;
  const int64_t align = aligned.align_samples();
  wide.before_s += static_cast<double>(align) / rate;
  wide.after_s += static_cast<double>(align) / rate;
  ASSERT_EQ(wide.window_samples(), aligned.window_samples() + 2 * align);
  std::vector<std::vector<float>> a, w;
  for (auto [opts, out] : {std::pair{aligned, &a}, std::pair{wide, &w}}) {
    auto bw = StreamingBeatWindows::Create(opts);
    ASSERT_TRUE(bw.ok()) << bw.status();
    StreamAll(**bw, mv, 701, [out = out](const Beat& b) { out->emplace_back(b.features.begin(), b.features.end()); });
  }
  ASSERT_EQ(a.size(), w.size());
  ASSERT_GT(a.size(), 20u);
  const size_t len = static_cast<size_t>(aligned.window_samples());
  const int64_t before = aligned.before_samples();
  const int64_t q0 = before - std::llround(0.06 * rate), q1 = before + std::llround(0.08 * rate);
  std::vector<std::vector<float>> previous;  // emitted (moved) lead windows
  for (size_t i = 0; i < a.size(); ++i) {
    const float* lead = a[i].data();
    const float* dev = a[i].data() + len;
    const float* unmoved = w[i].data() + align;  // the wide window at shift 0
    int64_t s_found = 0;
    bool found = false;
    for (int64_t s = -align; s <= align && !found; ++s) {
      found = std::equal(lead, lead + len, unmoved + s);
      if (found) s_found = s;
    }
    ASSERT_TRUE(found) << record << " beat " << i << ": the lead is not the detected window moved";
    std::vector<float> tpl(len, 0.0f);
    const size_t have = std::min<size_t>(16, previous.size());
    for (size_t k = 0; k < len && have > 0; ++k) {
      std::vector<float> col;
      for (size_t j = previous.size() - have; j < previous.size(); ++j) col.push_back(previous[j][k]);
      std::sort(col.begin(), col.end());
      tpl[k] = col[have / 2];
    }
    if (have == 0) {
      EXPECT_EQ(s_found, 0);
    } else {
      auto cost = [&](int64_t s) {
        double c = 0;
        for (int64_t k = q0; k < q1; ++k) {
          const double d = unmoved[k + s] - tpl[static_cast<size_t>(k)];
          c += d * d;
        }
        return c;
      };
      double best = cost(0);
      for (int64_t s = -align; s <= align; ++s) best = std::min(best, cost(s));
      if (s_found != 0) {
        EXPECT_NEAR(cost(s_found), best, 1e-6 * (1 + best)) << record << " beat " << i;
        EXPECT_LE(cost(s_found), 0.25 * cost(0) * (1 + 1e-6)) << record << " beat " << i;
      } else {
        EXPECT_GT(best, 0.25 * cost(0) * (1 - 1e-6)) << record << " beat " << i << ": a move that quarters the mismatch was not taken";
      }
      for (size_t k = 0; k < len; ++k) ASSERT_NEAR(dev[k], lead[k] - tpl[k], 1e-6f) << record << " beat " << i;
    }
    *moved_beats += s_found != 0;
    previous.emplace_back(lead, lead + len);
  }
}

TEST(BeatWindows, AlignedBeatIsItsDetectedWindowMovedToMatchTheTemplate) {
  int moved = 0;
  CheckAlignment("101", &moved);
  CheckAlignment("208", &moved);
  EXPECT_EQ(moved, 0) << "101 and 208's beats are found at one fiducial point each";
  // 118: the detector takes some beats' S wave, 53 ms before the R, as the peak.
  CheckAlignment("118", &moved);
  EXPECT_GT(moved, 5);
  std::printf("118: %d beats moved by the alignment\n", moved);
}

TEST(BeatWindows, AlignmentNeedsTheTemplateAndABoundedRange) {
  BeatWindowOptions o;
  o.align_s = 0.05;
  o.template_context = false;
  EXPECT_FALSE(StreamingBeatWindows::Create(o).ok());
  o.template_context = true;
  EXPECT_TRUE(StreamingBeatWindows::Create(o).ok());
  o.align_s = 0.2;
  EXPECT_FALSE(StreamingBeatWindows::Create(o).ok());
}

struct Windows {
  std::vector<std::vector<float>> features, lower, upper;
};

Windows RunWindows(bool lead_channel, const std::vector<float>& mv, double rate) {
  BeatWindowOptions o;
  o.sample_rate_hz = rate;
  o.template_context = true;
  o.lead_channel = lead_channel;
  auto bw = StreamingBeatWindows::Create(o);
  EXPECT_TRUE(bw.ok()) << bw.status();
  EXPECT_TRUE((*bw)->EnableBounds(1e-3).ok());
  Windows out;
  const auto keep = [&](const Beat& b) {
    EXPECT_EQ(b.features.size(), o.window_values());
    out.features.emplace_back(b.features.begin(), b.features.end());
    out.lower.emplace_back(b.lower.begin(), b.lower.end());
    out.upper.emplace_back(b.upper.begin(), b.upper.end());
  };
  StreamAll(**bw, mv, 1499, keep);
  return out;
}

TEST(BeatWindows, OmittedLeadLeavesTheBeatMinusItsOwnTemplate) {
  double rate = 0;
  const std::vector<float> mv = MlIILead("208", &rate);
  ASSERT_FALSE(mv.empty());
  const Windows with = RunWindows(true, mv, rate);
  const Windows without = RunWindows(false, mv, rate);
  ASSERT_GT(with.features.size(), 20u);
  ASSERT_EQ(with.features.size(), without.features.size());
  BeatWindowOptions o;
  o.sample_rate_hz = rate;
  const size_t len = static_cast<size_t>(o.window_samples());
  size_t nonzero = 0;
  for (size_t i = 0; i < with.features.size(); ++i) {
    ASSERT_EQ(with.features[i].size(), without.features[i].size() + len);
    // Dropping the lead drops exactly channel 0, features and bounds alike.
    EXPECT_TRUE(std::equal(without.features[i].begin(), without.features[i].end(),
                           with.features[i].begin() + static_cast<long>(len)));
    EXPECT_TRUE(std::equal(without.lower[i].begin(), without.lower[i].end(),
                           with.lower[i].begin() + static_cast<long>(len)));
    EXPECT_TRUE(std::equal(without.upper[i].begin(), without.upper[i].end(),
                           with.upper[i].begin() + static_cast<long>(len)));
    // What is left is the lead minus the median (the upper one for an even
    // count) of the previous up-to-16 lead windows, computed here.
    const size_t have = std::min<size_t>(i, 16);
    for (size_t k = 0; k < len; k += 7) {
      float expected = 0;
      if (have > 0) {
        std::vector<float> column;
        for (size_t j = i - have; j < i; ++j) column.push_back(with.features[j][k]);
        std::sort(column.begin(), column.end());
        expected = with.features[i][k] - column[have / 2];
      }
      EXPECT_EQ(without.features[i][k], expected) << "beat " << i << " sample " << k;
      nonzero += expected != 0;
    }
  }
  EXPECT_GT(nonzero, 100u);
}

TEST(BeatWindows, OmittingTheLeadNeedsTheTemplate) {
  BeatWindowOptions o;
  o.sample_rate_hz = 360;
  o.lead_channel = false;
  EXPECT_EQ(o.Validate().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_FALSE(StreamingBeatWindows::Create(o).ok());
  o.template_context = true;
  EXPECT_TRUE(o.Validate().ok());
  o.rr_context = true;
  EXPECT_EQ(o.channels(), 5);
}

}  // namespace
}  // namespace wavepool::dsp
