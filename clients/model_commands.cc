// models, describe, health, init-model, and the helpers every command shares.
#include <chrono>
#include <cstdio>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <string>

#include "absl/flags/flag.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "clients/cli.h"
#include "clients/flags.h"
#include "grpc/health/v1/health.grpc.pb.h"
#include "grpcpp/client_context.h"
#include "grpcpp/create_channel.h"
#include "grpcpp/security/credentials.h"
#include "nn/describe.h"
#include "nn/model.h"
#include "nn/safetensors.h"
#include "nn/spec.h"
#include "wavepool/v1/classifier.grpc.pb.h"

namespace wavepool::cli {
namespace {

absl::StatusOr<std::vector<v1::PoolOverride>> OverridesFromFlag() {
  std::vector<v1::PoolOverride> out;
  for (const std::string& text : absl::GetFlag(FLAGS_override)) {
    absl::StatusOr<v1::PoolOverride> o = nn::ParsePoolOverride(text);
    if (!o.ok()) return o.status();
    out.push_back(*std::move(o));
  }
  return out;
}

}  // namespace

void SetDeadline(const CommonOptions& common, grpc::ClientContext* context) {
  if (common.timeout_s > 0) {
    context->set_deadline(std::chrono::system_clock::now() +
                          std::chrono::milliseconds(static_cast<int64_t>(common.timeout_s * 1000)));
  }
}

int Fail(const std::string& message) {
  std::fprintf(stderr, "wavepool: %s\n", message.c_str());
  return 1;
}

std::shared_ptr<grpc::Channel> MakeChannel(const CommonOptions& common) {
  grpc::ChannelArguments args;
  args.SetMaxReceiveMessageSize(64 << 20);
  return grpc::CreateCustomChannel(common.server, grpc::InsecureChannelCredentials(), args);
}

int ReportRpcError(const CommonOptions& common, const grpc::Status& status) {
  static const char* kNames[] = {
      "OK", "CANCELLED", "UNKNOWN", "INVALID_ARGUMENT", "DEADLINE_EXCEEDED", "NOT_FOUND",
      "ALREADY_EXISTS", "PERMISSION_DENIED", "RESOURCE_EXHAUSTED", "FAILED_PRECONDITION",
      "ABORTED", "OUT_OF_RANGE", "UNIMPLEMENTED", "INTERNAL", "UNAVAILABLE", "DATA_LOSS",
      "UNAUTHENTICATED"};
  const int code = static_cast<int>(status.error_code());
  std::string message = absl::StrCat(code >= 0 && code <= 16 ? kNames[code] : "CODE", ": ",
                                     status.error_message());
  if (status.error_code() == grpc::StatusCode::UNAVAILABLE) {
    absl::StrAppend(&message, " (is wavepool-server running at ", common.server,
                    "? set --server HOST:PORT)");
  }
  return Fail(message);
}

int RunModels(const CommonOptions& common, const std::vector<std::string>&) {
  v1::ListModelsResponse resp;
  grpc::ClientContext context;
  SetDeadline(common, &context);
  grpc::Status status = v1::Classifier::NewStub(MakeChannel(common))
                            ->ListModels(&context, v1::ListModelsRequest(), &resp);
  if (!status.ok()) return ReportRpcError(common, status);
  std::printf("%-20s %7s %9s %8s %8s %-9s %s\n", "MODEL", "VERSION", "RATE_HZ", "WINDOW_S",
              "HOP_S", "TRAINED", "LABELS");
  for (const v1::ModelInfo& m : resp.models()) {
    std::printf("%-20s %7lld %9.0f %8.3f %8.3f %-9s %s\n", m.name().c_str(),
                static_cast<long long>(m.version()), m.sample_rate_hz(), m.window_s(), m.hop_s(),
                m.trained() ? "yes" : "no", absl::StrJoin(m.labels(), " ").c_str());
  }
  return 0;
}

int RunDescribe(const CommonOptions& common, const std::vector<std::string>& args) {
  absl::StatusOr<std::vector<v1::PoolOverride>> overrides = OverridesFromFlag();
  if (!overrides.ok()) return Fail(std::string(overrides.status().message()));
  const std::string dir = absl::GetFlag(FLAGS_model_dir);
  v1::ModelSpec spec;
  v1::ModelDescription description;
  if (!dir.empty()) {
    absl::StatusOr<v1::ModelSpec> s = nn::ReadSpecFile(dir + "/spec.json");
    if (!s.ok()) return Fail(std::string(s.status().message()));
    spec = *std::move(s);
    if (absl::Status st = nn::ApplyPoolOverrides(*overrides, &spec); !st.ok()) {
      return Fail(std::string(st.message()));
    }
    absl::StatusOr<v1::ModelDescription> d = nn::Describe(spec);
    if (!d.ok()) return Fail(std::string(d.status().message()));
    description = *std::move(d);
  } else {
    if (args.size() != 1) return Fail("give a model name: wavepool describe MODEL");
    v1::GetModelRequest req;
    req.set_model(args[0]);
    req.set_version(absl::GetFlag(FLAGS_version));
    for (const auto& o : *overrides) *req.add_pool_overrides() = o;
    v1::GetModelResponse resp;
    grpc::ClientContext context;
    SetDeadline(common, &context);
    grpc::Status status =
        v1::Classifier::NewStub(MakeChannel(common))->GetModel(&context, req, &resp);
    if (!status.ok()) return ReportRpcError(common, status);
    spec = resp.spec();
    description = resp.description();
  }
  std::printf("%s", nn::FormatDescription(spec, description).c_str());
  return 0;
}

int RunHealth(const CommonOptions& common, const std::vector<std::string>&) {
  grpc::health::v1::HealthCheckRequest req;
  req.set_service(absl::GetFlag(FLAGS_service));
  grpc::health::v1::HealthCheckResponse resp;
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() +
                       std::chrono::milliseconds(static_cast<int64_t>(
                           1000 * (common.timeout_s > 0 ? common.timeout_s : 5))));
  grpc::Status status =
      grpc::health::v1::Health::NewStub(MakeChannel(common))->Check(&context, req, &resp);
  if (!status.ok()) return ReportRpcError(common, status);
  const std::string name =
      grpc::health::v1::HealthCheckResponse::ServingStatus_Name(resp.status());
  std::printf("%s\n", name.c_str());
  return resp.status() == grpc::health::v1::HealthCheckResponse::SERVING ? 0 : 1;
}

