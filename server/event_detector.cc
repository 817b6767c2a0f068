#include "server/event_detector.h"

#include <algorithm>

#include "absl/strings/str_cat.h"

namespace wavepool::server {

absl::StatusOr<EventDetector> EventDetector::Create(const v1::ModelSpec& spec) {
  EventDetector d;
  const v1::EventSpec& e = spec.events();
  d.labels_.assign(spec.labels().begin(), spec.labels().end());
  d.is_event_label_.assign(d.labels_.size(), true);
  std::vector<std::string> background(e.background_labels().begin(), e.background_labels().end());
  if (background.empty()) background.push_back("_background_");
  for (const std::string& b : background) {
    auto it = std::find(d.labels_.begin(), d.labels_.end(), b);
    if (it != d.labels_.end()) {
      d.is_event_label_[static_cast<size_t>(it - d.labels_.begin())] = false;
    } else if (e.background_labels_size() > 0) {
      return absl::InvalidArgumentError(
          absl::StrCat("events.backgroundLabels names \"", b, "\", which is not a label"));
    }
  }
  d.on_ = e.on_threshold() > 0 ? e.on_threshold() : 0.5f;
  d.off_ = e.off_threshold() > 0 ? e.off_threshold() : d.on_ / 2;
  if (d.on_ > 1 || d.off_ > d.on_) {
    return absl::InvalidArgumentError(absl::StrCat(
        "events: need 0 < offThreshold (", d.off_, ") <= onThreshold (", d.on_, ") <= 1"));
  }
  d.min_windows_ = e.min_windows() > 0 ? e.min_windows() : 1;
  if (e.single_window_threshold() < 0 || e.single_window_threshold() > 1) {
    return absl::InvalidArgumentError(absl::StrCat(
        "events.singleWindowThreshold (", e.single_window_threshold(), ") must be in [0, 1]"));
  }
  if (e.single_window_threshold() > 0) d.strong_ = e.single_window_threshold();
  return d;
}

void EventDetector::Close(EventFn on_event, uint32_t min_windows) {
  if (label_ < 0) return;
  if (windows_ >= min_windows || best_ >= strong_) {
    v1::Event ev;
    ev.set_label(labels_[static_cast<size_t>(label_)]);
    // The span every window of the run shares, if they share one.
    if (last_start_ < first_end_) {
      ev.set_start_sample(last_start_);
      ev.set_end_sample(first_end_);
    } else {
      ev.set_start_sample(first_start_);
      ev.set_end_sample(last_end_);
    }
    ev.set_score(best_);
    on_event(std::move(ev));
  }
  label_ = -1;
  windows_ = 0;
}

void EventDetector::Add(std::span<const float> scores, uint64_t start_sample, uint64_t end_sample,
                        EventFn on_event) {
  ++stream_windows_;
  const int top = static_cast<int>(std::max_element(scores.begin(), scores.end()) - scores.begin());
  const bool top_starts =
      is_event_label_[static_cast<size_t>(top)] && scores[static_cast<size_t>(top)] >= on_;
  if (label_ >= 0) {
    const bool other_takes_over = top_starts && top != label_;
    if (!other_takes_over && scores[static_cast<size_t>(label_)] >= off_) {
      ++windows_;
      best_ = std::max(best_, scores[static_cast<size_t>(label_)]);
      last_start_ = start_sample;
      last_end_ = end_sample;
      return;
    }
    Close(on_event, min_windows_);
  }
  if (top_starts) {
    label_ = top;
    windows_ = 1;
    best_ = scores[static_cast<size_t>(top)];
    first_start_ = last_start_ = start_sample;
    first_end_ = last_end_ = end_sample;
  }
}

void EventDetector::Finish(EventFn on_event) {
  // A stream shorter than min_windows windows (a lone short clip: one padded
  // window) can still hold a whole word: its open event needs every window.
  Close(on_event, static_cast<uint32_t>(
                      std::min<uint64_t>(min_windows_, std::max<uint64_t>(stream_windows_, 1))));
  stream_windows_ = 0;
}

}  // namespace wavepool::server
