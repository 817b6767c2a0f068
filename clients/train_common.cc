#include "clients/train_common.h"

#include <algorithm>
#include <cstdio>
#include <fstream>

#include "absl/flags/flag.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "clients/flags.h"
#include "nn/model.h"
#include "nn/spec.h"

namespace wavepool::cli {
namespace {

// "abc1234", "abc1234+uncommitted" or "unknown" (not a git checkout).
std::string GitRevision() {
  std::string out;
  if (FILE* p = popen("git rev-parse --short HEAD 2>/dev/null && git status --porcelain 2>/dev/null | head -1", "r")) {
    char buf[256];
    while (std::fgets(buf, sizeof buf, p)) out += buf;
    pclose(p);
  }
  const size_t nl = out.find('\n');
  if (nl == std::string::npos) return "unknown";
  return out.substr(0, nl) + (out.size() > nl + 1 ? "+uncommitted" : "");
}

}  // namespace

nn::TrainOptions TrainOptionsFromFlags(int epochs, int batch, size_t examples_per_epoch,
                                       uint64_t seed) {
  nn::TrainOptions to;
  to.optimizer = absl::GetFlag(FLAGS_optimizer) == "sgd" ? nn::TrainOptions::Optimizer::kSgd
                                                         : nn::TrainOptions::Optimizer::kAdamW;
  to.learning_rate = absl::GetFlag(FLAGS_lr);
  to.min_learning_rate = to.learning_rate / 100;
  to.weight_decay = absl::GetFlag(FLAGS_weight_decay);
  to.label_smoothing = absl::GetFlag(FLAGS_label_smoothing);
  to.max_batch = batch;
  to.threads = absl::GetFlag(FLAGS_threads);
  to.seed = seed;
  const size_t steps_per_epoch = (examples_per_epoch + static_cast<size_t>(batch) - 1) /
                                 static_cast<size_t>(batch);
  to.total_steps = static_cast<int64_t>(epochs) * static_cast<int64_t>(steps_per_epoch);
  to.warmup_steps = std::min<int64_t>(200, to.total_steps / 10);
  return to;
}

void SetProvenance(const CommonOptions& common, const std::string& data, const std::string& split,
                   uint64_t seed, int epochs, v1::Provenance* p) {
  p->set_trained(true);
  p->set_data(data);
  p->set_split(split);
  p->set_seed(seed);
  p->set_epochs(static_cast<uint32_t>(epochs));
  StampProvenance(common, p);
}

void StampProvenance(const CommonOptions& common, v1::Provenance* p) {
  p->set_command(common.command_line);
  p->set_git_revision(GitRevision());
  p->set_created_utc(absl::FormatTime("%Y-%m-%dT%H:%M:%SZ", absl::Now(), absl::UTCTimeZone()));
}

absl::StatusOr<std::vector<v1::PoolOverride>> PoolOverridesFromFlag() {
  std::vector<v1::PoolOverride> out;
  for (const std::string& text : absl::GetFlag(FLAGS_override)) {
    absl::StatusOr<v1::PoolOverride> o = nn::ParsePoolOverride(text);
    if (!o.ok()) return o.status();
    out.push_back(*std::move(o));
  }
  return out;
}

absl::Status SaveTrainedModel(const std::string& out, const v1::ModelSpec& spec,
                              const nn::TensorMap& weights) {
  nn::Safetensors st;
  st.tensors = weights;
  st.metadata["format"] = "pt";
  st.metadata["wavepool_model"] = spec.name();
  if (absl::Status s = nn::WriteSafetensors(out + "/weights.safetensors", st); !s.ok()) return s;
  std::ofstream f(out + "/spec.json");
  f << nn::SpecToJson(spec);
  f.close();
  if (!f) return absl::InternalError(absl::StrCat("cannot write ", out, "/spec.json"));
  return nn::Model::Load(out).status();
}

}  // namespace wavepool::cli
