// ECG through a real server: a committed MIT-BIH excerpt streamed in random
// chunk sizes gives the same beats and classes every time; INT16 with the
// record's gain equals float millivolts; beats land on the reference R peaks;
// a client at another rate gets beats in its own numbering.
#include <cmath>
#include <random>
#include <thread>

#include "dsp/resampler.h"
#include "dsp/wfdb.h"
#include "tests/server_test_util.h"

namespace wavepool::testing {
namespace {

class EcgServer : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = MakeTempDir("wavepool-ecg");
    std::FILE* f = std::fopen((std::string(WP_SOURCE_DIR) + "/specs/ecg-beats.json").c_str(), "r");
    ASSERT_NE(f, nullptr);
    std::string json;
    char buf[4096];
    for (size_t n; (n = std::fread(buf, 1, sizeof buf, f)) > 0;) json.append(buf, n);
    std::fclose(f);
    WriteModel(root_, json, 7);  // seeded weights: the path is under test, not accuracy
    server::ServerOptions options;
    options.address = "127.0.0.1:0";
    options.model_repository = root_.string();
    auto s = server::WavepoolServer::Start(options);
    ASSERT_TRUE(s.ok()) << s.status();
    server_ = *std::move(s);
    stub_ = v1::Classifier::NewStub(grpc::CreateChannel(
        "127.0.0.1:" + std::to_string(server_->port()), grpc::InsecureChannelCredentials()));
    auto rec = dsp::ReadWfdbRecord(std::string(WP_TEST_DATA_DIR) + "/mitdb/208.hea");
    ASSERT_TRUE(rec.ok()) << rec.status();
    record_ = *std::move(rec);
    auto ann = dsp::ReadMitAnnotations(std::string(WP_TEST_DATA_DIR) + "/mitdb/208.atr");
    ASSERT_TRUE(ann.ok());
    for (const auto& a : *ann) {
      if (dsp::AamiClass(a.Symbol()) != '\0') reference_.push_back(a.sample);
    }
  }
  void TearDown() override {
    server_.reset();
    std::filesystem::remove_all(root_);
  }

  // Streams `n` frames produced by `chunk(begin, end)` in random chunk sizes.
  std::vector<v1::WindowResult> Stream(const v1::StreamConfig& config, size_t n,
                                       const std::function<v1::SampleChunk(size_t, size_t)>& chunk,
                                       uint32_t seed) {
    grpc::ClientContext ctx;
    auto call = stub_->StreamClassify(&ctx);
    std::thread writer([&] {
      v1::StreamClassifyRequest req;
      *req.mutable_config() = config;
      call->Write(req);
      std::mt19937 rng(seed);
      std::uniform_int_distribution<size_t> size(1, 2000);
      for (size_t i = 0; i < n;) {
        const size_t k = std::min(n - i, size(rng));
        v1::StreamClassifyRequest c;
        *c.mutable_samples() = chunk(i, i + k);
        call->Write(c);
        i += k;
      }
      call->WritesDone();
    });
    std::vector<v1::WindowResult> beats;
    v1::StreamClassifyResponse r;
    while (call->Read(&r)) {
      if (r.has_window()) beats.push_back(r.window());
    }
    writer.join();
    EXPECT_TRUE(call->Finish().ok());
    // The detector confirms a beat after its window ends; how much later
    // depends on the chunking, so ready_sample is checked, then left out.
    return WithoutReadySample(std::move(beats));
  }

  v1::SampleChunk Int16(size_t b, size_t e) const {
    v1::SampleChunk c;
    std::string bytes;
    for (size_t i = b; i < e; ++i) {
      const auto u = static_cast<uint16_t>(record_.adc[i * 2]);
      bytes.push_back(static_cast<char>(u & 0xff));
      bytes.push_back(static_cast<char>(u >> 8));
    }
    c.set_pcm(bytes);
    return c;
  }

  std::filesystem::path root_;
  std::unique_ptr<server::WavepoolServer> server_;
  std::unique_ptr<v1::Classifier::Stub> stub_;
  dsp::WfdbRecord record_;
  std::vector<int64_t> reference_;
};

std::vector<std::string> Serialized(const std::vector<v1::WindowResult>& w) {
  std::vector<std::string> s;
  for (const auto& x : w) s.push_back(x.SerializeAsString());
  return s;
}

// Beat positions and top labels (scores may differ in the last bits when the
// same millivolts arrive by another arithmetic path).
std::vector<std::pair<uint64_t, std::string>> BeatsAndLabels(const std::vector<v1::WindowResult>& w) {
  std::vector<std::pair<uint64_t, std::string>> s;
  for (const auto& x : w) s.push_back({x.beat_sample(), x.top(0).label()});
  return s;
}

