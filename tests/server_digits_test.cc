// The shipped digit model through a real server: each committed clip (FSDD test
// takes, chosen before training) gives exactly one event with the right digit,
// streamed in random chunks or sent to Classify; a synthetic stream of known
// digits at known positions gives those digits in order, where they are.
#include <random>
#include <thread>

#include "dsp/wav.h"
#include "grpcpp/create_channel.h"
#include "gtest/gtest.h"
#include "server/wavepool_server.h"
#include "wavepool/v1/classifier.grpc.pb.h"

namespace wavepool::testing {
namespace {

class DigitServer : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    server::ServerOptions options;
    options.address = "127.0.0.1:0";
    options.model_repository = std::string(WP_SOURCE_DIR) + "/models";
    auto s = server::WavepoolServer::Start(options);
    ASSERT_TRUE(s.ok()) << s.status();
    server_ = s->release();
    channel_ = new std::shared_ptr<grpc::Channel>(grpc::CreateChannel(
        "127.0.0.1:" + std::to_string(server_->port()), grpc::InsecureChannelCredentials()));
  }
  static void TearDownTestSuite() {
    delete channel_;
    delete server_;
  }
  void SetUp() override {
    ASSERT_TRUE(server_->repository().Find("digits", 0).ok()) << "models/digits is not shipped";
    stub_ = v1::Classifier::NewStub(*channel_);
  }

  static std::vector<float> Clip(int digit, const std::string& speaker) {
    auto a = dsp::ReadAudio(std::string(WP_TEST_DATA_DIR) + "/fsdd/" + std::to_string(digit) + "_" +
                            speaker + "_0.wav");
    EXPECT_TRUE(a.ok()) << a.status();
    return a.ok() ? dsp::Downmix(*a) : std::vector<float>{};
  }

  std::vector<v1::Event> Stream(const std::vector<float>& s, uint32_t seed) {
    grpc::ClientContext ctx;
    auto call = stub_->StreamClassify(&ctx);
    std::thread writer([&] {
      v1::StreamClassifyRequest req;
      req.mutable_config()->set_model("digits");
      req.mutable_config()->set_sample_rate_hz(8000);
      call->Write(req);
      std::mt19937 rng(seed);
      std::uniform_int_distribution<size_t> size(1, 1500);
      for (size_t i = 0; i < s.size();) {
        const size_t n = std::min(s.size() - i, size(rng));
        v1::StreamClassifyRequest c;
        for (size_t k = i; k < i + n; ++k) c.mutable_samples()->add_values(s[k]);
        call->Write(c);
        i += n;
      }
      call->WritesDone();
    });
    std::vector<v1::Event> events;
    v1::StreamClassifyResponse r;
    while (call->Read(&r)) {
      if (r.has_event()) events.push_back(r.event());
    }
    writer.join();
    EXPECT_TRUE(call->Finish().ok());
    return events;
  }

  static server::WavepoolServer* server_;
  static std::shared_ptr<grpc::Channel>* channel_;
  std::unique_ptr<v1::Classifier::Stub> stub_;
};

server::WavepoolServer* DigitServer::server_ = nullptr;
std::shared_ptr<grpc::Channel>* DigitServer::channel_ = nullptr;

TEST_F(DigitServer, EachCommittedClipIsExactlyOneEventWithTheRightDigit) {
  for (int d = 0; d < 10; ++d) {
    for (const char* speaker : {"george", "jackson"}) {
      SCOPED_TRACE(std::to_string(d) + "_" + speaker);
      // A little silence around the clip, as a client app would send it.
      std::vector<float> s(800, 0.0f);
      const std::vector<float> clip = Clip(d, speaker);
      s.insert(s.end(), clip.begin(), clip.end());
      s.resize(s.size() + 800, 0.0f);
      v1::ClassifyRequest req;
      req.mutable_config()->set_model("digits");
      req.mutable_config()->set_sample_rate_hz(8000);
      for (float x : s) req.mutable_samples()->add_values(x);
      v1::ClassifyResponse resp;
      grpc::ClientContext ctx;
      ASSERT_TRUE(stub_->Classify(&ctx, req, &resp).ok());
      ASSERT_EQ(resp.events_size(), 1);
      EXPECT_EQ(resp.events(0).label(), std::to_string(d));
      const auto streamed = Stream(s, static_cast<uint32_t>(d));
      ASSERT_EQ(streamed.size(), 1u);
      EXPECT_EQ(streamed[0].SerializeAsString(), resp.events(0).SerializeAsString());
    }
  }
}

TEST_F(DigitServer, SyntheticStreamGivesKnownDigitsInOrderWhereTheyAre) {
  // Digits 3 1 4 1 5 9 2 6 from alternating speakers, gaps of 0.5-1.2 s of
  // silence or -60 dBFS noise (seeded).
  std::mt19937 rng(2024);
  std::normal_distribution<float> noise(0, 0.001f);
  std::uniform_int_distribution<size_t> gap(4000, 9600);
  std::vector<float> s;
  struct Truth { std::string label; size_t start, end; };
  std::vector<Truth> truth;
  const int digits[] = {3, 1, 4, 1, 5, 9, 2, 6};
  for (size_t i = 0; i < 8; ++i) {
    const size_t g = gap(rng);
    for (size_t k = 0; k < g; ++k) s.push_back(i % 2 ? noise(rng) : 0.0f);
    const std::vector<float> clip = Clip(digits[i], i % 2 ? "jackson" : "george");
    truth.push_back({std::to_string(digits[i]), s.size(), s.size() + clip.size()});
    s.insert(s.end(), clip.begin(), clip.end());
  }
  s.resize(s.size() + 6000, 0.0f);
  const auto events = Stream(s, 9);
  ASSERT_EQ(events.size(), truth.size());
  for (size_t i = 0; i < truth.size(); ++i) {
    SCOPED_TRACE(i);
    EXPECT_EQ(events[i].label(), truth[i].label);
    // The event's span overlaps the spoken digit.
    EXPECT_LT(events[i].start_sample(), truth[i].end);
    EXPECT_GT(events[i].end_sample(), truth[i].start);
  }
}

}  // namespace
}  // namespace wavepool::testing
