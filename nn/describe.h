// The describe report: per layer, output shape, time and frequency resolution,
// receptive field, parameters and MFLOPs per window.
#pragma once

#include <string>

#include "absl/status/statusor.h"
#include "nn/spec.h"

namespace wavepool::nn {

// Derived from the spec alone (no weights). Time: one input time step is one STFT
// hop (frame_hop / rate); the input receptive field is one frame (frame_length /
// rate). Frequency (MEL_AS_FREQ only): one step is one mel band; Hz spans use the
// spec's mel filterbank edges. A multiply-add counts as 2 FLOPs.
absl::StatusOr<::wavepool::v1::ModelDescription> Describe(const ModelSpec& spec);

// A fixed-width text table of the report, for `wavepool describe`.
std::string FormatDescription(const ModelSpec& spec, const ::wavepool::v1::ModelDescription& d);

}  // namespace wavepool::nn
