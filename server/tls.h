// The gRPC server's transport credentials from TlsOptions: plaintext, TLS, or
// mutual TLS.
#pragma once

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "grpcpp/security/server_credentials.h"

namespace wavepool::server {

// server/wavepool_server.h; declared here so that the service headers can
// include this one without a cycle.
struct TlsOptions;

// - cert_file empty (and key_file, client_ca_file empty): insecure (plaintext).
// - cert_file + key_file: TLS; the PEM files are read and checked here (a
//   certificate, a private key that matches it, not expired) so that a bad file
//   fails at start with its name instead of at the first handshake.
// - + client_ca_file: mutual TLS; clients must present a certificate signed by
//   one of these CAs (GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY).
// INVALID_ARGUMENT: a key without a certificate or the reverse, a client CA
// without a certificate, a file that is not what it should be, a key that does
// not match the certificate, an expired certificate. FAILED_PRECONDITION: a
// file cannot be read.
absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> MakeServerCredentials(
    const TlsOptions& options);

// Reads a whole PEM file; `what` names it in errors ("tls.cert_file").
// FAILED_PRECONDITION when unreadable, INVALID_ARGUMENT when it holds no PEM
// block ("-----BEGIN ").
absl::StatusOr<std::string> ReadPemFile(const std::string& path, const std::string& what);

}  // namespace wavepool::server
