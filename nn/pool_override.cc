// Load-time overrides of a pooling layer's kernel, stride, padding or blur.
#include <array>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "nn/spec.h"
#include "nn/spec_internal.h"

namespace wavepool::nn {
namespace {

using ::wavepool::v1::LayerSpec;
using ::wavepool::v1::PoolOverride;

constexpr std::array<absl::string_view, 7> kFields2d = {
    "kernel_time", "kernel_freq", "stride_time", "stride_freq", "pad_time", "pad_freq", "blur"};
constexpr std::array<absl::string_view, 4> kFields1d = {"kernel", "stride", "padding", "blur"};

// The field name was checked against kFields2d / kFields1d by the caller.
void Set2d(const PoolOverride& o, ::wavepool::v1::Pool2dSpec* p) {
  const std::string& f = o.field();
  if (f == "kernel_time") p->set_kernel_time(o.value());
  else if (f == "kernel_freq") p->set_kernel_freq(o.value());
  else if (f == "stride_time") p->set_stride_time(o.value());
  else if (f == "stride_freq") p->set_stride_freq(o.value());
  else if (f == "pad_time") p->set_pad_time(o.value());
  else if (f == "pad_freq") p->set_pad_freq(o.value());
  else if (f == "blur") p->set_blur(o.value());
}

void Set1d(const PoolOverride& o, ::wavepool::v1::Pool1dSpec* p) {
  const std::string& f = o.field();
  if (f == "kernel") p->set_kernel(o.value());
  else if (f == "stride") p->set_stride(o.value());
  else if (f == "padding") p->set_padding(o.value());
  else if (f == "blur") p->set_blur(o.value());
}

absl::Status ApplyOne(const PoolOverride& o, ModelSpec* spec) {
  LayerSpec* layer = nullptr;
  for (auto& l : *spec->mutable_layers()) {
    if (l.name() == o.layer()) layer = &l;
  }
  if (layer == nullptr) {
    std::vector<std::string> pools;
    for (const auto& l : spec->layers()) {
      auto p = internal::Resolve(l);
      if (p.ok() && (p->kind == internal::OpKind::kMaxPool || p->kind == internal::OpKind::kAvgPool)) {
        pools.push_back(l.name());
      }
    }
    return absl::InvalidArgumentError(absl::StrCat(
        "override ", o.layer(), ".", o.field(), ": no layer named '", o.layer(),
        "'; pooling layers are: ", pools.empty() ? "(none)" : absl::StrJoin(pools, ", ")));
  }
  const std::string label = internal::LayerLabel(*layer);
  const auto op = layer->op_case();
  if (op == LayerSpec::kGlobalAvgPool || op == LayerSpec::kGlobalMaxPool) {
    return absl::InvalidArgumentError(absl::StrCat(
        "override ", o.layer(), ".", o.field(), ": ", label,
        " pools the whole input and has no kernel, stride, padding or blur to override"));
  }
  const bool two_d = op == LayerSpec::kMaxPool2D || op == LayerSpec::kAvgPool2D;
  const bool one_d = op == LayerSpec::kMaxPool1D || op == LayerSpec::kAvgPool1D;
  if (!two_d && !one_d) {
    return absl::InvalidArgumentError(absl::StrCat(
        "override ", o.layer(), ".", o.field(), ": ", label,
        " is not a pooling layer; overrides apply to max_pool1d, avg_pool1d, max_pool2d "
        "and avg_pool2d"));
  }
  bool known = false;
  for (auto f : kFields2d) known = known || (two_d && f == o.field());
  for (auto f : kFields1d) known = known || (one_d && f == o.field());
  if (!known) {
    return absl::InvalidArgumentError(absl::StrCat(
        "override ", o.layer(), ".", o.field(), ": ", label, " has no field '", o.field(),
        "'; use one of ", two_d ? absl::StrJoin(kFields2d, ", ") : absl::StrJoin(kFields1d, ", ")));
  }
  if (absl::StartsWith(o.field(), "kernel") && o.value() == 0) {
    return absl::InvalidArgumentError(absl::StrCat("override ", o.layer(), ".", o.field(), ": ",
                                                   label, " ", o.field(), " must be > 0"));
  }
  // Validity of the result (pad < kernel, non-empty output, blur <= 7) is
  // ValidateSpec's job.
  switch (op) {
    case LayerSpec::kMaxPool2D: Set2d(o, layer->mutable_max_pool2d()); break;
    case LayerSpec::kAvgPool2D: Set2d(o, layer->mutable_avg_pool2d()); break;
    case LayerSpec::kMaxPool1D: Set1d(o, layer->mutable_max_pool1d()); break;
    default: Set1d(o, layer->mutable_avg_pool1d()); break;
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status ApplyPoolOverrides(std::span<const PoolOverride> overrides, ModelSpec* spec) {
  // All or nothing: on an error *spec is left as it was.
  ModelSpec copy = *spec;
  for (const PoolOverride& o : overrides) {
    absl::Status st = ApplyOne(o, &copy);
    if (!st.ok()) return st;
  }
  *spec = std::move(copy);
  return absl::OkStatus();
}

absl::StatusOr<PoolOverride> ParsePoolOverride(std::string_view text_std) {
  // This abseil build's string_view is its own type, not std::string_view.
  const absl::string_view text(text_std.data(), text_std.size());
  const auto bad = [&](absl::string_view why) {
    return absl::InvalidArgumentError(absl::StrCat(
        "pool override '", text, "': ", why, "; the form is layer.field=value, e.g. pool1.stride_time=4"));
  };
  const size_t eq = text.find('=');
  if (eq == absl::string_view::npos) return bad("no '='");
  const absl::string_view lhs = absl::StripAsciiWhitespace(text.substr(0, eq));
  const absl::string_view rhs = absl::StripAsciiWhitespace(text.substr(eq + 1));
  // Layer names may contain dots ("block1.pool"); field names never do.
  const size_t dot = lhs.rfind('.');
  if (dot == absl::string_view::npos) return bad("no '.' between layer and field");
  PoolOverride o;
  o.set_layer(std::string(lhs.substr(0, dot)));
  o.set_field(std::string(lhs.substr(dot + 1)));
  if (o.layer().empty()) return bad("empty layer name");
  bool known = false;
  for (auto f : kFields2d) known = known || f == o.field();
  for (auto f : kFields1d) known = known || f == o.field();
  if (!known) {
    return bad(absl::StrCat("unknown field '", o.field(), "' (2-D pools: ",
                            absl::StrJoin(kFields2d, ", "), "; 1-D pools: ",
                            absl::StrJoin(kFields1d, ", "), ")"));
  }
  uint32_t value = 0;
  if (rhs.empty() || rhs[0] == '-' || rhs[0] == '+' || !absl::SimpleAtoi(rhs, &value)) {
    return bad(absl::StrCat("value '", rhs, "' is not a non-negative integer"));
  }
  o.set_value(value);
  return o;
}

}  // namespace wavepool::nn
