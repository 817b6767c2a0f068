// Scoring recordings with a digit model the way a stream of each is scored.
#pragma once

#include <vector>

#include "absl/status/statusor.h"
#include "clients/confusion.h"
#include "clients/digit_data.h"
#include "dsp/log_mel.h"
#include "nn/model.h"

namespace wavepool::cli {

// Each clip goes through dsp::FeatureWindows (complete windows and the padded
// tail, as the server makes them); its prediction is the digit (never
// background: an FSDD clip always holds one) with the highest score in any of
// its windows.
absl::StatusOr<ClipScores> ScoreClips(const nn::Model& model, const dsp::FeatureWindowOptions& fo,
                                      const std::vector<Clip>& clips);

}  // namespace wavepool::cli
