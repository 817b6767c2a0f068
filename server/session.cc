#include "server/session.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <numeric>

#include "absl/strings/str_cat.h"
#include "nn/kernels.h"
#include "util/status_macros.h"

namespace wavepool::server {
namespace {

// Model sample index -> client sample index. Exact for equal rates; otherwise
// the nearest-below (start) or nearest-above (end) client sample, computed from
// the index alone so the answer does not depend on how the stream was chunked.
uint64_t ToClientFloor(uint64_t model_index, double client_rate, double model_rate) {
  if (client_rate == model_rate) return model_index;
  long double v = static_cast<long double>(model_index) * client_rate / model_rate;
  return static_cast<uint64_t>(std::floor(v + 1e-9L));
}
uint64_t ToClientCeil(uint64_t model_index, double client_rate, double model_rate) {
  if (client_rate == model_rate) return model_index;
  long double v = static_cast<long double>(model_index) * client_rate / model_rate;
  return static_cast<uint64_t>(std::ceil(v - 1e-9L));
}

}  // namespace

Session::Session(const v1::StreamConfig& config, std::shared_ptr<const LoadedModel> model)
    : config_(config), model_(std::move(model)) {}

absl::StatusOr<std::unique_ptr<Session>> Session::Create(const v1::StreamConfig& config,
                                                         std::shared_ptr<const LoadedModel> model,
                                                         const SessionLimits& limits) {
  const double rate = config.sample_rate_hz();
  if (!std::isfinite(rate) || rate <= 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        "sample_rate_hz (", rate, ") must be a positive number of samples per second"));
  }
  if (rate < limits.min_sample_rate_hz || rate > limits.max_sample_rate_hz) {
    return absl::InvalidArgumentError(absl::StrCat(
        "sample_rate_hz (", rate, ") is outside the supported range [",
        limits.min_sample_rate_hz, ", ", limits.max_sample_rate_hz, "]"));
  }
  const uint32_t channels = config.has_channels() ? config.channels() : 1;
  if (channels == 0) {
    return absl::InvalidArgumentError("channels (0) must be >= 1 (leave it unset for mono)");
  }
  if (channels > limits.max_channels) {
    return absl::InvalidArgumentError(absl::StrCat("channels (", channels, ") must be <= ",
                                                   limits.max_channels));
  }
  if (config.encoding() != v1::FLOAT32 && config.encoding() != v1::INT16) {
    return absl::InvalidArgumentError(
        absl::StrCat("encoding (", config.encoding(), ") must be FLOAT32 or INT16"));
  }
  auto s = std::unique_ptr<Session>(new Session(config, std::move(model)));
  s->channels_ = channels;
  s->max_chunk_samples_ = limits.max_chunk_samples;
  const size_t labels = static_cast<size_t>(s->model_->model->spec().labels_size());
  if (config.has_top_k() && config.top_k() == 0) {
    return absl::InvalidArgumentError("top_k (0) must be >= 1 (leave it unset for 1)");
  }
  s->top_k_ = static_cast<uint32_t>(
      std::min<size_t>(config.has_top_k() ? config.top_k() : 1, labels));
  ASSIGN_OR_RETURN(s->resampler_,
                   dsp::Resampler::Create(rate, s->model_->model->spec().sample_rate_hz()));
  const double gain = config.adc_gain();
  if (!std::isfinite(gain) || gain < 0 || !std::isfinite(config.baseline())) {
    return absl::InvalidArgumentError(absl::StrCat(
        "adc_gain (", gain, ") must be a finite number >= 0 and baseline finite"));
  }
  if (gain > 0) {
    s->pcm_scale_ = static_cast<float>(1.0 / gain);
    s->pcm_offset_ = static_cast<float>(config.baseline());
  }
  s->max_abs_sample_ = static_cast<float>(limits.max_abs_sample);
  if (config.encoding() == v1::INT16) {
    // Decode's arithmetic at the two ends of the INT16 range (it is monotonic).
    const float lo = (-32768.0f - s->pcm_offset_) * s->pcm_scale_;
    const float hi = (32767.0f - s->pcm_offset_) * s->pcm_scale_;
    if (!(std::fabs(lo) <= s->max_abs_sample_ && std::fabs(hi) <= s->max_abs_sample_)) {
      return absl::InvalidArgumentError(absl::StrCat(
          "adc_gain (", gain, ") and baseline (", config.baseline(), ") map INT16 samples to [",
          lo, ", ", hi, "]; samples must stay within +-", limits.max_abs_sample,
          " (adc_gain is ADC units per physical unit, e.g. 200 per mV)"));
    }
  }
  if (s->model_->beat_windows) {
    ASSIGN_OR_RETURN(s->beats_, dsp::StreamingBeatWindows::Create(s->model_->beats));
  } else {
    ASSIGN_OR_RETURN(dsp::StreamingFeatures features,
                     dsp::StreamingFeatures::Create(s->model_->features));
    s->features_ = std::make_unique<dsp::StreamingFeatures>(std::move(features));
    ASSIGN_OR_RETURN(EventDetector events, EventDetector::Create(s->model_->model->spec()));
    s->events_ = std::make_unique<EventDetector>(std::move(events));
  }
  // A slice of about 16 windows' hop of signal (beats: 4 s, at most ~20 beats).
  const double model_rate = s->model_->model->spec().sample_rate_hz();
  const double slice_model_samples =
      s->model_->beat_windows ? 4.0 * model_rate
                              : 16.0 * static_cast<double>(s->model_->features.window_hop);
  s->slice_ = std::max<size_t>(1, static_cast<size_t>(std::ceil(slice_model_samples * rate /
                                                                  model_rate)));
  s->softmax_.resize(s->model_->model->output_size());
  s->order_.resize(s->softmax_.size());
  RETURN_IF_ERROR(s->SetUpCertification(config.certify_epsilon(), rate));
  return s;
}

