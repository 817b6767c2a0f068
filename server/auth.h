// Bearer-token authentication and per-model authorisation.
//
// Tokens come from a file and/or an environment variable (AuthOptions), one
// entry per line (in the variable, `;` also separates entries):
//
//   # comment
//   TOKEN                      every model (same as `TOKEN *`)
//   TOKEN model:digits model:ecg-beats
//   TOKEN admin *              admin RPCs and every model
//
// Scopes: `*` = every model, `model:NAME` = that model, `admin` = the admin
// RPCs. A call without a model (ListModels, health) needs any known token.
// Tokens are stored only as SHA-256 digests and compared in constant time
// against every configured token; they never appear in a Status or a log line.
#pragma once

#include <array>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "grpcpp/support/string_ref.h"

namespace wavepool::server {

// server/wavepool_server.h; declared here so that the service headers can
// include this one without a cycle.
struct AuthOptions;

// What one token may do.
struct TokenScopes {
  bool all_models = false;          // `*`
  bool admin = false;               // `admin`
  std::vector<std::string> models;  // `model:NAME`, in file order
};

// True when `options` asks for authentication (tokens_file or tokens_env set).
bool AuthEnabled(const AuthOptions& options);

class TokenAuthenticator {
 public:
  using Metadata = std::multimap<grpc::string_ref, grpc::string_ref>;

  // Reads options.tokens_file and the variable named options.tokens_env (both
  // when both are set). FAILED_PRECONDITION: the file is unreadable or the
  // variable is unset. INVALID_ARGUMENT: neither option is set, an unknown
  // scope or a duplicate token (with file/variable name and line number), no
  // token at all.
  static absl::StatusOr<std::unique_ptr<TokenAuthenticator>> Create(const AuthOptions& options);

  // Parses one source's text. `source` names it in errors ("tokens.txt",
  // "$WAVEPOOL_TOKENS"); `semicolons` also splits entries at ';' (the
  // environment variable form). May leave the token set empty.
  absl::Status AddTokens(std::string_view text, std::string_view source, bool semicolons);

  // Authorises one call from its client metadata (ServerContext's
  // client_metadata()). `model_or_empty`: the model the call is about ("" for
  // none); `admin`: an admin RPC.
  //   UNAUTHENTICATED:   no or malformed `authorization: Bearer <token>`, or an
  //                      unknown token.
  //   PERMISSION_DENIED: a known token without the scope the call needs (named).
  // Thread-safe (const, no mutable state).
  absl::Status Check(const Metadata& metadata, const std::string& model_or_empty,
                     bool admin) const;

  size_t size() const { return entries_.size(); }

 private:
  using Digest = std::array<uint8_t, 32>;
  struct Entry {
    Digest digest;
    TokenScopes scopes;
  };
  // The index of the entry whose token's digest equals `digest`, or -1. Looks
  // at every entry with a constant-time compare and no early exit, so the time
  // taken says nothing about which token (if any) matched, or how closely.
  int Find(const Digest& digest) const;
  static Digest Hash(std::string_view token);

  std::vector<Entry> entries_;
};

}  // namespace wavepool::server
