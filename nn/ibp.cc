#include "nn/ibp.h"

#include <algorithm>
#include <cassert>
#include <cmath>
#include <cstring>
#include <limits>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "nn/conv_gemm.h"
#include "nn/kernels.h"
#include "nn/model_op.h"

namespace wavepool::nn {

namespace {

constexpr float kInf = std::numeric_limits<float>::infinity();
// Unit roundoff of float (round to nearest).
constexpr double kUnit = 1.0 / (1 << 24);

// gamma_n = n u / (1 - n u) (Higham 2002, Lemma 3.1), with n = fan-in + 2 (the
// bias add and one spare), rounded up to a float.
float Gamma(size_t fan_in) {
  const double nu = static_cast<double>(fan_in + 2) * kUnit;
  if (nu >= 0.5) return kInf;  // no useful bound; keeps the radius unbounded
  return std::nextafter(static_cast<float>(nu / (1 - nu)), kInf);
}

// Centre/radius step of a linear op. On entry lo/hi hold the op's input
// bounds; centre and v receive the centre c and the radius to push through |W|,
//   v = r (1 + g) + 2 g |c|,
// which bounds |forward(x) - fl(W c + b)| <= |W| v (1 + g) + 2 g |b| for every
// float x in [lo, hi]: |W| r for x - c, g |W| |x| <= g |W| (|c| + r) for the
// forward pass's rounding and g (|W| |c| + |b|) for the centre's.
void CentreAndRadius(size_t n, float g, const float* lo, const float* hi, float* centre, float* v) {
  for (size_t k = 0; k < n; ++k) {
    const float l = lo[k], u = hi[k];
    float c, r;
    if (std::isfinite(l) && std::isfinite(u)) {
      c = 0.5f * l + 0.5f * u;
      r = std::nextafter(std::max(u - c, c - l), kInf);
    } else {
      c = std::isfinite(l) ? l : std::isfinite(u) ? u : 0.0f;
      r = kInf;
    }
    centre[k] = c;
    // The (1 + 2^-21) covers this line's own three roundings.
    v[k] = (r * (1 + g) + 2 * g * std::fabs(c)) * (1.0f + 0x1p-21f);
  }
}

// Turns the propagated centre (in lo) and |W| v (in hi) into bounds, in place.
// bias: one value per output channel (size channels) or empty; hw values each.
void FinishLinear(size_t n, size_t hw, float g, const std::vector<float>& bias, float* lo, float* hi) {
  for (size_t j = 0; j < n; ++j) {
    const float b = bias.empty() ? 0.0f : std::fabs(bias[j / hw]);
    float radius = (hi[j] * (1 + g) + 2 * g * b) * (1.0f + 0x1p-21f);
    if (std::isnan(radius)) radius = kInf;  // 0 * inf inside |W| v
    const float c = lo[j];
    if (!std::isfinite(c)) {
      lo[j] = -kInf;
      hi[j] = kInf;
      continue;
    }
    lo[j] = std::nextafter(c - radius, -kInf);
    hi[j] = std::nextafter(c + radius, kInf);
  }
}

}  // namespace

Certificate CertifyTop(std::span<const float> lower, std::span<const float> upper, int top) {
  assert(lower.size() == upper.size() && top >= 0 && static_cast<size_t>(top) < lower.size());
  Certificate cert;
  cert.top = top;
  float best_other = -kInf;
  for (size_t j = 0; j < upper.size(); ++j) {
    if (static_cast<int>(j) != top) best_other = std::max(best_other, upper[j]);
  }
  const float top_lower = lower[static_cast<size_t>(top)];
  cert.certified = top_lower > best_other;
  cert.margin = top_lower - best_other;
  if (std::isnan(cert.margin)) cert.margin = -kInf;  // inf - inf: nothing is known
  return cert;
}

absl::StatusOr<std::shared_ptr<const IntervalModel>> IntervalModel::Create(
    std::shared_ptr<const Model> model) {
  if (model == nullptr) return absl::InvalidArgumentError("IntervalModel::Create: no model");
  std::shared_ptr<IntervalModel> m(new IntervalModel());
  const auto& ops = model->ops_;
  m->num_ops_ = ops.size();
  if (!ops.empty() && ops.back()->kind == Model::Op::Kind::kSoftmax) --m->num_ops_;
  m->abs_weight_.resize(m->num_ops_);
  m->gamma_.assign(m->num_ops_, 0.0f);
  for (size_t i = 0; i < m->num_ops_; ++i) {
    const Model::Op& op = *ops[i];
    switch (op.kind) {
      case Model::Op::Kind::kSoftmax:
        return absl::UnimplementedError(absl::StrCat(
            "layer '", op.layers.front(),
            "': interval bounds pass a softmax only as the last layer (certification is on "
            "the logits); this one is followed by more layers"));
      case Model::Op::Kind::kConv:
      case Model::Op::Kind::kDense: {
        std::vector<float>& a = m->abs_weight_[i];
        a.resize(op.weight.size());
        std::transform(op.weight.begin(), op.weight.end(), a.begin(),
                       [](float w) { return std::fabs(w); });
        const size_t fan_in = op.kind == Model::Op::Kind::kConv
                                  ? size_t{op.conv.in_c} * op.conv.kernel_h * op.conv.kernel_w
                                  : op.in.size();
        m->gamma_[i] = Gamma(fan_in);
        break;
      }
      default: break;
    }
  }
  m->max_activation_ = model->max_activation_;
  m->max_conv_scratch_ = model->max_conv_scratch_;
  m->max_blur_scratch_ = model->max_blur_scratch_;
  m->model_ = std::move(model);
  return std::shared_ptr<const IntervalModel>(std::move(m));
}

void IntervalModel::Propagate(const float* lower, const float* upper, float* out_lower,
                              float* out_upper, IntervalWorkspace& ws) const {
  float* lo = ws.buf_[0].data();
  float* hi = ws.buf_[1].data();
  float* t0 = ws.buf_[2].data();
  float* t1 = ws.buf_[3].data();
  const size_t n_in = model_->input_size();
  std::memcpy(lo, lower, sizeof(float) * n_in);
  std::memcpy(hi, upper, sizeof(float) * n_in);
  using Kind = Model::Op::Kind;
  for (size_t i = 0; i < num_ops_; ++i) {
    const Model::Op& op = *model_->ops_[i];
    const size_t n = op.in.size();
    const size_t hw = size_t{op.in.h} * op.in.w;
    switch (op.kind) {
      case Kind::kRelu:
        Relu(n, lo);
        Relu(n, hi);
        break;
      case Kind::kAffine:
        // A negative scale maps the upper bound to the lower one.
        for (uint32_t ch = 0; ch < op.in.c; ++ch) {
          if (op.scale[ch] < 0) std::swap_ranges(lo + ch * hw, lo + (ch + 1) * hw, hi + ch * hw);
        }
        ChannelAffine(op.in.c, static_cast<uint32_t>(hw), 1, op.scale.data(), op.shift.data(), lo);
        ChannelAffine(op.in.c, static_cast<uint32_t>(hw), 1, op.scale.data(), op.shift.data(), hi);
        break;
      case Kind::kMaxPool:
      case Kind::kAvgPool: {
        // Anti-aliased pooling is the same pool at stride 1 followed by a
        // binomial blur (non-negative taps, fixed summation order): monotone
        // in every input, float rounding included, like the plain pools.
        const PoolKind pk = op.kind == Kind::kMaxPool ? PoolKind::kMax : PoolKind::kAvg;
        if (op.pool.blurred()) {
          BlurPool2d(pk, op.pool, 1, lo, t0, ws.blur_scratch_.data());
          BlurPool2d(pk, op.pool, 1, hi, t1, ws.blur_scratch_.data());
        } else if (pk == PoolKind::kMax) {
          MaxPool2d(op.pool, 1, lo, t0);
          MaxPool2d(op.pool, 1, hi, t1);
        } else {
          AvgPool2d(op.pool, 1, lo, t0);
          AvgPool2d(op.pool, 1, hi, t1);
        }
        std::swap(lo, t0);
        std::swap(hi, t1);
        break;
      }
      case Kind::kGlobalAvg:
        GlobalAvgPool(op.in.c, static_cast<uint32_t>(hw), 1, lo, t0);
        GlobalAvgPool(op.in.c, static_cast<uint32_t>(hw), 1, hi, t1);
        std::swap(lo, t0);
        std::swap(hi, t1);
        break;
      case Kind::kGlobalMax:
        GlobalMaxPool(op.in.c, static_cast<uint32_t>(hw), 1, lo, t0);
        GlobalMaxPool(op.in.c, static_cast<uint32_t>(hw), 1, hi, t1);
        std::swap(lo, t0);
        std::swap(hi, t1);
        break;
      case Kind::kConv:
      case Kind::kDense: {
        const float g = gamma_[i];
        CentreAndRadius(n, g, lo, hi, t0, t1);
        const float* bias = op.bias.empty() ? nullptr : op.bias.data();
        const float* abs_w = abs_weight_[i].data();
        if (op.kind == Kind::kConv) {
          Conv2dGemm(op.conv, 1, t0, op.weight.data(), bias, lo, ws.scratch_.data());
          Conv2dGemm(op.conv, 1, t1, abs_w, nullptr, hi, ws.scratch_.data());
          FinishLinear(op.out.size(), size_t{op.out.h} * op.out.w, g, op.bias, lo, hi);
          if (op.relu) {  // a ReLU fused into the conv (monotone, as the unfused one)
            Relu(op.out.size(), lo);
            Relu(op.out.size(), hi);
          }
        } else {
          const auto in_f = static_cast<uint32_t>(n);
          Dense(in_f, op.out.c, 1, t0, op.weight.data(), bias, lo);
          Dense(in_f, op.out.c, 1, t1, abs_w, nullptr, hi);
          FinishLinear(op.out.size(), 1, g, op.bias, lo, hi);
        }
        break;
      }
      case Kind::kSoftmax: break;  // excluded by Create (num_ops_)
    }
  }
  const size_t n_out = model_->output_size();
  std::memcpy(out_lower, lo, sizeof(float) * n_out);
  std::memcpy(out_upper, hi, sizeof(float) * n_out);
}

IntervalWorkspace::IntervalWorkspace(const IntervalModel& model)
    : scratch_(model.max_conv_scratch_), blur_scratch_(model.max_blur_scratch_) {
  for (auto& b : buf_) b.assign(model.max_activation_, 0.0f);
}

}  // namespace wavepool::nn
