// wavepool train / eval for BEAT_WINDOWS (ECG) models on WFDB records.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <random>
#include <set>

#include "absl/flags/flag.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "clients/cli.h"
#include "clients/confusion.h"
#include "clients/ecg_data.h"
#include "clients/flags.h"
#include "clients/shift_eval.h"
#include "clients/train_common.h"
#include "nn/kernels.h"
#include "nn/model.h"
#include "nn/safetensors.h"
#include "nn/spec.h"
#include "nn/trainer.h"

namespace wavepool::cli {
namespace {

absl::Status CheckAamiLabels(const v1::ModelSpec& spec) {
  if (spec.labels_size() != 5) return absl::InvalidArgumentError("an ECG beat model has labels N S V F Q");
  for (int i = 0; i < 5; ++i) {
    if (spec.labels(i) != std::string(1, kAamiClasses[i])) {
      return absl::InvalidArgumentError(absl::StrCat("label ", i, " must be \"", std::string(1, kAamiClasses[i]), "\""));
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<std::vector<RecordBeats>> LoadRecords(const std::string& dir,
                                                     const std::vector<std::string>& names,
                                                     const dsp::BeatWindowOptions& o) {
  std::vector<RecordBeats> out;
  for (const std::string& r : names) {
    auto rb = LoadRecordBeats(dir, r, o);
    if (!rb.ok()) return rb.status();
    out.push_back(*std::move(rb));
  }
  return out;
}

}  // namespace

int RunTrainEcg(const CommonOptions& common, v1::ModelSpec spec, const std::string& data_dir,
                const std::string& out) {
  if (auto s = CheckAamiLabels(spec); !s.ok()) return Fail(std::string(s.message()));
  const dsp::BeatWindowOptions bo = BeatOptionsFromSpec(spec);
  const std::string split = absl::GetFlag(FLAGS_split) == "official" ? "all" : absl::GetFlag(FLAGS_split);
  auto held = ParseRecordSplit(split);
  if (!held.ok()) return Fail(std::string(held.status().message()));
  auto all = ListRecords(data_dir);
  if (!all.ok()) return Fail(std::string(all.status().message()));
  std::vector<std::string> train_names;
  const std::set<std::string> held_set(held->begin(), held->end());
  for (const auto& r : *all) {
    if (!held_set.count(r)) train_names.push_back(r);
  }
  std::printf("ECG: training on %zu records, holding out %zu (%s)\n", train_names.size(),
              held->size(), absl::StrJoin(*held, ",").c_str());
  auto train = LoadRecords(data_dir, train_names, bo);
  if (!train.ok()) return Fail(std::string(train.status().message()));
  const size_t vpb = bo.window_values();
  // Index of every labelled training beat, per class.
  std::vector<std::vector<std::pair<size_t, size_t>>> by_class(5);
  for (size_t r = 0; r < train->size(); ++r) {
    for (size_t b = 0; b < (*train)[r].beats(); ++b) {
      const int c = (*train)[r].label[b];
      if (c >= 0) by_class[static_cast<size_t>(c)].push_back({r, b});
    }
  }
  size_t n_max = 0;
  for (const auto& v : by_class) n_max = std::max(n_max, v.size());
  // Class weights sqrt(n_max / n_c), capped at 10: enough to make the rare
  // classes count without turning every odd N beat into S.
  float class_weight[5];
  for (int c = 0; c < 5; ++c) {
    const double n = static_cast<double>(by_class[static_cast<size_t>(c)].size());
    class_weight[c] = n > 0 ? static_cast<float>(std::min(10.0, std::sqrt(n_max / n))) : 0.0f;
    std::printf("  class %c: %zu beats, weight %.2f\n", kAamiClasses[c], by_class[static_cast<size_t>(c)].size(),
                class_weight[c]);
  }

  const uint64_t seed = absl::GetFlag(FLAGS_seed);
  const int epochs = absl::GetFlag(FLAGS_epochs);
  const int batch = absl::GetFlag(FLAGS_batch_size);
  const size_t n_per_epoch = std::min(by_class[0].size(), static_cast<size_t>(absl::GetFlag(FLAGS_ecg_n_per_epoch)));
  size_t per_epoch = n_per_epoch;
  for (int c = 1; c < 5; ++c) per_epoch += by_class[static_cast<size_t>(c)].size();
  const nn::TrainOptions to = TrainOptionsFromFlags(epochs, batch, per_epoch, seed);
  auto init = nn::InitWeights(spec, seed);
  if (!init.ok()) return Fail(std::string(init.status().message()));
  auto trainer = nn::Trainer::Create(spec, *init, to);
  if (!trainer.ok()) return Fail(std::string(trainer.status().message()));
  std::error_code ec;
  std::filesystem::create_directories(out, ec);
  std::ofstream log(out + "/train_log.jsonl");
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> noise(0.0f, 0.02f);
  std::uniform_real_distribution<double> unit(0.0, 1.0);
  const double morph_dropout = absl::GetFlag(FLAGS_ecg_morph_dropout);
  if (!(morph_dropout >= 0 && morph_dropout < 1)) return Fail("--ecg-morph-dropout must be in [0, 1)");
  std::vector<float> inputs(static_cast<size_t>(batch) * vpb);
  std::vector<int> labels(static_cast<size_t>(batch));
  const auto start = std::chrono::steady_clock::now();
  double loss = 0, acc = 0;
  for (int epoch = 1; epoch <= epochs; ++epoch) {
    // Every non-N beat, and a fresh random subset of N beats.
    std::vector<std::pair<size_t, size_t>> order;
    std::vector<std::pair<size_t, size_t>> ns = by_class[0];
    std::shuffle(ns.begin(), ns.end(), rng);
    order.insert(order.end(), ns.begin(), ns.begin() + static_cast<long>(n_per_epoch));
    for (int c = 1; c < 5; ++c) order.insert(order.end(), by_class[static_cast<size_t>(c)].begin(), by_class[static_cast<size_t>(c)].end());
    std::shuffle(order.begin(), order.end(), rng);
    double loss_sum = 0;
    int correct = 0, seen = 0;
    for (size_t b0 = 0; b0 < order.size(); b0 += static_cast<size_t>(batch)) {
      const size_t n = std::min(order.size() - b0, static_cast<size_t>(batch));
      for (size_t i = 0; i < n; ++i) {
        const auto [r, b] = order[b0 + i];
        const float* src = (*train)[r].features.data() + b * vpb;
        float* dst = inputs.data() + i * vpb;
        std::copy(src, src + vpb, dst);
        // Augment channel 0 only (the lead, or the beat minus its template when
        // the spec omits the lead): amplitude 0.8-1.2 and white noise.
        const float gain = 0.8f + 0.4f * static_cast<float>(static_cast<double>(rng() >> 11) * 0x1p-53);
        const size_t w = static_cast<size_t>(bo.window_samples());
        for (size_t k = 0; k < w; ++k) dst[k] = dst[k] * gain + noise(rng);
        if (morph_dropout > 0 && bo.rr_context && unit(rng) < morph_dropout) {
          // The waveform channels (the lead, and the template deviation) go; the RR channels stay.
          std::fill(dst, dst + w * static_cast<size_t>(bo.channels() - 4), 0.0f);
        }
        labels[i] = (*train)[r].label[b];
      }
      auto stats = (*trainer)->Step(std::span(inputs.data(), n * vpb), std::span(labels.data(), n), class_weight);
      if (!stats.ok()) return Fail(std::string(stats.status().message()));
      loss_sum += stats->loss * static_cast<double>(n);
      correct += stats->correct;
      seen += static_cast<int>(n);
    }
    loss = loss_sum / seen;
    acc = static_cast<double>(correct) / seen;
    const double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    std::printf("epoch %3d/%d  loss %.4f  train acc %6.2f%%  %.1f s/epoch  ETA %.0f s\n", epoch, epochs, loss,
                100 * acc, elapsed / epoch, elapsed / epoch * (epochs - epoch));
    std::fflush(stdout);
    log << absl::StrFormat("{\"epoch\":%d,\"loss\":%.6f,\"train_accuracy\":%.6f,\"seconds\":%.2f}\n", epoch, loss,
                           acc, elapsed);
    log.flush();
  }
  v1::Provenance* p = spec.mutable_provenance();
  SetProvenance(common, data_dir,
                held->empty() ? "all" : absl::StrCat("records:", absl::StrJoin(*held, ",")), seed,
                epochs, p);
  (*p->mutable_metrics())["train_loss"] = loss;
  (*p->mutable_metrics())["train_accuracy"] = acc;
  if (absl::Status s = SaveTrainedModel(out, spec, (*trainer)->Weights()); !s.ok()) {
    return Fail(std::string(s.message()));
  }
  std::printf("wrote %s\n", out.c_str());
  return 0;
}

// Pools the predictions of one or more models, each on the records its
// provenance held out (or, for one model, the records --split names).
int RunEvalEcg(const std::vector<std::string>& model_dirs, const std::string& data_dir) {
  ClipScores scores;
  int64_t ref = 0, tp = 0, fn = 0, fp = 0;
  std::vector<std::string> report;
  const bool shifts_wanted =
      absl::GetFlag(FLAGS_shift_consistency) || !absl::GetFlag(FLAGS_tta_shifts).empty();
  auto shift_options = ShiftEvalOptionsFromFlags();
  if (!shift_options.ok()) return Fail(std::string(shift_options.status().message()));
  std::vector<std::string> shift_reports;
  for (const std::string& dir : model_dirs) {
    auto overrides = PoolOverridesFromFlag();
    if (!overrides.ok()) return Fail(std::string(overrides.status().message()));
    auto model = nn::Model::Load(dir, *overrides);
    if (!model.ok()) return Fail(std::string(model.status().message()));
    const v1::ModelSpec& spec = (*model)->spec();
    if (auto s = CheckAamiLabels(spec); !s.ok()) return Fail(std::string(s.message()));
    std::string split = model_dirs.size() == 1 ? absl::GetFlag(FLAGS_split) : spec.provenance().split();
    if (split == "official") split = spec.provenance().split().empty() ? "all" : spec.provenance().split();
    auto names = ParseRecordSplit(split);
    if (!names.ok()) return Fail(std::string(names.status().message()));
    if (names->empty()) {
      auto all = ListRecords(data_dir);
      if (!all.ok()) return Fail(std::string(all.status().message()));
      names = *all;
    }
    const dsp::BeatWindowOptions bo = BeatOptionsFromSpec(spec);
    nn::Workspace ws(**model, 64);
    std::vector<float> out(64 * 5);
    for (const std::string& r : *names) {
      auto rb = LoadRecordBeats(data_dir, r, bo);
      if (!rb.ok()) return Fail(std::string(rb.status().message()));
      ref += rb->reference_beats, tp += rb->true_positives, fn += rb->false_negatives, fp += rb->false_positives;
      ClipScores rec;
      for (size_t b0 = 0; b0 < rb->beats(); b0 += 64) {
        const int n = static_cast<int>(std::min<size_t>(64, rb->beats() - b0));
        (*model)->Run(rb->features.data() + b0 * rb->values_per_beat, n, out.data(), ws);
        for (int i = 0; i < n; ++i) {
          const int truth = rb->label[b0 + static_cast<size_t>(i)];
          if (truth < 0) continue;  // a false detection: counted in detection, not here
          const float* row = out.data() + i * 5;
          const int pred = static_cast<int>(std::max_element(row, row + 5) - row);
          scores.truth.push_back(truth);
          scores.predicted.push_back(pred);
          rec.truth.push_back(truth);
          rec.predicted.push_back(pred);
        }
      }
      const auto m = ConfusionMatrix(rec, 5);
      report.push_back(absl::StrFormat("%-6s %6d beats  det Se %6.2f%% +P %6.2f%%  acc %6.2f%%  V %d/%d  S %d/%d"
                                       "  N>S %d  N>V %d",
                                       r, rb->reference_beats,
                                       100.0 * rb->true_positives / std::max<int64_t>(1, rb->reference_beats),
                                       100.0 * rb->true_positives / std::max<int64_t>(1, rb->true_positives + rb->false_positives),
                                       100 * rec.Accuracy(), m[2][2], m[2][0] + m[2][1] + m[2][2] + m[2][3] + m[2][4],
                                       m[1][1], m[1][0] + m[1][1] + m[1][2] + m[1][3] + m[1][4], m[0][1],
                                       m[0][2]));
    }
    if (shifts_wanted) {
      auto r = EvalEcgShifts(**model, data_dir, *names, *shift_options);
      if (!r.ok()) return Fail(std::string(r.status().message()));
      shift_reports.push_back(absl::StrCat(dir, " on records ", absl::StrJoin(*names, ","), ":\n",
                                           FormatShiftEval(*shift_options, *r, "beats")));
    }
  }
  std::printf("per record (held-out records of each model):\n");
  for (const auto& l : report) std::printf("  %s\n", l.c_str());
  std::printf("\nbeat detection over %lld reference beats: Se %.2f%%  +P %.2f%%  (TP %lld, FN %lld, FP %lld; 150 ms window)\n",
              static_cast<long long>(ref), 100.0 * tp / std::max<int64_t>(1, ref),
              100.0 * tp / std::max<int64_t>(1, tp + fp), static_cast<long long>(tp), static_cast<long long>(fn),
              static_cast<long long>(fp));
  std::printf("classification of the detected beats (sensitivity = recall, +P = precision):\n");
  std::printf("%s", FormatConfusion(scores, {"N", "S", "V", "F", "Q"}).c_str());
  const std::string svg = absl::GetFlag(FLAGS_confusion_svg);
  if (!svg.empty()) {
    std::ofstream f(svg);
    f << ConfusionSvg(scores, {"N", "S", "V", "F", "Q"}, "ecg-beats (held-out records)");
  }
  for (const std::string& r : shift_reports) std::printf("\n%s", r.c_str());
  return 0;
}

}  // namespace wavepool::cli
