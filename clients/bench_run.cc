#include "clients/bench_run.h"

#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <cstring>
#include <fstream>
#include <memory>
#include <mutex>
#include <random>
#include <sstream>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "dsp/wav.h"
#include "dsp/wfdb.h"
#include "grpcpp/client_context.h"
#include "grpcpp/support/client_callback.h"
#include "wavepool/v1/classifier.grpc.pb.h"

namespace wavepool::cli {
namespace {

using Clock = std::chrono::steady_clock;
using Request = v1::StreamClassifyRequest;
using Response = v1::StreamClassifyResponse;

int64_t Nanos(Clock::duration d) {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(d).count();
}

void AppendLe(uint32_t bits, int bytes, std::string* out) {
  for (int b = 0; b < bytes; ++b) out->push_back(static_cast<char>(bits >> (8 * b)));
}

}  // namespace

absl::Status LoadBenchInput(const std::string& path, double chunk_ms, BenchInput* in) {
  in->path = path;
  std::vector<float> floats;
  std::vector<int16_t> adc;
  int channels = 1;
  if (path.size() > 4 && path.substr(path.size() - 4) == ".hea") {
    absl::StatusOr<dsp::WfdbRecord> record = dsp::ReadWfdbRecord(path);
    if (!record.ok()) return record.status();
    const int lead = record->SignalNamed("MLII");  // as `wavepool stream` does
    const dsp::WfdbSignalInfo& sig = record->header.signals[static_cast<size_t>(lead)];
    adc = record->Adc(lead);
    in->rate_hz = record->header.sampling_frequency;
    in->config.set_encoding(v1::INT16);
    in->config.set_adc_gain(sig.adc_gain);
    in->config.set_baseline(sig.baseline);
    in->frames = adc.size();
    in->frame_bytes = 2;
  } else {
    absl::StatusOr<dsp::Audio> audio = dsp::ReadAudio(path);
    if (!audio.ok()) return audio.status();
    in->rate_hz = audio->sample_rate_hz;
    channels = audio->channels;
    in->config.set_encoding(v1::FLOAT32);
    in->frames = audio->frames();
    in->frame_bytes = 4 * static_cast<size_t>(channels);
    floats = std::move(audio->samples);
  }
  if (in->frames == 0) return absl::InvalidArgumentError(absl::StrCat(path, " has no samples"));
  in->config.set_sample_rate_hz(in->rate_hz);
  in->config.set_channels(static_cast<uint32_t>(channels));
  in->chunk_frames = std::max<size_t>(1, static_cast<size_t>(in->rate_hz * chunk_ms / 1000.0));
  const size_t total = in->frames + in->chunk_frames;
  in->loop.reserve(total * in->frame_bytes);
  for (size_t f = 0; f < total; ++f) {
    const size_t src = f % in->frames;
    if (!adc.empty()) {
      AppendLe(static_cast<uint16_t>(adc[src]), 2, &in->loop);
      continue;
    }
    for (int c = 0; c < channels; ++c) {
      uint32_t bits;
      std::memcpy(&bits, &floats[src * static_cast<size_t>(channels) + c], 4);
      AppendLe(bits, 4, &in->loop);
    }
  }
  return absl::OkStatus();
}

namespace {

// What every stream of one run shares, read-only once the streams start.
struct RunPlan {
  const BenchInput* input = nullptr;
  bool realtime = false;
  Clock::time_point t0;       // chunk times are counted from here
  int64_t warm_end_ns = 0;    // since t0: windows sent before this are not counted
  // Since t0: the end of the measurement interval [warm_end_ns, measure_end_ns);
  // as-fast-as-possible streams half-close here (unless total_chunks is set).
  int64_t measure_end_ns = 0;
  // Realtime: chunks per stream (warm-up + duration, or BenchOptions::chunks).
  // As fast as possible: BenchOptions::chunks, 0 = half-close at measure_end_ns.
  int64_t total_chunks = 0;
  int64_t chunk_period_ns = 0;
  uint64_t lead_samples = 0;  // BenchOptions::max_lead_s in samples, 0 = no limit
};

// A stream blocked on its lead with no window for this long doubles its lead
// (a beat model in a beatless stretch would otherwise wait for ever).
constexpr int64_t kStallNs = 500'000'000;
// As fast as possible: how often the pacer thread looks for stalled streams and
// for streams due to half-close.
constexpr auto kTickPeriod = std::chrono::milliseconds(50);

// Shared mutable state: the histogram (lock-free) and the count of streams
// still running.
struct RunShared {
  LatencyHistogram latency;
  std::mutex mu;
  std::condition_variable cv;
  int running = 0;
  std::atomic<bool> all_done{false};

