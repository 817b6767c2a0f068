// The server config: the shipped example loads, absent keys keep the defaults,
// every invalid value gets its own message naming key and flag, unknown keys
// are rejected with the file name, flags (overrides) win over the file, and
// the --check-config JSON loads back to the same options.
#include "server/config.h"

#include <unistd.h>

#include <cstdio>
#include <string>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace wavepool::server {
namespace {

using ::testing::HasSubstr;

std::string WriteTemp(const std::string& text) {
  char path[] = "/tmp/wavepool_config_XXXXXX";
  const int fd = mkstemp(path);
  EXPECT_GE(fd, 0);
  EXPECT_EQ(write(fd, text.data(), text.size()), static_cast<ssize_t>(text.size()));
  close(fd);
  return path;
}

absl::StatusOr<ServerOptions> FromJson(const std::string& json) {
  absl::StatusOr<v1::ServerConfig> config = ParseServerConfig(json, "test.json");
  if (!config.ok()) return config.status();
  return ServerOptionsFromConfig(*config, "test.json");
}

TEST(ServerConfig, ShippedExampleLoads) {
  absl::StatusOr<ServerOptions> o =
      LoadServerOptions(std::string(WP_SOURCE_DIR) + "/docs/config.example.json");
  ASSERT_TRUE(o.ok()) << o.status();
  EXPECT_EQ(o->address, "0.0.0.0:50051");
  EXPECT_EQ(o->model_repository, "/srv/wavepool/models");
  EXPECT_EQ(o->metrics_address, "0.0.0.0:9090");
  EXPECT_TRUE(o->log_json);
  EXPECT_EQ(o->model_poll_interval_s, 30);
  EXPECT_EQ(o->stream_limits.max_stream_duration_s, 3600);
  EXPECT_EQ(o->stream_limits.max_message_bytes, 16777216u);
  ASSERT_EQ(o->models.size(), 2u);
  EXPECT_EQ(o->models[0].name, "digits");
  EXPECT_EQ(o->models[0].policy, VersionPolicy::kLatest);
  EXPECT_FALSE(o->models[0].batching.has_value());
  EXPECT_EQ(o->models[1].policy, VersionPolicy::kSpecific);
  EXPECT_EQ(o->models[1].versions, (std::vector<int64_t>{1, 2}));
  // A model's batching override starts from the server-wide values.
  ASSERT_TRUE(o->models[1].batching.has_value());
  EXPECT_EQ(o->models[1].batching->max_batch_size, 8);
  EXPECT_EQ(o->models[1].batching->max_queue_delay_ms, 2);
  EXPECT_EQ(o->tls.cert_file, "/etc/wavepool/tls/server.pem");
  EXPECT_EQ(o->auth.tokens_file, "/etc/wavepool/tokens.txt");
}

TEST(ServerConfig, NoFileAndEmptyObjectGiveTheDefaults) {
  const std::string defaults = EffectiveConfigJson(ServerOptions());
  absl::StatusOr<ServerOptions> none = LoadServerOptions("");
  ASSERT_TRUE(none.ok()) << none.status();
  EXPECT_EQ(EffectiveConfigJson(*none), defaults);
  absl::StatusOr<ServerOptions> empty = FromJson("{}");
  ASSERT_TRUE(empty.ok()) << empty.status();
  EXPECT_EQ(EffectiveConfigJson(*empty), defaults);
  // An absent key keeps its default next to a present one.
  absl::StatusOr<ServerOptions> one = FromJson(R"({"limits": {"max_streams": 5}})");
  ASSERT_TRUE(one.ok()) << one.status();
  EXPECT_EQ(one->stream_limits.max_streams, 5u);
  EXPECT_EQ(one->stream_limits.max_streams_per_peer, StreamLimits().max_streams_per_peer);
  EXPECT_EQ(one->address, ServerOptions().address);
}

TEST(ServerConfig, CamelCaseKeysAreAcceptedToo) {
  absl::StatusOr<ServerOptions> o =
      FromJson(R"({"modelRepository": "/m", "limits": {"idleTimeoutS": 5}})");
  ASSERT_TRUE(o.ok()) << o.status();
  EXPECT_EQ(o->model_repository, "/m");
  EXPECT_EQ(o->stream_limits.idle_timeout_s, 5);
}

TEST(ServerConfig, EffectiveConfigLoadsBackToTheSameOptions) {
  absl::StatusOr<ServerOptions> o =
      LoadServerOptions(std::string(WP_SOURCE_DIR) + "/docs/config.example.json");
  ASSERT_TRUE(o.ok()) << o.status();
  const std::string json = EffectiveConfigJson(*o);
  EXPECT_THAT(json, HasSubstr("\"max_batch_size\": 32"));
  EXPECT_THAT(json, HasSubstr("\"max_message_bytes\": 16777216,"));
  EXPECT_LT(json.find("\"address\""), json.find("\"limits\"")) << "docs/config.md's order";
  absl::StatusOr<ServerOptions> back = FromJson(json);
  ASSERT_TRUE(back.ok()) << back.status() << "\n" << json;
  EXPECT_EQ(EffectiveConfigJson(*back), json);
  absl::StatusOr<ServerOptions> via_proto =
      ServerOptionsFromConfig(ServerConfigFromOptions(*o), "proto");
  ASSERT_TRUE(via_proto.ok()) << via_proto.status();
  EXPECT_EQ(EffectiveConfigJson(*via_proto), json);
}

TEST(ServerConfig, EachInvalidValueHasItsMessage) {
  struct Case {
    const char* json;
    const char* message;
  };
  const Case cases[] = {
      {R"({"address": "50051"})", "address (--address) must be HOST:PORT"},
      {R"({"address": "host:99999"})", "with PORT 0..65535, got \"host:99999\""},
      {R"({"address": "::1:50051"})", "write an IPv6 host in brackets"},
      {R"({"address": "[::1]:x"})", "address (--address) must be HOST:PORT"},
      {R"({"address": "bad host:1"})", "address (--address) must be HOST:PORT"},
      {R"({"metrics_address": "9090"})", "metrics_address (--metrics-address) must be HOST:PORT"},
      {R"({"address": "0.0.0.0:7", "metrics_address": "0.0.0.0:7"})",
       "metrics_address (--metrics-address) must differ from address"},
      {R"({"model_repository": ""})", "model_repository (--model-repository) must name a folder"},
      {R"({"drain_timeout_s": -1})", "drain_timeout_s (--drain-timeout-s) must be 0..3600 seconds, got -1"},
      {R"({"drain_timeout_s": "NaN"})", "drain_timeout_s (--drain-timeout-s) must be 0..3600"},
      {R"({"log_format": "xml"})", "log_format (--log-format) must be text or json, got \"xml\""},
      {R"({"workers": 5000})", "workers (--workers) must be 0..1024"},
      {R"({"model_poll_interval_s": 0.01})",
       "model_poll_interval_s (--model-poll-interval-s) must be 0 (off) or 0.1..86400"},
      {R"({"limits": {"max_streams": 0}})", "limits.max_streams (--max-streams) must be 1..1000000, got 0"},
      {R"({"limits": {"max_streams_per_peer": 0}})", "limits.max_streams_per_peer (--max-streams-per-peer) must be"},
      {R"({"limits": {"max_message_bytes": 100}})",
       "limits.max_message_bytes (--max-message-bytes) must be 1024..2147483647, got 100"},
      {R"({"limits": {"max_chunk_samples": 0}})", "limits.max_chunk_samples (--max-chunk-samples) must be 1.."},
      {R"({"limits": {"max_stream_duration_s": -2}})",
       "limits.max_stream_duration_s (--max-stream-duration-s) must be 0..604800 seconds"},
      {R"({"limits": {"idle_timeout_s": -1}})", "limits.idle_timeout_s (--idle-timeout-s) must be 0.."},
      {R"({"batching": {"max_batch_size": 0}})", "batching.max_batch_size (--batch-max-size) must be 1..1024, got 0"},
      {R"({"batching": {"max_batch_size": 2000}})", "batching.max_batch_size (--batch-max-size) must be 1..1024, got 2000"},
      {R"({"batching": {"max_queue_delay_ms": -1}})",
       "batching.max_queue_delay_ms (--batch-max-delay-ms) must be 0..1000 ms"},
      {R"({"models": [{"name": ""}]})", "models[0].name must be a model folder name"},
      {R"({"models": [{"name": "a/b"}]})", "models[0].name must be a model folder name, got \"a/b\""},
      {R"({"models": [{"name": "a"}, {"name": "a"}]})", "models[1].name \"a\" is listed twice"},
      {R"({"models": [{"name": "a", "version_policy": "newest"}]})",
       "models[0].version_policy must be latest, all or specific, got \"newest\""},
      {R"({"models": [{"name": "a", "version_policy": "latest", "versions": [1]}]})",
       "models[0].versions are only allowed with version_policy specific"},
      {R"({"models": [{"name": "a", "versions": [1]}]})",
       "models[0].versions are only allowed with version_policy specific (it is all)"},
      {R"({"models": [{"name": "a", "version_policy": "specific"}]})",
       "models[0].versions must list at least one version"},
      {R"({"models": [{"name": "a", "version_policy": "specific", "versions": [0]}]})",
       "models[0].versions must be >= 1, got 0"},
      {R"({"models": [{"name": "a", "version_policy": "specific", "versions": [2, 2]}]})",
       "models[0].versions list 2 twice"},
      {R"({"models": [{"name": "a", "batching": {"max_batch_size": 0}}]})",
       "models[0].batching.max_batch_size must be 1..1024"},
      {R"({"tls": {"key_file": "k.pem"}})", "tls.key_file (--tls-key) is set but tls.cert_file is not"},
      {R"({"tls": {"cert_file": "c.pem"}})", "tls.cert_file (--tls-cert) is set but tls.key_file is not"},
      {R"({"tls": {"client_ca_file": "ca.pem"}})", "tls.client_ca_file (--tls-client-ca) (mutual TLS) needs"},
      {R"({"auth": {"tokens_env": "MY-TOKENS"}})",
       "auth.tokens_env (--auth-tokens-env) must be an environment variable name"},
  };
  for (const Case& c : cases) {
    absl::StatusOr<ServerOptions> o = FromJson(c.json);
    ASSERT_FALSE(o.ok()) << c.json;
    EXPECT_EQ(o.status().code(), absl::StatusCode::kInvalidArgument) << c.json;
    EXPECT_THAT(std::string(o.status().message()), HasSubstr(c.message)) << c.json;
    EXPECT_THAT(std::string(o.status().message()), ::testing::StartsWith("test.json: ")) << c.json;
  }
}

TEST(ServerConfig, AllProblemsAreReportedAtOnce) {
  absl::StatusOr<ServerOptions> o =
      FromJson(R"({"workers": 5000, "batching": {"max_batch_size": 0}})");
  ASSERT_FALSE(o.ok());
  EXPECT_THAT(std::string(o.status().message()), HasSubstr("workers"));
  EXPECT_THAT(std::string(o.status().message()), HasSubstr("batching.max_batch_size"));
}

TEST(ServerConfig, GoodAddressesPass) {
  for (const char* a : {"0.0.0.0:50051", "127.0.0.1:0", "localhost:1", "[::]:50051",
                        "[::1]:443", "wavepool-0.svc.cluster.local:50051"}) {
    absl::StatusOr<ServerOptions> o = FromJson(absl::StrCat("{\"address\": \"", a, "\"}"));
    EXPECT_TRUE(o.ok()) << a << ": " << o.status();
  }
}

TEST(ServerConfig, UnknownFieldIsRejectedWithTheFileName) {
  const std::string path = WriteTemp(R"({"address": "0.0.0.0:1", "limits": {"max_stream": 3}})");
  absl::StatusOr<ServerOptions> o = LoadServerOptions(path);
  std::remove(path.c_str());
  ASSERT_FALSE(o.ok());
  EXPECT_EQ(o.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(o.status().message()), HasSubstr(path + ": not a valid server config"));
  EXPECT_THAT(std::string(o.status().message()), HasSubstr("max_stream"));
}

TEST(ServerConfig, BadJsonAndWrongTypesAreRejected) {
  for (const char* json : {"{", R"({"workers": -1})", R"({"address": 5})", R"({"models": 5})"}) {
    absl::StatusOr<ServerOptions> o = FromJson(json);
    EXPECT_EQ(o.status().code(), absl::StatusCode::kInvalidArgument) << json;
    EXPECT_THAT(std::string(o.status().message()), HasSubstr("test.json: not a valid server config"))
        << json;
  }
}

TEST(ServerConfig, UnreadableFileIsAFailedPrecondition) {
  absl::StatusOr<ServerOptions> o = LoadServerOptions("/nonexistent/wavepool.json");
  EXPECT_EQ(o.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(std::string(o.status().message()), HasSubstr("/nonexistent/wavepool.json"));
}

TEST(ServerConfig, OverridesWinOverTheFileAndKeepTheRest) {
  const std::string path = WriteTemp(R"({
    "address": "0.0.0.0:1111",
    "drain_timeout_s": 5,
    "batching": {"max_batch_size": 16, "max_queue_delay_ms": 4},
    "tls": {"cert_file": "/c.pem", "key_file": "/k.pem"}
  })");
  v1::ServerConfig flags;  // what main.cc builds from the flags given
  flags.set_address("127.0.0.1:2222");
  flags.mutable_batching()->set_max_batch_size(1);
  flags.mutable_limits()->set_idle_timeout_s(0);  // an explicit zero still wins
  flags.mutable_tls()->set_key_file("/other.key");
  absl::StatusOr<ServerOptions> o = LoadServerOptions(path, flags);
  std::remove(path.c_str());
  ASSERT_TRUE(o.ok()) << o.status();
  EXPECT_EQ(o->address, "127.0.0.1:2222");
  EXPECT_EQ(o->drain_timeout_s, 5);
  EXPECT_EQ(o->batching.max_batch_size, 1);
  EXPECT_EQ(o->batching.max_queue_delay_ms, 4);
  EXPECT_EQ(o->stream_limits.idle_timeout_s, 0);
  EXPECT_EQ(o->tls.cert_file, "/c.pem");
  EXPECT_EQ(o->tls.key_file, "/other.key");
}

TEST(ServerConfig, OverridesAreValidatedAndNameTheFlag) {
  v1::ServerConfig flags;
  flags.mutable_batching()->set_max_batch_size(0);
  absl::StatusOr<ServerOptions> o = LoadServerOptions("", flags);
  ASSERT_FALSE(o.ok());
  EXPECT_THAT(std::string(o.status().message()),
              HasSubstr("batching.max_batch_size (--batch-max-size) must be 1..1024, got 0"));
}

}  // namespace
}  // namespace wavepool::server
