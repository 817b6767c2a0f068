// The assembled server: model repository, Classifier service, health and
// reflection, on one listening address. Used by main.cc and by the tests (which
// start it on 127.0.0.1:0).
#pragma once

#include <chrono>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "grpcpp/server.h"
#include "server/classifier_service.h"
#include "server/model_repository.h"

namespace wavepool::server {

struct ServerOptions {
  std::string address = "0.0.0.0:50051";
  std::string model_repository = "./models";
  SessionLimits limits;
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
