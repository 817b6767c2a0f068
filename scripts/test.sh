#!/usr/bin/env bash
# The test command: installs what is needed, builds, runs the whole suite
# (ctest), then the same suite under AddressSanitizer + UndefinedBehaviorSanitizer,
# then the self-synchronising server parts under ThreadSanitizer, then every
# fuzz target for WAVEPOOL_FUZZ_SECONDS (default 10) each (scripts/fuzz.sh).
# Tests that need ../shared/data are labelled shared_data and skip when it is absent.
# WAVEPOOL_SKIP_SANITIZE=1 skips the sanitizer and fuzz passes (for quick local runs).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/deps.sh
bash scripts/test-tools.sh
bash scripts/build.sh
ctest --test-dir build --output-on-failure -j "$(nproc)"
if [ "${WAVEPOOL_SKIP_SANITIZE:-0}" != 1 ]; then
  BUILD_DIR=build-sanitize bash scripts/build.sh -DWAVEPOOL_SANITIZE=ON -DWAVEPOOL_BUILD_BENCHMARKS=OFF
  ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 \
    ctest --test-dir build-sanitize --output-on-failure -j "$(nproc)"
  # ThreadSanitizer over the batcher, metrics and HTTP endpoint (scripts/tsan.sh
  # says why the gRPC paths are not in it).
  bash scripts/tsan.sh
  # A brief libFuzzer run of every parser and entry point from the committed
  # seeds (clang-14, ASan + UBSan; docs/reliability.md has the longer runs).
  bash scripts/fuzz.sh "${WAVEPOOL_FUZZ_SECONDS:-10}"
fi
