#include "server/model_repository.h"

#include <algorithm>
#include <filesystem>
#include <set>
#include <system_error>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "nn/describe.h"
#include "nn/front_end.h"
#include "server/event_detector.h"
#include "util/status_macros.h"

namespace wavepool::server {
namespace fs = std::filesystem;
namespace {

// Sizes and modification times of a version's two files: a changed fingerprint
// means the version is reloaded on the next scan.
std::string Fingerprint(const std::string& dir) {
  std::string out;
  for (const char* file : {"spec.json", "weights.safetensors"}) {
    std::error_code ec;
    const fs::path p = fs::path(dir) / file;
    const auto size = fs::file_size(p, ec);
    const auto time = fs::last_write_time(p, ec);
    absl::StrAppend(&out, file, ":", ec ? 0 : size, ":",
                    ec ? 0 : time.time_since_epoch().count(), ";");
  }
  return out;
}

}  // namespace

absl::StatusOr<std::shared_ptr<LoadedModel>> ModelRepository::LoadVersion(
    const std::string& dir, const std::string& name, int64_t version) {
  const std::string fingerprint = Fingerprint(dir);
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
  loaded->fingerprint = fingerprint;
  loaded->model = model;
  if (auto interval = nn::IntervalModel::Create(model); interval.ok()) {
    loaded->interval = *std::move(interval);
  } else {
    loaded->interval_error = interval.status();
  }
  size_t front_end_values = 0;
  if (spec.kind() == v1::BEAT_WINDOWS) {
    loaded->beat_windows = true;
    loaded->beats = nn::BeatOptionsFromSpec(spec);
    RETURN_IF_ERROR(loaded->beats.Validate());
    front_end_values = loaded->beats.window_values();
  } else {
    ASSIGN_OR_RETURN(loaded->features, nn::FeatureOptionsFromSpec(spec));
    front_end_values = loaded->features.window_values();
    // Every stream builds an EventDetector from the spec: a bad events section
    // is this version's load error, not each client's INVALID_ARGUMENT later
    // (found by fuzz/spec_fuzzer).
    if (absl::StatusOr<EventDetector> events = EventDetector::Create(spec); !events.ok()) {
      return absl::FailedPreconditionError(
          absl::StrCat(dir, "/spec.json: ", events.status().message()));
    }
  }
  if (model->input_size() != front_end_values) {
    return absl::FailedPreconditionError(absl::StrCat(
        dir, ": the network takes ", model->input_size(), " values per window but the front end "
        "makes ", front_end_values, "; check the spec's front end and windowing"));
  }
  ASSIGN_OR_RETURN(loaded->description, nn::Describe(spec));
  return loaded;
}

absl::StatusOr<std::unique_ptr<ModelRepository>> ModelRepository::Open(
    const std::string& root, RepositoryOptions options) {
  std::error_code ec;
  if (!fs::is_directory(root, ec)) {
    return absl::FailedPreconditionError(absl::StrCat(
        "model repository \"", root, "\" is not a readable folder",
        ec ? absl::StrCat(" (", ec.message(), ")") : ""));
  }
  auto repo = std::unique_ptr<ModelRepository>(new ModelRepository());
  repo->root_ = root;
  repo->options_ = std::move(options);
  fs::directory_iterator models(root, ec);
  if (ec) {
    return absl::FailedPreconditionError(
        absl::StrCat("cannot list model repository \"", root, "\": ", ec.message()));
  }
  repo->Reload();
  return repo;
}

ModelRepository::Candidates ModelRepository::Admitted(const std::string& name,
                                                      std::vector<int64_t> found) const {
  std::sort(found.begin(), found.end());
  for (const ModelPolicy& p : options_.models) {
    if (p.name != name) continue;
    switch (p.policy) {
      case VersionPolicy::kAll:
        return {found, false};
      case VersionPolicy::kLatest:
        // Newest first; the first that serves is the one (a broken newest
        // version leaves the one before it serving).
        return {std::vector<int64_t>(found.rbegin(), found.rend()), true};
      case VersionPolicy::kSpecific: {
        Candidates out;
        for (int64_t v : found) {
          if (std::find(p.versions.begin(), p.versions.end(), v) != p.versions.end()) {
            out.versions.push_back(v);
          }
        }
        return out;
      }
    }
  }
  return {found, false};
}

ReloadResult ModelRepository::Reload() {
  std::lock_guard<std::mutex> scan(reload_mu_);
  ReloadResult result;
  std::map<std::string, Versions> current;
  {
    std::lock_guard<std::mutex> lock(mu_);
    current = models_;
  }
  std::map<std::string, Versions> next;
  std::error_code ec;
  fs::directory_iterator models(root_, ec);
  if (ec) {
    result.errors.push_back({root_, absl::FailedPreconditionError(absl::StrCat(
                                        "cannot list model repository: ", ec.message()))});
  } else {
    // Symlinks are not followed out of the repository: a model or version folder
    // must be a real directory (symlink_status), so a link cannot pull in files
    // from elsewhere.
    for (const fs::directory_entry& m : models) {
      if (!fs::is_directory(m.symlink_status())) continue;
      const std::string name = m.path().filename().string();
      if (name.empty() || name[0] == '.') continue;
      std::error_code ec2;
      std::map<int64_t, std::string> dirs;
      for (const fs::directory_entry& v : fs::directory_iterator(m.path(), ec2)) {
        if (!fs::is_directory(v.symlink_status())) continue;
        int64_t version = 0;
        const std::string vname = v.path().filename().string();
        if (!absl::SimpleAtoi(vname, &version) || version <= 0) {
          result.errors.push_back(
              {v.path().string(),
               absl::InvalidArgumentError(absl::StrCat(
                   "version folder \"", vname, "\" is not a positive integer; skipped"))});
          continue;
        }
        dirs[version] = v.path().string();
      }
      if (ec2) result.errors.push_back({m.path().string(), absl::InternalError(ec2.message())});
      std::vector<int64_t> found;
      for (const auto& [v, dir] : dirs) found.push_back(v);
      const Candidates candidates = Admitted(name, found);
      for (int64_t version : candidates.versions) {
        if (candidates.first_only && next.contains(name)) break;
        const std::string& dir = dirs[version];
        std::shared_ptr<const LoadedModel> old;
        if (auto it = current.find(name); it != current.end()) {
          if (auto v = it->second.find(version); v != it->second.end()) old = v->second;
        }
        if (old && old->fingerprint == Fingerprint(dir)) {
          next[name][version] = old;
          continue;
        }
        absl::StatusOr<std::shared_ptr<LoadedModel>> loaded = LoadVersion(dir, name, version);
        if (!loaded.ok()) {
          result.errors.push_back({dir, loaded.status()});
          if (old) next[name][version] = old;  // the loaded copy keeps serving
          continue;
        }
        if (options_.prepare) options_.prepare(**loaded);
        next[name][version] = *loaded;
        result.loaded.push_back(*loaded);
      }
    }
  }
  for (const auto& [name, versions] : current) {
    for (const auto& [v, m] : versions) {
      auto it = next.find(name);
      if (it == next.end() || it->second.find(v) == it->second.end()) {
        result.unloaded.push_back(m);
      }
    }
  }
  {
    std::lock_guard<std::mutex> lock(mu_);
    models_ = std::move(next);
    load_errors_ = result.errors;
  }
  return result;
}

absl::StatusOr<std::vector<std::shared_ptr<const LoadedModel>>> ModelRepository::Unload(
    const std::string& name, int64_t version) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = models_.find(name);
  std::vector<std::shared_ptr<const LoadedModel>> out;
  if (it != models_.end()) {
    for (auto v = it->second.begin(); v != it->second.end();) {
      if (version == 0 || v->first == version) {
        out.push_back(v->second);
        v = it->second.erase(v);
      } else {
        ++v;
      }
    }
    if (it->second.empty()) models_.erase(it);
  }
  if (out.empty()) {
    return absl::NotFoundError(absl::StrCat("model \"", name, "\"",
                                            version ? absl::StrCat(" version ", version) : "",
                                            " is not being served"));
  }
  return out;
}

std::vector<LoadError> ModelRepository::load_errors() const {
  std::lock_guard<std::mutex> lock(mu_);
  return load_errors_;
}

absl::StatusOr<std::shared_ptr<const LoadedModel>> ModelRepository::Find(
    const std::string& name, int64_t version) const {
  std::lock_guard<std::mutex> lock(mu_);
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
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<std::shared_ptr<const LoadedModel>> out;
  for (const auto& [name, versions] : models_) {
    for (const auto& [v, m] : versions) out.push_back(m);
  }
  return out;
}

}  // namespace wavepool::server
