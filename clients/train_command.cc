// wavepool train / wavepool eval for the spoken-digit model: the serving front
// end (nn::FeatureOptionsFromSpec + dsp::FeatureWindows) turns every example
// into exactly the features the server computes.
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <numeric>

#include "absl/flags/flag.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "clients/cli.h"
#include "clients/confusion.h"
#include "clients/digit_data.h"
#include "clients/digit_eval.h"
#include "clients/digit_train.h"
#include "clients/shift_eval.h"
#include "clients/flags.h"
#include "clients/train_common.h"
#include "dsp/log_mel.h"
#include "nn/front_end.h"
#include "nn/ensemble.h"
#include "nn/kernels.h"
#include "nn/model.h"
#include "nn/safetensors.h"
#include "nn/spec.h"
#include "nn/trainer.h"

// Speed/pitch perturbation of the digit clips (resampling by a factor): the
// main stand-in for voices the training set lacks (vocal-tract length, pitch).
ABSL_FLAG(double, speed_prob, 0.5, "train (digits): probability of resampling a clip's speed");
ABSL_FLAG(double, speed_min, 0.88, "train (digits): smallest speed factor");
ABSL_FLAG(double, speed_max, 1.12, "train (digits): largest speed factor");
// Vocal-tract-length perturbation (Jaitly & Hinton 2013) on the log-mel window:
// a second stand-in for unseen voices, warping formants without the duration
// change that speed perturbation brings along.
ABSL_FLAG(double, vtlp_prob, 0.0,
          "train (digits): probability of warping a window's mel axis (VTLP)");
ABSL_FLAG(double, vtlp_min, 0.9, "train (digits): smallest VTLP warp factor");
ABSL_FLAG(double, vtlp_max, 1.1, "train (digits): largest VTLP warp factor");
ABSL_FLAG(double, shelf_prob, 0.0,
          "train (digits): probability of a random spectral tilt (high shelf +-15 dB, low shelf +-10 dB)");
// A steep band limit (4th-order Butterworth low-pass) on the digit recordings:
// a channel like one FSDD speaker's, whose recordings nearly stop at 1 kHz.
ABSL_FLAG(double, bandlimit_prob, 0.0,
          "train (digits): probability of a 4th-order Butterworth low-pass on a digit recording");
ABSL_FLAG(double, bandlimit_min_hz, 800, "train (digits): lowest band-limit corner (Hz)");
ABSL_FLAG(double, bandlimit_max_hz, 2500, "train (digits): highest band-limit corner (Hz)");

