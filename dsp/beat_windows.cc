#include "dsp/beat_windows.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "absl/strings/str_cat.h"

namespace wavepool::dsp {
namespace {
constexpr size_t kPendingCapacity = 16;
constexpr size_t kLongRr = 300;
constexpr size_t kLocalRr = 10;
constexpr size_t kAmpBeats = 16;
constexpr double kAlignGain = 0.25;     // a shift must quarter the QRS mismatch
constexpr size_t kIrregularPairs = 32;  // RRs whose change enters rr_irregularity's median
constexpr float kInfF = std::numeric_limits<float>::infinity();
}  // namespace

int64_t BeatWindowOptions::before_samples() const {
  return static_cast<int64_t>(std::llround(before_s * sample_rate_hz));
}
int64_t BeatWindowOptions::after_samples() const {
  return static_cast<int64_t>(std::llround(after_s * sample_rate_hz));
}
int64_t BeatWindowOptions::align_samples() const {
  return static_cast<int64_t>(std::llround(align_s * sample_rate_hz));
}
size_t BeatWindowOptions::window_values() const {
  return static_cast<size_t>(channels()) * static_cast<size_t>(window_samples());
}
size_t BeatWindowOptions::internal_values() const {
  return window_values() + (lead_channel ? 0 : static_cast<size_t>(window_samples()));
}

// Messages name the spec's fields (wavepool.v1.BeatWindowSpec), which is
// where these options come from; nn::ValidateSpec reports them as they are.
absl::Status BeatWindowOptions::Validate() const {
  if (!(sample_rate_hz >= 100 && sample_rate_hz <= 1000)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "sample_rate_hz (", sample_rate_hz, ") of a BEAT_WINDOWS model must be in [100, 1000]"));
  }
  if (!(before_s > 0 && before_s <= 1) || !(after_s > 0 && after_s <= 1)) {
    return absl::InvalidArgumentError(absl::StrCat("beat_windowing.before_s (", before_s, ") and after_s (",
                                                   after_s, ") must be in (0, 1] seconds"));
  }
  if (rr_irregularity && !rr_context) {
    return absl::InvalidArgumentError(
        "beat_windowing.rr_irregularity needs rr_context: it is one of the RR channels");
  }
  if (!(align_s >= 0 && align_s <= 0.1)) {
    return absl::InvalidArgumentError(
        absl::StrCat("beat_windowing.align_s (", align_s, ") must be in [0, 0.1] seconds"));
  }
  if (align_s > 0 && !template_context) {
    return absl::InvalidArgumentError(
        "beat_windowing.align_s needs template_context: beats are aligned to the template");
  }
  if (!lead_channel && !template_context) {
    return absl::InvalidArgumentError(
        "beat_windowing.omit_lead needs template_context: without either the network sees no waveform");
  }
  return absl::OkStatus();
}

absl::StatusOr<std::unique_ptr<StreamingBeatWindows>> StreamingBeatWindows::Create(
    const BeatWindowOptions& options) {
  if (absl::Status s = options.Validate(); !s.ok()) return s;
  auto b = std::unique_ptr<StreamingBeatWindows>(new StreamingBeatWindows());
  b->options_ = options;
  QrsDetectorOptions q;
  q.sample_rate_hz = options.sample_rate_hz;
  auto detector = StreamingQrsDetector::Create(q);
  if (!detector.ok()) return detector.status();
  b->detector_ = *std::move(detector);
  auto filter = StreamingEcgFilter::Create(options.sample_rate_hz);
  if (!filter.ok()) return filter.status();
  b->filter_ = *std::move(filter);
  // The ring must reach back to r - before for a peak reported as late as the
  // detector allows, while the filtered signal may run ahead of the detector.
  const int64_t reach = options.before_samples() + options.after_samples() + 2 * options.align_samples() +
                        b->detector_->delay_samples() + b->filter_->delay_samples() +
                        static_cast<int64_t>(options.sample_rate_hz);
  b->ring_.assign(static_cast<size_t>(reach), 0.0f);
  b->pending_.resize(kPendingCapacity);
  for (Pending& p : b->pending_) {
    p.window.assign(static_cast<size_t>(options.window_samples() + 2 * options.align_samples()), 0);
  }
  b->template_.assign(static_cast<size_t>(options.window_samples()), 0.0f);
  b->rr_ring_.assign(kLongRr, 0.0);
  b->amp_ring_.assign(kAmpBeats, 0.0f);
  b->scratch_.reserve(std::max(kAmpBeats, kIrregularPairs));
  b->window_.assign(options.internal_values(), 0.0f);
  b->template_ring_.assign(kAmpBeats * static_cast<size_t>(options.window_samples()), 0.0f);
  return b;
}

