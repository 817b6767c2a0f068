// Streaming beat windows for ECG models: R peaks from StreamingQrsDetector,
// the classifier's lead from StreamingEcgFilter, normalised per stream, cut
// into one window around each R peak, with the RR context. One class does it
// for serving and for training, so both see identical inputs.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <vector>

#include "absl/functional/function_ref.h"
#include "absl/status/statusor.h"
#include "dsp/qrs_detector.h"

namespace wavepool::dsp {

struct BeatWindowOptions {
  double sample_rate_hz = 180;
  double before_s = 0.25;
  double after_s = 0.4;
  bool rr_context = true;
  bool template_context = false;  // a channel of beat minus the stream's template
  // The scaled lead itself as channel 0. False (needs template_context): the
  // network sees the beat only relative to the stream's own template.
  bool lead_channel = true;
  // The RR channels as log ratios (prev/local, next/local, next/prev,
  // local/long) instead of RRs over the long-term mean plus that mean.
  bool rr_log_ratios = false;
  // A fifth RR channel (needs rr_context): log(0.01 + median over the last
  // 32 RRs of min over lag 1..3 of |log(RR_i / RR_{i-lag})|), the rhythm's
  // irregularity (BeatWindowSpec.rr_irregularity).
  bool rr_irregularity = false;
  // Up to this many seconds (0 = off; needs template_context), the beat is
  // moved to best match the stream's template over its QRS (60 ms before to
  // 80 ms after R, least squares, the smallest shift among equals) before the
  // template is subtracted, if that at least quarters the squared mismatch;
  // the moved beat joins the template. A detector that takes one beat's R
  // and another's S wave as the peak (record 118: 23% of its N beats, 53 ms
  // apart) then still shows the same beat; a different beat (ventricular)
  // is rarely matched that much better and stays where it was detected.
  double align_s = 0;
  int64_t align_samples() const;

  int64_t before_samples() const;
  int64_t after_samples() const;
  int64_t window_samples() const { return before_samples() + after_samples(); }
  int channels() const {
    return (lead_channel ? 1 : 0) + (template_context ? 1 : 0) + (rr_context ? (rr_irregularity ? 5 : 4) : 0);
  }
  // Values per window: channels() * window_samples(), channel-major.
  size_t window_values() const;
  // window_values() plus the lead's window_samples() when lead_channel is
  // false: the lead is still computed (the template needs it), in front.
  size_t internal_values() const;
  absl::Status Validate() const;
};

struct Beat {
  int64_t r_sample = 0;   // R peak, in the stream's numbering at sample_rate_hz
  double rr_prev_s = 0;   // 0 for the first beat
  double rr_next_s = 0;   // 0 for the last beat of a stream
  std::span<const float> features;  // window_values(), valid during the call
  // With EnableBounds: bounds on `features` for every input within eps of the
  // stream's (window_values() each, valid during the call); empty otherwise.
  std::span<const float> lower, upper;
};

// Push samples (millivolts, any chunking); each beat is emitted once its next
// R peak is known (for rr_next) and its window of filtered samples is complete,
// or at Finish. Window: filtered lead at [r - before, r + after), divided by the
// stream's amplitude scale (the median |filtered value at R| over this beat and
// up to 15 before it); samples outside the stream are 0. RR channels as in
// BeatWindowSpec (an unknown RR is replaced by the local mean, an unknown local
// mean by the long-term one, and an unknown long-term mean by 1 s). Beats are
// emitted in order, identically for any chunking. No allocation after Create.
class StreamingBeatWindows {
 public:
  using BeatFn = absl::FunctionRef<void(const Beat& beat)>;

  static absl::StatusOr<std::unique_ptr<StreamingBeatWindows>> Create(
      const BeatWindowOptions& options);

  void Push(std::span<const float> samples_mv, BeatFn on_beat);
  void Finish(BeatFn on_beat);

