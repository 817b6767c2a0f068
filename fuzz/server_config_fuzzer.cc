// The server's config file (wavepool-server --config, docs/config.md): JSON text
// -> v1::ServerConfig -> validated ServerOptions, with command-line overrides
// merged over the file as LoadServerOptions does.
//
// Input: the file's text, then optionally a NUL byte and a second JSON document
// standing for the flags given (parsed the same way, merged over the file).
// For a config that validates, both documented round trips must hold:
// ServerOptionsFromConfig(ServerConfigFromOptions(o)) gives back o, and the
// --check-config text (EffectiveConfigJson) loads back as the same options.
#include "absl/strings/str_cat.h"
#include "fuzz/fuzz_util.h"
#include "server/config.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace wavepool;
  using fuzz::Require;
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  const size_t nul = input.find('\0');
  absl::StatusOr<v1::ServerConfig> config =
      server::ParseServerConfig(std::string(input.substr(0, nul)), "fuzz.json");
  if (!config.ok()) return 0;
  if (nul != std::string_view::npos) {
    absl::StatusOr<v1::ServerConfig> flags =
        server::ParseServerConfig(std::string(input.substr(nul + 1)), "flags");
    if (flags.ok()) config->MergeFrom(*flags);
  }
  absl::StatusOr<server::ServerOptions> options =
      server::ServerOptionsFromConfig(*config, "fuzz.json");
  if (!options.ok()) return 0;
  const std::string effective = server::EffectiveConfigJson(*options);

  absl::StatusOr<server::ServerOptions> again =
      server::ServerOptionsFromConfig(server::ServerConfigFromOptions(*options), "again");
  Require(again.ok(), absl::StrCat("ServerConfigFromOptions of valid options does not validate: ",
                                   again.status().ToString()));
  Require(server::EffectiveConfigJson(*again) == effective,
          "ServerOptionsFromConfig(ServerConfigFromOptions(o)) differs from o");

  absl::StatusOr<v1::ServerConfig> printed = server::ParseServerConfig(effective, "effective");
  Require(printed.ok(), absl::StrCat("the --check-config output does not parse: ",
                                     printed.status().ToString(), "\n", effective));
  absl::StatusOr<server::ServerOptions> reloaded =
      server::ServerOptionsFromConfig(*printed, "effective");
  Require(reloaded.ok(), absl::StrCat("the --check-config output does not validate: ",
                                      reloaded.status().ToString(), "\n", effective));
  Require(server::EffectiveConfigJson(*reloaded) == effective,
          absl::StrCat("the --check-config output loads back differently:\n", effective, "\n",
                       server::EffectiveConfigJson(*reloaded)));
  return 0;
}
