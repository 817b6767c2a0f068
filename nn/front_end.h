// The bridge from a model spec to the dsp/ front end: train and serve build the
// front end through this one function, so they never differ.
#pragma once

#include "absl/status/statusor.h"
#include "dsp/beat_windows.h"
#include "dsp/log_mel.h"
#include "wavepool/v1/model_spec.pb.h"

namespace wavepool::nn {

// Converts and validates (via dsp's own Validate) the spec's front end and windowing.
absl::StatusOr<dsp::FeatureWindowOptions> FeatureOptionsFromSpec(const v1::ModelSpec& spec);

// The beat windowing a BEAT_WINDOWS spec asks for (not validated: callers
// run BeatWindowOptions::Validate or StreamingBeatWindows::Create).
dsp::BeatWindowOptions BeatOptionsFromSpec(const v1::ModelSpec& spec);

}  // namespace wavepool::nn