  // From now on each Beat also carries interval bounds on its features for an
  // L-infinity budget eps_mv on every input sample (millivolts, after
  // adc_gain / baseline). Stated assumption: the R peaks (so which beats
  // exist, their windows and the RR channels) are those the detector finds on
  // the samples as sent. Bounded soundly from there: the filtered lead moves
  // by at most eps * StreamingEcgFilter::linf_gain() (plus 1e-5 mV times that
  // gain for float rounding, valid while |x - baseline| < 80 mV: a window
  // whose |filtered| exceeds 50 mV gets infinite bounds); the amplitude scale
  // is the median of per-beat intervals of |filtered at R| (medians are
  // monotone); the lead over the scale is interval division (infinite bounds
  // when the scale's interval reaches the 1e-3 fallback); the template is the
  // per-sample median of the previous beats' bounds. Call before the first
  // Push (INVALID_ARGUMENT for eps_mv < 0 or not finite, FAILED_PRECONDITION
  // after samples were pushed). Allocates here, never per beat.
  absl::Status EnableBounds(double eps_mv);
  // Changes the budget for the beats emitted from now on; beats already
  // emitted keep the bounds they had (their intervals stay in the amplitude
  // and template rings). For a budget that grows with the stream, e.g. a
  // resampler's rounding allowance that follows the largest |input| so far.
  // FAILED_PRECONDITION before EnableBounds; INVALID_ARGUMENT as EnableBounds.
  absl::Status SetBoundsBudget(double eps_mv);

  const BeatWindowOptions& options() const { return options_; }
  // Worst-case delay from an R peak to its window being ready, excluding the
  // wait for the next R peak: detector delay vs filter delay + after_s.
  int64_t ready_delay_samples() const;

 private:
  StreamingBeatWindows() = default;
  struct Pending {
    int64_t r = 0;
    bool ready = false;          // window snapshot taken
    // Filtered lead, unscaled: window_samples() + 2 align_samples(), from
    // r - before - align to r + after + align.
    std::vector<float> window;
  };
  void OnPeak(int64_t r);
  void OnFiltered(std::span<const float> filtered);
  // Takes the window snapshot of every pending beat whose window is complete
  // (or, when finishing, of all of them, zero-filling what never came).
  void Snapshot(bool finishing);
  void EmitReady(bool finishing, BeatFn on_beat);
  void EmitFront(BeatFn on_beat);
  void Reset();

  BeatWindowOptions options_;
  std::unique_ptr<StreamingQrsDetector> detector_;
  std::unique_ptr<StreamingEcgFilter> filter_;
  // Ring of the most recent filtered samples (aligned to input numbering).
  std::vector<float> ring_;
  int64_t filtered_count_ = 0;  // aligned filtered samples (input 0 .. count - 1)
  int64_t filter_outputs_ = 0;  // raw filter outputs, start-up included
  // Detected R peaks not yet emitted, oldest first (a fixed ring).
  std::vector<Pending> pending_;
  size_t pending_head_ = 0, pending_size_ = 0;
  int64_t last_emitted_r_ = -1;  // for rr_prev
  // RR intervals (seconds) of emitted beats: a ring of the last 300 (about 5
  // minutes at 60 bpm) for the long-term mean; the local mean uses the last 10.
  std::vector<double> rr_ring_;
  size_t rr_count_ = 0;
  // |filtered value at R| of the last 16 emitted beats, for the scale.
  std::vector<float> amp_ring_;
  size_t amp_count_ = 0;
  std::vector<float> scratch_;  // for the median
  // Scaled lead windows of the last 16 emitted beats, for the template.
  std::vector<float> template_ring_;
  size_t template_count_ = 0;
  // The template of the beat being emitted (window_samples()).
  std::vector<float> template_;
  // The window being emitted, internal_values(): Beat::features is its tail
  // of window_values() (everything but the lead when lead_channel is false).
  std::vector<float> window_;
  // EnableBounds: the filtered lead's radius, and the bound rings (|filtered
  // at R| and scaled windows of the last 16 beats) beside the value rings.
  // Fills lower_ / upper_ for the beat EmitFront is emitting; template_before:
  // beats in the template ring before this one.
  void EmitBounds(const Pending& p, size_t template_before, int64_t shift);
  void SetLeadRadius(double eps_mv);
  bool bounds_ = false;
  float lead_radius_ = 0;
  std::vector<float> amp_lo_ring_, amp_hi_ring_;
  std::vector<float> template_lo_ring_, template_hi_ring_;
  std::vector<float> lower_, upper_;
};

}  // namespace wavepool::dsp
