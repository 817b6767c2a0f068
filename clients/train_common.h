// What the digit and ECG trainers share: optimiser settings from the flags,
// provenance, and writing a model folder.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "clients/cli.h"
#include "nn/safetensors.h"
#include "nn/trainer.h"
#include "wavepool/v1/model_spec.pb.h"

namespace wavepool::cli {

// --optimizer, --lr (cosine to lr/100 after a warm-up of min(200, 10%) steps),
// --weight-decay, --label-smoothing, --threads, with `batch` and `seed`.
nn::TrainOptions TrainOptionsFromFlags(int epochs, int batch, size_t examples_per_epoch,
                                       uint64_t seed);

// Fills the provenance of a trained model: command line, data, split, seed,
// epochs, git revision and time (metrics are the caller's).
void SetProvenance(const CommonOptions& common, const std::string& data, const std::string& split,
                   uint64_t seed, int epochs, v1::Provenance* p);
// The command line, git revision and time of the command that made a model.
void StampProvenance(const CommonOptions& common, v1::Provenance* p);

// --override layer.field=value,... (pool kernel, stride, padding or blur), for
// eval: what a pooling change does to a trained model's accuracy and shift
// consistency without retraining.
absl::StatusOr<std::vector<v1::PoolOverride>> PoolOverridesFromFlag();

// Writes OUT/weights.safetensors and OUT/spec.json, then loads the folder back
// to prove the pair is a valid model.
absl::Status SaveTrainedModel(const std::string& out, const v1::ModelSpec& spec,
                              const nn::TensorMap& weights);

}  // namespace wavepool::cli
