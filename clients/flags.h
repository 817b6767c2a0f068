// Flags shared by the CLI's subcommands (defined in flags.cc).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "absl/flags/declare.h"

ABSL_DECLARE_FLAG(std::string, server);
// Transport security and authentication of every call (MakeChannel; docs/security.md).
ABSL_DECLARE_FLAG(std::string, tls_ca);
ABSL_DECLARE_FLAG(std::string, tls_cert);
ABSL_DECLARE_FLAG(std::string, tls_key);
ABSL_DECLARE_FLAG(std::string, tls_server_name);
ABSL_DECLARE_FLAG(std::string, token);
ABSL_DECLARE_FLAG(double, timeout_s);
ABSL_DECLARE_FLAG(std::string, model);
ABSL_DECLARE_FLAG(int64_t, version);
ABSL_DECLARE_FLAG(bool, realtime);
ABSL_DECLARE_FLAG(double, chunk_ms);
ABSL_DECLARE_FLAG(uint32_t, top_k);
ABSL_DECLARE_FLAG(bool, json);
ABSL_DECLARE_FLAG(std::vector<std::string>, override);
ABSL_DECLARE_FLAG(std::string, model_dir);
ABSL_DECLARE_FLAG(std::string, service);
ABSL_DECLARE_FLAG(std::string, spec);
ABSL_DECLARE_FLAG(std::string, out);
ABSL_DECLARE_FLAG(uint64_t, seed);
ABSL_DECLARE_FLAG(std::string, data);
ABSL_DECLARE_FLAG(std::string, split);
ABSL_DECLARE_FLAG(int, epochs);
ABSL_DECLARE_FLAG(int, batch_size);
ABSL_DECLARE_FLAG(double, lr);
ABSL_DECLARE_FLAG(double, weight_decay);
ABSL_DECLARE_FLAG(std::string, optimizer);
ABSL_DECLARE_FLAG(float, label_smoothing);
ABSL_DECLARE_FLAG(int, threads);
ABSL_DECLARE_FLAG(bool, no_augment);
ABSL_DECLARE_FLAG(int, eval_every);
ABSL_DECLARE_FLAG(std::string, confusion_svg);
ABSL_DECLARE_FLAG(bool, continuous);
ABSL_DECLARE_FLAG(int, digits_per_stream);
ABSL_DECLARE_FLAG(bool, verbose);
ABSL_DECLARE_FLAG(bool, events_only);
ABSL_DECLARE_FLAG(bool, shift_consistency);
ABSL_DECLARE_FLAG(int, max_shift);
ABSL_DECLARE_FLAG(int, shift_step);
ABSL_DECLARE_FLAG(std::string, tta_shifts);
ABSL_DECLARE_FLAG(std::string, tta_pool);
ABSL_DECLARE_FLAG(int, ecg_n_per_epoch);
ABSL_DECLARE_FLAG(double, ecg_morph_dropout);
