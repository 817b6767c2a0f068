// The model family of `wavepool sweep`: one spec per pooling choice, made from
// a base spec by changing only its (non-global) pooling layers.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "wavepool/v1/model_spec.pb.h"

namespace wavepool::cli {

// How a pooling layer subsamples.
//   MAX, AVG: a max / average pooling layer with kernel = stride (non-overlapping,
//     no padding), whatever the base layer was.
//   CONV: no pooling layer; the nearest conv layer before it gets the strides
//     (a strided convolution: it computes only the kept positions).
//   BLUR: anti-aliased max pooling (Zhang 2019): max with stride 1, then a
//     3-tap binomial blur subsampled by the stride (the spec's blur = 3).
enum class PoolKind { kMax, kAvg, kConv, kBlur };

absl::StatusOr<PoolKind> ParsePoolKind(std::string_view name);
std::string PoolKindName(PoolKind kind);

struct SweepPoint {
  PoolKind kind = PoolKind::kMax;
  uint32_t time_stride = 2;
  uint32_t freq_stride = 2;  // must be 1 for 1-D pooling layers
};

// "max-t2-f2": the point's name, used for its model folder.
std::string SweepTag(const SweepPoint& point);
// The inverse of SweepTag, for `sweep --points` (errors say the expected form).
absl::StatusOr<SweepPoint> ParseSweepTag(std::string_view tag);

// The base spec with every layer named in `layers` (all max/avg pooling layers
// when empty) replaced as `point` says. Errors name the layer: a layer that is
// not max/avg pooling, a CONV point with no conv layer before the pool, a
// frequency stride on a 1-D layer. The result is not validated (ValidateSpec
// says when strides leave nothing to pool).
absl::StatusOr<v1::ModelSpec> SweepVariant(const v1::ModelSpec& base,
                                           const std::vector<std::string>& layers,
                                           const SweepPoint& point);

}  // namespace wavepool::cli
