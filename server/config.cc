#include "server/config.h"

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cmath>
#include <cstring>
#include <fstream>
#include <set>
#include <sstream>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "google/protobuf/util/json_util.h"
#include "server/log.h"

namespace wavepool::server {
namespace {

// The flag that sets each key, named in messages so that a person can find
// the value whichever way it was given.
constexpr std::pair<absl::string_view, absl::string_view> kFlags[] = {
    {"address", "--address"},
    {"model_repository", "--model-repository"},
    {"metrics_address", "--metrics-address"},
    {"drain_timeout_s", "--drain-timeout-s"},
    {"log_format", "--log-format"},
    {"workers", "--workers"},
    {"model_poll_interval_s", "--model-poll-interval-s"},
    {"limits.max_streams", "--max-streams"},
    {"limits.max_streams_per_peer", "--max-streams-per-peer"},
    {"limits.max_message_bytes", "--max-message-bytes"},
    {"limits.max_chunk_samples", "--max-chunk-samples"},
    {"limits.max_stream_duration_s", "--max-stream-duration-s"},
    {"limits.idle_timeout_s", "--idle-timeout-s"},
    {"batching.max_batch_size", "--batch-max-size"},
    {"batching.max_queue_delay_ms", "--batch-max-delay-ms"},
    {"tls.cert_file", "--tls-cert"},
    {"tls.key_file", "--tls-key"},
    {"tls.client_ca_file", "--tls-client-ca"},
    {"auth.tokens_file", "--auth-tokens-file"},
    {"auth.tokens_env", "--auth-tokens-env"},
};

// Ranges. Upper bounds catch a slipped digit, not a real need: a week of drain
// or a million-window batch is a typo.
constexpr double kMaxDrainS = 3600;
constexpr uint32_t kMaxWorkers = 1024;
constexpr double kMinPollS = 0.1;  // below this a rescan would spin
constexpr double kMaxPollS = 86400;
constexpr uint32_t kMaxStreams = 1000000;
constexpr uint64_t kMinMessageBytes = 1024;         // a StreamConfig must fit
constexpr uint64_t kMaxMessageBytes = 2147483647;   // gRPC's limit is an int
constexpr uint64_t kMaxChunkSamples = 1000000000;
constexpr double kMaxStreamS = 7 * 86400.0;
constexpr int kMaxBatch = 1024;
constexpr double kMaxQueueDelayMs = 1000;

// Collects every problem, so one run of --check-config shows them all.
class Checker {
 public:
  explicit Checker(const std::string& source) : source_(source) {}

  void Fail(absl::string_view key, absl::string_view what) {
    std::string name(key);
    for (const auto& [k, flag] : kFlags) {
      if (k == key) absl::StrAppend(&name, " (", flag, ")");
    }
    errors_.push_back(absl::StrCat(name, " ", what));
  }
  void Seconds(absl::string_view key, double v, double hi) {
    if (!std::isfinite(v) || v < 0 || v > hi) {
      Fail(key, absl::StrCat("must be 0..", hi, " seconds, got ", v));
    }
  }
  template <typename T>
  void Count(absl::string_view key, T v, T lo, T hi) {
    if (v < lo || v > hi) Fail(key, absl::StrCat("must be ", lo, "..", hi, ", got ", v));
  }
  void Address(absl::string_view key, const std::string& v, bool empty_ok);

  absl::Status status() const {
    if (errors_.empty()) return absl::OkStatus();
    return absl::InvalidArgumentError(absl::StrCat(
        source_.empty() ? "" : absl::StrCat(source_, ": "), absl::StrJoin(errors_, "; ")));
  }

