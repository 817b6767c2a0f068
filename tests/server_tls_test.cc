// MakeServerCredentials on a plain grpc::Server with only the default health
// service: a TLS client trusting the CA gets through, plaintext and untrusting
// clients do not; with a client CA, only clients presenting a certificate it
// signed get through. Certificates are made fresh by tests/make_test_certs.sh
// (the openssl CLI) in a temporary folder; the tests skip without openssl.
#include "server/tls.h"

#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "gmock/gmock.h"
#include "grpc/health/v1/health.grpc.pb.h"
#include "grpcpp/create_channel.h"
#include "grpcpp/health_check_service_interface.h"
#include "grpcpp/security/credentials.h"
#include "grpcpp/server.h"
#include "grpcpp/server_builder.h"
#include "gtest/gtest.h"
#include "server/wavepool_server.h"
#include "wavepool/v1/classifier.grpc.pb.h"

namespace wavepool::server {
namespace {

using ::testing::HasSubstr;

std::string Slurp(const std::string& path) {
  std::ifstream in(path);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

class TlsTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new std::string(std::filesystem::temp_directory_path() /
                           ("wavepool_tls_" + std::to_string(getpid())));
    const std::string cmd = std::string("bash ") + WP_SOURCE_DIR + "/tests/make_test_certs.sh " +
                            *dir_ + " >/dev/null 2>&1";
    const int rc = std::system(cmd.c_str());
    made_ = rc == 0;
  }
  static void TearDownTestSuite() {
    std::filesystem::remove_all(*dir_);
    delete dir_;
  }
  void SetUp() override {
    if (!made_) GTEST_SKIP() << "could not make test certificates (is the openssl CLI installed?)";
  }
  void TearDown() override {
    if (server_ != nullptr) server_->Shutdown();
  }

  static std::string F(const std::string& name) { return *dir_ + "/" + name; }

  TlsOptions ServerTls(bool mutual) {
    TlsOptions o;
    o.cert_file = F("server.pem");
    o.key_file = F("server.key");
    if (mutual) o.client_ca_file = F("ca.pem");
    return o;
  }

  // Starts the server on 127.0.0.1 with these credentials.
  void Start(const TlsOptions& tls) {
    absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> creds = MakeServerCredentials(tls);
    ASSERT_TRUE(creds.ok()) << creds.status();
    grpc::EnableDefaultHealthCheckService(true);
    grpc::ServerBuilder builder;
    builder.AddListeningPort("127.0.0.1:0", *creds, &port_);
    // Any synchronous service (all its methods UNIMPLEMENTED) makes the server
    // poll the completion queue that the default health service answers on.
    builder.RegisterService(&unused_);
    server_ = builder.BuildAndStart();
    ASSERT_NE(server_, nullptr);
    ASSERT_GT(port_, 0);
  }

  // A health check over `creds`; `host` is what the client dials (the name
  // its TLS verifies).
  // `name`: the server name the certificate is checked against (default: the
  // address). The channel always dials 127.0.0.1, so no DNS lookup happens
  // (c-ares leaks a few bytes per lookup of "localhost", which LSan reports).
  grpc::Status Check(std::shared_ptr<grpc::ChannelCredentials> creds,
                     const std::string& name = "127.0.0.1") {
    grpc::ChannelArguments args;
    if (name != "127.0.0.1") args.SetSslTargetNameOverride(name);
    auto stub = grpc::health::v1::Health::NewStub(grpc::CreateCustomChannel(
        "127.0.0.1:" + std::to_string(port_), creds, args));
    grpc::ClientContext context;
    // Bounds a failing handshake; the successful calls take milliseconds.
    context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(20));
    grpc::health::v1::HealthCheckRequest req;
    grpc::health::v1::HealthCheckResponse resp;
    grpc::Status status = stub->Check(&context, req, &resp);
    if (status.ok()) {
      EXPECT_EQ(resp.status(), grpc::health::v1::HealthCheckResponse::SERVING);
    }
    return status;
  }

  static std::shared_ptr<grpc::ChannelCredentials> Tls(const std::string& ca,
                                                       const std::string& client = "") {
    grpc::SslCredentialsOptions o;
    o.pem_root_certs = Slurp(F(ca));
    if (!client.empty()) {
      o.pem_cert_chain = Slurp(F(client + ".pem"));
      o.pem_private_key = Slurp(F(client + ".key"));
    }
    return grpc::SslCredentials(o);
  }

