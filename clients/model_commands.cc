// models, describe, health, init-model, and the helpers every command shares.
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include "absl/flags/flag.h"
#include "absl/status/statusor.h"
#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "clients/cli.h"
#include "clients/flags.h"
#include "clients/train_common.h"
#include "grpc/health/v1/health.grpc.pb.h"
#include "grpcpp/client_context.h"
#include "grpcpp/create_channel.h"
#include "grpcpp/security/credentials.h"
#include "grpcpp/support/client_interceptor.h"
#include "nn/describe.h"
#include "nn/model.h"
#include "nn/safetensors.h"
#include "nn/spec.h"
#include "wavepool/v1/classifier.grpc.pb.h"

namespace wavepool::cli {

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

namespace {

// Adds `authorization: Bearer <token>` to the initial metadata of every call.
// An interceptor rather than call credentials (grpc::MetadataCredentialsPlugin)
// because gRPC refuses to send call credentials over a plaintext channel, and a
// server on loopback or behind a TLS-terminating proxy may rightly be
// plaintext: one mechanism serves both, for every command using MakeChannel.
class BearerInterceptor : public grpc::experimental::Interceptor {
 public:
  explicit BearerInterceptor(std::string header) : header_(std::move(header)) {}
  void Intercept(grpc::experimental::InterceptorBatchMethods* methods) override {
    if (methods->QueryInterceptionHookPoint(
            grpc::experimental::InterceptionHookPoints::PRE_SEND_INITIAL_METADATA)) {
      methods->GetSendInitialMetadata()->emplace("authorization", header_);
    }
    methods->Proceed();
  }

 private:
  std::string header_;
};

class BearerInterceptorFactory : public grpc::experimental::ClientInterceptorFactoryInterface {
 public:
  explicit BearerInterceptorFactory(std::string header) : header_(std::move(header)) {}
  grpc::experimental::Interceptor* CreateClientInterceptor(
      grpc::experimental::ClientRpcInfo*) override {
    return new BearerInterceptor(header_);  // owned by the call
  }

 private:
  std::string header_;
};

// What the --tls-* and --token flags ask of every channel.
struct ChannelSecurity {
  std::shared_ptr<grpc::ChannelCredentials> credentials;
  std::string server_name;    // --tls-server-name, "" = --server's host
  std::string authorization;  // "Bearer <token>", "" = no token
};

absl::StatusOr<std::string> ReadPem(const std::string& path, const char* flag) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::FailedPreconditionError(absl::StrCat(flag, ": cannot read ", path));
  std::ostringstream text;
  text << in.rdbuf();
  if (text.str().find("-----BEGIN ") == std::string::npos) {
    return absl::InvalidArgumentError(absl::StrCat(flag, ": ", path, " is not a PEM file"));
  }
  return text.str();
}

bool IsLoopback(const std::string& target) {
  for (const char* host : {"localhost:", "127.", "[::1]:", "ipv4:127.", "ipv6:[::1]", "unix:"}) {
    if (target.rfind(host, 0) == 0) return true;
  }
  return false;
}

absl::StatusOr<ChannelSecurity> LoadChannelSecurity(const std::string& target) {
  ChannelSecurity out;
  const std::string ca = absl::GetFlag(FLAGS_tls_ca);
  const std::string cert = absl::GetFlag(FLAGS_tls_cert);
  const std::string key = absl::GetFlag(FLAGS_tls_key);
  out.server_name = absl::GetFlag(FLAGS_tls_server_name);
  if (cert.empty() != key.empty()) {
    return absl::InvalidArgumentError(
        "--tls-cert and --tls-key go together: a client certificate needs its key");
  }
  const bool tls = !ca.empty() || !cert.empty() || !out.server_name.empty();
  if (tls) {
    grpc::SslCredentialsOptions ssl;  // empty roots: the system's
    if (!ca.empty()) {
      absl::StatusOr<std::string> pem = ReadPem(ca, "--tls-ca");
      if (!pem.ok()) return pem.status();
      ssl.pem_root_certs = *pem;
    }
    if (!cert.empty()) {
      absl::StatusOr<std::string> cert_pem = ReadPem(cert, "--tls-cert");
      if (!cert_pem.ok()) return cert_pem.status();
      absl::StatusOr<std::string> key_pem = ReadPem(key, "--tls-key");
      if (!key_pem.ok()) return key_pem.status();
      ssl.pem_cert_chain = *cert_pem;
      ssl.pem_private_key = *key_pem;
    }
    out.credentials = grpc::SslCredentials(ssl);
  } else {
    out.credentials = grpc::InsecureChannelCredentials();
  }
  std::string token = absl::GetFlag(FLAGS_token);
  if (token.empty()) {
    const char* env = std::getenv("WAVEPOOL_TOKEN");
    if (env != nullptr) token = env;
  }
  token = std::string(absl::StripAsciiWhitespace(token));
  if (!token.empty()) {
    for (char c : token) {
      if (static_cast<unsigned char>(c) < 0x21 || static_cast<unsigned char>(c) > 0x7e) {
        return absl::InvalidArgumentError(
            "--token / $WAVEPOOL_TOKEN: a token is visible ASCII without spaces");
      }
    }
    out.authorization = "Bearer " + token;
    if (!tls && !IsLoopback(target)) {
      std::fprintf(stderr,
                   "wavepool: warning: sending the bearer token to %s without TLS; anyone on "
                   "the path can read it (add --tls-ca FILE)\n",
                   target.c_str());
    }
  }
  return out;
}

}  // namespace

// Every command's channel: TLS and the bearer token from the flags. A bad
// --tls-* file or token ends the process with a message (exit 2): no command
// can do anything useful without its channel. The files are read (and the
// plaintext warning printed) once per process, however many channels a
// command makes (bench makes one per group of streams).
std::shared_ptr<grpc::Channel> MakeChannel(const CommonOptions& common, int channel_id) {
  // Never destroyed: gRPC objects must not outlive the library at exit.
  static const absl::StatusOr<ChannelSecurity>& security =
      *new absl::StatusOr<ChannelSecurity>(LoadChannelSecurity(common.server));
  if (!security.ok()) {
    std::fprintf(stderr, "wavepool: %s\n", std::string(security.status().message()).c_str());
    std::exit(2);
  }
  grpc::ChannelArguments args;
  args.SetMaxReceiveMessageSize(64 << 20);
  if (channel_id > 0) {
    // Distinct args and a private subchannel pool: a connection of its own.
    args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
    args.SetInt("wavepool.channel_id", channel_id);
  }
  if (!security->server_name.empty()) args.SetSslTargetNameOverride(security->server_name);
  std::vector<std::unique_ptr<grpc::experimental::ClientInterceptorFactoryInterface>> interceptors;
  if (!security->authorization.empty()) {
    interceptors.push_back(std::make_unique<BearerInterceptorFactory>(security->authorization));
  }
  return grpc::experimental::CreateCustomChannelWithInterceptors(
      common.server, security->credentials, args, std::move(interceptors));
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
  absl::StatusOr<std::vector<v1::PoolOverride>> overrides = PoolOverridesFromFlag();
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
