// ECG filtering and streaming R-peak detection; docs/ecg_detection.md has the
// derivations, the measured responses and the MIT-BIH DS1 results.
//
// Both streaming classes process one sample at a time with fixed-size rings
// sized at Create, so the work done (and every output bit) depends only on the
// samples, never on how they are chunked, and Push never allocates.
#include "dsp/qrs_detector.h"

#include <algorithm>
#include <cstring>
#include <cmath>
#include <cstddef>
#include <numbers>
#include <string>
#include <tuple>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "util/status_macros.h"

namespace wavepool::dsp {
namespace {

constexpr double kMinRateHz = 125;
constexpr double kMaxRateHz = 1000;

absl::Status ValidateRate(double rate) {
  if (!(rate >= kMinRateHz && rate <= kMaxRateHz)) {
    return absl::InvalidArgumentError(
        absl::StrCat("sample_rate_hz (", rate, ") must be between ", kMinRateHz, " and ",
                     kMaxRateHz, " Hz: the filters are designed from the rate for that range"));
  }
  return absl::OkStatus();
}

int64_t Samples(double ms, double rate) { return std::llround(ms * rate / 1000.0); }

// A ring addressed by absolute sample index (index & mask); capacity is a power
// of two so that negative indices (the primed history before sample 0) wrap.
template <typename T>
class Ring {
 public:
  explicit Ring(int64_t min_capacity) {
    size_t c = 1;
    while (c < static_cast<size_t>(min_capacity)) c <<= 1;
    data_.assign(c, T{});
    mask_ = c - 1;
  }
  T& operator[](int64_t i) { return data_[static_cast<uint64_t>(i) & mask_]; }
  T operator[](int64_t i) const { return data_[static_cast<uint64_t>(i) & mask_]; }
  void Fill(T v) { std::fill(data_.begin(), data_.end(), v); }

 private:
  std::vector<T> data_;
  uint64_t mask_ = 0;
};

// Replaces a non-finite sample with the last finite one (0 before any): a NaN
// would otherwise poison the running sums and the medians' ordering forever.
float Sanitize(float x, float& last_finite) {
  if (std::isfinite(x)) {
    last_finite = x;
    return x;
  }
  return last_finite;
}

// ---------------------------------------------------------------------------
// StreamingEcgFilter: baseline = median(median(x, 200 ms), 600 ms) (de Chazal,
// O'Dwyer & Reilly 2004), subtracted from x, then a linear-phase low-pass.

// Sliding median over an odd width: a ring of the window in arrival order plus
// the same values kept sorted. Each sample replaces the oldest value by one
// shift run through the sorted array: O(width), no allocation.
class SlidingMedian {
 public:
  explicit SlidingMedian(int64_t width)
      : ring_(static_cast<size_t>(width)), sorted_(static_cast<size_t>(width)) {}
  void Fill(float v) {
    std::fill(ring_.begin(), ring_.end(), v);
    std::fill(sorted_.begin(), sorted_.end(), v);
    pos_ = 0;
  }
  float Push(float v) {
    const float old = ring_[pos_];
    ring_[pos_] = v;
    if (++pos_ == ring_.size()) pos_ = 0;
    // Remove `old` and insert `v` by one block move between their positions
    // (memmove runs wide; the element-by-element loop it replaces was the
    // filter's hot spot). Same sorted array, so the same median, bit for bit.
    float* s = sorted_.data();
    const size_t n = sorted_.size();
    size_t i = static_cast<size_t>(std::lower_bound(s, s + n, old) - s);
    if (v > old) {
      // Elements in (i, j) are < v: shift them down by one.
      const size_t j = static_cast<size_t>(std::lower_bound(s + i + 1, s + n, v) - s);
      std::memmove(s + i, s + i + 1, (j - i - 1) * sizeof(float));
      i = j - 1;
    } else {
      // Elements in [k, i) are > v: shift them up by one.
      const size_t k = static_cast<size_t>(std::upper_bound(s, s + i, v) - s);
      std::memmove(s + k + 1, s + k, (i - k) * sizeof(float));
      i = k;
    }
    sorted_[i] = v;
    return sorted_[sorted_.size() / 2];
  }

