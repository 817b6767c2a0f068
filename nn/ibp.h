// Interval bound propagation (IBP; Gowal et al. 2018, "On the effectiveness of
// interval bound propagation for training verifiably robust models"): given a
// box [lower, upper] around one window's network input, bounds on every logit
// that hold for every input in the box. A top class whose lower bound beats
// every other class's upper bound cannot change inside the box: certified.
//
// Soundness is stated against the float forward pass Model::Run actually
// computes (GEMM or reference convolutions), not only real arithmetic:
//  - conv / dense (batch-norm folded in) use centre/radius form, centre
//    c = (l + u) / 2 through W and b, radius r through |W|, widened by the
//    dot-product rounding bound gamma_n |W| (|c| + r) (Higham 2002, §3.1;
//    n = fan-in, any summation order) for both the centre's and the
//    forward pass's rounding, and one ulp outward on the results;
//  - ReLU, max / average / global pooling (anti-aliased ones too: a stride-1
//    pool then a blur with non-negative taps) and unfolded batch-norm (a per-channel
//    affine map, lower and upper swapped where the scale is negative) are
//    monotone, and float rounding is monotone, so the same kernels applied to
//    the lower and the upper bound enclose the forward pass exactly;
//  - dropout and flatten compile to nothing; a final softmax is skipped
//    (bounds and certification are on the logits, whose argmax it keeps).
// Overflow to inf in a bound keeps it sound (an unbounded side); a NaN input
// bound is the caller's error (Propagate trusts its input like Model::Run).
#pragma once

#include <cstddef>
#include <memory>
#include <span>
#include <vector>

#include "absl/status/statusor.h"
#include "nn/model.h"

namespace wavepool::nn {

class IntervalWorkspace;

// Whether the nominal top class is certified, from logit bounds.
struct Certificate {
  int top = 0;             // the class certified (or not): the caller's nominal argmax
  bool certified = false;  // margin > 0
  // lower[top] - max over other classes of upper[other]; -inf-like when a
  // bound is infinite; with one class, +inf (nothing can beat it).
  float margin = 0;
};

// margin and certified for class `top` (0 <= top < lower.size() == upper.size()).
Certificate CertifyTop(std::span<const float> lower, std::span<const float> upper, int top);

class IntervalModel {
 public:
  // Precomputes |W| for every conv / dense op (once per model, not per window).
  // UNIMPLEMENTED for a softmax that is not the last layer (no monotone bound
  // is used for it).
  static absl::StatusOr<std::shared_ptr<const IntervalModel>> Create(
      std::shared_ptr<const Model> model);

  const Model& model() const { return *model_; }
  size_t input_size() const { return model_->input_size(); }
  size_t output_size() const { return model_->output_size(); }

  // One window: lower/upper hold input_size() values with lower <= upper;
  // out_lower/out_upper receive output_size() logit bounds (before any final
  // softmax). No allocation; const and thread-safe given one workspace per thread.
  void Propagate(const float* lower, const float* upper, float* out_lower, float* out_upper,
                 IntervalWorkspace& ws) const;

 private:
  IntervalModel() = default;
  std::shared_ptr<const Model> model_;
  size_t num_ops_ = 0;  // ops bounded: all, or all but a final softmax
  // |W| per op index (empty for ops without weights).
  std::vector<std::vector<float>> abs_weight_;
  // Per op: gamma_n for its fan-in (0 for ops without weights).
  std::vector<float> gamma_;
  size_t max_activation_ = 0, max_conv_scratch_ = 0;  // the model's, for workspaces
  size_t max_blur_scratch_ = 0;  // the model's largest blurred-pool scratch
  friend class IntervalWorkspace;
};

// Buffers for one window's bounds: four of the model's largest activation and
// one im2col matrix. Use only with the IntervalModel it was made for.
class IntervalWorkspace {
 public:
  explicit IntervalWorkspace(const IntervalModel& model);

 private:
  friend class IntervalModel;
  std::vector<float> buf_[4];
  std::vector<float> scratch_;
  std::vector<float> blur_scratch_;  // anti-aliased pools, one plane (BlurPoolScratch)
};

}  // namespace wavepool::nn