  void StreamDone() {
    std::lock_guard<std::mutex> lock(mu);
    if (--running == 0) all_done = true;
    cv.notify_all();
  }
};

// One StreamClassify call. Callbacks run on gRPC's threads and, in realtime
// mode, Tick() on the pacing thread; `mu_` guards the write state and the ring
// of chunk send times. The counters written in OnReadDone are read only after
// OnDone (RunShared::StreamDone's mutex orders them).
class BenchStream final : public grpc::ClientBidiReactor<Request, Response> {
 public:
  // `fault_at`: kVanish, the chunk after whose write it cancels; kCancel and
  // kStall, the windows it reads first. `fault_deadline_s`: kDeadline's.
  BenchStream(const RunPlan& plan, RunShared* shared, int64_t offset_ns, FaultKind fault,
              int64_t fault_at, double fault_deadline_s)
      : plan_(plan), shared_(shared), offset_ns_(offset_ns), fault_(fault), fault_at_(fault_at),
        fault_deadline_s_(fault_deadline_s), ring_(256), lead_samples_(plan.lead_samples) {}

  void Start(v1::Classifier::Stub* stub, std::chrono::system_clock::time_point deadline) {
    if (fault_ == FaultKind::kDeadline) {
      deadline = std::min(deadline, std::chrono::system_clock::now() +
                                        std::chrono::microseconds(
                                            static_cast<int64_t>(1e6 * fault_deadline_s_)));
    }
    context_.set_deadline(deadline);
    stub->async()->StreamClassify(&context_, this);
    if (fault_ == FaultKind::kSilent) {  // no write, no hold: the server ends it
      closed_ = true;                     // (before the pacer runs: no lock needed)
      StartRead(&response_);
      StartCall();
      return;
    }
    *config_.mutable_config() = plan_.input->config;
    AddHold();  // released when the writing side is finished; Tick() writes from outside reactions
    StartRead(&response_);
    writing_ = true;
    in_flight_ = -1;
    StartWrite(&config_);
    StartCall();
  }

  // From the pacer thread. Realtime: chunks [0, due) may now be sent. As fast
  // as possible: half-close when the time is up; widen a stalled lead.
  void Tick(int64_t due) {
    const int64_t now = Nanos(Clock::now() - plan_.t0);
    Action a;
    {
      std::lock_guard<std::mutex> lock(mu_);
      due_ = std::max(due_, due);
      if (!plan_.realtime && BlockedByLeadLocked() && now - last_window_ns_ > kStallNs) {
        lead_samples_ *= 2;
        last_window_ns_ = now;
      }
      a = NextLocked(now);
    }
    Do(a);
  }

  void OnWriteDone(bool ok) override {
    const int64_t now = Nanos(Clock::now() - plan_.t0);
    if (!ok) {  // the call is over (an error status is on its way)
      {
        std::lock_guard<std::mutex> lock(mu_);
        writing_ = false;
        closed_ = true;
      }
      RemoveHold();
      return;
    }
    if (split_next_ > 0 && split_next_ < plan_.input->chunk_frames) {
      // kOneSample: the next frame of the chunk in flight (writing_ stays set).
      WriteFrames(in_flight_, split_next_++, 1);
      return;
    }
    if (fault_ == FaultKind::kVanish && in_flight_ >= fault_at_) {
      {
        std::lock_guard<std::mutex> lock(mu_);
        writing_ = false;
        closed_ = true;
      }
      context_.TryCancel();
      RemoveHold();
      return;
    }
    Action a;
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (in_flight_ >= ring_begin_) ring_[Slot(in_flight_)] = now;  // handed to the transport
      if (in_flight_ >= 0 && InInterval(now)) ++chunks_measured_;
      writing_ = false;
      a = NextLocked(now);
    }
    Do(a);
  }

