// Shift consistency (Zhang 2019, "Making Convolutional Networks Shift-Invariant
// Again", section 4: how often the top class survives a small shift of the
// input) and test-time shift pooling, for the digit and ECG models, on a loaded
// model and its examples. Used by `wavepool eval --shift-consistency /
// --tta-shifts`, and callable by any command that wants {accuracy, consistency}
// for a model (e.g. a stride sweep).
//
// A shift of s samples, at the model's rate, delays the content by s:
//  - audio (FIXED_WINDOWS): s zero samples are put before the clip's samples,
//    which then go through the front end and windowing as usual
//    (dsp::FeatureWindows); the clip's class is the digit with the highest
//    score in any of its windows, as eval scores clips;
//  - ECG (BEAT_WINDOWS): each beat's window is cut s samples earlier
//    ([r - before - s, r + after - s)), so the beat sits s samples later in it;
//    the detector, the RR channels and the amplitude scale are unchanged.
// Not thread-safe per call; each call makes its own workspace.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "clients/digit_data.h"
#include "dsp/beat_windows.h"
#include "nn/model.h"

namespace wavepool::cli {

enum class TtaPool { kAvg, kMax };

struct ShiftEvalOptions {
  // Shifts (samples, each >= 1) at which consistency is measured against the
  // unshifted input; empty: accuracy only.
  std::vector<int> shifts;
  // Test-time shift pooling: every classification (the unshifted one and each
  // shifted one) runs the input at these delays instead (samples; 0 is the
  // input itself, a negative value advances it: audio drops its first samples,
  // an ECG window is cut later) and pools the class scores (softmax
  // probabilities) by mean or max before taking the top class. Empty or {0}: off.
  std::vector<int> tta_shifts;
  TtaPool tta_pool = TtaPool::kAvg;
  // Examples per model call (windows for audio, beats for ECG).
  int batch = 32;
  absl::Status Validate() const;
};

struct ShiftEvalResult {
  int64_t examples = 0;  // clips, or labelled beats
  double accuracy = 0;   // top class (TTA-pooled when set) == truth, unshifted
  std::vector<int> shifts;
  // Per shift: fraction of examples whose top class equals the unshifted one.
  std::vector<double> consistency;
  // Per shift: accuracy of the shifted input.
  std::vector<double> accuracy_at_shift;
  // Per shift: mean over examples of |score_shifted - score_unshifted| of the
  // unshifted top class (pooled softmax probability): how far a shift moves
  // the answer's score, which still tells models apart when consistency is 100%.
  std::vector<double> score_change;
  double mean_consistency = 0;  // mean of `consistency` (1 when no shifts)
  // Cost of the unshifted evaluation alone (what a deployment pays per
  // example): model windows run, and the wall and process CPU time of front
  // end + model (CPU time is the steadier figure on a shared machine).
  int64_t forward_passes = 0;
  double seconds = 0;
  double cpu_seconds = 0;
};

// Digit models: clips with their digits (FSDD); labels must be 0-9 and
// _background_ (CheckDigitLabels), background is never predicted.
absl::StatusOr<ShiftEvalResult> EvalDigitShifts(const nn::Model& model,
                                                const std::vector<Clip>& clips,
                                                const ShiftEvalOptions& options);

// ECG beat models: the detected beats of `records` in `data_dir` that match a
// reference beat (labels N S V F Q). Every shift plus TTA shift must lie
// strictly between -(samples before the R peak) and +(samples after it).
absl::StatusOr<ShiftEvalResult> EvalEcgShifts(const nn::Model& model, const std::string& data_dir,
                                              const std::vector<std::string>& records,
                                              const ShiftEvalOptions& options);

// The eval report: accuracy, cost, then consistency per shift and overall.
// `unit` names an example ("clips", "beats").
std::string FormatShiftEval(const ShiftEvalOptions& options, const ShiftEvalResult& r,
                            const std::string& unit);

// Options from the eval flags (--shift-consistency, --max-shift, --shift-step,
// --tta-shifts, --tta-pool); errors name the flag.
absl::StatusOr<ShiftEvalOptions> ShiftEvalOptionsFromFlags();
// The shifts --shift-step, 2 x --shift-step, ... <= --max-shift (also the sweep's).
absl::StatusOr<std::vector<int>> ShiftsFromFlags();

// The beat windowing of `base` with every window cut `shift` samples earlier
// (later when negative; same length): what EvalEcgShifts runs at that shift.
// The caller keeps -before_samples() < shift < after_samples().
dsp::BeatWindowOptions ShiftedBeatOptions(const dsp::BeatWindowOptions& base, int shift);

// "1,2,3" or "0,40,80" -> ints (each >= min_value); errors name the bad item.
absl::StatusOr<std::vector<int>> ParseShiftList(const std::string& text, int min_value);

}  // namespace wavepool::cli