 private:
  std::vector<float> ring_, sorted_;
  size_t pos_ = 0;
};

// Hamming-windowed sinc, 2*half+1 taps, unit DC gain (linear phase, delay half).
std::vector<double> LowPassTaps(double cutoff_hz, double rate, int64_t half) {
  std::vector<double> taps(static_cast<size_t>(2 * half + 1));
  const double fc = cutoff_hz / rate;
  double sum = 0;
  for (int64_t i = -half; i <= half; ++i) {
    const double sinc =
        i == 0 ? 2 * fc : std::sin(2 * std::numbers::pi * fc * i) / (std::numbers::pi * i);
    const double w = 0.54 + 0.46 * std::cos(std::numbers::pi * i / (half + 1));
    taps[static_cast<size_t>(i + half)] = sinc * w;
    sum += sinc * w;
  }
  for (double& t : taps) t /= sum;
  return taps;
}

// 200 ms and 600 ms medians as de Chazal et al. 2004. Their low-pass had its
// -3 dB point at 35 Hz; a Hamming sinc cut at 37.5 Hz with 2 x 80 ms of taps
// puts it at 35.0-35.2 Hz at every rate from 125 to 1000 Hz and keeps all of
// 48 Hz and up (mains at 50 and 60 Hz) 50 dB down.
constexpr double kMedian1HalfMs = 100;
constexpr double kMedian2HalfMs = 300;
constexpr double kLowPassHalfMs = 80;
constexpr double kLowPassCutoffHz = 37.5;
constexpr size_t kOutputBlock = 256;

class EcgFilterImpl final : public StreamingEcgFilter {
 public:
  explicit EcgFilterImpl(double rate)
      : h1_(Samples(kMedian1HalfMs, rate)),
        h2_(Samples(kMedian2HalfMs, rate)),
        hl_(Samples(kLowPassHalfMs, rate)),
        median1_(2 * h1_ + 1),
        median2_(2 * h2_ + 1),
        x_delay_(h1_ + h2_ + 1),
        y_ring_(2 * hl_ + 1),
        taps_(LowPassTaps(kLowPassCutoffHz, rate, hl_)),
        out_(kOutputBlock) {}

  void Push(std::span<const float> samples_mv, OutputFn on_output) override {
    for (float x : samples_mv) Step(Sanitize(x, last_finite_), on_output);
    Flush(on_output);
  }

  void Finish(OutputFn on_output) override {
    if (started_) {
      const float last = last_input_;
      for (int64_t i = 0; i < delay_samples(); ++i) Step(last, on_output);
      Flush(on_output);
    }
    started_ = false;
    n_ = 0;
    last_finite_ = 0;
  }

  int64_t delay_samples() const override { return h1_ + h2_ + hl_; }
  double linf_gain() const override {
    double sum = 0;
    for (double t : taps_) sum += std::fabs(t);
    return 2 * sum;
  }

 private:
  void Step(float x, OutputFn on_output) {
    if (!started_) {
      // The signal before sample 0 is taken to equal sample 0, so the start-up
      // outputs are exactly 0 rather than a step response.
      median1_.Fill(x);
      median2_.Fill(x);
      x_delay_.Fill(x);
      y_ring_.Fill(0);
      started_ = true;
    }
    last_input_ = x;
    const float m1 = median1_.Push(x);         // median at n - h1
    const float baseline = median2_.Push(m1);  // at n - h1 - h2
    const float centred = x_delay_[n_ - h1_ - h2_];
    x_delay_[n_] = x;
    y_ring_[n_] = centred - baseline;
    double acc = 0;
    for (size_t i = 0; i < taps_.size(); ++i)
      acc += taps_[i] * y_ring_[n_ - static_cast<int64_t>(i)];
    ++n_;
    out_[out_size_++] = static_cast<float>(acc);
    if (out_size_ == out_.size()) Flush(on_output);
  }

  void Flush(OutputFn on_output) {
    if (out_size_ == 0) return;
    on_output(std::span<const float>(out_.data(), out_size_));
    out_size_ = 0;
  }

