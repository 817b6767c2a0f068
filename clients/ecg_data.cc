#include "clients/ecg_data.h"

#include <algorithm>
#include <cmath>
#include <filesystem>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "dsp/qrs_detector.h"
#include "dsp/resampler.h"
#include "dsp/wfdb.h"

namespace wavepool::cli {

int AamiIndex(char aami) {
  for (int i = 0; i < 5; ++i) {
    if (kAamiClasses[i] == aami) return i;
  }
  return -1;
}

absl::StatusOr<std::vector<std::string>> ListRecords(const std::string& dir) {
  std::error_code ec;
  std::vector<std::string> out;
  for (const auto& e : std::filesystem::directory_iterator(dir, ec)) {
    if (e.path().extension() == ".hea") out.push_back(e.path().stem().string());
  }
  if (ec) return absl::NotFoundError(absl::StrCat("cannot read ", dir, ": ", ec.message()));
  if (out.empty()) return absl::NotFoundError(absl::StrCat("no WFDB records (*.hea) in ", dir));
  std::sort(out.begin(), out.end());
  return out;
}

absl::StatusOr<std::vector<std::string>> ParseRecordSplit(const std::string& split) {
  if (split == "all") return std::vector<std::string>{};
  if (split.rfind("records:", 0) != 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        "--split \"", split, "\" for an ECG model must be all or records:NAME,NAME,..."));
  }
  std::vector<std::string> r = absl::StrSplit(split.substr(8), ',', absl::SkipEmpty());
  if (r.empty()) return absl::InvalidArgumentError("--split records: names no record");
  return r;
}

absl::StatusOr<RecordBeats> LoadRecordBeats(const std::string& dir, const std::string& record,
                                            const dsp::BeatWindowOptions& options) {
  const std::string base = dir + "/" + record;
  auto rec = dsp::ReadWfdbRecord(base + ".hea");
  if (!rec.ok()) return rec.status();
  auto ann = dsp::ReadMitAnnotations(base + ".atr");
  if (!ann.ok()) return ann.status();
  // MLII, which is the first signal in every DS1 record but 114 (V5 first).
  const int lead = rec->SignalNamed("MLII");
  std::vector<float> mv = rec->Physical(lead);
  const double in_rate = rec->header.sampling_frequency;
  const double ratio = options.sample_rate_hz / in_rate;
  if (in_rate != options.sample_rate_hz) {
    auto rs = dsp::Resampler::Create(in_rate, options.sample_rate_hz);
    if (!rs.ok()) return rs.status();
    std::vector<float> out;
    auto append = [&](std::span<const float> s) { out.insert(out.end(), s.begin(), s.end()); };
    if (auto s = (*rs)->Push(mv, append); !s.ok()) return s;
    if (auto s = (*rs)->Finish(append); !s.ok()) return s;
    mv = std::move(out);
  }
  RecordBeats rb;
  rb.record = record;
  rb.values_per_beat = options.window_values();
  auto beats = dsp::StreamingBeatWindows::Create(options);
  if (!beats.ok()) return beats.status();
  auto take = [&](const dsp::Beat& b) {
    rb.features.insert(rb.features.end(), b.features.begin(), b.features.end());
    rb.r_sample.push_back(b.r_sample);
    rb.label.push_back(-1);
  };
  (*beats)->Push(mv, take);
  (*beats)->Finish(take);

  // Reference beats (AAMI classes) at the model's rate.
  std::vector<int64_t> ref;
  std::vector<int> ref_class;
  for (const dsp::Annotation& a : *ann) {
    const int c = AamiIndex(dsp::AamiClass(a.Symbol()));
    if (c < 0) continue;
    ref.push_back(static_cast<int64_t>(std::llround(static_cast<double>(a.sample) * ratio)));
    ref_class.push_back(c);
  }
  // Greedy nearest matching within 150 ms (both lists are sorted).
  const int64_t tol = static_cast<int64_t>(std::llround(0.150 * options.sample_rate_hz));
  std::vector<bool> ref_used(ref.size(), false);
  size_t j = 0;
  for (size_t i = 0; i < rb.r_sample.size(); ++i) {
    const int64_t r = rb.r_sample[i];
    while (j < ref.size() && ref[j] < r - tol) ++j;
    int64_t best = -1, best_d = tol + 1;
    for (size_t k = j; k < ref.size() && ref[k] <= r + tol; ++k) {
      if (ref_used[k]) continue;
      const int64_t d = std::abs(ref[k] - r);
      if (d < best_d) best_d = d, best = static_cast<int64_t>(k);
    }
    if (best >= 0) {
      ref_used[static_cast<size_t>(best)] = true;
      rb.label[i] = ref_class[static_cast<size_t>(best)];
      ++rb.true_positives;
    } else {
      ++rb.false_positives;
    }
  }
  rb.reference_beats = static_cast<int64_t>(ref.size());
  for (size_t k = 0; k < ref.size(); ++k) {
    if (!ref_used[k]) {
      ++rb.false_negatives;
      ++rb.missed_class_counts[static_cast<size_t>(ref_class[k])];
    }
  }
  return rb;
}

}  // namespace wavepool::cli
