// Bearer tokens: the tokens file / environment variable the server reads at
// start (auth.tokens_file, auth.tokens_env) and the `authorization` metadata
// every call brings (TokenAuthenticator::Check).
//
// Input: the tokens text, a NUL byte, the authorization value a client sends,
// a NUL byte, the model the call names; the first byte's low bit says whether
// the text is a file or the variable (where ';' also separates entries). When
// the text is accepted, "Bearer <the first entry's token>" (split here the way
// server/auth.h documents) must pass a call that names no model; and whatever
// the client sends, Check's message must not contain the bearer token
// (server/auth.h: tokens never appear in a Status).

#include "absl/strings/str_cat.h"
#include "fuzz/fuzz_util.h"
#include "server/auth.h"
#include "server/wavepool_server.h"

namespace wavepool::fuzz {
namespace {

// The file an input in the variable form is added to.
constexpr char kBaseTokens[] = "fuzz-base-token-000000 *\n";

ScratchDir& Scratch() {
  static ScratchDir dir;
  return dir;
}

// The first entry's token: entries end at '\n' (and ';' in the variable),
// fields are split at " \t\r\f\v", a field starting with '#' ends the entry.
std::string FirstToken(std::string_view text, bool semicolons) {
  const std::string_view entry_ends = semicolons ? "\n;" : "\n";
  const std::string_view blanks = " \t\r\f\v";
  size_t at = 0;
  while (at <= text.size()) {
    const size_t end = std::min(text.find_first_of(entry_ends, at), text.size());
    const std::string_view entry = text.substr(at, end - at);
    const size_t begin = entry.find_first_not_of(blanks);
    if (begin != std::string_view::npos && entry[begin] != '#') {
      const size_t stop = std::min(entry.find_first_of(blanks, begin), entry.size());
      return std::string(entry.substr(begin, stop - begin));
    }
    at = end + 1;
  }
  return "";
}

absl::Status CheckWith(const server::TokenAuthenticator& auth, const std::string& value,
                       const std::string& model, bool admin) {
  server::TokenAuthenticator::Metadata metadata;
  metadata.emplace("authorization", grpc::string_ref(value.data(), value.size()));
  return auth.Check(metadata, model, admin);
}

}  // namespace
}  // namespace wavepool::fuzz

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace wavepool;
  using fuzz::Require;
  if (size == 0) return 0;
  const bool in_variable = (data[0] & 1) != 0;
  const std::string_view input(reinterpret_cast<const char*>(data + 1), size - 1);
  const size_t nul1 = input.find('\0');
  const std::string text(input.substr(0, nul1));
  std::string header, model;
  if (nul1 != std::string_view::npos) {
    const std::string_view rest = input.substr(nul1 + 1);
    const size_t nul2 = rest.find('\0');
    header = std::string(rest.substr(0, nul2));
    if (nul2 != std::string_view::npos) model = std::string(rest.substr(nul2 + 1));
  }

  // The file form through Create, as the server reads it. The variable form
  // through the same AddTokens call Create makes for it, on an authenticator
  // made from a file holding one other token: setting the variable for every
  // input would cost memory without bound (glibc's setenv keeps each value).
  server::AuthOptions options;
  options.tokens_file = (fuzz::Scratch().path() / "tokens.txt").string();
  if (!fuzz::WriteFile(options.tokens_file, in_variable ? fuzz::kBaseTokens : text)) {
    fuzz::Fail("cannot write the tokens file");
  }
  absl::StatusOr<std::unique_ptr<server::TokenAuthenticator>> auth =
      server::TokenAuthenticator::Create(options);
  if (!auth.ok()) {
    Require(!in_variable,
            absl::StrCat("the base tokens file was refused: ", auth.status().ToString()));
    return 0;
  }
  if (in_variable && !(*auth)->AddTokens(text, "$WAVEPOOL_TOKENS", true).ok()) return 0;
  Require((*auth)->size() > 0, "Create accepted a text without tokens");

  const std::string first = fuzz::FirstToken(text, in_variable);
  if (!first.empty()) {
    const absl::Status known = fuzz::CheckWith(**auth, "Bearer " + first, "", false);
    Require(known.ok(), absl::StrCat("the first configured token was refused: ", known.ToString()));
  }

  const absl::Status s = fuzz::CheckWith(**auth, header, model, (data[0] & 2) != 0);
  // A token of 16+ characters without blanks (the messages' own words are
  // shorter), that is not part of the model name the message may quote.
  const std::string token = header.size() > 7 ? header.substr(7) : "";
  if (!s.ok() && token.size() >= 16 && token.find_first_of(" \t\r\n\f\v") == std::string::npos) {
    Require(model.find(token) != std::string::npos ||
                std::string(s.message()).find(token) == std::string::npos,
            "Check's message contains the bearer token");
  }
  return 0;
}