  const int64_t h1_, h2_, hl_;
  SlidingMedian median1_, median2_;
  Ring<float> x_delay_;
  Ring<float> y_ring_;
  const std::vector<double> taps_;
  std::vector<float> out_;
  size_t out_size_ = 0;
  bool started_ = false;
  int64_t n_ = 0;
  float last_input_ = 0, last_finite_ = 0;
};

// ---------------------------------------------------------------------------
// StreamingQrsDetector.

// Every constant of the detector, set once for all of MIT-BIH DS1 (never per
// record); docs/ecg_detection.md gives the scans behind the tuned ones. Times
// in ms become samples at Create, so the design holds from 125 to 1000 Hz.
struct DetectorTuning {
  // Pan & Tompkins 1985: low-pass (two 30 ms moving averages), high-pass (x
  // minus its 161 ms moving average), five-point derivative with taps 5 ms
  // apart, squaring, moving-window integration over 151 ms.
  double lp_ms = 30;
  double hp_half_ms = 80;
  double deriv_step_ms = 5;
  double mwi_half_ms = 75;
  double lookahead_ms = 250;        // preferred look-ahead, cut to fit max_delay_s
  double min_lookahead_ms = 200;    // HT's 200 ms hold; below this Create refuses max_delay_s
  double bigger_peak_ms = 240;      // tuned: a larger peak this close behind supersedes a candidate
  double refractory_ms = 200;       // PT
  double t_wave_ms = 360;           // PT: slope test for candidates 200-360 ms after a beat...
  double t_wave_slope_ratio = 0.5;  // ...rejecting slopes below half the QRS slope
  double r_search_ms = 50;          // R peak: largest band-passed deflection within +-50 ms
  double threshold_fraction = 0.3125;  // Hamilton & Tompkins 1986: n + 0.3125 (q - n)
  double search_back_fraction = 0.5;   // PT: search-back takes peaks above half the threshold
  double search_back_rr = 0.8;         // tuned: ...at least 0.8 mean RR after the last beat
  double search_back_min_ms = 360;     // HT: never a peak young enough to be a T wave
  double reset_s = 8;                  // HT: re-learn after 8 s without a beat
  double min_rms_slope = 2;  // mV/s: no beat below; the tests' beat is lost below R 0.15 mV
};

constexpr int kHistory = 8;  // peaks and RR intervals averaged (PT, HT)

struct DetectorLayout {
  int64_t n_lp, h_hp, k_deriv, h_mwi;
  int64_t d_hp, d_deriv, d_mwi;  // alignment offsets of each stage
  int64_t lookahead, bigger_peak, r_search;
  int64_t delay;  // d_mwi + lookahead + r_search
};

absl::StatusOr<DetectorLayout> MakeLayout(const QrsDetectorOptions& o, const DetectorTuning& t) {
  RETURN_IF_ERROR(ValidateRate(o.sample_rate_hz));
  if (!(o.max_delay_s > 0 && o.max_delay_s <= 0.5)) {
    return absl::InvalidArgumentError(
        absl::StrCat("max_delay_s (", o.max_delay_s, ") must be > 0 and <= 0.5"));
  }
  const double rate = o.sample_rate_hz;
  DetectorLayout l;
  l.n_lp = std::max<int64_t>(1, Samples(t.lp_ms, rate));
  l.h_hp = Samples(t.hp_half_ms, rate);
  l.k_deriv = std::max<int64_t>(1, Samples(t.deriv_step_ms, rate));
  l.h_mwi = Samples(t.mwi_half_ms, rate);
  l.d_hp = l.n_lp - 1 + l.h_hp;
  l.d_deriv = l.d_hp + 2 * l.k_deriv;
  l.d_mwi = l.d_deriv + l.h_mwi;
  l.r_search = Samples(t.r_search_ms, rate);
  const int64_t budget = static_cast<int64_t>(std::floor(o.max_delay_s * rate + 1e-9));
  const int64_t min_lookahead = Samples(t.min_lookahead_ms, rate);
  l.lookahead = std::min(Samples(t.lookahead_ms, rate), budget - l.d_mwi - l.r_search);
  if (l.lookahead < min_lookahead) {
    const double need = static_cast<double>(l.d_mwi + l.r_search + min_lookahead) / rate;
    return absl::InvalidArgumentError(
        absl::StrCat("max_delay_s (", o.max_delay_s, ") must be >= ", need, " at ", rate,
                     " Hz: the band-pass, the 150 ms integrator, the R search and a ",
                     t.min_lookahead_ms, " ms look-ahead need that long"));
  }
  l.bigger_peak = std::min(Samples(t.bigger_peak_ms, rate), l.lookahead);
  l.delay = l.d_mwi + l.lookahead + l.r_search;
  return l;
}

// Mean or median of the first n values of a small array.
double Estimate(const double* v, int n, bool median) {
  if (n == 0) return 0;
  double tmp[kHistory];
  std::copy(v, v + n, tmp);
  if (!median) {
    double s = 0;
    for (int i = 0; i < n; ++i) s += tmp[i];
    return s / n;
  }
  for (int i = 1; i < n; ++i) {  // insertion sort: at most 8 values
    for (int j = i; j > 0 && tmp[j - 1] > tmp[j]; --j) std::swap(tmp[j - 1], tmp[j]);
  }
  return n % 2 ? tmp[n / 2] : 0.5 * (tmp[n / 2 - 1] + tmp[n / 2]);
}

// The newest kHistory values, newest first.
struct History {
  double v[kHistory] = {};
  int n = 0;
  void Add(double x) {
    std::copy_backward(v, v + kHistory - 1, v + kHistory);
    v[0] = x;
    n = std::min(n + 1, kHistory);
  }
};

class QrsDetectorImpl final : public StreamingQrsDetector {
 public:
  QrsDetectorImpl(double rate, const DetectorLayout& l, const DetectorTuning& t)
      : rate_(rate),
        t_(t),
        l_(l),
        refractory_(Samples(t.refractory_ms, rate)),
        t_wave_(Samples(t.t_wave_ms, rate)),
        search_back_min_(Samples(t.search_back_min_ms, rate)),
        reset_(static_cast<int64_t>(std::llround(t.reset_s * rate))),
        x_(RingSize(l)),
        a1_(RingSize(l)),
        a2_(RingSize(l)),
        hp_(RingSize(l)),
        dv_(RingSize(l)),
        sq_(RingSize(l)),
        m_(RingSize(l)),
        // Local maxima are >= 2 samples apart: at most lookahead / 2 + 1 wait.
        queue_(l.lookahead + 8) {
    Reset();
  }

