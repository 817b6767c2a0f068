// The wavepool.v1.Classifier service on gRPC's callback API: no thread is held
// per stream. Each stream decodes and computes features on gRPC's threads,
// hands its windows to the batcher, and writes results back in order.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "absl/status/status.h"
#include "server/batcher.h"
#include "server/metrics.h"
#include "server/model_repository.h"
#include "server/session.h"
#include "wavepool/v1/classifier.grpc.pb.h"

namespace wavepool::server {

// Decides whether a call may use a model (`model` empty for calls that name
// none) or the Admin service. OK, UNAUTHENTICATED or PERMISSION_DENIED.
using Authorizer = std::function<absl::Status(const grpc::CallbackServerContext& context,
                                              const std::string& model, bool admin)>;

// A call the registry can end from outside (idle or too long).
class Expirable {
 public:
  virtual ~Expirable() = default;
  virtual void Expire(const absl::Status& why) = 0;
};

// Open calls: counts against the limits (total and per client address), and a
// reaper thread that ends calls idle or open for too long. One lock per call
// opened or closed; activity is an atomic store per message.
class StreamRegistry {
 public:
  explicit StreamRegistry(const StreamLimits& limits);
  ~StreamRegistry();

  struct Entry {
    uint64_t id = 0;
    std::string peer;
    std::chrono::steady_clock::time_point opened;
    std::atomic<int64_t> last_activity_ns{0};
    Expirable* call = nullptr;
  };
  // RESOURCE_EXHAUSTED over a limit, UNAVAILABLE while draining.
  absl::StatusOr<Entry*> Open(const std::string& peer, Expirable* call);
  void Close(Entry* entry);
  static void Touch(Entry* entry);

  void BeginDrain() { draining_.store(true); }
  bool draining() const { return draining_.load(); }
  size_t open() const;

 private:
  void Reap();

  StreamLimits limits_;
  std::atomic<bool> draining_{false};
  mutable std::mutex mu_;
  std::condition_variable cv_;
  bool stopping_ = false;
  uint64_t next_id_ = 1;
  std::map<uint64_t, std::unique_ptr<Entry>> entries_;
  std::map<std::string, uint32_t> per_peer_;
  std::thread reaper_;
};

struct ServiceContext {
  ModelRepository* repository = nullptr;
  Batcher* batcher = nullptr;           // null: score inline
  ServerMetrics* metrics = nullptr;     // never null in the server
  StreamRegistry* registry = nullptr;
  Authorizer authorize;                 // empty: every call allowed
  SessionLimits limits;
  bool log_json = false;
};

class ClassifierService final : public v1::Classifier::CallbackService {
 public:
  explicit ClassifierService(ServiceContext context);

  grpc::ServerBidiReactor<v1::StreamClassifyRequest, v1::StreamClassifyResponse>* StreamClassify(
      grpc::CallbackServerContext* context) override;
  grpc::ServerUnaryReactor* Classify(grpc::CallbackServerContext* context,
                                     const v1::ClassifyRequest* request,
                                     v1::ClassifyResponse* response) override;
  grpc::ServerUnaryReactor* ListModels(grpc::CallbackServerContext* context,
                                       const v1::ListModelsRequest* request,
                                       v1::ListModelsResponse* response) override;
  grpc::ServerUnaryReactor* GetModel(grpc::CallbackServerContext* context,
                                     const v1::GetModelRequest* request,
                                     v1::GetModelResponse* response) override;

  // The ModelInfo of one loaded version (also used by the Admin service).
  static v1::ModelInfo Info(const LoadedModel& m);

 private:
  ServiceContext ctx_;
};

class AdminService final : public v1::Admin::CallbackService {
 public:
  // on_change runs after every reload or unload (the server updates health).
  AdminService(ServiceContext context, std::function<void()> on_change);

  grpc::ServerUnaryReactor* ReloadModels(grpc::CallbackServerContext* context,
                                         const v1::ReloadModelsRequest* request,
                                         v1::ReloadModelsResponse* response) override;
  grpc::ServerUnaryReactor* UnloadModel(grpc::CallbackServerContext* context,
                                        const v1::UnloadModelRequest* request,
                                        v1::UnloadModelResponse* response) override;

 private:
  ServiceContext ctx_;
  std::function<void()> on_change_;
};

}  // namespace wavepool::server
