// The assembled server: model repository, Classifier service, health and
// reflection, on one listening address. Used by main.cc and by the tests (which
// start it on 127.0.0.1:0).
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <set>
#include <thread>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "grpcpp/server.h"
#include "server/batcher.h"
#include "server/classifier_service.h"
#include "server/model_repository.h"

namespace wavepool::server {

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

class HttpEndpoint;
class TokenAuthenticator;

class WavepoolServer {
 public:
  // FAILED_PRECONDITION when the repository is unreadable, UNAVAILABLE when an
  // address cannot be listened on (taken, or not an address of this machine),
  // INVALID_ARGUMENT / FAILED_PRECONDITION for unusable TLS or token files.
  static absl::StatusOr<std::unique_ptr<WavepoolServer>> Start(const ServerOptions& options);
  ~WavepoolServer();

  int port() const { return port_; }
  int metrics_port() const;  // 0 when there is no HTTP endpoint
  ModelRepository& repository() const { return *repository_; }
  ServerMetrics& metrics() const { return *metrics_; }
  // Calls holding a slot in the stream registry (StreamClassify and Classify,
  // configured or not); a call gives its slot back when its status is decided.
  size_t open_calls() const { return registry_->open(); }
  // New calls get UNAVAILABLE and health goes NOT_SERVING; calls in flight get
  // until `deadline` to end (then they are cancelled).
  void Shutdown(std::chrono::system_clock::time_point deadline);
  void Wait();

  // The health-service name of one model: "wavepool.v1.Classifier/<name>".
  static std::string HealthServiceName(const std::string& model);

 private:
  WavepoolServer() = default;
  // Health per model and the loaded-models gauge, after a (re)load.
  void UpdateModelStatus();
  void PollModels(double interval_s);

  ServerOptions options_;
  std::unique_ptr<ServerMetrics> metrics_;
  std::unique_ptr<Batcher> batcher_;
  std::unique_ptr<ModelRepository> repository_;
  std::unique_ptr<StreamRegistry> registry_;
  std::unique_ptr<TokenAuthenticator> auth_;
  std::unique_ptr<ClassifierService> service_;
  std::unique_ptr<AdminService> admin_;
  std::unique_ptr<grpc::Server> server_;
  std::unique_ptr<HttpEndpoint> http_;
  std::mutex health_mu_;
  std::set<std::string> healthy_models_;  // guarded by health_mu_
  std::mutex poll_mu_;
  std::condition_variable poll_cv_;
  bool stop_polling_ = false;  // guarded by poll_mu_
  std::thread poller_;
  std::atomic<bool> shut_down_{false};
  int port_ = 0;
};

}  // namespace wavepool::server
