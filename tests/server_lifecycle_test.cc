// The production-serving behaviour of a real WavepoolServer on a loopback port:
// dynamic batching that changes nothing in the results, the stream limits (each
// RESOURCE_EXHAUSTED naming its limit), drain on Shutdown, cancellation freeing
// a slot, the Admin service (reload, unload, version policies, polling), the
// metrics HTTP endpoint, back-pressure isolation, unary Classify of a long
// signal, client deadlines, and the stream_end log line of every call. Timing
// is only ever checked with generous bounds or as an ordering.
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <functional>
#include <iterator>
#include <latch>
#include <map>
#include <optional>
#include <random>
#include <set>
#include <sstream>
#include <thread>

#include "google/protobuf/struct.pb.h"
#include "google/protobuf/util/json_util.h"
#include "grpc/health/v1/health.grpc.pb.h"
#include "grpcpp/support/channel_arguments.h"
#include "nn/model.h"
#include "server/log.h"
#include "tests/server_test_util.h"

namespace wavepool::testing {
namespace {

using v1::StreamClassifyRequest;
using v1::StreamClassifyResponse;
using HealthStatus = grpc::health::v1::HealthCheckResponse;

// The lifecycle tests' signals start at a frequency that differs by seed.
std::vector<float> VariedSignal(size_t n, uint32_t seed, double rate = 8000) {
  return TestSignal(n, seed, rate, 200 + 37 * (seed % 11));
}

// Retries a stream refused with RESOURCE_EXHAUSTED (a slot not yet given back)
// until it is admitted or `within_s` has passed.
StreamOutcome RunUntilAdmitted(v1::Classifier::Stub* stub,
                               const std::vector<StreamClassifyRequest>& reqs, double within_s,
                               int* attempts) {
  const Clock::time_point start = Clock::now();
  *attempts = 0;
  for (;;) {
    ++*attempts;
    StreamOutcome out = RunStream(stub, reqs);
    if (out.status.error_code() != grpc::StatusCode::RESOURCE_EXHAUSTED ||
        SecondsSince(start) > within_s) {
      return out;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
}

bool Contains(const std::string& s, const std::string& part) {
  return s.find(part) != std::string::npos;
}

// A stream the test keeps open and drives by hand.
class LiveStream {
 public:
  explicit LiveStream(v1::Classifier::Stub* stub, double deadline_s = 30) {
    ctx_.set_deadline(In(deadline_s));
    rw_ = stub->StreamClassify(&ctx_);
  }
  bool Write(const StreamClassifyRequest& r) { return rw_->Write(r); }
  // Reads until a window arrives (true) or the stream ends (false).
  bool ReadWindow() {
    StreamClassifyResponse r;
    while (rw_->Read(&r)) {
      responses_.push_back(r);
      if (r.has_window()) return true;
    }
    return false;
  }
  // Sends the config and `samples` and waits for the first window: from then
  // on the server certainly holds the call.
  bool Begin(const StreamClassifyRequest& config, std::span<const float> samples) {
    return Write(config) && Write(Values(samples)) && ReadWindow();
  }
  bool WritesDone() { return rw_->WritesDone(); }
  // Half-closes, reads what is left, returns the status.
  grpc::Status Finish() {
    rw_->WritesDone();
    return Drain();
  }
  // Reads what is left without half-closing (the server ends the call).
  grpc::Status Drain() {
    StreamClassifyResponse r;
    while (rw_->Read(&r)) responses_.push_back(r);
    return rw_->Finish();
  }
  void Cancel() { ctx_.TryCancel(); }
  std::vector<v1::WindowResult> windows() const {
    std::vector<v1::WindowResult> w;
    for (const auto& r : responses_) {
      if (r.has_window()) w.push_back(r.window());
    }
    return WithoutReadySample(std::move(w));
  }
  const std::vector<StreamClassifyResponse>& responses() const { return responses_; }

 private:
  grpc::ClientContext ctx_;
  std::unique_ptr<grpc::ClientReaderWriter<StreamClassifyRequest, StreamClassifyResponse>> rw_;
  std::vector<StreamClassifyResponse> responses_;
};

// Opens a LiveStream and Begins it, retrying while it is refused with
// RESOURCE_EXHAUSTED (the slot of a call that just ended not yet given back).
std::unique_ptr<LiveStream> BeginAdmitted(v1::Classifier::Stub* stub,
                                          const StreamClassifyRequest& config,
                                          std::span<const float> samples, double within_s,
                                          double deadline_s = 30) {
  const Clock::time_point start = Clock::now();
  for (;;) {
    auto s = std::make_unique<LiveStream>(stub, deadline_s);
    if (s->Begin(config, samples)) return s;
    const grpc::Status status = s->Drain();
    if (status.error_code() != grpc::StatusCode::RESOURCE_EXHAUSTED ||
        SecondsSince(start) > within_s) {
      ADD_FAILURE() << "stream not begun: " << status.error_message();
      return nullptr;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
}

// ---- HTTP and metrics text ----

struct HttpResponse {
  int status = 0;
  std::string head, body;
};

// One GET over a raw socket; the endpoint closes the connection after answering.
HttpResponse HttpGet(int port, const std::string& path) {
  HttpResponse out;
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return out;
  timeval tv{10, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  ::inet_pton(AF_INET, "127.0.0.1", &addr.sin_addr);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    ::close(fd);
    return out;
  }
  const std::string req =
      "GET " + path + " HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n";
  for (size_t sent = 0; sent < req.size();) {
    const ssize_t n = ::send(fd, req.data() + sent, req.size() - sent, MSG_NOSIGNAL);
    if (n <= 0) break;
    sent += static_cast<size_t>(n);
  }
  std::string raw;
  char buf[65536];
  for (;;) {
    const ssize_t n = ::recv(fd, buf, sizeof buf, 0);
    if (n <= 0) break;
    raw.append(buf, static_cast<size_t>(n));
  }
  ::close(fd);
  const size_t end = raw.find("\r\n\r\n");
  if (end == std::string::npos || raw.compare(0, 9, "HTTP/1.1 ") != 0) return out;
  out.status = std::atoi(raw.c_str() + 9);
  out.head = raw.substr(0, end);
  out.body = raw.substr(end + 4);
  return out;
}

double SampleOr0(const std::string& text, const std::string& series) {
  return Sample(text, series).value_or(0);
}

std::string Series(const std::string& name, const std::string& model, int version,
                   const std::string& extra = "") {
  return name + "{model=\"" + model + "\",version=\"" + std::to_string(version) + "\"" + extra +
         "}";
}

// Whether a plain TCP connection to 127.0.0.1:port is accepted.
bool TcpConnects(int port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return false;
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  ::inet_pton(AF_INET, "127.0.0.1", &addr.sin_addr);
  const bool ok = ::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
  ::close(fd);
  return ok;
}

// ---- Health ----

grpc::Status HealthCheck(grpc::Channel* channel, const std::string& service,
                         HealthStatus::ServingStatus* status) {
  auto health = grpc::health::v1::Health::NewStub(channel->shared_from_this());
  grpc::health::v1::HealthCheckRequest req;
  req.set_service(service);
  HealthStatus resp;
  grpc::ClientContext ctx;
  ctx.set_deadline(In(10));
  grpc::Status s = health->Check(&ctx, req, &resp);
  *status = resp.status();
  return s;
}

// ---- The fixture: a repository with small v1 (seed 11) and v2 (seed 22), and
// a server started by each test with its own options. ----

class Lifecycle : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = MakeTempDir("wavepool-life-repo");
    staging_ = MakeTempDir("wavepool-life-staging");
    WriteModel(root_, SmallSpecJson("small", 1), 11);
    WriteModel(root_, SmallSpecJson("small", 2), 22);
  }
  void TearDown() override {
    server_.reset();
    std::filesystem::remove_all(root_);
    std::filesystem::remove_all(staging_);
  }

  server::ServerOptions Options() const {
    server::ServerOptions o;
    o.address = "127.0.0.1:0";
    o.model_repository = root_.string();
    return o;
  }

  void Start(const server::ServerOptions& options) {
    auto s = server::WavepoolServer::Start(options);
    ASSERT_TRUE(s.ok()) << s.status();
    server_ = *std::move(s);
    address_ = "127.0.0.1:" + std::to_string(server_->port());
    channel_ = grpc::CreateChannel(address_, grpc::InsecureChannelCredentials());
    stub_ = v1::Classifier::NewStub(channel_);
    admin_ = v1::Admin::NewStub(channel_);
  }

  // Writes a version folder elsewhere and moves it into the repository with one
  // rename, so a scan never sees it half-written.
  void AddVersion(const std::string& spec_json, const std::string& name, int version,
                  uint64_t seed) {
    WriteModel(staging_, spec_json, seed);
    std::filesystem::create_directories(root_ / name);
    std::filesystem::rename(staging_ / name / std::to_string(version),
                            root_ / name / std::to_string(version));
  }
  void AddSmall(int version, uint64_t seed) {
    AddVersion(SmallSpecJson("small", version), "small", version, seed);
  }
  // A version folder whose spec.json does not parse.
  void AddBroken(const std::string& name, int version) {
    const auto dir = staging_ / "broken" / name / std::to_string(version);
    std::filesystem::create_directories(dir);
    std::FILE* f = std::fopen((dir / "spec.json").c_str(), "w");
    ASSERT_NE(f, nullptr);
    std::fputs("{ not json", f);
    std::fclose(f);
    std::filesystem::create_directories(root_ / name);
    std::filesystem::rename(dir, root_ / name / std::to_string(version));
  }

  v1::ReloadModelsResponse Reload() {
    v1::ReloadModelsResponse resp;
    grpc::ClientContext ctx;
    ctx.set_deadline(In(30));
    grpc::Status s = admin_->ReloadModels(&ctx, {}, &resp);
    EXPECT_TRUE(s.ok()) << s.error_message();
    return resp;
  }

  // "name:version" of every model ListModels shows.
  std::set<std::string> Listed() {
    v1::ListModelsResponse list;
    grpc::ClientContext ctx;
    ctx.set_deadline(In(10));
    EXPECT_TRUE(stub_->ListModels(&ctx, {}, &list).ok());
    std::set<std::string> out;
    for (const auto& m : list.models()) out.insert(m.name() + ":" + std::to_string(m.version()));
    return out;
  }

  static std::set<std::string> Names(
      const google::protobuf::RepeatedPtrField<v1::ModelInfo>& infos) {
    std::set<std::string> out;
    for (const auto& m : infos) out.insert(m.name() + ":" + std::to_string(m.version()));
    return out;
  }

  std::string Metrics() const { return server_->metrics().Render(); }

  // A short stream on `model` (version 0 = latest): its windows and status.
  StreamOutcome Short(const std::string& model, int64_t version, uint32_t seed = 5,
                      size_t samples = 4000) {
    return RunStream(stub_.get(),
                     Chunked(Config(model, 8000, version, 3), VariedSignal(samples, seed), 1000, seed));
  }

  std::filesystem::path root_, staging_;
  std::unique_ptr<server::WavepoolServer> server_;
  std::string address_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<v1::Classifier::Stub> stub_;
  std::unique_ptr<v1::Admin::Stub> admin_;
};

// ============================================================================
// 1. Batching across streams changes nothing in the results.
// ============================================================================

struct BatchCounts {
  double le1 = 0, le8 = 0, count = 0, sum = 0;
};

BatchCounts ReadBatchCounts(const std::string& text, const std::string& model, int version) {
  BatchCounts c;
  c.le1 = SampleOr0(text, Series("wavepool_batch_size_bucket", model, version, ",le=\"1\""));
  c.le8 = SampleOr0(text, Series("wavepool_batch_size_bucket", model, version, ",le=\"8\""));
  c.count = SampleOr0(text, Series("wavepool_batch_size_count", model, version));
  c.sum = SampleOr0(text, Series("wavepool_batch_size_sum", model, version));
  return c;
}

TEST_F(Lifecycle, BatchingAcrossStreamsIsInvisibleInTheResults) {
  // Chunks of at most 400 samples (one hop): each submission a stream makes to
  // the batcher holds at most one window, and a stream has one submission in
  // flight at a time, so any batch above 1 mixes windows of different streams.
  constexpr int kStreams = 12;
  std::vector<std::vector<StreamClassifyRequest>> requests;
  for (int k = 0; k < kStreams; ++k) {
    const std::vector<float> signal = VariedSignal(9000 + 401 * k, 100 + k);
    requests.push_back(Chunked(Config("small", 8000, 1, 3), signal, 400, 200 + k));
  }

  server::ServerOptions batched = Options();
  batched.batching.max_batch_size = 8;
  batched.batching.max_queue_delay_ms = 20;
  auto a = server::WavepoolServer::Start(batched);
  ASSERT_TRUE(a.ok()) << a.status();
  server::ServerOptions single = Options();
  single.batching.max_batch_size = 1;
  auto b = server::WavepoolServer::Start(single);
  ASSERT_TRUE(b.ok()) << b.status();
  auto stub_a = v1::Classifier::NewStub(grpc::CreateChannel(
      "127.0.0.1:" + std::to_string((*a)->port()), grpc::InsecureChannelCredentials()));
  auto stub_b = v1::Classifier::NewStub(grpc::CreateChannel(
      "127.0.0.1:" + std::to_string((*b)->port()), grpc::InsecureChannelCredentials()));

  std::vector<StreamOutcome> together(kStreams);
  {
    std::latch go(kStreams);
    std::vector<std::thread> threads;
    for (int k = 0; k < kStreams; ++k) {
      threads.emplace_back([&, k] {
        go.arrive_and_wait();
        together[static_cast<size_t>(k)] = RunStream(stub_a.get(), requests[static_cast<size_t>(k)]);
      });
    }
    for (auto& t : threads) t.join();
  }
  std::vector<StreamOutcome> alone;
  for (int k = 0; k < kStreams; ++k) alone.push_back(RunStream(stub_b.get(), requests[static_cast<size_t>(k)]));

  size_t total_windows = 0, bit_exact = 0, scores = 0;
  for (int k = 0; k < kStreams; ++k) {
    SCOPED_TRACE("stream " + std::to_string(k));
    const StreamOutcome& x = together[static_cast<size_t>(k)];
    const StreamOutcome& y = alone[static_cast<size_t>(k)];
    ASSERT_TRUE(x.status.ok()) << x.status.error_message();
    ASSERT_TRUE(y.status.ok()) << y.status.error_message();
    // The same chunking on both servers: ready_sample must agree too.
    const auto wx = x.windows(true), wy = y.windows(true);
    ASSERT_EQ(wx.size(), wy.size());
    // 400 j + 800 <= n complete windows, plus the padded tail (n is never a multiple of 400).
    const size_t n = 9000 + 401 * static_cast<size_t>(k);
    ASSERT_EQ(wx.size(), (n - 800) / 400 + 1 + 1);
    total_windows += wx.size();
    for (size_t i = 0; i < wx.size(); ++i) {
      SCOPED_TRACE("window " + std::to_string(i));
      EXPECT_EQ(wx[i].index(), wy[i].index());
      EXPECT_EQ(wx[i].index(), i);
      EXPECT_EQ(wx[i].start_sample(), wy[i].start_sample());
      EXPECT_EQ(wx[i].end_sample(), wy[i].end_sample());
      EXPECT_EQ(wx[i].start_time_s(), wy[i].start_time_s());
      EXPECT_EQ(wx[i].padded(), wy[i].padded());
      EXPECT_EQ(wx[i].ready_sample(), wy[i].ready_sample());
      EXPECT_GE(wx[i].ready_sample(), wx[i].end_sample());
      ASSERT_EQ(wx[i].top_size(), 3);
      ASSERT_EQ(wy[i].top_size(), 3);
      for (int j = 0; j < 3; ++j) {
        EXPECT_EQ(wx[i].top(j).label(), wy[i].top(j).label());
        EXPECT_NEAR(wx[i].top(j).score(), wy[i].top(j).score(), 1e-6);
        ++scores;
        if (wx[i].top(j).score() == wy[i].top(j).score()) ++bit_exact;
      }
    }
    std::vector<std::string> ex, ey;
    for (const auto& e : x.events()) ex.push_back(e.label() + "@" + std::to_string(e.start_sample()));
    for (const auto& e : y.events()) ey.push_back(e.label() + "@" + std::to_string(e.start_sample()));
    EXPECT_EQ(ex, ey);
    ASSERT_TRUE(x.responses.back().has_summary());
    EXPECT_EQ(x.responses.back().summary().windows(), wx.size());
    EXPECT_EQ(x.responses.back().summary().samples_received(), n);
  }
  RecordProperty("bit_exact_scores", std::to_string(bit_exact) + "/" + std::to_string(scores));

  // The batched server: every window ran exactly once (the sizes sum to the
  // windows), no batch above 8, and some batch above 1, i.e. across streams.
  const BatchCounts ca = ReadBatchCounts((*a)->metrics().Render(), "small", 1);
  EXPECT_EQ(ca.sum, static_cast<double>(total_windows));
  EXPECT_EQ(ca.le8, ca.count);
  EXPECT_LT(ca.le1, ca.count) << "no batch ever held more than one window";
  EXPECT_EQ(SampleOr0((*a)->metrics().Render(), Series("wavepool_windows_total", "small", 1)),
            static_cast<double>(total_windows));
  // max_batch_size 1: one run per window.
  const BatchCounts cb = ReadBatchCounts((*b)->metrics().Render(), "small", 1);
  EXPECT_EQ(cb.count, static_cast<double>(total_windows));
  EXPECT_EQ(cb.le1, cb.count);
  EXPECT_EQ(cb.sum, static_cast<double>(total_windows));
}

// ============================================================================
// 2. Limits: each breach is RESOURCE_EXHAUSTED naming its limit.
// ============================================================================

TEST_F(Lifecycle, MaxStreamsRefusesTheThirdAndAdmitsAgainAfterOneCloses) {
  server::ServerOptions o = Options();
  o.stream_limits.max_streams = 2;
  ASSERT_NO_FATAL_FAILURE(Start(o));
  const std::vector<float> signal = VariedSignal(4000, 3);
  LiveStream s1(stub_.get()), s2(stub_.get());
  ASSERT_TRUE(s1.Begin(Config("small", 8000, 1), std::span(signal).first(2000)));
  ASSERT_TRUE(s2.Begin(Config("small", 8000, 1), std::span(signal).first(2000)));

  const StreamOutcome third = Short("small", 1);
  EXPECT_EQ(third.status.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED)
      << third.status.error_message();
  EXPECT_TRUE(Contains(third.status.error_message(), "max_streams 2"))
      << third.status.error_message();
  EXPECT_FALSE(Contains(third.status.error_message(), "max_streams_per_peer"));
  EXPECT_TRUE(third.windows().empty());
  // Unary Classify counts as an open call too.
  v1::ClassifyRequest creq;
  *creq.mutable_config() = Config("small", 8000, 1).config();
  creq.mutable_samples()->mutable_values()->Add(signal.begin(), signal.end());
  v1::ClassifyResponse cresp;
  grpc::ClientContext cctx;
  const grpc::Status unary = stub_->Classify(&cctx, creq, &cresp);
  EXPECT_EQ(unary.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED) << unary.error_message();
  EXPECT_TRUE(Contains(unary.error_message(), "max_streams"));

  ASSERT_TRUE(s1.Write(Values(std::span(signal).subspan(2000))));
  ASSERT_TRUE(s1.Finish().ok());
  EXPECT_EQ(s1.windows().size(), 9u);  // 400 j + 800 <= 4000: j = 0..8, no tail
  int attempts = 0;
  const StreamOutcome again = RunUntilAdmitted(stub_.get(), Chunked(Config("small", 8000, 1), signal, 1000, 1), 5, &attempts);
  EXPECT_TRUE(again.status.ok()) << again.status.error_message() << " after " << attempts
                                 << " attempts";
  EXPECT_EQ(again.windows().size(), 9u);
  ASSERT_TRUE(s2.Finish().ok());
}

TEST_F(Lifecycle, MaxStreamsPerPeerRefusesTheSecondFromOneAddress) {
  server::ServerOptions o = Options();
  o.stream_limits.max_streams = 10;
  o.stream_limits.max_streams_per_peer = 1;
  ASSERT_NO_FATAL_FAILURE(Start(o));
  const std::vector<float> signal = VariedSignal(2000, 4);
  LiveStream s1(stub_.get());
  ASSERT_TRUE(s1.Begin(Config("small", 8000, 1), signal));
  // Another channel (another connection, another port) from the same address.
  auto other = v1::Classifier::NewStub(
      grpc::CreateChannel(address_, grpc::InsecureChannelCredentials()));
  const StreamOutcome second =
      RunStream(other.get(), Chunked(Config("small", 8000, 1), signal, 1000, 1));
  EXPECT_EQ(second.status.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED)
      << second.status.error_message();
  EXPECT_TRUE(Contains(second.status.error_message(), "max_streams_per_peer 1"))
      << second.status.error_message();
  ASSERT_TRUE(s1.Finish().ok());
  int attempts = 0;
  const StreamOutcome again =
      RunUntilAdmitted(other.get(), Chunked(Config("small", 8000, 1), signal, 1000, 1), 5, &attempts);
  EXPECT_TRUE(again.status.ok()) << again.status.error_message();
}

TEST_F(Lifecycle, MaxMessageBytesRefusesABiggerMessage) {
  server::ServerOptions o = Options();
  o.stream_limits.max_message_bytes = 64 << 10;
  ASSERT_NO_FATAL_FAILURE(Start(o));
  // 10000 floats: about 40 KB, under the limit; 20000: about 80 KB, over it.
  const StreamOutcome under =
      RunStream(stub_.get(), {Config("small", 8000, 1), Values(VariedSignal(10000, 5))});
  EXPECT_TRUE(under.status.ok()) << under.status.error_message();
  const StreamOutcome over =
      RunStream(stub_.get(), {Config("small", 8000, 1), Values(VariedSignal(20000, 5))});
  EXPECT_EQ(over.status.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED)
      << over.status.error_message();
  // gRPC itself refuses the message before it is read into memory (so a huge
  // message costs nothing), with its own wording: "Received message larger
  // than max (80008 vs. 65536)" — the sizes a client needs. docs/serving.md.
  EXPECT_TRUE(Contains(over.status.error_message(), "larger than max"))
      << over.status.error_message();
  EXPECT_TRUE(Contains(over.status.error_message(), "65536")) << over.status.error_message();

  v1::ClassifyRequest creq;
  *creq.mutable_config() = Config("small", 8000, 1).config();
  const std::vector<float> big = VariedSignal(20000, 5);
  creq.mutable_samples()->mutable_values()->Add(big.begin(), big.end());
  v1::ClassifyResponse cresp;
  grpc::ClientContext cctx;
  const grpc::Status unary = stub_->Classify(&cctx, creq, &cresp);
  EXPECT_EQ(unary.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED) << unary.error_message();
  // The server still serves.
  EXPECT_TRUE(Short("small", 1).status.ok());
}

std::string Int16Bytes(size_t frames) {
  std::string b(2 * frames, '\0');
  for (size_t i = 0; i < frames; ++i) b[2 * i] = static_cast<char>(i * 7);
  return b;
}

TEST_F(Lifecycle, MaxChunkSamplesCountsFramesPerChannel) {
  server::ServerOptions o = Options();
  o.stream_limits.max_chunk_samples = 1000;
  o.limits.max_chunk_samples = 1 << 20;  // the stream limit is the one that counts
  ASSERT_NO_FATAL_FAILURE(Start(o));
  const std::vector<float> signal = VariedSignal(2002, 6);
  // 1000 frames: fine, also as 2 channels (2000 values).
  EXPECT_TRUE(RunStream(stub_.get(), {Config("small", 8000, 1),
                                      Values(std::span(signal).first(1000))})
                  .status.ok());
  auto stereo = Config("small", 8000, 1);
  stereo.mutable_config()->set_channels(2);
  EXPECT_TRUE(RunStream(stub_.get(), {stereo, Values(std::span(signal).first(2000))}).status.ok());

  // 1001 frames: refused, whatever the encoding; the windows before it arrive.
  const StreamOutcome over = RunStream(
      stub_.get(), {Config("small", 8000, 1), Values(std::span(signal).first(1000)),
                    Values(std::span(signal).first(1000)), Values(std::span(signal).first(1001))});
  EXPECT_EQ(over.status.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED)
      << over.status.error_message();
  EXPECT_TRUE(Contains(over.status.error_message(), "max_chunk_samples"))
      << over.status.error_message();
  EXPECT_EQ(over.windows().size(), 4u);  // 2000 samples: 400 j + 800 <= 2000
  auto pcm_config = Config("small", 8000, 1);
  pcm_config.mutable_config()->set_encoding(v1::INT16);
  StreamClassifyRequest pcm;
  pcm.mutable_samples()->set_pcm(Int16Bytes(1001));
  const StreamOutcome pcm_over = RunStream(stub_.get(), {pcm_config, pcm});
  EXPECT_EQ(pcm_over.status.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
  EXPECT_TRUE(Contains(pcm_over.status.error_message(), "max_chunk_samples"));
  // Unary Classify is held to it too.
  v1::ClassifyRequest creq;
  *creq.mutable_config() = Config("small", 8000, 1).config();
  creq.mutable_samples()->mutable_values()->Add(signal.begin(), signal.end());
  v1::ClassifyResponse cresp;
  grpc::ClientContext cctx;
  const grpc::Status unary = stub_->Classify(&cctx, creq, &cresp);
  EXPECT_EQ(unary.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED) << unary.error_message();
  EXPECT_TRUE(Contains(unary.error_message(), "max_chunk_samples"));
}

TEST_F(Lifecycle, IdleTimeoutEndsASilentStream) {
  server::ServerOptions o = Options();
  o.stream_limits.idle_timeout_s = 0.3;
  ASSERT_NO_FATAL_FAILURE(Start(o));
  {
    // A config, then nothing.
    const Clock::time_point start = Clock::now();
    LiveStream s(stub_.get(), 20);
    ASSERT_TRUE(s.Write(Config("small", 8000, 1)));
    EXPECT_FALSE(s.ReadWindow());
    const grpc::Status status = s.Drain();
    const double elapsed = SecondsSince(start);
    EXPECT_EQ(status.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED) << status.error_message();
    EXPECT_TRUE(Contains(status.error_message(), "idle_timeout_s")) << status.error_message();
    EXPECT_GE(elapsed, 0.3);
    EXPECT_LT(elapsed, 5.0);
  }
  {
    // Not even a config.
    const Clock::time_point start = Clock::now();
    LiveStream s(stub_.get(), 20);
    const grpc::Status status = s.Drain();
    EXPECT_EQ(status.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED) << status.error_message();
    EXPECT_TRUE(Contains(status.error_message(), "idle_timeout_s")) << status.error_message();
    EXPECT_LT(SecondsSince(start), 5.0);
  }
  EXPECT_GE(SampleOr0(Metrics(), "wavepool_errors_total{method=\"StreamClassify\",code=\"RESOURCE_EXHAUSTED\"}"), 2);
}

TEST_F(Lifecycle, IdleTimeoutSparesAStreamThatKeepsSending) {
  server::ServerOptions o = Options();
  o.stream_limits.idle_timeout_s = 1.0;
  ASSERT_NO_FATAL_FAILURE(Start(o));
  // 30 messages 50 ms apart: 1.5 s in all, never 1 s without a message.
  const std::vector<float> signal = VariedSignal(3000, 7);
  LiveStream s(stub_.get(), 30);
  ASSERT_TRUE(s.Write(Config("small", 8000, 1)));
  std::thread reader([&] {
    while (s.ReadWindow()) {
    }
  });
  for (size_t i = 0; i < 30; ++i) {
    ASSERT_TRUE(s.Write(Values(std::span(signal).subspan(100 * i, 100))));
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  s.WritesDone();  // the reader thread reads the rest
  reader.join();
  grpc::Status status = s.Drain();
  EXPECT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(s.windows().size(), 7u);  // 6 complete + padded tail
}

TEST_F(Lifecycle, MaxStreamDurationEndsAStreamThatKeepsSending) {
  server::ServerOptions o = Options();
  o.stream_limits.max_stream_duration_s = 0.5;
  ASSERT_NO_FATAL_FAILURE(Start(o));
  const std::vector<float> signal = VariedSignal(400, 8);
  const Clock::time_point start = Clock::now();
  LiveStream s(stub_.get(), 20);
  ASSERT_TRUE(s.Write(Config("small", 8000, 1)));
  std::atomic<bool> stop{false};
  std::thread writer([&] {
    // 400 samples every 20 ms, for at most 4 s.
    for (int i = 0; i < 200 && !stop.load(); ++i) {
      if (!s.Write(Values(signal))) return;
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
  });
  while (s.ReadWindow()) {
  }
  stop = true;
  writer.join();
  const grpc::Status status = s.Drain();
  const double elapsed = SecondsSince(start);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED) << status.error_message();
  EXPECT_TRUE(Contains(status.error_message(), "max_stream_duration_s")) << status.error_message();
  EXPECT_GE(elapsed, 0.5);
  EXPECT_LT(elapsed, 4.0);
  EXPECT_GT(s.windows().size(), 0u) << "the stream was working before it was ended";
}

// ============================================================================
// 3. Lifecycle: drain on Shutdown, cancellation frees the slot.
// ============================================================================

TEST_F(Lifecycle, ShutdownDrainsTheOpenStreamAndRefusesNewCalls) {
  server::ServerOptions o = Options();
  o.metrics_address = "127.0.0.1:0";
  ASSERT_NO_FATAL_FAILURE(Start(o));
  const std::vector<float> signal = VariedSignal(16000, 9);
  const StreamOutcome reference =
      RunStream(stub_.get(), {Config("small", 8000, 1), Values(signal)});
  ASSERT_TRUE(reference.status.ok());

  // Health watchers for the server and for the model, opened before.
  auto health = grpc::health::v1::Health::NewStub(channel_);
  grpc::ClientContext wctx_server, wctx_model;
  wctx_server.set_deadline(In(20));
  wctx_model.set_deadline(In(20));
  grpc::health::v1::HealthCheckRequest wreq;
  auto watch_server = health->Watch(&wctx_server, wreq);
  wreq.set_service(server::WavepoolServer::HealthServiceName("small"));
  auto watch_model = health->Watch(&wctx_model, wreq);
  HealthStatus hs;
  ASSERT_TRUE(watch_server->Read(&hs));
  EXPECT_EQ(hs.status(), HealthStatus::SERVING);
  ASSERT_TRUE(watch_model->Read(&hs));
  EXPECT_EQ(hs.status(), HealthStatus::SERVING);

  LiveStream open(stub_.get());
  ASSERT_TRUE(open.Begin(Config("small", 8000, 1), std::span(signal).first(8000)));
  EXPECT_EQ(HttpGet(server_->metrics_port(), "/readyz").status, 200);

  std::atomic<bool> shutdown_returned{false};
  std::thread stopper([&] {
    server_->Shutdown(In(30));
    shutdown_returned = true;
  });

  ASSERT_TRUE(watch_server->Read(&hs));
  EXPECT_EQ(hs.status(), HealthStatus::NOT_SERVING);
  ASSERT_TRUE(watch_model->Read(&hs));
  EXPECT_EQ(hs.status(), HealthStatus::NOT_SERVING);
  wctx_server.TryCancel();
  wctx_model.TryCancel();
  watch_server->Finish();
  watch_model->Finish();

  const HttpResponse ready = HttpGet(server_->metrics_port(), "/readyz");
  EXPECT_EQ(ready.status, 503) << ready.head;

  // The listener closes: once a connection is refused, a new channel's calls
  // get UNAVAILABLE.
  const Clock::time_point refused_from = Clock::now();
  while (TcpConnects(server_->port()) && SecondsSince(refused_from) < 10) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  ASSERT_FALSE(TcpConnects(server_->port())) << "the gRPC port still accepts connections";
  RecordProperty("listener_closed_after_s", std::to_string(SecondsSince(refused_from)));
  // Its own subchannel pool: a new connection, not the open one.
  grpc::ChannelArguments own_pool;
  own_pool.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
  auto fresh = v1::Classifier::NewStub(
      grpc::CreateCustomChannel(address_, grpc::InsecureChannelCredentials(), own_pool));
  const StreamOutcome refused =
      RunStream(fresh.get(), {Config("small", 8000, 1), Values(std::span(signal).first(2000))}, 10);
  EXPECT_EQ(refused.status.error_code(), grpc::StatusCode::UNAVAILABLE)
      << refused.status.error_message();
  EXPECT_TRUE(refused.windows().empty());
  v1::ClassifyRequest creq;
  *creq.mutable_config() = Config("small", 8000, 1).config();
  creq.mutable_samples()->mutable_values()->Add(signal.begin(), signal.begin() + 2000);
  v1::ClassifyResponse cresp;
  grpc::ClientContext cctx;
  cctx.set_deadline(In(10));
  EXPECT_EQ(fresh->Classify(&cctx, creq, &cresp).error_code(), grpc::StatusCode::UNAVAILABLE);
  // On the connection that was already open, a new call is refused too (gRPC's
  // core may cancel one that crosses its GOAWAY: CANCELLED rather than UNAVAILABLE).
  const StreamOutcome raced =
      RunStream(stub_.get(), {Config("small", 8000, 1), Values(std::span(signal).first(2000))}, 10);
  EXPECT_FALSE(raced.status.ok());
  EXPECT_TRUE(raced.windows().empty());
  RecordProperty("new_call_on_open_connection", raced.status.error_code());

  // Shutdown waits for the open stream (its deadline is 30 s away).
  EXPECT_FALSE(shutdown_returned.load());
  ASSERT_TRUE(open.Write(Values(std::span(signal).subspan(8000))));
  const grpc::Status status = open.Finish();
  EXPECT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(Serialized(open.windows()), Serialized(reference.windows()));
  ASSERT_FALSE(open.responses().empty());
  ASSERT_TRUE(open.responses().back().has_summary());
  EXPECT_EQ(open.responses().back().summary().windows(), reference.windows().size());
  EXPECT_EQ(open.responses().back().summary().samples_received(), 16000u);
  stopper.join();
  EXPECT_TRUE(shutdown_returned.load());
}

TEST_F(Lifecycle, ACancelledStreamFreesItsSlotAtOnce) {
  server::ServerOptions o = Options();
  o.stream_limits.max_streams = 1;
  ASSERT_NO_FATAL_FAILURE(Start(o));
  const std::vector<float> small_signal = VariedSignal(2000, 10);
  const std::vector<float> long_signal = VariedSignal(60 * 8000, 11);
  const auto probe = Chunked(Config("small", 8000, 1), small_signal, 1000, 2);
  // First cancelled while the server waits to read; then while it is working
  // through a minute of signal (batches in flight, results being written).
  for (const std::vector<float>* signal : {&small_signal, &long_signal}) {
    SCOPED_TRACE(signal->size());
    // (The probe before may still hold the slot for a moment: see
    // ASlotIsFreeOnceTheClientHasTheStatus.)
    std::unique_ptr<LiveStream> s =
        BeginAdmitted(stub_.get(), Config("small", 8000, 1), *signal, 3);
    ASSERT_NE(s, nullptr);
    const StreamOutcome refused = RunStream(stub_.get(), probe);
    ASSERT_EQ(refused.status.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED)
        << refused.status.error_message();
    s->Cancel();
    EXPECT_EQ(s->Drain().error_code(), grpc::StatusCode::CANCELLED);
    int attempts = 0;
    const StreamOutcome admitted = RunUntilAdmitted(stub_.get(), probe, 3, &attempts);
    EXPECT_TRUE(admitted.status.ok()) << admitted.status.error_message() << " after "
                                      << attempts << " attempts";
    EXPECT_EQ(admitted.windows().size(), 4u);
  }
  // Nothing stays open.
  const Clock::time_point start = Clock::now();
  while (SampleOr0(Metrics(), Series("wavepool_streams_open", "small", 1)) != 0 &&
         SecondsSince(start) < 5) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  EXPECT_EQ(SampleOr0(Metrics(), Series("wavepool_streams_open", "small", 1)), 0);
}

// A client that has received a call's status (OK or error) may open the next
// one at once: with max_streams 1, back-to-back calls are never refused.
TEST_F(Lifecycle, ASlotIsFreeOnceTheClientHasTheStatus) {
  server::ServerOptions o = Options();
  o.stream_limits.max_streams = 1;
  ASSERT_NO_FATAL_FAILURE(Start(o));
  const std::vector<float> signal = VariedSignal(2000, 18);
  const auto probe = Chunked(Config("small", 8000, 1), signal, 1000, 2);
  v1::ClassifyRequest creq;
  *creq.mutable_config() = Config("small", 8000, 1).config();
  creq.mutable_samples()->mutable_values()->Add(signal.begin(), signal.end());
  int refused = 0, other = 0;
  std::string first_refusal;
  for (int i = 0; i < 100; ++i) {
    grpc::Status status;
    if (i % 2 == 0) {
      status = RunStream(stub_.get(), probe).status;
    } else {
      v1::ClassifyResponse cresp;
      grpc::ClientContext cctx;
      cctx.set_deadline(In(30));
      status = stub_->Classify(&cctx, creq, &cresp);
    }
    if (status.error_code() == grpc::StatusCode::RESOURCE_EXHAUSTED) {
      if (refused++ == 0) first_refusal = status.error_message();
    } else if (!status.ok()) {
      ++other;
    }
  }
  EXPECT_EQ(refused, 0) << "of 100 back-to-back calls, each begun after the previous one's "
                           "status arrived; first: " << first_refusal;
  EXPECT_EQ(other, 0);
}

TEST_F(Lifecycle, ShutdownCancelsAStreamThatOutstaysTheDeadline) {
  ASSERT_NO_FATAL_FAILURE(Start(Options()));
  const std::vector<float> signal = VariedSignal(2000, 19);
  LiveStream open(stub_.get(), 60);
  ASSERT_TRUE(open.Begin(Config("small", 8000, 1), signal));
  // The client never half-closes: at the deadline the server ends the call.
  const Clock::time_point start = Clock::now();
  server_->Shutdown(In(0.5));
  server_->Wait();
  const double took = SecondsSince(start);
  EXPECT_LT(took, 10.0);
  const grpc::Status status = open.Drain();
  EXPECT_FALSE(status.ok());
  EXPECT_TRUE(status.error_code() == grpc::StatusCode::CANCELLED ||
              status.error_code() == grpc::StatusCode::UNAVAILABLE)
      << status.error_code() << " " << status.error_message();
  EXPECT_EQ(open.windows().size(), 4u);  // what it had before
}

// idle_timeout_s is about the client: a call whose client has sent everything
// and is waiting for the server's work must not be ended as idle, however long
// that work takes (here several times the timeout: 4 minutes of signal).
TEST_F(Lifecycle, TheServersOwnWorkIsNotClientIdleness) {
  server::ServerOptions o = Options();
  o.stream_limits.idle_timeout_s = 0.2;
  ASSERT_NO_FATAL_FAILURE(Start(o));
  const std::vector<float> signal = VariedSignal(240 * 8000, 22);
  const size_t expected = (signal.size() - 800) / 400 + 1;  // a multiple of the hop: no tail
  v1::ClassifyRequest req;
  *req.mutable_config() = Config("small", 8000, 1).config();
  req.mutable_samples()->mutable_values()->Add(signal.begin(), signal.end());
  v1::ClassifyResponse resp;
  grpc::ClientContext ctx;
  ctx.set_deadline(In(120));
  const Clock::time_point start = Clock::now();
  const grpc::Status unary = stub_->Classify(&ctx, req, &resp);
  RecordProperty("classify_seconds", std::to_string(SecondsSince(start)));
  EXPECT_TRUE(unary.ok()) << unary.error_message();
  EXPECT_EQ(static_cast<size_t>(resp.windows_size()), unary.ok() ? expected : 0);

  // The same as one message on a stream, half-closed at once.
  const StreamOutcome streamed =
      RunStream(stub_.get(), {Config("small", 8000, 1), Values(signal)}, 120);
  RecordProperty("stream_seconds", std::to_string(streamed.seconds));
  EXPECT_TRUE(streamed.status.ok()) << streamed.status.error_message();
  EXPECT_EQ(streamed.windows().size(), streamed.status.ok() ? expected : streamed.windows().size());
}

// A client that stops reading its results holds its slot only until the idle
// timeout: the server gives up on it and admits others.
TEST_F(Lifecycle, AStalledClientIsEndedByTheIdleTimeout) {
  server::ServerOptions o = Options();
  o.stream_limits.idle_timeout_s = 0.3;
  o.stream_limits.max_streams = 1;
  ASSERT_NO_FATAL_FAILURE(Start(o));
  grpc::ChannelArguments args;
  args.SetInt(GRPC_ARG_HTTP2_BDP_PROBE, 0);
  auto stalled_channel =
      grpc::CreateCustomChannel(address_, grpc::InsecureChannelCredentials(), args);
  auto stalled_stub = v1::Classifier::NewStub(stalled_channel);
  const std::vector<float> chunk = VariedSignal(4000, 20);
  LiveStream stalled(stalled_stub.get(), 60);
  ASSERT_TRUE(stalled.Write(Config("small", 8000, 1, 3)));
  std::thread sender([&] {
    for (int i = 0; i < 20000; ++i) {
      if (!stalled.Write(Values(chunk))) return;
    }
  });
  const auto probe = Chunked(Config("small", 8000, 1), VariedSignal(2000, 21), 1000, 2);
  int attempts = 0;
  const StreamOutcome admitted = RunUntilAdmitted(stub_.get(), probe, 10, &attempts);
  EXPECT_TRUE(admitted.status.ok()) << admitted.status.error_message() << " after " << attempts
                                    << " attempts";
  stalled.Cancel();
  sender.join();
  const grpc::Status status = stalled.Drain();
  EXPECT_FALSE(status.ok());
}

// ============================================================================
// 4. Admin: reload, unload, version policies, polling.
// ============================================================================

TEST_F(Lifecycle, ReloadPicksUpANewVersionAndANewModel) {
  ASSERT_NO_FATAL_FAILURE(Start(Options()));
  HealthStatus::ServingStatus hs;
  EXPECT_EQ(HealthCheck(channel_.get(), server::WavepoolServer::HealthServiceName("fresh"), &hs)
                .error_code(),
            grpc::StatusCode::NOT_FOUND);
  EXPECT_EQ(Short("fresh", 0).status.error_code(), grpc::StatusCode::NOT_FOUND);
  AddSmall(3, 33);
  AddVersion(SmallSpecJson("fresh", 1), "fresh", 1, 44);

  const v1::ReloadModelsResponse r = Reload();
  EXPECT_EQ(Names(r.loaded()), (std::set<std::string>{"small:3", "fresh:1"}));
  EXPECT_TRUE(r.unloaded().empty());
  EXPECT_EQ(r.errors_size(), 0);
  const std::set<std::string> all = {"small:1", "small:2", "small:3", "fresh:1"};
  EXPECT_EQ(Names(r.serving()), all);
  EXPECT_EQ(Listed(), all);

  ASSERT_TRUE(HealthCheck(channel_.get(), server::WavepoolServer::HealthServiceName("fresh"), &hs)
                  .ok());
  EXPECT_EQ(hs, HealthStatus::SERVING);
  const StreamOutcome fresh = Short("fresh", 0);
  ASSERT_TRUE(fresh.status.ok()) << fresh.status.error_message();
  // The latest of small is now 3, and it is not 2.
  const StreamOutcome latest = Short("small", 0), v3 = Short("small", 3), v2 = Short("small", 2);
  ASSERT_TRUE(latest.status.ok() && v3.status.ok() && v2.status.ok());
  EXPECT_EQ(Serialized(latest.windows()), Serialized(v3.windows()));
  EXPECT_NE(Serialized(latest.windows()), Serialized(v2.windows()));
  EXPECT_EQ(SampleOr0(Metrics(), "wavepool_models_loaded"), 4);
}

TEST_F(Lifecycle, ABrokenNewVersionIsReportedAndTheOthersKeepServing) {
  server::ServerOptions o = Options();
  o.metrics_address = "127.0.0.1:0";
  ASSERT_NO_FATAL_FAILURE(Start(o));
  const StreamOutcome before = Short("small", 0);
  ASSERT_TRUE(before.status.ok());
  AddBroken("small", 3);

  const v1::ReloadModelsResponse r = Reload();
  ASSERT_EQ(r.errors_size(), 1);
  EXPECT_TRUE(Contains(r.errors(0).path(), "small/3")) << r.errors(0).path();
  EXPECT_FALSE(r.errors(0).message().empty());
  EXPECT_TRUE(r.loaded().empty());
  EXPECT_TRUE(r.unloaded().empty());
  EXPECT_EQ(Names(r.serving()), (std::set<std::string>{"small:1", "small:2"}));
  const StreamOutcome after = Short("small", 0);
  ASSERT_TRUE(after.status.ok()) << after.status.error_message();
  EXPECT_EQ(Serialized(after.windows()), Serialized(before.windows()));
  EXPECT_EQ(Short("small", 3).status.error_code(), grpc::StatusCode::NOT_FOUND);
  HealthStatus::ServingStatus hs;
  ASSERT_TRUE(HealthCheck(channel_.get(), server::WavepoolServer::HealthServiceName("small"), &hs).ok());
  EXPECT_EQ(hs, HealthStatus::SERVING);
  // docs/metrics.md: wavepool_model_load_errors_total counts "startup and reloads".
  EXPECT_EQ(SampleOr0(Metrics(), "wavepool_model_load_errors_total"), 1)
      << "the failed load of small/3 in ReloadModels was not counted";
}

TEST_F(Lifecycle, AChangedWeightsFileIsReloadedAndOpenStreamsKeepTheirCopy) {
  ASSERT_NO_FATAL_FAILURE(Start(Options()));
  const std::vector<float> signal = VariedSignal(8000, 12);
  const auto reqs = Chunked(Config("small", 8000, 1, 3), signal, 1000, 3);
  const StreamOutcome old_v1 = RunStream(stub_.get(), reqs);
  const StreamOutcome v2 = RunStream(stub_.get(), Chunked(Config("small", 8000, 2, 3), signal, 1000, 3));
  ASSERT_TRUE(old_v1.status.ok() && v2.status.ok());
  ASSERT_NE(Serialized(old_v1.windows()), Serialized(v2.windows()));

  // A stream open on v1 before the change.
  LiveStream open(stub_.get());
  ASSERT_TRUE(open.Begin(Config("small", 8000, 1, 3), std::span(signal).first(4000)));

  // v1 gets v2's weights (seed 22): the same network as v2, so the same scores.
  const auto weights = root_ / "small" / "1" / "weights.safetensors";
  const auto old_time = std::filesystem::last_write_time(weights);
  WriteModel(root_, SmallSpecJson("small", 1), 22);
  if (std::filesystem::last_write_time(weights) == old_time) {
    std::filesystem::last_write_time(weights, old_time + std::chrono::seconds(1));
  }
  const v1::ReloadModelsResponse r = Reload();
  EXPECT_EQ(Names(r.loaded()), (std::set<std::string>{"small:1"}));
  EXPECT_TRUE(r.unloaded().empty());
  EXPECT_EQ(r.errors_size(), 0);

  const StreamOutcome new_v1 = RunStream(stub_.get(), reqs);
  ASSERT_TRUE(new_v1.status.ok());
  EXPECT_EQ(Serialized(new_v1.windows()), Serialized(v2.windows()));

  ASSERT_TRUE(open.Write(Values(std::span(signal).subspan(4000))));
  ASSERT_TRUE(open.Finish().ok());
  EXPECT_EQ(Serialized(open.windows()), Serialized(old_v1.windows()))
      << "a stream opened before the reload should finish on the copy it started with";
}

TEST_F(Lifecycle, ARemovedVersionIsUnloaded) {
  ASSERT_NO_FATAL_FAILURE(Start(Options()));
  const StreamOutcome v1_before = Short("small", 1);
  ASSERT_TRUE(Short("small", 2).status.ok());
  std::filesystem::remove_all(root_ / "small" / "2");
  const v1::ReloadModelsResponse r = Reload();
  EXPECT_EQ(Names(r.unloaded()), (std::set<std::string>{"small:2"}));
  EXPECT_TRUE(r.loaded().empty());
  EXPECT_EQ(Listed(), (std::set<std::string>{"small:1"}));
  const StreamOutcome v2 = Short("small", 2);
  EXPECT_EQ(v2.status.error_code(), grpc::StatusCode::NOT_FOUND) << v2.status.error_message();
  const StreamOutcome latest = Short("small", 0);
  ASSERT_TRUE(latest.status.ok());
  EXPECT_EQ(Serialized(latest.windows()), Serialized(v1_before.windows()));
  EXPECT_EQ(SampleOr0(Metrics(), "wavepool_models_loaded"), 1);
}

TEST_F(Lifecycle, UnloadModelRefusesNewStreamsAndLetsOpenOnesFinish) {
  ASSERT_NO_FATAL_FAILURE(Start(Options()));
  const std::vector<float> signal = VariedSignal(8000, 13);
  const StreamOutcome reference =
      RunStream(stub_.get(), {Config("small", 8000, 1), Values(signal)});
  ASSERT_TRUE(reference.status.ok());
  LiveStream open(stub_.get());
  ASSERT_TRUE(open.Begin(Config("small", 8000, 1), std::span(signal).first(3000)));

  // Version 2 alone, then every version.
  {
    v1::UnloadModelRequest req;
    req.set_model("small");
    req.set_version(2);
    v1::UnloadModelResponse resp;
    grpc::ClientContext ctx;
    ASSERT_TRUE(admin_->UnloadModel(&ctx, req, &resp).ok());
    EXPECT_EQ(Names(resp.unloaded()), (std::set<std::string>{"small:2"}));
    EXPECT_EQ(Listed(), (std::set<std::string>{"small:1"}));
    EXPECT_EQ(Short("small", 2).status.error_code(), grpc::StatusCode::NOT_FOUND);
  }
  {
    v1::UnloadModelRequest req;
    req.set_model("small");
    v1::UnloadModelResponse resp;
    grpc::ClientContext ctx;
    ASSERT_TRUE(admin_->UnloadModel(&ctx, req, &resp).ok());
    EXPECT_EQ(Names(resp.unloaded()), (std::set<std::string>{"small:1"}));
  }
  EXPECT_TRUE(Listed().empty());
  const StreamOutcome refused = Short("small", 0);
  EXPECT_EQ(refused.status.error_code(), grpc::StatusCode::NOT_FOUND)
      << refused.status.error_message();
  HealthStatus::ServingStatus hs;
  ASSERT_TRUE(HealthCheck(channel_.get(), server::WavepoolServer::HealthServiceName("small"), &hs).ok());
  EXPECT_EQ(hs, HealthStatus::NOT_SERVING);
  {
    v1::UnloadModelRequest req;
    req.set_model("small");
    v1::UnloadModelResponse resp;
    grpc::ClientContext ctx;
    EXPECT_EQ(admin_->UnloadModel(&ctx, req, &resp).error_code(), grpc::StatusCode::NOT_FOUND);
  }

  // The stream opened before finishes normally, with every window.
  ASSERT_TRUE(open.Write(Values(std::span(signal).subspan(3000))));
  const grpc::Status status = open.Finish();
  EXPECT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(Serialized(open.windows()), Serialized(reference.windows()));

  // A reload finds it again.
  const v1::ReloadModelsResponse r = Reload();
  EXPECT_EQ(Names(r.loaded()), (std::set<std::string>{"small:1", "small:2"}));
  const StreamOutcome back = RunStream(stub_.get(), {Config("small", 8000, 1), Values(signal)});
  ASSERT_TRUE(back.status.ok());
  EXPECT_EQ(Serialized(back.windows()), Serialized(reference.windows()));
  ASSERT_TRUE(HealthCheck(channel_.get(), server::WavepoolServer::HealthServiceName("small"), &hs).ok());
  EXPECT_EQ(hs, HealthStatus::SERVING);
}

TEST_F(Lifecycle, VersionPoliciesAdmitTheRightVersions) {
  WriteModel(root_, SmallSpecJson("other", 1), 1);
  WriteModel(root_, SmallSpecJson("other", 2), 2);
  WriteModel(root_, SmallSpecJson("other", 3), 3);
  WriteModel(root_, SmallSpecJson("free", 1), 4);
  WriteModel(root_, SmallSpecJson("free", 2), 5);
  server::ServerOptions o = Options();
  server::ModelPolicy latest;
  latest.name = "small";
  latest.policy = server::VersionPolicy::kLatest;
  server::ModelPolicy specific;
  specific.name = "other";
  specific.policy = server::VersionPolicy::kSpecific;
  specific.versions = {1, 3, 7};
  o.models = {latest, specific};
  ASSERT_NO_FATAL_FAILURE(Start(o));
  EXPECT_EQ(Listed(), (std::set<std::string>{"small:2", "other:1", "other:3", "free:1", "free:2"}));
  EXPECT_EQ(Short("small", 1).status.error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_EQ(Short("other", 2).status.error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_TRUE(Short("other", 3).status.ok());

  // A new latest replaces the old one; a version the specific policy names
  // appears; one it does not name stays out.
  AddSmall(3, 33);
  AddVersion(SmallSpecJson("other", 7), "other", 7, 7);
  AddVersion(SmallSpecJson("other", 8), "other", 8, 8);
  const v1::ReloadModelsResponse r = Reload();
  EXPECT_EQ(Names(r.loaded()), (std::set<std::string>{"small:3", "other:7"}));
  EXPECT_EQ(Names(r.unloaded()), (std::set<std::string>{"small:2"}));
  EXPECT_EQ(Listed(),
            (std::set<std::string>{"small:3", "other:1", "other:3", "other:7", "free:1", "free:2"}));
}

TEST_F(Lifecycle, LatestPolicyKeepsServingWhenTheNewestVersionIsBroken) {
  server::ServerOptions o = Options();
  server::ModelPolicy latest;
  latest.name = "small";
  latest.policy = server::VersionPolicy::kLatest;
  o.models = {latest};
  ASSERT_NO_FATAL_FAILURE(Start(o));
  ASSERT_EQ(Listed(), (std::set<std::string>{"small:2"}));
  AddBroken("small", 3);
  const v1::ReloadModelsResponse r = Reload();
  ASSERT_EQ(r.errors_size(), 1);
  EXPECT_TRUE(Contains(r.errors(0).path(), "small/3"));
  // A broken push must not take the model down: version 2 keeps serving.
  EXPECT_EQ(Names(r.serving()), (std::set<std::string>{"small:2"}));
  EXPECT_TRUE(r.unloaded().empty());
  const StreamOutcome after = Short("small", 0);
  EXPECT_TRUE(after.status.ok()) << after.status.error_message();
}

TEST_F(Lifecycle, ModelPollingPicksUpChangesWithoutTheRpc) {
  server::ServerOptions o = Options();
  o.model_poll_interval_s = 0.1;
  ASSERT_NO_FATAL_FAILURE(Start(o));
  AddSmall(3, 33);
  AddVersion(SmallSpecJson("fresh", 1), "fresh", 1, 44);
  const std::set<std::string> want = {"small:1", "small:2", "small:3", "fresh:1"};
  Clock::time_point start = Clock::now();
  while (Listed() != want && SecondsSince(start) < 5) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  EXPECT_EQ(Listed(), want);
  EXPECT_TRUE(Short("small", 3).status.ok());
  HealthStatus::ServingStatus hs = HealthStatus::UNKNOWN;
  start = Clock::now();
  while (SecondsSince(start) < 5) {
    if (HealthCheck(channel_.get(), server::WavepoolServer::HealthServiceName("fresh"), &hs).ok() &&
        hs == HealthStatus::SERVING) {
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  EXPECT_EQ(hs, HealthStatus::SERVING);

  std::filesystem::remove_all(root_ / "small" / "1");
  start = Clock::now();
  const std::set<std::string> after = {"small:2", "small:3", "fresh:1"};
  while (Listed() != after && SecondsSince(start) < 5) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  EXPECT_EQ(Listed(), after);
}

// ============================================================================
// 5. The metrics HTTP endpoint.
// ============================================================================

TEST_F(Lifecycle, MetricsEndpointCountsStreamsWindowsAndErrors) {
  server::ServerOptions o = Options();
  o.metrics_address = "127.0.0.1:0";
  ASSERT_NO_FATAL_FAILURE(Start(o));
  ASSERT_GT(server_->metrics_port(), 0);
  const int port = server_->metrics_port();

  const StreamOutcome one = RunStream(
      stub_.get(), Chunked(Config("small", 8000, 1), VariedSignal(6000, 14), 700, 4));
  ASSERT_TRUE(one.status.ok());
  const size_t windows = one.windows().size();
  ASSERT_EQ(windows, 14u);  // 400 j + 800 <= 6000: j = 0..13, no tail
  EXPECT_EQ(Short("nope", 0).status.error_code(), grpc::StatusCode::NOT_FOUND);
  v1::ClassifyRequest creq;
  *creq.mutable_config() = Config("nope", 8000).config();
  creq.mutable_samples()->add_values(0.1f);
  v1::ClassifyResponse cresp;
  grpc::ClientContext cctx;
  EXPECT_EQ(stub_->Classify(&cctx, creq, &cresp).error_code(), grpc::StatusCode::NOT_FOUND);

  const HttpResponse m = HttpGet(port, "/metrics");
  ASSERT_EQ(m.status, 200) << m.head;
  EXPECT_TRUE(Contains(m.head, "text/plain; version=0.0.4")) << m.head;
  EXPECT_TRUE(Contains(m.body, "\nwavepool_streams_total{model=\"small\",version=\"1\"} 1\n"))
      << m.body;
  EXPECT_EQ(Sample(m.body, Series("wavepool_windows_total", "small", 1)),
            static_cast<double>(windows));
  EXPECT_EQ(SampleOr0(m.body, Series("wavepool_streams_total", "small", 2)), 0);
  EXPECT_EQ(Sample(m.body, "wavepool_errors_total{method=\"StreamClassify\",code=\"NOT_FOUND\"}"),
            1.0)
      << m.body;
  EXPECT_EQ(Sample(m.body, "wavepool_errors_total{method=\"Classify\",code=\"NOT_FOUND\"}"), 1.0);
  EXPECT_EQ(Sample(m.body, "wavepool_models_loaded"), 2.0);
  // Every window went through the batcher once.
  EXPECT_EQ(Sample(m.body, Series("wavepool_batch_size_sum", "small", 1)),
            static_cast<double>(windows));
  EXPECT_EQ(Sample(m.body, Series("wavepool_window_latency_seconds_count", "small", 1)),
            static_cast<double>(windows));
  EXPECT_EQ(Sample(m.body, Series("wavepool_queue_delay_seconds_count", "small", 1)),
            static_cast<double>(windows));
  // The stream is closed (OnDone may trail the status by a moment).
  const Clock::time_point start = Clock::now();
  while (SampleOr0(HttpGet(port, "/metrics").body, Series("wavepool_streams_open", "small", 1)) !=
             0 &&
         SecondsSince(start) < 5) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  EXPECT_EQ(SampleOr0(HttpGet(port, "/metrics").body, Series("wavepool_streams_open", "small", 1)),
            0);

  const HttpResponse ready = HttpGet(port, "/readyz");
  EXPECT_EQ(ready.status, 200);
  EXPECT_EQ(HttpGet(port, "/healthz").status, 200);
  server_->Shutdown(In(5));
  EXPECT_EQ(HttpGet(port, "/readyz").status, 503);
  EXPECT_EQ(HttpGet(port, "/healthz").status, 200);
  // /metrics answers to the end.
  EXPECT_EQ(HttpGet(port, "/metrics").status, 200);
}

// ============================================================================
// 6. Back-pressure: a client that stops reading stalls only its own stream.
// ============================================================================

TEST_F(Lifecycle, AClientThatStopsReadingDoesNotSlowAnotherStream) {
  ASSERT_NO_FATAL_FAILURE(Start(Options()));
  // Both streams share one connection, with BDP probing off so that the
  // non-reading stream's receive window stays small and fills quickly.
  grpc::ChannelArguments args;
  args.SetInt(GRPC_ARG_HTTP2_BDP_PROBE, 0);
  auto shared = grpc::CreateCustomChannel(address_, grpc::InsecureChannelCredentials(), args);
  auto stub = v1::Classifier::NewStub(shared);

  const std::vector<float> other_signal = VariedSignal(20 * 8000, 15);
  const auto other_reqs = Chunked(Config("small", 8000, 1, 3), other_signal, 4000, 5);
  const StreamOutcome solo = RunStream(stub.get(), other_reqs);
  ASSERT_TRUE(solo.status.ok());

  // The stalled stream, on version 2 so its windows are counted apart.
  const std::vector<float> chunk = VariedSignal(4000, 16);
  LiveStream stalled(stub.get(), 60);
  ASSERT_TRUE(stalled.Write(Config("small", 8000, 2, 3)));
  std::atomic<int> written{0};
  std::thread sender([&] {
    for (int i = 0; i < 20000; ++i) {
      if (!stalled.Write(Values(chunk))) return;
      ++written;
    }
  });
  // Stalled: neither the client's writes nor the server's windows move for 1 s.
  auto v2_windows = [&] { return SampleOr0(Metrics(), Series("wavepool_windows_total", "small", 2)); };
  Clock::time_point start = Clock::now();
  int last_written = -1, still = 0;
  double last_windows = -1;
  while (still < 10 && SecondsSince(start) < 20) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    const int w = written.load();
    const double v = v2_windows();
    still = (w == last_written && v == last_windows) ? still + 1 : 0;
    last_written = w;
    last_windows = v;
  }
  ASSERT_EQ(still, 10) << "the stream that is not read never stalled (" << written.load()
                      << " chunks written)";
  RecordProperty("stalled_after_chunks", written.load());

  const StreamOutcome other = RunStream(stub.get(), other_reqs);
  ASSERT_TRUE(other.status.ok()) << other.status.error_message();
  EXPECT_EQ(Serialized(other.windows()), Serialized(solo.windows()));
  // Generous: a stream held up by the stalled one would not finish at all.
  EXPECT_LT(other.seconds, 10 * solo.seconds + 3.0)
      << "solo " << solo.seconds << " s, next to a stalled stream " << other.seconds << " s";
  // ... and the server made no progress on the stalled one meanwhile: the other
  // went past it. (The client's writes may move a little: the server's transport
  // can widen every stream's receive window as the other stream's data flows.)
  EXPECT_EQ(v2_windows(), last_windows);

  stalled.Cancel();
  sender.join();
  EXPECT_EQ(stalled.Drain().error_code(), grpc::StatusCode::CANCELLED);
}

// ============================================================================
// 7. Unary Classify of a long signal.
// ============================================================================

TEST_F(Lifecycle, ClassifyOfAMinuteEqualsStreamingIt) {
  ASSERT_NO_FATAL_FAILURE(Start(Options()));
  const std::vector<float> signal = VariedSignal(60 * 8000, 17);
  v1::ClassifyRequest req;
  *req.mutable_config() = Config("small", 8000, 1, 3).config();
  req.mutable_samples()->mutable_values()->Add(signal.begin(), signal.end());
  v1::ClassifyResponse resp;
  grpc::ClientContext ctx;
  ctx.set_deadline(In(60));
  const grpc::Status status = stub_->Classify(&ctx, req, &resp);
  ASSERT_TRUE(status.ok()) << status.error_message();
  const StreamOutcome streamed =
      RunStream(stub_.get(), Chunked(Config("small", 8000, 1, 3), signal, 4000, 6));
  ASSERT_TRUE(streamed.status.ok());
  const std::vector<v1::WindowResult> unary =
      WithoutReadySample({resp.windows().begin(), resp.windows().end()});
  ASSERT_EQ(unary.size(), 1199u);  // 400 j + 800 <= 480000: j = 0..1198, no tail
  EXPECT_EQ(Serialized(unary), Serialized(streamed.windows()));
  std::vector<std::string> eu, es;
  for (const auto& e : resp.events()) eu.push_back(e.SerializeAsString());
  for (const auto& e : streamed.events()) es.push_back(e.SerializeAsString());
  EXPECT_EQ(eu, es);
  EXPECT_EQ(resp.summary().windows(), 1199u);
  EXPECT_EQ(resp.summary().samples_received(), 480000u);
  EXPECT_EQ(resp.summary().events(), streamed.responses.back().summary().events());
}

// ============================================================================
// 8. Client deadlines: the call ends with DEADLINE_EXCEEDED on the client, the
// server gives its slot back, and no other call notices.
// ============================================================================

// A stream that was never half-closed: windows 0, 1, 2, ... without a gap and
// without a padded tail.
void ExpectContiguousUnpadded(const std::vector<v1::WindowResult>& windows) {
  for (size_t i = 0; i < windows.size(); ++i) {
    EXPECT_EQ(windows[i].index(), i);
    EXPECT_FALSE(windows[i].padded()) << "window " << i;
  }
}

// Windows of the small model (window 800, hop 400) for n samples at 8 kHz,
// the padded tail included (docs/api.md).
size_t SmallWindows(size_t n) {
  const size_t complete = n >= 800 ? (n - 800) / 400 + 1 : 0;
  const bool tail = complete == 0 ? n > 0 : n > (complete - 1) * 400 + 800;
  return complete + (tail ? 1 : 0);
}

TEST_F(Lifecycle, AClientDeadlineMidStreamEndsItAndFreesTheSlot) {
  server::ServerOptions o = Options();
  o.stream_limits.max_streams = 1;
  ASSERT_NO_FATAL_FAILURE(Start(o));
  const std::vector<float> small_signal = VariedSignal(2000, 30);
  const std::vector<float> long_signal = VariedSignal(60 * 8000, 31);
  const auto probe = Chunked(Config("small", 8000, 1), small_signal, 1000, 3);
  // The deadline passes first while the server waits for the client's next
  // message, then while it may still be working through a minute of signal.
  // The client neither half-closes nor cancels: only its deadline ends the call.
  for (const std::vector<float>* signal : {&small_signal, &long_signal}) {
    SCOPED_TRACE(signal->size());
    std::unique_ptr<LiveStream> s =
        BeginAdmitted(stub_.get(), Config("small", 8000, 1), *signal, 3, /*deadline_s=*/2);
    ASSERT_NE(s, nullptr);
    const StreamOutcome refused = RunStream(stub_.get(), probe);
    ASSERT_EQ(refused.status.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED)
        << refused.status.error_message();
    const grpc::Status status = s->Drain();
    EXPECT_EQ(status.error_code(), grpc::StatusCode::DEADLINE_EXCEEDED)
        << status.error_code() << " " << status.error_message();
    const std::vector<v1::WindowResult> windows = s->windows();
    ExpectContiguousUnpadded(windows);
    EXPECT_GE(windows.size(), 1u);
    // Every complete window of what was sent, never more (no tail: the client
    // never half-closed).
    const size_t complete = (signal->size() - 800) / 400 + 1;
    if (signal == &small_signal) {
      EXPECT_EQ(windows.size(), complete);
    } else {
      EXPECT_LE(windows.size(), complete);
    }
    int attempts = 0;
    const StreamOutcome admitted = RunUntilAdmitted(stub_.get(), probe, 5, &attempts);
    EXPECT_TRUE(admitted.status.ok()) << admitted.status.error_message() << " after " << attempts
                                      << " attempts";
    EXPECT_EQ(admitted.windows().size(), SmallWindows(small_signal.size()));
  }
  const Clock::time_point start = Clock::now();
  while (SampleOr0(Metrics(), Series("wavepool_streams_open", "small", 1)) != 0 &&
         SecondsSince(start) < 5) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  EXPECT_EQ(SampleOr0(Metrics(), Series("wavepool_streams_open", "small", 1)), 0);
}

TEST_F(Lifecycle, AClientDeadlineEndsOnlyItsOwnStream) {
  ASSERT_NO_FATAL_FAILURE(Start(Options()));
  constexpr int kOthers = 3;
  const StreamClassifyRequest config = Config("small", 8000, 1, 3);
  std::vector<std::vector<float>> signals;
  std::vector<StreamOutcome> references;
  for (int k = 0; k < kOthers; ++k) {
    signals.push_back(VariedSignal(6000 + 333 * k, 40 + k));
    references.push_back(RunStream(stub_.get(), Chunked(config, signals.back(), 1000, 50 + k)));
    ASSERT_TRUE(references.back().status.ok()) << references.back().status.error_message();
    ASSERT_EQ(references.back().windows().size(), SmallWindows(signals.back().size()));
  }
  // The others are open, half their signal sent, when the doomed stream's
  // deadline passes while it is sending.
  std::vector<std::unique_ptr<LiveStream>> others;
  for (int k = 0; k < kOthers; ++k) {
    others.push_back(std::make_unique<LiveStream>(stub_.get(), 60));
    ASSERT_TRUE(others.back()->Begin(config, std::span(signals[k]).first(3000)));
  }
  LiveStream doomed(stub_.get(), 1.5);
  ASSERT_TRUE(doomed.Begin(config, VariedSignal(800, 60)));  // window 0
  std::atomic<int> attempts{0};
  std::thread sender([&] {
    const std::vector<float> more = VariedSignal(400, 61);  // one hop per message
    for (;;) {
      ++attempts;
      if (!doomed.Write(Values(more))) return;
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
  });
  while (doomed.ReadWindow()) {
  }
  sender.join();  // its next write fails: the call is over
  const grpc::Status doomed_status = doomed.Drain();
  EXPECT_EQ(doomed_status.error_code(), grpc::StatusCode::DEADLINE_EXCEEDED)
      << doomed_status.error_code() << " " << doomed_status.error_message();
  const std::vector<v1::WindowResult> doomed_windows = doomed.windows();
  ExpectContiguousUnpadded(doomed_windows);
  EXPECT_GE(doomed_windows.size(), 1u);
  EXPECT_LE(doomed_windows.size(), 1u + static_cast<size_t>(attempts.load()));

  for (int k = 0; k < kOthers; ++k) {
    SCOPED_TRACE(k);
    for (const auto& r :
         Chunked(config, std::vector<float>(signals[k].begin() + 3000, signals[k].end()), 700,
                 70 + k)) {
      if (r.has_samples()) {
        ASSERT_TRUE(others[k]->Write(r));
      }
    }
    const grpc::Status status = others[k]->Finish();
    EXPECT_TRUE(status.ok()) << status.error_message();
    EXPECT_EQ(others[k]->windows().size(), SmallWindows(signals[k].size()));
    EXPECT_EQ(Serialized(others[k]->windows()), Serialized(references[k].windows()));
    ASSERT_FALSE(others[k]->responses().empty());
    EXPECT_EQ(others[k]->responses().back().summary().samples_received(), signals[k].size());
  }
}

TEST_F(Lifecycle, AClassifyPastItsDeadlineFailsAndTheServerGoesOn) {
  server::ServerOptions o = Options();
  o.stream_limits.max_streams = 1;
  ASSERT_NO_FATAL_FAILURE(Start(o));
  // Four minutes of signal take the server far longer than 0.3 s.
  const std::vector<float> signal = VariedSignal(240 * 8000, 32);
  v1::ClassifyRequest req;
  *req.mutable_config() = Config("small", 8000, 1).config();
  req.mutable_samples()->mutable_values()->Add(signal.begin(), signal.end());
  v1::ClassifyResponse resp;
  grpc::ClientContext ctx;
  ctx.set_deadline(In(0.3));
  const grpc::Status status = stub_->Classify(&ctx, req, &resp);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::DEADLINE_EXCEEDED)
      << status.error_code() << " " << status.error_message();
  EXPECT_EQ(resp.windows_size(), 0);

  // The server goes on: with max_streams 1, the next call is admitted once the
  // expired one has given its slot back, and it is complete and correct.
  const std::vector<float> small = VariedSignal(4300, 33);
  v1::ClassifyRequest small_req;
  *small_req.mutable_config() = Config("small", 8000, 1).config();
  small_req.mutable_samples()->mutable_values()->Add(small.begin(), small.end());
  v1::ClassifyResponse small_resp;
  grpc::Status next;
  const Clock::time_point start = Clock::now();
  int attempts = 0;
  do {
    ++attempts;
    small_resp.Clear();
    grpc::ClientContext c;
    c.set_deadline(In(30));
    next = stub_->Classify(&c, small_req, &small_resp);
    if (next.error_code() != grpc::StatusCode::RESOURCE_EXHAUSTED) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  } while (SecondsSince(start) < 10);
  ASSERT_TRUE(next.ok()) << next.error_message() << " after " << attempts << " attempts";
  EXPECT_EQ(static_cast<size_t>(small_resp.windows_size()), SmallWindows(small.size()));
  EXPECT_EQ(small_resp.summary().samples_received(), small.size());
  const StreamOutcome streamed =
      RunStream(stub_.get(), Chunked(Config("small", 8000, 1), small, 1000, 9));
  EXPECT_TRUE(streamed.status.ok()) << streamed.status.error_message();
  EXPECT_EQ(Serialized(streamed.windows()),
            Serialized(WithoutReadySample({small_resp.windows().begin(), small_resp.windows().end()})));
  // Whether the server was still working when the deadline passed (it then
  // counts a cancelled Classify) depends on the machine: recorded, not checked.
  RecordProperty("server_saw_cancel",
                 std::to_string(SampleOr0(Metrics(), "wavepool_errors_total{method=\"Classify\","
                                                     "code=\"CANCELLED\"}")));
}

// ============================================================================
// 9. One stream_end log line per call, with the call's registry id.
// ============================================================================

// While it lives, what this process writes to fd 2 (where server::Log writes)
// goes to a file, and the log format is JSON.
class CapturedStderr {
 public:
  CapturedStderr() {
    path_ = std::filesystem::temp_directory_path() /
            ("wavepool-stderr-" + std::to_string(::getpid()) + "-" +
             ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fd_ = ::open(path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
    EXPECT_GE(fd_, 0);
    std::fflush(stderr);
    saved_ = ::dup(STDERR_FILENO);
    ::dup2(fd_, STDERR_FILENO);
    server::SetLogFormat(server::LogFormat::kJson);
  }
  ~CapturedStderr() {
    Stop();
    std::filesystem::remove(path_);
  }
  // Restores fd 2 and the text format; returns everything written meanwhile.
  std::string Stop() {
    if (saved_ >= 0) {
      server::SetLogFormat(server::LogFormat::kText);
      std::fflush(stderr);
      ::dup2(saved_, STDERR_FILENO);
      ::close(saved_);
      ::close(fd_);
      saved_ = -1;
    }
    std::ifstream f(path_);
    return std::string((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  }

 private:
  std::filesystem::path path_;
  int fd_ = -1;
  int saved_ = -1;
};

// The JSON log lines in `text` (gRPC's own lines, if any, are not JSON).
std::vector<google::protobuf::Struct> JsonLogLines(const std::string& text) {
  std::vector<google::protobuf::Struct> out;
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty() || line[0] != '{') continue;
    google::protobuf::Struct s;
    const auto st = google::protobuf::util::JsonStringToMessage(line, &s);
    EXPECT_TRUE(st.ok()) << st << ": " << line;
    if (st.ok()) out.push_back(std::move(s));
  }
  return out;
}

std::string Str(const google::protobuf::Struct& s, const std::string& key) {
  const auto it = s.fields().find(key);
  return it == s.fields().end() ? "<absent>" : it->second.string_value();
}
double Num(const google::protobuf::Struct& s, const std::string& key) {
  const auto it = s.fields().find(key);
  return it == s.fields().end() ? -1 : it->second.number_value();
}

TEST_F(Lifecycle, EveryCallLogsOneStreamEndLineWithItsStreamId) {
  server::ServerOptions o = Options();
  o.stream_limits.max_streams = 1;
  ASSERT_NO_FATAL_FAILURE(Start(o));
  // Registry ids count from 1 in the order calls are admitted; a call refused
  // before it had one logs stream 0.
  const std::vector<float> signal = VariedSignal(4500, 34);  // 10 complete windows + a tail
  std::string captured;
  StreamOutcome ok, not_found, refused;
  grpc::Status classify_ok, classify_not_found, held_status;
  v1::ClassifyResponse classify_resp;
  std::vector<v1::WindowResult> held_windows;
  size_t held_events = 0;
  {
    CapturedStderr capture;
    ok = RunStream(stub_.get(), Chunked(Config("small", 8000, 1, 3), signal, 1000, 1));  // id 1
    not_found = RunStream(stub_.get(), Chunked(Config("nope", 8000, 7), signal, 1000, 2));  // 2
    v1::ClassifyRequest creq;
    *creq.mutable_config() = Config("small", 8000, 2).config();
    creq.mutable_samples()->mutable_values()->Add(signal.begin(), signal.end());
    {
      grpc::ClientContext c;
      c.set_deadline(In(30));
      classify_ok = stub_->Classify(&c, creq, &classify_resp);  // id 3
    }
    const std::vector<float> held_signal = VariedSignal(2000, 35);
    LiveStream held(stub_.get());  // id 4
    if (held.Begin(Config("small", 8000, 1), held_signal)) {
      refused = RunStream(stub_.get(), Chunked(Config("small", 8000, 1), signal, 1000, 3));  // 0
      held_status = held.Finish();
    } else {
      held_status = held.Drain();
    }
    held_windows = held.windows();
    for (const auto& r : held.responses()) held_events += r.has_event() ? 1 : 0;
    creq.mutable_config()->set_model("nope");
    {
      v1::ClassifyResponse r;
      grpc::ClientContext c;
      c.set_deadline(In(30));
      classify_not_found = stub_->Classify(&c, creq, &r);  // id 5
    }
    captured = capture.Stop();
  }
  ASSERT_TRUE(ok.status.ok()) << ok.status.error_message();
  ASSERT_EQ(not_found.status.error_code(), grpc::StatusCode::NOT_FOUND);
  ASSERT_TRUE(classify_ok.ok()) << classify_ok.error_message();
  ASSERT_TRUE(held_status.ok()) << held_status.error_message();
  ASSERT_EQ(refused.status.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
  ASSERT_EQ(classify_not_found.error_code(), grpc::StatusCode::NOT_FOUND);

  const std::vector<google::protobuf::Struct> lines = JsonLogLines(captured);
  // Nothing but stream_end, one per call: nothing per window.
  std::map<int, google::protobuf::Struct> by_id;
  for (const auto& l : lines) {
    EXPECT_EQ(Str(l, "event"), "stream_end") << captured;
    const int id = static_cast<int>(Num(l, "stream"));
    EXPECT_EQ(by_id.count(id), 0u) << "two lines for stream " << id << "\n" << captured;
    by_id[id] = l;
    EXPECT_TRUE(Str(l, "peer").starts_with("ipv4:127.0.0.1:")) << Str(l, "peer");
    EXPECT_GE(Num(l, "seconds"), 0);
    EXPECT_FALSE(Str(l, "ts").empty());
  }
  ASSERT_EQ(lines.size(), 6u) << captured;
  ASSERT_EQ(by_id.size(), 6u) << captured;
  for (int id : {0, 1, 2, 3, 4, 5}) ASSERT_EQ(by_id.count(id), 1u) << id << "\n" << captured;

  struct Want {
    int id;
    std::string method, model;
    double version, windows, events, samples;
    std::string code, level, message;  // message "" = absent
  };
  const size_t n_ok = SmallWindows(signal.size());
  ASSERT_EQ(n_ok, 11u);
  ASSERT_EQ(ok.windows().size(), n_ok);
  const std::vector<Want> wants = {
      {1, "StreamClassify", "small", 1, double(n_ok), double(ok.events().size()),
       double(signal.size()), "OK", "info", ""},
      {2, "StreamClassify", "nope", 7, 0, 0, 0, "NOT_FOUND", "warning",
       not_found.status.error_message()},
      {3, "Classify", "small", 2, double(n_ok), double(classify_resp.events_size()),
       double(signal.size()), "OK", "info", ""},
      {4, "StreamClassify", "small", 1, double(SmallWindows(2000)), double(held_events), 2000,
       "OK", "info", ""},
      {0, "StreamClassify", "", 0, 0, 0, 0, "RESOURCE_EXHAUSTED", "warning",
       refused.status.error_message()},
      {5, "Classify", "nope", 2, 0, 0, 0, "NOT_FOUND", "warning",
       classify_not_found.error_message()},
  };
  EXPECT_EQ(held_windows.size(), SmallWindows(2000));
  EXPECT_EQ(static_cast<size_t>(classify_resp.windows_size()), n_ok);
  for (const Want& w : wants) {
    SCOPED_TRACE(w.id);
    const google::protobuf::Struct& l = by_id[w.id];
    EXPECT_EQ(Str(l, "method"), w.method);
    EXPECT_EQ(Str(l, "model"), w.model);
    EXPECT_EQ(Num(l, "version"), w.version);
    EXPECT_EQ(Num(l, "windows"), w.windows);
    EXPECT_EQ(Num(l, "events"), w.events);
    EXPECT_EQ(Num(l, "samples"), w.samples);
    EXPECT_EQ(Str(l, "code"), w.code);
    EXPECT_EQ(Str(l, "level"), w.level);
    EXPECT_EQ(Str(l, "message"), w.message.empty() ? "<absent>" : w.message);
  }
  EXPECT_TRUE(Contains(by_id[0].fields().at("message").string_value(), "max_streams 1"));
}

// ============================================================================
// The batcher's two triggers, on their own: a full batch goes at once, a lone
// window waits for max_queue_delay_ms (only lower bounds on time).
// ============================================================================

std::shared_ptr<const nn::Model> BatcherModel(uint64_t seed) {
  absl::StatusOr<nn::ModelSpec> spec = nn::ParseSpecJson(SmallSpecJson("small", 1));
  EXPECT_TRUE(spec.ok()) << spec.status();
  absl::StatusOr<nn::TensorMap> weights = nn::InitWeights(*spec, seed);
  EXPECT_TRUE(weights.ok()) << weights.status();
  absl::StatusOr<std::shared_ptr<const nn::Model>> model = nn::Model::Create(*spec, *weights);
  EXPECT_TRUE(model.ok()) << model.status();
  return *model;
}

class Submission final : public server::BatchCompletion {
 public:
  Submission(const nn::Model& model, size_t count, uint32_t seed)
      : inputs(count * model.input_size()), outputs(count * model.output_size()) {
    std::mt19937 rng(seed);
    std::normal_distribution<float> d(0, 1);
    for (float& x : inputs) x = d(rng);
  }
  void OnScored() override {
    std::lock_guard<std::mutex> lock(mu_);
    ++calls_;
    done_at_ = Clock::now();
    cv_.notify_all();
  }
  bool Wait(double seconds) {
    std::unique_lock<std::mutex> lock(mu_);
    return cv_.wait_for(lock, std::chrono::duration<double>(seconds), [&] { return calls_ > 0; });
  }
  Clock::time_point done_at() {
    std::lock_guard<std::mutex> lock(mu_);
    return done_at_;
  }
  std::vector<float> inputs, outputs;

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  int calls_ = 0;
  Clock::time_point done_at_;
};

struct BatchLog {
  std::mutex mu;
  std::vector<int> sizes;
  std::vector<double> delays;
  std::function<void(const server::BatchStats&)> Observer() {
    return [this](const server::BatchStats& b) {
      std::lock_guard<std::mutex> lock(mu);
      sizes.push_back(b.size);
      delays.insert(delays.end(), b.queue_delays_s.begin(), b.queue_delays_s.end());
    };
  }
};

TEST(BatcherTriggers, AFullBatchGoesWithoutWaitingForTheDelay) {
  const auto model = BatcherModel(8);
  BatchLog log;
  server::Batcher batcher(2);
  // A minute's delay: within the test only a full batch can run.
  auto queue = batcher.AddModel(model, {.max_batch_size = 4, .max_queue_delay_ms = 60000},
                                log.Observer());
  Submission a(*model, 2, 1), b(*model, 2, 2);
  batcher.Submit(*queue, a.inputs.data(), a.outputs.data(), 2, &a);
  batcher.Submit(*queue, b.inputs.data(), b.outputs.data(), 2, &b);
  ASSERT_TRUE(a.Wait(20));
  ASSERT_TRUE(b.Wait(20));
  std::lock_guard<std::mutex> lock(log.mu);
  EXPECT_EQ(log.sizes, std::vector<int>{4});
}

TEST(BatcherTriggers, ALoneWindowWaitsForTheDelay) {
  const auto model = BatcherModel(9);
  BatchLog log;
  server::Batcher batcher(2);
  auto queue = batcher.AddModel(model, {.max_batch_size = 8, .max_queue_delay_ms = 200},
                                log.Observer());
  Submission a(*model, 1, 3);
  const Clock::time_point start = Clock::now();
  batcher.Submit(*queue, a.inputs.data(), a.outputs.data(), 1, &a);
  ASSERT_TRUE(a.Wait(20));
  EXPECT_GE(std::chrono::duration<double>(a.done_at() - start).count(), 0.2);
  std::lock_guard<std::mutex> lock(log.mu);
  ASSERT_EQ(log.delays.size(), 1u);
  EXPECT_GE(log.delays[0], 0.2);
  EXPECT_EQ(log.sizes, std::vector<int>{1});
}

}  // namespace
}  // namespace wavepool::testing
