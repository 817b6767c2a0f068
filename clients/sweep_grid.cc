#include "clients/sweep_grid.h"

#include <set>

#include "absl/strings/str_cat.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_split.h"

namespace wavepool::cli {
namespace {

using v1::LayerSpec;

bool IsPool(const LayerSpec& l) {
  return l.has_max_pool1d() || l.has_avg_pool1d() || l.has_max_pool2d() || l.has_avg_pool2d();
}
bool Is1d(const LayerSpec& l) { return l.has_max_pool1d() || l.has_avg_pool1d(); }

}  // namespace

absl::StatusOr<PoolKind> ParsePoolKind(std::string_view name) {
  if (name == "max") return PoolKind::kMax;
  if (name == "avg") return PoolKind::kAvg;
  if (name == "conv") return PoolKind::kConv;
  if (name == "blur") return PoolKind::kBlur;
  return absl::InvalidArgumentError(
      absl::StrCat("unknown pooling kind \"", std::string(name), "\"; use max, avg, conv or blur"));
}

std::string PoolKindName(PoolKind kind) {
  switch (kind) {
    case PoolKind::kMax: return "max";
    case PoolKind::kAvg: return "avg";
    case PoolKind::kConv: return "conv";
    case PoolKind::kBlur: return "blur";
  }
  return "?";
}

std::string SweepTag(const SweepPoint& p) {
  return absl::StrCat(PoolKindName(p.kind), "-t", p.time_stride, "-f", p.freq_stride);
}

absl::StatusOr<SweepPoint> ParseSweepTag(std::string_view tag) {
  const std::vector<std::string> parts = absl::StrSplit(std::string(tag), '-');
  SweepPoint p;
  const auto bad = [&] {
    return absl::InvalidArgumentError(absl::StrCat(
        "sweep point \"", std::string(tag), "\" is not KIND-tT-fF, e.g. max-t2-f2"));
  };
  if (parts.size() != 3 || parts[1].size() < 2 || parts[1][0] != 't' || parts[2].size() < 2 ||
      parts[2][0] != 'f') {
    return bad();
  }
  auto kind = ParsePoolKind(parts[0]);
  if (!kind.ok()) return kind.status();
  p.kind = *kind;
  if (!absl::SimpleAtoi(parts[1].substr(1), &p.time_stride) ||
      !absl::SimpleAtoi(parts[2].substr(1), &p.freq_stride) || p.time_stride == 0 ||
      p.freq_stride == 0 || p.time_stride > 64 || p.freq_stride > 64) {
    return bad();
  }
  return p;
}

absl::StatusOr<v1::ModelSpec> SweepVariant(const v1::ModelSpec& base,
                                           const std::vector<std::string>& layers,
                                           const SweepPoint& point) {
  if (point.time_stride == 0 || point.freq_stride == 0) {
    return absl::InvalidArgumentError("sweep strides start at 1");
  }
  std::set<std::string> wanted(layers.begin(), layers.end());
  for (const std::string& name : layers) {
    bool found = false;
    for (const LayerSpec& l : base.layers()) {
      if (l.name() != name) continue;
      found = true;
      if (!IsPool(l)) {
        return absl::InvalidArgumentError(absl::StrCat(
            "sweep layer \"", name, "\" is not a max or average pooling layer"));
      }
    }
    if (!found) {
      return absl::InvalidArgumentError(absl::StrCat("the spec has no layer \"", name, "\""));
    }
  }
  v1::ModelSpec out = base;
  out.clear_layers();
  int swept = 0;
  for (const LayerSpec& l : base.layers()) {
    const bool take = IsPool(l) && (wanted.empty() || wanted.count(l.name()) > 0);
    if (!take) {
      *out.add_layers() = l;
      continue;
    }
    ++swept;
    const bool one_d = Is1d(l);
    if (one_d && point.freq_stride != 1) {
      return absl::InvalidArgumentError(absl::StrCat(
          "layer \"", l.name(), "\" pools in time only; sweep it with frequency stride 1"));
    }
    if (point.kind == PoolKind::kConv) {
      // The nearest conv before the pool takes its strides; the pool goes.
      LayerSpec* conv = nullptr;
      for (int i = out.layers_size() - 1; i >= 0 && conv == nullptr; --i) {
        LayerSpec* c = out.mutable_layers(i);
        if (c->has_conv1d() || c->has_conv2d()) conv = c;
        if (IsPool(*c)) break;  // never reach past another pooling layer
      }
      if (conv == nullptr) {
        return absl::InvalidArgumentError(absl::StrCat(
            "layer \"", l.name(), "\" has no conv layer before it to take its stride"));
      }
      if (conv->has_conv2d()) {
        conv->mutable_conv2d()->set_stride_time(point.time_stride);
        conv->mutable_conv2d()->set_stride_freq(point.freq_stride);
      } else {
        if (point.freq_stride != 1) {
          return absl::InvalidArgumentError(absl::StrCat(
              "conv layer \"", conv->name(), "\" is 1-D; sweep it with frequency stride 1"));
        }
        conv->mutable_conv1d()->set_stride(point.time_stride);
      }
      continue;
    }
    LayerSpec* p = out.add_layers();
    p->set_name(l.name());
    const bool avg = point.kind == PoolKind::kAvg;
    if (one_d) {
      v1::Pool1dSpec* s = avg ? p->mutable_avg_pool1d() : p->mutable_max_pool1d();
      s->set_kernel(point.time_stride);
      s->set_stride(point.time_stride);
      if (point.kind == PoolKind::kBlur) s->set_blur(3);
    } else {
      v1::Pool2dSpec* s = avg ? p->mutable_avg_pool2d() : p->mutable_max_pool2d();
      s->set_kernel_time(point.time_stride);
      s->set_kernel_freq(point.freq_stride);
      s->set_stride_time(point.time_stride);
      s->set_stride_freq(point.freq_stride);
      if (point.kind == PoolKind::kBlur) s->set_blur(3);
    }
  }
  if (swept == 0) return absl::InvalidArgumentError("the spec has no pooling layer to sweep");
  return out;
}

}  // namespace wavepool::cli
