// The layer kernels on a batch (NCHW, H = frequency, W = time). Pure functions:
// the caller owns every buffer, kernels never allocate, never validate (the
// model loader checked the shapes; see spec.h). 1-D layers are these with
// H == 1 and kernel/stride/pad/dilation 1 / 1 / 0 / 1 on H.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>

namespace wavepool::nn {

// Output size of a convolution along one axis:
// floor((in + 2 pad - dilation (kernel - 1) - 1) / stride) + 1 (0 if negative).
uint32_t ConvOutSize(uint32_t in, uint32_t kernel, uint32_t stride, uint32_t pad, uint32_t dilation);
// Output size of a pooling along one axis: floor((in + 2 pad - kernel) / stride) + 1.
uint32_t PoolOutSize(uint32_t in, uint32_t kernel, uint32_t stride, uint32_t pad);

struct Conv2dParams {
  uint32_t in_c = 1, in_h = 1, in_w = 1;
  uint32_t out_c = 1;
  uint32_t kernel_h = 1, kernel_w = 1;
  uint32_t stride_h = 1, stride_w = 1;
  uint32_t pad_h = 0, pad_w = 0;
  uint32_t dilation_h = 1, dilation_w = 1;
  uint32_t out_h() const { return ConvOutSize(in_h, kernel_h, stride_h, pad_h, dilation_h); }
  uint32_t out_w() const { return ConvOutSize(in_w, kernel_w, stride_w, pad_w, dilation_w); }
};

// weight: [out_c, in_c, kernel_h, kernel_w]; bias: out_c values or empty.
void Conv2d(const Conv2dParams& p, int batch, const float* in, const float* weight,
            const float* bias, float* out);

struct Pool2dParams {
  uint32_t c = 1, in_h = 1, in_w = 1;
  uint32_t kernel_h = 1, kernel_w = 1;
  uint32_t stride_h = 1, stride_w = 1;
  uint32_t pad_h = 0, pad_w = 0;  // < kernel on each axis
  bool count_include_pad = false;
  // Anti-aliasing blur (BlurPool2d below): binomial taps on each axis, 1 = none,
  // at most kMaxBlurTaps. MaxPool2d / AvgPool2d ignore these.
  uint32_t blur_h = 1, blur_w = 1;
  uint32_t out_h() const { return PoolOutSize(in_h, kernel_h, stride_h, pad_h); }
  uint32_t out_w() const { return PoolOutSize(in_w, kernel_w, stride_w, pad_w); }
  bool blurred() const { return blur_h > 1 || blur_w > 1; }
};

// Padded cells never win a max. Ties: the window is scanned row-major
// (frequency outer, time inner) with a strict `>`, so the first maximum wins
// (training's backward pass routes the gradient to that cell).
void MaxPool2d(const Pool2dParams& p, int batch, const float* in, float* out);
// The plain scan, kept as the reference the fast path (no padding) is tested against.
void MaxPool2dReference(const Pool2dParams& p, int batch, const float* in, float* out);
// Divides by kernel_h * kernel_w when count_include_pad, else by the number of
// real cells in the window.
void AvgPool2d(const Pool2dParams& p, int batch, const float* in, float* out);

enum class PoolKind { kMax, kAvg };

// Anti-aliased pooling (Zhang 2019, "Making Convolutional Networks
// Shift-Invariant Again", MaxBlurPool): the pool with stride 1 on every blurred
// axis (same kernel, padding and count_include_pad), then on each blurred axis a
// normalised binomial filter of blur_h / blur_w taps, applied at every
// stride-th position: out[o] = sum_k f[k] stage[reflect(o stride - (taps-1)/2 + k)].
// Reflection as numpy's "reflect" (the edge is not repeated), folded again when
// the pad exceeds the axis; a 1-long axis repeats its one value. The output
// size is out_h() x out_w(), the unblurred pool's. Axes with blur 1 pool with
// their own stride directly. Separable: the time axis first, then frequency.
constexpr uint32_t kMaxBlurTaps = 7;
// The filter: C(taps-1, k) / 2^(taps-1), k = 0..taps-1; taps in [1, kMaxBlurTaps].
void BinomialTaps(uint32_t taps, float* out);
// The stride-1 pool BlurPool2d runs first (blur fields cleared, c = 1: one plane).
Pool2dParams BlurStage(const Pool2dParams& p);
// Floats of scratch BlurPool2d and BlurPool2dBackward need: one plane's stage
// output and one plane after the time pass.
size_t BlurPoolScratch(const Pool2dParams& p);
// scratch: BlurPoolScratch(p) floats, overwritten.
void BlurPool2d(PoolKind kind, const Pool2dParams& p, int batch, const float* in, float* out,
                float* scratch);

// [batch, c, h, w] -> [batch, c, 1, 1]
void GlobalAvgPool(uint32_t c, uint32_t hw, int batch, const float* in, float* out);
void GlobalMaxPool(uint32_t c, uint32_t hw, int batch, const float* in, float* out);

// out[b, o] = sum_i weight[o, i] in[b, i] + bias[o]; weight [out_f, in_f].
void Dense(uint32_t in_f, uint32_t out_f, int batch, const float* in, const float* weight,
           const float* bias, float* out);

// In place, n values.
void Relu(size_t n, float* x);

// Per-channel y = x * scale[c] + shift[c] (batch-norm at inference), in place.
void ChannelAffine(uint32_t c, uint32_t hw, int batch, const float* scale, const float* shift,
                   float* x);

// Softmax over n values, numerically stable (max subtracted), in place.
void Softmax(size_t n, float* x);

}  // namespace wavepool::nn
