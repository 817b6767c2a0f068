// wavepool: the command-line client.
//   wavepool stream FILE --model NAME [--server ADDR] [--realtime] [--chunk-ms N]
//   wavepool classify FILE --model NAME
//   wavepool models | describe MODEL [--override L.F=V] | health [--service S]
//   wavepool init-model --spec SPEC.json --seed N --out DIR
//   wavepool bench --model NAME --streams N --duration-s S [--realtime] [--json]
//   wavepool certify MODEL_DIR --data DIR --epsilons 1e-6,1e-5 [--plot F.svg]
#include <cstdio>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/strings/str_cat.h"
#include "clients/bench_command.h"
#include "clients/cli.h"
#include "clients/flags.h"
#include "util/dashed_flags.h"

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage(
      "wavepool COMMAND [ARGS] [FLAGS]\n"
      "commands:\n"
      "  stream FILE --model NAME     stream a WAV file, print one line per window\n"
      "  classify FILE --model NAME   send a whole WAV file in one request\n"
      "  models                       list the server's models\n"
      "  describe MODEL               per-layer resolution, receptive field, cost\n"
      "  health                       exit 0 when the server is SERVING\n"
      "  init-model --spec S --seed N --out DIR   write seeded untrained weights\n"
      "  train --spec S --data DIR --out DIR [--split official|speaker:NAME|all]\n"
      "  eval MODEL_DIR --data DIR [--split ...] [--confusion-svg FILE]\n"
      "       [--shift-consistency [--max-shift K] [--shift-step S]] [--tta-shifts 0,40,80 --tta-pool avg|max]\n"
      "       [--override pool1.blur=3,...]\n"
      "  ensemble --out DIR MODEL_DIR...  merge same-spec models into one network (mean of logits)\n"
      "  sweep --spec S --data DIR --out DIR [--time-strides 1,2,3] [--freq-strides 1,2,3]\n"
      "        [--pool-kinds max,avg,conv,blur]   train a model per pooling choice, plot accuracy vs cost\n"
      "  bench --model NAME --streams N --duration-s S [--realtime] [--input FILE] [--json]\n"
      "        [--sweep 1,10,100] [--plot FILE.svg]   load test: latency percentiles, windows/s\n"
      "  certify MODEL_DIR --data DIR --epsilons 1e-6,1e-5 [--split S] [--plot FILE.svg]\n"
      "        fraction of windows certified vs epsilon, bound looseness, cost (local)\n"
      "flags: --server ADDR (default localhost:50051); see --helpfull");
  wavepool::DashedFlags flags(argc, argv);
  std::vector<char*> positional = absl::ParseCommandLine(flags.argc(), flags.argv());
  if (positional.size() < 2) {
    std::fprintf(stderr, "%s\n", absl::ProgramUsageMessage().data());
    return 2;
  }
  const std::string command = positional[1];
  std::vector<std::string> args(positional.begin() + 2, positional.end());
  wavepool::cli::CommonOptions common;
  common.server = absl::GetFlag(FLAGS_server);
  common.timeout_s = absl::GetFlag(FLAGS_timeout_s);
  common.command_line = "wavepool";
  for (int i = 1; i < argc; ++i) absl::StrAppend(&common.command_line, " ", argv[i]);
  if (command == "stream") return wavepool::cli::RunStream(common, args);
  if (command == "classify") return wavepool::cli::RunClassify(common, args);
  if (command == "models") return wavepool::cli::RunModels(common, args);
  if (command == "describe") return wavepool::cli::RunDescribe(common, args);
  if (command == "health") return wavepool::cli::RunHealth(common, args);
  if (command == "init-model") return wavepool::cli::RunInitModel(args);
  if (command == "train") return wavepool::cli::RunTrain(common, args);
  if (command == "eval") return wavepool::cli::RunEval(common, args);
  if (command == "sweep") return wavepool::cli::RunSweep(common, args);
  if (command == "ensemble") return wavepool::cli::RunEnsemble(common, args);
  if (command == "bench") return wavepool::cli::RunBench(common, args);
  if (command == "certify") return wavepool::cli::RunCertify(args);
  std::fprintf(stderr, "wavepool: unknown command \"%s\"\n%s\n", command.c_str(),
               absl::ProgramUsageMessage().data());
  return 2;
}