  void Push(std::span<const float> samples_mv, PeakFn on_peak) override {
    for (float x : samples_mv) Step(Sanitize(x, last_finite_), on_peak);
  }

  void Finish(PeakFn on_peak) override {
    if (started_) {
      // Run the pipeline on the last sample repeated until every candidate
      // up to the end has been decided; peaks must still lie in the input.
      limit_ = n_;
      const float last = last_input_;
      for (int64_t i = 0; i < l_.delay + 2; ++i) Step(last, on_peak);
    }
    Reset();
  }

  int64_t delay_samples() const override { return l_.delay; }

 private:
  // Every ring must reach back from the newest input to the start of the R
  // search of a candidate being decided, and over the filters' own spans.
  static int64_t RingSize(const DetectorLayout& l) {
    return l.delay + 2 * l.h_hp + 4 * l.k_deriv + 2 * l.h_mwi + 16;
  }

  struct Candidate {
    int64_t t;  // aligned sample of the integrator's local maximum
    double amp;
  };
  void Reset() {
    started_ = false;
    n_ = 0;
    limit_ = INT64_MAX;
    last_finite_ = last_input_ = 0;
    s1_ = s2_ = s3_ = s4_ = 0;
    queue_head_ = queue_tail_ = 0;
    qrs_ = noise_ = rr_ = slopes_ = History{};
    resets_ = History{};
    has_beat_ = false;
    last_t_ = 0;
    last_r_ = -1;
    last_slope_ = 0;
    max_seen_ = 0;
    second_start_ = 0;
    second_max_ = 0;
  }

