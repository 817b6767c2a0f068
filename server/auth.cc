#include "server/auth.h"

#include <openssl/crypto.h>
#include <openssl/sha.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "server/wavepool_server.h"

namespace wavepool::server {
namespace {

constexpr absl::string_view kAuthHint = "send metadata authorization: Bearer <token>";

// Debian's Abseil keeps its own string_view type.
absl::string_view Sv(std::string_view s) { return absl::string_view(s.data(), s.size()); }

// A token travels as an HTTP/2 header value: visible ASCII only.
bool IsTokenText(std::string_view token) {
  for (char ch : token) {
    const unsigned char c = static_cast<unsigned char>(ch);
    if (c < 0x21 || c > 0x7e) return false;
  }
  return true;
}

bool LooksLikeScope(std::string_view field) {
  return field == "*" || field == "admin" || field.starts_with("model:");
}

// A field that is not a scope may be a second token pasted by mistake: show it
// only when it is too short to be one.
std::string ShowField(std::string_view field, size_t index) {
  if (field.size() < 16) return absl::StrCat("\"", Sv(field), "\"");
  return absl::StrCat("in field ", index + 1, " (not shown: it may be a token)");
}

}  // namespace

bool AuthEnabled(const AuthOptions& options) {
  return !options.tokens_file.empty() || !options.tokens_env.empty();
}

absl::StatusOr<std::unique_ptr<TokenAuthenticator>> TokenAuthenticator::Create(
    const AuthOptions& options) {
  if (!AuthEnabled(options)) {
    return absl::InvalidArgumentError(
        "authentication needs auth.tokens_file (--auth-tokens-file) or auth.tokens_env "
        "(--auth-tokens-env)");
  }
  auto auth = std::unique_ptr<TokenAuthenticator>(new TokenAuthenticator());
  std::string sources;
  if (!options.tokens_file.empty()) {
    std::ifstream in(options.tokens_file, std::ios::binary);
    if (!in) {
      return absl::FailedPreconditionError(absl::StrCat("cannot read auth.tokens_file ",
                                                        options.tokens_file, ": ",
                                                        std::strerror(errno)));
    }
    std::ostringstream text;
    text << in.rdbuf();
    if (in.bad()) {
      return absl::FailedPreconditionError(
          absl::StrCat("cannot read auth.tokens_file ", options.tokens_file));
    }
    if (absl::Status s = auth->AddTokens(text.str(), options.tokens_file, false); !s.ok()) {
      return s;
    }
    sources = options.tokens_file;
  }
  if (!options.tokens_env.empty()) {
    const char* value = std::getenv(options.tokens_env.c_str());
    if (value == nullptr) {
      return absl::FailedPreconditionError(
          absl::StrCat("auth.tokens_env names the environment variable ", options.tokens_env,
                       ", which is not set"));
    }
    if (absl::Status s = auth->AddTokens(value, "$" + options.tokens_env, true); !s.ok()) {
      return s;
    }
    absl::StrAppend(&sources, sources.empty() ? "" : " and ", "$", options.tokens_env);
  }
  if (auth->entries_.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "no bearer tokens in ", sources, ": add lines of the form TOKEN [SCOPE ...]"));
  }
  return auth;
}

