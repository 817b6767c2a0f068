// Helpers for the server tests: a model repository in a temp folder with small
// seeded models, and a real server on a loopback port.
#pragma once

#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "grpcpp/create_channel.h"
#include "grpcpp/security/credentials.h"
#include "gtest/gtest.h"
#include "nn/spec.h"
#include "server/wavepool_server.h"
#include "wavepool/v1/classifier.grpc.pb.h"

namespace wavepool::testing {

// A small fixed-window model: 8 kHz, window 800 samples (100 ms), hop 400,
// frames 160/80 (9 frames per window), 16 mel bands, labels a, b, c.
inline std::string SmallSpecJson(const std::string& name, int version) {
  return R"({
  "name": ")" + name + R"(", "version": ")" + std::to_string(version) + R"(",
  "kind": "FIXED_WINDOWS", "sampleRateHz": 8000,
  "windowing": {"lengthSamples": 800, "hopSamples": 400},
  "frontEnd": {"stft": {"frameLength": 160, "frameHop": 80, "fftSize": 256, "window": "HANN"},
               "mel": {"numBands": 16, "fMinHz": 0, "fMaxHz": 4000},
               "layout": "MEL_AS_FREQ"},
  "layers": [
    {"name": "conv1", "conv2d": {"outChannels": 4, "kernelTime": 3, "kernelFreq": 3, "padTime": 1, "padFreq": 1}},
    {"name": "relu1", "relu": {}},
    {"name": "pool1", "maxPool2d": {"kernelTime": 2, "kernelFreq": 2}},
    {"name": "gap", "globalAvgPool": {}},
    {"name": "fc", "dense": {"outFeatures": 3}}
  ],
  "labels": ["a", "b", "c"]
})";
}

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

}  // namespace wavepool::testing