  void Prime(float x0) {
    // The signal before sample 0 equals sample 0: no start-up transient.
    x_.Fill(x0);
    a1_.Fill(x0);
    a2_.Fill(x0);
    hp_.Fill(0);
    dv_.Fill(0);
    sq_.Fill(0);
    m_.Fill(0);
    const double l1 = static_cast<double>(l_.n_lp);
    s1_ = s2_ = l1 * x0;
    s3_ = static_cast<double>(2 * l_.h_hp + 1) * x0;
    s4_ = 0;
    started_ = true;
  }

  double HpAt(int64_t t) const { return hp_[t + l_.d_hp]; }
  double DvAt(int64_t t) const { return dv_[t + l_.d_deriv]; }
  double MAt(int64_t t) const { return m_[t + l_.d_mwi]; }

  void Step(float x, PeakFn on_peak) {
    if (!started_) Prime(x);
    last_input_ = x;
    const int64_t n = n_++;
    const int64_t l1 = l_.n_lp, l2 = 2 * l_.h_hp + 1, k = l_.k_deriv;
    // Low-pass: two moving averages of l1 (PT's (1 - z^-6)^2 / (1 - z^-1)^2).
    s1_ += x - x_[n - l1];
    x_[n] = x;
    const double a1 = s1_ / l1;
    s2_ += a1 - a1_[n - l1];
    a1_[n] = a1;
    const double a2 = s2_ / l1;
    // High-pass: centre sample minus the l2 moving average (PT's all-pass minus low-pass).
    s3_ += a2 - a2_[n - l2];
    a2_[n] = a2;
    hp_[n] = a2_[n - l_.h_hp] - s3_ / l2;
    // PT five-point derivative, scaled to mV/s for a ramp.
    const double dv = (2 * (hp_[n] - hp_[n - 4 * k]) + (hp_[n - k] - hp_[n - 3 * k])) * rate_ /
                      (10.0 * static_cast<double>(k));
    dv_[n] = std::abs(dv);
    sq_[n] = dv * dv;
    s4_ += sq_[n] - sq_[n - (2 * l_.h_mwi + 1)];
    m_[n] = std::max(0.0, s4_) / static_cast<double>(2 * l_.h_mwi + 1);

    const int64_t tm = n - l_.d_mwi;  // aligned time of the newest integrator sample
    max_seen_ = std::max(max_seen_, std::sqrt(m_[n]));
    const double prev = MAt(tm - 1);
    if (prev > MAt(tm - 2) && prev >= MAt(tm)) {
      // Thresholds act on the RMS derivative (mV/s), sqrt of PT's integral:
      // half the dynamic range in dB, so a run of large ectopic beats no longer
      // lifts the threshold above the normal beats that follow (DS1: 313 -> 82
      // missed beats).
      queue_[queue_tail_++] = {tm - 1, std::sqrt(prev)};
    }
    while (queue_head_ < queue_tail_ && queue_[queue_head_].t + l_.lookahead <= tm) {
      Decide(on_peak);
      ++queue_head_;
    }
  }

  double Threshold() const {
    // HT: medians of the last 8 QRS and noise peaks; before the first beat the
    // largest peak so far stands in for the QRS level.
    const double q = qrs_.n ? Estimate(qrs_.v, qrs_.n, true) : max_seen_;
    const double nz = Estimate(noise_.v, noise_.n, true);
    return nz + t_.threshold_fraction * (q - nz);
  }

