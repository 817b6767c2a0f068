// wavepool-server: serves the models of a repository over gRPC.
//   wavepool-server --address HOST:PORT --model-repository DIR
//   wavepool-server --config wavepool.json [--FLAG VALUE ...] [--check-config]
// (defaults 0.0.0.0:50051 and ./models; these two flags are a contract for
// deployment scripts). Every key of the config file also has a flag, and a flag
// given on the command line wins over the file (docs/config.md).
// Prints one line on stdout when ready ("wavepool-server ready on ... (port N)"),
// which scripts wait for; logs events on stderr (server/log.h). Exits 2 with a
// clear message on a bad config or flag, 1 when the address is taken or the
// repository is unreadable. --check-config validates everything a start would
// read (config, TLS files, tokens), prints the effective config as JSON, exits 0.
// SIGTERM or SIGINT: health goes NOT_SERVING, calls in flight get
// drain_timeout_s to end, then exit 0.
#include <atomic>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/reflection.h"
#include "absl/flags/usage.h"
#include "absl/strings/str_join.h"
#include "absl/synchronization/mutex.h"
#include "server/auth.h"
#include "server/config.h"
#include "server/log.h"
#include "server/tls.h"
#include "server/wavepool_server.h"
#include "util/dashed_flags.h"

namespace {
// The defaults shown by --help are ServerOptions' own: one source of truth.
const wavepool::server::ServerOptions kDefaults;
}  // namespace

ABSL_FLAG(std::string, config, "", "JSON config file (docs/config.md); flags given override it");
ABSL_FLAG(bool, check_config, false,
          "validate the config, TLS files and tokens, print the effective config as JSON, exit");
ABSL_FLAG(std::string, address, kDefaults.address, "gRPC listening address HOST:PORT");
ABSL_FLAG(std::string, model_repository, kDefaults.model_repository,
          "folder of models: <name>/<version>/{spec.json,weights.safetensors}");
ABSL_FLAG(std::string, metrics_address, kDefaults.metrics_address,
          "HOST:PORT for HTTP /metrics, /healthz, /readyz (empty = off)");
ABSL_FLAG(double, drain_timeout_s, kDefaults.drain_timeout_s,
          "seconds running calls get to finish after SIGTERM");
ABSL_FLAG(std::string, log_format, "text", "stderr log lines: text or json");
ABSL_FLAG(uint32_t, workers, static_cast<uint32_t>(kDefaults.workers),
          "inference threads (0 = one per core)");
ABSL_FLAG(double, model_poll_interval_s, kDefaults.model_poll_interval_s,
          "rescan the model repository every N seconds (0 = off)");
ABSL_FLAG(uint32_t, max_streams, kDefaults.stream_limits.max_streams,
          "open StreamClassify calls, server-wide");
ABSL_FLAG(uint32_t, max_streams_per_peer, kDefaults.stream_limits.max_streams_per_peer,
          "open StreamClassify calls per client IP address");
ABSL_FLAG(uint64_t, max_message_bytes, kDefaults.stream_limits.max_message_bytes,
          "largest gRPC message accepted, in bytes");
ABSL_FLAG(uint64_t, max_chunk_samples, kDefaults.stream_limits.max_chunk_samples,
          "samples per channel one message may carry");
ABSL_FLAG(double, max_stream_duration_s, kDefaults.stream_limits.max_stream_duration_s,
          "wall time a stream may last (0 = unlimited)");
ABSL_FLAG(double, idle_timeout_s, kDefaults.stream_limits.idle_timeout_s,
          "a stream with no message for this long is ended (0 = never)");
ABSL_FLAG(uint32_t, batch_max_size, static_cast<uint32_t>(kDefaults.batching.max_batch_size),
          "windows per inference batch (1 = no batching)");
ABSL_FLAG(double, batch_max_delay_ms, kDefaults.batching.max_queue_delay_ms,
          "longest a window waits for others to join its batch, ms");
ABSL_FLAG(std::string, tls_cert, "", "PEM server certificate chain: TLS on (with --tls-key)");
ABSL_FLAG(std::string, tls_key, "", "PEM private key of --tls-cert");
ABSL_FLAG(std::string, tls_client_ca, "",
          "PEM CA bundle: mutual TLS, clients must present a certificate it signed");
ABSL_FLAG(std::string, auth_tokens_file, "",
          "bearer tokens file, lines of TOKEN [SCOPE ...] (docs/security.md)");
