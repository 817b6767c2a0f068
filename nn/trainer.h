// Training a spec'd network on batches: training-mode forward (batch-norm on
// batch statistics with running averages, dropout), softmax cross-entropy, the
// backward passes of backward.h, and SGD-with-momentum or AdamW with a
// warm-up + cosine learning-rate schedule. Everything is sized at Create.
//
// Reproducible: the batch is split into fixed shards over the threads and
// per-shard gradients are summed in shard order; dropout masks come from one
// seeded generator. Same seed, same data, same thread count = same weights.
#pragma once

#include <cstdint>
#include <memory>
#include <random>
#include <span>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "nn/safetensors.h"
#include "nn/spec.h"
#include "nn/thread_pool.h"

namespace wavepool::nn {

struct TrainOptions {
  enum class Optimizer { kSgd, kAdamW };
  Optimizer optimizer = Optimizer::kAdamW;
  double learning_rate = 2e-3;      // peak, after warm-up
  double min_learning_rate = 2e-5;  // the cosine schedule's floor
  int64_t warmup_steps = 100;       // linear from 0 to learning_rate
  int64_t total_steps = 1000;       // cosine decay from warm-up end to here
  double momentum = 0.9;            // SGD
  double beta1 = 0.9, beta2 = 0.999, adam_epsilon = 1e-8;  // AdamW
  // Conv and dense weights only (never biases or batch-norm): decoupled for
  // AdamW (w -= lr wd w), an L2 term in the gradient for SGD.
  double weight_decay = 1e-4;
  float label_smoothing = 0.0f;
  float batch_norm_momentum = 0.1f;  // running = (1 - m) running + m batch
  int max_batch = 64;
  int threads = 2;
  uint64_t seed = 1;  // dropout masks

  absl::Status Validate() const;
};

struct StepStats {
  double loss = 0;
  int correct = 0;  // argmax of the training-mode logits == label
  int examples = 0;
  double learning_rate = 0;
};

class Trainer {
 public:
  // `initial` holds every tensor ExpectedWeights(spec) names (e.g. InitWeights).
  // The last layer's output is the logits (a final softmax layer is skipped in
  // training: the loss applies its own).
  static absl::StatusOr<std::unique_ptr<Trainer>> Create(const ModelSpec& spec,
                                                         const TensorMap& initial,
                                                         const TrainOptions& options);
  ~Trainer();

  size_t input_size() const { return input_size_; }
  int classes() const { return classes_; }

  // Forward, loss, backward and one optimiser update on n = labels.size()
  // examples (1 <= n <= max_batch); inputs holds n * input_size() values.
  // class_weight: null or classes() weights for the loss.
  absl::StatusOr<StepStats> Step(std::span<const float> inputs, std::span<const int> labels,
                                 const float* class_weight);

  // Forward + backward without an update; gradients() then holds d(loss)/d(param)
  // (for gradient checks). Dropout masks are drawn as in Step.
  absl::StatusOr<double> ComputeGradients(std::span<const float> inputs,
                                          std::span<const int> labels, const float* class_weight);
  // Parameter name -> gradient (same shapes as the weights), after the last call.
  TensorMap gradients() const;

  // The current weights, batch-norm running statistics included, in the form
  // Model::Create and WriteSafetensors take.
  TensorMap Weights() const;
  // Replaces one tensor's values (same shape), e.g. for finite differences.
  absl::Status SetWeight(const std::string& name, std::span<const float> values);

  int64_t steps_taken() const { return steps_; }
  double LearningRate(int64_t step) const;

  struct Layer;  // internal
  struct Param;  // internal

 private:
  Trainer();
  absl::Status CheckBatch(std::span<const float> inputs, std::span<const int> labels) const;
  double ForwardBackward(const float* inputs, const int* labels, int n, const float* class_weight,
                         StepStats* stats);
  void ApplyUpdate();

  ModelSpec spec_;
  TrainOptions options_;
  size_t input_size_ = 0;
  int classes_ = 0;
  std::vector<std::unique_ptr<Layer>> layers_;
  std::vector<std::unique_ptr<Param>> params_;
  std::vector<float> dlogits_;
  std::unique_ptr<ThreadPool> pool_;
  std::mt19937_64 rng_;
  int64_t steps_ = 0;
};

}  // namespace wavepool::nn
