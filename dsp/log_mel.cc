#include "dsp/log_mel.h"

#include <algorithm>
#include <cassert>
#include <cmath>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "util/status_macros.h"

namespace wavepool::dsp {
namespace {

// 2^24 values (64 MiB of floats) per window: a 10 s window at 100 frames/s and
// 128 bands is 128,000. The cap keeps a bad config from allocating gigabytes.
constexpr size_t kMaxWindowValues = size_t{1} << 24;

// Mean and population standard deviation of `count` values at stride
// `stride`, accumulated in double so the result does not depend on how many
// values there are.
void NormalizeStrided(float* values, size_t count, size_t stride) {
  double sum = 0;
  for (size_t i = 0; i < count; ++i) sum += values[i * stride];
  const double mean = sum / static_cast<double>(count);
  double squares = 0;
  for (size_t i = 0; i < count; ++i) {
    const double d = values[i * stride] - mean;
    squares += d * d;
  }
  const double denom = std::sqrt(squares / static_cast<double>(count)) + 1e-5;
  for (size_t i = 0; i < count; ++i) {
    values[i * stride] = static_cast<float>((values[i * stride] - mean) / denom);
  }
}

}  // namespace

StftOptions LogMelOptions::stft() const {
  StftOptions o;
  o.frame_length = frame_length;
  o.fft_size = fft_size;
  o.window = window;
  o.power = power;
  return o;
}

MelOptions LogMelOptions::mel() const {
  MelOptions o;
  o.sample_rate_hz = sample_rate_hz;
  o.fft_size = fft_size;
  o.num_bands = num_bands;
  o.f_min_hz = f_min_hz;
  o.f_max_hz = f_max_hz;
  o.scale = scale;
  return o;
}

absl::Status LogMelOptions::Validate() const {
  RETURN_IF_ERROR(stft().Validate());
  RETURN_IF_ERROR(mel().Validate());
  if (!FftSizeIsAllocationFree(fft_size)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "fft_size (", fft_size,
        ") must be even with no prime factor above 7 (e.g. 256, 400, 512): FFTW allocates "
        "scratch memory inside transforms of other sizes, which the streaming front end must "
        "not do"));
  }
  if (frame_hop == 0) return absl::InvalidArgumentError("frame_hop (0) must be > 0");
  if (!std::isfinite(log_floor) || log_floor <= 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        "log_floor (", log_floor, ") must be finite and > 0 (features are ln(max(mel, log_floor)))"));
  }
  return absl::OkStatus();
}

absl::StatusOr<LogMelFrame> LogMelFrame::Create(const LogMelOptions& options) {
  RETURN_IF_ERROR(options.Validate());
  ASSIGN_OR_RETURN(StftFrame stft, StftFrame::Create(options.stft()));
  ASSIGN_OR_RETURN(MelFilterbank mel, MelFilterbank::Create(options.mel()));
  return LogMelFrame(options, std::move(stft), std::move(mel));
}

LogMelFrame::LogMelFrame(const LogMelOptions& o, StftFrame stft, MelFilterbank mel)
    : options_(o), stft_(std::move(stft)), mel_(std::move(mel)), spectrum_(o.fft_size / 2 + 1) {}

void LogMelFrame::Compute(std::span<const float> frame, std::span<float> out) {
  assert(out.size() == options_.num_bands);
  stft_.Compute(frame, spectrum_);
  mel_.Apply(spectrum_, out);
  for (float& v : out) v = std::log(std::max(v, options_.log_floor));
}

size_t FeatureWindowOptions::frames_per_window() const {
  if (log_mel.frame_hop == 0 || window_length < log_mel.frame_length) return 0;
  return (window_length - log_mel.frame_length) / log_mel.frame_hop + 1;
}

size_t FeatureWindowOptions::window_values() const {
  return log_mel.num_bands * frames_per_window();
}

