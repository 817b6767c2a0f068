#include "server/classifier_service.h"

#include <chrono>
#include <deque>
#include <utility>

#include "absl/strings/str_cat.h"
#include "nn/describe.h"
#include "nn/spec.h"
#include "server/log.h"
#include "server/status_map.h"
#include "util/status_macros.h"

namespace wavepool::server {
namespace {

using Clock = std::chrono::steady_clock;

double SecondsSince(Clock::time_point t) {
  return std::chrono::duration<double>(Clock::now() - t).count();
}

int64_t NowNs() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             Clock::now().time_since_epoch())
      .count();
}

// "ipv4:127.0.0.1:5555" -> "ipv4:127.0.0.1"; "ipv6:[::1]:5555" -> "ipv6:[::1]".
std::string PeerAddress(const std::string& peer) {
  const size_t colon = peer.rfind(':');
  const size_t first = peer.find(':');
  if (colon == std::string::npos || colon == first) return peer;
  return peer.substr(0, colon);
}

// The server's copy of a call's deadline is later than the client's by the
// time its headers took to arrive (and the grpc-timeout rounding up), so when
// the client's deadline fires first, its RST_STREAM can end the call before
// the server's copy has passed: without a margin, 1 to 4 of 8 such calls in
// server_faults_test were counted as CANCELLED. Within this margin of its
// deadline a cancelled call is taken to have run out of time; a client that
// cancels on purpose less than a second before its own deadline is counted
// as a deadline, the lesser error.
constexpr std::chrono::seconds kDeadlineMargin{1};

bool DeadlinePassed(const grpc::CallbackServerContext& context) {
  return context.deadline() <= std::chrono::system_clock::now() + kDeadlineMargin;
}

// A cancelled call: its deadline passed, or the client (or the server's
// shutdown) cancelled it. Logs and metrics then say which.
absl::Status WhyCancelled(const grpc::CallbackServerContext& context, const char* what) {
  if (DeadlinePassed(context)) {
    return absl::DeadlineExceededError(absl::StrCat("the ", what, "'s deadline passed"));
  }
  return absl::CancelledError(absl::StrCat("the ", what, " was cancelled"));
}

absl::Status Authorize(const ServiceContext& ctx, const grpc::CallbackServerContext& context,
                       const std::string& model, bool admin) {
  if (!ctx.authorize) return absl::OkStatus();
  return ctx.authorize(context, model, admin);
}

// Opens a session on the model the config names, after the caller's token is
// checked against that model.
absl::StatusOr<std::unique_ptr<Session>> OpenSession(const ServiceContext& ctx,
                                                     const grpc::CallbackServerContext& context,
                                                     const v1::StreamConfig& config) {
  if (config.model().empty()) {
    return absl::InvalidArgumentError(
        "StreamConfig.model is empty; name a model (ListModels shows them)");
  }
  RETURN_IF_ERROR(Authorize(ctx, context, config.model(), false));
  ASSIGN_OR_RETURN(std::shared_ptr<const LoadedModel> model,
                   ctx.repository->Find(config.model(), config.version()));
  return Session::Create(config, std::move(model), ctx.limits);
}

// The part of a call both RPCs share: stage a session's windows, score them
// (batched or inline), emit the results. Subclasses say where results go and
// what happens when everything is emitted.
class SessionDriver : public BatchCompletion, public Expirable {
 protected:
  explicit SessionDriver(const ServiceContext* ctx) : ctx_(ctx) {}

  // Stages and scores until a batch is in flight (returns false: OnScored
  // resumes) or nothing is left to stage (returns true).
  bool Drive() {
    for (;;) {
      while (session_->pending() == 0 && session_->Stage()) {
      }
      if (session_->pending() == 0) return true;
      const LoadedModel& m = session_->model();
      if (ctx_->batcher != nullptr && m.queue) {
        ctx_->batcher->Submit(*m.queue, session_->pending_inputs(), session_->pending_scores(),
                              session_->pending(), this);
        return false;
      }
      session_->ScoreInline();
      EmitPending();
    }
  }

