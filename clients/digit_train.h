// Training a spoken-digit model (wavepool train; wavepool sweep trains many).
#pragma once

#include <string>

#include "absl/status/statusor.h"
#include "clients/cli.h"
#include "clients/digit_data.h"
#include "wavepool/v1/model_spec.pb.h"

namespace wavepool::cli {

struct DigitTrainResult {
  double test_accuracy = -1;  // of the split's test clips; -1 when the split has none
  double train_accuracy = 0;  // of the last epoch's (augmented) examples
  double seconds = 0;         // wall time of the training loop
};

// Trains `spec` on `data` (LoadDigitData of the FSDD folder `data_dir` with
// --split, at the spec's rate) with the train flags (--split, --epochs,
// --batch-size, --seed, the optimiser and augmentation flags) and writes the
// model folder `out` (spec with provenance, weights, train_log.jsonl).
absl::StatusOr<DigitTrainResult> TrainDigitModel(const CommonOptions& common,
                                                 v1::ModelSpec spec, const DigitData& data,
                                                 const std::string& data_dir,
                                                 const std::string& out);

}  // namespace wavepool::cli
