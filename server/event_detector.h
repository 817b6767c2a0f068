// Turns per-window class scores into events with hysteresis (see EventSpec in
// model_spec.proto): causal, one window at a time, O(labels) per window, no
// allocation after Create.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "absl/functional/function_ref.h"
#include "absl/status/statusor.h"
#include "wavepool/v1/classifier.pb.h"
#include "wavepool/v1/model_spec.pb.h"

namespace wavepool::server {

class EventDetector {
 public:
  using EventFn = absl::FunctionRef<void(v1::Event&& event)>;

  // Validates the spec's events section against its labels.
  static absl::StatusOr<EventDetector> Create(const v1::ModelSpec& spec);

  // One window's softmax scores (one per label) and its span in the client's
  // numbering. Emits the event that this window ends, if any.
  void Add(std::span<const float> scores, uint64_t start_sample, uint64_t end_sample,
           EventFn on_event);
  // The stream ended: emits the open event, if any.
  void Finish(EventFn on_event);

  float on_threshold() const { return on_; }
  float off_threshold() const { return off_; }

 private:
  void Close(EventFn on_event, uint32_t min_windows);

  std::vector<std::string> labels_;
  std::vector<bool> is_event_label_;
  float on_ = 0.5f, off_ = 0.25f;
  uint32_t min_windows_ = 1;
  float strong_ = 2.0f;  // single_window_threshold; above 1 = never
  // The open event.
  int label_ = -1;
  uint32_t windows_ = 0;
  uint64_t stream_windows_ = 0;  // windows added so far
  float best_ = 0;
  uint64_t first_start_ = 0, first_end_ = 0, last_start_ = 0, last_end_ = 0;
};

}  // namespace wavepool::server
