// Ensembles as one network: K models trained from the same spec (different
// seeds) merged into a single spec + weights whose output is exactly the mean
// of the members' outputs before any final softmax (the mean of their logits).
//
// Why one network and not K: the merged model is an ordinary model folder, so
// the server, the batcher, `eval`, `certify` and `describe` serve and measure
// the very thing that ships, with no ensemble code on the serving path.
//
// How: every layer before the last dense is widened K times. The first layer
// with weights reads the shared input and stacks the members' output channels
// (member m owns channels [m C, (m + 1) C)); each later conv or dense layer
// gets a block-diagonal weight (zero between members), batch-norm stacks its
// per-channel tensors, and pooling, ReLU, dropout and flatten act per channel
// (flatten's [C, H, W] order keeps each member's block contiguous). The last
// dense layer reads all K blocks with each member's weights divided by K and
// the mean of their biases, which is the mean of the members' logits.
// Cost: the first layer K times a member's, later layers K^2 times (the zero
// blocks are multiplied; there are no grouped convolutions).
#pragma once

#include <span>

#include "absl/status/statusor.h"
#include "nn/safetensors.h"
#include "wavepool/v1/model_spec.pb.h"

namespace wavepool::nn {

struct SpecAndWeights {
  ::wavepool::v1::ModelSpec spec;
  TensorMap weights;
};

// Members must have the same spec apart from version, description and
// provenance (same front end, layers and labels), and their last layer with
// weights must be a dense layer followed only by dropout or softmax.
// Provenance: split must agree (an ensemble has one held-out set); the
// merged provenance keeps it, the first member's data and epochs, and
// `trained` only if every member was. Command, notes and metrics are the
// caller's to fill in.
absl::StatusOr<SpecAndWeights> MergeEnsemble(std::span<const SpecAndWeights> members);

}  // namespace wavepool::nn