  void EmitPending() {
    const size_t n = session_->pending();
    auto window = [this](v1::WindowResult&& w) { OnWindow(std::move(w)); };
    auto event = [this](v1::Event&& e) { OnEvent(std::move(e)); };
    session_->Emit(SessionOutput{window, event});
    if (model_metrics_ != nullptr && n > 0) {
      model_metrics_->windows_total->Increment(n);
      const double latency = SecondsSince(chunk_received_);
      for (size_t i = 0; i < n; ++i) model_metrics_->window_latency_seconds->Observe(latency);
    }
  }

  void Bind(std::unique_ptr<Session> session) {
    session_ = std::move(session);
    const LoadedModel& m = session_->model();
    model_metrics_ = &ctx_->metrics->ForModel(m.name, m.version);
    model_metrics_->streams_open->Increment();
    model_metrics_->streams_total->Increment();
  }
  void Unbind() {
    if (model_metrics_ != nullptr) model_metrics_->streams_open->Decrement();
    model_metrics_ = nullptr;
  }
  void CountError(const char* method, const grpc::Status& status) {
    if (!status.ok() && ctx_->metrics != nullptr) {
      ctx_->metrics->Errors(method, static_cast<absl::StatusCode>(status.error_code()))
          .Increment();
    }
  }

  void ReleaseSlot() {
    if (entry_ != nullptr) ctx_->registry->Close(std::exchange(entry_, nullptr));
  }

  // The one stream_end log line of a call, written when its status is decided
  // and before its slot is released (nothing is logged per window). Stream id 0:
  // refused before it had a registry entry; model: the one requested until a
  // session is open, then the one serving it.
  void LogEnd(const char* method, const grpc::Status& status, const std::string& peer) const {
    const v1::StreamSummary sum = session_ ? session_->Summary(0) : v1::StreamSummary();
    const std::string& model = session_ ? session_->model().name : requested_model_;
    const int64_t version = session_ ? session_->model().version : requested_version_;
    const auto code = static_cast<absl::StatusCode>(status.error_code());
    const LogLevel level = status.ok() || code == absl::StatusCode::kCancelled
                               ? LogLevel::kInfo
                               : LogLevel::kWarning;
    const uint64_t id = entry_ != nullptr ? entry_->id : 0;
    const std::string code_name = absl::StatusCodeToString(code);
    const double seconds = SecondsSince(opened_);
    if (status.ok()) {
      Log(level, "stream_end",
          {{"stream", id}, {"method", method}, {"peer", peer}, {"model", model},
           {"version", version}, {"windows", sum.windows()}, {"events", sum.events()},
           {"samples", sum.samples_received()}, {"seconds", seconds}, {"code", code_name}});
    } else {
      Log(level, "stream_end",
          {{"stream", id}, {"method", method}, {"peer", peer}, {"model", model},
           {"version", version}, {"windows", sum.windows()}, {"events", sum.events()},
           {"samples", sum.samples_received()}, {"seconds", seconds}, {"code", code_name},
           {"message", status.error_message()}});
    }
  }
  virtual void OnWindow(v1::WindowResult&& w) = 0;
  virtual void OnEvent(v1::Event&& e) = 0;

  const ServiceContext* ctx_;
  std::unique_ptr<Session> session_;
  const ModelMetrics* model_metrics_ = nullptr;
  Clock::time_point started_ = Clock::now();
  Clock::time_point chunk_received_ = Clock::now();
  const Clock::time_point opened_ = Clock::now();  // for stream_end's seconds
  std::string requested_model_;                     // from the config, for stream_end
  int64_t requested_version_ = 0;
  StreamRegistry::Entry* entry_ = nullptr;
};