 private:
  std::string source_;
  std::vector<std::string> errors_;
};

bool IsHostChar(char c) { return absl::ascii_isalnum(c) || c == '.' || c == '-' || c == '_'; }
bool IsIpv6Char(char c) { return absl::ascii_isxdigit(c) || c == ':' || c == '.' || c == '%'; }

// HOST:PORT, HOST a name, an IPv4 address or a bracketed IPv6 address, PORT
// 0..65535 (0: the system picks one).
void Checker::Address(absl::string_view key, const std::string& v, bool empty_ok) {
  if (v.empty() && empty_ok) return;
  const std::string want = "must be HOST:PORT (e.g. 0.0.0.0:50051 or [::]:50051)";
  absl::string_view host, port;
  const size_t colon = v.rfind(':');
  if (colon == std::string::npos) return Fail(key, absl::StrCat(want, ", got \"", v, "\""));
  host = absl::string_view(v).substr(0, colon);
  port = absl::string_view(v).substr(colon + 1);
  bool host_ok = !host.empty();
  if (host_ok && host.front() == '[') {
    host_ok = host.size() > 2 && host.back() == ']';
    for (char c : host.substr(1, host.size() - 2)) host_ok = host_ok && IsIpv6Char(c);
  } else {
    for (char c : host) host_ok = host_ok && IsHostChar(c);
    if (host.find(':') != absl::string_view::npos) {
      return Fail(key, absl::StrCat(want, "; write an IPv6 host in brackets, got \"", v, "\""));
    }
  }
  uint32_t port_number = 0;
  const bool port_ok = !port.empty() && port.size() <= 5 &&
                       std::all_of(port.begin(), port.end(), absl::ascii_isdigit) &&
                       absl::SimpleAtoi(port, &port_number) && port_number <= 65535;
  if (!host_ok || !port_ok) {
    Fail(key, absl::StrCat(want, " with PORT 0..65535, got \"", v, "\""));
  }
}

bool IsEnvName(const std::string& s) {
  if (s.empty() || absl::ascii_isdigit(s[0])) return false;
  for (char c : s) {
    if (!absl::ascii_isalnum(c) && c != '_') return false;
  }
  return true;
}

// `base` with the fields that `config` sets.
BatchOptions MergeBatching(const v1::BatchingConfig& config, BatchOptions base) {
  if (config.has_max_batch_size()) base.max_batch_size = static_cast<int>(
      std::min<uint32_t>(config.max_batch_size(), 1u << 30));
  if (config.has_max_queue_delay_ms()) base.max_queue_delay_ms = config.max_queue_delay_ms();
  return base;
}

void CheckBatching(Checker& c, const std::string& prefix, const BatchOptions& b) {
  c.Count(prefix + ".max_batch_size", b.max_batch_size, 1, kMaxBatch);
  if (!std::isfinite(b.max_queue_delay_ms) || b.max_queue_delay_ms < 0 ||
      b.max_queue_delay_ms > kMaxQueueDelayMs) {
    c.Fail(prefix + ".max_queue_delay_ms",
           absl::StrCat("must be 0..", kMaxQueueDelayMs, " ms, got ", b.max_queue_delay_ms));
  }
}

absl::string_view PolicyName(VersionPolicy p) {
  switch (p) {
    case VersionPolicy::kAll: return "all";
    case VersionPolicy::kLatest: return "latest";
    case VersionPolicy::kSpecific: return "specific";
  }
  return "all";
}

void SetBatching(const BatchOptions& b, v1::BatchingConfig* out) {
  out->set_max_batch_size(static_cast<uint32_t>(b.max_batch_size));
  out->set_max_queue_delay_ms(b.max_queue_delay_ms);
}

}  // namespace

absl::StatusOr<v1::ServerConfig> ParseServerConfig(const std::string& json, const std::string& source) {
  v1::ServerConfig config;
  google::protobuf::util::JsonParseOptions options;
  options.ignore_unknown_fields = false;
  const auto st = google::protobuf::util::JsonStringToMessage(
      google::protobuf::StringPiece(json.data(), json.size()), &config, options);
  if (!st.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat(source.empty() ? std::string("config") : source, ": not a valid server config (",
                     st.message().ToString(),
                     "); keys are listed in docs/config.md, unknown keys are an error"));
  }
  return config;
}

