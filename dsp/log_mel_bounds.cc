#include "dsp/log_mel_bounds.h"

#include <algorithm>
#include <cassert>
#include <cmath>
#include <limits>
#include <numbers>

#include "dsp/window_function.h"
#include "util/status_macros.h"

namespace wavepool::dsp {
namespace {

constexpr double kFloatUnit = 0x1p-24;   // float unit roundoff
constexpr double kDoubleUnit = 0x1p-53;  // double unit roundoff
constexpr float kInfF = std::numeric_limits<float>::infinity();

// Square of an interval: its exact range.
void Square(double l, double h, double* sl, double* sh) {
  const double a = l * l, b = h * h;
  *sh = std::max(a, b);
  *sl = (l <= 0 && h >= 0) ? 0 : std::min(a, b);
}

float Down(float v, int ulps) {
  for (int i = 0; i < ulps; ++i) v = std::nextafter(v, -kInfF);
  return v;
}
float Up(float v, int ulps) {
  for (int i = 0; i < ulps; ++i) v = std::nextafter(v, kInfF);
  return v;
}

// Bounds NormalizeStrided (log_mel.cc): y_i = (f_i - mean) / (std + 1e-5),
// accumulated in double there and here.
void BoundStrided(double* lo, double* hi, size_t count, size_t stride) {
  const double n = static_cast<double>(count);
  double sum_lo = 0, sum_hi = 0, max_abs = 0;
  for (size_t i = 0; i < count; ++i) {
    sum_lo += lo[i * stride];
    sum_hi += hi[i * stride];
    max_abs = std::max({max_abs, std::fabs(lo[i * stride]), std::fabs(hi[i * stride])});
  }
  // f_i - mean = (1 - 1/n) f_i - (1/n) sum_{j != i} f_j: exact interval of a linear map.
  // Stored back into lo / hi; the centre's sigma needs the f intervals, so it comes first.
  double centre_sum = 0;
  for (size_t i = 0; i < count; ++i) centre_sum += 0.5 * (lo[i * stride] + hi[i * stride]);
  const double centre_mean = centre_sum / n;
  double centre_sq = 0, radius_sq = 0;
  for (size_t i = 0; i < count; ++i) {
    const double c = 0.5 * (lo[i * stride] + hi[i * stride]) - centre_mean;
    const double r = 0.5 * (hi[i * stride] - lo[i * stride]);
    centre_sq += c * c;
    radius_sq += r * r;
  }
  double var_lo = 0, var_hi = 0;
  for (size_t i = 0; i < count; ++i) {
    double& l = lo[i * stride];
    double& h = hi[i * stride];
    const double dl = l * (1 - 1 / n) - (sum_hi - h) / n;
    const double dh = h * (1 - 1 / n) - (sum_lo - l) / n;
    l = dl;
    h = dh;
    double sl, sh;
    Square(dl, dh, &sl, &sh);
    var_lo += sl;
    var_hi += sh;
  }
  // sigma(f) = ||P f||_2 / sqrt(n) with P the centring projection (||P|| = 1),
  // so |sigma(f) - sigma(c)| <= ||f - c||_2 / sqrt(n).
  const double sigma_c = std::sqrt(centre_sq / n);
  const double lipschitz = std::sqrt(radius_sq / n);
  double sigma_lo = std::max(std::sqrt(var_lo / n), sigma_c - lipschitz);
  double sigma_hi = std::min(std::sqrt(var_hi / n), sigma_c + lipschitz);
  // The forward pass's and these sums' double rounding: 4 n u relative.
  const double rel = 4 * n * kDoubleUnit;
  sigma_lo = std::max(0.0, sigma_lo * (1 - rel) - rel * max_abs);
  sigma_hi = sigma_hi * (1 + rel) + rel * max_abs;
  const double den_lo = sigma_lo + 1e-5, den_hi = sigma_hi + 1e-5;
  const double allowance = rel * 2 * max_abs / den_lo;
  for (size_t i = 0; i < count; ++i) {
    double& l = lo[i * stride];
    double& h = hi[i * stride];
    const double yl = l >= 0 ? l / den_hi : l / den_lo;
    const double yh = h >= 0 ? h / den_lo : h / den_hi;
    l = yl - allowance;
    h = yh + allowance;
  }
}

}  // namespace

void NormalizeWindowBounds(FeatureNorm norm, size_t bands, size_t frames, std::span<double> lo,
                           std::span<double> hi) {
  assert(lo.size() == bands * frames && hi.size() == lo.size());
  if (lo.empty()) return;
  switch (norm) {
    case FeatureNorm::kNone:
      return;
    case FeatureNorm::kPerFrame:
      for (size_t t = 0; t < frames; ++t) BoundStrided(lo.data() + t, hi.data() + t, bands, frames);
      return;
    case FeatureNorm::kPerWindow:
      BoundStrided(lo.data(), hi.data(), lo.size(), 1);
      return;
    case FeatureNorm::kPerBandMean: {
      const double n = static_cast<double>(frames);
      for (size_t b = 0; b < bands; ++b) {
        double* l = lo.data() + b * frames;
        double* h = hi.data() + b * frames;
        double sum_lo = 0, sum_hi = 0;
        for (size_t t = 0; t < frames; ++t) {
          sum_lo += l[t];
          sum_hi += h[t];
        }
        // The forward pass rounds the mean to float and subtracts in float:
        // half an ulp of each, allowed as one float unit of |mean| + |result|.
        const double mean_abs = std::max(std::fabs(sum_lo), std::fabs(sum_hi)) / n;
        for (size_t t = 0; t < frames; ++t) {
          const double dl = l[t] * (1 - 1 / n) - (sum_hi - h[t]) / n;
          const double dh = h[t] * (1 - 1 / n) - (sum_lo - l[t]) / n;
          const double slack = 2 * kFloatUnit * (mean_abs + std::max(std::fabs(dl), std::fabs(dh)));
          l[t] = dl - slack;
          h[t] = dh + slack;
        }
      }
      BoundStrided(lo.data(), hi.data(), lo.size(), 1);
      return;
    }
  }
}

absl::StatusOr<LogMelBounds> LogMelBounds::Create(const FeatureWindowOptions& options) {
  RETURN_IF_ERROR(options.Validate());
  ASSIGN_OR_RETURN(MelFilterbank mel, MelFilterbank::Create(options.log_mel.mel()));
  return LogMelBounds(options, std::move(mel));
}

LogMelBounds::LogMelBounds(const FeatureWindowOptions& o, MelFilterbank mel)
    : options_(o), mel_(std::move(mel)) {
  const size_t length = o.log_mel.frame_length;
  const size_t fft = o.log_mel.fft_size;
  bins_ = fft / 2 + 1;
  // The float window the STFT uses, exactly.
  std::vector<float> w(length);
  FillWindow(o.log_mel.window, w);
  window_.assign(w.begin(), w.end());
  cos_.resize(bins_ * length);
  sin_.resize(bins_ * length);
  re_gain_.assign(bins_, 0);
  im_gain_.assign(bins_, 0);
  for (size_t k = 0; k < bins_; ++k) {
    for (size_t n = 0; n < length; ++n) {
      // (k n) mod N keeps the angle small and exact.
      const double angle = 2 * std::numbers::pi * static_cast<double>((k * n) % fft) / static_cast<double>(fft);
      const double c = window_[n] * std::cos(angle);
      const double s = -window_[n] * std::sin(angle);  // FFTW's forward sign
      cos_[k * length + n] = c;
      sin_[k * length + n] = s;
      re_gain_[k] += std::fabs(c);
      im_gain_[k] += std::fabs(s);
    }
  }
  spec_lo_.resize(bins_);
  spec_hi_.resize(bins_);
  lo_.resize(o.window_values());
  hi_.resize(o.window_values());
}

void LogMelBounds::Frame(const float* frame, double eps, float* lo, float* hi) {
  const LogMelOptions& o = options_.log_mel;
  const size_t length = o.frame_length;
  // Float FFT rounding allowance, from the largest |x w| in the box.
  double l1 = 0, l2 = 0;
  for (size_t n = 0; n < length; ++n) {
    const double a = (std::fabs(double{frame[n]}) + eps) * window_[n];
    l1 += a;
    l2 += a * a;
  }
  const double fft = static_cast<double>(o.fft_size);
  const double allowance =
      kFloatUnit * (5 * std::log2(fft) * std::sqrt(fft) * std::sqrt(l2) + 2 * l1);
  for (size_t k = 0; k < bins_; ++k) {
    const double* c = &cos_[k * length];
    const double* s = &sin_[k * length];
    double re = 0, im = 0;
    for (size_t n = 0; n < length; ++n) {
      re += frame[n] * c[n];
      im += frame[n] * s[n];
    }
    const double rr = eps * re_gain_[k] + allowance;
    const double ri = eps * im_gain_[k] + allowance;
    double re_lo, re_hi, im_lo, im_hi;
    Square(re - rr, re + rr, &re_lo, &re_hi);
    Square(im - ri, im + ri, &im_lo, &im_hi);
    // re * re + im * im in float: three roundings.
    double p_lo = (re_lo + im_lo) * (1 - 4 * kFloatUnit);
    double p_hi = (re_hi + im_hi) * (1 + 4 * kFloatUnit);
    if (!o.power) {
      p_lo = std::sqrt(p_lo) * (1 - 2 * kFloatUnit);
      p_hi = std::sqrt(p_hi) * (1 + 2 * kFloatUnit);
    }
    spec_lo_[k] = Down(static_cast<float>(p_lo), 1);
    spec_hi_[k] = Up(static_cast<float>(p_hi), 1);
    if (spec_lo_[k] < 0) spec_lo_[k] = 0;
  }
  mel_.Apply(spec_lo_, std::span<float>(lo, o.num_bands));
  mel_.Apply(spec_hi_, std::span<float>(hi, o.num_bands));
  for (size_t b = 0; b < o.num_bands; ++b) {
    lo[b] = Down(std::log(std::max(lo[b], o.log_floor)), 2);
    hi[b] = Up(std::log(std::max(hi[b], o.log_floor)), 2);
  }
}

void LogMelBounds::Compute(std::span<const float> samples, float eps, std::span<float> lower,
                           std::span<float> upper) {
  assert(samples.size() == options_.window_length);
  const size_t bands = options_.log_mel.num_bands;
  const size_t frames = options_.frames_per_window();
  assert(lower.size() == bands * frames && upper.size() == lower.size());
  // lower / upper hold one frame's bands at a time before the window is assembled.
  for (size_t t = 0; t < frames; ++t) {
    Frame(samples.data() + t * options_.log_mel.frame_hop, eps, lower.data(), upper.data());
    for (size_t b = 0; b < bands; ++b) {
      lo_[b * frames + t] = lower[b];
      hi_[b * frames + t] = upper[b];
    }
  }
  NormalizeWindowBounds(options_.norm, bands, frames, lo_, hi_);
  const bool exact = options_.norm == FeatureNorm::kNone;  // already floats
  for (size_t i = 0; i < lo_.size(); ++i) {
    lower[i] = exact ? static_cast<float>(lo_[i]) : Down(static_cast<float>(lo_[i]), 1);
    upper[i] = exact ? static_cast<float>(hi_[i]) : Up(static_cast<float>(hi_[i]), 1);
  }
}

}  // namespace wavepool::dsp
