#include "server/wavepool_server.h"

#include "absl/strings/str_cat.h"
#include "grpc/health/v1/health.pb.h"
#include "grpc/impl/codegen/grpc_types.h"
#include "grpcpp/ext/proto_server_reflection_plugin.h"
#include "grpcpp/health_check_service_interface.h"
#include "grpcpp/security/server_credentials.h"
#include "grpcpp/server_builder.h"
#include "server/auth.h"
#include "server/http_endpoint.h"
#include "server/tls.h"
#include "util/status_macros.h"

#ifndef WAVEPOOL_VERSION
#define WAVEPOOL_VERSION "unknown"
#endif

namespace wavepool::server {
namespace {

BatchOptions BatchingFor(const ServerOptions& options, const std::string& model) {
  for (const ModelPolicy& p : options.models) {
    if (p.name == model && p.batching) return *p.batching;
  }
  return options.batching;
}

}  // namespace

std::string WavepoolServer::HealthServiceName(const std::string& model) {
  return absl::StrCat(v1::Classifier::service_full_name(), "/", model);
}

absl::StatusOr<std::unique_ptr<WavepoolServer>> WavepoolServer::Start(
    const ServerOptions& options) {
  auto s = std::unique_ptr<WavepoolServer>(new WavepoolServer());
  s->options_ = options;
  ASSIGN_OR_RETURN(s->metrics_, ServerMetrics::Create(WAVEPOOL_VERSION));
  ASSIGN_OR_RETURN(std::shared_ptr<grpc::ServerCredentials> credentials,
                   MakeServerCredentials(options.tls));
  if (AuthEnabled(options.auth)) {
    ASSIGN_OR_RETURN(s->auth_, TokenAuthenticator::Create(options.auth));
  }
  s->batcher_ = std::make_unique<Batcher>(options.workers);

  // Every version loaded gets its batch queue, whose observer feeds the
  // version's metrics (one set of children per version, made once here).
  RepositoryOptions repo_options;
  repo_options.models = options.models;
  ServerMetrics* metrics = s->metrics_.get();
  Batcher* batcher = s->batcher_.get();
  repo_options.prepare = [metrics, batcher, options](LoadedModel& m) {
    const ModelMetrics* mm = &metrics->ForModel(m.name, m.version);
    m.queue = batcher->AddModel(m.model, BatchingFor(options, m.name),
                                [mm](const BatchStats& b) {
                                  mm->batch_size->Observe(static_cast<double>(b.size));
                                  mm->inference_seconds->Observe(b.inference_s);
                                  for (double d : b.queue_delays_s) {
                                    mm->queue_delay_seconds->Observe(d);
                                  }
                                });
  };
  ASSIGN_OR_RETURN(s->repository_,
                   ModelRepository::Open(options.model_repository, std::move(repo_options)));
  s->metrics_->model_load_errors().Increment(s->repository_->load_errors().size());
  s->registry_ = std::make_unique<StreamRegistry>(options.stream_limits);

  ServiceContext ctx;
  ctx.repository = s->repository_.get();
  ctx.batcher = s->batcher_.get();
  ctx.metrics = s->metrics_.get();
  ctx.registry = s->registry_.get();
  ctx.limits = options.limits;
  ctx.limits.max_chunk_samples = options.stream_limits.max_chunk_samples;
  ctx.log_json = options.log_json;
  if (s->auth_) {
    const TokenAuthenticator* auth = s->auth_.get();
    ctx.authorize = [auth](const grpc::CallbackServerContext& context, const std::string& model,
                           bool admin) {
      return auth->Check(context.client_metadata(), model, admin);
    };
  }
  s->service_ = std::make_unique<ClassifierService>(ctx);
  WavepoolServer* raw = s.get();
  s->admin_ = std::make_unique<AdminService>(ctx, [raw] { raw->UpdateModelStatus(); });

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
  const uint64_t max_message = options.stream_limits.max_message_bytes;
  builder.SetMaxReceiveMessageSize(
      max_message == 0 || max_message > INT32_MAX ? INT32_MAX : static_cast<int>(max_message));
  builder.AddListeningPort(options.address, credentials, &s->port_);
  builder.RegisterService(s->service_.get());
  builder.RegisterService(s->admin_.get());
  s->server_ = builder.BuildAndStart();
  if (!s->server_ || s->port_ == 0) {
    return absl::UnavailableError(absl::StrCat(
        "cannot listen on ", options.address,
        ": the address is taken or is not an address of this machine"));
  }
  s->server_->GetHealthCheckService()->SetServingStatus(true);
  s->UpdateModelStatus();

  if (!options.metrics_address.empty()) {
    HttpEndpointOptions http;
    http.address = options.metrics_address;
    http.metrics = [metrics] { return metrics->Render(); };
    // Ready: not draining, and at least one model to serve.
    http.ready = [raw] { return !raw->shut_down_.load() && !raw->repository_->List().empty(); };
    ASSIGN_OR_RETURN(s->http_, HttpEndpoint::Start(std::move(http)));
  }
  if (options.model_poll_interval_s > 0) {
    const double interval = options.model_poll_interval_s;
    s->poller_ = std::thread([raw, interval] { raw->PollModels(interval); });
  }
  return s;
}

int WavepoolServer::metrics_port() const { return http_ ? http_->port() : 0; }

void WavepoolServer::UpdateModelStatus() {
  std::lock_guard<std::mutex> lock(health_mu_);
  std::set<std::string> now;
  size_t versions = 0;
  for (const auto& m : repository_->List()) {
    now.insert(m->name);
    ++versions;
  }
  grpc::HealthCheckServiceInterface* health = server_->GetHealthCheckService();
  const bool serving = !shut_down_.load();
  for (const std::string& name : healthy_models_) {
    if (!now.contains(name)) health->SetServingStatus(HealthServiceName(name), false);
  }
  for (const std::string& name : now) health->SetServingStatus(HealthServiceName(name), serving);
  healthy_models_ = std::move(now);
  metrics_->models_loaded().Set(static_cast<double>(versions));
}

void WavepoolServer::PollModels(double interval_s) {
  std::unique_lock<std::mutex> lock(poll_mu_);
  for (;;) {
    poll_cv_.wait_for(lock, std::chrono::duration<double>(interval_s),
                      [this] { return stop_polling_; });
    if (stop_polling_) return;
    lock.unlock();
    const ReloadResult r = repository_->Reload();
    metrics_->model_load_errors().Increment(r.errors.size());
    if (!r.loaded.empty() || !r.unloaded.empty()) UpdateModelStatus();
    lock.lock();
  }
}

void WavepoolServer::Shutdown(std::chrono::system_clock::time_point deadline) {
  if (shut_down_.exchange(true)) return;
  {
    std::lock_guard<std::mutex> lock(poll_mu_);
    stop_polling_ = true;
  }
  poll_cv_.notify_all();
  if (poller_.joinable()) poller_.join();
  registry_->BeginDrain();
  server_->GetHealthCheckService()->Shutdown();
  server_->Shutdown(deadline);
}

void WavepoolServer::Wait() { server_->Wait(); }

WavepoolServer::~WavepoolServer() {
  if (server_) {
    Shutdown(std::chrono::system_clock::now());
    server_->Wait();
  }
  // Order: no call is left (server_ waited), so the batcher can stop; the HTTP
  // endpoint goes last so /metrics answers to the end.
  server_.reset();
  http_.reset();
  admin_.reset();
  service_.reset();
  repository_.reset();  // the models' batch queues leave the batcher
  batcher_.reset();
}

}  // namespace wavepool::server
