#include "server/classifier_service.h"

#include <chrono>
#include <deque>

#include "absl/strings/str_cat.h"
#include "nn/describe.h"
#include "nn/spec.h"
#include "server/status_map.h"
#include "util/status_macros.h"

namespace wavepool::server {
namespace {

using Clock = std::chrono::steady_clock;

double SecondsSince(Clock::time_point t) {
  return std::chrono::duration<double>(Clock::now() - t).count();
}

absl::StatusOr<std::unique_ptr<Session>> OpenSession(const ModelRepository& repository,
                                                     const v1::StreamConfig& config,
                                                     const SessionLimits& limits) {
  if (config.model().empty()) {
    return absl::InvalidArgumentError(
        "StreamConfig.model is empty; name a model (ListModels shows them)");
  }
  ASSIGN_OR_RETURN(std::shared_ptr<const LoadedModel> model,
                   repository.Find(config.model(), config.version()));
  return Session::Create(config, std::move(model), limits);
}

// One reactor per StreamClassify call. At most one operation (a read or a write)
// is outstanding at any time, so no two callbacks of one stream ever run at
// once and no lock is needed. A read is started only once every result of the
// previous chunk is written: a client that does not read its results stops
// being read from (flow control back-pressures that stream alone).
class StreamReactor final
    : public grpc::ServerBidiReactor<v1::StreamClassifyRequest, v1::StreamClassifyResponse> {
 public:
  StreamReactor(grpc::CallbackServerContext* context, const ModelRepository* repository,
                const SessionLimits& limits)
      : context_(context), repository_(repository), limits_(limits) {
    StartRead(&request_);
  }

  void OnReadDone(bool ok) override {
    if (!ok) {
      EndOfInput();
    } else {
      absl::Status status = Handle();
      if (!status.ok()) Fail(status);
    }
    Pump();
  }

  void OnWriteDone(bool ok) override {
    if (!ok) {
      // The client is gone; nothing more can be delivered.
      Finish(grpc::Status(grpc::StatusCode::CANCELLED, "the client stopped receiving"));
      return;
    }
    queue_.pop_front();
    Pump();
  }

  void OnDone() override { delete this; }

 private:
  void Pump() {
    if (!queue_.empty()) {
      StartWrite(&queue_.front());
    } else if (finishing_) {
      Finish(final_status_);
    } else {
      StartRead(&request_);
    }
  }

  // Results queue up in order for writing.
  void QueueWindow(v1::WindowResult&& w) {
    queue_.emplace_back();
    *queue_.back().mutable_window() = std::move(w);
  }
  void QueueEvent(v1::Event&& e) {
    queue_.emplace_back();
    *queue_.back().mutable_event() = std::move(e);
  }

  void Fail(const absl::Status& status) {
    final_status_ = ToGrpcStatus(status);
    finishing_ = true;
  }

  absl::Status Handle() {
    switch (request_.kind_case()) {
      case v1::StreamClassifyRequest::kConfig: {
        if (session_) {
          return absl::InvalidArgumentError(
              "a second StreamConfig arrived; send the config once, as the first message");
        }
        ASSIGN_OR_RETURN(session_, OpenSession(*repository_, request_.config(), limits_));
        started_ = Clock::now();
        return absl::OkStatus();
      }
      case v1::StreamClassifyRequest::kSamples: {
        if (!session_) {
          return absl::InvalidArgumentError(
              "samples arrived before the StreamConfig; the first message must be a config");
        }
        auto window = [this](v1::WindowResult&& w) { QueueWindow(std::move(w)); };
        auto event = [this](v1::Event&& e) { QueueEvent(std::move(e)); };
        return session_->Push(request_.samples(), SessionOutput{window, event});
      }
      default:
        return absl::InvalidArgumentError(
            "a StreamClassifyRequest must set config or samples; this one sets neither");
    }
  }

  void EndOfInput() {
    if (context_->IsCancelled()) {
      Fail(absl::CancelledError("the client cancelled the stream"));
      queue_.clear();
      return;
    }
    if (!session_) {
      Fail(absl::InvalidArgumentError(
          "the stream ended before a StreamConfig; send a config, then samples"));
      return;
    }
    auto window = [this](v1::WindowResult&& w) { QueueWindow(std::move(w)); };
    auto event = [this](v1::Event&& e) { QueueEvent(std::move(e)); };
    absl::StatusOr<v1::StreamSummary> summary =
        session_->Finish(SessionOutput{window, event}, SecondsSince(started_));
    if (!summary.ok()) {
      Fail(summary.status());
      return;
    }
    queue_.emplace_back();
    *queue_.back().mutable_summary() = *std::move(summary);
    final_status_ = grpc::Status::OK;
    finishing_ = true;
  }

  grpc::CallbackServerContext* context_;
  const ModelRepository* repository_;
  SessionLimits limits_;
  v1::StreamClassifyRequest request_;
  std::deque<v1::StreamClassifyResponse> queue_;
  std::unique_ptr<Session> session_;
  Clock::time_point started_ = Clock::now();
  bool finishing_ = false;
  grpc::Status final_status_;
};

absl::Status DoClassify(const ModelRepository& repository, const SessionLimits& limits,
                        const v1::ClassifyRequest& request, v1::ClassifyResponse* response) {
  const Clock::time_point started = Clock::now();
  ASSIGN_OR_RETURN(std::unique_ptr<Session> session,
                   OpenSession(repository, request.config(), limits));
  auto add_window = [&](v1::WindowResult&& w) { *response->add_windows() = std::move(w); };
  auto add_event = [&](v1::Event&& e) { *response->add_events() = std::move(e); };
  const SessionOutput out{add_window, add_event};
  RETURN_IF_ERROR(session->Push(request.samples(), out));
  ASSIGN_OR_RETURN(*response->mutable_summary(), session->Finish(out, SecondsSince(started)));
  return absl::OkStatus();
}

absl::Status DoGetModel(const ModelRepository& repository, const v1::GetModelRequest& request,
                        v1::GetModelResponse* response) {
  ASSIGN_OR_RETURN(std::shared_ptr<const LoadedModel> model,
                   repository.Find(request.model(), request.version()));
  *response->mutable_spec() = model->model->spec();
  if (request.pool_overrides_size() == 0) {
    *response->mutable_description() = model->description;
    return absl::OkStatus();
  }
  v1::ModelSpec spec = model->model->spec();
  const std::vector<v1::PoolOverride> overrides(request.pool_overrides().begin(),
                                                request.pool_overrides().end());
  RETURN_IF_ERROR(nn::ApplyPoolOverrides(overrides, &spec));
  ASSIGN_OR_RETURN(*response->mutable_description(), nn::Describe(spec));
  *response->mutable_spec() = spec;
  return absl::OkStatus();
}

}  // namespace

ClassifierService::ClassifierService(const ModelRepository* repository, SessionLimits limits)
    : repository_(repository), limits_(limits) {}

grpc::ServerBidiReactor<v1::StreamClassifyRequest, v1::StreamClassifyResponse>*
ClassifierService::StreamClassify(grpc::CallbackServerContext* context) {
  return new StreamReactor(context, repository_, limits_);
}

grpc::ServerUnaryReactor* ClassifierService::Classify(grpc::CallbackServerContext* context,
                                                      const v1::ClassifyRequest* request,
                                                      v1::ClassifyResponse* response) {
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  reactor->Finish(ToGrpcStatus(DoClassify(*repository_, limits_, *request, response)));
  return reactor;
}

grpc::ServerUnaryReactor* ClassifierService::ListModels(grpc::CallbackServerContext* context,
                                                        const v1::ListModelsRequest*,
                                                        v1::ListModelsResponse* response) {
  for (const auto& m : repository_->List()) {
    const v1::ModelSpec& spec = m->model->spec();
    v1::ModelInfo* info = response->add_models();
    info->set_name(m->name);
    info->set_version(m->version);
    info->set_description(spec.description());
    info->set_kind(spec.kind());
    info->set_sample_rate_hz(spec.sample_rate_hz());
    *info->mutable_labels() = spec.labels();
    if (m->beat_windows) {
      // One window per detected beat: its span, and no fixed hop.
      info->set_window_s(spec.beat_windowing().before_s() + spec.beat_windowing().after_s());
      info->set_hop_s(0);
    } else {
      info->set_window_s(spec.windowing().length_samples() / spec.sample_rate_hz());
      info->set_hop_s(spec.windowing().hop_samples() / spec.sample_rate_hz());
    }
    info->set_trained(spec.provenance().trained());
  }
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  reactor->Finish(grpc::Status::OK);
  return reactor;
}

grpc::ServerUnaryReactor* ClassifierService::GetModel(grpc::CallbackServerContext* context,
                                                      const v1::GetModelRequest* request,
                                                      v1::GetModelResponse* response) {
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  reactor->Finish(ToGrpcStatus(DoGetModel(*repository_, *request, response)));
  return reactor;
}

}  // namespace wavepool::server
