// StreamingFeatures: the streaming wrapper of log_mel.h.
//
// Two kinds of event happen at sample counts known in advance: frame j is
// complete when sample j * frame_hop + frame_length - 1 arrives, window i when
// sample i * window_hop + window_length - 1 arrives. Push copies samples up to
// the next event, handles it and goes on, so the work done (and therefore every
// bit of the output) depends only on the samples, never on the chunking.
#include <algorithm>
#include <cassert>

#include "dsp/log_mel.h"
#include "util/status_macros.h"

namespace wavepool::dsp {

absl::StatusOr<StreamingFeatures> StreamingFeatures::Create(const FeatureWindowOptions& options) {
  RETURN_IF_ERROR(options.Validate());
  ASSIGN_OR_RETURN(LogMelFrame frame, LogMelFrame::Create(options.log_mel));
  return StreamingFeatures(options, std::move(frame));
}

StreamingFeatures::StreamingFeatures(const FeatureWindowOptions& o, LogMelFrame frame)
    : options_(o),
      frame_(std::move(frame)),
      frames_per_window_(o.frames_per_window()),
      frames_per_hop_(o.window_hop / o.log_mel.frame_hop),
      pending_(o.log_mel.frame_length),
      // Window i's last frame is computed no earlier than its last sample
      // (frame i*fph + fpw would need sample i*window_hop + fpw*frame_hop +
      // frame_length - 1 > the window's last), so when a window is emitted its
      // frames are exactly the newest frames_per_window ones, and the padded
      // tail window needs no older frame either.
      ring_(o.frames_per_window() * o.log_mel.num_bands),
      ring_frames_(o.frames_per_window()),
      window_(o.window_values()),
      scratch_(o.log_mel.frame_length) {}

void StreamingFeatures::Push(std::span<const float> samples, WindowFn on_window) {
  const size_t frame_length = options_.log_mel.frame_length;
  const uint64_t frame_hop = options_.log_mel.frame_hop;
  while (!samples.empty()) {
    const uint64_t frame_start = next_frame_ * frame_hop;
    const uint64_t frame_end = frame_start + frame_length;
    const uint64_t window_end = next_window_ * options_.window_hop + options_.window_length;
    // Both events lie strictly ahead of samples_pushed_ (ComputeReadyFrames
    // handled any at samples_pushed_), so take >= 1.
    const uint64_t next_event = std::min(frame_end, window_end);
    const size_t take =
        static_cast<size_t>(std::min<uint64_t>(samples.size(), next_event - samples_pushed_));
    // With frame_hop > frame_length the samples between frames belong to none.
    const size_t skip = samples_pushed_ < frame_start
                            ? static_cast<size_t>(std::min<uint64_t>(take, frame_start - samples_pushed_))
                            : 0;
    std::copy(samples.begin() + skip, samples.begin() + take, pending_.begin() + pending_size_);
    pending_size_ += take - skip;
    samples_pushed_ += take;
    samples = samples.subspan(take);
    ComputeReadyFrames(on_window);
  }
}

void StreamingFeatures::ComputeReadyFrames(WindowFn on_window) {
  const size_t frame_length = options_.log_mel.frame_length;
  const size_t frame_hop = options_.log_mel.frame_hop;
  if (samples_pushed_ == next_frame_ * frame_hop + frame_length) {
    assert(pending_size_ == frame_length);
    StoreFrame(next_frame_, pending_);
    ++next_frame_;
    if (frame_hop < frame_length) {
      std::copy(pending_.begin() + frame_hop, pending_.end(), pending_.begin());
      pending_size_ = frame_length - frame_hop;
    } else {
      pending_size_ = 0;
    }
  }
  if (samples_pushed_ == next_window_ * options_.window_hop + options_.window_length) {
    EmitWindow(next_window_, on_window);
    ++next_window_;
  }
}

void StreamingFeatures::StoreFrame(uint64_t frame, std::span<const float> samples) {
  const size_t bands = options_.log_mel.num_bands;
  const size_t slot = static_cast<size_t>(frame % ring_frames_);
  frame_.Compute(samples, std::span<float>(ring_).subspan(slot * bands, bands));
}

void StreamingFeatures::EmitWindow(uint64_t index, WindowFn on_window) {
  const size_t bands = options_.log_mel.num_bands;
  const uint64_t first_frame = index * frames_per_hop_;
  for (size_t t = 0; t < frames_per_window_; ++t) {
    const size_t slot = static_cast<size_t>((first_frame + t) % ring_frames_);
    const float* f = &ring_[slot * bands];
    for (size_t b = 0; b < bands; ++b) window_[b * frames_per_window_ + t] = f[b];
  }
  NormalizeWindow(options_.norm, bands, frames_per_window_, window_);
  on_window(index, window_);
}

bool StreamingFeatures::Finish(WindowFn on_window) {
  const uint64_t complete = next_window_;
  const bool padded =
      complete == 0 ? samples_pushed_ > 0
                    : samples_pushed_ > (complete - 1) * options_.window_hop + options_.window_length;
  if (padded) {
    // Window `complete` over the stream with zeros after its end. Its frames
    // before next_frame_ are in the ring; the rest start inside (or after)
    // pending_, whose first sample is sample next_frame_ * frame_hop.
    const size_t frame_length = options_.log_mel.frame_length;
    const uint64_t frame_hop = options_.log_mel.frame_hop;
    const uint64_t first = complete * frames_per_hop_;
    for (uint64_t j = std::max(next_frame_, first); j < first + frames_per_window_; ++j) {
      const uint64_t offset = (j - next_frame_) * frame_hop;
      const size_t begin = static_cast<size_t>(std::min<uint64_t>(offset, pending_size_));
      const size_t end = static_cast<size_t>(std::min<uint64_t>(offset + frame_length, pending_size_));
      std::fill(std::copy(pending_.begin() + begin, pending_.begin() + end, scratch_.begin()),
                scratch_.end(), 0.0f);
      StoreFrame(j, scratch_);
    }
    EmitWindow(complete, on_window);
  }
  Reset();
  return padded;
}

void StreamingFeatures::Reset() {
  pending_size_ = 0;
  samples_pushed_ = 0;
  next_frame_ = 0;
  next_window_ = 0;
}

}  // namespace wavepool::dsp