  void OnWritesDoneDone(bool) override {
    // A client that never reads gives up once it has sent everything: the
    // server cannot deliver its status before its results are read.
    if (fault_ == FaultKind::kStall) context_.TryCancel();
    RemoveHold();
  }

  void OnReadDone(bool ok) override {
    if (!ok) return;  // no more responses; OnDone follows
    const int64_t now = Nanos(Clock::now() - plan_.t0);
    bool stop_reading = false;
    if (response_.has_window()) {
      if (response_.window().index() != next_index_) ++disordered_;
      next_index_ = response_.window().index() + 1;
      ++windows_all_;
      if (InInterval(now)) ++windows_arrived_;
      // The sample that completed the result (its window plus any look-ahead
      // the server needed); end_sample from servers that do not report it.
      const v1::WindowResult& w = response_.window();
      const uint64_t end = w.ready_sample() > 0 ? w.ready_sample() : w.end_sample();
      int64_t sent = -1;
      Action a;
      {
        std::lock_guard<std::mutex> lock(mu_);
        const auto chunk = static_cast<int64_t>((end - 1) / plan_.input->chunk_frames);
        if (end > 0 && chunk >= ring_begin_ && chunk < next_chunk_) {
          sent = ring_[Slot(chunk)];
          ring_begin_ = chunk;  // ready_sample never decreases: older chunks are done with
        }
        last_end_ = std::max(last_end_, end);
        last_window_ns_ = now;
        lead_samples_ = plan_.lead_samples;
        a = NextLocked(now);  // the lead may have been what held the next chunk
      }
      Do(a);
      if (sent < 0) {
        ++unmatched_;
      } else if (sent >= plan_.warm_end_ns) {
        ++windows_;
        shared_->latency.Record((now - sent) / 1000);
      }
      if (fault_ == FaultKind::kCancel && static_cast<int64_t>(windows_all_) >= fault_at_) {
        context_.TryCancel();
      }
      stop_reading = fault_ == FaultKind::kStall && static_cast<int64_t>(windows_all_) >= fault_at_;
    } else if (response_.has_event()) {
      ++events_;
    } else if (response_.has_summary()) {
      got_summary_ = true;
      summary_windows_ = response_.summary().windows();
    }
    if (!stop_reading) StartRead(&response_);
  }

  void OnDone(const grpc::Status& status) override {
    status_ = status;
    shared_->StreamDone();  // the last touch of this object by gRPC's threads
  }

  // Read after OnDone.
  const grpc::Status& status() const { return status_; }
  bool got_summary() const { return got_summary_; }
  uint64_t windows() const { return windows_; }
  uint64_t windows_all() const { return windows_all_; }
  uint64_t unmatched() const { return unmatched_; }
  uint64_t events() const { return events_; }
  FaultKind fault() const { return fault_; }
  uint64_t disordered() const { return disordered_; }
  uint64_t summary_windows() const { return summary_windows_; }
  // Samples in the chunks it wrote (all of them once it half-closed).
  uint64_t samples_sent() const {
    return static_cast<uint64_t>(next_chunk_) * plan_.input->chunk_frames;
  }
  uint64_t chunks_measured() const { return chunks_measured_; }
  uint64_t windows_arrived() const { return windows_arrived_; }
  int64_t max_lag_ns() const { return max_lag_ns_; }

 private:
  struct Action {
    enum Kind { kNone, kChunk, kWritesDone } kind = kNone;
    int64_t chunk = 0;
  };

  bool InInterval(int64_t ns) const {
    return ns >= plan_.warm_end_ns && ns < plan_.measure_end_ns;
  }

  size_t Slot(int64_t chunk) const { return static_cast<size_t>(chunk) & (ring_.size() - 1); }

  Action NextLocked(int64_t now) {
    if (writing_ || closed_) return {};
    const bool finished = plan_.realtime || plan_.total_chunks > 0
                              ? next_chunk_ >= plan_.total_chunks
                              : now >= plan_.measure_end_ns;
    if (finished) {
      closed_ = true;
      return {Action::kWritesDone, 0};
    }
    if (plan_.realtime ? next_chunk_ >= due_ : BlockedByLeadLocked()) return {};
    if (next_chunk_ - ring_begin_ >= static_cast<int64_t>(ring_.size())) GrowRing();
    const int64_t c = next_chunk_++;
    ring_[Slot(c)] = now;  // until OnWriteDone says when it left
    if (plan_.realtime) {
      max_lag_ns_ = std::max(max_lag_ns_, now - (offset_ns_ + (c + 1) * plan_.chunk_period_ns));
    }
    writing_ = true;
    in_flight_ = c;
    return {Action::kChunk, c};
  }

