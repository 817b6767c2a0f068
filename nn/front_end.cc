#include "nn/front_end.h"

#include "absl/strings/str_cat.h"
#include "util/status_macros.h"

namespace wavepool::nn {

absl::StatusOr<dsp::FeatureWindowOptions> FeatureOptionsFromSpec(const v1::ModelSpec& spec) {
  const v1::FrontEndSpec& fe = spec.front_end();
  dsp::FeatureWindowOptions o;
  dsp::LogMelOptions& m = o.log_mel;
  m.sample_rate_hz = spec.sample_rate_hz();
  m.frame_length = fe.stft().frame_length();
  m.frame_hop = fe.stft().frame_hop();
  m.fft_size = fe.stft().fft_size();
  switch (fe.stft().window()) {
    case v1::HANN: m.window = dsp::WindowType::kHann; break;
    case v1::HAMMING: m.window = dsp::WindowType::kHamming; break;
    default:
      return absl::InvalidArgumentError(
          "frontEnd.stft.window must be HANN or HAMMING");
  }
  m.power = fe.stft().spectrum() != v1::MAGNITUDE;
  m.num_bands = fe.mel().num_bands();
  m.f_min_hz = fe.mel().f_min_hz();
  m.f_max_hz = fe.mel().f_max_hz();
  m.scale = fe.mel().scale() == v1::HTK ? dsp::MelScaleType::kHtk : dsp::MelScaleType::kSlaney;
  m.log_floor = fe.log().floor() > 0 ? fe.log().floor() : 1e-10f;
  o.window_length = spec.windowing().length_samples();
  o.window_hop = spec.windowing().hop_samples();
  switch (fe.normalization()) {
    case v1::NORMALIZATION_NONE: o.norm = dsp::FeatureNorm::kNone; break;
    case v1::PER_FRAME: o.norm = dsp::FeatureNorm::kPerFrame; break;
    case v1::PER_WINDOW: o.norm = dsp::FeatureNorm::kPerWindow; break;
    case v1::PER_BAND_MEAN: o.norm = dsp::FeatureNorm::kPerBandMean; break;
    default:
      return absl::InvalidArgumentError(
          absl::StrCat("frontEnd.normalization ", fe.normalization(), " is not known"));
  }
  RETURN_IF_ERROR(o.Validate());
  return o;
}

dsp::BeatWindowOptions BeatOptionsFromSpec(const v1::ModelSpec& spec) {
  const v1::BeatWindowSpec& b = spec.beat_windowing();
  dsp::BeatWindowOptions o;
  o.sample_rate_hz = spec.sample_rate_hz();
  o.before_s = b.before_s();
  o.after_s = b.after_s();
  o.rr_context = b.rr_context();
  o.template_context = b.template_context();
  o.rr_log_ratios = b.rr_features() == v1::BeatWindowSpec::RR_LOG_RATIOS;
  o.lead_channel = !b.omit_lead();
  o.rr_irregularity = b.rr_irregularity();
  o.align_s = b.align_s();
  return o;
}

}  // namespace wavepool::nn