// One reactor per StreamClassify call. At most one operation (a read, a write,
// or a batch in the batcher) is outstanding at any time, so no two callbacks of
// one stream run at once. A read is started only once every result of the
// previous chunk is written: a client that does not read its results stops
// being read from (flow control back-pressures that stream alone). mu_ only
// orders the reaper's Expire against the stream's own steps (one lock per
// message, never per window).
class StreamReactor final
    : public grpc::ServerBidiReactor<v1::StreamClassifyRequest, v1::StreamClassifyResponse>,
      public SessionDriver {
 public:
  StreamReactor(grpc::CallbackServerContext* context, const ServiceContext* ctx)
      : SessionDriver(ctx), context_(context) {
    absl::StatusOr<StreamRegistry::Entry*> entry =
        ctx_->registry->Open(PeerAddress(context->peer()), this);
    if (!entry.ok()) {
      FinishOnce(ToGrpcStatus(entry.status()));
      return;
    }
    entry_ = *entry;
    StreamRegistry::Touch(entry_);
    BeginRead();
  }

  void OnReadDone(bool ok) override {
    {
      std::lock_guard<std::mutex> lock(mu_);
      reading_ = false;
      if (finished_) return;
    }
    StreamRegistry::Touch(entry_);
    chunk_received_ = Clock::now();
    if (!ok) {
      EndOfInput();
    } else {
      absl::Status status = Handle();
      if (!status.ok()) Fail(status);
    }
    Next();
  }

  void OnWriteDone(bool ok) override {
    {
      std::lock_guard<std::mutex> lock(mu_);
      writing_ = false;
    }
    if (!ok) {
      // The client is gone (or its deadline passed); nothing more can be delivered.
      queue_.clear();
      FinishOnce(DeadlinePassed(*context_)
                     ? ToGrpcStatus(WhyCancelled(*context_, "stream"))
                     : grpc::Status(grpc::StatusCode::CANCELLED, "the client stopped receiving"));
      return;
    }
    queue_.pop_front();
    StreamRegistry::Touch(entry_);
    Next();
  }

  // A batch of this stream's windows is scored (on a batcher thread).
  void OnScored() override {
    if (context_->IsCancelled()) {
      queue_.clear();
      FinishOnce(ToGrpcStatus(WhyCancelled(*context_, "stream")));
      return;
    }
    StreamRegistry::Touch(entry_);
    EmitPending();
    Next();
  }

  // From the registry's reaper thread. No gRPC call is made under mu_ (a
  // reaction could run inline and take it again).
  void Expire(const absl::Status& why) override {
    bool finish_now = false, cancel = false;
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (finished_) return;
      if (reading_) {
        // Waiting on the client: end the call now; the read completes not-ok.
        finished_ = true;
        finish_now = true;
      } else {
        expired_ = why;
        // A write stalled on a client that does not read would wait forever.
        cancel = writing_;
      }
    }
    if (finish_now) {
      const grpc::Status status = ToGrpcStatus(why);
      CountError("StreamClassify", status);
      LogEnd("StreamClassify", status, context_->peer());
      Finish(status);
    } else if (cancel) {
      context_->TryCancel();
    }
  }

  void OnDone() override {
    Unbind();
    if (entry_ != nullptr) ctx_->registry->Close(entry_);
    delete this;
  }

 private:
  void BeginRead() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (finished_) return;
      reading_ = true;
    }
    StreamRegistry::Touch(entry_);
    StartRead(&request_);
  }

  // The single place that decides the next operation; runs with none outstanding.
  void Next() {
    for (;;) {
      if (!queue_.empty()) {
        {
          std::lock_guard<std::mutex> lock(mu_);
          if (finished_) return;
          writing_ = true;
        }
        StartWrite(&queue_.front());
        return;
      }
      {
        std::lock_guard<std::mutex> lock(mu_);
        if (finished_) return;
        if (!expired_.ok() && !finishing_) {
          final_status_ = ToGrpcStatus(expired_);
          finishing_ = true;
        }
      }
      if (finishing_) {
        FinishOnce(final_status_);
        return;
      }
      if (session_) {
        if (!Drive()) return;  // OnScored resumes
        if (!queue_.empty()) continue;
        if (session_->done()) {
          queue_.emplace_back();
          *queue_.back().mutable_summary() = session_->Summary(SecondsSince(started_));
          final_status_ = grpc::Status::OK;
          finishing_ = true;
          continue;
        }
      }
      BeginRead();
      return;
    }
  }

  void FinishOnce(const grpc::Status& status) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (finished_) return;
      finished_ = true;
    }
    CountError("StreamClassify", status);
    LogEnd("StreamClassify", status, context_->peer());
    ReleaseSlot();
    Finish(status);
  }

  void OnWindow(v1::WindowResult&& w) override {
    queue_.emplace_back();
    *queue_.back().mutable_window() = std::move(w);
  }
  void OnEvent(v1::Event&& e) override {
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
        requested_model_ = request_.config().model();
        requested_version_ = request_.config().version();
        ASSIGN_OR_RETURN(std::unique_ptr<Session> session,
                         OpenSession(*ctx_, *context_, request_.config()));
        Bind(std::move(session));
        started_ = Clock::now();
        return absl::OkStatus();
      }
      case v1::StreamClassifyRequest::kSamples:
        if (!session_) {
          return absl::InvalidArgumentError(
              "samples arrived before the StreamConfig; the first message must be a config");
        }
        return session_->Accept(request_.samples());
      default:
        return absl::InvalidArgumentError(
            "a StreamClassifyRequest must set config or samples; this one sets neither");
    }
  }

  void EndOfInput() {
    if (context_->IsCancelled()) {
      Fail(WhyCancelled(*context_, "stream"));
      queue_.clear();
      return;
    }
    if (!session_) {
      Fail(absl::InvalidArgumentError(
          "the stream ended before a StreamConfig; send a config, then samples"));
      return;
    }
    session_->EndInput();
  }

  grpc::CallbackServerContext* context_;
  v1::StreamClassifyRequest request_;
  std::deque<v1::StreamClassifyResponse> queue_;
  bool finishing_ = false;
  grpc::Status final_status_;
  std::mutex mu_;
  bool reading_ = false;   // guarded by mu_
  bool writing_ = false;   // guarded by mu_
  bool finished_ = false;  // guarded by mu_
  absl::Status expired_;   // guarded by mu_
};

