// wavepool-server: serves the models of a repository over gRPC.
//   wavepool-server --address HOST:PORT --model-repository DIR
// (defaults 0.0.0.0:50051 and ./models; these two flags are a contract for
// deployment scripts). Logs one line when ready; exits non-zero with a clear
// message when the address is taken or the repository is unreadable. SIGTERM or
// SIGINT: health goes NOT_SERVING, calls in flight get --drain-timeout-s to end,
// then exit 0.
#include <atomic>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <string>
#include <thread>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/strings/str_join.h"
#include "server/wavepool_server.h"
#include "util/dashed_flags.h"

ABSL_FLAG(std::string, address, "0.0.0.0:50051", "gRPC listening address HOST:PORT");
ABSL_FLAG(std::string, model_repository, "./models",
          "folder of models: <name>/<version>/{spec.json,weights.safetensors}");
ABSL_FLAG(double, drain_timeout_s, 20, "seconds running calls get to finish after SIGTERM");

namespace {
std::atomic<int> g_signal{0};
void OnSignal(int sig) { g_signal.store(sig); }
}  // namespace

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage(
      "wavepool-server --address HOST:PORT --model-repository DIR\n"
      "Serves Wavepool models over gRPC (Classifier, health, reflection).");
  wavepool::DashedFlags flags(argc, argv);
  absl::ParseCommandLine(flags.argc(), flags.argv());
  std::signal(SIGTERM, OnSignal);
  std::signal(SIGINT, OnSignal);

  wavepool::server::ServerOptions options;
  options.address = absl::GetFlag(FLAGS_address);
  options.model_repository = absl::GetFlag(FLAGS_model_repository);
  auto server = wavepool::server::WavepoolServer::Start(options);
  if (!server.ok()) {
    std::fprintf(stderr, "wavepool-server: %s\n", std::string(server.status().message()).c_str());
    return 1;
  }
  for (const auto& e : (*server)->repository().load_errors()) {
    std::fprintf(stderr, "wavepool-server: model %s not loaded: %s\n", e.dir.c_str(),
                 std::string(e.status.message()).c_str());
  }
  std::vector<std::string> names;
  for (const auto& m : (*server)->repository().List()) {
    names.push_back(m->name + "/" + std::to_string(m->version));
  }
  std::printf("wavepool-server ready on %s (port %d), %zu model(s): %s\n",
              options.address.c_str(), (*server)->port(), names.size(),
              names.empty() ? "(none)" : absl::StrJoin(names, ", ").c_str());
  std::fflush(stdout);

  while (g_signal.load() == 0) std::this_thread::sleep_for(std::chrono::milliseconds(100));
  std::printf("wavepool-server: signal %d, draining for up to %.0f s\n", g_signal.load(),
              absl::GetFlag(FLAGS_drain_timeout_s));
  std::fflush(stdout);
  const auto deadline = std::chrono::system_clock::now() +
                        std::chrono::milliseconds(static_cast<int64_t>(
                            absl::GetFlag(FLAGS_drain_timeout_s) * 1000));
  (*server)->Shutdown(deadline);
  (*server)->Wait();
  std::printf("wavepool-server: stopped\n");
  return 0;
}