int64_t StreamingBeatWindows::ready_delay_samples() const {
  return std::max(detector_->delay_samples(),
                  filter_->delay_samples() + options_.after_samples() + options_.align_samples());
}

void StreamingBeatWindows::OnPeak(int64_t r) {
  if (pending_size_ == kPendingCapacity) return;  // cannot happen: EmitReady drains first
  Pending& p = pending_[(pending_head_ + pending_size_) % kPendingCapacity];
  p.r = r;
  p.ready = false;
  ++pending_size_;
}

void StreamingBeatWindows::OnFiltered(std::span<const float> filtered) {
  // Filter output k is input sample k - delay: the first `delay` outputs are the
  // filter's start-up and belong to no input sample.
  const size_t cap = ring_.size();
  const int64_t delay = filter_->delay_samples();
  for (float v : filtered) {
    if (filter_outputs_++ < delay) continue;
    ring_[static_cast<size_t>(filtered_count_ % static_cast<int64_t>(cap))] = v;
    ++filtered_count_;
  }
}

void StreamingBeatWindows::Snapshot(bool finishing) {
  const int64_t align = options_.align_samples();
  const int64_t before = options_.before_samples() + align, len = options_.window_samples() + 2 * align;
  const int64_t cap = static_cast<int64_t>(ring_.size());
  for (size_t i = 0; i < pending_size_; ++i) {
    Pending& p = pending_[(pending_head_ + i) % kPendingCapacity];
    if (p.ready) continue;
    const int64_t start = p.r - before;
    if (!finishing && start + len > filtered_count_) continue;
    for (int64_t k = 0; k < len; ++k) {
      const int64_t t = start + k;
      const bool have = t >= 0 && t < filtered_count_ && t >= filtered_count_ - cap;
      p.window[static_cast<size_t>(k)] = have ? ring_[static_cast<size_t>(t % cap)] : 0.0f;
    }
    p.ready = true;
  }
}

