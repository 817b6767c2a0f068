// Command line of the per-model benchmarks (bench_conv, bench_layers):
// --batches=1,8,64, model folders as positional arguments, and each tool's
// own --name=value flags through a callback.
#pragma once

#include <string>
#include <vector>

#include "absl/functional/function_ref.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "absl/strings/string_view.h"

namespace wavepool::bench {

// `tool_flag(arg)` gets every other argument starting with "-" and returns
// false when it is unknown or its value is bad. Models default to
// `default_models`. False on any bad argument (the caller prints its usage).
inline bool ParseModelBenchFlags(int argc, char** argv, std::vector<int>* batches,
                                 std::vector<std::string>* models,
                                 const std::vector<std::string>& default_models,
                                 absl::FunctionRef<bool(absl::string_view)> tool_flag) {
  for (int i = 1; i < argc; ++i) {
    absl::string_view a = argv[i];
    if (absl::ConsumePrefix(&a, "--batches=")) {
      batches->clear();
      for (absl::string_view b : absl::StrSplit(a, ',')) {
        int n = 0;
        if (!absl::SimpleAtoi(b, &n) || n < 1) return false;
        batches->push_back(n);
      }
    } else if (absl::StartsWith(a, "-")) {
      if (!tool_flag(a)) return false;
    } else {
      models->emplace_back(a);
    }
  }
  if (models->empty()) *models = default_models;
  return !batches->empty();
}

}  // namespace wavepool::bench
