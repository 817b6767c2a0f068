// Helpers for the server tests: a model repository in a temp folder with small
// seeded models, and a real server on a loopback port.
#pragma once

#include <chrono>
#include <cmath>
#include <filesystem>
#include <cstdlib>
#include <memory>
#include <optional>
#include <random>
#include <span>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "grpcpp/create_channel.h"
#include "grpcpp/security/credentials.h"
#include "gtest/gtest.h"
#include "nn/spec.h"
#include "server/wavepool_server.h"
#include "tests/small_spec.h"
#include "wavepool/v1/classifier.grpc.pb.h"

namespace wavepool::testing {

// Writes models/<name>/<version>/{spec.json,weights.safetensors} with seeded weights.
inline void WriteModel(const std::filesystem::path& root, const std::string& spec_json,
                       uint64_t seed) {
  absl::StatusOr<nn::ModelSpec> spec = nn::ParseSpecJson(spec_json);
  ASSERT_TRUE(spec.ok()) << spec.status();
  const auto dir = root / spec->name() / std::to_string(spec->version());
  std::filesystem::create_directories(dir);
  absl::StatusOr<nn::TensorMap> weights = nn::InitWeights(*spec, seed);
  ASSERT_TRUE(weights.ok()) << weights.status();
  nn::Safetensors st;
  st.tensors = *std::move(weights);
  ASSERT_TRUE(nn::WriteSafetensors((dir / "weights.safetensors").string(), st).ok());
  std::FILE* f = std::fopen((dir / "spec.json").c_str(), "w");
  ASSERT_NE(f, nullptr);
  const std::string json = nn::SpecToJson(*spec);
  std::fwrite(json.data(), 1, json.size(), f);
  std::fclose(f);
}

inline std::filesystem::path MakeTempDir(const std::string& tag) {
  auto dir = std::filesystem::temp_directory_path() /
             (tag + "-" + std::to_string(::getpid()) + "-" +
              ::testing::UnitTest::GetInstance()->current_test_info()->name());
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  return dir;
}

class ServerFixture : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = MakeTempDir("wavepool-repo");
    WriteModel(root_, SmallSpecJson("small", 1), 11);
    WriteModel(root_, SmallSpecJson("small", 2), 22);
    server::ServerOptions options;
    options.address = "127.0.0.1:0";
    options.model_repository = root_.string();
    auto s = server::WavepoolServer::Start(options);
    ASSERT_TRUE(s.ok()) << s.status();
    server_ = *std::move(s);
    address_ = "127.0.0.1:" + std::to_string(server_->port());
    channel_ = grpc::CreateChannel(address_, grpc::InsecureChannelCredentials());
    stub_ = v1::Classifier::NewStub(channel_);
  }
  void TearDown() override {
    server_.reset();
    std::filesystem::remove_all(root_);
  }

  std::filesystem::path root_;
  std::unique_ptr<server::WavepoolServer> server_;
  std::string address_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<v1::Classifier::Stub> stub_;
};


// ---- Requests, signals and whole streams, shared by the server tests ----

using Clock = std::chrono::steady_clock;

inline double SecondsSince(Clock::time_point t) {
  return std::chrono::duration<double>(Clock::now() - t).count();
}

inline std::chrono::system_clock::time_point In(double seconds) {
  return std::chrono::system_clock::now() +
         std::chrono::duration_cast<std::chrono::system_clock::duration>(
             std::chrono::duration<double>(seconds));
}

// top_k 0 leaves it unset (the server's default, 1).
inline v1::StreamClassifyRequest Config(const std::string& model, double rate,
                                        int64_t version = 0, uint32_t top_k = 0) {
  v1::StreamClassifyRequest r;
  r.mutable_config()->set_model(model);
  r.mutable_config()->set_version(version);
  r.mutable_config()->set_sample_rate_hz(rate);
  if (top_k > 0) r.mutable_config()->set_top_k(top_k);
  return r;
}

