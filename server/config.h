// ServerOptions from the JSON config file (proto/wavepool/v1/server_config.proto)
// and command-line overrides, validated; and back to JSON for --check-config.
// docs/config.md lists every key with its default, range and flag.
#pragma once

#include <string>

#include "absl/status/statusor.h"
#include "server/wavepool_server.h"
#include "wavepool/v1/server_config.pb.h"

namespace wavepool::server {

// Reads `config_path_or_empty` (empty: no file, every default) and validates
// the result. Errors name the file and the key, with the accepted range:
//   "wavepool.json: batching.max_batch_size (--batch-max-size) must be 1..1024, got 0".
// FAILED_PRECONDITION: the file cannot be read. INVALID_ARGUMENT: bad JSON, an
// unknown field, a value out of range.
absl::StatusOr<ServerOptions> LoadServerOptions(const std::string& config_path_or_empty);

// The same, with `overrides` (the fields that were given as flags) merged over
// the file: a field set in `overrides` wins; repeated fields (models) append.
absl::StatusOr<ServerOptions> LoadServerOptions(const std::string& config_path_or_empty,
                                                const v1::ServerConfig& overrides);

// JSON text -> ServerConfig; unknown fields are an error. `source` (a file
// name) prefixes error messages.
absl::StatusOr<v1::ServerConfig> ParseServerConfig(const std::string& json,
                                                   const std::string& source);

// Fills ServerOptions from `config` (absent fields keep ServerOptions'
// defaults) and validates every value. `source` prefixes error messages.
absl::StatusOr<ServerOptions> ServerOptionsFromConfig(const v1::ServerConfig& config,
                                                      const std::string& source);

// The reverse: every field set, defaults included, so the result documents
// the effective configuration. ServerOptionsFromConfig(ServerConfigFromOptions(o))
// gives back `o` for any valid `o`.
v1::ServerConfig ServerConfigFromOptions(const ServerOptions& options);

// The effective configuration as indented JSON: every key, snake_case, in
// docs/config.md's order (what `wavepool-server --check-config` prints);
// loadable as a config file.
std::string EffectiveConfigJson(const ServerOptions& options);

}  // namespace wavepool::server
