#include "nn/conv_dnnl.h"

#include <dlfcn.h>

#include <algorithm>
#include <array>
#include <cstring>
#include <dnnl.hpp>
#include <new>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "nn/call_arena.h"

namespace wavepool::nn {
namespace {

using dnnl::memory;
using Tag = memory::format_tag;
using Dt = memory::data_type;

// Our workers are the threads: a oneDNN call runs on the calling thread only.
// omp_set_num_threads sets this thread's own OpenMP ICV (no lock, no effect on
// other threads); once per thread suffices. It is looked up in the process,
// not linked: it must be the OpenMP runtime oneDNN itself loaded (libgomp for
// Debian's build), which a compiler's own -fopenmp need not be (clang links
// libomp). Without one (a oneDNN built on another runtime) there is nothing
// to set.
void UseOneOmpThread() {
  using SetNumThreads = void (*)(int);
  static const auto set_num_threads =
      reinterpret_cast<SetNumThreads>(dlsym(RTLD_DEFAULT, "omp_set_num_threads"));
  thread_local bool done = false;
  if (!done) {
    if (set_num_threads != nullptr) set_num_threads(1);
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

// Right padding that makes oneDNN's output size equal our floor division
// (ConvOutSize, PoolOutSize): (out - 1) * stride + dilated kernel - in - left
// pad. Negative when the floor leaves input cells unused; oneDNN accepts that.
memory::dim PadRight(uint32_t in, uint32_t out, uint32_t kernel, uint32_t stride, uint32_t pad,
                     uint32_t dilation) {
  const int64_t span = int64_t{dilation} * (kernel - 1) + 1;
  return (int64_t{out} - 1) * stride + span - in - pad;
}

memory::desc Nchw(uint32_t c, uint32_t h, uint32_t w) { return memory::desc({1, c, h, w}, Dt::f32, Tag::nchw); }

// Memory with oneDNN's allocation, or an empty one for a zero-size desc.
memory Allocate(const memory::desc& md) { return md.get_size() == 0 ? memory() : memory(md, Engine()); }

}  // namespace

// One layer, for one window per call. `in`/`out` are the layouts Run reads and
// writes (the previous layer's output; NCHW at the segment's ends); `src`/`dst`
// the primitive's, reordered from/to when they differ.
struct DnnlSegment::Layer {
  std::string impl;
  memory::desc in, out, src, dst;
  memory::desc scratch, in_scratch, out_scratch;
  bool reorder_in = false, reorder_out = false;
  dnnl::primitive prim;
  dnnl::reorder to_src, from_dst;
  memory weights, bias;  // kConv, in the kernel's layout; read-only after Create
  bool has_weights = false, has_bias = false;
};

namespace {

// One thread's memory objects for one Layer, and the argument lists of its
// primitives (the C API takes a plain array: no map built by us per call).
struct LayerThread {
  memory in, out, src, dst;              // in/out: handles set per window
  memory pad, in_pad, out_pad;           // scratchpads (empty when none is needed)
  std::array<dnnl_exec_arg_t, 5> args{};
  std::array<dnnl_exec_arg_t, 3> in_args{}, out_args{};
  int n_args = 0, n_in = 0, n_out = 0;
};

}  // namespace

struct DnnlSegment::Thread {
  dnnl::stream stream;
  std::vector<LayerThread> layers;
  std::vector<float> window[2];  // RunWindows' activations between layers
};

void DnnlSegment::ThreadDeleter::operator()(Thread* t) const { delete t; }

namespace {

// Throws dnnl::error. `in` is the layout the previous layer writes.
std::unique_ptr<DnnlSegment::Layer> MakeLayer(const DnnlLayer& l, const memory::desc& in, bool last) {
  const dnnl::engine& eng = Engine();
  auto layer = std::make_unique<DnnlSegment::Layer>();
  dnnl::primitive_attr attr;
  attr.set_scratchpad_mode(dnnl::scratchpad_mode::user);  // per thread, ours: see Thread
  if (l.kind == DnnlLayer::Kind::kConv) {
    const Conv2dParams& p = l.conv;
    const uint32_t oh = p.out_h(), ow = p.out_w();
    const memory::dims w_dims{p.out_c, p.in_c, p.kernel_h, p.kernel_w};
    const memory::dims b_dims{p.out_c};
    const memory::dims strides{p.stride_h, p.stride_w};
    const memory::dims dilates{p.dilation_h - 1, p.dilation_w - 1};  // oneDNN counts the gaps
    const memory::dims pad_l{p.pad_h, p.pad_w};
    const memory::dims pad_r{PadRight(p.in_h, oh, p.kernel_h, p.stride_h, p.pad_h, p.dilation_h),
                             PadRight(p.in_w, ow, p.kernel_w, p.stride_w, p.pad_w, p.dilation_w)};
    // format_tag::any: the kernel picks its own (channel-blocked) layouts.
    const memory::desc src_any({1, p.in_c, p.in_h, p.in_w}, Dt::f32, Tag::any);
    const memory::desc w_any(w_dims, Dt::f32, Tag::any);
    const memory::desc dst_any({1, p.out_c, oh, ow}, Dt::f32, Tag::any);
    const memory::desc b_md(b_dims, Dt::f32, Tag::x);
    layer->has_weights = true;
    layer->has_bias = l.bias != nullptr;
    const auto kind = dnnl::prop_kind::forward_inference;
    const auto alg = dnnl::algorithm::convolution_direct;
    const auto desc = layer->has_bias
                          ? dnnl::convolution_forward::desc(kind, alg, src_any, w_any, b_md, dst_any,
                                                            strides, dilates, pad_l, pad_r)
                          : dnnl::convolution_forward::desc(kind, alg, src_any, w_any, dst_any,
                                                            strides, dilates, pad_l, pad_r);
    if (l.relu) {
      dnnl::post_ops ops;
      ops.append_eltwise(1.0f, dnnl::algorithm::eltwise_relu, 0.0f, 0.0f);
      attr.set_post_ops(ops);
    }
    const dnnl::convolution_forward::primitive_desc pd(desc, attr, eng);
    layer->prim = dnnl::convolution_forward(pd);
    layer->src = pd.src_desc();
    layer->dst = pd.dst_desc();
    layer->impl = pd.impl_info_str();
    layer->scratch = pd.scratchpad_desc();
    // The weights once, into the kernel's layout (oneDNN owns the copy).
    dnnl::stream stream(eng);
    memory user_w({w_dims, Dt::f32, Tag::oihw}, eng, const_cast<float*>(l.weight));
    layer->weights = memory(pd.weights_desc(), eng);
    dnnl::reorder(user_w, layer->weights).execute(stream, user_w, layer->weights);
    stream.wait();
    if (layer->has_bias) {
      layer->bias = memory(b_md, eng);
      std::memcpy(layer->bias.get_data_handle(), l.bias, sizeof(float) * p.out_c);
    }
  } else {
    const Pool2dParams& p = l.pool;
    const uint32_t oh = p.out_h(), ow = p.out_w();
    const auto alg = l.kind == DnnlLayer::Kind::kMaxPool ? dnnl::algorithm::pooling_max
                     : p.count_include_pad               ? dnnl::algorithm::pooling_avg_include_padding
                                                          : dnnl::algorithm::pooling_avg_exclude_padding;
    // Pooling reads the layout it is given (the previous layer's): no reorder.
    const memory::desc dst_any({1, p.c, oh, ow}, Dt::f32, Tag::any);
    const dnnl::pooling_forward::desc desc(
        dnnl::prop_kind::forward_inference, alg, in, dst_any, {p.stride_h, p.stride_w},
        {p.kernel_h, p.kernel_w}, {p.pad_h, p.pad_w},
        {PadRight(p.in_h, oh, p.kernel_h, p.stride_h, p.pad_h, 1),
         PadRight(p.in_w, ow, p.kernel_w, p.stride_w, p.pad_w, 1)});
    const dnnl::pooling_forward::primitive_desc pd(desc, attr, eng);
    layer->prim = dnnl::pooling_forward(pd);
    layer->src = pd.src_desc();
    layer->dst = pd.dst_desc();
    layer->impl = pd.impl_info_str();
    layer->scratch = pd.scratchpad_desc();
  }
  layer->in = in;
  const memory::dims dst_dims = layer->dst.dims();
  layer->out = last ? Nchw(static_cast<uint32_t>(dst_dims[1]), static_cast<uint32_t>(dst_dims[2]),
                           static_cast<uint32_t>(dst_dims[3]))
                    : layer->dst;
  dnnl::primitive_attr reorder_attr;
  reorder_attr.set_scratchpad_mode(dnnl::scratchpad_mode::user);
  layer->reorder_in = layer->src != layer->in;
  if (layer->reorder_in) {
    const dnnl::reorder::primitive_desc rpd(eng, layer->in, eng, layer->src, reorder_attr);
    layer->to_src = dnnl::reorder(rpd);
    layer->in_scratch = rpd.scratchpad_desc();
  }
  layer->reorder_out = layer->dst != layer->out;
  if (layer->reorder_out) {
    const dnnl::reorder::primitive_desc rpd(eng, layer->dst, eng, layer->out, reorder_attr);
    layer->from_dst = dnnl::reorder(rpd);
    layer->out_scratch = rpd.scratchpad_desc();
  }
  return layer;
}

// Throws dnnl::error.
void Bind(const DnnlSegment::Layer& layer, LayerThread& t) {
  const dnnl::engine& eng = Engine();
  t.in = memory(layer.in, eng, DNNL_MEMORY_NONE);
  t.out = memory(layer.out, eng, DNNL_MEMORY_NONE);
  // One window of the primitive's own layout, where it differs from Run's.
  t.src = layer.reorder_in ? memory(layer.src, eng) : t.in;
  t.dst = layer.reorder_out ? memory(layer.dst, eng) : t.out;
  t.pad = Allocate(layer.scratch);
  t.in_pad = Allocate(layer.in_scratch);
  t.out_pad = Allocate(layer.out_scratch);
  auto add = [](auto& args, int& n, int what, const memory& m) {
    if (m) args[static_cast<size_t>(n++)] = {what, m.get()};
  };
  add(t.args, t.n_args, DNNL_ARG_SRC, t.src);
  if (layer.has_weights) add(t.args, t.n_args, DNNL_ARG_WEIGHTS, layer.weights);
  if (layer.has_bias) add(t.args, t.n_args, DNNL_ARG_BIAS, layer.bias);
  add(t.args, t.n_args, DNNL_ARG_DST, t.dst);
  add(t.args, t.n_args, DNNL_ARG_SCRATCHPAD, t.pad);
  if (layer.reorder_in) {
    add(t.in_args, t.n_in, DNNL_ARG_FROM, t.in);
    add(t.in_args, t.n_in, DNNL_ARG_TO, t.src);
    add(t.in_args, t.n_in, DNNL_ARG_SCRATCHPAD, t.in_pad);
  }
  if (layer.reorder_out) {
    add(t.out_args, t.n_out, DNNL_ARG_FROM, t.dst);
    add(t.out_args, t.n_out, DNNL_ARG_TO, t.out);
    add(t.out_args, t.n_out, DNNL_ARG_SCRATCHPAD, t.out_pad);
  }
}

}  // namespace

DnnlSegment::DnnlSegment() = default;
DnnlSegment::~DnnlSegment() = default;

const std::string& DnnlSegment::impl(size_t i) const { return layers_[i]->impl; }

bool DnnlSegment::jit() const {
  for (const auto& l : layers_) {
    if (l->impl.rfind("ref", 0) == 0) return false;
  }
  return true;
}

size_t DnnlSegment::out_floats(size_t i) const { return layers_[i]->out.get_size() / sizeof(float); }

absl::StatusOr<std::unique_ptr<const DnnlSegment>> DnnlSegment::Create(std::span<const DnnlLayer> layers) {
  if (layers.empty()) return absl::InvalidArgumentError("a oneDNN segment needs a layer");
  UseOneOmpThread();  // oneDNN sizes its blocking for the threads it will have
  std::unique_ptr<DnnlSegment> s(new DnnlSegment());
  try {
    const DnnlLayer& first = layers[0];
    s->in_floats_ = first.kind == DnnlLayer::Kind::kConv
                        ? size_t{first.conv.in_c} * first.conv.in_h * first.conv.in_w
                        : size_t{first.pool.c} * first.pool.in_h * first.pool.in_w;
    memory::desc in = first.kind == DnnlLayer::Kind::kConv
                          ? Nchw(first.conv.in_c, first.conv.in_h, first.conv.in_w)
                          : Nchw(first.pool.c, first.pool.in_h, first.pool.in_w);
    for (size_t i = 0; i < layers.size(); ++i) {
      const DnnlLayer& l = layers[i];
      const bool empty = l.kind == DnnlLayer::Kind::kConv ? l.conv.out_h() == 0 || l.conv.out_w() == 0
                                                          : l.pool.out_h() == 0 || l.pool.out_w() == 0;
      if (empty) return absl::InvalidArgumentError(absl::StrCat("layer ", i, " has an empty output"));
      s->layers_.push_back(MakeLayer(l, in, i + 1 == layers.size()));
      in = s->layers_.back()->out;
      if (i + 1 < layers.size()) s->window_floats_ = std::max(s->window_floats_, s->out_floats(i));
    }
  } catch (const dnnl::error& e) {
    return FromDnnl(e);
  } catch (const std::bad_alloc&) {
    return absl::ResourceExhaustedError("oneDNN segment: out of memory");
  }
  return std::unique_ptr<const DnnlSegment>(std::move(s));
}

absl::StatusOr<DnnlSegment::ThreadPtr> DnnlSegment::NewThread() const {
  try {
    ThreadPtr t(new Thread{dnnl::stream(Engine()), std::vector<LayerThread>(layers_.size()), {}});
    for (size_t i = 0; i < layers_.size(); ++i) Bind(*layers_[i], t->layers[i]);
    for (auto& w : t->window) w.resize(window_floats_);
    return t;
  } catch (const dnnl::error& e) {
    return FromDnnl(e);
  } catch (const std::bad_alloc&) {
    return absl::ResourceExhaustedError("oneDNN segment: out of memory");
  }
}

bool DnnlSegment::Run(size_t i, int batch, const float* in, float* out, Thread& t) const {
  UseOneOmpThread();
  const Layer& layer = *layers_[i];
  LayerThread& lt = t.layers[i];
  dnnl_stream_t stream = t.stream.get();
  // oneDNN's execute allocates its bookkeeping: from this thread's arena.
  const CallArena::Scope arena;
  const size_t in_bytes = layer.in.get_size(), out_bytes = layer.out.get_size();
  // The C API: status codes, no throw.
  for (int b = 0; b < batch; ++b) {
    const auto* x = reinterpret_cast<const unsigned char*>(in) + static_cast<size_t>(b) * in_bytes;
    auto* y = reinterpret_cast<unsigned char*>(out) + static_cast<size_t>(b) * out_bytes;
    if (dnnl_memory_set_data_handle(lt.in.get(), const_cast<unsigned char*>(x)) != dnnl_success ||
        dnnl_memory_set_data_handle(lt.out.get(), y) != dnnl_success) {
      return false;
    }
    if (layer.reorder_in &&
        dnnl_primitive_execute(layer.to_src.get(), stream, lt.n_in, lt.in_args.data()) != dnnl_success) {
      return false;
    }
    if (dnnl_primitive_execute(layer.prim.get(), stream, lt.n_args, lt.args.data()) != dnnl_success) {
      return false;
    }
    if (layer.reorder_out &&
        dnnl_primitive_execute(layer.from_dst.get(), stream, lt.n_out, lt.out_args.data()) != dnnl_success) {
      return false;
    }
  }
  return dnnl_stream_wait(stream) == dnnl_success;
}

bool DnnlSegment::RunWindows(int batch, const float* in, float* out, Thread& t) const {
  for (int b = 0; b < batch; ++b) {
    for (size_t k = 0; k < layers_.size(); ++k) {
      if (!RunWindowLayer(k, b, in, out, t)) return false;
    }
  }
  return true;
}

bool DnnlSegment::RunWindowLayer(size_t i, int b, const float* in, float* out, Thread& t) const {
  const size_t last = layers_.size() - 1;
  const float* x = i == 0 ? in + static_cast<size_t>(b) * in_floats_ : t.window[(i - 1) % 2].data();
  float* y = i == last ? out + static_cast<size_t>(b) * out_floats(last) : t.window[i % 2].data();
  return Run(i, 1, x, y, t);
}

}  // namespace wavepool::nn
