// EventDetector on hand-made score sequences: each expectation below is worked
// out by hand from the hysteresis rule in model_spec.proto's EventSpec.
#include "server/event_detector.h"

#include <vector>

#include "gtest/gtest.h"

namespace wavepool::server {
namespace {

// Labels a, b, _background_; windows of 100 samples every 25.
v1::ModelSpec Spec(float on, float off, uint32_t min_windows) {
  v1::ModelSpec spec;
  for (const std::string label : {"a", "b", "_background_"}) *spec.add_labels() = label;
  spec.mutable_events()->set_on_threshold(on);
  spec.mutable_events()->set_off_threshold(off);
  spec.mutable_events()->set_min_windows(min_windows);
  return spec;
}

struct Got {
  std::string label;
  uint64_t start, end;
  float score;
  size_t after_window;  // how many windows had been added when it was emitted
};

std::vector<Got> Detect(const v1::ModelSpec& spec, const std::vector<std::vector<float>>& scores) {
  auto d = EventDetector::Create(spec);
  EXPECT_TRUE(d.ok()) << d.status();
  std::vector<Got> got;
  size_t added = 0;
  auto on = [&](v1::Event&& e) {
    got.push_back({e.label(), e.start_sample(), e.end_sample(), e.score(), added});
  };
  for (const auto& s : scores) {
    ++added;
    d->Add(s, 25 * (added - 1), 25 * (added - 1) + 100, on);
  }
  ++added;
  d->Finish(on);
  return got;
}

TEST(EventDetector, HysteresisGivesOneEventPerRunAndSharedSpan) {
  // Windows 1-3 hold "a": 0.6 starts it (>= on 0.5), 0.3 keeps it (>= off 0.25),
  // 0.2 ends it at window 4. Shared span: last start (75) .. first end (125).
  const auto got = Detect(Spec(0.5f, 0.25f, 1), {{0.1f, 0.1f, 0.8f},
                                              {0.6f, 0.1f, 0.3f},
                                              {0.9f, 0.0f, 0.1f},
                                              {0.3f, 0.1f, 0.6f},
                                              {0.2f, 0.1f, 0.7f}});
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].label, "a");
  EXPECT_EQ(got[0].start, 75u);
  EXPECT_EQ(got[0].end, 125u);
  EXPECT_FLOAT_EQ(got[0].score, 0.9f);
  EXPECT_EQ(got[0].after_window, 5u) << "sent as soon as the window that ends it arrives";
}

TEST(EventDetector, AnotherLabelToppingWithOnThresholdTakesOver) {
  const auto got = Detect(Spec(0.5f, 0.25f, 1), {{0.7f, 0.2f, 0.1f},
                                              {0.3f, 0.6f, 0.1f},
                                              {0.1f, 0.1f, 0.8f}});
  ASSERT_EQ(got.size(), 2u);
  EXPECT_EQ(got[0].label, "a");
  EXPECT_EQ(got[0].start, 0u);
  EXPECT_EQ(got[0].end, 100u);
  EXPECT_EQ(got[1].label, "b");
  EXPECT_EQ(got[1].start, 25u);
  EXPECT_EQ(got[1].end, 125u);
}

TEST(EventDetector, BackgroundNeverStartsAnEventAndShortRunsAreDropped) {
  const auto got = Detect(Spec(0.5f, 0.25f, 2), {{0.1f, 0.1f, 0.8f},
                                              {0.6f, 0.1f, 0.3f},  // one window only
                                              {0.1f, 0.1f, 0.8f},
                                              {0.0f, 0.7f, 0.3f},
                                              {0.0f, 0.6f, 0.4f}});  // open at the end
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].label, "b");
  EXPECT_EQ(got[0].after_window, 6u) << "closed by Finish";
}

TEST(EventDetector, AStreamShorterThanMinWindowsStillGivesItsEvent) {
  // One window in all (a lone clip): min_windows 2 cannot be met, so the open
  // event is reported when it covers the whole stream.
  const auto one = Detect(Spec(0.5f, 0.25f, 2), {{0.9f, 0.05f, 0.05f}});
  ASSERT_EQ(one.size(), 1u);
  EXPECT_EQ(one[0].label, "a");
  // Two windows where the event covers only the last: not enough.
  EXPECT_TRUE(Detect(Spec(0.5f, 0.25f, 2), {{0.1f, 0.1f, 0.8f}, {0.9f, 0.05f, 0.05f}}).empty());
}

TEST(EventDetector, AConfidentShortRunPassesTheSingleWindowThreshold) {
  v1::ModelSpec spec = Spec(0.5f, 0.25f, 2);
  spec.mutable_events()->set_single_window_threshold(0.9f);
  // One window at 0.95 (reported), one at 0.8 (too short and not confident).
  const auto got = Detect(spec, {{0.1f, 0.1f, 0.8f},
                                 {0.95f, 0.0f, 0.05f},
                                 {0.1f, 0.1f, 0.8f},
                                 {0.0f, 0.8f, 0.2f},
                                 {0.1f, 0.1f, 0.8f}});
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].label, "a");
}

TEST(EventDetector, RunLongerThanAWindowFallsBackToTheWholeSpan) {
  // Six windows of 100 every 25 share nothing: first end 100 <= last start 125.
  std::vector<std::vector<float>> s(6, {0.9f, 0.05f, 0.05f});
  const auto got = Detect(Spec(0.5f, 0.25f, 1), s);
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].start, 0u);
  EXPECT_EQ(got[0].end, 225u);
}

TEST(EventDetector, InvalidThresholdsAndUnknownBackgroundLabelAreRejected) {
  EXPECT_FALSE(EventDetector::Create(Spec(0.4f, 0.6f, 1)).ok());
  v1::ModelSpec spec = Spec(0.5f, 0.2f, 1);
  spec.mutable_events()->add_background_labels("silence");
  auto d = EventDetector::Create(spec);
  ASSERT_FALSE(d.ok());
  EXPECT_NE(d.status().message().find("silence"), std::string::npos);
}

}  // namespace
}  // namespace wavepool::server