absl::Status TokenAuthenticator::AddTokens(std::string_view text, std::string_view source,
                                           bool semicolons) {
  std::vector<absl::string_view> entries =
      absl::StrSplit(Sv(text), absl::ByAnyChar(semicolons ? "\n;" : "\n"));
  const absl::string_view unit = semicolons ? "entry" : "line";
  for (size_t n = 0; n < entries.size(); ++n) {
    const std::string where = absl::StrCat(Sv(source), " ", unit, " ", n + 1);
    std::vector<std::string_view> fields;
    for (absl::string_view f :
         absl::StrSplit(entries[n], absl::ByAnyChar(" \t\r\f\v"), absl::SkipEmpty())) {
      fields.emplace_back(f.data(), f.size());
    }
    for (size_t k = 0; k < fields.size(); ++k) {
      if (fields[k].starts_with("#")) {
        fields.resize(k);
        break;
      }
    }
    if (fields.empty()) continue;
    const std::string_view token = fields[0];
    if (LooksLikeScope(token)) {
      return absl::InvalidArgumentError(absl::StrCat(
          where, ": starts with the scope \"", Sv(token), "\"; the token comes first: TOKEN [SCOPE ...]"));
    }
    if (!IsTokenText(token)) {
      return absl::InvalidArgumentError(absl::StrCat(
          where, ": the token has a byte outside visible ASCII (0x21-0x7e), so it cannot be "
                 "sent as metadata"));
    }
    Entry entry{Hash(token), {}};
    for (size_t k = 1; k < fields.size(); ++k) {
      const std::string_view scope = fields[k];
      if (scope == "*") {
        entry.scopes.all_models = true;
      } else if (scope == "admin") {
        entry.scopes.admin = true;
      } else if (scope.starts_with("model:") && scope.size() > 6) {
        entry.scopes.models.emplace_back(scope.substr(6));
      } else {
        return absl::InvalidArgumentError(absl::StrCat(
            where, ": unknown scope ", ShowField(scope, k),
            "; scopes are * (every model), model:NAME and admin"));
      }
    }
    if (fields.size() == 1) entry.scopes.all_models = true;
    if (Find(entry.digest) >= 0) {
      return absl::InvalidArgumentError(absl::StrCat(
          where, ": this token is already configured; give each token one entry with all its "
                 "scopes"));
    }
    entries_.push_back(std::move(entry));
  }
  return absl::OkStatus();
}

TokenAuthenticator::Digest TokenAuthenticator::Hash(std::string_view token) {
  Digest d;
  SHA256(reinterpret_cast<const unsigned char*>(token.data()), token.size(), d.data());
  return d;
}

int TokenAuthenticator::Find(const Digest& digest) const {
  int found = -1;
  for (size_t i = 0; i < entries_.size(); ++i) {
    // CRYPTO_memcmp reads all 32 bytes whatever they hold; the select below
    // has no branch on the outcome.
    const int equal = CRYPTO_memcmp(digest.data(), entries_[i].digest.data(), digest.size()) == 0;
    const int mask = -equal;  // all ones when equal
    found = (found & ~mask) | (static_cast<int>(i) & mask);
  }
  return found;
}

absl::Status TokenAuthenticator::Check(const Metadata& metadata, const std::string& model_or_empty,
                                       bool admin) const {
  const auto [begin, end] = metadata.equal_range("authorization");
  if (begin == end) {
    return absl::UnauthenticatedError(absl::StrCat("no bearer token: ", kAuthHint));
  }
  if (std::next(begin) != end) {
    return absl::UnauthenticatedError(
        absl::StrCat("more than one authorization metadata entry: ", kAuthHint));
  }
  const absl::string_view value(begin->second.data(), begin->second.size());
  // The scheme is case-insensitive (RFC 7235 section 2.1).
  constexpr absl::string_view kScheme = "bearer ";
  if (value.size() <= kScheme.size() ||
      !absl::EqualsIgnoreCase(value.substr(0, kScheme.size()), kScheme)) {
    return absl::UnauthenticatedError(
        absl::StrCat("malformed authorization metadata (not \"Bearer <token>\"): ", kAuthHint));
  }
  const absl::string_view token = absl::StripAsciiWhitespace(value.substr(kScheme.size()));
  if (token.empty()) {
    return absl::UnauthenticatedError(
        absl::StrCat("empty bearer token in authorization metadata: ", kAuthHint));
  }
  const int index = Find(Hash(std::string_view(token.data(), token.size())));
  if (index < 0) {
    return absl::UnauthenticatedError("unknown bearer token: check the token the client sends");
  }
  const TokenScopes& scopes = entries_[index].scopes;
  if (admin && !scopes.admin) {
    return absl::PermissionDeniedError(
        "this token lacks scope admin, which this call needs");
  }
  if (!model_or_empty.empty() && !scopes.all_models) {
    bool allowed = false;
    for (const std::string& m : scopes.models) allowed |= (m == model_or_empty);
    if (!allowed) {
      return absl::PermissionDeniedError(
          absl::StrCat("this token lacks scope model:", model_or_empty, " (or *), which model ",
                       model_or_empty, " needs"));
    }
  }
  return absl::OkStatus();
}

}  // namespace wavepool::server
