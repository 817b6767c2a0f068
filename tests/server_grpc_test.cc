// A real server on a loopback port and a real client: chunking invariance,
// exact windows and ranges, half-close flush, every error with its code, two
// streams where one goes bad, health and reflection.
#include <cmath>
#include <cstring>
#include <random>
#include <thread>

#include "google/protobuf/descriptor.pb.h"
#include "google/protobuf/unknown_field_set.h"
#include "grpc/health/v1/health.grpc.pb.h"
#include "grpcpp/generic/generic_stub.h"
#include "grpcpp/support/byte_buffer.h"
#include "tests/server_test_util.h"

namespace wavepool::testing {
namespace {

using v1::StreamClassifyRequest;
using v1::StreamClassifyResponse;


TEST_F(ServerFixture, OneSamplePerMessageEqualsOneMessageBitForBit) {
  const std::vector<float> signal = TestSignal(10961, 1);
  const auto whole = RunStream(stub_.get(), Chunked(Config("small", 8000), signal, signal.size() * 2, 0));
  const auto single = RunStream(stub_.get(), Chunked(Config("small", 8000), signal, 1, 0));
  ASSERT_TRUE(whole.status.ok()) << whole.status.error_message();
  ASSERT_TRUE(single.status.ok()) << single.status.error_message();
  ASSERT_EQ(whole.windows().size(), 27u);  // 26 complete + padded tail
  EXPECT_EQ(Serialized(whole.windows()), Serialized(single.windows()));
  for (uint32_t seed : {1u, 2u, 3u}) {
    const auto random = RunStream(stub_.get(), Chunked(Config("small", 8000), signal, 997, seed));
    ASSERT_TRUE(random.status.ok());
    EXPECT_EQ(Serialized(whole.windows()), Serialized(random.windows())) << "chunk seed " << seed;
  }
}

TEST_F(ServerFixture, ExactWindowCountRangesAndPaddedTail) {
  // window 800, hop 400 at 8 kHz: complete windows j with 400 j + 800 <= N.
  struct Case { size_t n; size_t complete; bool padded; };
  for (const Case c : {Case{3000, 6, true}, Case{2800, 6, false}, Case{500, 0, true},
                       Case{800, 1, false}, Case{801, 1, true}, Case{0, 0, false}}) {
    SCOPED_TRACE(c.n);
    const std::vector<float> signal = TestSignal(c.n, 2);
    std::vector<StreamClassifyRequest> reqs{Config("small", 8000)};
    if (c.n > 0) reqs.push_back(Values(signal));
    const auto out = RunStream(stub_.get(), reqs);
    ASSERT_TRUE(out.status.ok()) << out.status.error_message();
    const auto windows = out.windows();
    ASSERT_EQ(windows.size(), c.complete + (c.padded ? 1 : 0));
    for (size_t j = 0; j < windows.size(); ++j) {
      EXPECT_EQ(windows[j].index(), j);
      EXPECT_EQ(windows[j].start_sample(), 400 * j);
      EXPECT_DOUBLE_EQ(windows[j].start_time_s(), 400.0 * j / 8000);
      const bool is_tail = c.padded && j + 1 == windows.size();
      EXPECT_EQ(windows[j].padded(), is_tail);
      EXPECT_EQ(windows[j].end_sample(), is_tail ? c.n : 400 * j + 800);
      ASSERT_EQ(windows[j].top_size(), 1);
    }
    ASSERT_FALSE(out.responses.empty());
    ASSERT_TRUE(out.responses.back().has_summary()) << "the summary comes last";
    EXPECT_EQ(out.responses.back().summary().windows(), windows.size());
    EXPECT_EQ(out.responses.back().summary().samples_received(), c.n);
  }
}

TEST_F(ServerFixture, TopKIsSortedSoftmax) {
  auto config = Config("small", 8000);
  config.mutable_config()->set_top_k(10);  // clamped to the 3 labels
  const auto out = RunStream(stub_.get(), {config, Values(TestSignal(2000, 3))});
  ASSERT_TRUE(out.status.ok());
  for (const auto& w : out.windows()) {
    ASSERT_EQ(w.top_size(), 3);
    float sum = 0;
    std::set<std::string> labels;
    for (int i = 0; i < 3; ++i) {
      sum += w.top(i).score();
      labels.insert(w.top(i).label());
      if (i > 0) {
        EXPECT_GE(w.top(i - 1).score(), w.top(i).score());
      }
    }
    EXPECT_NEAR(sum, 1.0f, 1e-5f);
    EXPECT_EQ(labels, (std::set<std::string>{"a", "b", "c"}));
  }
}

TEST_F(ServerFixture, ResampledStreamMapsRangesToClientRateAndIsChunkInvariant) {
  const std::vector<float> signal = TestSignal(16000, 4, 16000);  // 1 s at 16 kHz
  const auto whole = RunStream(stub_.get(), Chunked(Config("small", 16000), signal, 1 << 20, 0));
  const auto random = RunStream(stub_.get(), Chunked(Config("small", 16000), signal, 333, 5));
  ASSERT_TRUE(whole.status.ok()) << whole.status.error_message();
  ASSERT_TRUE(random.status.ok());
  EXPECT_EQ(Serialized(whole.windows()), Serialized(random.windows()));
  const auto windows = whole.windows();
  // About 8000 model samples (soxr's output is within one sample of N/2):
  // windows 0..17 are complete for sure; window 18 ends at model sample 8000,
  // complete or padded by one sample, and in client numbering [14400, 16000).
  ASSERT_EQ(windows.size(), 19u);
  for (size_t j = 0; j < windows.size(); ++j) {
    EXPECT_EQ(windows[j].start_sample(), 800 * j);
    EXPECT_EQ(windows[j].end_sample(), 800 * j + 1600);
    if (j < 18) {
      EXPECT_FALSE(windows[j].padded());
    }
  }
  // Classify gives the same windows as streaming.
  v1::ClassifyRequest req;
  *req.mutable_config() = Config("small", 16000).config();
  for (float x : signal) req.mutable_samples()->add_values(x);
  v1::ClassifyResponse resp;
  grpc::ClientContext ctx;
  ASSERT_TRUE(stub_->Classify(&ctx, req, &resp).ok());
  for (v1::WindowResult& w : *resp.mutable_windows()) w.clear_ready_sample();
  EXPECT_EQ(Serialized({resp.windows().begin(), resp.windows().end()}), Serialized(windows));
  EXPECT_EQ(resp.summary().samples_received(), 16000u);
}

std::string Int16Bytes(const std::vector<int16_t>& v) {
  std::string b(2 * v.size(), '\0');
  for (size_t i = 0; i < v.size(); ++i) {
    b[2 * i] = static_cast<char>(v[i] & 0xff);
    b[2 * i + 1] = static_cast<char>((static_cast<uint16_t>(v[i]) >> 8) & 0xff);
  }
  return b;
}

TEST_F(ServerFixture, Int16StereoEqualsFloatMonoOfTheSameValues) {
  const std::vector<float> signal = TestSignal(3333, 6);
  std::vector<int16_t> mono16(signal.size()), stereo16;
  std::vector<float> quantised(signal.size());
  for (size_t i = 0; i < signal.size(); ++i) {
    mono16[i] = static_cast<int16_t>(std::lround(signal[i] * 32767));
    quantised[i] = mono16[i] / 32768.0f;
    stereo16.push_back(mono16[i]);
    stereo16.push_back(mono16[i]);
  }
  auto config = Config("small", 8000);
  config.mutable_config()->set_encoding(v1::INT16);
  config.mutable_config()->set_channels(2);
  StreamClassifyRequest pcm;
  pcm.mutable_samples()->set_pcm(Int16Bytes(stereo16));
  const auto a = RunStream(stub_.get(), {config, pcm});
  const auto b = RunStream(stub_.get(), {Config("small", 8000), Values(quantised)});
  ASSERT_TRUE(a.status.ok()) << a.status.error_message();
  ASSERT_TRUE(b.status.ok());
  EXPECT_EQ(Serialized(a.windows()), Serialized(b.windows()));
  EXPECT_EQ(a.responses.back().summary().samples_received(), signal.size());
}

struct ErrorCase {
  std::string name;
  std::vector<StreamClassifyRequest> requests;
  grpc::StatusCode code;
  std::string message_part;
};

TEST_F(ServerFixture, EveryBadInputGetsItsCodeAndAnActionableMessage) {
  auto config = [](auto edit) {
    StreamClassifyRequest r = Config("small", 8000);
    edit(r.mutable_config());
    return r;
  };
  StreamClassifyRequest nan_values = Values(std::vector<float>{0.1f, NAN});
  StreamClassifyRequest inf_pcm;
  const float inf = INFINITY;
  std::string bytes(4, '\0');
  std::memcpy(bytes.data(), &inf, 4);
  inf_pcm.mutable_samples()->set_pcm(bytes);
  // Finite but huge: the spectrum overflowed to Inf and every score came out
  // NaN (found by fuzz/stream_fuzzer); now refused like NaN and Inf.
  StreamClassifyRequest huge_values = Values(std::vector<float>{0.1f, 1e30f});
  StreamClassifyRequest huge_pcm;
  const float huge = 1e35f;
  std::string huge_bytes(4, '\0');
  std::memcpy(huge_bytes.data(), &huge, 4);
  huge_pcm.mutable_samples()->set_pcm(huge_bytes);
  StreamClassifyRequest odd_pcm;
  odd_pcm.mutable_samples()->set_pcm(std::string(6, '\0'));
  StreamClassifyRequest both = Values(std::vector<float>{0.1f});
  both.mutable_samples()->set_pcm(std::string(4, '\0'));
  StreamClassifyRequest neither;
  neither.mutable_samples();
  StreamClassifyRequest empty_request;
  auto stereo = config([](v1::StreamConfig* c) { c->set_channels(2); });

  const std::vector<ErrorCase> cases = {
      {"unknown model", {Config("nope", 8000)}, grpc::StatusCode::NOT_FOUND, "nope"},
      {"unknown version", {Config("small", 8000, 9)}, grpc::StatusCode::NOT_FOUND, "version 9"},
      {"samples before config", {Values(std::vector<float>{0.1f})},
       grpc::StatusCode::INVALID_ARGUMENT, "before the StreamConfig"},
      {"second config", {Config("small", 8000), Config("small", 8000)},
       grpc::StatusCode::INVALID_ARGUMENT, "second StreamConfig"},
      {"rate zero", {config([](v1::StreamConfig* c) { c->set_sample_rate_hz(0); })},
       grpc::StatusCode::INVALID_ARGUMENT, "sample_rate_hz"},
      {"rate negative", {config([](v1::StreamConfig* c) { c->set_sample_rate_hz(-8000); })},
       grpc::StatusCode::INVALID_ARGUMENT, "sample_rate_hz"},
      {"rate absurd", {config([](v1::StreamConfig* c) { c->set_sample_rate_hz(1e12); })},
       grpc::StatusCode::INVALID_ARGUMENT, "sample_rate_hz"},
      {"rate nan", {config([](v1::StreamConfig* c) { c->set_sample_rate_hz(NAN); })},
       grpc::StatusCode::INVALID_ARGUMENT, "sample_rate_hz"},
      {"channels zero", {config([](v1::StreamConfig* c) { c->set_channels(0); })},
       grpc::StatusCode::INVALID_ARGUMENT, "channels"},
      {"top_k zero", {config([](v1::StreamConfig* c) { c->set_top_k(0); })},
       grpc::StatusCode::INVALID_ARGUMENT, "top_k"},
      {"empty model name", {config([](v1::StreamConfig* c) { c->set_model(""); })},
       grpc::StatusCode::INVALID_ARGUMENT, "model"},
      {"pcm not a multiple of the frame", {Config("small", 8000), odd_pcm},
       grpc::StatusCode::INVALID_ARGUMENT, "multiple of the frame size 4"},
      {"ragged channels", {stereo, Values(std::vector<float>{0.1f, 0.2f, 0.3f})},
       grpc::StatusCode::INVALID_ARGUMENT, "multiple of channels"},
      {"nan value", {Config("small", 8000), nan_values}, grpc::StatusCode::INVALID_ARGUMENT,
       "values[1]"},
      {"inf pcm", {Config("small", 8000), inf_pcm}, grpc::StatusCode::INVALID_ARGUMENT, "finite"},
      {"huge value", {Config("small", 8000), huge_values}, grpc::StatusCode::INVALID_ARGUMENT,
       "values[1] is 1e+30; samples must be finite numbers within +-1e+06"},
      {"huge pcm", {Config("small", 8000), huge_pcm}, grpc::StatusCode::INVALID_ARGUMENT,
       "within +-1e+06"},
      {"int16 adc_gain maps beyond the sample range",
       {config([](v1::StreamConfig* c) {
         c->set_encoding(v1::INT16);
         c->set_adc_gain(1e-30);
       })},
       grpc::StatusCode::INVALID_ARGUMENT, "adc_gain (1e-30)"},
      {"int16 baseline maps beyond the sample range",
       {config([](v1::StreamConfig* c) {
         c->set_encoding(v1::INT16);
         c->set_adc_gain(200);
         c->set_baseline(1e300);
       })},
       grpc::StatusCode::INVALID_ARGUMENT, "baseline (1e+300)"},
      {"both pcm and values", {Config("small", 8000), both}, grpc::StatusCode::INVALID_ARGUMENT,
       "not both"},
      {"neither pcm nor values", {Config("small", 8000), neither},
       grpc::StatusCode::INVALID_ARGUMENT, "empty"},
      {"request with no kind", {empty_request}, grpc::StatusCode::INVALID_ARGUMENT, "neither"},
      {"no config at all", {}, grpc::StatusCode::INVALID_ARGUMENT, "before a StreamConfig"},
  };
  for (const ErrorCase& c : cases) {
    SCOPED_TRACE(c.name);
    const auto out = RunStream(stub_.get(), c.requests);
    EXPECT_EQ(out.status.error_code(), c.code) << out.status.error_message();
    EXPECT_NE(out.status.error_message().find(c.message_part), std::string::npos)
        << out.status.error_message();
  }
}

TEST_F(ServerFixture, WindowsBeforeABadChunkAreDeliveredThenTheError) {
  const auto out = RunStream(stub_.get(), {Config("small", 8000), Values(TestSignal(2000, 7)),
                                           Values(std::vector<float>{NAN})});
  EXPECT_EQ(out.status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(out.windows().size(), 4u);  // 400 j + 800 <= 2000: j = 0..3
}

TEST_F(ServerFixture, OneStreamGoingBadLeavesAnotherUntouched) {
  const std::vector<float> signal = TestSignal(6000, 8);
  const auto solo = RunStream(stub_.get(), Chunked(Config("small", 8000), signal, 500, 1));
  ASSERT_TRUE(solo.status.ok());

  grpc::ClientContext good_ctx, bad_ctx;
  auto good = stub_->StreamClassify(&good_ctx);
  auto bad = stub_->StreamClassify(&bad_ctx);
  const auto reqs = Chunked(Config("small", 8000), signal, 500, 1);
  std::vector<StreamClassifyResponse> good_responses;
  std::thread reader([&] {
    StreamClassifyResponse r;
    while (good->Read(&r)) good_responses.push_back(r);
  });
  ASSERT_TRUE(bad->Write(Config("small", 8000)));
  for (size_t i = 0; i < reqs.size(); ++i) {
    ASSERT_TRUE(good->Write(reqs[i]));
    if (i == reqs.size() / 2) {
      bad->Write(Values(std::vector<float>{INFINITY}));
      bad->WritesDone();
      StreamClassifyResponse r;
      while (bad->Read(&r)) {}
      EXPECT_EQ(bad->Finish().error_code(), grpc::StatusCode::INVALID_ARGUMENT);
    }
  }
  good->WritesDone();
  reader.join();
  ASSERT_TRUE(good->Finish().ok());
  ASSERT_EQ(good_responses.size(), solo.responses.size());
  for (size_t i = 0; i + 1 < good_responses.size(); ++i) {
    EXPECT_EQ(good_responses[i].SerializeAsString(), solo.responses[i].SerializeAsString());
  }
}

TEST_F(ServerFixture, ListModelsAndGetModelWithOverride) {
  v1::ListModelsResponse list;
  grpc::ClientContext c1;
  ASSERT_TRUE(stub_->ListModels(&c1, {}, &list).ok());
  ASSERT_EQ(list.models_size(), 2);
  EXPECT_EQ(list.models(0).name(), "small");
  EXPECT_EQ(list.models(0).version(), 1);
  EXPECT_EQ(list.models(1).version(), 2);
  EXPECT_DOUBLE_EQ(list.models(0).window_s(), 0.1);

  v1::GetModelRequest req;
  req.set_model("small");
  v1::GetModelResponse latest;
  grpc::ClientContext c2;
  ASSERT_TRUE(stub_->GetModel(&c2, req, &latest).ok());
  EXPECT_EQ(latest.spec().version(), 2);
  ASSERT_EQ(latest.description().layers_size(), 5);
  const auto& pool = latest.description().layers(2);
  EXPECT_EQ(pool.name(), "pool1");
  EXPECT_DOUBLE_EQ(pool.time_step_ms(), 20.0);  // hop 10 ms x stride 2

  v1::PoolOverride* o = req.add_pool_overrides();
  o->set_layer("pool1");
  o->set_field("stride_time");
  o->set_value(1);
  v1::GetModelResponse overridden;
  grpc::ClientContext c3;
  ASSERT_TRUE(stub_->GetModel(&c3, req, &overridden).ok());
  EXPECT_DOUBLE_EQ(overridden.description().layers(2).time_step_ms(), 10.0);

  o->set_layer("nope");
  grpc::ClientContext c4;
  v1::GetModelResponse bad;
  EXPECT_EQ(stub_->GetModel(&c4, req, &bad).error_code(), grpc::StatusCode::INVALID_ARGUMENT);
}

TEST_F(ServerFixture, HealthReportsServerAndEachModel) {
  auto health = grpc::health::v1::Health::NewStub(channel_);
  for (const std::string service : {"", "wavepool.v1.Classifier/small"}) {
    grpc::health::v1::HealthCheckRequest req;
    req.set_service(service);
    grpc::health::v1::HealthCheckResponse resp;
    grpc::ClientContext ctx;
    ASSERT_TRUE(health->Check(&ctx, req, &resp).ok()) << service;
    EXPECT_EQ(resp.status(), grpc::health::v1::HealthCheckResponse::SERVING) << service;
  }
  grpc::health::v1::HealthCheckRequest req;
  req.set_service("wavepool.v1.Classifier/nope");
  grpc::health::v1::HealthCheckResponse resp;
  grpc::ClientContext ctx;
  EXPECT_EQ(health->Check(&ctx, req, &resp).error_code(), grpc::StatusCode::NOT_FOUND);
}

// One request/response on grpc.reflection.v1alpha, with the request bytes
// written by hand (field 7 list_services, field 4 file_containing_symbol).
std::string ReflectionCall(grpc::Channel* channel, const std::string& request_bytes) {
  grpc::GenericStub stub(channel->shared_from_this());
  grpc::ClientContext ctx;
  grpc::CompletionQueue cq;
  auto call = stub.PrepareCall(&ctx, "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo", &cq);
  void* tag;
  bool ok;
  call->StartCall(reinterpret_cast<void*>(1));
  cq.Next(&tag, &ok);
  grpc::Slice slice(request_bytes);
  grpc::ByteBuffer req(&slice, 1);
  call->Write(req, reinterpret_cast<void*>(2));
  cq.Next(&tag, &ok);
  grpc::ByteBuffer resp;
  call->Read(&resp, reinterpret_cast<void*>(3));
  cq.Next(&tag, &ok);
  std::vector<grpc::Slice> slices;
  (void)resp.Dump(&slices);
  std::string out;
  for (const auto& s : slices) out.append(reinterpret_cast<const char*>(s.begin()), s.size());
  call->WritesDone(reinterpret_cast<void*>(4));
  cq.Next(&tag, &ok);
  grpc::Status status;
  call->Finish(&status, reinterpret_cast<void*>(5));
  cq.Next(&tag, &ok);
  cq.Shutdown();
  while (cq.Next(&tag, &ok)) {}
  return out;
}

TEST_F(ServerFixture, ReflectionListsServicesAndServesTheirDescriptors) {
  const std::string list = ReflectionCall(channel_.get(), std::string("\x3a\x00", 2));
  EXPECT_NE(list.find("wavepool.v1.Classifier"), std::string::npos);
  EXPECT_NE(list.find("grpc.health.v1.Health"), std::string::npos);

  const std::string symbol = "wavepool.v1.Classifier";
  std::string req = "\x22";
  req += static_cast<char>(symbol.size());
  req += symbol;
  const std::string resp = ReflectionCall(channel_.get(), req);
  google::protobuf::UnknownFieldSet fields;
  ASSERT_TRUE(fields.ParseFromString(resp));
  bool found = false;
  for (int i = 0; i < fields.field_count(); ++i) {
    if (fields.field(i).number() != 4) continue;  // file_descriptor_response
    google::protobuf::UnknownFieldSet fdr;
    ASSERT_TRUE(fdr.ParseFromString(fields.field(i).length_delimited()));
    for (int j = 0; j < fdr.field_count(); ++j) {
      google::protobuf::FileDescriptorProto file;
      ASSERT_TRUE(file.ParseFromString(fdr.field(j).length_delimited()));
      for (const auto& service : file.service()) {
        if (service.name() != "Classifier") continue;
        found = true;
        std::set<std::string> methods;
        for (const auto& m : service.method()) methods.insert(m.name());
        EXPECT_EQ(methods, (std::set<std::string>{"StreamClassify", "Classify", "ListModels",
                                                  "GetModel"}));
      }
    }
  }
  EXPECT_TRUE(found) << "no FileDescriptorProto declaring service Classifier";
}

TEST(ServerStart, TakenAddressAndUnreadableRepositoryFailClearly) {
  server::ServerOptions options;
  options.address = "127.0.0.1:0";
  options.model_repository = "/nonexistent/wavepool/models";
  auto s = server::WavepoolServer::Start(options);
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_NE(s.status().message().find("/nonexistent/wavepool/models"), std::string::npos);

  const auto root = MakeTempDir("wavepool-empty");
  options.model_repository = root.string();
  auto first = server::WavepoolServer::Start(options);
  ASSERT_TRUE(first.ok()) << first.status();
  options.address = "127.0.0.1:" + std::to_string((*first)->port());
  auto second = server::WavepoolServer::Start(options);
  ASSERT_FALSE(second.ok());
  EXPECT_EQ(second.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_NE(second.status().message().find("cannot listen"), std::string::npos);
  std::filesystem::remove_all(root);
}

TEST(ModelRepository, ABrokenModelIsReportedAndNeverTakesTheOthersDown) {
  const auto root = MakeTempDir("wavepool-broken");
  WriteModel(root, SmallSpecJson("good", 1), 1);
  std::filesystem::create_directories(root / "broken" / "1");
  std::FILE* f = std::fopen((root / "broken" / "1" / "spec.json").c_str(), "w");
  std::fputs("{ not json", f);
  std::fclose(f);
  std::filesystem::create_directories(root / "badversion" / "latest");
  auto repo = server::ModelRepository::Open(root.string());
  ASSERT_TRUE(repo.ok()) << repo.status();
  EXPECT_EQ((*repo)->List().size(), 1u);
  EXPECT_TRUE((*repo)->Find("good", 0).ok());
  EXPECT_EQ((*repo)->Find("broken", 0).status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ((*repo)->load_errors().size(), 2u);
  // A name never reaches the file system: traversal-looking names are just unknown.
  EXPECT_EQ((*repo)->Find("../good", 0).status().code(), absl::StatusCode::kNotFound);
  std::filesystem::remove_all(root);
}

TEST(ModelRepository, AnEventsSectionNamingNoLabelIsALoadError) {
  // Found by fuzz/spec_fuzzer: such a spec loaded and was served, and then
  // every stream on it failed with INVALID_ARGUMENT, as if the client erred.
  const auto root = MakeTempDir("wavepool-events");
  std::string spec = SmallSpecJson("noisy", 1);
  spec.insert(spec.rfind('}'), R"(, "events": {"backgroundLabels": ["silence"]})");
  WriteModel(root, spec, 1);
  auto repo = server::ModelRepository::Open(root.string());
  ASSERT_TRUE(repo.ok()) << repo.status();
  EXPECT_TRUE((*repo)->List().empty());
  ASSERT_EQ((*repo)->load_errors().size(), 1u);
  const absl::Status error = (*repo)->load_errors()[0].status;  // load_errors() returns a copy
  EXPECT_EQ(error.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_NE(error.message().find("spec.json: events.backgroundLabels names \"silence\""),
            std::string::npos)
      << error;
  std::filesystem::remove_all(root);
}

}  // namespace
}  // namespace wavepool::testing
