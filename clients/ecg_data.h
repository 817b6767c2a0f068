// ECG beat data for training and evaluating BEAT_WINDOWS models on MIT-BIH-style
// WFDB records: each record's first signal goes through the serving front end
// (dsp::StreamingBeatWindows), and each detected beat is labelled with the AAMI
// class of the reference beat it matches within 150 ms.
#pragma once

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "dsp/beat_windows.h"
#include "nn/front_end.h"
#include "wavepool/v1/model_spec.pb.h"

namespace wavepool::cli {

// AAMI classes in label order: N S V F Q.
inline constexpr char kAamiClasses[] = {'N', 'S', 'V', 'F', 'Q'};
int AamiIndex(char aami);  // -1 for anything else

struct RecordBeats {
  std::string record;
  size_t values_per_beat = 0;
  std::vector<float> features;  // beats x values_per_beat
  std::vector<int> label;       // AAMI index per detected beat; -1: no reference beat matched
  std::vector<int64_t> r_sample;
  // Detection scoring against the reference beats.
  int64_t reference_beats = 0, true_positives = 0, false_negatives = 0, false_positives = 0;
  std::vector<int> missed_class_counts = std::vector<int>(5, 0);  // reference beats not detected
  size_t beats() const { return label.size(); }
};

// The beat windowing a BEAT_WINDOWS model's spec asks for (the server builds
// its windows through the same function).
using nn::BeatOptionsFromSpec;

// The records named in `dir` (every *.hea when `records` is empty).
absl::StatusOr<std::vector<std::string>> ListRecords(const std::string& dir);

// Runs one record through the front end at the options' rate (the record is
// resampled if its rate differs) and labels the beats.
absl::StatusOr<RecordBeats> LoadRecordBeats(const std::string& dir, const std::string& record,
                                            const dsp::BeatWindowOptions& options);

// "records:101,106" -> {"101", "106"}; "all" -> {}.
absl::StatusOr<std::vector<std::string>> ParseRecordSplit(const std::string& split);

}  // namespace wavepool::cli
