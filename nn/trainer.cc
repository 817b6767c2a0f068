#include "nn/trainer.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <map>

#include "absl/strings/str_cat.h"
#include "nn/backward.h"
#include "nn/kernels.h"
#include "nn/spec_internal.h"
#include "util/status_macros.h"

namespace wavepool::nn {

using internal::LayerParams;
using internal::OpKind;
using internal::WeightSlot;

// One tensor: values, optimiser state and per-shard gradients.
struct Trainer::Param {
  std::string name;
  std::vector<int64_t> shape;
  WeightSlot::Role role = WeightSlot::Role::kWeight;
  std::vector<float> value;
  std::vector<float> grad;                 // summed over shards
  std::vector<std::vector<float>> shards;  // per-thread partial gradients
  std::vector<float> m, v;                 // optimiser state (momentum / Adam moments)
  bool trainable() const {
    return role != WeightSlot::Role::kBnMean && role != WeightSlot::Role::kBnVar;
  }
};

struct Trainer::Layer {
  LayerParams p;
  Shape in, out;
  std::string name;
  Param* weight = nullptr;  // conv/dense weight, batch-norm gamma
  Param* bias = nullptr;    // conv/dense bias, batch-norm beta
  Param* running_mean = nullptr;
  Param* running_var = nullptr;
  float dropout_rate = 0;
  std::vector<float> act;    // output activations, max_batch * out.size()
  std::vector<float> dact;   // gradient w.r.t. the output
  std::vector<float> mean, inv_std, var;  // batch-norm batch statistics
  std::vector<uint8_t> mask;              // dropout
  std::vector<std::vector<float>> blur_scratch;  // blurred pooling, one per thread
  Conv2dParams conv() const {
    Conv2dParams c;
    c.in_c = in.c, c.in_h = in.h, c.in_w = in.w, c.out_c = out.c;
    c.kernel_h = p.kernel_h, c.kernel_w = p.kernel_w, c.stride_h = p.stride_h,
    c.stride_w = p.stride_w, c.pad_h = p.pad_h, c.pad_w = p.pad_w,
    c.dilation_h = p.dilation_h, c.dilation_w = p.dilation_w;
    return c;
  }
  Pool2dParams pool() const { return internal::PoolParams(p, in); }
};

absl::Status TrainOptions::Validate() const {
  if (!(learning_rate > 0)) return absl::InvalidArgumentError("learning_rate must be > 0");
  if (min_learning_rate < 0 || min_learning_rate > learning_rate) {
    return absl::InvalidArgumentError("min_learning_rate must be in [0, learning_rate]");
  }
  if (warmup_steps < 0 || total_steps < 1) {
    return absl::InvalidArgumentError("warmup_steps must be >= 0 and total_steps >= 1");
  }
  if (momentum < 0 || momentum >= 1) return absl::InvalidArgumentError("momentum must be in [0, 1)");
  if (beta1 < 0 || beta1 >= 1 || beta2 < 0 || beta2 >= 1) {
    return absl::InvalidArgumentError("beta1 and beta2 must be in [0, 1)");
  }
  if (weight_decay < 0) return absl::InvalidArgumentError("weight_decay must be >= 0");
  if (label_smoothing < 0 || label_smoothing >= 1) {
    return absl::InvalidArgumentError("label_smoothing must be in [0, 1)");
  }
  if (batch_norm_momentum <= 0 || batch_norm_momentum > 1) {
    return absl::InvalidArgumentError("batch_norm_momentum must be in (0, 1]");
  }
  if (max_batch < 1) return absl::InvalidArgumentError("max_batch must be >= 1");
  if (threads < 1) return absl::InvalidArgumentError("threads must be >= 1");
  return absl::OkStatus();
}

Trainer::Trainer() = default;
Trainer::~Trainer() = default;

absl::StatusOr<std::unique_ptr<Trainer>> Trainer::Create(const ModelSpec& spec,
                                                         const TensorMap& initial,
                                                         const TrainOptions& options) {
  RETURN_IF_ERROR(options.Validate());
  ASSIGN_OR_RETURN(std::vector<Shape> outputs, ValidateSpec(spec));
  ASSIGN_OR_RETURN(Shape input, InputShape(spec));
  auto t = std::unique_ptr<Trainer>(new Trainer());
  t->spec_ = spec;
  t->options_ = options;
  t->input_size_ = input.size();
  t->classes_ = spec.labels_size();
  t->pool_ = std::make_unique<ThreadPool>(options.threads);
  t->rng_.seed(options.seed);
  const size_t max_batch = static_cast<size_t>(options.max_batch);

  std::map<std::string, Param*> by_name;
  for (const WeightSlot& slot : internal::WeightSlots(spec, input, outputs)) {
    auto it = initial.find(slot.name);
    if (it == initial.end()) {
      return absl::InvalidArgumentError(absl::StrCat("initial weights lack \"", slot.name, "\""));
    }
    if (it->second.shape != slot.shape) {
      return absl::InvalidArgumentError(absl::StrCat("initial weight \"", slot.name,
                                                     "\" has the wrong shape"));
    }
    auto p = std::make_unique<Param>();
    p->name = slot.name;
    p->shape = slot.shape;
    p->role = slot.role;
    p->value = it->second.data;
    p->grad.assign(p->value.size(), 0.0f);
    p->shards.assign(static_cast<size_t>(options.threads), std::vector<float>(p->value.size()));
    p->m.assign(p->value.size(), 0.0f);
    p->v.assign(p->value.size(), 0.0f);
    by_name[slot.name] = p.get();
    t->params_.push_back(std::move(p));
  }

  Shape in = input;
  for (int i = 0; i < spec.layers_size(); ++i) {
    const v1::LayerSpec& ls = spec.layers(i);
    ASSIGN_OR_RETURN(LayerParams p, internal::Resolve(ls));
    if (p.kind == OpKind::kSoftmax && i + 1 != spec.layers_size()) {
      return absl::InvalidArgumentError(absl::StrCat(
          internal::LayerLabel(ls), ": training supports softmax only as the last layer"));
    }
    auto l = std::make_unique<Layer>();
    l->p = p;
    l->name = ls.name();
    l->in = in;
    l->out = outputs[static_cast<size_t>(i)];
    auto find = [&](const std::string& suffix) -> Param* {
      auto it = by_name.find(ls.name() + suffix);
      return it == by_name.end() ? nullptr : it->second;
    };
    l->weight = find(".weight");
    l->bias = find(".bias");
    l->running_mean = find(".running_mean");
    l->running_var = find(".running_var");
    if (p.kind == OpKind::kDropout) {
      l->dropout_rate = ls.dropout().rate();
      l->mask.resize(max_batch * l->out.size());
    }
    if ((p.kind == OpKind::kMaxPool || p.kind == OpKind::kAvgPool) && l->pool().blurred()) {
      l->blur_scratch.assign(static_cast<size_t>(options.threads),
                             std::vector<float>(BlurPoolScratch(l->pool())));
    }
    if (p.kind == OpKind::kBatchNorm) {
      l->mean.resize(l->out.c);
      l->inv_std.resize(l->out.c);
      l->var.resize(l->out.c);
    }
    l->act.resize(max_batch * l->out.size());
    l->dact.resize(max_batch * l->out.size());
    in = l->out;
    t->layers_.push_back(std::move(l));
  }
  t->dlogits_.resize(max_batch * static_cast<size_t>(t->classes_));
  return t;
}

double Trainer::LearningRate(int64_t step) const {
  const TrainOptions& o = options_;
  if (step < o.warmup_steps) {
    return o.learning_rate * static_cast<double>(step + 1) / static_cast<double>(o.warmup_steps);
  }
  const double span = std::max<double>(1.0, static_cast<double>(o.total_steps - o.warmup_steps));
  const double progress =
      std::min(1.0, static_cast<double>(step - o.warmup_steps) / span);
  return o.min_learning_rate +
         0.5 * (o.learning_rate - o.min_learning_rate) * (1.0 + std::cos(M_PI * progress));
}

absl::Status Trainer::CheckBatch(std::span<const float> inputs,
                                 std::span<const int> labels) const {
  const size_t n = labels.size();
  if (n < 1 || n > static_cast<size_t>(options_.max_batch)) {
    return absl::InvalidArgumentError(
        absl::StrCat("batch of ", n, " examples; must be in [1, ", options_.max_batch, "]"));
  }
  if (inputs.size() != n * input_size_) {
    return absl::InvalidArgumentError(absl::StrCat("inputs hold ", inputs.size(),
                                                   " values; expected ", n * input_size_));
  }
  for (int label : labels) {
    if (label < 0 || label >= classes_) {
      return absl::InvalidArgumentError(
          absl::StrCat("label ", label, " is outside [0, ", classes_, ")"));
    }
  }
  return absl::OkStatus();
}

double Trainer::ForwardBackward(const float* inputs, const int* labels, int n,
                                const float* class_weight, StepStats* stats) {
  ThreadPool& pool = *pool_;
  // Forward, keeping every activation.
  const float* x = inputs;
  for (auto& lp : layers_) {
    Layer& l = *lp;
    const size_t isz = l.in.size(), osz = l.out.size();
    float* y = l.act.data();
    switch (l.p.kind) {
      case OpKind::kConv: {
        const Conv2dParams c = l.conv();
        const float* b = l.bias ? l.bias->value.data() : nullptr;
        pool.ParallelFor(n, [&](int, int b0, int b1) {
          Conv2d(c, b1 - b0, x + b0 * isz, l.weight->value.data(), b, y + b0 * osz);
        });
        break;
      }
      case OpKind::kMaxPool:
      case OpKind::kAvgPool: {
        const Pool2dParams q = l.pool();
        const bool max = l.p.kind == OpKind::kMaxPool;
        pool.ParallelFor(n, [&](int shard, int b0, int b1) {
          if (q.blurred()) {
            BlurPool2d(max ? PoolKind::kMax : PoolKind::kAvg, q, b1 - b0, x + b0 * isz,
                       y + b0 * osz, l.blur_scratch[static_cast<size_t>(shard)].data());
          } else if (max) {
            MaxPool2d(q, b1 - b0, x + b0 * isz, y + b0 * osz);
          } else {
            AvgPool2d(q, b1 - b0, x + b0 * isz, y + b0 * osz);
          }
        });
        break;
      }
      case OpKind::kGlobalAvgPool:
        GlobalAvgPool(l.in.c, l.in.h * l.in.w, n, x, y);
        break;
      case OpKind::kGlobalMaxPool:
        GlobalMaxPool(l.in.c, l.in.h * l.in.w, n, x, y);
        break;
      case OpKind::kDense:
        Dense(static_cast<uint32_t>(isz), l.out.c, n, x, l.weight->value.data(),
              l.bias ? l.bias->value.data() : nullptr, y);
        break;
      case OpKind::kRelu:
        for (size_t i = 0; i < n * isz; ++i) y[i] = x[i] > 0 ? x[i] : 0.0f;
        break;
      case OpKind::kBatchNorm: {
        const uint32_t hw = l.in.h * l.in.w;
        BatchNormTrainForward(l.in.c, hw, n, l.p.epsilon, x, l.weight->value.data(),
                              l.bias->value.data(), y, l.mean.data(), l.inv_std.data(),
                              l.var.data());
        const double m = static_cast<double>(n) * hw;
        const float mom = options_.batch_norm_momentum;
        for (uint32_t c = 0; c < l.in.c; ++c) {
          const float unbiased = m > 1 ? static_cast<float>(l.var[c] * m / (m - 1)) : l.var[c];
          l.running_mean->value[c] = (1 - mom) * l.running_mean->value[c] + mom * l.mean[c];
          l.running_var->value[c] = (1 - mom) * l.running_var->value[c] + mom * unbiased;
        }
        break;
      }
      case OpKind::kDropout: {
        const size_t count = n * isz;
        for (size_t i = 0; i < count; ++i) {
          const double u = static_cast<double>(rng_() >> 40) * 0x1p-24;
          l.mask[i] = u >= l.dropout_rate ? 1 : 0;
        }
        DropoutApply(count, l.dropout_rate, l.mask.data(), x, y);
        break;
      }
      case OpKind::kFlatten:
      case OpKind::kSoftmax:  // the loss applies its own softmax
        std::memcpy(y, x, n * isz * sizeof(float));
        break;
    }
    x = y;
  }
  const float* logits = x;
  const double loss = SoftmaxCrossEntropy(static_cast<uint32_t>(classes_), n, logits, labels,
                                          options_.label_smoothing, class_weight, dlogits_.data());
  if (stats) {
    stats->examples = n;
    stats->loss = loss;
    stats->correct = 0;
    for (int b = 0; b < n; ++b) {
      const float* row = logits + static_cast<size_t>(b) * classes_;
      if (std::max_element(row, row + classes_) - row == labels[b]) ++stats->correct;
    }
  }

  // Backward.
  for (auto& p : params_) {
    std::fill(p->grad.begin(), p->grad.end(), 0.0f);
    for (auto& s : p->shards) std::fill(s.begin(), s.end(), 0.0f);
  }
  const float* dy = dlogits_.data();
  for (size_t li = layers_.size(); li-- > 0;) {
    Layer& l = *layers_[li];
    const float* in = li == 0 ? inputs : layers_[li - 1]->act.data();
    float* dx = li == 0 ? nullptr : layers_[li - 1]->dact.data();
    const size_t isz = l.in.size(), osz = l.out.size();
    const bool has_params = l.weight != nullptr;
    if (dx == nullptr && !has_params) break;  // nothing below needs a gradient
    switch (l.p.kind) {
      case OpKind::kConv: {
        const Conv2dParams c = l.conv();
        pool.ParallelFor(n, [&](int shard, int b0, int b1) {
          Conv2dBackward(c, b1 - b0, in + b0 * isz, l.weight->value.data(), dy + b0 * osz,
                         dx ? dx + b0 * isz : nullptr, l.weight->shards[shard].data(),
                         l.bias ? l.bias->shards[shard].data() : nullptr);
        });
        break;
      }
      case OpKind::kMaxPool:
      case OpKind::kAvgPool: {
        const Pool2dParams q = l.pool();
        const bool max = l.p.kind == OpKind::kMaxPool;
        pool.ParallelFor(n, [&](int shard, int b0, int b1) {
          if (q.blurred()) {
            BlurPool2dBackward(max ? PoolKind::kMax : PoolKind::kAvg, q, b1 - b0, in + b0 * isz,
                               dy + b0 * osz, dx + b0 * isz,
                               l.blur_scratch[static_cast<size_t>(shard)].data());
          } else if (max) {
            MaxPool2dBackward(q, b1 - b0, in + b0 * isz, dy + b0 * osz, dx + b0 * isz);
          } else {
            AvgPool2dBackward(q, b1 - b0, dy + b0 * osz, dx + b0 * isz);
          }
        });
        break;
      }
      case OpKind::kGlobalAvgPool:
        GlobalAvgPoolBackward(l.in.c, l.in.h * l.in.w, n, dy, dx);
        break;
      case OpKind::kGlobalMaxPool:
        GlobalMaxPoolBackward(l.in.c, l.in.h * l.in.w, n, in, dy, dx);
        break;
      case OpKind::kDense:
        pool.ParallelFor(n, [&](int shard, int b0, int b1) {
          DenseBackward(static_cast<uint32_t>(isz), l.out.c, b1 - b0, in + b0 * isz,
                        l.weight->value.data(), dy + b0 * osz, dx ? dx + b0 * isz : nullptr,
                        l.weight->shards[shard].data(),
                        l.bias ? l.bias->shards[shard].data() : nullptr);
        });
        break;
      case OpKind::kRelu:
        ReluBackward(n * isz, l.act.data(), dy, dx);
        break;
      case OpKind::kBatchNorm:
        BatchNormBackward(l.in.c, l.in.h * l.in.w, n, in, l.weight->value.data(), l.mean.data(),
                          l.inv_std.data(), dy, dx, l.weight->shards[0].data(),
                          l.bias->shards[0].data());
        break;
      case OpKind::kDropout:
        DropoutApply(n * isz, l.dropout_rate, l.mask.data(), dy, dx);
        break;
      case OpKind::kFlatten:
      case OpKind::kSoftmax:
        std::memcpy(dx, dy, n * isz * sizeof(float));
        break;
    }
    if (dx == nullptr) break;
    dy = dx;
  }
  // Sum the shards in shard order (deterministic).
  for (auto& p : params_) {
    for (const auto& s : p->shards) {
      for (size_t i = 0; i < s.size(); ++i) p->grad[i] += s[i];
    }
  }
  return loss;
}

void Trainer::ApplyUpdate() {
  const double lr = LearningRate(steps_);
  const TrainOptions& o = options_;
  const double t = static_cast<double>(steps_ + 1);
  const double bc1 = 1.0 - std::pow(o.beta1, t), bc2 = 1.0 - std::pow(o.beta2, t);
  for (auto& pp : params_) {
    Param& p = *pp;
    if (!p.trainable()) continue;
    const bool decay = p.role == WeightSlot::Role::kWeight;
    for (size_t i = 0; i < p.value.size(); ++i) {
      double g = p.grad[i];
      double w = p.value[i];
      if (o.optimizer == TrainOptions::Optimizer::kSgd) {
        if (decay) g += o.weight_decay * w;
        const double m = o.momentum * p.m[i] + g;
        p.m[i] = static_cast<float>(m);
        w -= lr * m;
      } else {
        const double m = o.beta1 * p.m[i] + (1 - o.beta1) * g;
        const double v = o.beta2 * p.v[i] + (1 - o.beta2) * g * g;
        p.m[i] = static_cast<float>(m);
        p.v[i] = static_cast<float>(v);
        if (decay) w -= lr * o.weight_decay * w;
        w -= lr * (m / bc1) / (std::sqrt(v / bc2) + o.adam_epsilon);
      }
      p.value[i] = static_cast<float>(w);
    }
  }
  ++steps_;
}

absl::StatusOr<StepStats> Trainer::Step(std::span<const float> inputs, std::span<const int> labels,
                                        const float* class_weight) {
  RETURN_IF_ERROR(CheckBatch(inputs, labels));
  StepStats stats;
  stats.learning_rate = LearningRate(steps_);
  ForwardBackward(inputs.data(), labels.data(), static_cast<int>(labels.size()), class_weight,
                  &stats);
  if (!std::isfinite(stats.loss)) {
    return absl::InternalError(absl::StrCat("training diverged at step ", steps_,
                                            " (loss is not finite); lower the learning rate"));
  }
  ApplyUpdate();
  return stats;
}

absl::StatusOr<double> Trainer::ComputeGradients(std::span<const float> inputs,
                                                 std::span<const int> labels,
                                                 const float* class_weight) {
  RETURN_IF_ERROR(CheckBatch(inputs, labels));
  return ForwardBackward(inputs.data(), labels.data(), static_cast<int>(labels.size()),
                         class_weight, nullptr);
}

TensorMap Trainer::gradients() const {
  TensorMap out;
  for (const auto& p : params_) out[p->name] = Tensor{p->shape, p->grad};
  return out;
}

TensorMap Trainer::Weights() const {
  TensorMap out;
  for (const auto& p : params_) out[p->name] = Tensor{p->shape, p->value};
  return out;
}

absl::Status Trainer::SetWeight(const std::string& name, std::span<const float> values) {
  for (auto& p : params_) {
    if (p->name != name) continue;
    if (values.size() != p->value.size()) {
      return absl::InvalidArgumentError(absl::StrCat("\"", name, "\" holds ", p->value.size(),
                                                     " values, not ", values.size()));
    }
    std::copy(values.begin(), values.end(), p->value.begin());
    return absl::OkStatus();
  }
  return absl::NotFoundError(absl::StrCat("no tensor \"", name, "\""));
}

}  // namespace wavepool::nn
