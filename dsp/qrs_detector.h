// ECG front end: filters for QRS detection and for the beat classifier's input,
// and streaming R-peak detection (Pan-Tompkins family), causal with a bounded
// look-ahead. Streaming and offline give the same peaks (offline is the
// streaming detector fed the whole signal). Designs, delays and the MIT-BIH
// DS1 results: docs/ecg_detection.md. Both streaming classes accept sample
// rates from 125 to 1000 Hz; non-finite samples are replaced by the last
// finite one (0 before any). Objects are not thread-safe; use one per stream.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <vector>

#include "absl/functional/function_ref.h"
#include "absl/status/statusor.h"

namespace wavepool::dsp {

struct QrsDetectorOptions {
  double sample_rate_hz = 360;
  // Upper bound on how long after its R peak a beat is reported (the detector's
  // look-ahead plus filter delays). Must be <= 0.5 s, and at least the filters,
  // the R search and a 200 ms look-ahead: 0.444 s at 360 Hz (Validate says the
  // minimum for the rate). Less than 0.5 s shortens the look-ahead.
  double max_delay_s = 0.5;
  absl::Status Validate() const;
};

// Feed samples in millivolts (any chunking); receives each R peak's sample
// index (0-based, in the input's numbering) once it is certain, in increasing
// order, at most max_delay_s after the peak's sample arrived. All memory is
// allocated at Create; Push never allocates.
class StreamingQrsDetector {
 public:
  using PeakFn = absl::FunctionRef<void(int64_t r_peak_sample)>;

  static absl::StatusOr<std::unique_ptr<StreamingQrsDetector>> Create(
      const QrsDetectorOptions& options);
  virtual ~StreamingQrsDetector() = default;

  virtual void Push(std::span<const float> samples_mv, PeakFn on_peak) = 0;
  // End of stream: reports peaks still pending (as if the last sample went
  // on), then resets the object for a new stream.
  virtual void Finish(PeakFn on_peak) = 0;
  // The actual worst-case reporting delay in samples (<= max_delay_s * rate):
  // 178 at 360 Hz with the default max_delay_s (494 ms).
  virtual int64_t delay_samples() const = 0;
};

// Offline: the streaming detector over the whole signal.
absl::StatusOr<std::vector<int64_t>> DetectRPeaks(std::span<const float> samples_mv,
                                                  const QrsDetectorOptions& options);

// The classifier's input signal: baseline wander removed and band-limited
// (the filters and their delays are stated in the implementation and
// docs/ecg_detection.md), in millivolts. Streaming with a fixed delay of
// delay_samples(): output sample i corresponds to input sample
// i - delay_samples(); the first delay_samples() outputs are the filter's
// start-up (the signal before the first sample is taken equal to it). No
// allocation in Push. Baseline = 200 ms then 600 ms medians (de Chazal et al.
// 2004), then a linear-phase low-pass with -3 dB at 35 Hz; delay 480 ms
// (173 samples at 360 Hz).
class StreamingEcgFilter {
 public:
  using OutputFn = absl::FunctionRef<void(std::span<const float> filtered_mv)>;
  static absl::StatusOr<std::unique_ptr<StreamingEcgFilter>> Create(double sample_rate_hz);
  virtual ~StreamingEcgFilter() = default;
  virtual void Push(std::span<const float> samples_mv, OutputFn on_output) = 0;
  // Flushes the last delay_samples() outputs (input padded by repeating the last
  // sample), then resets the object for a new stream.
  virtual void Finish(OutputFn on_output) = 0;
  virtual int64_t delay_samples() const = 0;
  // L-infinity gain of the output in the input: every output moves by at most
  // linf_gain() * eps when every input moves by at most eps. Each median is
  // monotone and shift-equivariant, so the baseline moves by at most eps and
  // x - baseline by 2 eps; the low-pass then multiplies by sum |taps|.
  virtual double linf_gain() const = 0;
};

// Offline form of StreamingEcgFilter, aligned: output[i] corresponds to input[i].
absl::StatusOr<std::vector<float>> FilterEcg(std::span<const float> samples_mv,
                                             double sample_rate_hz);

// Beat-detection scoring as ANSI/AAMI EC57 does it: a reference beat is
// detected when a detection lies within `window_s` (0.150 s) of it; each
// detection matches at most one reference beat. Matching is greedy nearest:
// of all (beat, detection) pairs at most window_s * rate samples apart
// (inclusive), the closest pair is matched first, then the next closest among
// the unmatched; equal distances go to the earlier beat, then the earlier
// detection. Inputs need not be sorted.
struct DetectionScore {
  int64_t true_positives = 0, false_negatives = 0, false_positives = 0;
  double sensitivity() const;            // TP / (TP + FN); 1 when there is no beat
  double positive_predictivity() const;  // TP / (TP + FP); 1 when there is no detection
};
DetectionScore ScoreDetections(std::span<const int64_t> reference, std::span<const int64_t> detected,
                               double sample_rate_hz, double window_s = 0.150);

}  // namespace wavepool::dsp
