// The assembled server: model repository, Classifier service, health and
// reflection, on one listening address. Used by main.cc and by the tests (which
// start it on 127.0.0.1:0).
#pragma once

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "grpcpp/server.h"
#include "server/classifier_service.h"
#include "server/model_repository.h"

namespace wavepool::server {

// How a model's windows are batched (see server/batcher.h).
struct BatchOptions {
  int max_batch_size = 32;         // 1 = no batching
  double max_queue_delay_ms = 2;   // how long a window waits for company
};

enum class VersionPolicy { kAll, kLatest, kSpecific };

struct ModelPolicy {
  std::string name;
  VersionPolicy policy = VersionPolicy::kAll;
  std::vector<int64_t> versions;       // kSpecific only
  std::optional<BatchOptions> batching;  // overrides ServerOptions::batching
};

struct TlsOptions {
  std::string cert_file;       // TLS on when set (with key_file)
  std::string key_file;
  std::string client_ca_file;  // mutual TLS when set
};

struct AuthOptions {
  std::string tokens_file;  // bearer tokens on when either is set
  std::string tokens_env;
};

// Everything the server can be told, by flags or the config file
// (proto/wavepool/v1/server_config.proto; server/config.h merges the two).
struct ServerOptions {
  std::string address = "0.0.0.0:50051";
  std::string model_repository = "./models";
  std::string metrics_address;  // "" = no HTTP endpoint
  double drain_timeout_s = 20;
  bool log_json = false;
  int workers = 0;  // inference threads; 0 = one per core
  double model_poll_interval_s = 0;  // 0 = reload only on the Admin RPC
  SessionLimits limits;
  StreamLimits stream_limits;
  BatchOptions batching;
  std::vector<ModelPolicy> models;
  TlsOptions tls;
  AuthOptions auth;
};

class WavepoolServer {
 public:
  // FAILED_PRECONDITION when the repository is unreadable, UNAVAILABLE when the
  // address cannot be listened on (taken, or not an address of this machine).
  static absl::StatusOr<std::unique_ptr<WavepoolServer>> Start(const ServerOptions& options);
  ~WavepoolServer();

  int port() const { return port_; }
  const ModelRepository& repository() const { return *repository_; }
  // Health goes NOT_SERVING, then in-flight calls get until `deadline` to end.
  void Shutdown(std::chrono::system_clock::time_point deadline);
  void Wait();

  // The health-service name of one model: "wavepool.v1.Classifier/<name>".
  static std::string HealthServiceName(const std::string& model);

 private:
  WavepoolServer() = default;
  std::unique_ptr<ModelRepository> repository_;
  std::unique_ptr<ClassifierService> service_;
  std::unique_ptr<grpc::Server> server_;
  int port_ = 0;
  bool shut_down_ = false;
};

}  // namespace wavepool::server
