// Shift consistency and test-time shift pooling (clients/shift_eval.h) on the
// committed excerpts (tests/data/fsdd, tests/data/mitdb) with small seeded
// models: every figure is recounted here by the plain route — delay the
// samples (or cut the beat windows earlier), run the model one window at a
// time, softmax, take the top class — and must agree exactly. The ECG shift
// itself is checked against its definition: the lead channel of a window cut
// s samples earlier is the unshifted one displaced by s samples.
#include "clients/shift_eval.h"

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "clients/digit_data.h"
#include "clients/ecg_data.h"
#include "dsp/log_mel.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nn/front_end.h"
#include "nn/kernels.h"
#include "nn/model.h"
#include "nn/spec.h"

namespace wavepool::cli {
namespace {

using ::testing::HasSubstr;

// 8 kHz, windows of 800 samples every 400, frames 160/80 (9 per window), 16
// bands; a blurred max pool, so the new layer is exercised end to end.
constexpr char kDigitSpec[] = R"({
  "name": "d", "version": "1", "kind": "FIXED_WINDOWS", "sampleRateHz": 8000,
  "windowing": {"lengthSamples": 800, "hopSamples": 400},
  "frontEnd": {"stft": {"frameLength": 160, "frameHop": 80, "fftSize": 256, "window": "HANN"},
               "mel": {"numBands": 16, "fMinHz": 0, "fMaxHz": 4000}, "normalization": "PER_WINDOW"},
  "layers": [
    {"name": "conv1", "conv2d": {"outChannels": 6, "kernelTime": 3, "kernelFreq": 3, "padTime": 1, "padFreq": 1}},
    {"name": "relu1", "relu": {}},
    {"name": "pool1", "maxPool2d": {"kernelTime": 2, "kernelFreq": 2, "blur": 3}},
    {"name": "gap", "globalAvgPool": {}},
    {"name": "fc", "dense": {"outFeatures": 11}}
  ],
  "labels": ["0", "1", "2", "3", "4", "5", "6", "7", "8", "9", "_background_"]
})";

// 360 Hz beat windows, 90 + 144 samples, 5 channels (lead + 4 RR).
constexpr char kEcgSpec[] = R"({
  "name": "e", "version": "1", "kind": "BEAT_WINDOWS", "sampleRateHz": 360,
  "beatWindowing": {"beforeS": 0.25, "afterS": 0.4, "rrContext": true},
  "layers": [
    {"name": "conv1", "conv1d": {"outChannels": 4, "kernel": 5, "padding": 2}},
    {"name": "relu1", "relu": {}},
    {"name": "pool1", "maxPool1d": {"kernel": 2, "blur": 3}},
    {"name": "gap", "globalMaxPool": {}},
    {"name": "fc", "dense": {"outFeatures": 5}}
  ],
  "labels": ["N", "S", "V", "F", "Q"]
})";

std::shared_ptr<const nn::Model> MakeModel(const char* json, uint64_t seed) {
  auto spec = nn::ParseSpecJson(json);
  EXPECT_TRUE(spec.ok()) << spec.status();
  auto w = nn::InitWeights(*spec, seed);
  EXPECT_TRUE(w.ok()) << w.status();
  // Non-zero biases, so the classes are not tied at the start.
  for (auto& [name, t] : *w) {
    if (name.find(".bias") != std::string::npos) {
      for (size_t i = 0; i < t.data.size(); ++i) t.data[i] = 0.1f * static_cast<float>(i % 7) - 0.3f;
    }
  }
  auto m = nn::Model::Create(*spec, *w);
  EXPECT_TRUE(m.ok()) << m.status();
  return *m;
}

std::vector<Clip> Clips() {
  auto d = LoadDigitData(std::string(WP_TEST_DATA_DIR) + "/fsdd", "all", 8000);
  EXPECT_TRUE(d.ok()) << d.status();
  EXPECT_EQ(d->train.size(), 20u);
  return d->train;
}

// The plain route: digit scores of one clip delayed by `shift` (per-digit
// maximum over its windows of the softmax), and the number of windows.
std::vector<float> DigitScores(const nn::Model& m, const Clip& c, int shift, int64_t* windows) {
  const auto fo = nn::FeatureOptionsFromSpec(m.spec());
  // Delay: zeros before; advance (negative): the first samples dropped.
  std::vector<float> x(static_cast<size_t>(std::max(shift, 0)), 0.0f);
  x.insert(x.end(), c.samples.begin() + std::max(-shift, 0), c.samples.end());
  bool padded = false;
  auto ws = dsp::FeatureWindows(*fo, x, &padded);
  nn::Workspace work(m, 1);
  std::vector<float> best(10, 0.0f), out(m.output_size());
  for (const auto& w : *ws) {
    m.Run(w.data(), 1, out.data(), work);
    nn::Softmax(out.size(), out.data());
    for (int d = 0; d < 10; ++d) best[d] = std::max(best[d], out[d]);
  }
  if (windows != nullptr) *windows += static_cast<int64_t>(ws->size());
  return best;
}

