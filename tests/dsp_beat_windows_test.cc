// StreamingBeatWindows' RR channels, checked against RR intervals computed
// here from the emitted R peaks themselves (an independent reference), in both
// encodings: RR over the long-term mean (ecg-beats v1/v2) and log ratios (v3).
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
  for (size_t i = 0; i < mv.size(); i += 997) {
    (*bw)->Push(std::span(mv).subspan(i, std::min<size_t>(997, mv.size() - i)), keep);
  }
  (*bw)->Finish(keep);
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

}  // namespace
}  // namespace wavepool::dsp
