// wavepool certify MODEL_DIR --data DIR --epsilons 1e-6,1e-5 [--split S] [--plot F.svg]
// Certified robustness of a model over a data set, locally (no server): for
// each budget eps (L-infinity on the samples as the server decodes them: audio
// full scale, ECG millivolts), the fraction of windows whose top class is
// certified by interval bounds through the front end and the network, the
// fraction certified and correct, how loose the logit bounds are against the
// worst of many random perturbations, and what a window's bounds cost next to
// plain inference.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <map>
#include <random>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "clients/cli.h"
#include "clients/digit_data.h"
#include "clients/ecg_data.h"
#include "clients/flags.h"
#include "clients/svg_plot.h"
#include "dsp/beat_windows.h"
#include "dsp/log_mel_bounds.h"
#include "dsp/wfdb.h"
#include "nn/front_end.h"
#include "nn/ibp.h"
#include "nn/model.h"

ABSL_FLAG(std::string, epsilons, "1e-6,1e-5,1e-4",
          "certify: comma-separated L-infinity budgets (audio: full scale; ECG: mV)");
ABSL_FLAG(int, looseness_windows, 10, "certify: windows (beats) sampled for the looseness ratio");
ABSL_FLAG(int, looseness_trials, 64,
          "certify: random perturbations per sampled window (half sign vectors, half uniform)");
ABSL_FLAG(double, seconds, 300, "certify (ECG): seconds of each record used (0 = all)");
ABSL_DECLARE_FLAG(std::string, plot);

