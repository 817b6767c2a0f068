// The oneDNN path for the convolution blocks: a run of convolutions (each with
// its ReLU fused in, when one follows) and max/average poolings, computed by
// oneDNN's JIT kernels (Debian's libdnnl 2.6 generates them at run time for the
// CPU it runs on — SSE4.1, AVX2 or AVX-512 — so the portable binary uses the
// widest units present) on the channel-blocked layout the convolution kernels
// pick themselves. Activations stay in that layout from layer to layer; only
// the segment's input is reordered in from NCHW and its output back to NCHW.
//
// Everything shape-specific — the primitives, the weights in the kernels'
// layout — is made once by Create; per-thread state once by NewThread; Run
// creates no primitive and allocates nothing of ours (oneDNN's execute keeps a
// few small heap blocks of bookkeeping per call: tests/nn_model_test.cc counts
// them). The primitives take one window per call. nn::Conv2d, nn::MaxPool2d
// and nn::AvgPool2d (kernels.h) stay the references the tests compare this
// against; nn::Conv2dGemm the path when oneDNN has no JIT kernel for a shape.
//
// Threads: oneDNN runs on OpenMP (libgomp) in Debian's build. Create and Run
// set the calling thread's OpenMP thread count to 1 (omp_set_num_threads of
// the runtime oneDNN loaded, once per thread): our own workers are the
// parallelism, and a oneDNN call must not fan out over the cores they already
// use. This also holds any other OpenMP code on those threads to one thread.
#pragma once

#include <cstddef>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "nn/kernels.h"

namespace wavepool::nn {

// One layer of a segment.
struct DnnlLayer {
  enum class Kind { kConv, kMaxPool, kAvgPool };
  Kind kind = Kind::kConv;
  Conv2dParams conv;               // kConv
  const float* weight = nullptr;   // kConv: [out_c, in_c, kernel_h, kernel_w], copied by Create
  const float* bias = nullptr;     // kConv: out_c values, or null
  bool relu = false;               // kConv: ReLU applied to the output
  Pool2dParams pool;               // kMaxPool, kAvgPool
};

class DnnlSegment {
 public:
  struct Thread;  // one thread's stream, memory objects and buffers (opaque)
  struct ThreadDeleter {
    void operator()(Thread* t) const;
  };
  using ThreadPtr = std::unique_ptr<Thread, ThreadDeleter>;

  // Compiles the layers, each one's input the output of the one before (the
  // shapes must chain; a model's validated spec guarantees it). Errors
  // (oneDNN rejects a shape, out of memory) as a status; the caller then runs
  // the layers another way.
  static absl::StatusOr<std::unique_ptr<const DnnlSegment>> Create(std::span<const DnnlLayer> layers);
  ~DnnlSegment();
  DnnlSegment(const DnnlSegment&) = delete;
  DnnlSegment& operator=(const DnnlSegment&) = delete;

  size_t size() const { return layers_.size(); }
  // oneDNN's name for layer i's kernel, e.g. "brgconv:avx512_core", "jit:avx2".
  const std::string& impl(size_t i) const;
  // True unless some layer got one of oneDNN's plain-C++ reference kernels.
  bool jit() const;
  // Floats per window of layer i's output as Run writes it: the blocked
  // layout (channels padded to the block) between layers, NCHW after the last.
  size_t out_floats(size_t i) const;

  // One thread's state for Run. Use one per thread at a time.
  absl::StatusOr<ThreadPtr> NewThread() const;

  // Layer i on `batch` windows, one after the other (window b at b x the
  // layout's floats per window): layer 0 reads NCHW, layer i > 0 what layer
  // i - 1 wrote; `in` and `out` must not overlap. Returns false if oneDNN
  // reported an error (then `out` is undefined). Thread-safe given a
  // distinct Thread per thread.
  bool Run(size_t i, int batch, const float* in, float* out, Thread& t) const;

  // All layers on `batch` windows, window by window: the activations between
  // layers go through two one-window buffers of t's, which stay in the core's
  // cache, instead of batch-sized ones. `in` NCHW, `out` NCHW
  // (out_floats(size() - 1) per window). Same results as Run layer by layer.
  bool RunWindows(int batch, const float* in, float* out, Thread& t) const;
  // One step of RunWindows: layer i on window b alone (the first layer reads
  // `in`'s window b, the last writes `out`'s; the others go through t's
  // one-window buffers). For Model::Profile, to time each layer in the order
  // Run computes them.
  bool RunWindowLayer(size_t i, int b, const float* in, float* out, Thread& t) const;

  struct Layer;  // one layer's primitives (internal)

 private:
  DnnlSegment();
  std::vector<std::unique_ptr<Layer>> layers_;
  size_t in_floats_ = 0;      // per window, NCHW
  size_t window_floats_ = 0;  // largest output of a layer before the last
};

}  // namespace wavepool::nn
