// The model repository: a folder of models/<name>/<version>/{spec.json,
// weights.safetensors}. Open loads every version the version policy admits;
// Reload rescans (new versions load, changed files reload, vanished versions
// unload); a version that fails to load is reported and never takes the others
// down (a previously loaded copy of it keeps serving). Thread-safe: lookups
// take a lock once per stream, never per window.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "dsp/beat_windows.h"
#include "dsp/log_mel.h"
#include "nn/ibp.h"
#include "nn/model.h"
#include "server/batcher.h"
#include "wavepool/v1/model_spec.pb.h"

namespace wavepool::server {

struct LoadedModel {
  std::string name;
  int64_t version = 0;
  std::string dir;
  std::string fingerprint;  // sizes and modification times of its two files
  std::shared_ptr<const nn::Model> model;
  // The model's interval bounds (|W| precomputed), for certify_epsilon; null
  // when the network has a layer IBP does not bound (interval_error says which).
  std::shared_ptr<const nn::IntervalModel> interval;
  absl::Status interval_error;
  bool beat_windows = false;           // kind BEAT_WINDOWS (ECG)
  dsp::FeatureWindowOptions features;  // FIXED_WINDOWS models
  dsp::BeatWindowOptions beats;        // BEAT_WINDOWS models
  v1::ModelDescription description;
  std::shared_ptr<ModelQueue> queue;   // its batch queue (null: score inline)
};

struct LoadError {
  std::string dir;
  absl::Status status;
};

enum class VersionPolicy { kAll, kLatest, kSpecific };

struct ModelPolicy {
  std::string name;
  VersionPolicy policy = VersionPolicy::kAll;
  std::vector<int64_t> versions;         // kSpecific only
  std::optional<BatchOptions> batching;  // overrides the server-wide batching
};

struct RepositoryOptions {
  std::vector<ModelPolicy> models;  // models not named: every version
  // Called on each freshly loaded version before it is served (the server
  // attaches its batch queue here).
  std::function<void(LoadedModel&)> prepare;
};

struct ReloadResult {
  std::vector<std::shared_ptr<const LoadedModel>> loaded;    // new or reloaded
  std::vector<std::shared_ptr<const LoadedModel>> unloaded;
  std::vector<LoadError> errors;
};

class ModelRepository {
 public:
  // Fails only when `root` cannot be read as a folder.
  static absl::StatusOr<std::unique_ptr<ModelRepository>> Open(const std::string& root,
                                                               RepositoryOptions options = {});

  // version 0 = the highest version. NOT_FOUND lists what exists. Names are looked
  // up in memory only; they never reach the file system.
  absl::StatusOr<std::shared_ptr<const LoadedModel>> Find(const std::string& name,
                                                          int64_t version) const;
  // Sorted by name, then version.
  std::vector<std::shared_ptr<const LoadedModel>> List() const;
  // The errors of the last scan (Open or Reload).
  std::vector<LoadError> load_errors() const;
  const std::string& root() const { return root_; }

  // Rescans the folder. Also re-admits versions Unload removed.
  ReloadResult Reload();
  // Stops serving `name` (version 0: every version). NOT_FOUND if not served.
  absl::StatusOr<std::vector<std::shared_ptr<const LoadedModel>>> Unload(
      const std::string& name, int64_t version);

  // Loads one model version folder (spec.json + weights.safetensors) and checks
  // that the spec's name and version match the folder's.
  static absl::StatusOr<std::shared_ptr<LoadedModel>> LoadVersion(const std::string& dir,
                                                                  const std::string& name,
                                                                  int64_t version);

 private:
  using Versions = std::map<int64_t, std::shared_ptr<const LoadedModel>>;
  // Which of the versions found in a model's folder the policy admits, in the
  // order to try them; first_only: only the first that serves is kept.
  struct Candidates {
    std::vector<int64_t> versions;
    bool first_only = false;
  };
  Candidates Admitted(const std::string& name, std::vector<int64_t> found) const;

  std::string root_;
  RepositoryOptions options_;
  std::mutex reload_mu_;  // one scan at a time
  mutable std::mutex mu_;  // guards models_ and load_errors_
  std::map<std::string, Versions> models_;
  std::vector<LoadError> load_errors_;
};

}  // namespace wavepool::server