absl::Status Session::SetUpCertification(float epsilon, double client_rate) {
  if (!std::isfinite(epsilon) || epsilon < 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        "certify_epsilon (", epsilon, ") must be a finite number >= 0 (0 = off): the noise "
        "budget per sample, full scale 1 for audio, millivolts for ECG"));
  }
  if (epsilon == 0) return absl::OkStatus();
  if (!resampler_->passthrough()) {
    const double model_rate = model_->model->spec().sample_rate_hz();
    // Once per rate pair for the process (tens of ms the first time).
    absl::StatusOr<dsp::ResamplerBound> bound = dsp::CachedResamplerBound(client_rate, model_rate);
    if (!bound.ok()) {
      return absl::Status(bound.status().code(),
                          absl::StrCat("certify_epsilon with sample_rate_hz ", client_rate,
                                       " (the model's is ", model_rate, "): ",
                                       bound.status().message()));
    }
    resampler_bound_ = *bound;
  }
  if (model_->interval == nullptr) {
    return absl::UnimplementedError(absl::StrCat("certify_epsilon: model ", model_->name, " ",
                                                 model_->version, ": ",
                                                 model_->interval_error.message()));
  }
  certify_epsilon_ = epsilon;
  UpdateModelRadius();
  interval_ws_ = std::make_unique<nn::IntervalWorkspace>(*model_->interval);
  const size_t in = model_->model->input_size();
  in_lo_.resize(in);
  in_hi_.resize(in);
  if (beats_) return beats_->EnableBounds(model_radius_);
  ASSIGN_OR_RETURN(dsp::LogMelBounds bounds, dsp::LogMelBounds::Create(model_->features));
  feature_bounds_ = std::make_unique<dsp::LogMelBounds>(std::move(bounds));
  recent_.assign(model_->features.window_length + model_->features.window_hop, 0.0f);
  window_samples_.resize(model_->features.window_length);
  return absl::OkStatus();
}