int Top(const std::vector<float>& s) {
  return static_cast<int>(std::max_element(s.begin(), s.end()) - s.begin());
}

TEST(ShiftEval, DigitConsistencyEqualsDirectRecount) {
  const auto model = MakeModel(kDigitSpec, 3);
  const std::vector<Clip> clips = Clips();
  ShiftEvalOptions o;
  o.shifts = {1, 7, 40};
  o.batch = 3;  // several windows per call, unlike the recount
  auto r = EvalDigitShifts(*model, clips, o);
  ASSERT_TRUE(r.ok()) << r.status();
  ASSERT_EQ(r->examples, 20);
  ASSERT_EQ(r->consistency.size(), 3u);
  int64_t windows = 0;
  int correct = 0;
  std::vector<int> same(3, 0), correct_at(3, 0);
  std::vector<double> change(3, 0);
  for (const Clip& c : clips) {
    const std::vector<float> base = DigitScores(*model, c, 0, &windows);
    const int top = Top(base);
    correct += top == c.digit;
    for (size_t s = 0; s < 3; ++s) {
      const std::vector<float> sh = DigitScores(*model, c, o.shifts[s], nullptr);
      same[s] += Top(sh) == top;
      correct_at[s] += Top(sh) == c.digit;
      change[s] += std::abs(double{sh[top]} - double{base[top]});
    }
  }
  EXPECT_EQ(r->forward_passes, windows);
  EXPECT_DOUBLE_EQ(r->accuracy, correct / 20.0);
  double mean = 0;
  for (size_t s = 0; s < 3; ++s) {
    SCOPED_TRACE("shift " + std::to_string(o.shifts[s]));
    EXPECT_DOUBLE_EQ(r->consistency[s], same[s] / 20.0);
    EXPECT_DOUBLE_EQ(r->accuracy_at_shift[s], correct_at[s] / 20.0);
    // Batched and one-at-a-time runs may differ in the last bit of a score.
    EXPECT_NEAR(r->score_change[s], change[s] / 20.0, 1e-6);
    mean += same[s] / 20.0 / 3;
  }
  EXPECT_NEAR(r->mean_consistency, mean, 1e-12);
  EXPECT_GT(change[2], 1e-4) << "a 40-sample shift must move the scores";
}

TEST(ShiftEval, DigitTestTimePoolingAveragesOrMaxesTheShiftedScores) {
  const auto model = MakeModel(kDigitSpec, 5);
  const std::vector<Clip> clips = Clips();
  for (TtaPool pool : {TtaPool::kAvg, TtaPool::kMax}) {
    ShiftEvalOptions o;
    o.tta_shifts = {-40, 0, 120};
    o.tta_pool = pool;
    auto r = EvalDigitShifts(*model, clips, o);
    ASSERT_TRUE(r.ok()) << r.status();
    int64_t windows = 0;
    int correct = 0;
    for (const Clip& c : clips) {
      std::vector<float> pooled(10, pool == TtaPool::kMax ? -1.0f : 0.0f);
      for (int t : o.tta_shifts) {
        const std::vector<float> s = DigitScores(*model, c, t, &windows);
        for (int d = 0; d < 10; ++d) {
          pooled[d] = pool == TtaPool::kMax ? std::max(pooled[d], s[d]) : pooled[d] + s[d];
        }
      }
      correct += Top(pooled) == c.digit;
    }
    EXPECT_DOUBLE_EQ(r->accuracy, correct / 20.0) << (pool == TtaPool::kMax ? "max" : "avg");
    EXPECT_EQ(r->forward_passes, windows);  // every TTA shift is paid for
    EXPECT_TRUE(r->consistency.empty());
    EXPECT_EQ(r->mean_consistency, 1.0);
  }
}

class ShiftedBeatWindow : public ::testing::TestWithParam<int> {};

TEST_P(ShiftedBeatWindow, IsTheLeadDisplaced) {
  dsp::BeatWindowOptions base;
  base.sample_rate_hz = 360, base.before_s = 0.25, base.after_s = 0.4, base.rr_context = true;
  const int shift = GetParam();
  const dsp::BeatWindowOptions shifted = ShiftedBeatOptions(base, shift);
  EXPECT_EQ(shifted.before_samples(), base.before_samples() + shift);
  EXPECT_EQ(shifted.window_samples(), base.window_samples());
  const std::string dir = std::string(WP_TEST_DATA_DIR) + "/mitdb";
  auto a = LoadRecordBeats(dir, "208", base);
  auto b = LoadRecordBeats(dir, "208", shifted);
  ASSERT_TRUE(a.ok() && b.ok());
  ASSERT_GT(a->beats(), 20u);
  ASSERT_EQ(a->r_sample, b->r_sample);
  const auto w = static_cast<size_t>(base.window_samples());
  for (size_t beat = 0; beat < a->beats(); ++beat) {
    const float* fa = a->features.data() + beat * a->values_per_beat;
    const float* fb = b->features.data() + beat * b->values_per_beat;
    // Shifted sample j is unshifted sample j - shift, where both lie in the window.
    for (int64_t j = std::max(shift, 0); j < static_cast<int64_t>(w) + std::min(shift, 0); ++j) {
      ASSERT_EQ(fb[j], fa[j - shift]) << "beat " << beat << ", sample " << j;
    }
    for (size_t j = w; j < a->values_per_beat; ++j) ASSERT_EQ(fb[j], fa[j]) << "RR channel value " << j;
  }
}

