// Model::Op, the compiled form of one layer: internal to nn/ (model.cc runs
// it, ibp.cc bounds it). Not part of the public API.
#pragma once

#include <string>
#include <vector>

#include "nn/kernels.h"
#include "nn/model.h"
#include "nn/shape.h"

namespace wavepool::nn {

// One compiled layer. Batch-norm folded into the conv/dense before it leaves no
// Op; dropout and flatten leave none either (identity on NCHW memory).
struct Model::Op {
  enum class Kind { kConv, kMaxPool, kAvgPool, kGlobalAvg, kGlobalMax, kDense, kRelu, kAffine, kSoftmax };
  Kind kind = Kind::kRelu;
  std::vector<std::string> layers;  // spec layers compiled into this op (LayerTime::layers)
  const char* op_name = "";         // the first one's op, internal::OpName
  double flops = 0;                 // per window, internal::LayerFlops summed over `layers`
  Shape in, out;
  Conv2dParams conv;
  Pool2dParams pool;
  std::vector<float> weight, bias;  // conv / dense (bias empty when absent)
  bool relu = false;  // conv: a ReLU right after it, fused in (its spec layer is in `layers`)
  int segment = -1;   // index in Model::segments_ when the op runs in a oneDNN segment
  size_t segment_layer = 0;  // the op's layer in that segment
  std::vector<float> scale, shift;  // kAffine
  // Reads and writes the same buffer.
  bool in_place() const { return kind == Kind::kRelu || kind == Kind::kAffine || kind == Kind::kSoftmax; }
};

}  // namespace wavepool::nn
