#include "server/wavepool_server.h"

#include "absl/strings/str_cat.h"
#include "grpc/health/v1/health.pb.h"
#include "grpc/impl/codegen/grpc_types.h"
#include "grpcpp/ext/proto_server_reflection_plugin.h"
#include "grpcpp/health_check_service_interface.h"
#include "grpcpp/security/server_credentials.h"
#include "grpcpp/server_builder.h"
#include "util/status_macros.h"

namespace wavepool::server {

std::string WavepoolServer::HealthServiceName(const std::string& model) {
  return absl::StrCat(v1::Classifier::service_full_name(), "/", model);
}

absl::StatusOr<std::unique_ptr<WavepoolServer>> WavepoolServer::Start(
    const ServerOptions& options) {
  auto s = std::unique_ptr<WavepoolServer>(new WavepoolServer());
  ASSIGN_OR_RETURN(s->repository_, ModelRepository::Open(options.model_repository));
  s->service_ = std::make_unique<ClassifierService>(s->repository_.get(), options.limits);

  // Touch the health descriptor so its generated code is linked in and
  // registered: reflection can then describe grpc.health.v1.Health (the service
  // itself is gRPC's built-in default implementation).
  (void)grpc::health::v1::HealthCheckRequest::descriptor();
  grpc::EnableDefaultHealthCheckService(true);
  grpc::reflection::InitProtoReflectionServerBuilderPlugin();
  grpc::ServerBuilder builder;
  // gRPC sets SO_REUSEPORT by default on Linux, which would let a second server
  // silently share a taken port; the contract is a clear failure instead.
  builder.AddChannelArgument(GRPC_ARG_ALLOW_REUSEPORT, 0);
  builder.AddListeningPort(options.address, grpc::InsecureServerCredentials(), &s->port_);
  builder.RegisterService(s->service_.get());
  s->server_ = builder.BuildAndStart();
  if (!s->server_ || s->port_ == 0) {
    return absl::UnavailableError(absl::StrCat(
        "cannot listen on ", options.address,
        ": the address is taken or is not an address of this machine"));
  }
  grpc::HealthCheckServiceInterface* health = s->server_->GetHealthCheckService();
  health->SetServingStatus(true);
  for (const auto& m : s->repository_->List()) {
    health->SetServingStatus(HealthServiceName(m->name), true);
  }
  return s;
}

void WavepoolServer::Shutdown(std::chrono::system_clock::time_point deadline) {
  if (shut_down_) return;
  shut_down_ = true;
  server_->GetHealthCheckService()->SetServingStatus(false);
  server_->Shutdown(deadline);
}

void WavepoolServer::Wait() { server_->Wait(); }

WavepoolServer::~WavepoolServer() {
  if (server_) Shutdown(std::chrono::system_clock::now());
}

}  // namespace wavepool::server