INSTANTIATE_TEST_SUITE_P(Shifts, ShiftedBeatWindow, ::testing::Values(5, -7));

TEST(ShiftEval, EcgConsistencyEqualsDirectRecount) {
  const auto model = MakeModel(kEcgSpec, 7);
  const std::string dir = std::string(WP_TEST_DATA_DIR) + "/mitdb";
  ShiftEvalOptions o;
  o.shifts = {2, 9};
  auto r = EvalEcgShifts(*model, dir, {"101", "208"}, o);
  ASSERT_TRUE(r.ok()) << r.status();
  const dsp::BeatWindowOptions base = BeatOptionsFromSpec(model->spec());
  nn::Workspace ws(*model, 1);
  std::vector<float> out(5);
  const auto top_of = [&](const RecordBeats& rb, size_t b) {
    model->Run(rb.features.data() + b * rb.values_per_beat, 1, out.data(), ws);
    return Top(out);  // softmax keeps the order
  };
  int64_t n = 0, correct = 0;
  std::vector<int64_t> same(2, 0);
  for (const char* rec : {"101", "208"}) {
    auto b0 = LoadRecordBeats(dir, rec, base);
    ASSERT_TRUE(b0.ok());
    std::vector<RecordBeats> sh;
    for (int s : o.shifts) sh.push_back(*LoadRecordBeats(dir, rec, ShiftedBeatOptions(base, s)));
    for (size_t b = 0; b < b0->beats(); ++b) {
      if (b0->label[b] < 0) continue;
      ++n;
      const int top = top_of(*b0, b);
      correct += top == b0->label[b];
      for (size_t s = 0; s < sh.size(); ++s) same[s] += top_of(sh[s], b) == top;
    }
  }
  ASSERT_EQ(r->examples, n);
  EXPECT_DOUBLE_EQ(r->accuracy, static_cast<double>(correct) / n);
  for (size_t s = 0; s < 2; ++s) {
    EXPECT_DOUBLE_EQ(r->consistency[s], static_cast<double>(same[s]) / n) << "shift " << o.shifts[s];
  }
}

TEST(ShiftEval, BadOptionsAreErrors) {
  const auto digit = MakeModel(kDigitSpec, 3);
  const auto ecg = MakeModel(kEcgSpec, 3);
  ShiftEvalOptions o;
  o.shifts = {0};
  EXPECT_THAT(EvalDigitShifts(*digit, {}, o).status().message(), HasSubstr("shift 0 must be in [1,"));
  o.shifts = {1};
  o.tta_shifts = {-(1 << 20) - 1};
  EXPECT_THAT(EvalDigitShifts(*digit, {}, o).status().message(), HasSubstr("TTA shift -1048577"));
  o.tta_shifts = {-90, 0};  // the window starts 90 samples before R
  EXPECT_THAT(EvalEcgShifts(*ecg, WP_TEST_DATA_DIR "/mitdb", {"208"}, o).status().message(),
              HasSubstr("must be > -90"));
  o.tta_shifts = {};
  o.shifts = {144};  // the window reaches 144 samples after R
  EXPECT_THAT(EvalEcgShifts(*ecg, WP_TEST_DATA_DIR "/mitdb", {"208"}, o).status().message(),
              HasSubstr("must be < the 144 samples"));
  EXPECT_FALSE(EvalEcgShifts(*digit, WP_TEST_DATA_DIR "/mitdb", {"208"}, ShiftEvalOptions{}).ok());
  EXPECT_FALSE(EvalDigitShifts(*ecg, {}, ShiftEvalOptions{}).ok());
  EXPECT_THAT(ParseShiftList("0,4x", 0).status().message(), HasSubstr("shift '4x'"));
  EXPECT_THAT(ParseShiftList("", 0).status().message(), HasSubstr("no shifts"));
  EXPECT_THAT(ParseShiftList("3,-1", 0).status().message(), HasSubstr("shift '-1'"));
  auto ok = ParseShiftList("0, 40,80", 0);
  ASSERT_TRUE(ok.ok());
  EXPECT_EQ(*ok, (std::vector<int>{0, 40, 80}));
}

}  // namespace
}  // namespace wavepool::cli
