// A loaded, validated, ready-to-run model: load -> prepare (validate, fold
// batch-norm, size buffers) -> run (trusts what prepare checked).
#pragma once

#include <memory>
#include <span>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "nn/conv_dnnl.h"
#include "nn/safetensors.h"
#include "nn/shape.h"
#include "nn/spec.h"

namespace wavepool::nn {

class Workspace;
class IntervalModel;

// One compiled op's cost, from Model::Profile.
struct LayerTime {
  // The spec layers this op computes, in spec order: a conv or dense with the
  // batch-norm folded into it, and the dropout / flatten layers after it
  // (they compile to nothing; ones before the first op go with that op).
  // Every spec layer is in exactly one entry.
  std::vector<std::string> layers;
  // The spec's name for the op: "conv2d", "max_pool1d", "batch_norm" (not folded), ...
  std::string op;
  Shape output;        // per window
  double mflops = 0;   // per window, counted as `describe` counts them (a multiply-add is 2)
  double seconds = 0;  // mean wall time of one call of the op on the whole batch
  // The kernel that ran, for the ops that have a choice: a convolution's
  // "im2col+sgemm" or "reference", or for an op run in a oneDNN segment
  // (convolutions and the poolings between them) "onednn <oneDNN's kernel
  // name>", e.g. "onednn brgconv:avx512_core"; else empty.
  std::string kernel;
};

// Which kernels a Workspace runs the convolutions with. kChosen: what the
// model picked when it was created — each run of convolutions and poolings
// starting at a convolution as one oneDNN segment (nn/conv_dnnl.h) where
// oneDNN has JIT kernels for all its shapes on this CPU, else im2col +
// OpenBLAS and our pooling kernels; kGemm: im2col + OpenBLAS everywhere;
// kReference: the simple direct loop (nn::Conv2d). The last two are for tests
// and comparisons.
enum class ConvPath { kChosen, kGemm, kReference };

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
  // floats, output batch * output_size(). No allocation of ours (oneDNN's
  // calls keep a few bytes of bookkeeping on the heap: nn/conv_dnnl.h); const
  // and thread-safe given one Workspace per thread. If a oneDNN call fails
  // (not expected once the model and workspace exist) every output is NaN.
  void Run(const float* input, int batch, float* output, Workspace& ws) const;

  // For benchmarks: Run's ops on the same data, one untimed pass then
  // `repeats` timed ones (below 1 taken as 1), a steady-clock read around
  // every op (in a oneDNN segment at batch > 1, around each layer of each
  // window, the order Run computes them in); one entry per op, in order. Run itself reads no clock. When
  // `output` is given it receives what Run would write there. Same
  // thread-safety as Run; batch 0 lists the ops with 0 seconds.
  std::vector<LayerTime> Profile(const float* input, int batch, Workspace& ws, int repeats,
                                 float* output = nullptr) const;

  struct Op;  // one compiled layer (internal)

 private:
  Model();
  // One op of Run: reads the current activation (the caller's `input` while
  // *cur < 0, else ws's buffer *cur) and leaves its result in ws's buffer *cur.
  void RunOp(const Op& op, const float* input, int batch, Workspace& ws, int* cur) const;
  // The oneDNN segment starting at `first`, window by window (Run, batch > 1);
  // returns the number of ops it computed.
  size_t RunSegment(const Op& first, const float* input, int batch, Workspace& ws, int* cur) const;
  const float* Current(const float* input, const Workspace& ws, int cur) const;
  // Create's last step: the oneDNN segments, where the rule in model.cc picks them.
  void ChooseSegments();
  // The op's oneDNN segment state in ws, or null when ws runs it another way.
  DnnlSegment::Thread* DnnlState(const Op& op, Workspace& ws) const;
  std::string Kernel(const Op& op, Workspace& ws) const;
  // Run's last step: the final activation to `output`, or NaN in every value
  // if a oneDNN call failed during the Run.
  void CopyOutput(const float* input, int batch, Workspace& ws, int cur, float* output) const;
  ModelSpec spec_;
  Shape input_shape_;
  size_t output_size_ = 0;
  bool outputs_probabilities_ = false;
  std::vector<std::unique_ptr<Op>> ops_;
  size_t max_activation_ = 0;  // largest per-window activation among ops
  size_t max_conv_scratch_ = 0;  // largest im2col matrix among conv ops
  size_t max_blur_scratch_ = 0;  // largest BlurPoolScratch among blurred pools
  std::vector<std::shared_ptr<const DnnlSegment>> segments_;  // Op::segment indexes these
  friend class Workspace;
  friend class IntervalModel;  // nn/ibp.h bounds the compiled ops
};

// Preallocated activation buffers for one model and a maximum batch: two
// ping-pong buffers of max_batch x the model's largest activation (NCHW, or
// oneDNN's blocked layout inside a segment), one window's im2col matrix for
// the convolutions, one plane's scratch for blurred pooling (which runs plane
// by plane), and each oneDNN segment's per-thread state (one window's reorder
// buffers, scratchpads). Use it
// only with the model it was made for; a max_batch below 1 is taken as 1.
class Workspace {
 public:
  // reference = true runs the convolutions with the simple reference kernel
  // (nn::Conv2d): for tests and comparisons.
  Workspace(const Model& model, int max_batch, bool reference = false)
      : Workspace(model, max_batch, reference ? ConvPath::kReference : ConvPath::kChosen) {}
  // A segment whose oneDNN state cannot be made (out of memory) runs on
  // im2col + GEMM and our pooling kernels.
  Workspace(const Model& model, int max_batch, ConvPath path);
  ~Workspace();
  int max_batch() const { return max_batch_; }

 private:
  friend class Model;
  int max_batch_;
  ConvPath path_ = ConvPath::kChosen;
  std::vector<float> a_, b_;
  std::vector<float> scratch_;  // im2col, one window
  std::vector<float> blur_scratch_;  // blurred pooling, one plane (BlurPoolScratch)
  std::vector<DnnlSegment::ThreadPtr> dnnl_;  // by Op::segment; null: run it another way
  bool dnnl_failed_ = false;  // a oneDNN call failed in this Run: outputs NaN
};

}  // namespace wavepool::nn