  bool BlockedByLeadLocked() const {
    return lead_samples_ > 0 &&
           static_cast<uint64_t>(next_chunk_) * plan_.input->chunk_frames >=
               last_end_ + lead_samples_;
  }

  void GrowRing() {  // rare: doubles, so a stream allocates O(log chunks) times
    std::vector<int64_t> bigger(2 * ring_.size());
    for (int64_t c = ring_begin_; c < next_chunk_; ++c) {
      bigger[static_cast<size_t>(c) & (bigger.size() - 1)] = ring_[Slot(c)];
    }
    ring_.swap(bigger);
  }

  // Outside mu_: gRPC may run OnWriteDone inline from StartWrite.
  void Do(const Action& a) {
    if (a.kind == Action::kChunk) {
      if (fault_ == FaultKind::kOneSample && a.chunk == 0 && plan_.input->chunk_frames > 1) {
        split_next_ = 1;  // OnWriteDone writes frames 1, 2, ... of chunk 0
        WriteFrames(0, 0, 1);
        return;
      }
      split_next_ = 0;
      WriteFrames(a.chunk, 0, plan_.input->chunk_frames);
    } else if (a.kind == Action::kWritesDone) {
      StartWritesDone();
    }
  }

  // Frames [first, first + count) of chunk k, as one message.
  void WriteFrames(int64_t k, size_t first, size_t count) {
    const std::string_view bytes = plan_.input->Chunk(k).substr(
        first * plan_.input->frame_bytes, count * plan_.input->frame_bytes);
    request_.mutable_samples()->set_pcm(bytes.data(), bytes.size());  // reuses capacity
    StartWrite(&request_);
  }

  const RunPlan& plan_;
  RunShared* shared_;
  const int64_t offset_ns_;  // realtime: this stream's start within the first chunk period
  const FaultKind fault_;
  const int64_t fault_at_;
  const double fault_deadline_s_;
  // kOneSample: the next frame of chunk 0 to write; only the thread that owns
  // the write in flight touches it.
  size_t split_next_ = 0;
  grpc::ClientContext context_;
  Request config_, request_;
  Response response_;

  std::mutex mu_;
  bool writing_ = false;  // a write (config or chunk) is in flight
  bool closed_ = false;   // WritesDone started, or the call failed
  int64_t in_flight_ = -1;  // chunk being written, -1 = the config
  int64_t next_chunk_ = 0;
  int64_t due_ = 0;
  int64_t ring_begin_ = 0;     // oldest chunk whose send time is kept
  std::vector<int64_t> ring_;  // send time (ns since t0) of chunk c at c mod size
  int64_t max_lag_ns_ = 0;
  uint64_t chunks_measured_ = 0;
  uint64_t lead_samples_;       // current lead (doubles while stalled)
  uint64_t last_end_ = 0;       // end_sample of the last window received
  int64_t last_window_ns_ = 0;  // when it arrived (or the lead last doubled)