absl::Status FeatureWindowOptions::Validate() const {
  RETURN_IF_ERROR(log_mel.Validate());
  if (window_length < log_mel.frame_length) {
    return absl::InvalidArgumentError(absl::StrCat("window_length (", window_length,
                                                   ") must be >= log_mel.frame_length (",
                                                   log_mel.frame_length, ")"));
  }
  if (window_hop == 0) return absl::InvalidArgumentError("window_hop (0) must be > 0");
  if (window_hop > window_length) {
    return absl::InvalidArgumentError(absl::StrCat(
        "window_hop (", window_hop, ") must be <= window_length (", window_length, ")"));
  }
  if (window_hop % log_mel.frame_hop != 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        "window_hop (", window_hop, ") must be a multiple of log_mel.frame_hop (",
        log_mel.frame_hop, ") so that overlapping windows share frames"));
  }
  // Compared by division: num_bands * frames could overflow for absurd sizes.
  if (frames_per_window() > kMaxWindowValues / log_mel.num_bands) {
    return absl::InvalidArgumentError(absl::StrCat(
        "a window of ", frames_per_window(), " frames x ", log_mel.num_bands,
        " bands has more than ", kMaxWindowValues, " values; shorten window_length (",
        window_length, ") or raise frame_hop (", log_mel.frame_hop, ")"));
  }
  return absl::OkStatus();
}

void NormalizeWindow(FeatureNorm norm, size_t bands, size_t frames, std::span<float> values) {
  assert(values.size() == bands * frames);
  if (values.empty()) return;
  switch (norm) {
    case FeatureNorm::kNone:
      return;
    case FeatureNorm::kPerFrame:
      for (size_t t = 0; t < frames; ++t) NormalizeStrided(values.data() + t, bands, frames);
      return;
    case FeatureNorm::kPerWindow:
      NormalizeStrided(values.data(), values.size(), 1);
      return;
    case FeatureNorm::kPerBandMean:
      for (size_t b = 0; b < bands; ++b) {
        float* row = values.data() + b * frames;
        double sum = 0;
        for (size_t t = 0; t < frames; ++t) sum += row[t];
        const float mean = static_cast<float>(sum / static_cast<double>(frames));
        for (size_t t = 0; t < frames; ++t) row[t] -= mean;
      }
      NormalizeStrided(values.data(), values.size(), 1);
      return;
  }
}

absl::StatusOr<std::vector<std::vector<float>>> FeatureWindows(
    const FeatureWindowOptions& options, std::span<const float> signal, bool* padded_last) {
  if (padded_last != nullptr) *padded_last = false;
  RETURN_IF_ERROR(options.Validate());
  ASSIGN_OR_RETURN(LogMelFrame frame_fn, LogMelFrame::Create(options.log_mel));
  std::vector<std::vector<float>> windows;
  const size_t n = signal.size();
  const size_t length = options.window_length;
  const size_t hop = options.window_hop;
  const size_t complete = n >= length ? (n - length) / hop + 1 : 0;
  const bool padded =
      complete == 0 ? n > 0 : n > (complete - 1) * hop + length;
  const size_t total = complete + (padded ? 1 : 0);
  if (total == 0) return windows;

  // The signal, zero-padded to the end of the last window.
  std::vector<float> x((total - 1) * hop + length, 0.0f);
  std::copy(signal.begin(), signal.end(), x.begin());

  const size_t bands = options.log_mel.num_bands;
  const size_t frame_length = options.log_mel.frame_length;
  const size_t frame_hop = options.log_mel.frame_hop;
  const size_t frames_per_window = options.frames_per_window();
  const size_t frames_per_hop = hop / frame_hop;
  const size_t num_frames = (total - 1) * frames_per_hop + frames_per_window;
  std::vector<float> frames(num_frames * bands);  // frame-major
  for (size_t j = 0; j < num_frames; ++j) {
    frame_fn.Compute(std::span<const float>(x).subspan(j * frame_hop, frame_length),
                     std::span<float>(frames).subspan(j * bands, bands));
  }

  windows.reserve(total);
  for (size_t i = 0; i < total; ++i) {
    std::vector<float>& w = windows.emplace_back(options.window_values());
    for (size_t t = 0; t < frames_per_window; ++t) {
      const float* f = &frames[(i * frames_per_hop + t) * bands];
      for (size_t b = 0; b < bands; ++b) w[b * frames_per_window + t] = f[b];
    }
    NormalizeWindow(options.norm, bands, frames_per_window, w);
  }
  if (padded_last != nullptr) *padded_last = padded;
  return windows;
}

}  // namespace wavepool::dsp
