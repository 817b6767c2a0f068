#include "nn/conv_dnnl.h"

#include <omp.h>

#include <array>
#include <cstring>
#include <dnnl.hpp>
#include <new>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

namespace wavepool::nn {
namespace {

using dnnl::memory;
using Tag = memory::format_tag;
using Dt = memory::data_type;

// A batched primitive pays where one window's input and output are small
// enough that the fixed cost of a call (reorders, oneDNN's dispatch: about
// 1 µs) is a large part of it: the ECG layers (15-25 KB per window) ran
// 1.2-1.35x faster per window in calls of 8 than of 1. The digit layers
// (100-700 KB per window) ran 0.9-1.0x as fast batched (bench/bench_conv),
// so a layer batches only when kMaxChunk windows fit in kChunkBytes.
constexpr int kMaxChunk = 8;
constexpr size_t kChunkBytes = size_t{512} << 10;

// Our workers are the threads: a oneDNN call runs on the calling thread only.
// omp_set_num_threads sets this thread's own OpenMP ICV (no lock, no effect on
// other threads); once per thread suffices.
void UseOneOmpThread() {
  thread_local bool done = false;
  if (!done) {
    omp_set_num_threads(1);
    done = true;
  }
}

const dnnl::engine& Engine() {
  static const dnnl::engine engine(dnnl::engine::kind::cpu, 0);
  return engine;
}

absl::Status FromDnnl(const dnnl::error& e) {
  const std::string msg = absl::StrCat("oneDNN: ", e.what());
  switch (e.status) {
    case dnnl_unimplemented: return absl::UnimplementedError(msg);
    case dnnl_out_of_memory: return absl::ResourceExhaustedError(msg);
    case dnnl_invalid_arguments: return absl::InvalidArgumentError(msg);
    default: return absl::InternalError(msg);
  }
}

// Right padding that makes oneDNN's output size equal ConvOutSize's floor:
// (out - 1) * stride + dilated kernel - in - left pad (may be negative).
memory::dim PadRight(uint32_t in, uint32_t out, uint32_t kernel, uint32_t stride, uint32_t pad,
                     uint32_t dilation) {
  const int64_t span = int64_t{dilation} * (kernel - 1) + 1;
  return (int64_t{out} - 1) * stride + span - in - pad;
}

// One thread's memory objects for one Plan, and the argument lists of its
// primitives (the C API takes a plain array: no map built per call).
struct PlanThread {
  memory user_src, user_dst, src, dst;
  memory conv_pad, in_pad, out_pad;  // scratchpads (empty when a primitive needs none)
  std::array<dnnl_exec_arg_t, 5> conv_args{};
  std::array<dnnl_exec_arg_t, 3> in_args{}, out_args{};
  int n_conv = 0, n_in = 0, n_out = 0;
};

}  // namespace

struct DnnlConv::Plan {
  int mb = 1;
  memory::desc user_src, user_dst, src, dst;
  memory::desc conv_scratch, in_scratch, out_scratch;
  bool reorder_in = false, reorder_out = false;
  dnnl::convolution_forward conv;
  dnnl::reorder to_kernel, from_kernel;
  memory weights, bias;  // in the kernel's layout; read-only after Create
  bool has_bias = false;
  std::string impl;
};

struct DnnlConv::Thread {
  dnnl::stream stream;
  PlanThread one, many;
};

void DnnlConv::ThreadDeleter::operator()(Thread* t) const { delete t; }

namespace {

// Throws dnnl::error (caught by the callers below).
std::unique_ptr<DnnlConv::Plan> MakePlan(const Conv2dParams& p, int mb, const float* weight,
                                         const float* bias, bool relu) {
  const dnnl::engine& eng = Engine();
  auto plan = std::make_unique<DnnlConv::Plan>();
  plan->mb = mb;
  const uint32_t oh = p.out_h(), ow = p.out_w();
  const memory::dims src_dims{mb, p.in_c, p.in_h, p.in_w};
  const memory::dims w_dims{p.out_c, p.in_c, p.kernel_h, p.kernel_w};
  const memory::dims b_dims{p.out_c};
  const memory::dims dst_dims{mb, p.out_c, oh, ow};
  const memory::dims strides{p.stride_h, p.stride_w};
  const memory::dims dilates{p.dilation_h - 1, p.dilation_w - 1};  // oneDNN counts the gaps
  const memory::dims pad_l{p.pad_h, p.pad_w};
  const memory::dims pad_r{PadRight(p.in_h, oh, p.kernel_h, p.stride_h, p.pad_h, p.dilation_h),
                           PadRight(p.in_w, ow, p.kernel_w, p.stride_w, p.pad_w, p.dilation_w)};
  // format_tag::any: the kernel picks its own (channel-blocked) layouts.
  const memory::desc src_any(src_dims, Dt::f32, Tag::any);
  const memory::desc w_any(w_dims, Dt::f32, Tag::any);
  const memory::desc dst_any(dst_dims, Dt::f32, Tag::any);
  const memory::desc b_md(b_dims, Dt::f32, Tag::x);
  plan->has_bias = bias != nullptr;
  const auto desc =
      plan->has_bias
          ? dnnl::convolution_forward::desc(dnnl::prop_kind::forward_inference,
                                            dnnl::algorithm::convolution_direct, src_any, w_any,
                                            b_md, dst_any, strides, dilates, pad_l, pad_r)
          : dnnl::convolution_forward::desc(dnnl::prop_kind::forward_inference,
                                            dnnl::algorithm::convolution_direct, src_any, w_any,
                                            dst_any, strides, dilates, pad_l, pad_r);
  dnnl::primitive_attr attr;
  attr.set_scratchpad_mode(dnnl::scratchpad_mode::user);  // per-thread, ours: see Thread
  if (relu) {
    dnnl::post_ops ops;
    ops.append_eltwise(1.0f, dnnl::algorithm::eltwise_relu, 0.0f, 0.0f);
    attr.set_post_ops(ops);
  }
  const dnnl::convolution_forward::primitive_desc pd(desc, attr, eng);
  plan->impl = pd.impl_info_str();
  plan->conv = dnnl::convolution_forward(pd);
  plan->conv_scratch = pd.scratchpad_desc();

  plan->user_src = memory::desc(src_dims, Dt::f32, Tag::nchw);
  plan->user_dst = memory::desc(dst_dims, Dt::f32, Tag::nchw);
  plan->src = pd.src_desc();
  plan->dst = pd.dst_desc();
  dnnl::primitive_attr reorder_attr;
  reorder_attr.set_scratchpad_mode(dnnl::scratchpad_mode::user);
  plan->reorder_in = plan->src != plan->user_src;
  if (plan->reorder_in) {
    const dnnl::reorder::primitive_desc rpd(eng, plan->user_src, eng, plan->src, reorder_attr);
    plan->to_kernel = dnnl::reorder(rpd);
    plan->in_scratch = rpd.scratchpad_desc();
  }
  plan->reorder_out = plan->dst != plan->user_dst;
  if (plan->reorder_out) {
    const dnnl::reorder::primitive_desc rpd(eng, plan->dst, eng, plan->user_dst, reorder_attr);
    plan->from_kernel = dnnl::reorder(rpd);
    plan->out_scratch = rpd.scratchpad_desc();
  }

  // The weights once, into the kernel's layout (oneDNN owns the copy).
  dnnl::stream stream(eng);
  memory user_w({w_dims, Dt::f32, Tag::oihw}, eng, const_cast<float*>(weight));
  plan->weights = memory(pd.weights_desc(), eng);
  dnnl::reorder(user_w, plan->weights).execute(stream, user_w, plan->weights);
  stream.wait();
  if (plan->has_bias) {
    plan->bias = memory(b_md, eng);
    std::memcpy(plan->bias.get_data_handle(), bias, sizeof(float) * p.out_c);
  }
  return plan;
}

// Memory with oneDNN's allocation, or an empty one for a zero-size scratchpad.
memory Scratch(const memory::desc& md) {
  return md.get_size() == 0 ? memory() : memory(md, Engine());
}

// Throws dnnl::error.
void Bind(const DnnlConv::Plan& plan, PlanThread& t) {
  const dnnl::engine& eng = Engine();
  // The NCHW ends point at the caller's buffers, set on every call.
  t.user_src = memory(plan.user_src, eng, DNNL_MEMORY_NONE);
  t.user_dst = memory(plan.user_dst, eng, DNNL_MEMORY_NONE);
  t.src = plan.reorder_in ? memory(plan.src, eng) : t.user_src;
  t.dst = plan.reorder_out ? memory(plan.dst, eng) : t.user_dst;
  t.conv_pad = Scratch(plan.conv_scratch);
  t.in_pad = Scratch(plan.in_scratch);
  t.out_pad = Scratch(plan.out_scratch);
  auto add = [](auto& args, int& n, int what, const memory& m) {
    if (m) args[static_cast<size_t>(n++)] = {what, m.get()};
  };
  add(t.conv_args, t.n_conv, DNNL_ARG_SRC, t.src);
  add(t.conv_args, t.n_conv, DNNL_ARG_WEIGHTS, plan.weights);
  if (plan.has_bias) add(t.conv_args, t.n_conv, DNNL_ARG_BIAS, plan.bias);
  add(t.conv_args, t.n_conv, DNNL_ARG_DST, t.dst);
  add(t.conv_args, t.n_conv, DNNL_ARG_SCRATCHPAD, t.conv_pad);
  if (plan.reorder_in) {
    add(t.in_args, t.n_in, DNNL_ARG_FROM, t.user_src);
    add(t.in_args, t.n_in, DNNL_ARG_TO, t.src);
    add(t.in_args, t.n_in, DNNL_ARG_SCRATCHPAD, t.in_pad);
  }
  if (plan.reorder_out) {
    add(t.out_args, t.n_out, DNNL_ARG_FROM, t.dst);
    add(t.out_args, t.n_out, DNNL_ARG_TO, t.user_dst);
    add(t.out_args, t.n_out, DNNL_ARG_SCRATCHPAD, t.out_pad);
  }
}

// One call of a Plan on plan.mb windows; the C API: status codes, no throw.
bool RunPlan(const DnnlConv::Plan& plan, PlanThread& t, dnnl_stream_t stream, const float* in,
             float* out) {
  if (dnnl_memory_set_data_handle(t.user_src.get(), const_cast<float*>(in)) != dnnl_success ||
      dnnl_memory_set_data_handle(t.user_dst.get(), out) != dnnl_success) {
    return false;
  }
  if (plan.reorder_in &&
      dnnl_primitive_execute(plan.to_kernel.get(), stream, t.n_in, t.in_args.data()) != dnnl_success) {
    return false;
  }
  if (dnnl_primitive_execute(plan.conv.get(), stream, t.n_conv, t.conv_args.data()) != dnnl_success) {
    return false;
  }
  if (plan.reorder_out &&
      dnnl_primitive_execute(plan.from_kernel.get(), stream, t.n_out, t.out_args.data()) !=
          dnnl_success) {
    return false;
  }
  return dnnl_stream_wait(stream) == dnnl_success;
}

}  // namespace

DnnlConv::DnnlConv() = default;
DnnlConv::~DnnlConv() = default;

bool DnnlConv::jit() const { return impl_.rfind("ref", 0) != 0; }

absl::StatusOr<std::unique_ptr<const DnnlConv>> DnnlConv::Create(const Conv2dParams& p,
                                                                 const float* weight,
                                                                 const float* bias, bool relu) {
  if (p.out_h() == 0 || p.out_w() == 0) {
    return absl::InvalidArgumentError("convolution with an empty output");
  }
  UseOneOmpThread();  // oneDNN sizes its blocking for the threads it will have
  std::unique_ptr<DnnlConv> c(new DnnlConv());
  c->in_window_ = size_t{p.in_c} * p.in_h * p.in_w;
  c->out_window_ = size_t{p.out_c} * p.out_h() * p.out_w();
  const size_t window_bytes = sizeof(float) * (c->in_window_ + c->out_window_);
  c->chunk_ = window_bytes * kMaxChunk <= kChunkBytes ? kMaxChunk : 1;
  try {
    c->one_ = MakePlan(p, 1, weight, bias, relu);
    if (c->chunk_ > 1) c->many_ = MakePlan(p, c->chunk_, weight, bias, relu);
  } catch (const dnnl::error& e) {
    return FromDnnl(e);
  } catch (const std::bad_alloc&) {
    return absl::ResourceExhaustedError("oneDNN convolution: out of memory");
  }
  c->impl_ = c->one_->impl;
  return std::unique_ptr<const DnnlConv>(std::move(c));
}

absl::StatusOr<DnnlConv::ThreadPtr> DnnlConv::NewThread() const {
  try {
    ThreadPtr t(new Thread{dnnl::stream(Engine()), {}, {}});
    Bind(*one_, t->one);
    if (many_ != nullptr) Bind(*many_, t->many);
    return t;
  } catch (const dnnl::error& e) {
    return FromDnnl(e);
  } catch (const std::bad_alloc&) {
    return absl::ResourceExhaustedError("oneDNN convolution: out of memory");
  }
}

bool DnnlConv::Run(int batch, const float* in, float* out, Thread& t) const {
  UseOneOmpThread();
  for (int b = 0; b < batch;) {
    const bool many = many_ != nullptr && batch - b >= chunk_;
    const Plan& plan = many ? *many_ : *one_;
    if (!RunPlan(plan, many ? t.many : t.one, t.stream.get(), in + static_cast<size_t>(b) * in_window_,
                 out + static_cast<size_t>(b) * out_window_)) {
      return false;
    }
    b += plan.mb;
  }
  return true;
}

}  // namespace wavepool::nn