// One Classify call: the whole signal in one request, staged in slices like a
// stream so that memory stays bounded whatever its length.
class ClassifyReactor final : public grpc::ServerUnaryReactor, public SessionDriver {
 public:
  ClassifyReactor(grpc::CallbackServerContext* context, const ServiceContext* ctx,
                  const v1::ClassifyRequest* request, v1::ClassifyResponse* response)
      : SessionDriver(ctx), context_(context), response_(response) {
    requested_model_ = request->config().model();
    requested_version_ = request->config().version();
    absl::StatusOr<StreamRegistry::Entry*> entry =
        ctx_->registry->Open(PeerAddress(context->peer()), this);
    if (!entry.ok()) {
      Done(entry.status());
      return;
    }
    entry_ = *entry;
    absl::StatusOr<std::unique_ptr<Session>> session =
        OpenSession(*ctx_, *context, request->config());
    if (!session.ok()) {
      Done(session.status());
      return;
    }
    Bind(*std::move(session));
    if (absl::Status s = session_->Accept(request->samples()); !s.ok()) {
      Done(s);
      return;
    }
    session_->EndInput();
    Continue();
  }

  void OnScored() override {
    if (context_->IsCancelled()) {
      Done(WhyCancelled(*context_, "call"));
      return;
    }
    StreamRegistry::Touch(entry_);
    EmitPending();
    Continue();
  }

  void Expire(const absl::Status& why) override {
    std::lock_guard<std::mutex> lock(mu_);
    expired_ = why;
  }

  void OnDone() override {
    Unbind();
    if (entry_ != nullptr) ctx_->registry->Close(entry_);
    delete this;
  }

 private:
  void Continue() {
    absl::Status why;
    {
      std::lock_guard<std::mutex> lock(mu_);
      why = expired_;
    }
    if (!why.ok()) {
      Done(why);
      return;
    }
    if (!Drive()) return;
    *response_->mutable_summary() = session_->Summary(SecondsSince(started_));
    Done(absl::OkStatus());
  }

  void Done(const absl::Status& status) {
    const grpc::Status s = ToGrpcStatus(status);
    CountError("Classify", s);
    LogEnd("Classify", s, context_->peer());
    ReleaseSlot();
    Finish(s);
  }

  void OnWindow(v1::WindowResult&& w) override { *response_->add_windows() = std::move(w); }
  void OnEvent(v1::Event&& e) override { *response_->add_events() = std::move(e); }

  grpc::CallbackServerContext* context_;
  v1::ClassifyResponse* response_;
  std::mutex mu_;
  absl::Status expired_;  // guarded by mu_
};

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

grpc::ServerUnaryReactor* FinishNow(grpc::CallbackServerContext* context,
                                    const ServiceContext& ctx, const char* method,
                                    const absl::Status& status) {
  const grpc::Status s = ToGrpcStatus(status);
  if (!s.ok() && ctx.metrics != nullptr) {
    ctx.metrics->Errors(method, static_cast<absl::StatusCode>(s.error_code())).Increment();
  }
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  reactor->Finish(s);
  return reactor;
}

}  // namespace

