#include "nn/model.h"

#include <algorithm>
#include <cassert>
#include <cmath>
#include <chrono>
#include <cstring>
#include <limits>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "nn/conv_gemm.h"
#include "nn/kernels.h"
#include "nn/model_op.h"
#include "nn/spec_internal.h"
#include "util/status_macros.h"

namespace wavepool::nn {

using internal::OpKind;
using internal::WeightSlot;

namespace {

std::string ShapeString(const std::vector<int64_t>& s) { return absl::StrCat("[", absl::StrJoin(s, ", "), "]"); }

// Checks one weight's presence, shape, size and values.
absl::Status CheckWeight(const ModelSpec& spec, const WeightSlot& slot, const Shape& layer_in,
                         const TensorMap& weights) {
  const auto& layer = spec.layers(static_cast<int>(slot.layer));
  const std::string label = internal::LayerLabel(layer);
  auto it = weights.find(slot.name);
  if (it == weights.end()) {
    return absl::InvalidArgumentError(absl::StrCat(label, ": tensor '", slot.name, "' ",
                                                   ShapeString(slot.shape), " is missing"));
  }
  const Tensor& t = it->second;
  if (t.shape != slot.shape) {
    std::string why;
    if (layer.op_case() == ::wavepool::v1::LayerSpec::kDense && slot.role == WeightSlot::Role::kWeight) {
      why = absl::StrCat(" (its input ", layer_in.ToString(), " flattens to ", layer_in.size(),
                         " features)");
    }
    return absl::InvalidArgumentError(absl::StrCat(label, ": tensor '", slot.name, "' has shape ",
                                                   ShapeString(t.shape), " but the spec needs ",
                                                   ShapeString(slot.shape), why));
  }
  size_t count = 1;
  for (int64_t d : t.shape) count *= static_cast<size_t>(d);
  if (t.data.size() != count) {
    return absl::InvalidArgumentError(absl::StrCat(label, ": tensor '", slot.name, "' holds ",
                                                   t.data.size(), " values but its shape ",
                                                   ShapeString(t.shape), " needs ", count));
  }
  for (size_t i = 0; i < t.data.size(); ++i) {
    if (!std::isfinite(t.data[i])) {
      return absl::InvalidArgumentError(absl::StrCat(label, ": tensor '", slot.name, "' value ", i,
                                                     " is ", t.data[i], "; weights must be finite"));
    }
    if (slot.role == WeightSlot::Role::kBnVar && t.data[i] < 0) {
      return absl::InvalidArgumentError(absl::StrCat(label, ": tensor '", slot.name, "' value ", i,
                                                     " is ", t.data[i], "; a variance is >= 0"));
    }
  }
  return absl::OkStatus();
}

const std::vector<float>& Data(const TensorMap& w, const std::string& name) { return w.at(name).data; }

// Batch-norm at inference as y = x * scale + shift, in double:
// scale = gamma / sqrt(var + eps), shift = beta - mean * scale.
void BatchNormAffine(const TensorMap& w, const std::string& n, float eps, std::vector<double>* scale,
                     std::vector<double>* shift) {
  const auto& gamma = Data(w, n + ".weight");
  const auto& beta = Data(w, n + ".bias");
  const auto& mean = Data(w, n + ".running_mean");
  const auto& var = Data(w, n + ".running_var");
  scale->resize(gamma.size());
  shift->resize(gamma.size());
  for (size_t c = 0; c < gamma.size(); ++c) {
    (*scale)[c] = gamma[c] / std::sqrt(double{var[c]} + eps);
    (*shift)[c] = beta[c] - mean[c] * (*scale)[c];
  }
}

}  // namespace

Model::Model() = default;
Model::~Model() = default;

absl::StatusOr<std::shared_ptr<const Model>> Model::Create(ModelSpec spec, const TensorMap& weights) {
  ASSIGN_OR_RETURN(std::vector<Shape> shapes, ValidateSpec(spec));
  ASSIGN_OR_RETURN(Shape input, InputShape(spec));
  const std::vector<WeightSlot> slots = internal::WeightSlots(spec, input, shapes);
  for (const WeightSlot& slot : slots) {
    const Shape& layer_in = slot.layer == 0 ? input : shapes[slot.layer - 1];
    RETURN_IF_ERROR(CheckWeight(spec, slot, layer_in, weights));
  }
  if (weights.size() > slots.size()) {
    std::vector<std::string> extra;
    for (const auto& entry : weights) {
      // Not a structured binding: clang 14 (the fuzz build) cannot capture one.
      const std::string& name = entry.first;
      if (std::none_of(slots.begin(), slots.end(), [&](const WeightSlot& s) { return s.name == name; })) {
        extra.push_back("'" + name + "'");
      }
    }
    return absl::InvalidArgumentError(absl::StrCat(
        "the weights hold ", extra.size(), " tensor(s) no layer of the spec uses: ",
        absl::StrJoin(extra.begin(), extra.begin() + std::min<size_t>(extra.size(), 5), ", "),
        extra.size() > 5 ? ", ..." : "", " (wrong spec for these weights?)"));
  }

  std::shared_ptr<Model> m(new Model());
  m->input_shape_ = input;
  m->max_activation_ = input.size();
  Shape in = input;
  OpKind prev = OpKind::kRelu;  // kind of the directly preceding spec layer
  std::vector<std::string> leading;  // layers before the first op that compile to none
  for (int i = 0; i < spec.layers_size(); ++i) {
    const auto& layer = spec.layers(i);
    ASSIGN_OR_RETURN(internal::LayerParams p, internal::Resolve(layer));
    const Shape out = shapes[static_cast<size_t>(i)];
    const std::string& n = layer.name();
    const double flops = internal::LayerFlops(p, in, out, prev);
    auto op = std::make_unique<Op>();
    op->layers.push_back(n);
    op->op_name = internal::OpName(layer);
    op->flops = flops;
    op->in = in;
    op->out = out;
    switch (p.kind) {
      case OpKind::kConv:
        op->kind = Op::Kind::kConv;
        op->conv = {in.c, in.h, in.w, out.c, p.kernel_h, p.kernel_w, p.stride_h, p.stride_w,
                    p.pad_h,  p.pad_w, p.dilation_h, p.dilation_w};
        op->weight = Data(weights, n + ".weight");
        if (p.bias) op->bias = Data(weights, n + ".bias");
        break;
      case OpKind::kDense:
        op->kind = Op::Kind::kDense;
        op->weight = Data(weights, n + ".weight");
        if (p.bias) op->bias = Data(weights, n + ".bias");
        break;
      case OpKind::kMaxPool:
      case OpKind::kAvgPool:
        op->kind = p.kind == OpKind::kMaxPool ? Op::Kind::kMaxPool : Op::Kind::kAvgPool;
        op->pool = internal::PoolParams(p, in);
        break;
      case OpKind::kGlobalAvgPool: op->kind = Op::Kind::kGlobalAvg; break;
      case OpKind::kGlobalMaxPool: op->kind = Op::Kind::kGlobalMax; break;
      case OpKind::kRelu:
        if (!m->ops_.empty() && m->ops_.back()->kind == Op::Kind::kConv && !m->ops_.back()->relu) {
          // Fused into the conv op just before (every conv kernel applies it to
          // its output; oneDNN's as a post-op, while the value is in registers).
          m->ops_.back()->relu = true;
          op.reset();
        } else {
          op->kind = Op::Kind::kRelu;
        }
        break;
      case OpKind::kSoftmax: op->kind = Op::Kind::kSoftmax; break;
      case OpKind::kBatchNorm: {
        std::vector<double> scale, shift;
        BatchNormAffine(weights, n, p.epsilon, &scale, &shift);
        if (prev == OpKind::kConv || prev == OpKind::kDense) {
          // Fold into the layer before: W' = W * scale[o], b' = b * scale[o] + shift[o].
          Op& target = *m->ops_.back();
          const size_t per_out = target.weight.size() / scale.size();
          if (target.bias.empty()) target.bias.assign(scale.size(), 0.0f);
          for (size_t o = 0; o < scale.size(); ++o) {
            for (size_t k = 0; k < per_out; ++k) {
              float& w = target.weight[o * per_out + k];
              w = static_cast<float>(w * scale[o]);
            }
            target.bias[o] = static_cast<float>(target.bias[o] * scale[o] + shift[o]);
          }
          op.reset();
        } else {
          op->kind = Op::Kind::kAffine;
          op->scale.assign(scale.begin(), scale.end());
          op->shift.assign(shift.begin(), shift.end());
        }
        break;
      }
      case OpKind::kDropout:
      case OpKind::kFlatten:
        op.reset();
        break;
    }
    if (op == nullptr) {
      // Folded or no-op: part of the op before it (or of the first op).
      if (m->ops_.empty()) {
        leading.push_back(n);
      } else {
        m->ops_.back()->layers.push_back(n);
        m->ops_.back()->flops += flops;
      }
    } else {
      op->layers.insert(op->layers.begin(), leading.begin(), leading.end());
      leading.clear();
      m->max_activation_ = std::max(m->max_activation_, out.size());
      if (op->kind == Op::Kind::kConv) {
        m->max_conv_scratch_ = std::max(m->max_conv_scratch_, Conv2dGemmScratch(op->conv));
      }
      if ((op->kind == Op::Kind::kMaxPool || op->kind == Op::Kind::kAvgPool) && op->pool.blurred()) {
        m->max_blur_scratch_ = std::max(m->max_blur_scratch_, BlurPoolScratch(op->pool));
      }
      m->ops_.push_back(std::move(op));
    }
    prev = p.kind;
    in = out;
  }
  m->ChooseSegments();
  m->output_size_ = in.size();
  m->outputs_probabilities_ = spec.layers(spec.layers_size() - 1).has_softmax();
  m->spec_ = std::move(spec);
  return std::shared_ptr<const Model>(std::move(m));
}

absl::StatusOr<std::shared_ptr<const Model>> Model::Load(
    const std::string& dir, std::span<const ::wavepool::v1::PoolOverride> overrides) {
  ASSIGN_OR_RETURN(ModelSpec spec, ReadSpecFile(dir + "/spec.json"));
  RETURN_IF_ERROR(ApplyPoolOverrides(overrides, &spec));
  ASSIGN_OR_RETURN(Safetensors st, ReadSafetensors(dir + "/weights.safetensors"));
  auto model = Create(std::move(spec), st.tensors);
  if (!model.ok()) {
    return absl::Status(model.status().code(),
                        absl::StrCat(dir, ": ", model.status().message()));
  }
  return model;
}

void Model::ChooseSegments() {
  // The rule (measured in docs/performance.md): every maximal run of ops that
  // starts at a convolution and holds only convolutions (ReLU fused) and
  // max/average poolings runs as one oneDNN segment, in oneDNN's blocked
  // layout, when oneDNN has JIT kernels for all its shapes on this CPU. On the
  // shipped models that ran 2.0-2.1x (digits) and 1.3x (ECG) as fast as
  // im2col + OpenBLAS's AVX-512 kernel with our NCHW pooling (bench_conv).
  // Otherwise (no JIT kernel, or oneDNN fails) those ops run as before.
  for (size_t i = 0; i < ops_.size();) {
    if (ops_[i]->kind != Op::Kind::kConv) {
      ++i;
      continue;
    }
    size_t end = i + 1;
    // An anti-aliased (blurred) pool has no oneDNN counterpart: it ends the run.
    while (end < ops_.size() &&
           (ops_[end]->kind == Op::Kind::kConv ||
            ((ops_[end]->kind == Op::Kind::kMaxPool || ops_[end]->kind == Op::Kind::kAvgPool) &&
             !ops_[end]->pool.blurred()))) {
      ++end;
    }
    std::vector<DnnlLayer> layers;
    for (size_t k = i; k < end; ++k) {
      const Op& op = *ops_[k];
      DnnlLayer l;
      if (op.kind == Op::Kind::kConv) {
        l.conv = op.conv;
        l.weight = op.weight.data();
        l.bias = op.bias.empty() ? nullptr : op.bias.data();
        l.relu = op.relu;
      } else {
        l.kind = op.kind == Op::Kind::kMaxPool ? DnnlLayer::Kind::kMaxPool : DnnlLayer::Kind::kAvgPool;
        l.pool = op.pool;
      }
      layers.push_back(l);
    }
    absl::StatusOr<std::unique_ptr<const DnnlSegment>> seg = DnnlSegment::Create(layers);
    if (seg.ok() && (*seg)->jit()) {
      for (size_t k = i; k < end; ++k) {
        ops_[k]->segment = static_cast<int>(segments_.size());
        ops_[k]->segment_layer = k - i;
        max_activation_ = std::max(max_activation_, (*seg)->out_floats(k - i));
      }
      segments_.push_back(std::move(*seg));
    }
    i = end;
  }
}

const float* Model::Current(const float* input, const Workspace& ws, int cur) const {
  return cur < 0 ? input : cur == 0 ? ws.a_.data() : ws.b_.data();
}

DnnlSegment::Thread* Model::DnnlState(const Op& op, Workspace& ws) const {
  if (op.segment < 0 || ws.dnnl_.empty()) return nullptr;
  return ws.dnnl_[static_cast<size_t>(op.segment)].get();
}

std::string Model::Kernel(const Op& op, Workspace& ws) const {
  if (DnnlState(op, ws) != nullptr) {
    return "onednn " + segments_[static_cast<size_t>(op.segment)]->impl(op.segment_layer);
  }
  if (op.kind != Op::Kind::kConv) return "";
  return ws.path_ == ConvPath::kReference ? "reference" : "im2col+sgemm";
}

void Model::RunOp(const Op& op, const float* input, int batch, Workspace& ws, int* cur) const {
  float* bufs[2] = {ws.a_.data(), ws.b_.data()};
  if (op.in_place()) {
    if (*cur < 0) {
      std::memcpy(bufs[0], input, sizeof(float) * batch * op.in.size());
      *cur = 0;
    }
    float* x = bufs[*cur];
    switch (op.kind) {
      case Op::Kind::kRelu: Relu(static_cast<size_t>(batch) * op.in.size(), x); break;
      case Op::Kind::kAffine:
        ChannelAffine(op.in.c, op.in.h * op.in.w, batch, op.scale.data(), op.shift.data(), x);
        break;
      default:
        for (int b = 0; b < batch; ++b) Softmax(op.in.c, x + static_cast<size_t>(b) * op.in.c);
        break;
    }
    return;
  }
  const float* src = Current(input, ws, *cur);
  const int dst_index = *cur == 0 ? 1 : 0;
  float* dst = bufs[dst_index];
  if (DnnlSegment::Thread* t = DnnlState(op, ws)) {
    // In the segment, activations are in oneDNN's layout: no other kernel
    // could take over from here, so a failure (none expected once the
    // primitives exist) marks the whole Run's output.
    if (!segments_[static_cast<size_t>(op.segment)]->Run(op.segment_layer, batch, src, dst, *t)) {
      ws.dnnl_failed_ = true;
    }
    *cur = dst_index;
    return;
  }
  const float* bias = op.bias.empty() ? nullptr : op.bias.data();
  switch (op.kind) {
    case Op::Kind::kConv:
      if (ws.path_ == ConvPath::kReference) {
        Conv2d(op.conv, batch, src, op.weight.data(), bias, dst);
      } else {
        Conv2dGemm(op.conv, batch, src, op.weight.data(), bias, dst, ws.scratch_.data());
      }
      if (op.relu) Relu(static_cast<size_t>(batch) * op.out.size(), dst);
      break;
    case Op::Kind::kDense:
      Dense(static_cast<uint32_t>(op.in.size()), op.out.c, batch, src, op.weight.data(), bias, dst);
      break;
    case Op::Kind::kMaxPool:
    case Op::Kind::kAvgPool: {
      const PoolKind kind = op.kind == Op::Kind::kMaxPool ? PoolKind::kMax : PoolKind::kAvg;
      if (op.pool.blurred()) {
        BlurPool2d(kind, op.pool, batch, src, dst, ws.blur_scratch_.data());
      } else if (kind == PoolKind::kMax) {
        MaxPool2d(op.pool, batch, src, dst);
      } else {
        AvgPool2d(op.pool, batch, src, dst);
      }
      break;
    }
    case Op::Kind::kGlobalAvg: GlobalAvgPool(op.in.c, op.in.h * op.in.w, batch, src, dst); break;
    case Op::Kind::kGlobalMax: GlobalMaxPool(op.in.c, op.in.h * op.in.w, batch, src, dst); break;
    default: break;
  }
  *cur = dst_index;
}

void Model::Run(const float* input, int batch, float* output, Workspace& ws) const {
  assert(batch >= 0 && batch <= ws.max_batch_);
  assert(ws.a_.size() >= static_cast<size_t>(batch) * max_activation_);
  if (batch <= 0) return;
  int cur = -1;  // buffer holding the current activation; -1: the caller's input
  for (size_t i = 0; i < ops_.size();) {
    const Op& op = *ops_[i];
    if (batch > 1 && op.segment >= 0 && DnnlState(op, ws) != nullptr) {
      i += RunSegment(op, input, batch, ws, &cur);
    } else {
      RunOp(op, input, batch, ws, &cur);
      ++i;
    }
  }
  CopyOutput(input, batch, ws, cur, output);
}

size_t Model::RunSegment(const Op& first, const float* input, int batch, Workspace& ws, int* cur) const {
  // Window by window through all the segment's layers (Profile the same, with
  // a clock around each layer of each window): a window's activations between
  // layers, 0.1-0.4 MB in the digit network, stay in the core's L2 instead of
  // making a round trip to memory per layer for batch x that.
  const DnnlSegment& seg = *segments_[static_cast<size_t>(first.segment)];
  const int dst = *cur == 0 ? 1 : 0;
  float* out = dst == 0 ? ws.a_.data() : ws.b_.data();
  if (!seg.RunWindows(batch, Current(input, ws, *cur), out, *DnnlState(first, ws))) ws.dnnl_failed_ = true;
  *cur = dst;
  return seg.size();
}

void Model::CopyOutput(const float* input, int batch, Workspace& ws, int cur, float* output) const {
  const size_t n = static_cast<size_t>(batch) * output_size_;
  if (ws.dnnl_failed_) {
    std::fill(output, output + n, std::numeric_limits<float>::quiet_NaN());
    ws.dnnl_failed_ = false;
    return;
  }
  std::memcpy(output, Current(input, ws, cur), sizeof(float) * n);
}

std::vector<LayerTime> Model::Profile(const float* input, int batch, Workspace& ws, int repeats,
                                      float* output) const {
  assert(batch >= 0 && batch <= ws.max_batch_);
  std::vector<LayerTime> times(ops_.size());
  for (size_t i = 0; i < ops_.size(); ++i) {
    const Op& op = *ops_[i];
    times[i].layers = op.layers;
    times[i].op = op.op_name;
    times[i].output = op.out;
    times[i].mflops = op.flops / 1e6;
    times[i].kernel = Kernel(op, ws);
  }
  if (batch <= 0) return times;
  repeats = std::max(repeats, 1);
  using Clock = std::chrono::steady_clock;
  std::vector<Clock::duration> total(ops_.size(), Clock::duration::zero());
  int cur = -1;
  // Pass 0 is the untimed warm-up (caches, OpenBLAS's first-call set-up).
  for (int pass = 0; pass <= repeats; ++pass) {
    cur = -1;
    for (size_t i = 0; i < ops_.size();) {
      const Op& op = *ops_[i];
      if (batch > 1 && op.segment >= 0 && DnnlState(op, ws) != nullptr) {
        // As Run computes it: window by window through the segment's layers,
        // a clock read around each layer of each window.
        const DnnlSegment& seg = *segments_[static_cast<size_t>(op.segment)];
        DnnlSegment::Thread& t = *DnnlState(op, ws);
        const float* src = Current(input, ws, cur);
        const int dst = cur == 0 ? 1 : 0;
        float* out = dst == 0 ? ws.a_.data() : ws.b_.data();
        for (int b = 0; b < batch; ++b) {
          for (size_t k = 0; k < seg.size(); ++k) {
            const Clock::time_point start = Clock::now();
            if (!seg.RunWindowLayer(k, b, src, out, t)) ws.dnnl_failed_ = true;
            if (pass > 0) total[i + k] += Clock::now() - start;
          }
        }
        cur = dst;
        i += seg.size();
        continue;
      }
      const Clock::time_point start = Clock::now();
      RunOp(op, input, batch, ws, &cur);
      if (pass > 0) total[i] += Clock::now() - start;
      ++i;
    }
  }
  for (size_t i = 0; i < ops_.size(); ++i) {
    times[i].seconds = std::chrono::duration<double>(total[i]).count() / repeats;
  }
  if (output != nullptr) CopyOutput(input, batch, ws, cur, output);
  ws.dnnl_failed_ = false;
  return times;
}

Workspace::Workspace(const Model& model, int max_batch, ConvPath path)
    : max_batch_(std::max(max_batch, 1)),
      path_(path),
      a_(static_cast<size_t>(max_batch_) * model.max_activation_),
      b_(static_cast<size_t>(max_batch_) * model.max_activation_),
      scratch_(path == ConvPath::kReference ? 0 : model.max_conv_scratch_),
      blur_scratch_(model.max_blur_scratch_) {
  if (path != ConvPath::kChosen) return;
  for (const auto& seg : model.segments_) {
    absl::StatusOr<DnnlSegment::ThreadPtr> t = seg->NewThread();
    dnnl_.push_back(t.ok() ? std::move(*t) : nullptr);
  }
}

Workspace::~Workspace() = default;

}  // namespace wavepool::nn