void Session::UpdateModelRadius() {
  if (channels_ == 1 && resampler_->passthrough()) {
    model_radius_ = certify_epsilon_;  // the front end sees the samples as sent
    return;
  }
  const double eps = certify_epsilon_;
  const double m = max_abs_input_;
  // Downmix: the mean is summed in double and rounded once to float (Decode).
  // With every channel value moved by <= eps the exact mean moves by <= eps;
  // the one float rounding of each of the two means adds <= 2^-24 |mean| (round
  // to nearest), |mean| <= m and the perturbed one <= m + eps; the double sum
  // of <= 32 values and the division err by < 33 * 2^-53 relative of m, far
  // inside the 2^-40 m added; 2^-149 covers a subnormal's absolute rounding.
  double mono = eps;
  if (channels_ > 1) {
    mono += 0x1p-24 * (2 * m + eps) + 0x1p-40 * m + 0x1p-149;
  }
  // Resampler: the measured gain and soxr's rounding (dsp/resampler_bounds.h);
  // |mono| <= m as rounding is monotone and m is a float.
  const double model = resampler_->passthrough() ? mono : resampler_bound_.OutputRadius(mono, m);
  model_radius_ = std::nextafter(static_cast<float>(model * (1 + 1e-12)),
                                 std::numeric_limits<float>::infinity());
}

absl::Status Session::CheckChunkSize(uint64_t frames) const {
  if (max_chunk_samples_ > 0 && frames > max_chunk_samples_) {
    return absl::ResourceExhaustedError(absl::StrCat(
        "this chunk carries ", frames, " samples per channel; the server takes at most ",
        max_chunk_samples_, " per message (max_chunk_samples): send smaller chunks"));
  }
  return absl::OkStatus();
}

absl::Status Session::Decode(const v1::SampleChunk& chunk) {
  const bool has_pcm = !chunk.pcm().empty();
  const bool has_values = chunk.values_size() > 0;
  if (has_pcm == has_values) {
    return absl::InvalidArgumentError(
        has_pcm ? "a SampleChunk must set exactly one of pcm and values, not both"
                : "a SampleChunk must set exactly one of pcm and values; this one is empty");
  }
  if (has_values) {
    const size_t n = static_cast<size_t>(chunk.values_size());
    if (n % channels_ != 0) {
      return absl::InvalidArgumentError(absl::StrCat(
          "values has ", n, " numbers, not a multiple of channels (", channels_,
          "): channels are interleaved, so every frame needs one value per channel"));
    }
    float peak = 0;
    for (size_t i = 0; i < n; ++i) {
      const float a = std::fabs(chunk.values(static_cast<int>(i)));
      if (!(a <= max_abs_sample_)) {
        return absl::InvalidArgumentError(absl::StrCat(
            "values[", i, "] is ", chunk.values(static_cast<int>(i)),
            "; samples must be finite numbers within +-", max_abs_sample_));
      }
      peak = std::max(peak, a);
    }
    const size_t frames = n / channels_;
    RETURN_IF_ERROR(CheckChunkSize(frames));
    if (mono_.size() < frames) mono_.resize(frames);
    const float* v = chunk.values().data();
    for (size_t f = 0; f < frames; ++f) {
      double sum = 0;
      for (uint32_t c = 0; c < channels_; ++c) sum += v[f * channels_ + c];
      mono_[f] = Mean(sum);
    }
    mono_.resize(frames);
    chunk_peak_ = peak;
    return absl::OkStatus();
  }
  const size_t bytes_per_sample = config_.encoding() == v1::INT16 ? 2 : 4;
  const size_t frame_bytes = bytes_per_sample * channels_;
  const std::string& pcm = chunk.pcm();
  if (pcm.size() % frame_bytes != 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        "pcm has ", pcm.size(), " bytes, not a multiple of the frame size ", frame_bytes,
        " (", channels_, " channel(s) x ", bytes_per_sample, " bytes of ",
        v1::Encoding_Name(config_.encoding()), ")"));
  }
  const size_t frames = pcm.size() / frame_bytes;
  RETURN_IF_ERROR(CheckChunkSize(frames));
  if (mono_.size() < frames) mono_.resize(frames);
  mono_.resize(frames);
  const unsigned char* p = reinterpret_cast<const unsigned char*>(pcm.data());
  float peak = 0;
  if (config_.encoding() == v1::INT16) {
    for (size_t f = 0; f < frames; ++f) {
      double sum = 0;
      for (uint32_t c = 0; c < channels_; ++c) {
        const unsigned char* s = p + (f * channels_ + c) * 2;
        const int16_t v = static_cast<int16_t>(static_cast<uint16_t>(s[0] | (s[1] << 8)));
        const float value = (static_cast<float>(v) - pcm_offset_) * pcm_scale_;
        peak = std::max(peak, std::fabs(value));
        sum += value;
      }
      mono_[f] = Mean(sum);
    }
    chunk_peak_ = peak;
    return absl::OkStatus();
  }
  for (size_t f = 0; f < frames; ++f) {
    double sum = 0;
    for (uint32_t c = 0; c < channels_; ++c) {
      const unsigned char* s = p + (f * channels_ + c) * 4;
      const uint32_t bits = static_cast<uint32_t>(s[0]) | (static_cast<uint32_t>(s[1]) << 8) |
                            (static_cast<uint32_t>(s[2]) << 16) |
                            (static_cast<uint32_t>(s[3]) << 24);
      float v;
      std::memcpy(&v, &bits, sizeof v);
      if (!(std::fabs(v) <= max_abs_sample_)) {
        return absl::InvalidArgumentError(
            absl::StrCat("pcm sample ", f * channels_ + c, " of this chunk is ", v,
                         "; samples must be finite numbers within +-", max_abs_sample_));
      }
      peak = std::max(peak, std::fabs(v));
      sum += v;
    }
    mono_[f] = Mean(sum);
  }
  chunk_peak_ = peak;
  return absl::OkStatus();
}