inline v1::StreamClassifyRequest Values(std::span<const float> v) {
  v1::StreamClassifyRequest r;
  r.mutable_samples()->mutable_values()->Add(v.begin(), v.end());
  return r;
}

// A chirp from f0 Hz upwards plus seeded noise.
inline std::vector<float> TestSignal(size_t n, uint32_t seed, double rate = 8000,
                                     double f0 = 300) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> noise(0, 0.05f);
  std::vector<float> s(n);
  for (size_t i = 0; i < n; ++i) {
    s[i] = 0.3f * static_cast<float>(std::sin(2 * M_PI * (f0 + 2 * i / rate * 400) * i / rate)) +
           noise(rng);
  }
  return s;
}

// Splits `signal` into chunks of random sizes in [1, max_chunk].
inline std::vector<v1::StreamClassifyRequest> Chunked(const v1::StreamClassifyRequest& config,
                                                      const std::vector<float>& signal,
                                                      size_t max_chunk, uint32_t seed) {
  std::vector<v1::StreamClassifyRequest> reqs{config};
  std::mt19937 rng(seed);
  std::uniform_int_distribution<size_t> size(1, max_chunk);
  for (size_t i = 0; i < signal.size();) {
    const size_t n = std::min(signal.size() - i, size(rng));
    reqs.push_back(Values(std::span(signal).subspan(i, n)));
    i += n;
  }
  return reqs;
}

// A result needs its whole window; when it was ready (ready_sample) depends on
// how the stream was chunked, so it is checked here and left out of comparisons
// between differently chunked runs.
inline std::vector<v1::WindowResult> WithoutReadySample(std::vector<v1::WindowResult> windows) {
  for (v1::WindowResult& w : windows) {
    EXPECT_GE(w.ready_sample(), w.end_sample()) << "window " << w.index();
    w.clear_ready_sample();
  }
  return windows;
}

struct StreamOutcome {
  std::vector<v1::StreamClassifyResponse> responses;
  grpc::Status status;
  double seconds = 0;
  // Without ready_sample unless `keep_ready`.
  std::vector<v1::WindowResult> windows(bool keep_ready = false) const {
    std::vector<v1::WindowResult> w;
    for (const auto& r : responses) {
      if (r.has_window()) w.push_back(r.window());
    }
    return keep_ready ? w : WithoutReadySample(std::move(w));
  }
  std::vector<v1::Event> events() const {
    std::vector<v1::Event> e;
    for (const auto& r : responses) {
      if (r.has_event()) e.push_back(r.event());
    }
    return e;
  }
};

// Sends every request (in a writer thread), half-closes, reads everything.
inline StreamOutcome RunStream(v1::Classifier::Stub* stub,
                               const std::vector<v1::StreamClassifyRequest>& reqs,
                               double deadline_s = 60) {
  const Clock::time_point start = Clock::now();
  grpc::ClientContext context;
  context.set_deadline(In(deadline_s));
  auto stream = stub->StreamClassify(&context);
  std::thread writer([&] {
    for (const auto& r : reqs) {
      if (!stream->Write(r)) break;
    }
    stream->WritesDone();
  });
  StreamOutcome out;
  v1::StreamClassifyResponse resp;
  while (stream->Read(&resp)) out.responses.push_back(resp);
  writer.join();
  out.status = stream->Finish();
  out.seconds = SecondsSince(start);
  return out;
}

inline std::vector<std::string> Serialized(const std::vector<v1::WindowResult>& windows) {
  std::vector<std::string> out;
  for (const auto& w : windows) out.push_back(w.SerializeAsString());
  return out;
}

// In Prometheus text `text`, the value of the sample whose series (name and
// labels, exactly) is `series`.
inline std::optional<double> Sample(const std::string& text, const std::string& series) {
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    if (line.size() > series.size() && line.compare(0, series.size(), series) == 0 &&
        line[series.size()] == ' ') {
      return std::strtod(line.c_str() + series.size() + 1, nullptr);
    }
  }
  return std::nullopt;
}

}  // namespace wavepool::testing
