// Backward passes (and the training-mode forwards they need) for every layer in
// kernels.h. Same layout and parameter structs as the forward kernels. The
// caller owns every buffer; nothing allocates.
//
// Conventions:
//  - din (the gradient w.r.t. the layer input) is OVERWRITTEN; it may be null
//    when the caller does not need it (the first layer).
//  - dweight / dbias / dgamma / dbeta are ACCUMULATED (+=): the caller zeroes
//    them, which lets the trainer split a batch across threads, each adding into
//    its own buffer, and sum the buffers in a fixed order (deterministic).
//    Each call sums its gradient over the whole batch first and adds it once
//    (dweight += G, G independent of dweight's contents), so two calls on a
//    zeroed buffer give exactly 2 G. Any of them may be null when not wanted
//    (e.g. dbias for a layer without bias).
//  - Deterministic: reductions run in a fixed order on the calling thread, so
//    the same inputs give bit-identical outputs.
#pragma once

#include <cstddef>
#include <cstdint>

#include "nn/kernels.h"

namespace wavepool::nn {

// weight [out_c, in_c, kernel_h, kernel_w]; dout [batch, out_c, out_h, out_w].
void Conv2dBackward(const Conv2dParams& p, int batch, const float* in, const float* weight,
                    const float* dout, float* din, float* dweight, float* dbias);

// The gradient goes to the arg-max only, chosen by the forward's rule (the first
// maximum in scan order wins: frequency outer, time inner; padding never wins).
// Overlapping windows add.
void MaxPool2dBackward(const Pool2dParams& p, int batch, const float* in, const float* dout,
                       float* din);
// The gradient is divided over the window exactly as the forward divides
// (kernel area with count_include_pad, else the number of real cells).
void AvgPool2dBackward(const Pool2dParams& p, int batch, const float* dout, float* din);

// Anti-aliased pooling (BlurPool2d): the blur's transpose (each output's
// gradient spread over the taps it read, reflected reads adding into the cell
// they mirror), then the stride-1 pool's backward above. `in` is the layer
// input (max pooling needs it; average pooling does not read it). scratch:
// BlurPoolScratch(p) floats, overwritten.
void BlurPool2dBackward(PoolKind kind, const Pool2dParams& p, int batch, const float* in,
                        const float* dout, float* din, float* scratch);

void GlobalAvgPoolBackward(uint32_t c, uint32_t hw, int batch, const float* dout, float* din);
// The first maximum of each channel takes the gradient.
void GlobalMaxPoolBackward(uint32_t c, uint32_t hw, int batch, const float* in,
                           const float* dout, float* din);

void DenseBackward(uint32_t in_f, uint32_t out_f, int batch, const float* in,
                   const float* weight, const float* dout, float* din, float* dweight,
                   float* dbias);

// din = dout where x > 0, else 0 (x is the ReLU's input or output: same sign test).
void ReluBackward(size_t n, const float* x, const float* dout, float* din);

// Batch-norm in training mode over (batch, h, w) per channel:
// y = gamma (x - mean) / sqrt(var + eps) + beta with the biased batch variance.
// Writes mean[c] and inv_std[c] (1 / sqrt(var + eps)) for the backward, and
// var[c] (biased) so the caller can update running statistics (PyTorch uses
// the unbiased variance for running_var: var * m / (m - 1), m = batch * hw).
void BatchNormTrainForward(uint32_t c, uint32_t hw, int batch, float eps, const float* in,
                           const float* gamma, const float* beta, float* out, float* mean,
                           float* inv_std, float* var);
void BatchNormBackward(uint32_t c, uint32_t hw, int batch, const float* in, const float* gamma,
                       const float* mean, const float* inv_std, const float* dout, float* din,
                       float* dgamma, float* dbeta);

// Inverted dropout: out = in * mask / (1 - rate), mask[i] in {0, 1} drawn by the
// caller (so the trainer owns the random stream). Backward is the same product.
void DropoutApply(size_t n, float rate, const uint8_t* mask, const float* in, float* out);

// Mean softmax cross-entropy over the batch with optional label smoothing
// (target = (1 - s) one-hot + s / classes) and optional per-class weights
// (class_weight may be null; a sample's loss is scaled by the weight of its
// label, and the mean divides by the sum of those weights). Writes
// dlogits = d(loss)/d(logits) and returns the loss. labels[b] must be in
// [0, classes). When the batch is empty or its weights sum to 0 the loss is 0
// and dlogits is all 0 (nothing to learn, rather than 0 / 0).
double SoftmaxCrossEntropy(uint32_t classes, int batch, const float* logits, const int* labels,
                           float label_smoothing, const float* class_weight, float* dlogits);

}  // namespace wavepool::nn