// ---- StreamRegistry ----

StreamRegistry::StreamRegistry(const StreamLimits& limits) : limits_(limits) {
  reaper_ = std::thread([this] { Reap(); });
}

StreamRegistry::~StreamRegistry() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  reaper_.join();
}

absl::StatusOr<StreamRegistry::Entry*> StreamRegistry::Open(const std::string& peer,
                                                            Expirable* call) {
  if (draining()) {
    return absl::UnavailableError(
        "the server is shutting down; retry on another replica or after it restarts");
  }
  std::lock_guard<std::mutex> lock(mu_);
  if (limits_.max_streams > 0 && entries_.size() >= limits_.max_streams) {
    return absl::ResourceExhaustedError(absl::StrCat(
        "the server already holds ", entries_.size(), " open calls (max_streams ",
        limits_.max_streams, "); retry later or on another replica"));
  }
  uint32_t& n = per_peer_[peer];
  if (limits_.max_streams_per_peer > 0 && n >= limits_.max_streams_per_peer) {
    return absl::ResourceExhaustedError(absl::StrCat(
        "your address already holds ", n, " open calls (max_streams_per_peer ",
        limits_.max_streams_per_peer, "); close some first"));
  }
  ++n;
  auto entry = std::make_unique<Entry>();
  entry->id = next_id_++;
  entry->peer = peer;
  entry->opened = Clock::now();
  entry->call = call;
  Entry* raw = entry.get();
  entries_.emplace(raw->id, std::move(entry));
  return raw;
}

void StreamRegistry::Close(Entry* entry) {
  std::lock_guard<std::mutex> lock(mu_);
  auto p = per_peer_.find(entry->peer);
  if (p != per_peer_.end() && --p->second == 0) per_peer_.erase(p);
  entries_.erase(entry->id);
}

void StreamRegistry::Touch(Entry* entry) {
  if (entry == nullptr) return;  // the call already gave its slot back
  entry->last_activity_ns.store(NowNs(), std::memory_order_relaxed);
}

size_t StreamRegistry::open() const {
  std::lock_guard<std::mutex> lock(mu_);
  return entries_.size();
}

void StreamRegistry::Reap() {
  std::unique_lock<std::mutex> lock(mu_);
  while (!stopping_) {
    cv_.wait_for(lock, std::chrono::milliseconds(100));
    if (stopping_) return;
    const Clock::time_point now = Clock::now();
    const int64_t now_ns = NowNs();
    for (auto& [id, e] : entries_) {
      const double open_s = std::chrono::duration<double>(now - e->opened).count();
      const int64_t last = e->last_activity_ns.load(std::memory_order_relaxed);
      const double idle_s = last == 0 ? open_s : static_cast<double>(now_ns - last) * 1e-9;
      // Expire only takes the call's own lock, never the registry's.
      if (limits_.max_stream_duration_s > 0 && open_s > limits_.max_stream_duration_s) {
        e->call->Expire(absl::ResourceExhaustedError(absl::StrCat(
            "the call has been open for more than max_stream_duration_s (",
            limits_.max_stream_duration_s, " s); open a new stream to go on")));
      } else if (limits_.idle_timeout_s > 0 && idle_s > limits_.idle_timeout_s) {
        e->call->Expire(absl::ResourceExhaustedError(absl::StrCat(
            "no message for more than idle_timeout_s (", limits_.idle_timeout_s,
            " s); the server ended the idle stream")));
      }
    }
  }
}

// ---- ClassifierService ----

ClassifierService::ClassifierService(ServiceContext context) : ctx_(std::move(context)) {}

grpc::ServerBidiReactor<v1::StreamClassifyRequest, v1::StreamClassifyResponse>*
ClassifierService::StreamClassify(grpc::CallbackServerContext* context) {
  return new StreamReactor(context, &ctx_);
}

grpc::ServerUnaryReactor* ClassifierService::Classify(grpc::CallbackServerContext* context,
                                                      const v1::ClassifyRequest* request,
                                                      v1::ClassifyResponse* response) {
  return new ClassifyReactor(context, &ctx_, request, response);
}