void Session::AddPending(const Pending& p, std::span<const float> features,
                         std::span<const float> lower, std::span<const float> upper) {
  const size_t in = model_->model->input_size();
  const size_t n = pending_.size();
  pending_.push_back(p);
  pending_.back().ready_sample = samples_received_;
  // Grows only to the most windows one slice has made (amortised, not per window).
  if (inputs_.size() < (n + 1) * in) inputs_.resize((n + 1) * in);
  std::copy(features.begin(), features.end(), inputs_.begin() + static_cast<ptrdiff_t>(n * in));
  if (certify_epsilon_ > 0) {
    const size_t out = model_->model->output_size();
    if (logit_bounds_.size() < (n + 1) * 2 * out) logit_bounds_.resize((n + 1) * 2 * out);
    float* lo = logit_bounds_.data() + n * 2 * out;
    if (lower.size() == in && upper.size() == in) {
      model_->interval->Propagate(lower.data(), upper.data(), lo, lo + out, *interval_ws_);
    } else {  // no feature bounds: nothing certified
      std::fill(lo, lo + out, -std::numeric_limits<float>::infinity());
      std::fill(lo + out, lo + 2 * out, std::numeric_limits<float>::infinity());
    }
  }
}

void Session::BoundWindow(uint64_t index) {
  const uint64_t start = index * model_->features.window_hop;
  const uint64_t cap = recent_.size();
  for (size_t k = 0; k < window_samples_.size(); ++k) {
    const uint64_t t = start + k;
    // Past the last sample: the padded tail's zeros (bounded like any sample).
    window_samples_[k] = t < recent_count_ ? recent_[t % cap] : 0.0f;
  }
  feature_bounds_->Compute(window_samples_, model_radius_, in_lo_, in_hi_);
}

void Session::FeedCertified(std::span<const float> resampled) {
  // At most one hop per Push, so the ring (window + hop) still holds the whole
  // window when StreamingFeatures completes it (its output is the same for
  // any chunking).
  const size_t hop = model_->features.window_hop;
  for (size_t i = 0; i < resampled.size(); i += hop) {
    const auto part = resampled.subspan(i, std::min(hop, resampled.size() - i));
    for (float v : part) recent_[recent_count_++ % recent_.size()] = v;
    features_->Push(part, [&](uint64_t index, std::span<const float> features) {
      BoundWindow(index);
      AddPending({index, false, false, 0, 0, 0}, features, in_lo_, in_hi_);
    });
  }
}