int RunInitModel(const std::vector<std::string>& args) {
  if (!args.empty()) return Fail("init-model takes flags only: --spec, --seed, --out");
  const std::string spec_path = absl::GetFlag(FLAGS_spec);
  const std::string out = absl::GetFlag(FLAGS_out);
  if (spec_path.empty() || out.empty()) {
    return Fail("init-model needs --spec SPEC.json and --out DIR (and --seed N)");
  }
  absl::StatusOr<v1::ModelSpec> spec = nn::ReadSpecFile(spec_path);
  if (!spec.ok()) return Fail(std::string(spec.status().message()));
  const uint64_t seed = absl::GetFlag(FLAGS_seed);
  absl::StatusOr<nn::TensorMap> weights = nn::InitWeights(*spec, seed);
  if (!weights.ok()) return Fail(std::string(weights.status().message()));
  v1::Provenance* p = spec->mutable_provenance();
  p->set_trained(false);
  p->set_seed(seed);
  p->set_command(absl::StrCat("wavepool init-model --spec ", spec_path, " --seed ", seed,
                              " --out ", out));
  p->set_notes(
      "UNTRAINED: seeded He-uniform initialisation (nn::InitWeights), no data seen. Its "
      "outputs carry no meaning; it exists to exercise the full data path.");
  std::error_code ec;
  std::filesystem::create_directories(out, ec);
  if (ec) return Fail(absl::StrCat("cannot create ", out, ": ", ec.message()));
  nn::Safetensors st;
  st.tensors = *std::move(weights);
  st.metadata["format"] = "pt";
  st.metadata["wavepool_model"] = spec->name();
  if (absl::Status s = nn::WriteSafetensors(out + "/weights.safetensors", st); !s.ok()) {
    return Fail(std::string(s.message()));
  }
  std::ofstream f(out + "/spec.json");
  f << nn::SpecToJson(*spec);
  if (!f.good()) return Fail(absl::StrCat("cannot write ", out, "/spec.json"));
  f.close();
  // Prove the pair loads before declaring success.
  absl::StatusOr<std::shared_ptr<const nn::Model>> model = nn::Model::Load(out);
  if (!model.ok()) return Fail(std::string(model.status().message()));
  std::printf("wrote %s/spec.json and %s/weights.safetensors (seed %llu, untrained)\n",
              out.c_str(), out.c_str(), static_cast<unsigned long long>(seed));
  return 0;
}

}  // namespace wavepool::cli
