// The oneDNN path for 2-D (and 1-D: H = 1) convolution: oneDNN's direct
// convolution JIT kernels (Debian's libdnnl 2.6 generates them at run time for
// the CPU it runs on — SSE4.1, AVX2 or AVX-512 — so the portable binary uses
// the widest units present) on the channel-blocked layout the kernel picks
// itself, with the input reordered in from NCHW and the output back to NCHW.
// Everything shape-specific — the primitives, the weights in the kernel's
// layout — is made once by Create; per-thread buffers once by NewThread; Run
// allocates nothing of ours and creates no primitive. nn::Conv2d (kernels.h)
// stays the reference the tests compare this against; nn::Conv2dGemm the
// fallback when oneDNN has no JIT kernel for a shape or fails.
//
// Threads: oneDNN here runs on OpenMP (Debian's build). Create and Run set the
// calling thread's OpenMP thread count to 1 (omp_set_num_threads, once per
// thread): our own workers are the parallelism, and a oneDNN call must not fan
// out over the cores they already use.
#pragma once

#include <cstddef>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "nn/kernels.h"

namespace wavepool::nn {

class DnnlConv {
 public:
  struct Thread;  // one thread's stream, memory objects and buffers (opaque)
  struct ThreadDeleter {
    void operator()(Thread* t) const;
  };
  using ThreadPtr = std::unique_ptr<Thread, ThreadDeleter>;

  // Compiles p with weight [out_c, in_c, kernel_h, kernel_w] and bias (out_c
  // values, or null), both copied into oneDNN's layout; `relu` fuses a ReLU
  // into the output. Primitives for 1 window and, where it pays, for
  // chunk() windows per call (see conv_dnnl.cc for the rule). Errors (oneDNN
  // rejects the shape, out of memory) as a status; the caller falls back.
  static absl::StatusOr<std::unique_ptr<const DnnlConv>> Create(const Conv2dParams& p,
                                                                const float* weight,
                                                                const float* bias, bool relu = false);
  ~DnnlConv();
  DnnlConv(const DnnlConv&) = delete;
  DnnlConv& operator=(const DnnlConv&) = delete;

  // oneDNN's name for the kernel it picked for one window, e.g.
  // "brgconv:avx512_core" or "jit:avx2".
  const std::string& impl() const { return impl_; }
  // True unless that is one of oneDNN's plain-C++ reference kernels ("ref:").
  bool jit() const;
  // Windows per call of the batched primitive (1: one window per call).
  int chunk() const { return chunk_; }

  // One thread's state for Run: a oneDNN stream, the blocked-layout buffers
  // and the kernels' scratchpads. Use one per thread at a time.
  absl::StatusOr<ThreadPtr> NewThread() const;

  // Same contract as nn::Conv2d (NCHW in and out, `batch` windows, bias and
  // ReLU as given to Create), for any batch >= 1. Returns false if oneDNN
  // reported an error (then `out` is undefined and the caller computes it
  // another way); thread-safe given a distinct Thread per thread.
  bool Run(int batch, const float* in, float* out, Thread& t) const;

  struct Plan;  // one batch size's primitives (internal)

 private:
  DnnlConv();
  std::string impl_;
  int chunk_ = 1;
  size_t in_window_ = 0, out_window_ = 0;  // floats per window
  std::unique_ptr<Plan> one_, many_;  // many_: chunk_ windows; null when chunk_ == 1
};

}  // namespace wavepool::nn