  void Decide(PeakFn on_peak) {
    const Candidate c = queue_[queue_head_];
    // Only one QRS per 200 ms: a larger peak close behind supersedes this one.
    for (int64_t i = queue_head_ + 1; i < queue_tail_ && queue_[i].t <= c.t + l_.bigger_peak; ++i) {
      if (queue_[i].amp > c.amp) return;
    }
    if (has_beat_ && c.t - last_t_ < refractory_) return;
    TrackSeconds(c);
    double slope = 0;
    for (int64_t i = c.t - l_.h_mwi; i <= c.t + l_.h_mwi; ++i) slope = std::max(slope, DvAt(i));
    const double threshold = Threshold();
    // PT compare with the previous beat's slope; after a small premature beat
    // that lets its T wave through, so the median of the last 8 slopes is a floor.
    const double ref_slope = std::max(last_slope_, Estimate(slopes_.v, slopes_.n, true));
    const bool t_wave =
        has_beat_ && c.t - last_t_ < t_wave_ && slope < t_.t_wave_slope_ratio * ref_slope;
    // An absolute floor (as OSEA's 150 uV minimum): without it, noise on a flat
    // start or after a lead-off becomes beats once the 8 s reset scales the
    // threshold down to it.
    const bool floor_ok = c.amp >= t_.min_rms_slope;
    bool beat = floor_ok && !t_wave && c.amp >= threshold;
    if (!beat && floor_ok && !t_wave && rr_.n > 0 && c.amp >= t_.search_back_fraction * threshold &&
        c.t - last_t_ >= search_back_min_) {
      // Bounded search-back. PT look back once an RR gap exceeds 1.66 mean RR,
      // for the largest peak above half the threshold; a detector that must
      // report within max_delay_s cannot wait that long, so a candidate above
      // half the threshold that is the largest in its look-ahead and comes at
      // least 0.8 mean RR after the last beat is taken at its deadline.
      const double rr_mean = Estimate(rr_.v, rr_.n, false);
      beat = static_cast<double>(c.t - last_t_) >= t_.search_back_rr * rr_mean;
    }
    if (!beat) {
      noise_.Add(c.amp);
      return;
    }
    qrs_.Add(c.amp);
    if (has_beat_) rr_.Add(static_cast<double>(c.t - last_t_));
    has_beat_ = true;
    last_t_ = c.t;
    last_slope_ = slope;
    slopes_.Add(slope);
    second_start_ = c.t;
    second_max_ = 0;
    resets_ = History{};
    // The R peak: the largest band-passed deflection near the integrator's peak.
    int64_t r = c.t - l_.r_search;
    for (int64_t i = r + 1; i <= c.t + l_.r_search; ++i) {
      if (std::abs(HpAt(i)) > std::abs(HpAt(r))) r = i;
    }
    r = std::max<int64_t>(r, 0);
    if (r > last_r_ && r < limit_) {
      last_r_ = r;
      on_peak(r);
    }
  }

  // HT: if 8 s pass without a beat, the QRS estimate restarts from the largest
  // peak of each of those seconds, and noise and RR from nothing.
  void TrackSeconds(const Candidate& c) {
    const auto second = static_cast<int64_t>(std::llround(rate_));
    while (c.t - second_start_ >= second) {
      resets_.Add(second_max_);
      second_max_ = 0;
      second_start_ += second;
      if (resets_.n == kHistory && c.t - last_t_ >= reset_) {
        qrs_ = resets_;
        noise_ = rr_ = resets_ = History{};
      }
    }
    second_max_ = std::max(second_max_, c.amp);
  }