void StreamingBeatWindows::EmitFront(BeatFn on_beat) {
  Pending& p = pending_[pending_head_];
  const size_t template_before = template_count_;
  const double rate = options_.sample_rate_hz;
  const bool has_next = pending_size_ > 1;
  Beat beat;
  beat.r_sample = p.r;
  beat.rr_prev_s = last_emitted_r_ >= 0 ? static_cast<double>(p.r - last_emitted_r_) / rate : 0;
  beat.rr_next_s =
      has_next ? static_cast<double>(pending_[(pending_head_ + 1) % kPendingCapacity].r - p.r) / rate
               : 0;
  if (beat.rr_prev_s > 0) {
    rr_ring_[rr_count_ % kLongRr] = beat.rr_prev_s;
    ++rr_count_;
  }
  // Amplitude scale: median |filtered at R| over this beat and up to 15 before.
  const int64_t before = options_.before_samples(), align = options_.align_samples();
  amp_ring_[amp_count_ % kAmpBeats] = std::abs(p.window[static_cast<size_t>(before + align)]);
  ++amp_count_;
  scratch_.assign(amp_ring_.begin(), amp_ring_.begin() + static_cast<long>(std::min(amp_count_, kAmpBeats)));
  std::nth_element(scratch_.begin(), scratch_.begin() + static_cast<long>(scratch_.size() / 2),
                   scratch_.end());
  float scale = scratch_[scratch_.size() / 2];
  if (!(scale > 1e-3f)) scale = 1.0f;  // a flat lead: keep millivolts
  const int64_t len = options_.window_samples();
  const size_t have = std::min(template_count_, kAmpBeats);
  if (options_.template_context && have > 0) {
    // The template: per-sample median of the previous (up to) 16 beats' windows.
    for (int64_t k = 0; k < len; ++k) {
      scratch_.clear();
      for (size_t j = 0; j < have; ++j) scratch_.push_back(template_ring_[j * static_cast<size_t>(len) + static_cast<size_t>(k)]);
      std::nth_element(scratch_.begin(), scratch_.begin() + static_cast<long>(have / 2), scratch_.end());
      template_[static_cast<size_t>(k)] = scratch_[have / 2];
    }
  }
  // Alignment: the shift in [-align, align] whose QRS best matches the
  // template, trying 0, -1, +1, -2, ... so the smallest wins a tie.
  int64_t shift = 0;
  if (align > 0 && have > 0) {
    const int64_t q0 = std::max<int64_t>(0, before - std::llround(0.06 * options_.sample_rate_hz));
    const int64_t q1 = std::min<int64_t>(len, before + std::llround(0.08 * options_.sample_rate_hz));
    double best = std::numeric_limits<double>::infinity(), unmoved = 0;
    for (int64_t step = 0; step <= 2 * align; ++step) {
      const int64_t s = step % 2 ? -(step + 1) / 2 : step / 2;
      double cost = 0;
      for (int64_t k = q0; k < q1; ++k) {
        const double d = p.window[static_cast<size_t>(k + align + s)] / scale - template_[static_cast<size_t>(k)];
        cost += d * d;
      }
      if (step == 0) unmoved = cost;
      if (cost < best) best = cost, shift = s;
    }
    // Only a move that at least quarters the mismatch: the same beat found at
    // another fiducial point, not a different beat (a ventricular one) pulled
    // towards the template.
    if (best > kAlignGain * unmoved) shift = 0;
  }
  for (int64_t k = 0; k < len; ++k) {
    window_[static_cast<size_t>(k)] = p.window[static_cast<size_t>(k + align + shift)] / scale;
  }
  int channel = 1;
  if (options_.template_context) {
    // Beat minus the template (0 for the first beat); then this beat, as
    // moved, joins the ring.
    float* dev = window_.data() + len;
    for (int64_t k = 0; k < len; ++k) {
      dev[k] = have == 0 ? 0.0f : window_[static_cast<size_t>(k)] - template_[static_cast<size_t>(k)];
    }
    std::copy(window_.begin(), window_.begin() + len,
              template_ring_.begin() + static_cast<long>((template_count_ % kAmpBeats) * static_cast<size_t>(len)));
    ++template_count_;
    channel = 2;
  }
  if (options_.rr_context) {
    const size_t n_long = std::min(rr_count_, kLongRr), n_local = std::min(rr_count_, kLocalRr);
    double long_sum = 0, local_sum = 0;
    for (size_t i = 0; i < n_long; ++i) {
      const double v = rr_ring_[(rr_count_ - 1 - i) % kLongRr];
      long_sum += v;
      if (i < n_local) local_sum += v;
    }
    double long_mean = n_long ? long_sum / static_cast<double>(n_long) : 0;
    double local_mean = n_local ? local_sum / static_cast<double>(n_local) : 0;
    if (long_mean <= 0) long_mean = beat.rr_next_s > 0 ? beat.rr_next_s : 1.0;
    if (local_mean <= 0) local_mean = long_mean;
    const double prev = beat.rr_prev_s > 0 ? beat.rr_prev_s : local_mean;
    const double next = beat.rr_next_s > 0 ? beat.rr_next_s : local_mean;
    float values[5];
    if (options_.rr_irregularity) {
      // For each of the last kIrregularPairs RRs that has three before it:
      // min over lag 1..3 of |log(RR_m / RR_{m-lag})|, then their median.
      const size_t usable = n_long > 3 ? std::min(n_long - 3, kIrregularPairs) : 0;
      scratch_.clear();
      for (size_t i = 0; i < usable; ++i) {
        const double later = rr_ring_[(rr_count_ - 1 - i) % kLongRr];
        double change = std::numeric_limits<double>::infinity();
        for (size_t lag = 1; lag <= 3; ++lag) {
          change = std::min(change, std::abs(std::log(later / rr_ring_[(rr_count_ - 1 - i - lag) % kLongRr])));
        }
        scratch_.push_back(static_cast<float>(change));
      }
      float median = 0.03f;
      if (usable >= 4) {
        std::nth_element(scratch_.begin(), scratch_.begin() + static_cast<long>(usable / 2), scratch_.end());
        median = scratch_[usable / 2];
        if (usable % 2 == 0) {  // the mean of the two middle values, as numpy's median
          median = 0.5f * (median + *std::max_element(scratch_.begin(), scratch_.begin() + static_cast<long>(usable / 2)));
        }
      }
      values[4] = std::log(0.01f + median);
    }
    if (options_.rr_log_ratios) {
      values[0] = static_cast<float>(std::log(prev / local_mean));
      values[1] = static_cast<float>(std::log(next / local_mean));
      values[2] = static_cast<float>(std::log(next / prev));
      values[3] = static_cast<float>(std::log(local_mean / long_mean));
    } else {
      values[0] = static_cast<float>(prev / long_mean);
      values[1] = static_cast<float>(next / long_mean);
      values[2] = static_cast<float>(local_mean / long_mean);
      values[3] = static_cast<float>(long_mean);
    }
    for (int c = 0; c < (options_.rr_irregularity ? 5 : 4); ++c) {
      std::fill(window_.begin() + (channel + c) * len, window_.begin() + (channel + c + 1) * len,
                values[c]);
    }
  }
  const size_t skip = window_.size() - options_.window_values();  // the lead when omitted
  beat.features = std::span<const float>(window_).subspan(skip);
  if (bounds_) {
    EmitBounds(p, template_before, shift);
    beat.lower = std::span<const float>(lower_).subspan(skip);
    beat.upper = std::span<const float>(upper_).subspan(skip);
  }
  last_emitted_r_ = p.r;
  pending_head_ = (pending_head_ + 1) % kPendingCapacity;
  --pending_size_;
  on_beat(beat);
}

