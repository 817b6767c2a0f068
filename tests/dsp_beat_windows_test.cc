// StreamingBeatWindows' RR channels, checked against RR intervals computed
// here from the emitted R peaks themselves (an independent reference), in both
// encodings: RR over the long-term mean (ecg-beats v1/v2/v3) and log ratios;
// and the template channel, alone when the lead is omitted (ecg-beats v3),
// against a median template computed here from the emitted lead windows.
#include <algorithm>
#include <cmath>
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
  auto rec = ReadWfdbRecord(std::string(WP_TEST_DATA_DIR) + "/mitdb/208.hea");
  ASSERT_TRUE(rec.ok()) << rec.status();
  const double rate = rec->header.sampling_frequency;
  const std::vector<float> mv = rec->Physical(rec->SignalNamed("MLII"));
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
  auto rec = ReadWfdbRecord(std::string(WP_TEST_DATA_DIR) + "/mitdb/208.hea");
  ASSERT_TRUE(rec.ok()) << rec.status();
  const double rate = rec->header.sampling_frequency;
  const std::vector<float> mv = rec->Physical(rec->SignalNamed("MLII"));
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
  auto rec = ReadWfdbRecord(std::string(WP_TEST_DATA_DIR) + "/mitdb/208.hea");
  ASSERT_TRUE(rec.ok()) << rec.status();
  const double rate = rec->header.sampling_frequency;
  const std::vector<float> mv = rec->Physical(rec->SignalNamed("MLII"));
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
