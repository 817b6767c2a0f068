// A loaded, validated, ready-to-run model: load -> prepare (validate, fold
// batch-norm, size buffers) -> run (trusts what prepare checked).
#pragma once

#include <memory>
#include <span>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "nn/safetensors.h"
#include "nn/shape.h"
#include "nn/spec.h"

namespace wavepool::nn {

class Workspace;

class Model {
 public:
  // Validates the spec and checks every weight's presence and shape (the first
  // mismatch is reported by layer name); unexpected extra tensors are an error too.
  static absl::StatusOr<std::shared_ptr<const Model>> Create(ModelSpec spec, const TensorMap& weights);
  // Reads DIR/spec.json and DIR/weights.safetensors, applying overrides to the spec first.
  static absl::StatusOr<std::shared_ptr<const Model>> Load(
      const std::string& dir, std::span<const ::wavepool::v1::PoolOverride> overrides = {});

  ~Model();

  const ModelSpec& spec() const { return spec_; }
  Shape input_shape() const { return input_shape_; }
  size_t input_size() const { return input_shape_.size(); }
  size_t output_size() const { return output_size_; }
  // True when the last layer is a softmax (scores come out already normalised).
  bool outputs_probabilities() const { return outputs_probabilities_; }

  // Runs `batch` windows (batch <= ws.max_batch()): input batch * input_size()
  // floats, output batch * output_size(). No allocation; const and thread-safe
  // given one Workspace per thread.
  void Run(const float* input, int batch, float* output, Workspace& ws) const;

  struct Op;  // one compiled layer (internal)

 private:
  Model();
  ModelSpec spec_;
  Shape input_shape_;
  size_t output_size_ = 0;
  bool outputs_probabilities_ = false;
  std::vector<std::unique_ptr<Op>> ops_;
  size_t max_activation_ = 0;  // largest per-window activation among ops
  size_t max_conv_scratch_ = 0;  // largest im2col matrix among conv ops
  friend class Workspace;
};

// Preallocated activation buffers for one model and a maximum batch: two
// ping-pong buffers of max_batch x the model's largest activation, and one
// window's im2col matrix for the convolutions. Use it
// only with the model it was made for; a max_batch below 1 is taken as 1.
class Workspace {
 public:
  // reference = true runs the convolutions with the simple reference kernel
  // (nn::Conv2d) instead of im2col + GEMM: for tests and comparisons.
  Workspace(const Model& model, int max_batch, bool reference = false);
  int max_batch() const { return max_batch_; }

 private:
  friend class Model;
  int max_batch_;
  bool reference_ = false;
  std::vector<float> a_, b_;
  std::vector<float> scratch_;  // im2col, one window
};

}  // namespace wavepool::nn
