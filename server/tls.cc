#include "server/tls.h"

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "grpcpp/security/server_credentials.h"
#include "server/wavepool_server.h"

namespace wavepool::server {
namespace {

struct BioFree {
  void operator()(BIO* b) const { BIO_free(b); }
};
struct X509Free {
  void operator()(X509* x) const { X509_free(x); }
};
struct KeyFree {
  void operator()(EVP_PKEY* k) const { EVP_PKEY_free(k); }
};
using BioPtr = std::unique_ptr<BIO, BioFree>;
using X509Ptr = std::unique_ptr<X509, X509Free>;
using KeyPtr = std::unique_ptr<EVP_PKEY, KeyFree>;

// Never prompt for a passphrase on the terminal: an encrypted key is an error.
int NoPassphrase(char*, int, int, void*) { return -1; }

BioPtr MemoryBio(const std::string& pem) {
  return BioPtr(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
}

// The certificates in `pem`, in order (none when it holds no parsable one).
std::vector<X509Ptr> ReadCertificates(const std::string& pem) {
  std::vector<X509Ptr> certs;
  BioPtr bio = MemoryBio(pem);
  while (bio != nullptr) {
    X509Ptr cert(PEM_read_bio_X509(bio.get(), nullptr, NoPassphrase, nullptr));
    if (cert == nullptr) break;
    certs.push_back(std::move(cert));
  }
  ERR_clear_error();  // the end of input is reported as an error too
  return certs;
}

absl::Status CheckValidity(X509* cert, const std::string& path) {
  if (X509_cmp_current_time(X509_get0_notAfter(cert)) < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("tls.cert_file ", path, ": the certificate has expired; renew it"));
  }
  if (X509_cmp_current_time(X509_get0_notBefore(cert)) > 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        "tls.cert_file ", path, ": the certificate is not valid yet (check the clock)"));
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<std::string> ReadPemFile(const std::string& path, const std::string& what) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    return absl::FailedPreconditionError(
        absl::StrCat("cannot read ", what, " ", path, ": ", std::strerror(errno)));
  }
  std::ostringstream text;
  text << in.rdbuf();
  if (in.bad()) return absl::FailedPreconditionError(absl::StrCat("cannot read ", what, " ", path));
  std::string pem = text.str();
  if (!absl::StrContains(pem, "-----BEGIN ")) {
    return absl::InvalidArgumentError(
        absl::StrCat(what, " ", path, " is not a PEM file (no \"-----BEGIN \" line)"));
  }
  return pem;
}

absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> MakeServerCredentials(
    const TlsOptions& options) {
  if (options.cert_file.empty()) {
    if (!options.key_file.empty()) {
      return absl::InvalidArgumentError(
          "tls.key_file is set but tls.cert_file is not: TLS needs both (--tls-cert, --tls-key)");
    }
    if (!options.client_ca_file.empty()) {
      return absl::InvalidArgumentError(
          "tls.client_ca_file (mutual TLS) needs TLS: set tls.cert_file and tls.key_file too");
    }
    return grpc::InsecureServerCredentials();
  }
  if (options.key_file.empty()) {
    return absl::InvalidArgumentError(
        "tls.cert_file is set but tls.key_file is not: TLS needs both (--tls-cert, --tls-key)");
  }

  absl::StatusOr<std::string> cert_pem = ReadPemFile(options.cert_file, "tls.cert_file");
  if (!cert_pem.ok()) return cert_pem.status();
  absl::StatusOr<std::string> key_pem = ReadPemFile(options.key_file, "tls.key_file");
  if (!key_pem.ok()) return key_pem.status();

  std::vector<X509Ptr> chain = ReadCertificates(*cert_pem);
  if (chain.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "tls.cert_file ", options.cert_file, " holds no certificate (expected BEGIN CERTIFICATE)"));
  }
  if (absl::Status s = CheckValidity(chain[0].get(), options.cert_file); !s.ok()) return s;
  if (absl::StrContains(*key_pem, "ENCRYPTED")) {
    return absl::InvalidArgumentError(absl::StrCat(
        "tls.key_file ", options.key_file,
        " is encrypted; give an unencrypted key (openssl pkey -in KEY -out PLAIN) and protect "
        "it with file permissions"));
  }
  BioPtr key_bio = MemoryBio(*key_pem);
  KeyPtr key(PEM_read_bio_PrivateKey(key_bio.get(), nullptr, NoPassphrase, nullptr));
  ERR_clear_error();
  if (key == nullptr) {
    return absl::InvalidArgumentError(absl::StrCat(
        "tls.key_file ", options.key_file, " holds no private key (expected BEGIN PRIVATE KEY)"));
  }
  if (X509_check_private_key(chain[0].get(), key.get()) != 1) {
    ERR_clear_error();
    return absl::InvalidArgumentError(absl::StrCat("tls.key_file ", options.key_file,
                                                   " does not match the certificate in ",
                                                   "tls.cert_file ", options.cert_file));
  }

  grpc::SslServerCredentialsOptions ssl;
  ssl.pem_key_cert_pairs.push_back({*key_pem, *cert_pem});
  if (!options.client_ca_file.empty()) {
    absl::StatusOr<std::string> ca_pem = ReadPemFile(options.client_ca_file, "tls.client_ca_file");
    if (!ca_pem.ok()) return ca_pem.status();
    if (ReadCertificates(*ca_pem).empty()) {
      return absl::InvalidArgumentError(absl::StrCat("tls.client_ca_file ", options.client_ca_file,
                                                     " holds no CA certificate"));
    }
    ssl.pem_root_certs = *ca_pem;
    ssl.client_certificate_request = GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY;
  } else {
    ssl.client_certificate_request = GRPC_SSL_DONT_REQUEST_CLIENT_CERTIFICATE;
  }
  return grpc::SslServerCredentials(ssl);
}

}  // namespace wavepool::server