namespace wavepool::cli {
namespace {

using Clock = std::chrono::steady_clock;
double Seconds(Clock::time_point a) { return std::chrono::duration<double>(Clock::now() - a).count(); }

int ArgMax(const std::vector<float>& v) {
  return static_cast<int>(std::max_element(v.begin(), v.end()) - v.begin());
}

// One window (or beat) of the data set: what the front end saw and the truth.
struct Unit {
  std::vector<float> samples;   // digits: the window's samples (model rate)
  std::vector<float> features;  // nominal network input
  int label = -1;               // index into the model's labels; -1 unknown
  int top = 0;                  // nominal argmax
};

struct EpsRow {
  double eps = 0;
  size_t windows = 0, certified = 0, certified_correct = 0, correct = 0;
  double median_margin = 0;
  std::vector<double> looseness;  // per sampled window: sum (U - L) / sum (max - min)
  std::vector<double> feature_looseness;  // the same on the network's input
};

double Median(std::vector<double> v) {
  if (v.empty()) return NAN;
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

// Accumulates per-logit empirical ranges.
struct Range {
  std::vector<float> lo, hi;
  explicit Range(size_t n) : lo(n, INFINITY), hi(n, -INFINITY) {}
  void Add(const std::vector<float>& y) {
    for (size_t j = 0; j < y.size(); ++j) lo[j] = std::min(lo[j], y[j]), hi[j] = std::max(hi[j], y[j]);
  }
  double Ratio(const std::vector<float>& l, const std::vector<float>& u) const {
    double bound = 0, seen = 0;
    for (size_t j = 0; j < l.size(); ++j) bound += u[j] - l[j], seen += hi[j] - lo[j];
    return seen > 0 ? bound / seen : INFINITY;
  }
};

void Perturb(const std::vector<float>& x, double eps, int trial, std::mt19937& rng, std::vector<float>& p) {
  std::uniform_real_distribution<float> unit(-1, 1);
  p.resize(x.size());
  for (size_t n = 0; n < x.size(); ++n) {
    const float s = unit(rng);
    p[n] = x[n] + static_cast<float>(eps) * (trial % 2 == 0 ? (s < 0 ? -1.0f : 1.0f) : s);
  }
}

struct Cost {
  double plain_front_end = 0, plain_network = 0, bound_front_end = 0, bound_network = 0;
  size_t windows = 0;
};

int Report(const nn::Model& model, const std::string& data, const std::vector<EpsRow>& rows,
           const Cost& cost, const std::string& units) {
  std::printf("model %s/%lld, %s\n", model.spec().name().c_str(),
              static_cast<long long>(model.spec().version()), data.c_str());
  std::printf("%-10s %8s %10s %12s %14s %10s %12s %12s\n", "eps", "windows", "certified",
              "cert+correct", "median_margin", "accuracy", "looseness", "input_loose");
  for (const EpsRow& r : rows) {
    const double n = static_cast<double>(std::max<size_t>(r.windows, 1));
    std::printf("%-10g %8zu %10.4f %12.4f %14.4g %10.4f %12.4g %12.4g\n", r.eps, r.windows,
                r.certified / n, r.certified_correct / n, r.median_margin, r.correct / n,
                Median(r.looseness), Median(r.feature_looseness));
  }
  std::printf("looseness: median over %d sampled windows of sum(upper - lower) / sum(max - min of "
              "the logits over %d random perturbations); input_loose: the same for the network's "
              "input (front-end bounds); units of eps: %s\n",
              absl::GetFlag(FLAGS_looseness_windows), absl::GetFlag(FLAGS_looseness_trials),
              units.c_str());
  const double w = static_cast<double>(std::max<size_t>(cost.windows, 1)) / 1e3;
  std::printf("cost per window (ms, mean over %zu windows x %zu budgets, one thread): plain front "
              "end %.3f, network %.3f; bounds: front end %.3f, network %.3f (x%.1f of plain)\n",
              cost.windows / std::max<size_t>(rows.size(), 1), rows.size(),
              cost.plain_front_end / w, cost.plain_network / w, cost.bound_front_end / w,
              cost.bound_network / w,
              (cost.bound_front_end + cost.bound_network) /
                  std::max(1e-12, cost.plain_front_end + cost.plain_network));
  const std::string plot = absl::GetFlag(FLAGS_plot);
  if (plot.empty()) return 0;
  LinePlot p;
  p.title = absl::StrCat("certified robustness: ", model.spec().name(), "/", model.spec().version());
  p.x_label = absl::StrCat("epsilon (L-inf, ", units, ")");
  p.log_x = true;
  PlotPanel frac{"fraction of windows", false, {}};
  PlotSeries cert{"certified", "#1f77b4", {}}, cc{"certified and correct", "#2ca02c", {}};
  PlotPanel loose{"bound width / empirical range", true, {}};
  PlotSeries lm{"looseness (median)", "#d62728", {}};
  for (const EpsRow& r : rows) {
    const double n = static_cast<double>(std::max<size_t>(r.windows, 1));
    p.x.push_back(r.eps);
    cert.y.push_back(r.certified / n);
    cc.y.push_back(r.certified_correct / n);
    lm.y.push_back(Median(r.looseness));
  }
  frac.series = {cert, cc};
  loose.series = {lm};
  p.panels = {frac, loose};
  std::ofstream f(plot);
  f << LinePlotSvg(p);
  if (!f) return Fail(absl::StrCat("cannot write ", plot));
  std::printf("wrote %s\n", plot.c_str());
  return 0;
}

// Certification of one bounded window: counts and margin.
void Count(const Unit& u, const std::vector<float>& l, const std::vector<float>& h, EpsRow& row,
           std::vector<double>& margins) {
  const nn::Certificate c = nn::CertifyTop(l, h, u.top);
  ++row.windows;
  row.certified += c.certified;
  row.correct += u.top == u.label;
  row.certified_correct += c.certified && u.top == u.label;
  margins.push_back(c.margin);
}

int CertifyDigits(const nn::Model& model, const nn::IntervalModel& im, const std::string& dir,
                  const std::vector<double>& epsilons) {
  const v1::ModelSpec& spec = model.spec();
  auto fo = nn::FeatureOptionsFromSpec(spec);
  if (!fo.ok()) return Fail(std::string(fo.status().message()));
  const std::string split = absl::GetFlag(FLAGS_split);
  auto data = LoadDigitData(dir, split, spec.sample_rate_hz());
  if (!data.ok()) return Fail(std::string(data.status().message()));
  const std::vector<Clip>& clips = split == "all" ? data->train : data->test;
  std::map<std::string, int> label_index;
  for (int i = 0; i < spec.labels_size(); ++i) label_index[spec.labels(i)] = i;
  nn::Workspace ws(model, 1);
  nn::IntervalWorkspace iws(im);
  auto bounds = dsp::LogMelBounds::Create(*fo);
  if (!bounds.ok()) return Fail(std::string(bounds.status().message()));
  const size_t len = fo->window_length, hop = fo->window_hop, out = model.output_size();
  Cost cost;
  std::vector<Unit> units;
  std::vector<float> logits(out);
  for (const Clip& clip : clips) {
    // Every window the server would make of the clip streamed alone, tail included.
    const Clock::time_point t0 = Clock::now();
    auto windows = dsp::FeatureWindows(*fo, clip.samples, nullptr);
    const double fe = Seconds(t0);
    if (!windows.ok()) return Fail(std::string(windows.status().message()));
    for (size_t i = 0; i < windows->size(); ++i) {
      Unit u;
      u.samples.assign(len, 0.0f);
      for (size_t k = 0; k < len && i * hop + k < clip.samples.size(); ++k) u.samples[k] = clip.samples[i * hop + k];
      u.features = std::move((*windows)[i]);
      auto it = label_index.find(std::to_string(clip.digit));
      u.label = it == label_index.end() ? -1 : it->second;
      const Clock::time_point t1 = Clock::now();
      model.Run(u.features.data(), 1, logits.data(), ws);
      cost.plain_network += Seconds(t1);
      cost.plain_front_end += fe / static_cast<double>(windows->size());
      u.top = ArgMax(logits);
      units.push_back(std::move(u));
    }
  }
  const double plain_fe = cost.plain_front_end, plain_nn = cost.plain_network;
  cost.plain_front_end = cost.plain_network = 0;
  std::vector<EpsRow> rows;
  std::vector<float> in_lo(model.input_size()), in_hi(model.input_size()), l(out), h(out), p;
  const int sampled = absl::GetFlag(FLAGS_looseness_windows), trials = absl::GetFlag(FLAGS_looseness_trials);
  for (double eps : epsilons) {
    EpsRow row;
    row.eps = eps;
    std::vector<double> margins;
    std::mt19937 rng(7);
    const size_t stride = std::max<size_t>(1, units.size() / static_cast<size_t>(std::max(sampled, 1)));
    for (size_t i = 0; i < units.size(); ++i) {
      const Unit& u = units[i];
      const Clock::time_point t0 = Clock::now();
      bounds->Compute(u.samples, static_cast<float>(eps), in_lo, in_hi);
      const Clock::time_point t1 = Clock::now();
      im.Propagate(in_lo.data(), in_hi.data(), l.data(), h.data(), iws);
      cost.bound_network += Seconds(t1);
      cost.bound_front_end += std::chrono::duration<double>(t1 - t0).count();
      ++cost.windows;
      cost.plain_front_end += plain_fe / static_cast<double>(units.size());
      cost.plain_network += plain_nn / static_cast<double>(units.size());
      Count(u, l, h, row, margins);
      if (i % stride != 0 || row.looseness.size() >= static_cast<size_t>(sampled)) continue;
      Range range(out), input_range(in_lo.size());
      for (int t = 0; t < trials; ++t) {
        Perturb(u.samples, eps, t, rng, p);
        auto f = dsp::FeatureWindows(*fo, p, nullptr);
        if (!f.ok() || f->size() != 1) return Fail("looseness: the perturbed window did not give one window");
        model.Run((*f)[0].data(), 1, logits.data(), ws);
        range.Add(logits);
        input_range.Add((*f)[0]);
      }
      row.looseness.push_back(range.Ratio(l, h));
      row.feature_looseness.push_back(input_range.Ratio(in_lo, in_hi));
    }
    row.median_margin = Median(margins);
    rows.push_back(std::move(row));
    std::fprintf(stderr, "eps %g done\n", eps);
  }
  return Report(model, absl::StrCat(units.size(), " windows of ", clips.size(), " clips in ", dir,
                                    " (split ", split, ")"),
                rows, cost, "full scale");
}

// One bounded pass of a record (or excerpt) through the beat front end.
struct BeatPass {
  std::vector<int64_t> r;
  std::vector<std::vector<float>> features, lower, upper;
};

absl::StatusOr<BeatPass> RunBeats(const dsp::BeatWindowOptions& o, const std::vector<float>& mv, double eps) {
  auto bw = dsp::StreamingBeatWindows::Create(o);
  if (!bw.ok()) return bw.status();
  if (eps >= 0) {
    if (absl::Status s = (*bw)->EnableBounds(eps); !s.ok()) return s;
  }
  BeatPass pass;
  const auto keep = [&](const dsp::Beat& b) {
    pass.r.push_back(b.r_sample);
    pass.features.emplace_back(b.features.begin(), b.features.end());
    pass.lower.emplace_back(b.lower.begin(), b.lower.end());
    pass.upper.emplace_back(b.upper.begin(), b.upper.end());
  };
  (*bw)->Push(mv, keep);
  (*bw)->Finish(keep);
  return pass;
}

int CertifyEcg(const nn::Model& model, const nn::IntervalModel& im, const std::string& dir,
               const std::vector<double>& epsilons) {
  const v1::ModelSpec& spec = model.spec();
  const dsp::BeatWindowOptions o = BeatOptionsFromSpec(spec);
  std::string split = absl::GetFlag(FLAGS_split);
  if (split == "official") split = "records:101,106,108";
  auto names = ParseRecordSplit(split);
  if (!names.ok()) return Fail(std::string(names.status().message()));
  if (names->empty()) {
    auto all = ListRecords(dir);
    if (!all.ok()) return Fail(std::string(all.status().message()));
    names = *all;
  }
  const double seconds = absl::GetFlag(FLAGS_seconds);
  struct Record {
    std::vector<float> mv;
    std::map<int64_t, int> label;  // R sample -> AAMI index, from LoadRecordBeats
  };
  std::vector<Record> records;
  for (const std::string& name : *names) {
    auto rec = dsp::ReadWfdbRecord(dir + "/" + name + ".hea");
    if (!rec.ok()) return Fail(std::string(rec.status().message()));
    if (rec->header.sampling_frequency != o.sample_rate_hz) {
      return Fail(absl::StrCat("record ", name, " is at ", rec->header.sampling_frequency,
                               " Hz and the model at ", o.sample_rate_hz,
                               " Hz: this command does not resample; a server stream with "
                               "certify_epsilon does, and bounds it (docs/pooling.md)"));
    }
    Record r;
    r.mv = rec->Physical(rec->SignalNamed("MLII"));
    if (seconds > 0) r.mv.resize(std::min(r.mv.size(), static_cast<size_t>(seconds * o.sample_rate_hz)));
    auto rb = LoadRecordBeats(dir, name, o);
    if (!rb.ok()) return Fail(std::string(rb.status().message()));
    for (size_t b = 0; b < rb->beats(); ++b) r.label[rb->r_sample[b]] = rb->label[b];
    records.push_back(std::move(r));
  }
  const size_t out = model.output_size();
  nn::Workspace ws(model, 1);
  nn::IntervalWorkspace iws(im);
  std::vector<float> logits(out), l(out), h(out), p;
  Cost cost;
  std::vector<EpsRow> rows;
  const int sampled = absl::GetFlag(FLAGS_looseness_windows), trials = absl::GetFlag(FLAGS_looseness_trials);
  for (double eps : epsilons) {
    EpsRow row;
    row.eps = eps;
    std::vector<double> margins;
    for (const Record& rec : records) {
      Clock::time_point t0 = Clock::now();
      auto plain = RunBeats(o, rec.mv, -1);
      cost.plain_front_end += Seconds(t0);
      t0 = Clock::now();
      auto pass = RunBeats(o, rec.mv, eps);
      cost.bound_front_end += Seconds(t0);
      if (!plain.ok() || !pass.ok()) return Fail(std::string((plain.ok() ? pass : plain).status().message()));
      for (size_t b = 0; b < pass->r.size(); ++b) {
        Unit u;
        auto it = rec.label.find(pass->r[b]);
        u.label = it == rec.label.end() ? -1 : it->second;
        t0 = Clock::now();
        model.Run(pass->features[b].data(), 1, logits.data(), ws);
        cost.plain_network += Seconds(t0);
        u.top = ArgMax(logits);
        t0 = Clock::now();
        im.Propagate(pass->lower[b].data(), pass->upper[b].data(), l.data(), h.data(), iws);
        cost.bound_network += Seconds(t0);
        ++cost.windows;
        Count(u, l, h, row, margins);
      }
    }
    // Looseness on a 20 s excerpt of the first record: bounds from a bounded
    // pass of the excerpt, ranges from perturbed passes that kept every R peak.
    const std::vector<float> excerpt(records[0].mv.begin(),
                                     records[0].mv.begin() + static_cast<long>(std::min(
                                         records[0].mv.size(), static_cast<size_t>(20 * o.sample_rate_hz))));
    auto base = RunBeats(o, excerpt, eps);
    if (!base.ok()) return Fail(std::string(base.status().message()));
    const size_t beats = std::min<size_t>(base->r.size(), static_cast<size_t>(std::max(sampled, 0)));
    std::vector<Range> ranges(beats, Range(out)), input_ranges(beats, Range(model.input_size()));
    std::mt19937 rng(7);
    int kept = 0;
    for (int t = 0; t < trials; ++t) {
      Perturb(excerpt, eps, t, rng, p);
      auto moved = RunBeats(o, p, -1);
      if (!moved.ok() || moved->r != base->r) continue;  // outside the stated assumption
      ++kept;
      for (size_t b = 0; b < beats; ++b) {
        model.Run(moved->features[b].data(), 1, logits.data(), ws);
        ranges[b].Add(logits);
        input_ranges[b].Add(moved->features[b]);
      }
    }
    for (size_t b = 0; kept > 0 && b < beats; ++b) {
      im.Propagate(base->lower[b].data(), base->upper[b].data(), l.data(), h.data(), iws);
      row.looseness.push_back(ranges[b].Ratio(l, h));
      // Only the signal channels move; the RR channels are fixed on both sides.
      row.feature_looseness.push_back(input_ranges[b].Ratio(base->lower[b], base->upper[b]));
    }
    row.median_margin = Median(margins);
    rows.push_back(std::move(row));
    std::fprintf(stderr, "eps %g done (%d of %d perturbed excerpts kept every R peak)\n", eps, kept, trials);
  }
  return Report(model, absl::StrCat("records ", absl::StrJoin(*names, ","), " of ", dir,
                                    seconds > 0 ? absl::StrCat(", first ", seconds, " s each") : ""),
                rows, cost, "mV");
}

}  // namespace

int RunCertify(const std::vector<std::string>& args) {
  if (args.size() != 1) {
    return Fail("give one model folder: wavepool certify models/digits/2 --data DIR --epsilons 1e-6,1e-5");
  }
  const std::string dir = absl::GetFlag(FLAGS_data);
  if (dir.empty()) return Fail("certify needs --data DIR (FSDD recordings or MIT-BIH records)");
  std::vector<double> epsilons;
  for (absl::string_view s : absl::StrSplit(absl::GetFlag(FLAGS_epsilons), ',', absl::SkipEmpty())) {
    double e = 0;
    if (!absl::SimpleAtod(s, &e) || !std::isfinite(e) || e <= 0) {
      return Fail(absl::StrCat("--epsilons: \"", s, "\" is not a finite number > 0"));
    }
    epsilons.push_back(e);
  }
  if (epsilons.empty()) return Fail("--epsilons names no budget");
  std::sort(epsilons.begin(), epsilons.end());
  auto model = nn::Model::Load(args[0]);
  if (!model.ok()) return Fail(std::string(model.status().message()));
  auto im = nn::IntervalModel::Create(*model);
  if (!im.ok()) return Fail(std::string(im.status().message()));
  if ((*model)->spec().kind() == v1::BEAT_WINDOWS) return CertifyEcg(**model, **im, dir, epsilons);
  return CertifyDigits(**model, **im, dir, epsilons);
}

}  // namespace wavepool::cli
