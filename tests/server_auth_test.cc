// Bearer tokens: the file and environment formats, every parse error with its
// line, Check's UNAUTHENTICATED vs PERMISSION_DENIED, and the digest lookup
// finding exactly the right token among near-identical ones.
#include "server/auth.h"

#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <list>
#include <random>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "server/wavepool_server.h"

namespace wavepool::server {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

// Client metadata as the server sees it: string_refs into this object's own
// strings (the map is rebuilt on each map() call, so copies stay valid).
class Metadata {
 public:
  Metadata& Add(std::string key, std::string value) {
    storage_.emplace_back(std::move(key), std::move(value));
    return *this;
  }
  const TokenAuthenticator::Metadata& map() const {
    map_.clear();
    for (const auto& [k, v] : storage_) map_.emplace(grpc::string_ref(k), grpc::string_ref(v));
    return map_;
  }

 private:
  std::list<std::pair<std::string, std::string>> storage_;
  mutable TokenAuthenticator::Metadata map_;
};

Metadata Bearer(const std::string& token) {
  Metadata m;
  m.Add("authorization", "Bearer " + token);
  return m;
}

std::string WriteTemp(const std::string& text) {
  char path[] = "/tmp/wavepool_tokens_XXXXXX";
  const int fd = mkstemp(path);
  EXPECT_GE(fd, 0);
  EXPECT_EQ(write(fd, text.data(), text.size()), static_cast<ssize_t>(text.size()));
  close(fd);
  return path;
}

std::unique_ptr<TokenAuthenticator> FromText(const std::string& text) {
  auto auth = std::make_unique<TokenAuthenticator>();
  const absl::Status s = auth->AddTokens(text, "tokens.txt", false);
  EXPECT_TRUE(s.ok()) << s;
  return auth;
}

constexpr char kTokens[] =
    "# Wavepool tokens\n"
    "\n"
    "   everything-token-0123456789\n"
    "digits-only-0123456789 model:digits   # the app\n"
    "two-models-0123456789\tmodel:digits model:ecg-beats\r\n"
    "ops-admin-0123456789 admin\n"
    "root-0123456789 admin *\n";

TEST(TokenAuthenticator, ParsesFileWithCommentsBlankLinesAndScopes) {
  const std::string path = WriteTemp(kTokens);
  AuthOptions options;
  options.tokens_file = path;
  absl::StatusOr<std::unique_ptr<TokenAuthenticator>> auth = TokenAuthenticator::Create(options);
  std::remove(path.c_str());
  ASSERT_TRUE(auth.ok()) << auth.status();
  EXPECT_EQ((*auth)->size(), 5u);
  // No scope = every model; a trailing comment is not a scope; \r is whitespace.
  EXPECT_TRUE((*auth)->Check(Bearer("everything-token-0123456789").map(), "any", false).ok());
  EXPECT_TRUE((*auth)->Check(Bearer("digits-only-0123456789").map(), "digits", false).ok());
  EXPECT_TRUE((*auth)->Check(Bearer("two-models-0123456789").map(), "ecg-beats", false).ok());
}

TEST(TokenAuthenticator, EnvironmentEntriesMaySplitAtSemicolons) {
  setenv("WAVEPOOL_TEST_TOKENS", "env-a-0123456789 model:digits; env-b-0123456789\n env-c-0123456789 admin", 1);
  AuthOptions options;
  options.tokens_env = "WAVEPOOL_TEST_TOKENS";
  absl::StatusOr<std::unique_ptr<TokenAuthenticator>> auth = TokenAuthenticator::Create(options);
  ASSERT_TRUE(auth.ok()) << auth.status();
  EXPECT_EQ((*auth)->size(), 3u);
  EXPECT_TRUE((*auth)->Check(Bearer("env-a-0123456789").map(), "digits", false).ok());
  EXPECT_EQ((*auth)->Check(Bearer("env-a-0123456789").map(), "ecg-beats", false).code(),
            absl::StatusCode::kPermissionDenied);
  EXPECT_TRUE((*auth)->Check(Bearer("env-b-0123456789").map(), "ecg-beats", false).ok());
  EXPECT_TRUE((*auth)->Check(Bearer("env-c-0123456789").map(), "", true).ok());
}

TEST(TokenAuthenticator, FileAndEnvironmentTogether) {
  const std::string path = WriteTemp("file-token-0123456789\n");
  setenv("WAVEPOOL_TEST_TOKENS2", "env-token-0123456789", 1);
  AuthOptions options;
  options.tokens_file = path;
  options.tokens_env = "WAVEPOOL_TEST_TOKENS2";
  absl::StatusOr<std::unique_ptr<TokenAuthenticator>> auth = TokenAuthenticator::Create(options);
  std::remove(path.c_str());
  ASSERT_TRUE(auth.ok()) << auth.status();
  EXPECT_EQ((*auth)->size(), 2u);
}

TEST(TokenAuthenticator, ErrorsNameTheSourceAndLine) {
  struct Case {
    const char* text;
    const char* message;
  };
  const Case cases[] = {
      {"good-0123456789\nbad-0123456789 modle:x\n", "tokens.txt line 2: unknown scope \"modle:x\""},
      {"a-0123456789 model:\n", "tokens.txt line 1: unknown scope \"model:\""},
      {"# c\n\nadmin\n", "tokens.txt line 3: starts with the scope \"admin\""},
      {"x-0123456789\ny-0123456789\nx-0123456789 admin\n", "tokens.txt line 3: this token is already"},
  };
  for (const Case& c : cases) {
    TokenAuthenticator auth;
    const absl::Status s = auth.AddTokens(c.text, "tokens.txt", false);
    EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << c.text;
    EXPECT_THAT(std::string(s.message()), HasSubstr(c.message)) << c.text;
  }
  TokenAuthenticator env;
  const absl::Status s = env.AddTokens("a-0123456789; b-0123456789 root", "$T", true);
  EXPECT_THAT(std::string(s.message()), HasSubstr("$T entry 2: unknown scope \"root\""));
}

TEST(TokenAuthenticator, AMistakenSecondTokenIsNotEchoed) {
  TokenAuthenticator auth;
  const absl::Status s =
      auth.AddTokens("first-token-0123456789 second-token-0123456789\n", "tokens.txt", false);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(s.message()), HasSubstr("field 2"));
  EXPECT_THAT(std::string(s.message()), Not(HasSubstr("second-token")));
  EXPECT_THAT(std::string(s.message()), Not(HasSubstr("first-token")));
}