void Session::Feed(std::span<const float> resampled) {
  if (beats_) {
    beats_->Push(resampled, [&](const dsp::Beat& beat) {
      AddPending({0, false, true, beat.r_sample, beat.rr_prev_s, beat.rr_next_s}, beat.features,
                 beat.lower, beat.upper);
    });
    return;
  }
  if (feature_bounds_) {
    FeedCertified(resampled);
    return;
  }
  features_->Push(resampled, [&](uint64_t index, std::span<const float> features) {
    AddPending({index, false, false, 0, 0, 0}, features);
  });
}

absl::Status Session::Accept(const v1::SampleChunk& chunk) {
  if (input_ended_) return absl::FailedPreconditionError("the stream has already ended");
  if (mono_pos_ < mono_.size()) {
    return absl::FailedPreconditionError("the previous chunk is still being processed");
  }
  RETURN_IF_ERROR(Decode(chunk));
  mono_pos_ = 0;
  if (certify_epsilon_ > 0 && chunk_peak_ > max_abs_input_) {
    // The radius follows the largest |sample| so far (the rounding allowances
    // scale with it). Set before this chunk is staged, so every window it
    // completes is bounded with a maximum that covers all its samples.
    max_abs_input_ = chunk_peak_;
    UpdateModelRadius();
    if (beats_) RETURN_IF_ERROR(beats_->SetBoundsBudget(model_radius_));
  }
  return absl::OkStatus();
}

bool Session::Stage() {
  if (mono_pos_ < mono_.size()) {
    const size_t n = std::min(slice_, mono_.size() - mono_pos_);
    const std::span<const float> part(mono_.data() + mono_pos_, n);
    mono_pos_ += n;
    samples_received_ += n;
    // Push fails only for a non-finite sample, which Decode has ruled out.
    (void)resampler_->Push(part, [&](std::span<const float> resampled) { Feed(resampled); });
    return true;
  }
  if (!input_ended_ || flushed_) return false;
  flushed_ = true;
  (void)resampler_->Finish([&](std::span<const float> resampled) { Feed(resampled); });
  if (beats_) {
    beats_->Finish([&](const dsp::Beat& beat) {
      AddPending({0, false, true, beat.r_sample, beat.rr_prev_s, beat.rr_next_s}, beat.features,
                 beat.lower, beat.upper);
    });
  } else {
    features_->Finish([&](uint64_t index, std::span<const float> features) {
      if (feature_bounds_) {
        BoundWindow(index);
        AddPending({index, true, false, 0, 0, 0}, features, in_lo_, in_hi_);
      } else {
        AddPending({index, true, false, 0, 0, 0}, features);
      }
    });
  }
  return true;
}

float* Session::pending_scores() {
  const size_t need = pending_.size() * model_->model->output_size();
  if (scores_.size() < need) scores_.resize(need);
  return scores_.data();
}

void Session::ScoreInline() {
  const size_t n = pending_.size();
  if (n == 0) return;
  const nn::Model& model = *model_->model;
  if (!workspace_) workspace_ = std::make_unique<nn::Workspace>(model, 16);
  pending_scores();
  const size_t in = model.input_size(), out = model.output_size();
  for (size_t i = 0; i < n; i += 16) {
    const int b = static_cast<int>(std::min<size_t>(16, n - i));
    model.Run(inputs_.data() + i * in, b, scores_.data() + i * out, *workspace_);
  }
}

void Session::FillTop(const float* scores, v1::WindowResult& w) {
  const nn::Model& model = *model_->model;
  std::copy(scores, scores + softmax_.size(), softmax_.begin());
  if (!model.outputs_probabilities()) nn::Softmax(softmax_.size(), softmax_.data());
  std::iota(order_.begin(), order_.end(), 0u);
  // Highest score first; equal scores keep label order, so results are stable.
  std::partial_sort(order_.begin(), order_.begin() + top_k_, order_.end(),
                    [&](uint32_t a, uint32_t b) {
                      return softmax_[a] > softmax_[b] || (softmax_[a] == softmax_[b] && a < b);
                    });
  for (uint32_t i = 0; i < top_k_; ++i) {
    v1::Label* l = w.add_top();
    l->set_label(model.spec().labels(static_cast<int>(order_[i])));
    l->set_score(softmax_[order_[i]]);
  }
}

