#include "clients/shift_eval.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <ctime>
#include <map>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/numbers.h"
#include "absl/flags/flag.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "clients/ecg_data.h"
#include "clients/flags.h"
#include "dsp/log_mel.h"
#include "nn/front_end.h"
#include "nn/kernels.h"
#include "util/status_macros.h"

namespace wavepool::cli {
namespace {

using Clock = std::chrono::steady_clock;

constexpr int kMaxShiftSamples = 1 << 20;  // far beyond any window; keeps sums in int

// The TTA offsets to pool, {0} when off.
std::vector<int> TtaOffsets(const ShiftEvalOptions& o) {
  return o.tta_shifts.empty() ? std::vector<int>{0} : o.tta_shifts;
}

// Pools score rows (one per TTA offset, `classes` each) into `out`.
void Pool(const std::vector<std::vector<float>>& rows, TtaPool pool, std::vector<float>* out) {
  out->assign(rows.front().size(), pool == TtaPool::kMax ? -1.0f : 0.0f);
  for (const auto& r : rows) {
    for (size_t c = 0; c < r.size(); ++c) {
      (*out)[c] = pool == TtaPool::kMax ? std::max((*out)[c], r[c]) : (*out)[c] + r[c];
    }
  }
  if (pool == TtaPool::kAvg) {
    for (float& v : *out) v /= static_cast<float>(rows.size());
  }
}

int ArgMax(const float* row, int n) { return static_cast<int>(std::max_element(row, row + n) - row); }

// Per base shift (0 first, then options.shifts): each example's pooled class
// scores, examples x classes.
struct Predictions {
  int classes = 0;
  std::vector<int> truth;
  std::vector<std::vector<float>> scores;
  void Add(size_t shift, const std::vector<float>& pooled) {
    scores[shift].insert(scores[shift].end(), pooled.begin(), pooled.begin() + classes);
  }
  int Top(size_t shift, size_t example) const {
    return ArgMax(scores[shift].data() + example * static_cast<size_t>(classes), classes);
  }
};

ShiftEvalResult Summarise(const ShiftEvalOptions& o, const Predictions& p) {
  ShiftEvalResult r;
  r.examples = static_cast<int64_t>(p.truth.size());
  r.shifts = o.shifts;
  const size_t n = p.truth.size();
  const double denom = static_cast<double>(std::max<size_t>(1, n));
  const auto accuracy = [&](size_t s) {
    int64_t c = 0;
    for (size_t i = 0; i < n; ++i) c += p.Top(s, i) == p.truth[i] ? 1 : 0;
    return static_cast<double>(c) / denom;
  };
  r.accuracy = accuracy(0);
  double sum = 0;
  for (size_t s = 1; s < p.scores.size(); ++s) {
    int64_t same = 0;
    double change = 0;
    for (size_t i = 0; i < n; ++i) {
      const int top = p.Top(0, i);
      same += p.Top(s, i) == top ? 1 : 0;
      const size_t at = i * static_cast<size_t>(p.classes) + static_cast<size_t>(top);
      change += std::abs(double{p.scores[s][at]} - double{p.scores[0][at]});
    }
    r.consistency.push_back(static_cast<double>(same) / denom);
    r.accuracy_at_shift.push_back(accuracy(s));
    r.score_change.push_back(change / denom);
    sum += r.consistency.back();
  }
  r.mean_consistency = r.consistency.empty() ? 1.0 : sum / static_cast<double>(r.consistency.size());
  return r;
}

}  // namespace

dsp::BeatWindowOptions ShiftedBeatOptions(const dsp::BeatWindowOptions& base, int shift) {
  dsp::BeatWindowOptions o = base;
  // Whole samples: before_samples() rounds before_s * rate, so these round back exactly.
  o.before_s = static_cast<double>(base.before_samples() + shift) / base.sample_rate_hz;
  o.after_s = static_cast<double>(base.after_samples() - shift) / base.sample_rate_hz;
  return o;
}

absl::Status ShiftEvalOptions::Validate() const {
  for (int s : shifts) {
    if (s < 1 || s > kMaxShiftSamples) {
      return absl::InvalidArgumentError(
          absl::StrCat("shift ", s, " must be in [1, ", kMaxShiftSamples, "] samples"));
    }
  }
  for (int s : tta_shifts) {
    if (s < -kMaxShiftSamples || s > kMaxShiftSamples) {
      return absl::InvalidArgumentError(absl::StrCat("TTA shift ", s, " must be in [",
                                                     -kMaxShiftSamples, ", ", kMaxShiftSamples,
                                                     "] samples"));
    }
  }
  if (batch < 1) return absl::InvalidArgumentError(absl::StrCat("batch (", batch, ") must be >= 1"));
  return absl::OkStatus();
}

absl::StatusOr<std::vector<int>> ParseShiftList(const std::string& text, int min_value) {
  std::vector<int> out;
  for (absl::string_view item : absl::StrSplit(text, ',', absl::SkipWhitespace())) {
    int v = 0;
    if (!absl::SimpleAtoi(item, &v) || v < min_value || v > kMaxShiftSamples) {
      return absl::InvalidArgumentError(absl::StrCat("shift '", item, "' in '", text,
                                                     "' is not an integer in [", min_value, ", ",
                                                     kMaxShiftSamples, "]"));
    }
    out.push_back(v);
  }
  if (out.empty()) return absl::InvalidArgumentError(absl::StrCat("no shifts in '", text, "'"));
  return out;
}

std::string FormatShiftEval(const ShiftEvalOptions& options, const ShiftEvalResult& r,
                            const std::string& unit) {
  std::string s;
  std::string tta = "off";
  if (!options.tta_shifts.empty()) {
    tta = absl::StrCat(options.tta_pool == TtaPool::kMax ? "max" : "avg", " over shifts ",
                       absl::StrJoin(options.tta_shifts, ","));
  }
  absl::StrAppendFormat(&s, "%lld %s; test-time shift pooling: %s\n", static_cast<long long>(r.examples),
                        unit, tta);
  const std::string one = unit.substr(0, unit.size() - 1);
  const auto n = static_cast<double>(std::max<int64_t>(1, r.examples));
  absl::StrAppendFormat(&s,
                        "accuracy %.2f%%  cost: %lld forward passes (%.2f per %s), CPU %.3f s "
                        "(%.2f ms per %s), wall %.3f s\n",
                        100 * r.accuracy, static_cast<long long>(r.forward_passes),
                        static_cast<double>(r.forward_passes) / n, one, r.cpu_seconds,
                        1000 * r.cpu_seconds / n, one, r.seconds);
  if (r.shifts.empty()) return s;
  absl::StrAppend(&s, "shift consistency (top class unchanged when the input is delayed by s samples):\n");
  for (size_t i = 0; i < r.shifts.size(); ++i) {
    absl::StrAppendFormat(&s, "  shift %5d: consistency %6.2f%%  accuracy %6.2f%%  mean |change| of the top score %.4f\n",
                          r.shifts[i], 100 * r.consistency[i], 100 * r.accuracy_at_shift[i],
                          r.score_change[i]);
  }
  absl::StrAppendFormat(&s, "overall consistency %.2f%% (mean over %zu shifts, %d..%d samples)\n",
                        100 * r.mean_consistency, r.shifts.size(), r.shifts.front(), r.shifts.back());
  return s;
}

absl::StatusOr<std::vector<int>> ShiftsFromFlags() {
  const int max_shift = absl::GetFlag(FLAGS_max_shift);
  const int step = absl::GetFlag(FLAGS_shift_step);
  if (step < 1) return absl::InvalidArgumentError(absl::StrCat("--shift-step (", step, ") must be >= 1"));
  if (max_shift < step || max_shift > kMaxShiftSamples) {
    return absl::InvalidArgumentError(absl::StrCat("--max-shift (", max_shift, ") must be in [--shift-step (",
                                                   step, "), ", kMaxShiftSamples, "]"));
  }
  std::vector<int> shifts;
  for (int s = step; s <= max_shift; s += step) shifts.push_back(s);
  return shifts;
}

absl::StatusOr<ShiftEvalOptions> ShiftEvalOptionsFromFlags() {
  ShiftEvalOptions o;
  if (absl::GetFlag(FLAGS_shift_consistency)) {
    ASSIGN_OR_RETURN(o.shifts, ShiftsFromFlags());
  }
  const std::string tta = absl::GetFlag(FLAGS_tta_shifts);
  if (!tta.empty()) {
    absl::StatusOr<std::vector<int>> t = ParseShiftList(tta, -kMaxShiftSamples);
    if (!t.ok()) return absl::InvalidArgumentError(absl::StrCat("--tta-shifts: ", t.status().message()));
    o.tta_shifts = *std::move(t);
  }
  const std::string pool = absl::GetFlag(FLAGS_tta_pool);
  if (pool == "avg") {
    o.tta_pool = TtaPool::kAvg;
  } else if (pool == "max") {
    o.tta_pool = TtaPool::kMax;
  } else {
    return absl::InvalidArgumentError(absl::StrCat("--tta-pool '", pool, "' must be avg or max"));
  }
  RETURN_IF_ERROR(o.Validate());
  return o;
}

absl::StatusOr<ShiftEvalResult> EvalDigitShifts(const nn::Model& model,
                                                const std::vector<Clip>& clips,
                                                const ShiftEvalOptions& options) {
  RETURN_IF_ERROR(options.Validate());
  const auto& spec = model.spec();
  if (spec.labels_size() != kBackgroundLabel + 1 || spec.labels(kBackgroundLabel) != "_background_") {
    return absl::InvalidArgumentError("a digit model has 11 labels: 0..9 and _background_");
  }
  absl::StatusOr<dsp::FeatureWindowOptions> fo = nn::FeatureOptionsFromSpec(spec);
  if (!fo.ok()) return fo.status();
  nn::Workspace ws(model, options.batch);
  std::vector<float> inputs(model.input_size() * static_cast<size_t>(options.batch));
  std::vector<float> scores(model.output_size() * static_cast<size_t>(options.batch));
  const std::vector<int> tta = TtaOffsets(options);
  int64_t passes = 0;
  std::vector<float> delayed;

  // Digit scores of one clip delayed by `shift` (advanced when negative: its
  // first -shift samples dropped): the per-digit maximum over its windows of
  // the softmax probabilities (the eval rule: best digit in any window).
  const auto clip_scores = [&](const Clip& c, int shift, std::vector<float>* best) -> absl::Status {
    const size_t drop = shift < 0 ? std::min(c.samples.size(), static_cast<size_t>(-int64_t{shift})) : 0;
    delayed.assign(static_cast<size_t>(std::max(shift, 0)), 0.0f);
    delayed.insert(delayed.end(), c.samples.begin() + static_cast<long>(drop), c.samples.end());
    bool padded = false;
    auto windows = dsp::FeatureWindows(*fo, delayed, &padded);
    if (!windows.ok()) return windows.status();
    best->assign(kBackgroundLabel, 0.0f);
    for (size_t w0 = 0; w0 < windows->size(); w0 += static_cast<size_t>(options.batch)) {
      const size_t n = std::min(windows->size() - w0, static_cast<size_t>(options.batch));
      for (size_t i = 0; i < n; ++i) {
        const auto& w = (*windows)[w0 + i];
        std::copy(w.begin(), w.end(), inputs.begin() + static_cast<long>(i * model.input_size()));
      }
      model.Run(inputs.data(), static_cast<int>(n), scores.data(), ws);
      passes += static_cast<int64_t>(n);
      for (size_t i = 0; i < n; ++i) {
        float* row = scores.data() + i * model.output_size();
        if (!model.outputs_probabilities()) nn::Softmax(model.output_size(), row);
        for (int d = 0; d < kBackgroundLabel; ++d) (*best)[d] = std::max((*best)[d], row[d]);
      }
    }
    return absl::OkStatus();
  };

  Predictions p;
  p.classes = kBackgroundLabel;  // background is never an FSDD clip's answer
  p.scores.resize(1 + options.shifts.size());
  std::vector<std::vector<float>> rows(tta.size());
  std::vector<float> pooled;
  double seconds = 0, cpu_seconds = 0;
  int64_t base_passes = 0;
  for (const Clip& c : clips) {
    p.truth.push_back(c.digit);
    for (size_t s = 0; s < p.scores.size(); ++s) {
      const int base = s == 0 ? 0 : options.shifts[s - 1];
      const Clock::time_point start = Clock::now();
      const std::clock_t cpu_start = std::clock();
      const int64_t passes_before = passes;
      for (size_t t = 0; t < tta.size(); ++t) {
        if (absl::Status st = clip_scores(c, base + tta[t], &rows[t]); !st.ok()) return st;
      }
      Pool(rows, options.tta_pool, &pooled);
      p.Add(s, pooled);
      if (s == 0) {
        seconds += std::chrono::duration<double>(Clock::now() - start).count();
        cpu_seconds += static_cast<double>(std::clock() - cpu_start) / CLOCKS_PER_SEC;
        base_passes += passes - passes_before;
      }
    }
  }
  ShiftEvalResult r = Summarise(options, p);
  r.forward_passes = base_passes;
  r.seconds = seconds;
  r.cpu_seconds = cpu_seconds;
  return r;
}

absl::StatusOr<ShiftEvalResult> EvalEcgShifts(const nn::Model& model, const std::string& data_dir,
                                              const std::vector<std::string>& records,
                                              const ShiftEvalOptions& options) {
  RETURN_IF_ERROR(options.Validate());
  const auto& spec = model.spec();
  if (spec.kind() != v1::BEAT_WINDOWS) {
    return absl::InvalidArgumentError("EvalEcgShifts needs a BEAT_WINDOWS model");
  }
  const int classes = static_cast<int>(model.output_size());
  const dsp::BeatWindowOptions base = BeatOptionsFromSpec(spec);
  if (absl::Status st = base.Validate(); !st.ok()) return st;
  const std::vector<int> tta = TtaOffsets(options);
  // Every window offset needed: base shifts plus TTA offsets.
  std::vector<int> offsets;
  for (size_t s = 0; s <= options.shifts.size(); ++s) {
    const int b = s == 0 ? 0 : options.shifts[s - 1];
    for (int t : tta) offsets.push_back(b + t);
  }
  std::sort(offsets.begin(), offsets.end());
  offsets.erase(std::unique(offsets.begin(), offsets.end()), offsets.end());
  if (offsets.front() <= -base.before_samples()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "a shift plus TTA shift of ", offsets.front(), " samples must be > -", base.before_samples(),
        " (the window's samples before the R peak)"));
  }
  if (offsets.back() >= base.after_samples()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "a shift plus TTA shift of ", offsets.back(), " samples must be < the ",
        base.after_samples(), " samples the window reaches after the R peak"));
  }

  nn::Workspace ws(model, options.batch);
  Predictions p;
  p.classes = classes;
  p.scores.resize(1 + options.shifts.size());
  int64_t base_passes = 0;
  double seconds = 0, cpu_seconds = 0;
  for (const std::string& record : records) {
    // Softmax scores per offset, [beats x classes].
    std::map<int, std::vector<float>> by_offset;
    std::vector<int> labels;
    std::vector<int64_t> r_ref;
    for (int off : offsets) {
      const Clock::time_point start = Clock::now();
      const std::clock_t cpu_start = std::clock();
      absl::StatusOr<RecordBeats> rb = LoadRecordBeats(data_dir, record, ShiftedBeatOptions(base, off));
      if (!rb.ok()) return rb.status();
      if (off == offsets.front()) {
        labels = rb->label;
        r_ref = rb->r_sample;
      } else if (rb->r_sample != r_ref) {
        return absl::InternalError(absl::StrCat("record ", record, ": the beats detected with a ",
                                                off, "-sample window shift differ"));
      }
      std::vector<float>& sc = by_offset[off];
      sc.resize(rb->beats() * static_cast<size_t>(classes));
      for (size_t b0 = 0; b0 < rb->beats(); b0 += static_cast<size_t>(options.batch)) {
        const int n = static_cast<int>(std::min<size_t>(options.batch, rb->beats() - b0));
        model.Run(rb->features.data() + b0 * rb->values_per_beat, n,
                  sc.data() + b0 * static_cast<size_t>(classes), ws);
        for (int i = 0; i < n; ++i) {
          float* row = sc.data() + (b0 + static_cast<size_t>(i)) * static_cast<size_t>(classes);
          if (!model.outputs_probabilities()) nn::Softmax(static_cast<size_t>(classes), row);
        }
      }
      // The unshifted TTA offsets are what a deployment pays for.
      if (std::find(tta.begin(), tta.end(), off) != tta.end()) {
        seconds += std::chrono::duration<double>(Clock::now() - start).count();
        cpu_seconds += static_cast<double>(std::clock() - cpu_start) / CLOCKS_PER_SEC;
        base_passes += static_cast<int64_t>(rb->beats());
      }
    }
    std::vector<std::vector<float>> rows(tta.size());
    std::vector<float> pooled;
    for (size_t b = 0; b < labels.size(); ++b) {
      if (labels[b] < 0) continue;  // a false detection: no class to compare with
      p.truth.push_back(labels[b]);
      for (size_t s = 0; s < p.scores.size(); ++s) {
        const int shift = s == 0 ? 0 : options.shifts[s - 1];
        for (size_t t = 0; t < tta.size(); ++t) {
          const float* row = by_offset[shift + tta[t]].data() + b * static_cast<size_t>(classes);
          rows[t].assign(row, row + classes);
        }
        Pool(rows, options.tta_pool, &pooled);
        p.Add(s, pooled);
      }
    }
  }
  ShiftEvalResult r = Summarise(options, p);
  r.forward_passes = base_passes;
  r.seconds = seconds;
  r.cpu_seconds = cpu_seconds;
  return r;
}

}  // namespace wavepool::cli