TEST(TokenAuthenticator, CreateErrors) {
  AuthOptions none;
  EXPECT_EQ(TokenAuthenticator::Create(none).status().code(), absl::StatusCode::kInvalidArgument);

  AuthOptions missing;
  missing.tokens_file = "/nonexistent/tokens.txt";
  absl::Status s = TokenAuthenticator::Create(missing).status();
  EXPECT_EQ(s.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(std::string(s.message()), HasSubstr("/nonexistent/tokens.txt"));

  const std::string path = WriteTemp("# only a comment\n\n");
  AuthOptions empty;
  empty.tokens_file = path;
  s = TokenAuthenticator::Create(empty).status();
  std::remove(path.c_str());
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(s.message()), HasSubstr("no bearer tokens in " + path));

  unsetenv("WAVEPOOL_TEST_UNSET");
  AuthOptions unset;
  unset.tokens_env = "WAVEPOOL_TEST_UNSET";
  s = TokenAuthenticator::Create(unset).status();
  EXPECT_EQ(s.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(std::string(s.message()), HasSubstr("WAVEPOOL_TEST_UNSET, which is not set"));
}

TEST(TokenAuthenticator, MissingOrMalformedCredentialsAreUnauthenticated) {
  auto auth = FromText(kTokens);
  const Metadata cases[] = {
      Metadata(),
      Metadata().Add("x-other", "Bearer everything-token-0123456789"),
      Metadata().Add("authorization", "Basic dXNlcjpwYXNz"),
      Metadata().Add("authorization", "Bearer"),
      Metadata().Add("authorization", "Bearer    "),
      Metadata().Add("authorization", "everything-token-0123456789"),
      Metadata()
          .Add("authorization", "Bearer everything-token-0123456789")
          .Add("authorization", "Bearer everything-token-0123456789"),
  };
  for (const Metadata& m : cases) {
    const absl::Status s = auth->Check(m.map(), "digits", false);
    EXPECT_EQ(s.code(), absl::StatusCode::kUnauthenticated) << s;
    EXPECT_THAT(std::string(s.message()), HasSubstr("send metadata authorization: Bearer <token>"));
  }
}

TEST(TokenAuthenticator, UnknownTokenIsUnauthenticatedAndNotEchoed) {
  auto auth = FromText(kTokens);
  const absl::Status s = auth->Check(Bearer("guess-0123456789").map(), "", false);
  EXPECT_EQ(s.code(), absl::StatusCode::kUnauthenticated);
  EXPECT_THAT(std::string(s.message()), Not(HasSubstr("guess")));
}

TEST(TokenAuthenticator, KnownTokenWithoutScopeIsPermissionDenied) {
  auto auth = FromText(kTokens);
  absl::Status s = auth->Check(Bearer("digits-only-0123456789").map(), "ecg-beats", false);
  EXPECT_EQ(s.code(), absl::StatusCode::kPermissionDenied);
  EXPECT_THAT(std::string(s.message()), HasSubstr("model:ecg-beats"));
  s = auth->Check(Bearer("everything-token-0123456789").map(), "", true);
  EXPECT_EQ(s.code(), absl::StatusCode::kPermissionDenied);
  EXPECT_THAT(std::string(s.message()), HasSubstr("scope admin"));
  // admin alone does not open the models.
  s = auth->Check(Bearer("ops-admin-0123456789").map(), "digits", false);
  EXPECT_EQ(s.code(), absl::StatusCode::kPermissionDenied);
}

TEST(TokenAuthenticator, GrantedCalls) {
  auto auth = FromText(kTokens);
  // Model-less calls (ListModels, health) take any known token.
  for (const char* t : {"everything-token-0123456789", "digits-only-0123456789",
                        "ops-admin-0123456789"}) {
    EXPECT_TRUE(auth->Check(Bearer(t).map(), "", false).ok()) << t;
  }
  EXPECT_TRUE(auth->Check(Bearer("ops-admin-0123456789").map(), "", true).ok());
  EXPECT_TRUE(auth->Check(Bearer("root-0123456789").map(), "digits", true).ok());
  // The scheme is case-insensitive; surrounding blanks are not part of the token.
  Metadata m;
  m.Add("authorization", "bEaReR   root-0123456789 ");
  EXPECT_TRUE(auth->Check(m.map(), "digits", false).ok());
}

// The lookup compares digests of every token without early exit; here it must
// still pick exactly the right one among tokens that share prefixes, differ in
// the last byte, or are prefixes of one another (different lengths).
TEST(TokenAuthenticator, FindsExactlyTheRightTokenAmongNearTwins) {
  std::mt19937 rng(20261127);
  std::string text;
  std::vector<std::string> tokens;
  const std::string base = "tok-abcdefghijklmnopqrstuvwxyz";
  for (int i = 0; i < 40; ++i) {
    std::string t = base.substr(0, 10 + i % 20);  // prefixes of each other
    t += static_cast<char>('A' + i % 26);           // last byte differs
    t += std::to_string(i);
    tokens.push_back(t);
    text += t + " model:m" + std::to_string(i) + "\n";
  }
  auto auth = FromText(text);
  ASSERT_EQ(auth->size(), tokens.size());
  std::vector<int> order(tokens.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = static_cast<int>(i);
  std::shuffle(order.begin(), order.end(), rng);
  for (int i : order) {
    // Each token opens its own model and no other's.
    EXPECT_TRUE(auth->Check(Bearer(tokens[i]).map(), "m" + std::to_string(i), false).ok()) << i;
    const int other = (i + 1) % static_cast<int>(tokens.size());
    EXPECT_EQ(auth->Check(Bearer(tokens[i]).map(), "m" + std::to_string(other), false).code(),
              absl::StatusCode::kPermissionDenied)
        << i;
    // One byte off, one byte short, one byte long: unknown.
    std::string off = tokens[i];
    off.back() ^= 1;
    for (const std::string& bad : {off, tokens[i].substr(0, tokens[i].size() - 1), tokens[i] + "x"}) {
      EXPECT_EQ(auth->Check(Bearer(bad).map(), "", false).code(),
                absl::StatusCode::kUnauthenticated)
          << bad;
    }
  }
}

}  // namespace
}  // namespace wavepool::server