absl::StatusOr<ServerOptions> ServerOptionsFromConfig(const v1::ServerConfig& config,
                                                      const std::string& source) {
  ServerOptions o;
  Checker c(source);
  if (config.has_address()) o.address = config.address();
  if (config.has_model_repository()) o.model_repository = config.model_repository();
  if (config.has_metrics_address()) o.metrics_address = config.metrics_address();
  if (config.has_drain_timeout_s()) o.drain_timeout_s = config.drain_timeout_s();
  if (config.has_log_format()) {
    if (config.log_format() == "json") {
      o.log_json = true;
    } else if (config.log_format() == "text") {
      o.log_json = false;
    } else {
      c.Fail("log_format", absl::StrCat("must be text or json, got \"", config.log_format(), "\""));
    }
  }
  if (config.has_workers()) {
    if (config.workers() > kMaxWorkers) {
      c.Fail("workers", absl::StrCat("must be 0..", kMaxWorkers, " (0 = one per core), got ",
                                     config.workers()));
    }
    o.workers = static_cast<int>(std::min(config.workers(), kMaxWorkers));
  }
  if (config.has_model_poll_interval_s()) o.model_poll_interval_s = config.model_poll_interval_s();

  const v1::LimitsConfig& l = config.limits();
  StreamLimits& s = o.stream_limits;
  if (l.has_max_streams()) s.max_streams = l.max_streams();
  if (l.has_max_streams_per_peer()) s.max_streams_per_peer = l.max_streams_per_peer();
  if (l.has_max_message_bytes()) s.max_message_bytes = l.max_message_bytes();
  if (l.has_max_chunk_samples()) s.max_chunk_samples = l.max_chunk_samples();
  if (l.has_max_stream_duration_s()) s.max_stream_duration_s = l.max_stream_duration_s();
  if (l.has_idle_timeout_s()) s.idle_timeout_s = l.idle_timeout_s();
  o.batching = MergeBatching(config.batching(), o.batching);
  o.tls.cert_file = config.tls().cert_file();
  o.tls.key_file = config.tls().key_file();
  o.tls.client_ca_file = config.tls().client_ca_file();
  o.auth.tokens_file = config.auth().tokens_file();
  o.auth.tokens_env = config.auth().tokens_env();

  c.Address("address", o.address, false);
  if (o.model_repository.empty()) c.Fail("model_repository", "must name a folder");
  c.Address("metrics_address", o.metrics_address, true);
  if (!o.metrics_address.empty() && o.metrics_address == o.address &&
      !o.address.ends_with(":0")) {
    c.Fail("metrics_address", absl::StrCat("must differ from address (both ", o.address, ")"));
  }
  c.Seconds("drain_timeout_s", o.drain_timeout_s, kMaxDrainS);
  if (!std::isfinite(o.model_poll_interval_s) ||
      (o.model_poll_interval_s != 0 &&
       (o.model_poll_interval_s < kMinPollS || o.model_poll_interval_s > kMaxPollS))) {
    c.Fail("model_poll_interval_s", absl::StrCat("must be 0 (off) or ", kMinPollS, "..", kMaxPollS,
                                                 " seconds, got ", o.model_poll_interval_s));
  }
  c.Count("limits.max_streams", s.max_streams, 1u, kMaxStreams);
  c.Count("limits.max_streams_per_peer", s.max_streams_per_peer, 1u, kMaxStreams);
  c.Count("limits.max_message_bytes", s.max_message_bytes, kMinMessageBytes, kMaxMessageBytes);
  c.Count("limits.max_chunk_samples", s.max_chunk_samples, uint64_t{1}, kMaxChunkSamples);
  c.Seconds("limits.max_stream_duration_s", s.max_stream_duration_s, kMaxStreamS);
  c.Seconds("limits.idle_timeout_s", s.idle_timeout_s, kMaxStreamS);
  CheckBatching(c, "batching", o.batching);

  std::set<std::string> names;
  for (int i = 0; i < config.models_size(); ++i) {
    const v1::ModelConfig& m = config.models(i);
    const std::string key = absl::StrCat("models[", i, "]");
    ModelPolicy p;
    p.name = m.name();
    if (p.name.empty() || p.name == "." || p.name == ".." ||
        p.name.find('/') != std::string::npos) {
      c.Fail(key + ".name", absl::StrCat("must be a model folder name, got \"", p.name, "\""));
    } else if (!names.insert(p.name).second) {
      c.Fail(key + ".name", absl::StrCat("\"", p.name, "\" is listed twice; give it one entry"));
    }
    const std::string policy = m.has_version_policy() ? m.version_policy() : "all";
    if (policy == "all") {
      p.policy = VersionPolicy::kAll;
    } else if (policy == "latest") {
      p.policy = VersionPolicy::kLatest;
    } else if (policy == "specific") {
      p.policy = VersionPolicy::kSpecific;
    } else {
      c.Fail(key + ".version_policy",
             absl::StrCat("must be latest, all or specific, got \"", policy, "\""));
    }
    p.versions.assign(m.versions().begin(), m.versions().end());
    if (p.policy == VersionPolicy::kSpecific && p.versions.empty()) {
      c.Fail(key + ".versions", "must list at least one version when version_policy is specific");
    }
    if (p.policy != VersionPolicy::kSpecific && !p.versions.empty()) {
      c.Fail(key + ".versions", absl::StrCat("are only allowed with version_policy specific (it is ",
                                             policy, ")"));
    }
    std::set<int64_t> seen;
    for (int64_t v : p.versions) {
      if (v < 1) c.Fail(key + ".versions", absl::StrCat("must be >= 1, got ", v));
      if (!seen.insert(v).second) c.Fail(key + ".versions", absl::StrCat("list ", v, " twice"));
    }
    if (m.has_batching()) {
      p.batching = MergeBatching(m.batching(), o.batching);
      CheckBatching(c, key + ".batching", *p.batching);
    }
    o.models.push_back(std::move(p));
  }

  if (!o.tls.key_file.empty() && o.tls.cert_file.empty()) {
    c.Fail("tls.key_file", "is set but tls.cert_file is not: TLS needs both");
  }
  if (!o.tls.cert_file.empty() && o.tls.key_file.empty()) {
    c.Fail("tls.cert_file", "is set but tls.key_file is not: TLS needs both");
  }
  if (!o.tls.client_ca_file.empty() && o.tls.cert_file.empty()) {
    c.Fail("tls.client_ca_file", "(mutual TLS) needs tls.cert_file and tls.key_file too");
  }
  if (!o.auth.tokens_env.empty() && !IsEnvName(o.auth.tokens_env)) {
    c.Fail("auth.tokens_env", absl::StrCat("must be an environment variable name ([A-Za-z_]"
                                           "[A-Za-z0-9_]*), got \"", o.auth.tokens_env, "\""));
  }
  if (absl::Status st = c.status(); !st.ok()) return st;
  return o;
}