namespace wavepool::cli {
namespace {

using Clock = std::chrono::steady_clock;

// Labels must be 0..9 then _background_, in that order, for the digit trainer.
absl::Status CheckDigitLabels(const v1::ModelSpec& spec) {
  if (spec.labels_size() != 11) {
    return absl::InvalidArgumentError("a digit model has 11 labels: 0..9 and _background_");
  }
  for (int i = 0; i < 10; ++i) {
    if (spec.labels(i) != std::to_string(i)) {
      return absl::InvalidArgumentError(absl::StrCat("label ", i, " must be \"", i, "\""));
    }
  }
  if (spec.labels(10) != "_background_") {
    return absl::InvalidArgumentError("label 10 must be \"_background_\"");
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<ClipScores> ScoreClips(const nn::Model& model, const dsp::FeatureWindowOptions& fo,
                                      const std::vector<Clip>& clips) {
  nn::Workspace ws(model, 1);
  ClipScores out;
  std::vector<float> probs(model.output_size());
  for (const Clip& c : clips) {
    bool padded = false;
    auto windows = dsp::FeatureWindows(fo, c.samples, &padded);
    if (!windows.ok()) return windows.status();
    // An isolated clip is known to hold one digit (FSDD's task is 10-way), so
    // its answer is the digit with the highest score in any of its windows
    // (complete ones and the zero-padded tail, as the server makes them).
    // Whether the stream machinery would also report it as an event is
    // measured separately, by eval --continuous.
    int best = kBackgroundLabel;
    float best_score = -1;
    for (const auto& w : *windows) {
      model.Run(w.data(), 1, probs.data(), ws);
      if (!model.outputs_probabilities()) nn::Softmax(probs.size(), probs.data());
      for (int d = 0; d < kBackgroundLabel; ++d) {
        if (probs[static_cast<size_t>(d)] > best_score) {
          best = d;
          best_score = probs[static_cast<size_t>(d)];
        }
      }
    }
    out.truth.push_back(c.digit);
    out.predicted.push_back(best);
  }
  return out;
}

absl::StatusOr<DigitTrainResult> TrainDigitModel(const CommonOptions& common,
                                                 v1::ModelSpec spec, const DigitData& data,
                                                 const std::string& data_dir,
                                                 const std::string& out) {
  if (auto s = CheckDigitLabels(spec); !s.ok()) return s;
  absl::StatusOr<dsp::FeatureWindowOptions> fo = nn::FeatureOptionsFromSpec(spec);
  if (!fo.ok()) return fo.status();
  const std::string split = absl::GetFlag(FLAGS_split);
  std::printf("data: %zu train clips, %zu test clips (split %s)\n", data.train.size(),
              data.test.size(), split.c_str());

  const uint64_t seed = absl::GetFlag(FLAGS_seed);
  const int epochs = absl::GetFlag(FLAGS_epochs);
  const int batch = absl::GetFlag(FLAGS_batch_size);
  AugmentOptions aug;
  aug.enabled = !absl::GetFlag(FLAGS_no_augment);
  aug.speed_prob = absl::GetFlag(FLAGS_speed_prob);
  aug.speed_min = absl::GetFlag(FLAGS_speed_min);
  aug.speed_max = absl::GetFlag(FLAGS_speed_max);
  aug.shelf_prob = absl::GetFlag(FLAGS_shelf_prob);
  aug.vtlp_prob = absl::GetFlag(FLAGS_vtlp_prob);
  aug.vtlp_min = absl::GetFlag(FLAGS_vtlp_min);
  aug.vtlp_max = absl::GetFlag(FLAGS_vtlp_max);
  aug.bandlimit_prob = absl::GetFlag(FLAGS_bandlimit_prob);
  aug.bandlimit_min_hz = absl::GetFlag(FLAGS_bandlimit_min_hz);
  aug.bandlimit_max_hz = absl::GetFlag(FLAGS_bandlimit_max_hz);
  if (auto s = aug.ValidateVtlp(); !s.ok()) return s;
  if (auto s = aug.ValidateBandlimit(data.sample_rate_hz); !s.ok()) return s;
  if (!(aug.speed_min > 0 && aug.speed_min <= aug.speed_max && aug.speed_max < 4)) {
    return absl::InvalidArgumentError(
        "--speed-min and --speed-max must satisfy 0 < min <= max < 4");
  }
  if (!(aug.shelf_prob >= 0 && aug.shelf_prob <= 1)) {
    return absl::InvalidArgumentError("--shelf-prob must be in [0, 1]");
  }
  ExampleSynth synth(data, fo->window_length, aug, seed);
  const size_t per_epoch = data.train.size() +
      static_cast<size_t>(aug.background_fraction * static_cast<double>(data.train.size()));

  const nn::TrainOptions to = TrainOptionsFromFlags(epochs, batch, per_epoch, seed);
  absl::StatusOr<nn::TensorMap> init = nn::InitWeights(spec, seed);
  if (!init.ok()) return init.status();
  auto trainer = nn::Trainer::Create(spec, *init, to);
  if (!trainer.ok()) return trainer.status();

  std::error_code ec;
  std::filesystem::create_directories(out, ec);
  if (ec) {
    return absl::PermissionDeniedError(absl::StrCat("cannot create ", out, ": ", ec.message()));
  }
  std::ofstream log(out + "/train_log.jsonl");
  const size_t bands = fo->log_mel.num_bands, frames = fo->frames_per_window();
  const dsp::MelOptions mel = fo->log_mel.mel();
  const size_t in_size = (*trainer)->input_size();
  std::vector<float> inputs(static_cast<size_t>(batch) * in_size);
  std::vector<int> labels(static_cast<size_t>(batch));
  const auto start = Clock::now();
  double test_accuracy = -1, train_accuracy = 0, train_loss = 0;
  for (int epoch = 1; epoch <= epochs; ++epoch) {
    const auto epoch_start = Clock::now();
    std::vector<WindowExample> examples = synth.Epoch();
    double loss_sum = 0;
    int correct = 0, seen = 0;
    for (size_t b0 = 0; b0 < examples.size(); b0 += static_cast<size_t>(batch)) {
      const size_t n = std::min(examples.size() - b0, static_cast<size_t>(batch));
      for (size_t i = 0; i < n; ++i) {
        bool padded = false;
        auto w = dsp::FeatureWindows(*fo, examples[b0 + i].samples, &padded);
        if (!w.ok() || w->size() != 1 || padded) {
          return absl::InternalError("an example did not make exactly one window; check windowing");
        }
        if (aug.enabled) {
          // VTLP before the masks: the warp moves values between bands, so the
          // window is normalised again afterwards (the warp is linear within a
          // frame, so this equals normalising the warped raw log-mel) and the
          // masks' 0 is still the window's mean.
          if (RandomVtlp(aug, mel, frames, synth.rng(), (*w)[0]) != 1.0) {
            dsp::NormalizeWindow(fo->norm, bands, frames, (*w)[0]);
          }
          SpecAugment(aug, bands, frames, synth.rng(), (*w)[0]);
        }
        std::copy((*w)[0].begin(), (*w)[0].end(), inputs.begin() + static_cast<long>(i * in_size));
        labels[i] = examples[b0 + i].label;
      }
      auto stats = (*trainer)->Step(std::span(inputs.data(), n * in_size),
                                    std::span(labels.data(), n), nullptr);
      if (!stats.ok()) return stats.status();
      loss_sum += stats->loss * static_cast<double>(n);
      correct += stats->correct;
      seen += static_cast<int>(n);
    }
    train_loss = loss_sum / seen;
    train_accuracy = static_cast<double>(correct) / seen;
    const bool eval_now = !data.test.empty() &&
        (epoch == epochs || epoch % std::max(1, absl::GetFlag(FLAGS_eval_every)) == 0);
    if (eval_now) {
      auto model = nn::Model::Create(spec, (*trainer)->Weights());
      if (!model.ok()) return model.status();
      auto scores = ScoreClips(**model, *fo, data.test);
      if (!scores.ok()) return scores.status();
      test_accuracy = scores->Accuracy();
    }
    const double elapsed = std::chrono::duration<double>(Clock::now() - start).count();
    const double epoch_s = std::chrono::duration<double>(Clock::now() - epoch_start).count();
    const double eta = elapsed / epoch * (epochs - epoch);
    std::printf("epoch %3d/%d  loss %.4f  train acc %6.2f%%  test acc %s  lr %.2e  %.1f s/epoch  ETA %.0f s\n",
                epoch, epochs, train_loss, 100 * train_accuracy,
                eval_now ? absl::StrFormat("%6.2f%%", 100 * test_accuracy).c_str() : "   -   ",
                (*trainer)->LearningRate((*trainer)->steps_taken() - 1), epoch_s, eta);
    std::fflush(stdout);
    log << absl::StrFormat(
        "{\"epoch\":%d,\"loss\":%.6f,\"train_accuracy\":%.6f,\"test_accuracy\":%s,\"lr\":%.6g,"
        "\"seconds\":%.2f}\n",
        epoch, train_loss, train_accuracy,
        eval_now ? absl::StrFormat("%.6f", test_accuracy) : "null",
        (*trainer)->LearningRate((*trainer)->steps_taken() - 1), elapsed);
    log.flush();
  }

  v1::Provenance* p = spec.mutable_provenance();
  SetProvenance(common, data_dir,
                split == "official" ? "official: takes 5-49 train, 0-4 test"
                                    : split == "all" ? "all takes train" : split + " held out",
                seed, epochs, p);
  (*p->mutable_metrics())["train_loss"] = train_loss;
  (*p->mutable_metrics())["train_accuracy"] = train_accuracy;
  if (test_accuracy >= 0) (*p->mutable_metrics())["test_accuracy"] = test_accuracy;
  if (absl::Status s = SaveTrainedModel(out, spec, (*trainer)->Weights()); !s.ok()) {
    return s;
  }
  std::printf("wrote %s (test accuracy %s)\n", out.c_str(),
              test_accuracy >= 0 ? absl::StrFormat("%.2f%%", 100 * test_accuracy).c_str() : "n/a");
  DigitTrainResult result;
  result.test_accuracy = test_accuracy;
  result.train_accuracy = train_accuracy;
  result.seconds = std::chrono::duration<double>(Clock::now() - start).count();
  return result;
}

int RunTrain(const CommonOptions& common, const std::vector<std::string>& args) {
  if (!args.empty()) return Fail("train takes flags only: --spec, --data, --out, ...");
  const std::string spec_path = absl::GetFlag(FLAGS_spec);
  const std::string data_dir = absl::GetFlag(FLAGS_data);
  const std::string out = absl::GetFlag(FLAGS_out);
  if (spec_path.empty() || data_dir.empty() || out.empty()) {
    return Fail("train needs --spec SPEC.json --data DIR --out models/NAME/VERSION");
  }
  absl::StatusOr<v1::ModelSpec> spec = nn::ReadSpecFile(spec_path);
  if (!spec.ok()) return Fail(std::string(spec.status().message()));
  if (spec->kind() == v1::BEAT_WINDOWS) return RunTrainEcg(common, *spec, data_dir, out);
  if (auto s = CheckDigitLabels(*spec); !s.ok()) return Fail(std::string(s.message()));
  absl::StatusOr<DigitData> data =
      LoadDigitData(data_dir, absl::GetFlag(FLAGS_split), spec->sample_rate_hz());
  if (!data.ok()) return Fail(std::string(data.status().message()));
  absl::StatusOr<DigitTrainResult> result = TrainDigitModel(common, *spec, *data, data_dir, out);
  if (!result.ok()) return Fail(std::string(result.status().message()));
  return 0;
}

int RunEval(const CommonOptions& common, const std::vector<std::string>& args) {
  if (args.empty()) return Fail("give a model folder: wavepool eval models/digits/1 --data DIR");
  if (absl::GetFlag(FLAGS_continuous)) return RunContinuousEval(common, args[0]);
  const std::string data_dir = absl::GetFlag(FLAGS_data);
  if (data_dir.empty()) return Fail("eval needs --data DIR");
  auto overrides = PoolOverridesFromFlag();
  if (!overrides.ok()) return Fail(std::string(overrides.status().message()));
  auto model = nn::Model::Load(args[0], *overrides);
  if (model.ok() && (*model)->spec().kind() == v1::BEAT_WINDOWS) return RunEvalEcg(args, data_dir);
  if (args.size() != 1) return Fail("several model folders are for pooled ECG fold evaluation only");
  if (!model.ok()) return Fail(std::string(model.status().message()));
  const bool shifts_wanted =
      absl::GetFlag(FLAGS_shift_consistency) || !absl::GetFlag(FLAGS_tta_shifts).empty();
  auto shift_options = ShiftEvalOptionsFromFlags();
  if (!shift_options.ok()) return Fail(std::string(shift_options.status().message()));
  const v1::ModelSpec& spec = (*model)->spec();
  if (auto s = CheckDigitLabels(spec); !s.ok()) return Fail(std::string(s.message()));
  auto fo = nn::FeatureOptionsFromSpec(spec);
  if (!fo.ok()) return Fail(std::string(fo.status().message()));
  const std::string split = absl::GetFlag(FLAGS_split);
  auto data = LoadDigitData(data_dir, split, spec.sample_rate_hz());
  if (!data.ok()) return Fail(std::string(data.status().message()));
  const std::vector<Clip>& clips = split == "all" ? data->train : data->test;
  auto scores = ScoreClips(**model, *fo, clips);
  if (!scores.ok()) return Fail(std::string(scores.status().message()));
  std::vector<std::string> labels(spec.labels().begin(), spec.labels().end());
  std::printf("model %s/%lld on %zu clips (split %s)\n", spec.name().c_str(),
              static_cast<long long>(spec.version()), clips.size(), split.c_str());
  std::printf("%s", FormatConfusion(*scores, labels).c_str());
  const std::string svg = absl::GetFlag(FLAGS_confusion_svg);
  if (!svg.empty()) {
    std::ofstream f(svg);
    f << ConfusionSvg(*scores, labels, absl::StrCat(spec.name(), " — ", split));
    if (!f) return Fail(absl::StrCat("cannot write ", svg));
    std::printf("wrote %s\n", svg.c_str());
  }
  if (shifts_wanted) {
    auto r = EvalDigitShifts(**model, clips, *shift_options);
    if (!r.ok()) return Fail(std::string(r.status().message()));
    std::printf("\n%s", FormatShiftEval(*shift_options, *r, "clips").c_str());
  }
  return 0;
}

int RunEnsemble(const CommonOptions& common, const std::vector<std::string>& args) {
  const std::string out = absl::GetFlag(FLAGS_out);
  if (args.size() < 2 || out.empty()) {
    return Fail("ensemble needs --out DIR and two or more model folders trained from one spec");
  }
  std::vector<nn::SpecAndWeights> members;
  std::string seeds;
  for (const std::string& dir : args) {
    absl::StatusOr<v1::ModelSpec> spec = nn::ReadSpecFile(dir + "/spec.json");
    if (!spec.ok()) return Fail(std::string(spec.status().message()));
    absl::StatusOr<nn::Safetensors> st = nn::ReadSafetensors(dir + "/weights.safetensors");
    if (!st.ok()) return Fail(std::string(st.status().message()));
    absl::StrAppend(&seeds, seeds.empty() ? "" : "; ", dir, " (seed ", spec->provenance().seed(), ", made by `",
                    spec->provenance().command(), "` at ", spec->provenance().git_revision(), ")");
    members.push_back({*std::move(spec), std::move(st->tensors)});
  }
  absl::StatusOr<nn::SpecAndWeights> merged = nn::MergeEnsemble(members);
  if (!merged.ok()) return Fail(absl::StrCat("cannot merge: ", merged.status().message()));
  merged->spec.set_description(absl::StrCat(
      merged->spec.description(), " An ensemble of ", members.size(),
      " networks trained alike with different seeds, merged into one: each layer is ", members.size(),
      " times one member's width and the output is the mean of the members' logits (docs/nn.md)."));
  v1::Provenance* p = merged->spec.mutable_provenance();
  StampProvenance(common, p);
  p->set_notes(absl::StrCat("Ensemble of ", members.size(), " members merged into one network whose output is "
                            "the mean of their logits (nn/ensemble.h): ", seeds, "."));
  std::error_code ec;
  std::filesystem::create_directories(out, ec);
  if (ec) return Fail(absl::StrCat("cannot create ", out, ": ", ec.message()));
  if (absl::Status s = SaveTrainedModel(out, merged->spec, merged->weights); !s.ok()) {
    return Fail(std::string(s.message()));
  }
  std::printf("wrote %s: %zu members, mean of their logits\n", out.c_str(), members.size());
  return 0;
}

}  // namespace wavepool::cli