v1::ModelInfo ClassifierService::Info(const LoadedModel& m) {
  const v1::ModelSpec& spec = m.model->spec();
  v1::ModelInfo info;
  info.set_name(m.name);
  info.set_version(m.version);
  info.set_description(spec.description());
  info.set_kind(spec.kind());
  info.set_sample_rate_hz(spec.sample_rate_hz());
  *info.mutable_labels() = spec.labels();
  if (m.beat_windows) {
    // One window per detected beat: its span, and no fixed hop.
    info.set_window_s(spec.beat_windowing().before_s() + spec.beat_windowing().after_s());
    info.set_hop_s(0);
  } else {
    info.set_window_s(spec.windowing().length_samples() / spec.sample_rate_hz());
    info.set_hop_s(spec.windowing().hop_samples() / spec.sample_rate_hz());
  }
  info.set_trained(spec.provenance().trained());
  return info;
}

grpc::ServerUnaryReactor* ClassifierService::ListModels(grpc::CallbackServerContext* context,
                                                        const v1::ListModelsRequest*,
                                                        v1::ListModelsResponse* response) {
  if (absl::Status s = Authorize(ctx_, *context, "", false); !s.ok()) {
    return FinishNow(context, ctx_, "ListModels", s);
  }
  for (const auto& m : ctx_.repository->List()) *response->add_models() = Info(*m);
  return FinishNow(context, ctx_, "ListModels", absl::OkStatus());
}

grpc::ServerUnaryReactor* ClassifierService::GetModel(grpc::CallbackServerContext* context,
                                                      const v1::GetModelRequest* request,
                                                      v1::GetModelResponse* response) {
  absl::Status s = Authorize(ctx_, *context, request->model(), false);
  if (s.ok()) s = DoGetModel(*ctx_.repository, *request, response);
  return FinishNow(context, ctx_, "GetModel", s);
}

// ---- AdminService ----

AdminService::AdminService(ServiceContext context, std::function<void()> on_change)
    : ctx_(std::move(context)), on_change_(std::move(on_change)) {}

grpc::ServerUnaryReactor* AdminService::ReloadModels(grpc::CallbackServerContext* context,
                                                     const v1::ReloadModelsRequest*,
                                                     v1::ReloadModelsResponse* response) {
  if (absl::Status s = Authorize(ctx_, *context, "", true); !s.ok()) {
    return FinishNow(context, ctx_, "ReloadModels", s);
  }
  const ReloadResult r = ctx_.repository->Reload();
  if (ctx_.metrics != nullptr) ctx_.metrics->model_load_errors().Increment(r.errors.size());
  for (const auto& m : r.loaded) *response->add_loaded() = ClassifierService::Info(*m);
  for (const auto& m : r.unloaded) *response->add_unloaded() = ClassifierService::Info(*m);
  for (const auto& e : r.errors) {
    v1::ModelLoadError* err = response->add_errors();
    err->set_path(e.dir);
    err->set_message(std::string(e.status.message()));
  }
  for (const auto& m : ctx_.repository->List()) {
    *response->add_serving() = ClassifierService::Info(*m);
  }
  if (on_change_) on_change_();
  return FinishNow(context, ctx_, "ReloadModels", absl::OkStatus());
}

grpc::ServerUnaryReactor* AdminService::UnloadModel(grpc::CallbackServerContext* context,
                                                    const v1::UnloadModelRequest* request,
                                                    v1::UnloadModelResponse* response) {
  absl::Status s = Authorize(ctx_, *context, "", true);
  if (s.ok() && request->version() < 0) {
    s = absl::InvalidArgumentError(
        absl::StrCat("version (", request->version(), ") must be >= 0 (0 = every version)"));
  }
  if (s.ok()) {
    absl::StatusOr<std::vector<std::shared_ptr<const LoadedModel>>> gone =
        ctx_.repository->Unload(request->model(), request->version());
    if (gone.ok()) {
      for (const auto& m : *gone) *response->add_unloaded() = ClassifierService::Info(*m);
      if (on_change_) on_change_();
    }
    s = gone.status();
  }
  return FinishNow(context, ctx_, "UnloadModel", s);
}

}  // namespace wavepool::server