absl::StatusOr<ServerOptions> LoadServerOptions(const std::string& config_path_or_empty,
                                                const v1::ServerConfig& overrides) {
  v1::ServerConfig config;
  if (!config_path_or_empty.empty()) {
    std::ifstream in(config_path_or_empty, std::ios::binary);
    if (!in) {
      return absl::FailedPreconditionError(absl::StrCat(
          "cannot read config file ", config_path_or_empty, ": ", std::strerror(errno)));
    }
    std::ostringstream text;
    text << in.rdbuf();
    if (in.bad()) {
      return absl::FailedPreconditionError(
          absl::StrCat("cannot read config file ", config_path_or_empty));
    }
    absl::StatusOr<v1::ServerConfig> parsed = ParseServerConfig(text.str(), config_path_or_empty);
    if (!parsed.ok()) return parsed.status();
    config = *std::move(parsed);
  }
  config.MergeFrom(overrides);
  return ServerOptionsFromConfig(config, config_path_or_empty);
}

absl::StatusOr<ServerOptions> LoadServerOptions(const std::string& config_path_or_empty) {
  return LoadServerOptions(config_path_or_empty, v1::ServerConfig());
}

v1::ServerConfig ServerConfigFromOptions(const ServerOptions& o) {
  v1::ServerConfig c;
  c.set_address(o.address);
  c.set_model_repository(o.model_repository);
  c.set_metrics_address(o.metrics_address);
  c.set_drain_timeout_s(o.drain_timeout_s);
  c.set_log_format(o.log_json ? "json" : "text");
  c.set_workers(static_cast<uint32_t>(o.workers));
  c.set_model_poll_interval_s(o.model_poll_interval_s);
  v1::LimitsConfig* l = c.mutable_limits();
  l->set_max_streams(o.stream_limits.max_streams);
  l->set_max_streams_per_peer(o.stream_limits.max_streams_per_peer);
  l->set_max_message_bytes(o.stream_limits.max_message_bytes);
  l->set_max_chunk_samples(o.stream_limits.max_chunk_samples);
  l->set_max_stream_duration_s(o.stream_limits.max_stream_duration_s);
  l->set_idle_timeout_s(o.stream_limits.idle_timeout_s);
  SetBatching(o.batching, c.mutable_batching());
  for (const ModelPolicy& p : o.models) {
    v1::ModelConfig* m = c.add_models();
    m->set_name(p.name);
    m->set_version_policy(std::string(PolicyName(p.policy)));
    for (int64_t v : p.versions) m->add_versions(v);
    if (p.batching) SetBatching(*p.batching, m->mutable_batching());
  }
  c.mutable_tls()->set_cert_file(o.tls.cert_file);
  c.mutable_tls()->set_key_file(o.tls.key_file);
  c.mutable_tls()->set_client_ca_file(o.tls.client_ca_file);
  c.mutable_auth()->set_tokens_file(o.auth.tokens_file);
  c.mutable_auth()->set_tokens_env(o.auth.tokens_env);
  return c;
}

