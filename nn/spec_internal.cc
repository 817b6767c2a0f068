#include "nn/spec_internal.h"

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "nn/kernels.h"

namespace wavepool::nn::internal {
namespace {

using ::wavepool::v1::LayerSpec;

uint32_t OneIfZero(uint32_t v) { return v == 0 ? 1 : v; }

// Blur only where the pool subsamples: on a stride-1 axis there is no aliasing
// to prevent, and a blur there would only smooth.
void SetBlur(uint32_t blur, LayerParams* p) {
  p->blur = blur;
  const uint32_t taps = blur <= 1 ? 1 : blur;
  p->blur_h = p->stride_h > 1 ? taps : 1;
  p->blur_w = p->stride_w > 1 ? taps : 1;
}

LayerParams FromConv2d(const ::wavepool::v1::Conv2dSpec& c) {
  LayerParams p;
  p.kind = OpKind::kConv;
  p.out_channels = c.out_channels();
  p.kernel_h = c.kernel_freq();
  p.kernel_w = c.kernel_time();
  p.stride_h = OneIfZero(c.stride_freq());
  p.stride_w = OneIfZero(c.stride_time());
  p.pad_h = c.pad_freq();
  p.pad_w = c.pad_time();
  p.dilation_h = OneIfZero(c.dilation_freq());
  p.dilation_w = OneIfZero(c.dilation_time());
  p.bias = !c.no_bias();
  return p;
}

LayerParams FromConv1d(const ::wavepool::v1::Conv1dSpec& c) {
  LayerParams p;
  p.kind = OpKind::kConv;
  p.one_d = true;
  p.out_channels = c.out_channels();
  p.kernel_w = c.kernel();
  p.stride_w = OneIfZero(c.stride());
  p.pad_w = c.padding();
  p.dilation_w = OneIfZero(c.dilation());
  p.bias = !c.no_bias();
  return p;
}

LayerParams FromPool2d(OpKind kind, const ::wavepool::v1::Pool2dSpec& s) {
  LayerParams p;
  p.kind = kind;
  p.kernel_h = s.kernel_freq();
  p.kernel_w = s.kernel_time();
  // Stride 0 means "non-overlapping": the kernel size.
  p.stride_h = s.stride_freq() == 0 ? s.kernel_freq() : s.stride_freq();
  p.stride_w = s.stride_time() == 0 ? s.kernel_time() : s.stride_time();
  p.pad_h = s.pad_freq();
  p.pad_w = s.pad_time();
  p.count_include_pad = s.count_include_pad();
  SetBlur(s.blur(), &p);
  return p;
}

LayerParams FromPool1d(OpKind kind, const ::wavepool::v1::Pool1dSpec& s) {
  LayerParams p;
  p.kind = kind;
  p.one_d = true;
  p.kernel_w = s.kernel();
  p.stride_w = s.stride() == 0 ? s.kernel() : s.stride();
  p.pad_w = s.padding();
  p.count_include_pad = s.count_include_pad();
  SetBlur(s.blur(), &p);
  return p;
}

LayerParams Simple(OpKind kind) {
  LayerParams p;
  p.kind = kind;
  return p;
}

}  // namespace

const char* OpName(const LayerSpec& layer) {
  switch (layer.op_case()) {
    case LayerSpec::kConv1D: return "conv1d";
    case LayerSpec::kConv2D: return "conv2d";
    case LayerSpec::kMaxPool1D: return "max_pool1d";
    case LayerSpec::kAvgPool1D: return "avg_pool1d";
    case LayerSpec::kMaxPool2D: return "max_pool2d";
    case LayerSpec::kAvgPool2D: return "avg_pool2d";
    case LayerSpec::kGlobalAvgPool: return "global_avg_pool";
    case LayerSpec::kGlobalMaxPool: return "global_max_pool";
    case LayerSpec::kDense: return "dense";
    case LayerSpec::kRelu: return "relu";
    case LayerSpec::kBatchNorm: return "batch_norm";
    case LayerSpec::kDropout: return "dropout";
    case LayerSpec::kFlatten: return "flatten";
    case LayerSpec::kSoftmax: return "softmax";
    case LayerSpec::OP_NOT_SET: break;
  }
  return "(no op)";
}

std::string LayerLabel(const LayerSpec& layer) {
  return absl::StrCat("layer '", layer.name(), "' (", OpName(layer), ")");
}

absl::StatusOr<LayerParams> Resolve(const LayerSpec& layer) {
  switch (layer.op_case()) {
    case LayerSpec::kConv1D: return FromConv1d(layer.conv1d());
    case LayerSpec::kConv2D: return FromConv2d(layer.conv2d());
    case LayerSpec::kMaxPool1D: return FromPool1d(OpKind::kMaxPool, layer.max_pool1d());
    case LayerSpec::kAvgPool1D: return FromPool1d(OpKind::kAvgPool, layer.avg_pool1d());
    case LayerSpec::kMaxPool2D: return FromPool2d(OpKind::kMaxPool, layer.max_pool2d());
    case LayerSpec::kAvgPool2D: return FromPool2d(OpKind::kAvgPool, layer.avg_pool2d());
    case LayerSpec::kGlobalAvgPool: return Simple(OpKind::kGlobalAvgPool);
    case LayerSpec::kGlobalMaxPool: return Simple(OpKind::kGlobalMaxPool);
    case LayerSpec::kDense: {
      LayerParams p = Simple(OpKind::kDense);
      p.out_channels = layer.dense().out_features();
      p.bias = !layer.dense().no_bias();
      return p;
    }
    case LayerSpec::kRelu: return Simple(OpKind::kRelu);
    case LayerSpec::kBatchNorm: {
      LayerParams p = Simple(OpKind::kBatchNorm);
      if (layer.batch_norm().epsilon() != 0) p.epsilon = layer.batch_norm().epsilon();
      return p;
    }
    case LayerSpec::kDropout: return Simple(OpKind::kDropout);
    case LayerSpec::kFlatten: return Simple(OpKind::kFlatten);
    case LayerSpec::kSoftmax: return Simple(OpKind::kSoftmax);
    case LayerSpec::OP_NOT_SET: break;
  }
  return absl::InvalidArgumentError(absl::StrCat(
      "layer '", layer.name(), "' has no op; set exactly one of conv1d, conv2d, max_pool1d, "
      "avg_pool1d, max_pool2d, avg_pool2d, global_avg_pool, global_max_pool, dense, relu, "
      "batch_norm, dropout, flatten, softmax"));
}

Pool2dParams PoolParams(const LayerParams& p, const Shape& in) {
  Pool2dParams q;
  q.c = in.c, q.in_h = in.h, q.in_w = in.w, q.kernel_h = p.kernel_h, q.kernel_w = p.kernel_w;
  q.stride_h = p.stride_h, q.stride_w = p.stride_w, q.pad_h = p.pad_h, q.pad_w = p.pad_w;
  q.count_include_pad = p.count_include_pad;
  q.blur_h = p.blur_h, q.blur_w = p.blur_w;
  return q;
}

Shape OutputShape(const LayerParams& p, const Shape& in) {
  switch (p.kind) {
    case OpKind::kConv:
      return {p.out_channels, ConvOutSize(in.h, p.kernel_h, p.stride_h, p.pad_h, p.dilation_h),
              ConvOutSize(in.w, p.kernel_w, p.stride_w, p.pad_w, p.dilation_w)};
    case OpKind::kMaxPool:
    case OpKind::kAvgPool:
      return {in.c, PoolOutSize(in.h, p.kernel_h, p.stride_h, p.pad_h),
              PoolOutSize(in.w, p.kernel_w, p.stride_w, p.pad_w)};
    case OpKind::kGlobalAvgPool:
    case OpKind::kGlobalMaxPool:
      return {in.c, 1, 1};
    case OpKind::kDense:
      return {p.out_channels, 1, 1};
    case OpKind::kFlatten:
      // Same memory (NCHW flattens row-major); the shape says what a dense sees.
      return {static_cast<uint32_t>(in.size()), 1, 1};
    case OpKind::kRelu:
    case OpKind::kBatchNorm:
    case OpKind::kDropout:
    case OpKind::kSoftmax:
      break;
  }
  return in;
}

double LayerFlops(const LayerParams& p, const Shape& in, const Shape& out, OpKind prev) {
  const auto in_size = static_cast<double>(in.size());
  switch (p.kind) {
    case OpKind::kConv:
      return static_cast<double>(out.size()) *
             (2.0 * in.c * p.kernel_h * p.kernel_w + (p.bias ? 1 : 0));
    case OpKind::kMaxPool:
    case OpKind::kAvgPool: {
      // One compare (max) or add (average; the divide stands in for the
      // first cell, which needs no add) per window cell. Blurred: the pool
      // runs at stride 1 on the blurred axes, then a multiply-add per tap per
      // value of each blur pass (time first, then frequency).
      const Pool2dParams q = PoolParams(p, in);
      const Pool2dParams stage = BlurStage(q);
      const double sh = stage.out_h(), sw = stage.out_w();
      double flops = static_cast<double>(in.c) * sh * sw * p.kernel_h * p.kernel_w;
      if (p.blur_w > 1) flops += 2.0 * in.c * sh * out.w * p.blur_w;
      if (p.blur_h > 1) flops += 2.0 * in.c * out.h * out.w * p.blur_h;
      return flops;
    }
    case OpKind::kDense:
      return static_cast<double>(out.c) * (2.0 * in_size + (p.bias ? 1 : 0));
    case OpKind::kGlobalAvgPool:
    case OpKind::kGlobalMaxPool:
    case OpKind::kRelu:
      return in_size;
    case OpKind::kBatchNorm:
      // Folded: free. Else a multiply and an add per value.
      return (prev == OpKind::kConv || prev == OpKind::kDense) ? 0 : 2.0 * in_size;
    case OpKind::kSoftmax:
      // exp, sum, divide per value.
      return 3.0 * in_size;
    case OpKind::kDropout:
    case OpKind::kFlatten:
      break;
  }
  return 0;
}

std::vector<WeightSlot> WeightSlots(const ::wavepool::v1::ModelSpec& spec, const Shape& input,
                                    const std::vector<Shape>& outputs) {
  std::vector<WeightSlot> slots;
  Shape in = input;
  for (size_t i = 0; i < static_cast<size_t>(spec.layers_size()) && i < outputs.size(); ++i) {
    const LayerSpec& layer = spec.layers(static_cast<int>(i));
    auto p = Resolve(layer);
    if (!p.ok()) break;
    const std::string& n = layer.name();
    const int64_t out_c = outputs[i].c;
    switch (p->kind) {
      case OpKind::kConv: {
        WeightSlot w{n + ".weight", {out_c, in.c}, WeightSlot::Role::kWeight, i,
                     uint64_t{in.c} * p->kernel_h * p->kernel_w};
        if (!p->one_d) w.shape.push_back(p->kernel_h);
        w.shape.push_back(p->kernel_w);
        slots.push_back(std::move(w));
        if (p->bias) slots.push_back({n + ".bias", {out_c}, WeightSlot::Role::kBias, i, 0});
        break;
      }
      case OpKind::kDense: {
        const auto in_f = static_cast<int64_t>(in.size());
        slots.push_back({n + ".weight", {out_c, in_f}, WeightSlot::Role::kWeight, i,
                         static_cast<uint64_t>(in_f)});
        if (p->bias) slots.push_back({n + ".bias", {out_c}, WeightSlot::Role::kBias, i, 0});
        break;
      }
      case OpKind::kBatchNorm: {
        const int64_t c = in.c;
        slots.push_back({n + ".weight", {c}, WeightSlot::Role::kBnWeight, i, 0});
        slots.push_back({n + ".bias", {c}, WeightSlot::Role::kBnBias, i, 0});
        slots.push_back({n + ".running_mean", {c}, WeightSlot::Role::kBnMean, i, 0});
        slots.push_back({n + ".running_var", {c}, WeightSlot::Role::kBnVar, i, 0});
        break;
      }
      default:
        break;
    }
    in = outputs[i];
  }
  return slots;
}

}  // namespace wavepool::nn::internal
