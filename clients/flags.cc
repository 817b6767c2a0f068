#include "clients/flags.h"

#include "absl/flags/flag.h"

ABSL_FLAG(std::string, server, "localhost:50051", "server address HOST:PORT");
ABSL_FLAG(double, timeout_s, 0, "deadline for each call in seconds (0 = none)");
ABSL_FLAG(std::string, model, "", "model name");
ABSL_FLAG(int64_t, version, 0, "model version (0 = latest)");
ABSL_FLAG(bool, realtime, false, "stream at the signal's real-time pace");
ABSL_FLAG(double, chunk_ms, 100, "milliseconds of signal per message when streaming");
ABSL_FLAG(uint32_t, top_k, 1, "labels per window");
ABSL_FLAG(bool, json, false, "print responses as JSON lines");
ABSL_FLAG(std::vector<std::string>, override, {},
          "pooling overrides for describe, e.g. pool1.stride_time=4 (comma-separated)");
ABSL_FLAG(std::string, model_dir, "",
          "describe: read the spec from this model folder instead of asking the server");
ABSL_FLAG(std::string, service, "", "health: service name (empty = the whole server)");
ABSL_FLAG(std::string, spec, "", "init-model: the spec JSON to start from");
ABSL_FLAG(std::string, out, "", "init-model: output model folder");
ABSL_FLAG(uint64_t, seed, 1, "init-model: random seed");
