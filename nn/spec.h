// Model specs: parsing, validation, shape inference, pooling overrides.
#pragma once

#include <map>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "nn/safetensors.h"
#include "nn/shape.h"
#include "wavepool/v1/model_spec.pb.h"

namespace wavepool::nn {

using ::wavepool::v1::ModelSpec;

// JSON (proto3 JSON mapping, unknown fields rejected) -> spec. Errors name the
// offending field.
absl::StatusOr<ModelSpec> ParseSpecJson(std::string_view json);
absl::StatusOr<ModelSpec> ReadSpecFile(const std::string& path);
std::string SpecToJson(const ModelSpec& spec);

// Shape of the network's input for one window: MEL_AS_FREQ gives
// [1, bands, frames], MEL_AS_CHANNELS [bands, 1, frames].
absl::StatusOr<Shape> InputShape(const ModelSpec& spec);

// Checks the whole spec (rates, windowing vs STFT framing, front end, every
// layer's parameters and shapes, labels == outputs) and returns each layer's
// output shape. The first problem is reported with the layer's name and a fix.
absl::StatusOr<std::vector<Shape>> ValidateSpec(const ModelSpec& spec);

// The weights a spec needs, name -> shape (PyTorch conventions: conv weight
// [out, in, kH, kW] for conv2d and [out, in, k] for conv1d, dense [out, in],
// batch-norm weight/bias/running_mean/running_var [C]).
absl::StatusOr<std::map<std::string, std::vector<int64_t>>> ExpectedWeights(const ModelSpec& spec);

// Applies overrides in order; errors name the layer or field that does not exist.
// All or nothing: on an error *spec is unchanged. The result is not validated
// (ValidateSpec reports e.g. a padding that is no longer < the kernel).
absl::Status ApplyPoolOverrides(std::span<const ::wavepool::v1::PoolOverride> overrides,
                                ModelSpec* spec);
// Parses "layer.field=value" (the CLI form).
absl::StatusOr<::wavepool::v1::PoolOverride> ParsePoolOverride(std::string_view text);

// Seeded, documented initialisation (He-uniform for conv/dense weights, zero
// biases, batch-norm identity) for a spec: the untrained starting point.
// Identical on every platform: one std::mt19937_64(seed) draws every weight
// in spec layer order, row-major, one draw x per value:
// w = (2 (x >> 40) 2^-24 - 1) sqrt(6 / fan_in). See docs/nn.md.
absl::StatusOr<TensorMap> InitWeights(const ModelSpec& spec, uint64_t seed);

}  // namespace wavepool::nn
