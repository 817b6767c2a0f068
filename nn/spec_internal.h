// Internal to nn/: one resolved view of a LayerSpec shared by validation, the
// model compiler and describe, so the defaults ("stride 0 means 1 / means
// kernel", "epsilon 0 means 1e-5") are applied in exactly one place.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "nn/kernels.h"
#include "nn/shape.h"
#include "wavepool/v1/model_spec.pb.h"

namespace wavepool::nn::internal {

enum class OpKind {
  kConv,  // conv1d or conv2d
  kMaxPool,
  kAvgPool,
  kGlobalAvgPool,
  kGlobalMaxPool,
  kDense,
  kRelu,
  kBatchNorm,
  kDropout,
  kFlatten,
  kSoftmax,
};

// Geometry on the (H = frequency, W = time) axes with every default applied.
// 1-D layers have kernel/stride/dilation 1 and pad 0 on H.
struct LayerParams {
  OpKind kind = OpKind::kRelu;
  bool one_d = false;
  uint32_t out_channels = 0;  // conv and dense
  uint32_t kernel_h = 1, kernel_w = 1;
  uint32_t stride_h = 1, stride_w = 1;
  uint32_t pad_h = 0, pad_w = 0;
  uint32_t dilation_h = 1, dilation_w = 1;
  bool bias = false;               // conv and dense
  bool count_include_pad = false;  // average pooling
  // Pooling's anti-aliasing blur: the spec's value (0..7 valid, checked by
  // ValidateSpec), and the taps applied per axis: that value on an axis whose
  // stride is > 1, else 1 (no blur).
  uint32_t blur = 0;
  uint32_t blur_h = 1, blur_w = 1;
  float epsilon = 1e-5f;           // batch-norm
};

// The oneof field's name ("conv2d", "max_pool1d", ...), or "(no op)".
const char* OpName(const ::wavepool::v1::LayerSpec& layer);

// Fails (naming the layer) when no op is set.
absl::StatusOr<LayerParams> Resolve(const ::wavepool::v1::LayerSpec& layer);

// "layer 'pool2' (max_pool2d)": the prefix of every per-layer message.
std::string LayerLabel(const ::wavepool::v1::LayerSpec& layer);

// The kernel parameters of a max or average pooling layer on input `in`.
Pool2dParams PoolParams(const LayerParams& p, const Shape& in);

// Output shape of a layer the spec validation accepted.
Shape OutputShape(const LayerParams& p, const Shape& in);

// FLOPs of one layer for one window, a multiply-add counted as 2: the count
// describe and Model::Profile report. `prev` is the kind of the
// spec layer directly before: a batch-norm after a conv or dense is folded
// into it at load and costs 0.
double LayerFlops(const LayerParams& p, const Shape& in, const Shape& out, OpKind prev);

// One tensor a spec needs, in spec order (weights before biases within a layer).
struct WeightSlot {
  enum class Role { kWeight, kBias, kBnWeight, kBnBias, kBnMean, kBnVar };
  std::string name;
  std::vector<int64_t> shape;
  Role role = Role::kWeight;
  size_t layer = 0;     // index into spec.layers
  uint64_t fan_in = 0;  // conv / dense weights: inputs per output
};

// All tensors of a spec the validation accepted, given its layer output shapes.
std::vector<WeightSlot> WeightSlots(const ::wavepool::v1::ModelSpec& spec, const Shape& input,
                                    const std::vector<Shape>& outputs);

}  // namespace wavepool::nn::internal