ABSL_FLAG(std::string, auth_tokens_env, "",
          "name of an environment variable holding bearer tokens (lines or ;-separated)");

namespace {

namespace ws = wavepool::server;

std::atomic<int> g_signal{0};
void OnSignal(int sig) { g_signal.store(sig); }

// The arguments as parsed (dashes already turned into underscores).
std::vector<std::string> g_args;

// Whether flag `name` was given: it appears before any bare "--" (even with its
// default value, which must still win over the file), or its value is not the
// default (e.g. from --flagfile). Abseil's own IsSpecifiedOnCommandLine is
// private in the Debian build.
bool Given(const std::string& name) {
  for (const std::string& a : g_args) {
    if (a == "--") break;
    for (const std::string prefix : {"-", "--"}) {
      const std::string bare = prefix + name;
      if (a == bare || a.starts_with(bare + "=")) return true;
    }
  }
  const absl::CommandLineFlag* flag = absl::FindCommandLineFlag(name);
  return flag != nullptr && flag->CurrentValue() != flag->DefaultValue();
}

// The flags given on the command line, as a ServerConfig to merge over the file.
wavepool::v1::ServerConfig FlagOverrides() {
  wavepool::v1::ServerConfig c;
  if (Given("address")) c.set_address(absl::GetFlag(FLAGS_address));
  if (Given("model_repository")) c.set_model_repository(absl::GetFlag(FLAGS_model_repository));
  if (Given("metrics_address")) c.set_metrics_address(absl::GetFlag(FLAGS_metrics_address));
  if (Given("drain_timeout_s")) c.set_drain_timeout_s(absl::GetFlag(FLAGS_drain_timeout_s));
  if (Given("log_format")) c.set_log_format(absl::GetFlag(FLAGS_log_format));
  if (Given("workers")) c.set_workers(absl::GetFlag(FLAGS_workers));
  if (Given("model_poll_interval_s")) {
    c.set_model_poll_interval_s(absl::GetFlag(FLAGS_model_poll_interval_s));
  }
  wavepool::v1::LimitsConfig* l = c.mutable_limits();
  if (Given("max_streams")) l->set_max_streams(absl::GetFlag(FLAGS_max_streams));
  if (Given("max_streams_per_peer")) {
    l->set_max_streams_per_peer(absl::GetFlag(FLAGS_max_streams_per_peer));
  }
  if (Given("max_message_bytes")) l->set_max_message_bytes(absl::GetFlag(FLAGS_max_message_bytes));
  if (Given("max_chunk_samples")) l->set_max_chunk_samples(absl::GetFlag(FLAGS_max_chunk_samples));
  if (Given("max_stream_duration_s")) {
    l->set_max_stream_duration_s(absl::GetFlag(FLAGS_max_stream_duration_s));
  }
  if (Given("idle_timeout_s")) l->set_idle_timeout_s(absl::GetFlag(FLAGS_idle_timeout_s));
  if (Given("batch_max_size")) c.mutable_batching()->set_max_batch_size(absl::GetFlag(FLAGS_batch_max_size));
  if (Given("batch_max_delay_ms")) {
    c.mutable_batching()->set_max_queue_delay_ms(absl::GetFlag(FLAGS_batch_max_delay_ms));
  }
  // proto3 strings without presence: a flag can set these, not clear them.
  if (Given("tls_cert")) c.mutable_tls()->set_cert_file(absl::GetFlag(FLAGS_tls_cert));
  if (Given("tls_key")) c.mutable_tls()->set_key_file(absl::GetFlag(FLAGS_tls_key));
  if (Given("tls_client_ca")) c.mutable_tls()->set_client_ca_file(absl::GetFlag(FLAGS_tls_client_ca));
  if (Given("auth_tokens_file")) {
    c.mutable_auth()->set_tokens_file(absl::GetFlag(FLAGS_auth_tokens_file));
  }
  if (Given("auth_tokens_env")) c.mutable_auth()->set_tokens_env(absl::GetFlag(FLAGS_auth_tokens_env));
  return c;
}

// Reads the TLS files and the tokens the way Start will, so that a bad one is
// a config error (exit 2, its name in the message) and --check-config sees it.
absl::Status CheckSecurityFiles(const ws::ServerOptions& options) {
  absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> creds =
      ws::MakeServerCredentials(options.tls);
  if (!creds.ok()) return creds.status();
  if (ws::AuthEnabled(options.auth)) {
    absl::StatusOr<std::unique_ptr<ws::TokenAuthenticator>> auth =
        ws::TokenAuthenticator::Create(options.auth);
    if (!auth.ok()) return auth.status();
  }
  return absl::OkStatus();
}

int ConfigError(const absl::Status& status) {
  std::fprintf(stderr, "wavepool-server: %s\n", std::string(status.message()).c_str());
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  // Debian's Abseil keeps absl::Mutex's deadlock detection on: a graph lookup
  // on every lock gRPC takes (1.5% of the server's CPU at 5,000 ECG streams).
  // A debugging aid, not a serving one.
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
  absl::SetProgramUsageMessage(
      "wavepool-server [--config FILE] --address HOST:PORT --model-repository DIR [FLAGS]\n"
      "Serves Wavepool models over gRPC (Classifier, health, reflection).\n"
      "Every config key has a flag; flags win over the file. See docs/config.md.");
  wavepool::DashedFlags flags(argc, argv);
  g_args.assign(flags.argv() + 1, flags.argv() + flags.argc());
  absl::ParseCommandLine(flags.argc(), flags.argv());

  absl::StatusOr<ws::ServerOptions> loaded =
      ws::LoadServerOptions(absl::GetFlag(FLAGS_config), FlagOverrides());
  if (!loaded.ok()) return ConfigError(loaded.status());
  const ws::ServerOptions& options = *loaded;
  ws::SetLogFormat(options.log_json ? ws::LogFormat::kJson : ws::LogFormat::kText);
  if (absl::Status s = CheckSecurityFiles(options); !s.ok()) return ConfigError(s);
  if (absl::GetFlag(FLAGS_check_config)) {
    std::error_code ec;
    if (!std::filesystem::is_directory(options.model_repository, ec)) {
      std::fprintf(stderr, "wavepool-server: warning: model_repository %s is not a folder here\n",
                   options.model_repository.c_str());
    }
    std::fputs(ws::EffectiveConfigJson(options).c_str(), stdout);
    return 0;
  }

  std::signal(SIGTERM, OnSignal);
  std::signal(SIGINT, OnSignal);
  auto server = ws::WavepoolServer::Start(options);
  if (!server.ok()) {
    std::fprintf(stderr, "wavepool-server: %s\n", std::string(server.status().message()).c_str());
    return 1;
  }
  for (const auto& e : (*server)->repository().load_errors()) {
    ws::Log(ws::LogLevel::kWarning, "model_not_loaded",
            {{"dir", e.dir}, {"error", std::string(e.status.message())}});
  }
  std::vector<std::string> names;
  for (const auto& m : (*server)->repository().List()) {
    names.push_back(m->name + "/" + std::to_string(m->version));
  }
  // Scripts wait for this line on stdout and read the port from it.
  std::printf("wavepool-server ready on %s (port %d), %zu model(s): %s\n",
              options.address.c_str(), (*server)->port(), names.size(),
              names.empty() ? "(none)" : absl::StrJoin(names, ", ").c_str());
  std::fflush(stdout);
  const std::string models = absl::StrJoin(names, ",");
  ws::Log(ws::LogLevel::kInfo, "server_ready",
          {{"address", options.address},
           {"port", (*server)->port()},
           {"models", models},
           {"tls", options.tls.cert_file.empty() ? "off"
                   : options.tls.client_ca_file.empty() ? "on" : "mutual"},
           {"auth", ws::AuthEnabled(options.auth)},
           {"metrics_address", options.metrics_address},
           {"metrics_port", (*server)->metrics_port()}});

  while (g_signal.load() == 0) std::this_thread::sleep_for(std::chrono::milliseconds(100));
  std::printf("wavepool-server: signal %d, draining for up to %.0f s\n", g_signal.load(),
              options.drain_timeout_s);
  std::fflush(stdout);
  ws::Log(ws::LogLevel::kInfo, "server_draining",
          {{"signal", g_signal.load()}, {"drain_timeout_s", options.drain_timeout_s}});
  const auto deadline = std::chrono::system_clock::now() +
                        std::chrono::milliseconds(
                            static_cast<int64_t>(options.drain_timeout_s * 1000));
  (*server)->Shutdown(deadline);
  (*server)->Wait();
  std::printf("wavepool-server: stopped\n");
  ws::Log(ws::LogLevel::kInfo, "server_stopped");
  return 0;
}
