#!/usr/bin/env bash
# Configures and builds into build/ (Release, no -march flags: runs on any x86-64).
# BUILD_DIR and extra CMake arguments can be given: scripts/build.sh -DWAVEPOOL_SANITIZE=ON
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD_DIR=${BUILD_DIR:-build}
cmake -S . -B "$BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE=Release "$@"
cmake --build "$BUILD_DIR" -j "$(nproc)"
