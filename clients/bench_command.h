// wavepool bench: a load generator for StreamClassify (docs/bench.md).
#pragma once

#include <string>
#include <vector>

#include "clients/cli.h"

namespace wavepool::cli {

// Runs N concurrent streams (or a --sweep of N) and prints latency percentiles,
// windows/s and errors, as a table or one JSON object per run. Exit code 0
// when every stream ended OK, 1 when any failed (the report is still printed)
// or nothing could run (bad flags, unreadable input, server unreachable).
int RunBench(const CommonOptions& common, const std::vector<std::string>& args);

}  // namespace wavepool::cli
