#include "server/session.h"

#include <algorithm>
#include <cmath>
#include <cstring>
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
  if (s->model_->beat_windows) {
    ASSIGN_OR_RETURN(s->beats_, dsp::StreamingBeatWindows::Create(s->model_->beats));
  } else {
    ASSIGN_OR_RETURN(dsp::StreamingFeatures features,
                     dsp::StreamingFeatures::Create(s->model_->features));
    s->features_ = std::make_unique<dsp::StreamingFeatures>(std::move(features));
    ASSIGN_OR_RETURN(EventDetector events, EventDetector::Create(s->model_->model->spec()));
    s->events_ = std::make_unique<EventDetector>(std::move(events));
  }
  s->workspace_ = std::make_unique<nn::Workspace>(*s->model_->model, 1);
  s->scores_.resize(s->model_->model->output_size());
  s->order_.resize(s->scores_.size());
  return s;
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
    for (size_t i = 0; i < n; ++i) {
      if (!std::isfinite(chunk.values(static_cast<int>(i)))) {
        return absl::InvalidArgumentError(absl::StrCat(
            "values[", i, "] is ", chunk.values(static_cast<int>(i)),
            "; samples must be finite numbers"));
      }
    }
    const size_t frames = n / channels_;
    if (mono_.size() < frames) mono_.resize(frames);
    const float* v = chunk.values().data();
    for (size_t f = 0; f < frames; ++f) {
      float sum = 0;
      for (uint32_t c = 0; c < channels_; ++c) sum += v[f * channels_ + c];
      mono_[f] = channels_ == 1 ? sum : sum / static_cast<float>(channels_);
    }
    mono_.resize(frames);
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
  if (mono_.size() < frames) mono_.resize(frames);
  mono_.resize(frames);
  const unsigned char* p = reinterpret_cast<const unsigned char*>(pcm.data());
  if (config_.encoding() == v1::INT16) {
    for (size_t f = 0; f < frames; ++f) {
      float sum = 0;
      for (uint32_t c = 0; c < channels_; ++c) {
        const unsigned char* s = p + (f * channels_ + c) * 2;
        const int16_t v = static_cast<int16_t>(static_cast<uint16_t>(s[0] | (s[1] << 8)));
        sum += (static_cast<float>(v) - pcm_offset_) * pcm_scale_;
      }
      mono_[f] = channels_ == 1 ? sum : sum / static_cast<float>(channels_);
    }
    return absl::OkStatus();
  }
  for (size_t f = 0; f < frames; ++f) {
    float sum = 0;
    for (uint32_t c = 0; c < channels_; ++c) {
      const unsigned char* s = p + (f * channels_ + c) * 4;
      const uint32_t bits = static_cast<uint32_t>(s[0]) | (static_cast<uint32_t>(s[1]) << 8) |
                            (static_cast<uint32_t>(s[2]) << 16) |
                            (static_cast<uint32_t>(s[3]) << 24);
      float v;
      std::memcpy(&v, &bits, sizeof v);
      if (!std::isfinite(v)) {
        return absl::InvalidArgumentError(
            absl::StrCat("pcm sample ", f * channels_ + c, " of this chunk is ", v,
                         "; samples must be finite numbers"));
      }
      sum += v;
    }
    mono_[f] = channels_ == 1 ? sum : sum / static_cast<float>(channels_);
  }
  return absl::OkStatus();
}

void Session::Score(std::span<const float> features) {
  const nn::Model& model = *model_->model;
  model.Run(features.data(), 1, scores_.data(), *workspace_);
  if (!model.outputs_probabilities()) nn::Softmax(scores_.size(), scores_.data());
  std::iota(order_.begin(), order_.end(), 0u);
  // Highest score first; equal scores keep label order, so results are stable.
  std::partial_sort(order_.begin(), order_.begin() + top_k_, order_.end(),
                    [&](uint32_t a, uint32_t b) {
                      return scores_[a] > scores_[b] || (scores_[a] == scores_[b] && a < b);
                    });
}