TEST_F(EcgServer, RandomChunkingGivesTheSameBeatsAndClassesEveryTime) {
  v1::StreamConfig config;
  config.set_model("ecg-beats");
  config.set_sample_rate_hz(360);
  config.set_encoding(v1::INT16);
  config.set_adc_gain(record_.header.signals[0].adc_gain);
  config.set_baseline(record_.header.signals[0].baseline);
  const size_t n = static_cast<size_t>(record_.frames());
  auto chunk = [&](size_t b, size_t e) { return Int16(b, e); };
  const auto first = Stream(config, n, chunk, 1);
  ASSERT_GT(first.size(), 90u);
  for (uint32_t seed : {2u, 3u}) {
    EXPECT_TRUE(Serialized(Stream(config, n, chunk, seed)) == Serialized(first))
        << "chunk seed " << seed << " changed the results";
  }
  // Float millivolts give the same beats as INT16 with the record's gain.
  v1::StreamConfig fconfig = config;
  fconfig.set_encoding(v1::FLOAT32);
  fconfig.clear_adc_gain();
  fconfig.clear_baseline();
  const std::vector<float> mv = record_.Physical(0);
  const auto floats = Stream(fconfig, n, [&](size_t b, size_t e) {
    v1::SampleChunk c;
    for (size_t i = b; i < e; ++i) c.add_values(mv[i]);
    return c;
  }, 4);
  EXPECT_EQ(BeatsAndLabels(floats), BeatsAndLabels(first));

  // Beats are the reference R peaks (Se and +P >= 99% within 150 ms), in order,
  // with RR intervals that match their neighbours.
  std::vector<int64_t> detected;
  for (size_t i = 0; i < first.size(); ++i) {
    ASSERT_TRUE(first[i].has_beat_sample());
    EXPECT_EQ(first[i].index(), i);
    detected.push_back(static_cast<int64_t>(first[i].beat_sample()));
    if (i > 0) {
      EXPECT_NEAR(first[i].rr_prev_s(),
                  (static_cast<double>(first[i].beat_sample()) - first[i - 1].beat_sample()) / 360, 1e-9);
      EXPECT_DOUBLE_EQ(first[i - 1].rr_next_s(), first[i].rr_prev_s());
    }
    ASSERT_EQ(first[i].top_size(), 1);
  }
  const dsp::DetectionScore score = dsp::ScoreDetections(reference_, detected, 360);
  EXPECT_GE(score.sensitivity(), 0.99);
  EXPECT_GE(score.positive_predictivity(), 0.99);
}

TEST_F(EcgServer, ListModelsGivesTheBeatWindowSpan) {
  v1::ListModelsResponse list;
  grpc::ClientContext ctx;
  ASSERT_TRUE(stub_->ListModels(&ctx, {}, &list).ok());
  ASSERT_EQ(list.models_size(), 1);
  EXPECT_EQ(list.models(0).kind(), v1::BEAT_WINDOWS);
  EXPECT_DOUBLE_EQ(list.models(0).window_s(), 0.25 + 0.4);
  EXPECT_EQ(list.models(0).hop_s(), 0.0);
}

TEST_F(EcgServer, AClientAt250HzGetsBeatsInItsOwnNumbering) {
  // The excerpt resampled to 250 Hz by the client; the server resamples back.
  const std::vector<float> mv = record_.Physical(0);
  auto rs = dsp::Resampler::Create(360, 250);
  ASSERT_TRUE(rs.ok());
  std::vector<float> at250;
  auto append = [&](std::span<const float> s) { at250.insert(at250.end(), s.begin(), s.end()); };
  ASSERT_TRUE((*rs)->Push(mv, append).ok());
  ASSERT_TRUE((*rs)->Finish(append).ok());
  v1::StreamConfig config;
  config.set_model("ecg-beats");
  config.set_sample_rate_hz(250);
  const auto beats = Stream(config, at250.size(), [&](size_t b, size_t e) {
    v1::SampleChunk c;
    for (size_t i = b; i < e; ++i) c.add_values(at250[i]);
    return c;
  }, 5);
  std::vector<int64_t> detected, reference250;
  for (const auto& b : beats) detected.push_back(static_cast<int64_t>(b.beat_sample()));
  for (int64_t r : reference_) reference250.push_back(std::llround(static_cast<double>(r) * 250 / 360));
  const dsp::DetectionScore score = dsp::ScoreDetections(reference250, detected, 250);
  EXPECT_GE(score.sensitivity(), 0.98);
  EXPECT_GE(score.positive_predictivity(), 0.98);
}

}  // namespace
}  // namespace wavepool::testing