namespace {

// Rendered JSON values under their keys, in order.
using JsonFields = std::vector<std::pair<absl::string_view, std::string>>;

std::string JsonObject(const JsonFields& fields, int indent) {
  if (fields.empty()) return "{}";
  const std::string pad(indent + 2, ' ');
  std::string out = "{\n";
  for (size_t i = 0; i < fields.size(); ++i) {
    absl::StrAppend(&out, pad, JsonQuote(std::string(fields[i].first)), ": ", fields[i].second,
                    i + 1 < fields.size() ? ",\n" : "\n");
  }
  absl::StrAppend(&out, std::string(indent, ' '), "}");
  return out;
}

std::string JsonNumber(double d) {
  char buf[32];
  auto [end, ec] = std::to_chars(buf, buf + sizeof(buf), d);
  return std::string(buf, ec == std::errc() ? end : buf);
}

std::string JsonString(const std::string& s) { return JsonQuote(s); }

std::string BatchingJson(const BatchOptions& b, int indent) {
  return JsonObject({{"max_batch_size", absl::StrCat(b.max_batch_size)},
                     {"max_queue_delay_ms", JsonNumber(b.max_queue_delay_ms)}},
                    indent);
}

}  // namespace

// Written by hand rather than by protobuf's printer so that the keys come in
// docs/config.md's order (the printer puts proto3 `optional` fields last) and
// 64-bit numbers stay numbers (it writes them as strings).
std::string EffectiveConfigJson(const ServerOptions& o) {
  const StreamLimits& l = o.stream_limits;
  std::string models = "[]";
  if (!o.models.empty()) {
    models = "[\n";
    for (size_t i = 0; i < o.models.size(); ++i) {
      const ModelPolicy& p = o.models[i];
      JsonFields f = {{"name", JsonString(p.name)},
                      {"version_policy", JsonString(std::string(PolicyName(p.policy)))},
                      {"versions", absl::StrCat("[", absl::StrJoin(p.versions, ", "), "]")}};
      if (p.batching) f.emplace_back("batching", BatchingJson(*p.batching, 6));
      absl::StrAppend(&models, "    ", JsonObject(f, 4), i + 1 < o.models.size() ? ",\n" : "\n");
    }
    models += "  ]";
  }
  const JsonFields top = {
      {"address", JsonString(o.address)},
      {"model_repository", JsonString(o.model_repository)},
      {"metrics_address", JsonString(o.metrics_address)},
      {"drain_timeout_s", JsonNumber(o.drain_timeout_s)},
      {"log_format", JsonString(o.log_json ? "json" : "text")},
      {"workers", absl::StrCat(o.workers)},
      {"model_poll_interval_s", JsonNumber(o.model_poll_interval_s)},
      {"limits", JsonObject({{"max_streams", absl::StrCat(l.max_streams)},
                             {"max_streams_per_peer", absl::StrCat(l.max_streams_per_peer)},
                             {"max_message_bytes", absl::StrCat(l.max_message_bytes)},
                             {"max_chunk_samples", absl::StrCat(l.max_chunk_samples)},
                             {"max_stream_duration_s", JsonNumber(l.max_stream_duration_s)},
                             {"idle_timeout_s", JsonNumber(l.idle_timeout_s)}},
                            2)},
      {"batching", BatchingJson(o.batching, 2)},
      {"models", models},
      {"tls", JsonObject({{"cert_file", JsonString(o.tls.cert_file)},
                          {"key_file", JsonString(o.tls.key_file)},
                          {"client_ca_file", JsonString(o.tls.client_ca_file)}},
                         2)},
      {"auth", JsonObject({{"tokens_file", JsonString(o.auth.tokens_file)},
                           {"tokens_env", JsonString(o.auth.tokens_env)}},
                          2)},
  };
  return JsonObject(top, 0) + "\n";
}

}  // namespace wavepool::server