  uint64_t windows_ = 0, windows_all_ = 0, windows_arrived_ = 0, unmatched_ = 0, events_ = 0;
  uint64_t next_index_ = 0, disordered_ = 0, summary_windows_ = 0;
  bool got_summary_ = false;
  grpc::Status status_;
};

double ProcessCpuSeconds() {
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  return static_cast<double>(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
         1e-6 * static_cast<double>(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec);
}

}  // namespace

// utime + stime are fields 14 and 15 of /proc/PID/stat, in clock ticks.
std::optional<double> ProcessCpuSecondsOf(int pid) {
  if (pid <= 0) return std::nullopt;
  std::ifstream f(absl::StrCat("/proc/", pid, "/stat"));
  std::string text((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  const size_t paren = text.rfind(')');  // the command name may contain spaces
  if (paren == std::string::npos) return std::nullopt;
  std::istringstream rest(text.substr(paren + 1));
  std::string field;
  double utime = 0, stime = 0;
  for (int i = 3; i <= 15 && rest >> field; ++i) {
    if (i == 14) utime = std::strtod(field.c_str(), nullptr);
    if (i == 15) stime = std::strtod(field.c_str(), nullptr);
  }
  return (utime + stime) / static_cast<double>(sysconf(_SC_CLK_TCK));
}

BenchResult RunStreams(const CommonOptions& common, const BenchOptions& opt,
                       const BenchInput& input, int n, BenchResult result) {
  RunPlan plan;
  plan.input = &input;
  plan.realtime = opt.realtime;
  plan.chunk_period_ns = static_cast<int64_t>(1e9 * input.chunk_frames / input.rate_hz);
  plan.warm_end_ns = static_cast<int64_t>(1e9 * opt.warmup_s);
  plan.measure_end_ns = plan.warm_end_ns + static_cast<int64_t>(1e9 * opt.duration_s);
  plan.lead_samples = static_cast<uint64_t>(opt.max_lead_s * input.rate_hz);
  if (opt.chunks > 0) {
    plan.total_chunks = opt.chunks;
  } else if (opt.realtime) {
    plan.total_chunks = static_cast<int64_t>(std::ceil((opt.warmup_s + opt.duration_s) *
                                                       input.rate_hz /
                                                       static_cast<double>(input.chunk_frames)));
  }
  // Realtime: the last chunk is due at the end of its period (plus at most one
  // period of stagger); --chunks may make that later than warm-up + duration.
  const double send_s =
      opt.realtime ? 1e-9 * static_cast<double>((plan.total_chunks + 1) * plan.chunk_period_ns)
                   : 0.0;
  const int n_channels = (n + opt.streams_per_channel - 1) / opt.streams_per_channel;
  // MakeChannel's channels: see docs/bench.md on how they map to connections.
  std::vector<std::shared_ptr<grpc::Channel>> channels;
  std::vector<std::unique_ptr<v1::Classifier::Stub>> stubs;
  for (int c = 0; c < n_channels; ++c) {
    channels.push_back(MakeChannel(common, static_cast<int>(channels.size()) + 1));
    stubs.push_back(v1::Classifier::NewStub(channels.back()));
  }
  RunShared shared;
  shared.running = n;
  std::vector<std::unique_ptr<BenchStream>> streams;
  streams.reserve(static_cast<size_t>(n));
  const std::vector<FaultKind> faults = AssignFaults(n, opt.faulty_share, opt.faulty_seed);
  std::mt19937_64 rng(opt.faulty_seed ^ 0x9e3779b97f4a7c15ULL);
  // Faults strike early enough to fall inside the run: within its first
  // chunks (or half of them) and its first windows.
  const int64_t plan_chunks = plan.total_chunks > 0 ? plan.total_chunks : 50;
  std::uniform_int_distribution<int64_t> at_chunk(0, std::max<int64_t>(0, plan_chunks / 2 - 1));
  std::uniform_int_distribution<int64_t> at_window(1, 5);
  std::uniform_real_distribution<double> deadline_s(0.5, 3.0);
  for (int i = 0; i < n; ++i) {
    const FaultKind fault = faults[static_cast<size_t>(i)];
    const int64_t at = fault == FaultKind::kVanish ? at_chunk(rng) : at_window(rng);
    // Realtime streams start uniformly staggered over one chunk period.
    streams.push_back(std::make_unique<BenchStream>(plan, &shared, plan.chunk_period_ns * i / n,
                                                    fault, at, deadline_s(rng)));
  }
  plan.t0 = Clock::now();
  const auto deadline = std::chrono::system_clock::now() +
                        std::chrono::milliseconds(static_cast<int64_t>(
                            1000 * (std::max(opt.warmup_s + opt.duration_s, send_s) +
                                    opt.grace_s)));
  for (int i = 0; i < n; ++i) {
    streams[static_cast<size_t>(i)]->Start(stubs[static_cast<size_t>(i) % stubs.size()].get(),
                                           deadline);
  }
  // One pacing thread for all streams (never a thread per stream).
  std::thread pacer([&] {
    if (!opt.realtime) {
      while (!shared.all_done) {
        std::this_thread::sleep_for(kTickPeriod);
        for (const auto& s : streams) s->Tick(0);
      }
      return;
    }
    for (int64_t k = 0; k < plan.total_chunks; ++k) {
      for (int i = 0; i < n; ++i) {
        if (shared.all_done) return;
        const auto at = plan.t0 + std::chrono::nanoseconds(plan.chunk_period_ns * i / n +
                                                            (k + 1) * plan.chunk_period_ns);
        if (at > Clock::now()) std::this_thread::sleep_until(at);
        streams[static_cast<size_t>(i)]->Tick(k + 1);
      }
    }
  });
  // CPU is read at both ends of the measurement interval (or when every stream
  // has ended, if that is sooner).
  const auto warm_end = plan.t0 + std::chrono::nanoseconds(plan.warm_end_ns);
  const auto measure_end = plan.t0 + std::chrono::nanoseconds(plan.measure_end_ns);
  double client_cpu0 = 0, client_cpu1 = 0;
  std::optional<double> server_cpu0, server_cpu1;
  Clock::time_point cpu_t0, cpu_t1;
  {
    std::unique_lock<std::mutex> lock(shared.mu);
    const auto done = [&] { return shared.running == 0; };
    shared.cv.wait_until(lock, warm_end, done);
    cpu_t0 = Clock::now();
    client_cpu0 = ProcessCpuSeconds();
    server_cpu0 = ProcessCpuSecondsOf(opt.server_pid);
    shared.cv.wait_until(lock, measure_end, done);
    cpu_t1 = Clock::now();
    client_cpu1 = ProcessCpuSeconds();
    server_cpu1 = ProcessCpuSecondsOf(opt.server_pid);
    shared.cv.wait(lock, done);
  }
  const auto end = Clock::now();
  pacer.join();

  result.streams = n;
  result.channels = n_channels;
  result.faulty_share = opt.faulty_share;
  result.elapsed_s = std::max(0.0, std::chrono::duration<double>(end - warm_end).count());
  result.cpu_interval_s = std::chrono::duration<double>(cpu_t1 - cpu_t0).count();
  result.client_cpu_s = client_cpu1 - client_cpu0;
  if (server_cpu0.has_value() && server_cpu1.has_value()) {
    result.server_cpu_s = *server_cpu1 - *server_cpu0;
  }
  uint64_t chunks = 0;
  int64_t max_lag_ns = 0;
  for (const auto& s : streams) {
    result.windows += s->windows();
    result.windows_all += s->windows_all();
    result.windows_arrived += s->windows_arrived();
    result.unmatched_windows += s->unmatched();
    result.events += s->events();
    chunks += s->chunks_measured();
    max_lag_ns = std::max(max_lag_ns, s->max_lag_ns());
    const std::string code = StatusCodeName(static_cast<int>(s->status().error_code()));
    const bool checked = s->fault() == FaultKind::kNone || s->fault() == FaultKind::kOneSample;
    if (s->fault() != FaultKind::kNone) {
      ++result.faulty_streams;
      ++result.faults[std::string(FaultKindName(s->fault()))][code];
    }
    if (checked) {
      ++result.checked_streams;
      result.windows_disordered += s->disordered();
      if (!s->status().ok()) {
        ++result.checked_errors;
        if (result.first_checked_error.empty()) {
          result.first_checked_error = absl::StrCat(code, ": ", s->status().error_message());
        }
      } else {
        const uint64_t expected =
            input.window_length > 0
                ? FixedWindowCount(s->samples_sent(), input.window_length, input.window_hop)
                : s->summary_windows();
        const uint64_t in_order = s->windows_all() - std::min(s->windows_all(), s->disordered());
        result.windows_expected += expected;
        if (in_order < expected) result.windows_lost += expected - in_order;
      }
    }
    if (!s->status().ok()) {
      ++result.errors;
      ++result.errors_by_code[code];
      if (result.first_error.empty()) {
        result.first_error = absl::StrCat(code, ": ", s->status().error_message());
      }
    } else if (s->got_summary()) {
      ++result.streams_completed;
    }
  }
  result.signal_s = static_cast<double>(chunks * input.chunk_frames) / input.rate_hz;
  result.max_send_lag_ms = static_cast<double>(max_lag_ns) / 1e6;
  result.SetLatency(shared.latency);
  return result;
}

}  // namespace wavepool::cli
