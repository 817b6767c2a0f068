#include "server/model_repository.h"

#include <filesystem>
#include <system_error>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "nn/describe.h"
#include "nn/front_end.h"
#include "util/status_macros.h"

namespace wavepool::server {
namespace fs = std::filesystem;

absl::StatusOr<std::shared_ptr<const LoadedModel>> ModelRepository::LoadVersion(
    const std::string& dir, const std::string& name, int64_t version) {
  ASSIGN_OR_RETURN(std::shared_ptr<const nn::Model> model, nn::Model::Load(dir));
  const v1::ModelSpec& spec = model->spec();
  if (spec.name() != name) {
    return absl::FailedPreconditionError(absl::StrCat(
        dir, "/spec.json: name \"", spec.name(), "\" differs from its folder \"", name, "\""));
  }
  if (spec.version() != version) {
    return absl::FailedPreconditionError(absl::StrCat(
        dir, "/spec.json: version ", spec.version(), " differs from its folder ", version));
  }
  auto loaded = std::make_shared<LoadedModel>();
  loaded->name = name;
  loaded->version = version;
  loaded->dir = dir;
  loaded->model = model;
  size_t front_end_values = 0;
  if (spec.kind() == v1::BEAT_WINDOWS) {
    loaded->beat_windows = true;
    loaded->beats.sample_rate_hz = spec.sample_rate_hz();
    loaded->beats.before_s = spec.beat_windowing().before_s();
    loaded->beats.after_s = spec.beat_windowing().after_s();
    loaded->beats.rr_context = spec.beat_windowing().rr_context();
    loaded->beats.template_context = spec.beat_windowing().template_context();
    RETURN_IF_ERROR(loaded->beats.Validate());
    front_end_values = loaded->beats.window_values();
  } else {
    ASSIGN_OR_RETURN(loaded->features, nn::FeatureOptionsFromSpec(spec));
    front_end_values = loaded->features.window_values();
  }
  if (model->input_size() != front_end_values) {
    return absl::FailedPreconditionError(absl::StrCat(
        dir, ": the network takes ", model->input_size(), " values per window but the front end "
        "makes ", front_end_values, "; check the spec's front end and windowing"));
  }
  ASSIGN_OR_RETURN(loaded->description, nn::Describe(spec));
  return std::shared_ptr<const LoadedModel>(std::move(loaded));
}

absl::StatusOr<std::unique_ptr<ModelRepository>> ModelRepository::Open(const std::string& root) {
  std::error_code ec;
  if (!fs::is_directory(root, ec)) {
    return absl::FailedPreconditionError(absl::StrCat(
        "model repository \"", root, "\" is not a readable folder",
        ec ? absl::StrCat(" (", ec.message(), ")") : ""));
  }
  auto repo = std::unique_ptr<ModelRepository>(new ModelRepository());
  repo->root_ = root;
  fs::directory_iterator models(root, ec);
  if (ec) {
    return absl::FailedPreconditionError(
        absl::StrCat("cannot list model repository \"", root, "\": ", ec.message()));
  }
  // Symlinks are not followed out of the repository: a model or version folder
  // must be a real directory (symlink_status), so a link cannot pull in files
  // from elsewhere.
  for (const fs::directory_entry& m : models) {
    if (!fs::is_directory(m.symlink_status())) continue;
    const std::string name = m.path().filename().string();
    if (name.empty() || name[0] == '.') continue;
    std::error_code ec2;
    for (const fs::directory_entry& v : fs::directory_iterator(m.path(), ec2)) {
      if (!fs::is_directory(v.symlink_status())) continue;
      int64_t version = 0;
      const std::string vname = v.path().filename().string();
      if (!absl::SimpleAtoi(vname, &version) || version <= 0) {
        repo->load_errors_.push_back(
            {v.path().string(),
             absl::InvalidArgumentError(absl::StrCat(
                 "version folder \"", vname, "\" is not a positive integer; skipped"))});
        continue;
      }
      absl::StatusOr<std::shared_ptr<const LoadedModel>> loaded =
          LoadVersion(v.path().string(), name, version);
      if (!loaded.ok()) {
        repo->load_errors_.push_back({v.path().string(), loaded.status()});
        continue;
      }
      repo->models_[name][version] = *std::move(loaded);
    }
    if (ec2) repo->load_errors_.push_back({m.path().string(), absl::InternalError(ec2.message())});
  }
  return repo;
}

absl::StatusOr<std::shared_ptr<const LoadedModel>> ModelRepository::Find(
    const std::string& name, int64_t version) const {
  auto it = models_.find(name);
  if (it == models_.end() || it->second.empty()) {
    std::vector<std::string> names;
    for (const auto& [n, versions] : models_) names.push_back(n);
    return absl::NotFoundError(absl::StrCat(
        "model \"", name, "\" is not loaded; available: ",
        names.empty() ? "(none)" : absl::StrJoin(names, ", ")));
  }
  if (version < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("version (", version, ") must be >= 0 (0 = latest)"));
  }
  if (version == 0) return it->second.rbegin()->second;
  auto v = it->second.find(version);
  if (v == it->second.end()) {
    std::vector<std::string> versions;
    for (const auto& [n, m] : it->second) versions.push_back(absl::StrCat(n));
    return absl::NotFoundError(absl::StrCat("model \"", name, "\" has no version ", version,
                                            "; available: ", absl::StrJoin(versions, ", ")));
  }
  return v->second;
}

std::vector<std::shared_ptr<const LoadedModel>> ModelRepository::List() const {
  std::vector<std::shared_ptr<const LoadedModel>> out;
  for (const auto& [name, versions] : models_) {
    for (const auto& [v, m] : versions) out.push_back(m);
  }
  return out;
}

}  // namespace wavepool::server