absl::Status StreamingBeatWindows::EnableBounds(double eps_mv) {
  if (!std::isfinite(eps_mv) || eps_mv < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("the certification budget (", eps_mv, " mV) must be finite and >= 0"));
  }
  if (filter_outputs_ > 0 || pending_size_ > 0 || amp_count_ > 0) {
    return absl::FailedPreconditionError("EnableBounds must come before the first Push");
  }
  SetLeadRadius(eps_mv);
  const size_t len = static_cast<size_t>(options_.window_samples());
  amp_lo_ring_.assign(kAmpBeats, 0.0f);
  amp_hi_ring_.assign(kAmpBeats, 0.0f);
  template_lo_ring_.assign(kAmpBeats * len, 0.0f);
  template_hi_ring_.assign(kAmpBeats * len, 0.0f);
  lower_.assign(options_.internal_values(), 0.0f);
  upper_.assign(options_.internal_values(), 0.0f);
  bounds_ = true;
  return absl::OkStatus();
}

absl::Status StreamingBeatWindows::SetBoundsBudget(double eps_mv) {
  if (!bounds_) return absl::FailedPreconditionError("SetBoundsBudget needs EnableBounds first");
  if (!std::isfinite(eps_mv) || eps_mv < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("the certification budget (", eps_mv, " mV) must be finite and >= 0"));
  }
  SetLeadRadius(eps_mv);
  return absl::OkStatus();
}

void StreamingBeatWindows::SetLeadRadius(double eps_mv) {
  // 1e-5 mV of float rounding per unit of gain: 2^-23 of |x - baseline| < 80 mV.
  const double gain = filter_->linf_gain();
  lead_radius_ = std::nextafter(static_cast<float>((eps_mv + 1e-5) * gain * (1 + 1e-6)), kInfF);
}

