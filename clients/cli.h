// The wavepool CLI's subcommands. Each returns the process exit code and
// prints its own errors as "wavepool: <what went wrong and what to do>".
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "grpcpp/channel.h"
#include "grpcpp/client_context.h"
#include "grpcpp/support/status.h"
#include "wavepool/v1/model_spec.pb.h"

namespace wavepool::cli {

struct CommonOptions {
  std::string server = "localhost:50051";
  double timeout_s = 0;  // 0 = no deadline
  std::string command_line;  // as typed, for provenance
};

int RunStream(const CommonOptions& common, const std::vector<std::string>& args);
int RunClassify(const CommonOptions& common, const std::vector<std::string>& args);
int RunModels(const CommonOptions& common, const std::vector<std::string>& args);
int RunDescribe(const CommonOptions& common, const std::vector<std::string>& args);
int RunHealth(const CommonOptions& common, const std::vector<std::string>& args);
int RunInitModel(const std::vector<std::string>& args);
int RunTrain(const CommonOptions& common, const std::vector<std::string>& args);
int RunEval(const CommonOptions& common, const std::vector<std::string>& args);
int RunSweep(const CommonOptions& common, const std::vector<std::string>& args);
int RunEnsemble(const CommonOptions& common, const std::vector<std::string>& args);
int RunTrainEcg(const CommonOptions& common, v1::ModelSpec spec, const std::string& data_dir,
                const std::string& out);
int RunEvalEcg(const std::vector<std::string>& model_dirs, const std::string& data_dir);
int RunCertify(const std::vector<std::string>& args);
int RunContinuousEval(const CommonOptions& common, const std::string& model);

// Shared helpers.
// channel_id > 0 gives the channel its own connection (bench spreads its
// streams over several TCP connections, as many clients would).
std::shared_ptr<grpc::Channel> MakeChannel(const CommonOptions& common, int channel_id = 0);
// Applies --timeout-s (when > 0) to a call.
void SetDeadline(const CommonOptions& common, grpc::ClientContext* context);
// Prints "wavepool: CODE: message" plus a hint for UNAVAILABLE (server down).
int ReportRpcError(const CommonOptions& common, const grpc::Status& status);
int Fail(const std::string& message);

}  // namespace wavepool::cli