void Session::FillTop(v1::WindowResult& w) const {
  for (uint32_t i = 0; i < top_k_; ++i) {
    v1::Label* l = w.add_top();
    l->set_label(model_->model->spec().labels(static_cast<int>(order_[i])));
    l->set_score(scores_[order_[i]]);
  }
}

void Session::Classify(uint64_t index, std::span<const float> features, bool padded,
                       const SessionOutput& out) {
  Score(features);
  const double client_rate = config_.sample_rate_hz();
  const double model_rate = model_->model->spec().sample_rate_hz();
  const uint64_t hop = model_->features.window_hop;
  const uint64_t length = model_->features.window_length;
  v1::WindowResult w;
  w.set_index(index);
  const uint64_t start = ToClientFloor(index * hop, client_rate, model_rate);
  w.set_start_sample(start);
  w.set_end_sample(padded ? samples_received_
                          : ToClientCeil(index * hop + length, client_rate, model_rate));
  w.set_start_time_s(static_cast<double>(start) / client_rate);
  w.set_padded(padded);
  FillTop(w);
  ++windows_sent_;
  const uint64_t start_sample = w.start_sample(), end_sample = w.end_sample();
  out.window(std::move(w));
  events_->Add(scores_, start_sample, end_sample, [&](v1::Event&& e) {
    ++events_sent_;
    out.event(std::move(e));
  });
}

void Session::ClassifyBeat(const dsp::Beat& beat, const SessionOutput& out) {
  Score(beat.features);
  const double client_rate = config_.sample_rate_hz();
  const double model_rate = model_->model->spec().sample_rate_hz();
  const int64_t before = model_->beats.before_samples(), after = model_->beats.after_samples();
  v1::WindowResult w;
  w.set_index(windows_sent_);
  const int64_t start = std::max<int64_t>(0, beat.r_sample - before);
  w.set_start_sample(ToClientFloor(static_cast<uint64_t>(start), client_rate, model_rate));
  w.set_end_sample(std::min<uint64_t>(
      samples_received_,
      ToClientCeil(static_cast<uint64_t>(beat.r_sample + after), client_rate, model_rate)));
  w.set_start_time_s(static_cast<double>(w.start_sample()) / client_rate);
  w.set_beat_sample(ToClientFloor(static_cast<uint64_t>(beat.r_sample), client_rate, model_rate));
  w.set_rr_prev_s(beat.rr_prev_s);
  w.set_rr_next_s(beat.rr_next_s);
  FillTop(w);
  ++windows_sent_;
  out.window(std::move(w));
}

void Session::Feed(std::span<const float> resampled, const SessionOutput& out) {
  if (beats_) {
    beats_->Push(resampled, [&](const dsp::Beat& beat) { ClassifyBeat(beat, out); });
    return;
  }
  features_->Push(resampled, [&](uint64_t index, std::span<const float> features) {
    Classify(index, features, /*padded=*/false, out);
  });
}

absl::Status Session::Push(const v1::SampleChunk& chunk, const SessionOutput& out) {
  if (finished_) return absl::FailedPreconditionError("the stream has already ended");
  RETURN_IF_ERROR(Decode(chunk));
  samples_received_ += mono_.size();
  return resampler_->Push(mono_, [&](std::span<const float> resampled) { Feed(resampled, out); });
}

absl::StatusOr<v1::StreamSummary> Session::Finish(const SessionOutput& out, double wall_time_s) {
  if (finished_) return absl::FailedPreconditionError("the stream has already ended");
  finished_ = true;
  RETURN_IF_ERROR(resampler_->Finish(
      [&](std::span<const float> resampled) { Feed(resampled, out); }));
  if (beats_) {
    beats_->Finish([&](const dsp::Beat& beat) { ClassifyBeat(beat, out); });
  } else {
    features_->Finish([&](uint64_t index, std::span<const float> features) {
      Classify(index, features, /*padded=*/true, out);
    });
    events_->Finish([&](v1::Event&& e) {
      ++events_sent_;
      out.event(std::move(e));
    });
  }
  v1::StreamSummary summary;
  summary.set_windows(windows_sent_);
  summary.set_samples_received(samples_received_);
  summary.set_wall_time_s(wall_time_s);
  summary.set_events(events_sent_);
  return summary;
}

}  // namespace wavepool::server