v1::WindowResult Session::WindowOf(const Pending& p, const float* scores) {
  const double client_rate = config_.sample_rate_hz();
  const double model_rate = model_->model->spec().sample_rate_hz();
  v1::WindowResult w;
  if (p.beat) {
    const int64_t before = model_->beats.before_samples(), after = model_->beats.after_samples();
    w.set_index(windows_sent_);
    const int64_t start = std::max<int64_t>(0, p.r_sample - before);
    w.set_start_sample(ToClientFloor(static_cast<uint64_t>(start), client_rate, model_rate));
    w.set_end_sample(std::min<uint64_t>(
        samples_received_,
        ToClientCeil(static_cast<uint64_t>(p.r_sample + after), client_rate, model_rate)));
    w.set_beat_sample(
        ToClientFloor(static_cast<uint64_t>(p.r_sample), client_rate, model_rate));
    w.set_rr_prev_s(p.rr_prev_s);
    w.set_rr_next_s(p.rr_next_s);
  } else {
    const uint64_t hop = model_->features.window_hop;
    const uint64_t length = model_->features.window_length;
    w.set_index(p.index);
    w.set_start_sample(ToClientFloor(p.index * hop, client_rate, model_rate));
    w.set_end_sample(p.padded ? samples_received_
                              : ToClientCeil(p.index * hop + length, client_rate, model_rate));
    w.set_padded(p.padded);
  }
  w.set_start_time_s(static_cast<double>(w.start_sample()) / client_rate);
  w.set_ready_sample(p.ready_sample);
  FillTop(scores, w);
  ++windows_sent_;
  return w;
}

void Session::Emit(const SessionOutput& out) {
  const size_t outputs = model_->model->output_size();
  for (size_t i = 0; i < pending_.size(); ++i) {
    v1::WindowResult w = WindowOf(pending_[i], scores_.data() + i * outputs);
    if (certify_epsilon_ > 0) {
      // The top class as the client sees it (FillTop's order: ties to the lower index).
      const float* lo = logit_bounds_.data() + i * 2 * outputs;
      const nn::Certificate c = nn::CertifyTop(std::span<const float>(lo, outputs),
                                               std::span<const float>(lo + outputs, outputs),
                                               static_cast<int>(order_[0]));
      w.set_certified(c.certified);
      w.set_certified_margin(c.margin);
    }
    const uint64_t start_sample = w.start_sample(), end_sample = w.end_sample();
    out.window(std::move(w));
    if (events_) {
      // softmax_ holds this window's normalised scores (FillTop).
      events_->Add(softmax_, start_sample, end_sample, [&](v1::Event&& e) {
        ++events_sent_;
        out.event(std::move(e));
      });
    }
  }
  pending_.clear();
  if (flushed_ && events_ && !events_finished_) {
    events_finished_ = true;
    events_->Finish([&](v1::Event&& e) {
      ++events_sent_;
      out.event(std::move(e));
    });
  }
}

v1::StreamSummary Session::Summary(double wall_time_s) const {
  v1::StreamSummary summary;
  summary.set_windows(windows_sent_);
  summary.set_samples_received(samples_received_);
  summary.set_wall_time_s(wall_time_s);
  summary.set_events(events_sent_);
  return summary;
}

absl::Status Session::Push(const v1::SampleChunk& chunk, const SessionOutput& out) {
  RETURN_IF_ERROR(Accept(chunk));
  while (Stage()) {
    ScoreInline();
    Emit(out);
  }
  return absl::OkStatus();
}

absl::StatusOr<v1::StreamSummary> Session::Finish(const SessionOutput& out, double wall_time_s) {
  if (input_ended_) return absl::FailedPreconditionError("the stream has already ended");
  EndInput();
  while (Stage()) {
    ScoreInline();
    Emit(out);
  }
  Emit(out);  // closes an open event even when the flush made no window
  return Summary(wall_time_s);
}

}  // namespace wavepool::server