  static std::string* dir_;
  static bool made_;
  v1::Classifier::Service unused_;
  std::unique_ptr<grpc::Server> server_;
  int port_ = 0;
};
std::string* TlsTest::dir_ = nullptr;
bool TlsTest::made_ = false;

TEST_F(TlsTest, ClientTrustingTheCaSucceeds) {
  Start(ServerTls(false));
  EXPECT_TRUE(Check(Tls("ca.pem")).ok());
  EXPECT_TRUE(Check(Tls("ca.pem"), "localhost").ok());  // the DNS SAN
}

TEST_F(TlsTest, PlaintextClientFails) {
  Start(ServerTls(false));
  const grpc::Status s = Check(grpc::InsecureChannelCredentials());
  EXPECT_EQ(s.error_code(), grpc::StatusCode::UNAVAILABLE) << s.error_message();
}

TEST_F(TlsTest, ClientTrustingAnotherCaFails) {
  Start(ServerTls(false));
  const grpc::Status s = Check(Tls("other-ca.pem"));
  EXPECT_EQ(s.error_code(), grpc::StatusCode::UNAVAILABLE) << s.error_message();
}

TEST_F(TlsTest, InsecureWhenNoCertificate) {
  Start(TlsOptions());
  EXPECT_TRUE(Check(grpc::InsecureChannelCredentials()).ok());
}

TEST_F(TlsTest, MutualTlsRequiresAClientCertificateFromTheClientCa) {
  Start(ServerTls(true));
  EXPECT_FALSE(Check(Tls("ca.pem")).ok()) << "no client certificate";
  EXPECT_FALSE(Check(Tls("ca.pem", "other-client")).ok()) << "client certificate of another CA";
  EXPECT_FALSE(Check(grpc::InsecureChannelCredentials()).ok()) << "plaintext";
  EXPECT_TRUE(Check(Tls("ca.pem", "client")).ok());
}

TEST_F(TlsTest, ConfigurationErrorsNameTheFile) {
  struct Case {
    TlsOptions options;
    absl::StatusCode code;
    std::string message;
  };
  const std::vector<Case> cases = {
      {{"", F("server.key"), ""}, absl::StatusCode::kInvalidArgument,
       "tls.key_file is set but tls.cert_file is not"},
      {{F("server.pem"), "", ""}, absl::StatusCode::kInvalidArgument,
       "tls.cert_file is set but tls.key_file is not"},
      {{"", "", F("ca.pem")}, absl::StatusCode::kInvalidArgument,
       "tls.client_ca_file (mutual TLS) needs TLS"},
      {{F("missing.pem"), F("server.key"), ""}, absl::StatusCode::kFailedPrecondition,
       "cannot read tls.cert_file " + F("missing.pem")},
      {{F("server.pem"), F("missing.key"), ""}, absl::StatusCode::kFailedPrecondition,
       "cannot read tls.key_file " + F("missing.key")},
      {{F("server.pem"), F("server.key"), F("missing-ca.pem")},
       absl::StatusCode::kFailedPrecondition, "cannot read tls.client_ca_file"},
      {{F("server.pem"), F("client.key"), ""}, absl::StatusCode::kInvalidArgument,
       "tls.key_file " + F("client.key") + " does not match the certificate"},
      {{F("server.key"), F("server.key"), ""}, absl::StatusCode::kInvalidArgument,
       "tls.cert_file " + F("server.key") + " holds no certificate"},
      {{F("server.pem"), F("server.pem"), ""}, absl::StatusCode::kInvalidArgument,
       "holds no private key"},
      {{F("server.pem"), F("server.key"), F("server.key")}, absl::StatusCode::kInvalidArgument,
       "holds no CA certificate"},
  };
  for (const Case& c : cases) {
    absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> creds =
        MakeServerCredentials(c.options);
    ASSERT_FALSE(creds.ok()) << c.message;
    EXPECT_EQ(creds.status().code(), c.code) << creds.status();
    EXPECT_THAT(std::string(creds.status().message()), HasSubstr(c.message));
  }
}

TEST_F(TlsTest, NonPemFileIsNamed) {
  const std::string path = F("not-pem.txt");
  std::ofstream(path) << "hello\n";
  absl::StatusOr<std::string> pem = ReadPemFile(path, "tls.cert_file");
  EXPECT_EQ(pem.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(pem.status().message()), HasSubstr(path + " is not a PEM file"));
}

}  // namespace
}  // namespace wavepool::server
