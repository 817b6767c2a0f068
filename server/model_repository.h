// The model repository: a folder of models/<name>/<version>/{spec.json,
// weights.safetensors}. Every version found is loaded at Open; one that fails is
// reported (load_errors) and never takes the others down.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "dsp/beat_windows.h"
#include "dsp/log_mel.h"
#include "nn/model.h"
#include "wavepool/v1/model_spec.pb.h"

namespace wavepool::server {

struct LoadedModel {
  std::string name;
  int64_t version = 0;
  std::string dir;
  std::shared_ptr<const nn::Model> model;
  bool beat_windows = false;           // kind BEAT_WINDOWS (ECG)
  dsp::FeatureWindowOptions features;  // FIXED_WINDOWS models
  dsp::BeatWindowOptions beats;        // BEAT_WINDOWS models
  v1::ModelDescription description;
};

struct LoadError {
  std::string dir;
  absl::Status status;
};

class ModelRepository {
 public:
  // Fails only when `root` cannot be read as a folder.
  static absl::StatusOr<std::unique_ptr<ModelRepository>> Open(const std::string& root);

  // version 0 = the highest version. NOT_FOUND lists what exists. Names are looked
  // up in memory only; they never reach the file system.
  absl::StatusOr<std::shared_ptr<const LoadedModel>> Find(const std::string& name,
                                                          int64_t version) const;
  // Sorted by name, then version.
  std::vector<std::shared_ptr<const LoadedModel>> List() const;
  const std::vector<LoadError>& load_errors() const { return load_errors_; }
  const std::string& root() const { return root_; }

  // Loads one model version folder (spec.json + weights.safetensors) and checks
  // that the spec's name and version match the folder's.
  static absl::StatusOr<std::shared_ptr<const LoadedModel>> LoadVersion(
      const std::string& dir, const std::string& name, int64_t version);

 private:
  std::string root_;
  std::map<std::string, std::map<int64_t, std::shared_ptr<const LoadedModel>>> models_;
  std::vector<LoadError> load_errors_;
};

}  // namespace wavepool::server