  const double rate_;
  const DetectorTuning t_;
  const DetectorLayout l_;
  const int64_t refractory_, t_wave_, search_back_min_, reset_;
  Ring<double> x_, a1_, a2_, hp_, dv_, sq_, m_;
  Ring<Candidate> queue_;  // candidates awaiting their look-ahead: [head, tail)
  int64_t queue_head_ = 0, queue_tail_ = 0;
  bool started_ = false;
  int64_t n_ = 0, limit_ = INT64_MAX;
  float last_finite_ = 0, last_input_ = 0;
  double s1_ = 0, s2_ = 0, s3_ = 0, s4_ = 0;
  History qrs_, noise_, rr_, resets_, slopes_;
  bool has_beat_ = false;
  int64_t last_t_ = 0, last_r_ = -1;
  double last_slope_ = 0, max_seen_ = 0;
  int64_t second_start_ = 0;
  double second_max_ = 0;
};

}  // namespace

absl::Status QrsDetectorOptions::Validate() const {
  return MakeLayout(*this, DetectorTuning{}).status();
}

absl::StatusOr<std::unique_ptr<StreamingQrsDetector>> StreamingQrsDetector::Create(
    const QrsDetectorOptions& options) {
  const DetectorTuning tuning;
  ASSIGN_OR_RETURN(const DetectorLayout layout, MakeLayout(options, tuning));
  return std::unique_ptr<StreamingQrsDetector>(
      new QrsDetectorImpl(options.sample_rate_hz, layout, tuning));
}

absl::StatusOr<std::vector<int64_t>> DetectRPeaks(std::span<const float> samples_mv,
                                                  const QrsDetectorOptions& options) {
  ASSIGN_OR_RETURN(std::unique_ptr<StreamingQrsDetector> detector,
                   StreamingQrsDetector::Create(options));
  std::vector<int64_t> peaks;
  detector->Push(samples_mv, [&](int64_t r) { peaks.push_back(r); });
  detector->Finish([&](int64_t r) { peaks.push_back(r); });
  return peaks;
}

absl::StatusOr<std::unique_ptr<StreamingEcgFilter>> StreamingEcgFilter::Create(
    double sample_rate_hz) {
  RETURN_IF_ERROR(ValidateRate(sample_rate_hz));
  return std::unique_ptr<StreamingEcgFilter>(new EcgFilterImpl(sample_rate_hz));
}

absl::StatusOr<std::vector<float>> FilterEcg(std::span<const float> samples_mv,
                                             double sample_rate_hz) {
  ASSIGN_OR_RETURN(std::unique_ptr<StreamingEcgFilter> filter,
                   StreamingEcgFilter::Create(sample_rate_hz));
  std::vector<float> out;
  out.reserve(samples_mv.size() + static_cast<size_t>(filter->delay_samples()));
  auto append = [&](std::span<const float> y) { out.insert(out.end(), y.begin(), y.end()); };
  filter->Push(samples_mv, append);
  filter->Finish(append);
  // Drop the start-up: output i + delay corresponds to input i.
  const size_t d = std::min(out.size(), static_cast<size_t>(filter->delay_samples()));
  out.erase(out.begin(), out.begin() + static_cast<std::ptrdiff_t>(d));
  return out;
}

double DetectionScore::sensitivity() const {
  const int64_t d = true_positives + false_negatives;
  return d == 0 ? 1.0 : static_cast<double>(true_positives) / static_cast<double>(d);
}

double DetectionScore::positive_predictivity() const {
  const int64_t d = true_positives + false_positives;
  return d == 0 ? 1.0 : static_cast<double>(true_positives) / static_cast<double>(d);
}

DetectionScore ScoreDetections(std::span<const int64_t> reference,
                               std::span<const int64_t> detected, double sample_rate_hz,
                               double window_s) {
  std::vector<int64_t> ref(reference.begin(), reference.end());
  std::vector<int64_t> det(detected.begin(), detected.end());
  std::sort(ref.begin(), ref.end());
  std::sort(det.begin(), det.end());
  const double window = window_s * sample_rate_hz;
  // Every (reference, detection) pair within the window, then greedily the
  // closest pair first; equal distances go to the earlier reference beat, then
  // the earlier detection, so the result is independent of input order.
  struct Pair {
    int64_t distance;
    size_t ref, det;
  };
  std::vector<Pair> pairs;
  size_t lo = 0;
  for (size_t i = 0; i < ref.size(); ++i) {
    while (lo < det.size() && static_cast<double>(ref[i] - det[lo]) > window) ++lo;
    for (size_t j = lo; j < det.size() && static_cast<double>(det[j] - ref[i]) <= window; ++j) {
      pairs.push_back({std::abs(det[j] - ref[i]), i, j});
    }
  }
  std::sort(pairs.begin(), pairs.end(), [](const Pair& a, const Pair& b) {
    return std::tie(a.distance, a.ref, a.det) < std::tie(b.distance, b.ref, b.det);
  });
  std::vector<bool> ref_used(ref.size()), det_used(det.size());
  DetectionScore s;
  for (const Pair& p : pairs) {
    if (ref_used[p.ref] || det_used[p.det]) continue;
    ref_used[p.ref] = det_used[p.det] = true;
    ++s.true_positives;
  }
  s.false_negatives = static_cast<int64_t>(ref.size()) - s.true_positives;
  s.false_positives = static_cast<int64_t>(det.size()) - s.true_positives;
  return s;
}

}  // namespace wavepool::dsp
