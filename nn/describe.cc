// Describe: shapes, resolution, receptive field and cost per layer, from the
// spec alone. The formulas are written out in docs/nn.md.
#include "nn/describe.h"

#include <algorithm>
#include <cmath>
#include <optional>

#include "absl/strings/str_cat.h"
#include "absl/strings/ascii.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "dsp/mel.h"
#include "nn/spec_internal.h"
#include "util/status_macros.h"

namespace wavepool::nn {
namespace {

using internal::OpKind;
using ::wavepool::v1::LayerDescription;
using ::wavepool::v1::ModelDescription;

// Receptive-field recurrence along one axis, in input positions (frames or
// bands): rf_out = rf_in + (kernel - 1) * dilation * jump_in,
// jump_out = jump_in * stride (Araujo et al., "Computing Receptive Fields of
// Convolutional Neural Networks", Distill 2019). Doubles: exact far beyond any
// real size, and no overflow for absurd ones.
struct Axis {
  double rf = 1;    // input positions one output sees
  double jump = 1;  // input positions between adjacent outputs; 0: a single position
  void Window(uint32_t kernel, uint32_t stride, uint32_t dilation) {
    rf += (static_cast<double>(kernel) - 1) * dilation * jump;
    jump *= stride;
  }
};

absl::StatusOr<dsp::MelFilterbank> Filterbank(const ModelSpec& spec) {
  const auto& mel = spec.front_end().mel();
  dsp::MelOptions o;
  o.sample_rate_hz = spec.sample_rate_hz();
  o.fft_size = spec.front_end().stft().fft_size();
  o.num_bands = mel.num_bands();
  o.f_min_hz = mel.f_min_hz();
  o.f_max_hz = mel.f_max_hz();
  o.scale = mel.scale() == ::wavepool::v1::HTK ? dsp::MelScaleType::kHtk : dsp::MelScaleType::kSlaney;
  return dsp::MelFilterbank::Create(o);
}

// FLOPs of the front end for one window's frames, per frame:
//   frame_length (window multiply) + 2.5 N log2 N (real FFT of size N, half the
//   5 N log2 N of a complex one) + 3 (N/2 + 1) (|X|^2: two multiplies, one add;
//   +1 per bin for MAGNITUDE's sqrt) + 2 nonzeros (sparse mel multiply-adds)
//   + bands (log);
// plus 4 per value for PER_FRAME / PER_WINDOW normalisation.
double FrontEndFlops(const ModelSpec& spec, const dsp::MelFilterbank& bank, uint32_t frames) {
  const auto& stft = spec.front_end().stft();
  const double n = stft.fft_size();
  const double bins = std::floor(n / 2) + 1;
  const double bands = spec.front_end().mel().num_bands();
  double per_frame = stft.frame_length() + 2.5 * n * std::log2(n) + 3 * bins +
                     2.0 * static_cast<double>(bank.nonzeros()) + bands;
  if (stft.spectrum() == ::wavepool::v1::MAGNITUDE) per_frame += bins;
  double flops = per_frame * frames;
  if (spec.front_end().normalization() != ::wavepool::v1::NORMALIZATION_NONE) {
    flops += 4 * bands * frames;
  }
  return flops;
}

std::string FormatCount(uint64_t n) {
  if (n < 10'000'000) return absl::StrCat(n);
  return absl::StrFormat("%.1fM", static_cast<double>(n) / 1e6);
}

}  // namespace

absl::StatusOr<ModelDescription> Describe(const ModelSpec& spec) {
  ASSIGN_OR_RETURN(std::vector<Shape> shapes, ValidateSpec(spec));
  ASSIGN_OR_RETURN(Shape in, InputShape(spec));
  // ECG beat models: the input is the filtered lead itself, one position per
  // sample, and no frequency axis.
  const bool beats = spec.kind() == ::wavepool::v1::BEAT_WINDOWS;
  std::optional<dsp::MelFilterbank> bank;
  if (!beats) {
    ASSIGN_OR_RETURN(bank, Filterbank(spec));
  }
  const double rate = spec.sample_rate_hz();
  const double frame_length = beats ? 1 : spec.front_end().stft().frame_length();
  const double frame_hop = beats ? 1 : spec.front_end().stft().frame_hop();
  const uint32_t bands = beats ? 1 : spec.front_end().mel().num_bands();
  const uint32_t frames = in.w;
  const bool freq_axis = !beats && spec.front_end().layout() != ::wavepool::v1::MEL_AS_CHANNELS;
  // Mean width of a band's share of the mel range.
  const double hz_per_band =
      beats ? 0 : (spec.front_end().mel().f_max_hz() - spec.front_end().mel().f_min_hz()) / bands;

  ModelDescription d;
  d.add_input_shape(in.c);
  d.add_input_shape(in.h);
  d.add_input_shape(in.w);
  if (beats) {
    d.set_window_ms((spec.beat_windowing().before_s() + spec.beat_windowing().after_s()) * 1000);
    d.set_hop_ms(0);  // one window per detected beat
  } else {
    d.set_window_ms(spec.windowing().length_samples() / rate * 1000);
    d.set_hop_ms(spec.windowing().hop_samples() / rate * 1000);
    d.set_front_end_mflops(FrontEndFlops(spec, *bank, frames) / 1e6);
  }

  Axis t, f;
  if (!freq_axis) {
    // Bands are channels: the first layer mixes all of them.
    f.rf = bands;
    f.jump = 0;
  }
  internal::OpKind prev = OpKind::kRelu;
  uint64_t total_params = 0;
  double total_flops = 0;
  for (int i = 0; i < spec.layers_size(); ++i) {
    const auto& layer = spec.layers(i);
    ASSIGN_OR_RETURN(internal::LayerParams p, internal::Resolve(layer));
    const Shape out = shapes[static_cast<size_t>(i)];
    uint64_t params = 0;
    const double flops = internal::LayerFlops(p, in, out, prev);
    switch (p.kind) {
      case OpKind::kConv:
        t.Window(p.kernel_w, p.stride_w, p.dilation_w);
        if (freq_axis) f.Window(p.kernel_h, p.stride_h, p.dilation_h);
        params = uint64_t{out.c} * in.c * p.kernel_h * p.kernel_w + (p.bias ? out.c : 0);
        break;
      case OpKind::kMaxPool:
      case OpKind::kAvgPool:
        // Blurred: the stride-1 pool, then the blur's taps at the stride
        // (rf grows by kernel - 1 + taps - 1; the step is the stride either way).
        if (p.blur_w > 1) {
          t.Window(p.kernel_w, 1, 1);
          t.Window(p.blur_w, p.stride_w, 1);
        } else {
          t.Window(p.kernel_w, p.stride_w, 1);
        }
        if (freq_axis && p.blur_h > 1) {
          f.Window(p.kernel_h, 1, 1);
          f.Window(p.blur_h, p.stride_h, 1);
        } else if (freq_axis) {
          f.Window(p.kernel_h, p.stride_h, 1);
        }
        break;
      case OpKind::kGlobalAvgPool:
      case OpKind::kGlobalMaxPool:
      case OpKind::kDense:
        // Sees the whole window; no second position on either axis.
        t = {static_cast<double>(frames), 0};
        f = {static_cast<double>(bands), 0};
        if (p.kind == OpKind::kDense) params = uint64_t{out.c} * in.size() + (p.bias ? out.c : 0);
        break;
      case OpKind::kBatchNorm:
        // gamma, beta, running mean and running variance: 4 C stored values.
        params = 4 * uint64_t{in.c};
        break;
      case OpKind::kRelu:
      case OpKind::kSoftmax:
      case OpKind::kDropout:
      case OpKind::kFlatten:
        break;
    }
    LayerDescription* l = d.add_layers();
    l->set_name(layer.name());
    l->set_op(std::string(internal::OpName(layer)));
    l->add_output_shape(out.c);
    l->add_output_shape(out.h);
    l->add_output_shape(out.w);
    // A step is between adjacent positions: an axis of one position reports 0.
    const double t_jump = out.w > 1 ? t.jump : 0;
    const double f_jump = out.h > 1 ? f.jump : 0;
    l->set_time_step_ms(t_jump * frame_hop / rate * 1000);
    l->set_freq_step_bands(f_jump);
    l->set_freq_step_hz(f_jump * hz_per_band);
    l->set_receptive_field_ms(((t.rf - 1) * frame_hop + frame_length) / rate * 1000);
    l->set_receptive_field_bands(f.rf);
    // Hz span of rf consecutive bands (lower edge of the first to upper edge of
    // the last), narrowest and widest over every placement. Padding can make
    // rf exceed the bands there are; the span is then all of them.
    const auto r = static_cast<uint32_t>(std::clamp<double>(f.rf, 1, bands));
    double lo = beats ? 0 : INFINITY, hi = 0;
    for (uint32_t b = 0; bank && b + r <= bands; ++b) {
      const double span = bank->UpperHz(b + r - 1) - bank->LowerHz(b);
      lo = std::min(lo, span);
      hi = std::max(hi, span);
    }
    l->set_receptive_field_hz_min(lo);
    l->set_receptive_field_hz_max(hi);
    l->set_parameters(params);
    l->set_mflops(flops / 1e6);
    total_params += params;
    total_flops += flops;
    prev = p.kind;
    in = out;
  }
  d.set_total_parameters(total_params);
  d.set_total_mflops(total_flops / 1e6);
  return d;
}

std::string FormatDescription(const ModelSpec& spec, const ModelDescription& d) {
  const auto& fe = spec.front_end();
  const double rate = spec.sample_rate_hz();
  std::string s = absl::StrFormat(
      "model %s v%d: %g Hz, window %.1f ms, hop %.1f ms\n", spec.name().empty() ? "(unnamed)" : spec.name(),
      spec.version(), rate, d.window_ms(), d.hop_ms());
  const bool beats = spec.kind() == ::wavepool::v1::BEAT_WINDOWS;
  if (beats) {
    const auto& b = spec.beat_windowing();
    std::string channels = b.omit_lead() ? " as the beat minus the stream's template (no raw lead)"
                           : b.template_context() ? ", a beat-minus-template channel"
                                                  : "";
    if (b.rr_context()) {
      absl::StrAppend(&channels, b.omit_lead() || b.template_context() ? " and " : ", plus ",
                      b.rr_irregularity() ? "5 RR-context channels (one the rhythm's irregularity)"
                                          : "4 RR-context channels");
    }
    if (b.align_s() > 0) {
      absl::StrAppendFormat(&channels, "; each beat moved by up to %.0f ms to match the template",
                            b.align_s() * 1000);
    }
    absl::StrAppendFormat(&s, "front end: ECG lead filtered (docs/ecg.md), %.0f ms before to %.0f ms "
                          "after each detected R peak%s\n",
                          b.before_s() * 1000, b.after_s() * 1000, channels);
  } else {
    absl::StrAppendFormat(&s, "front end: frames of %.1f ms every %.1f ms, %u mel bands %g-%g Hz, %s\n",
                          fe.stft().frame_length() / rate * 1000, fe.stft().frame_hop() / rate * 1000,
                          fe.mel().num_bands(), fe.mel().f_min_hz(), fe.mel().f_max_hz(),
                          fe.layout() == ::wavepool::v1::MEL_AS_CHANNELS ? "bands as channels"
                                                                         : "bands as frequency axis");
  }
  const auto shape = [](const auto& v) {
    return v.size() == 3 ? absl::StrFormat("[%u, %u, %u]", v[0], v[1], v[2]) : std::string("[]");
  };
  size_t name_w = 5;
  for (const auto& l : d.layers()) name_w = std::max(name_w, l.name().size());
  const int nw = static_cast<int>(std::min<size_t>(name_w, 24));
  // Columns: 9 fixed ones take 80 characters plus the name: 102 for names of 22.
  s += "\n";
  absl::StrAppendFormat(&s, "%-*s %-17s %14s %7s %7s %7s %5s %11s %8s %7s\n", nw, "layer", "op",
                        "output [C,H,W]", "step", "step", "RF", "RF", "RF Hz", "params", "MFLOPs");
  absl::StrAppendFormat(&s, "%-*s %-17s %14s %7s %7s %7s %5s %11s %8s %7s\n", nw, "", "", "", "ms",
                        "Hz", "ms", "bands", "min-max", "", "");
  absl::StrAppendFormat(&s, "%-*s %-17s %14s %7s %7s %7s %5s %11s %8s %7.3f\n", nw, "input",
                        "front end", shape(d.input_shape()),
                        absl::StrFormat("%.1f", (beats ? 1 : fe.stft().frame_hop()) / rate * 1000), "", "",
                        "", "", "", d.front_end_mflops());
  for (int i = 0; i < d.layers_size(); ++i) {
    const LayerDescription& l = d.layers(i);
    // A blurred pool shows its taps: "max_pool2d+blur3".
    std::string op = l.op();
    if (i < spec.layers_size()) {
      auto p = internal::Resolve(spec.layers(i));
      if (p.ok() && (p->blur_h > 1 || p->blur_w > 1)) absl::StrAppend(&op, "+blur", p->blur);
    }
    const std::string step_ms = l.time_step_ms() > 0 ? absl::StrFormat("%.1f", l.time_step_ms()) : "-";
    const std::string step_hz = l.freq_step_hz() > 0 ? absl::StrFormat("%.0f", l.freq_step_hz()) : "-";
    absl::StrAppendFormat(&s, "%-*s %-17s %14s %7s %7s %7.1f %5g %11s %8s %7.3f\n", nw, l.name(),
                          op, shape(l.output_shape()), step_ms, step_hz, l.receptive_field_ms(),
                          l.receptive_field_bands(),
                          absl::StrFormat("%.0f-%.0f", l.receptive_field_hz_min(),
                                          l.receptive_field_hz_max()),
                          FormatCount(l.parameters()), l.mflops());
  }
  absl::StrAppendFormat(&s, "%-*s %-17s %14s %7s %7s %7s %5s %11s %8s %7.3f\n", nw, "total",
                        "network", "", "", "", "", "", "", FormatCount(d.total_parameters()),
                        d.total_mflops());
  absl::StrAppendFormat(&s, "with the front end: %.3f MFLOPs per window\n",
                        d.total_mflops() + d.front_end_mflops());
  s += "step '-': a single position on that axis; RF: receptive field; batch-norm params: 4 C\n";
  // No trailing blanks from empty right-aligned columns.
  std::string trimmed;
  for (absl::string_view line : absl::StrSplit(s, '\n')) {
    absl::StrAppend(&trimmed, absl::StripTrailingAsciiWhitespace(line), "\n");
  }
  trimmed.pop_back();
  return trimmed;
}

}  // namespace wavepool::nn