void StreamingBeatWindows::EmitBounds(const Pending& p, size_t template_before, int64_t shift) {
  const size_t len = static_cast<size_t>(options_.window_samples());
  const size_t align = static_cast<size_t>(options_.align_samples());
  const size_t before = static_cast<size_t>(options_.before_samples()) + align;
  // The beat as moved by the alignment (the shift is taken as found: the
  // stated assumption, like the R peaks).
  const float* w = p.window.data() + static_cast<int64_t>(align) + shift;
  const float r = lead_radius_;
  // This beat's |filtered at R| interval joins the ring EmitFront just updated.
  const size_t slot = (amp_count_ - 1) % kAmpBeats;
  const float at_r = std::abs(p.window[before]);
  amp_lo_ring_[slot] = std::max(0.0f, std::nextafter(at_r - r, -kInfF));
  amp_hi_ring_[slot] = std::nextafter(at_r + r, kInfF);
  const size_t n_amp = std::min(amp_count_, kAmpBeats);
  auto median = [&](const std::vector<float>& ring, size_t count, size_t stride, size_t offset) {
    scratch_.clear();
    for (size_t j = 0; j < count; ++j) scratch_.push_back(ring[j * stride + offset]);
    std::nth_element(scratch_.begin(), scratch_.begin() + static_cast<long>(count / 2), scratch_.end());
    return scratch_[count / 2];
  };
  const float scale_lo = median(amp_lo_ring_, n_amp, 1, 0);
  const float scale_hi = median(amp_hi_ring_, n_amp, 1, 0);
  float peak = 0;
  for (size_t k = 0; k < len; ++k) peak = std::max(peak, std::abs(w[k]));
  // The 1e-3 fallback to millivolts is a jump: certify only away from it.
  const bool unbounded = !(scale_lo > 1e-3f) || !(peak <= 50.0f);
  float* lo = lower_.data();
  float* hi = upper_.data();
  for (size_t k = 0; k < len; ++k) {
    if (unbounded) {
      lo[k] = -kInfF;
      hi[k] = kInfF;
      continue;
    }
    // Float division is monotone in each argument: these bound the forward
    // pass's own f / scale for every f and scale in their intervals.
    const float fl = std::nextafter(w[k] - r, -kInfF);
    const float fh = std::nextafter(w[k] + r, kInfF);
    lo[k] = fl >= 0 ? fl / scale_hi : fl / scale_lo;
    hi[k] = fh >= 0 ? fh / scale_lo : fh / scale_hi;
  }
  size_t channel = 1;
  if (options_.template_context) {
    const size_t have = std::min(template_before, kAmpBeats);
    float* dlo = lo + len;
    float* dhi = hi + len;
    for (size_t k = 0; k < len; ++k) {
      if (have == 0) {
        dlo[k] = dhi[k] = 0.0f;
        continue;
      }
      const float t_lo = median(template_lo_ring_, have, len, k);
      const float t_hi = median(template_hi_ring_, have, len, k);
      dlo[k] = lo[k] - t_hi;
      dhi[k] = hi[k] - t_lo;
    }
    const size_t at = (template_before % kAmpBeats) * len;
    std::copy(lo, lo + len, template_lo_ring_.begin() + static_cast<long>(at));
    std::copy(hi, hi + len, template_hi_ring_.begin() + static_cast<long>(at));
    channel = 2;
  }
  // RR channels: fixed by the detector (the stated assumption).
  for (size_t i = channel * len; i < window_.size(); ++i) lo[i] = hi[i] = window_[i];
}

void StreamingBeatWindows::EmitReady(bool finishing, BeatFn on_beat) {
  Snapshot(finishing);
  while (pending_size_ > 0 && pending_[pending_head_].ready &&
         (pending_size_ > 1 || finishing)) {
    EmitFront(on_beat);
  }
  // Never let the ring of pending beats fill: a beat whose next R is very late
  // (asystole) goes out with rr_next unknown rather than be lost.
  while (pending_size_ >= kPendingCapacity - 1 && pending_[pending_head_].ready) {
    EmitFront(on_beat);
  }
}

void StreamingBeatWindows::Push(std::span<const float> samples_mv, BeatFn on_beat) {
  // Feed in slices so peaks and filtered samples stay within the ring's reach
  // whatever the caller's chunk size; slicing does not change any output.
  const size_t slice = std::max<size_t>(1, static_cast<size_t>(options_.sample_rate_hz / 4));
  for (size_t i = 0; i < samples_mv.size(); i += slice) {
    const auto part = samples_mv.subspan(i, std::min(slice, samples_mv.size() - i));
    detector_->Push(part, [&](int64_t r) { OnPeak(r); });
    filter_->Push(part, [&](std::span<const float> f) { OnFiltered(f); });
    EmitReady(false, on_beat);
  }
}

void StreamingBeatWindows::Finish(BeatFn on_beat) {
  filter_->Finish([&](std::span<const float> f) { OnFiltered(f); });
  detector_->Finish([&](int64_t r) { OnPeak(r); });
  EmitReady(true, on_beat);
  Reset();
}

void StreamingBeatWindows::Reset() {
  filtered_count_ = 0;
  filter_outputs_ = 0;
  pending_head_ = pending_size_ = 0;
  last_emitted_r_ = -1;
  rr_count_ = amp_count_ = 0;
  template_count_ = 0;
}

}  // namespace wavepool::dsp
