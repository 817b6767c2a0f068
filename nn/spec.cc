// Spec JSON, input shape, validation and the expected weights.
#include "nn/spec.h"

#include <cmath>
#include <fstream>
#include <set>
#include <sstream>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "dsp/mel.h"
#include "google/protobuf/util/json_util.h"
#include "nn/front_end.h"
#include "nn/spec_internal.h"
#include "util/status_macros.h"

namespace wavepool::nn {
namespace {

using internal::LayerLabel;
using internal::LayerParams;
using internal::OpKind;
using ::wavepool::v1::LayerSpec;

// Limits that keep every size computation far from overflow and a malicious
// spec from asking for gigabytes: 2^26 floats (256 MB) per window per
// activation, 2^28 parameters (1 GB) per layer.
constexpr uint64_t kMaxActivationValues = uint64_t{1} << 26;
constexpr uint64_t kMaxLayerParameters = uint64_t{1} << 28;

absl::Status Invalid(absl::string_view a, absl::string_view b = "", absl::string_view c = "") {
  return absl::InvalidArgumentError(absl::StrCat(a, b, c));
}

// Saturating product: enough to compare against the limits above.
uint64_t SatMul(uint64_t a, uint64_t b) {
  if (a != 0 && b > UINT64_MAX / a) return UINT64_MAX;
  return a * b;
}

absl::Status ValidateFrontEnd(const ModelSpec& spec) {
  const double rate = spec.sample_rate_hz();
  if (!(rate > 0 && rate <= 1e6)) {
    return Invalid(absl::StrCat("sample_rate_hz (", rate, ") must be > 0 and <= 1000000"));
  }
  if (spec.kind() == ::wavepool::v1::BEAT_WINDOWS) {
    // ECG: the front end is fixed (dsp/qrs_detector.h); only the window is
    // set, and the class that cuts it says what it accepts.
    RETURN_IF_ERROR(BeatOptionsFromSpec(spec).Validate());
    return absl::OkStatus();
  }
  if (spec.kind() != ::wavepool::v1::FIXED_WINDOWS) {
    return Invalid("kind must be FIXED_WINDOWS or BEAT_WINDOWS (got ",
                   ::wavepool::v1::ModelKind_IsValid(spec.kind())
                       ? ::wavepool::v1::ModelKind_Name(spec.kind())
                       : absl::StrCat(static_cast<int>(spec.kind())),
                   ")");
  }
  const auto& stft = spec.front_end().stft();
  if (stft.frame_length() == 0) return Invalid("front_end.stft.frame_length (0) must be > 0");
  if (stft.frame_hop() == 0) return Invalid("front_end.stft.frame_hop (0) must be > 0");
  if (stft.fft_size() < stft.frame_length()) {
    return Invalid(absl::StrCat("front_end.stft.fft_size (", stft.fft_size(),
                                ") must be >= frame_length (", stft.frame_length(), ")"));
  }
  if (stft.window() != ::wavepool::v1::HANN && stft.window() != ::wavepool::v1::HAMMING) {
    return Invalid("front_end.stft.window must be HANN or HAMMING");
  }
  if (!::wavepool::v1::SpectrumType_IsValid(stft.spectrum())) {
    return Invalid("front_end.stft.spectrum must be POWER or MAGNITUDE");
  }
  const auto& mel = spec.front_end().mel();
  if (mel.num_bands() == 0) return Invalid("front_end.mel.num_bands (0) must be > 0");
  if (!::wavepool::v1::MelScale_IsValid(mel.scale())) {
    return Invalid("front_end.mel.scale must be SLANEY or HTK");
  }
  if (!(mel.f_min_hz() >= 0 && mel.f_min_hz() < mel.f_max_hz() && mel.f_max_hz() <= rate / 2)) {
    return Invalid(absl::StrCat("front_end.mel needs 0 <= f_min_hz (", mel.f_min_hz(),
                                ") < f_max_hz (", mel.f_max_hz(), ") <= sample_rate_hz / 2 (",
                                rate / 2, ")"));
  }
  // The filterbank the server will build: every band must cover an FFT bin.
  dsp::MelOptions mel_options;
  mel_options.sample_rate_hz = rate;
  mel_options.fft_size = stft.fft_size();
  mel_options.num_bands = mel.num_bands();
  mel_options.f_min_hz = mel.f_min_hz();
  mel_options.f_max_hz = mel.f_max_hz();
  mel_options.scale =
      mel.scale() == ::wavepool::v1::HTK ? dsp::MelScaleType::kHtk : dsp::MelScaleType::kSlaney;
  if (auto bank = dsp::MelFilterbank::Create(mel_options); !bank.ok()) {
    return Invalid("front_end.mel: ", bank.status().message());
  }
  const float floor = spec.front_end().log().floor();
  if (!(floor >= 0 && std::isfinite(floor))) {
    return Invalid(absl::StrCat("front_end.log.floor (", floor, ") must be >= 0 (0 means 1e-10)"));
  }
  if (!::wavepool::v1::FeatureNormalization_IsValid(spec.front_end().normalization())) {
    return Invalid("front_end.normalization must be NORMALIZATION_NONE, PER_FRAME, PER_WINDOW or PER_BAND_MEAN");
  }
  if (!::wavepool::v1::InputLayout_IsValid(spec.front_end().layout())) {
    return Invalid("front_end.layout must be MEL_AS_FREQ or MEL_AS_CHANNELS");
  }

  const auto& win = spec.windowing();
  const uint32_t fl = stft.frame_length(), fh = stft.frame_hop();
  if (win.length_samples() < fl) {
    return Invalid(absl::StrCat("windowing.length_samples (", win.length_samples(),
                                ") must be >= front_end.stft.frame_length (", fl, ")"));
  }
  if ((win.length_samples() - fl) % fh != 0) {
    const uint32_t frames = (win.length_samples() - fl) / fh + 1;
    return Invalid(absl::StrCat(
        "windowing.length_samples (", win.length_samples(), ") minus frame_length (", fl,
        ") must be a multiple of frame_hop (", fh, ") so a window holds whole frames; use ",
        fl + uint64_t{frames - 1} * fh, " or ", fl + uint64_t{frames} * fh));
  }
  if (win.hop_samples() == 0) return Invalid("windowing.hop_samples (0) must be > 0");
  if (win.hop_samples() % fh != 0) {
    return Invalid(absl::StrCat("windowing.hop_samples (", win.hop_samples(),
                                ") must be a multiple of front_end.stft.frame_hop (", fh,
                                ") so windows share frames"));
  }
  if (win.hop_samples() > win.length_samples()) {
    return Invalid(absl::StrCat("windowing.hop_samples (", win.hop_samples(),
                                ") must be <= length_samples (", win.length_samples(),
                                "): no sample may fall between windows"));
  }
  if (win.padding() != ::wavepool::v1::PAD_ZERO) return Invalid("windowing.padding must be PAD_ZERO");
  return absl::OkStatus();
}

// Output size along one axis, with a message saying by how much it falls short.
absl::Status CheckAxis(const LayerSpec& layer, const LayerParams& p, bool time, uint32_t in,
                       uint32_t out) {
  if (out >= 1) return absl::OkStatus();
  const bool conv = p.kind == OpKind::kConv;
  const uint32_t k = time ? p.kernel_w : p.kernel_h;
  const uint32_t pad = time ? p.pad_w : p.pad_h;
  const uint32_t d = time ? p.dilation_w : p.dilation_h;
  const std::string axis = time ? "time" : "freq";
  const std::string kname = p.one_d ? "kernel" : "kernel_" + axis;
  const std::string pname = p.one_d ? "padding" : "pad_" + axis;
  const uint64_t span = uint64_t{d} * (k - 1) + 1;
  const uint64_t padded = in + 2 * uint64_t{pad};
  std::string need = absl::StrCat(kname, " ", k);
  if (conv && d > 1) absl::StrAppend(&need, " x dilation ", d, " (span ", span, ")");
  return Invalid(absl::StrCat(
      LayerLabel(layer), ": input ", axis, " size ", in, " (+ 2 x ", pname, " ", pad, ") < ", need,
      ": ", span - padded, " short, the output would be empty; lower the kernel or the earlier ",
      time ? "time" : "frequency", " strides, or lengthen the window"));
}

absl::Status CheckLayer(const LayerSpec& layer, const LayerParams& p, const Shape& in) {
  const std::string label = LayerLabel(layer);
  if (p.one_d && in.h != 1) {
    return Invalid(label, absl::StrCat(": input ", in.ToString(), " has H (frequency) = ", in.h,
                                       "; 1-D layers need H == 1 (front_end.layout "
                                       "MEL_AS_CHANNELS, or use the 2-D layer)"));
  }
  switch (p.kind) {
    case OpKind::kConv:
      if (p.out_channels == 0) return Invalid(label, ": out_channels must be > 0");
      if (p.kernel_w == 0) return Invalid(label, p.one_d ? ": kernel" : ": kernel_time", " must be > 0");
      if (p.kernel_h == 0) return Invalid(label, ": kernel_freq must be > 0");
      break;
    case OpKind::kMaxPool:
    case OpKind::kAvgPool:
      if (p.kernel_w == 0) return Invalid(label, p.one_d ? ": kernel" : ": kernel_time", " must be > 0");
      if (p.kernel_h == 0) return Invalid(label, ": kernel_freq must be > 0");
      if (p.pad_w >= p.kernel_w) {
        return Invalid(label, absl::StrCat(p.one_d ? ": padding (" : ": pad_time (", p.pad_w,
                                           ") must be < ", p.one_d ? "kernel (" : "kernel_time (",
                                           p.kernel_w, ")"));
      }
      if (p.pad_h >= p.kernel_h) {
        return Invalid(label, absl::StrCat(": pad_freq (", p.pad_h, ") must be < kernel_freq (",
                                           p.kernel_h, ")"));
      }
      if (p.blur > kMaxBlurTaps) {
        return Invalid(label, absl::StrCat(": blur (", p.blur, ") must be 0 or 1 (off) or 2..",
                                           kMaxBlurTaps, " (binomial filter taps)"));
      }
      break;
    case OpKind::kDense:
      if (p.out_channels == 0) return Invalid(label, ": out_features must be > 0");
      break;
    case OpKind::kBatchNorm: {
      const float eps = layer.batch_norm().epsilon();
      if (!(eps >= 0 && std::isfinite(eps))) {
        return Invalid(label, absl::StrCat(": epsilon (", eps, ") must be >= 0 (0 means 1e-5)"));
      }
      break;
    }
    case OpKind::kDropout: {
      const float rate = layer.dropout().rate();
      if (!(rate >= 0 && rate < 1)) {
        return Invalid(label, absl::StrCat(": rate (", rate, ") must be in [0, 1)"));
      }
      break;
    }
    case OpKind::kSoftmax:
      if (in.h != 1 || in.w != 1) {
        return Invalid(label, absl::StrCat(": input ", in.ToString(),
                                           "; softmax needs H == W == 1 (put a global pool or a "
                                           "dense layer before it)"));
      }
      break;
    default:
      break;
  }
  const Shape out = internal::OutputShape(p, in);
  if (p.kind == OpKind::kConv || p.kind == OpKind::kMaxPool || p.kind == OpKind::kAvgPool) {
    RETURN_IF_ERROR(CheckAxis(layer, p, /*time=*/true, in.w, out.w));
    RETURN_IF_ERROR(CheckAxis(layer, p, /*time=*/false, in.h, out.h));
  }
  const uint64_t values = SatMul(SatMul(out.c, out.h), out.w);
  if (values > kMaxActivationValues) {
    return Invalid(label, absl::StrCat(": output ", out.ToString(), " has ", values,
                                       " values per window, above the limit of ",
                                       kMaxActivationValues));
  }
  uint64_t params = 0;
  if (p.kind == OpKind::kConv) {
    params = SatMul(SatMul(SatMul(p.out_channels, in.c), p.kernel_h), p.kernel_w);
  } else if (p.kind == OpKind::kDense) {
    params = SatMul(p.out_channels, in.size());
  }
  if (params > kMaxLayerParameters) {
    return Invalid(label, absl::StrCat(": needs ", params, " weights, above the limit of ",
                                       kMaxLayerParameters));
  }
  return absl::OkStatus();
}

absl::Status ReadFile(const std::string& path, std::string* out) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::ErrnoToStatus(errno, absl::StrCat("cannot open ", path));
  std::ostringstream ss;
  ss << in.rdbuf();
  if (in.bad()) return absl::DataLossError(absl::StrCat("error reading ", path));
  *out = std::move(ss).str();
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<ModelSpec> ParseSpecJson(std::string_view json) {
  ModelSpec spec;
  google::protobuf::util::JsonParseOptions options;
  options.ignore_unknown_fields = false;
  const auto st = google::protobuf::util::JsonStringToMessage(
      google::protobuf::StringPiece(json.data(), json.size()), &spec, options);
  if (!st.ok()) return Invalid("model spec JSON: ", st.message().ToString());
  return spec;
}

absl::StatusOr<ModelSpec> ReadSpecFile(const std::string& path) {
  std::string json;
  RETURN_IF_ERROR(ReadFile(path, &json));
  auto spec = ParseSpecJson(json);
  if (!spec.ok()) return Invalid(path, ": ", spec.status().message());
  return spec;
}

std::string SpecToJson(const ModelSpec& spec) {
  google::protobuf::util::JsonPrintOptions options;
  options.add_whitespace = true;
  options.always_print_primitive_fields = false;
  options.preserve_proto_field_names = false;
  std::string out;
  // Cannot fail for a message of a generated type (no Any fields to resolve).
  (void)google::protobuf::util::MessageToJsonString(spec, &out, options);
  return out;
}

absl::StatusOr<Shape> InputShape(const ModelSpec& spec) {
  RETURN_IF_ERROR(ValidateFrontEnd(spec));
  if (spec.kind() == ::wavepool::v1::BEAT_WINDOWS) {
    const dsp::BeatWindowOptions b = BeatOptionsFromSpec(spec);
    return Shape{static_cast<uint32_t>(b.channels()), 1, static_cast<uint32_t>(b.window_samples())};
  }
  const auto& stft = spec.front_end().stft();
  const uint32_t frames =
      (spec.windowing().length_samples() - stft.frame_length()) / stft.frame_hop() + 1;
  const uint32_t bands = spec.front_end().mel().num_bands();
  if (SatMul(frames, bands) > kMaxActivationValues) {
    return Invalid(absl::StrCat("the input of ", bands, " bands x ", frames,
                                " frames is above the limit of ", kMaxActivationValues,
                                " values per window"));
  }
  if (spec.front_end().layout() == ::wavepool::v1::MEL_AS_CHANNELS) return Shape{bands, 1, frames};
  return Shape{1, bands, frames};
}

absl::StatusOr<std::vector<Shape>> ValidateSpec(const ModelSpec& spec) {
  ASSIGN_OR_RETURN(Shape in, InputShape(spec));
  if (spec.layers_size() == 0) return Invalid("the spec has no layers");
  std::set<std::string> names;
  std::vector<Shape> shapes;
  for (int i = 0; i < spec.layers_size(); ++i) {
    const LayerSpec& layer = spec.layers(i);
    if (layer.name().empty()) {
      return Invalid(absl::StrCat("layers[", i, "] (", internal::OpName(layer),
                                  ") has no name; every layer needs a unique name"));
    }
    if (!names.insert(layer.name()).second) {
      return Invalid(absl::StrCat("layers[", i, "]: the name '", layer.name(),
                                  "' is used twice; layer names must be unique"));
    }
    ASSIGN_OR_RETURN(LayerParams p, internal::Resolve(layer));
    RETURN_IF_ERROR(CheckLayer(layer, p, in));
    in = internal::OutputShape(p, in);
    shapes.push_back(in);
  }
  const LayerSpec& last = spec.layers(spec.layers_size() - 1);
  if (in.h != 1 || in.w != 1) {
    return Invalid(absl::StrCat("the last ", LayerLabel(last), " outputs ", in.ToString(),
                                "; a classifier must output [labels, 1, 1]: end with a global "
                                "pool or a dense layer"));
  }
  if (static_cast<size_t>(spec.labels_size()) != in.c) {
    return Invalid(absl::StrCat("the last ", LayerLabel(last), " outputs ", in.c, " values but ",
                                spec.labels_size(), " labels are given; they must match"));
  }
  std::set<std::string> labels;
  for (int i = 0; i < spec.labels_size(); ++i) {
    if (spec.labels(i).empty()) return Invalid(absl::StrCat("labels[", i, "] is empty"));
    if (!labels.insert(spec.labels(i)).second) {
      return Invalid(absl::StrCat("labels[", i, "]: '", spec.labels(i), "' is given twice"));
    }
  }
  return shapes;
}

absl::StatusOr<std::map<std::string, std::vector<int64_t>>> ExpectedWeights(const ModelSpec& spec) {
  ASSIGN_OR_RETURN(std::vector<Shape> shapes, ValidateSpec(spec));
  ASSIGN_OR_RETURN(Shape in, InputShape(spec));
  std::map<std::string, std::vector<int64_t>> out;
  for (auto& slot : internal::WeightSlots(spec, in, shapes)) out[slot.name] = std::move(slot.shape);
  return out;
}

}  // namespace wavepool::nn
