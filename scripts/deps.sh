#!/usr/bin/env bash
# Installs everything Wavepool needs to build and test, from Debian bookworm
# packages only. Used by the README's commands, by .ci/run and by
# deploy/Dockerfile, so all three build on the same packages. Extra package
# names given as arguments are installed too, if missing (scripts/fuzz.sh,
# scripts/test-tools.sh).
set -euo pipefail

BUILD_PACKAGES=(
  build-essential cmake ninja-build pkg-config git
  protobuf-compiler protobuf-compiler-grpc libprotobuf-dev libgrpc++-dev
  libabsl-dev libfftw3-dev libsndfile1-dev libsoxr-dev libopenblas-dev
  libdnnl-dev ocl-icd-opencl-dev
  libgtest-dev libgmock-dev libbenchmark-dev
)
# ocl-icd-opencl-dev: only Recommended by libdnnl-dev, but oneDNN's CMake
# config (find_package(dnnl)) requires OpenCL's headers and library: Debian
# builds oneDNN with its OpenCL GPU runtime (we use only the CPU engine).
BUILD_PACKAGES+=("$@")

missing=()
for p in "${BUILD_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "deps: all ${#BUILD_PACKAGES[@]} packages present"
  exit 0
fi
echo "deps: installing ${missing[*]}"
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
$SUDO apt-get update -q
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
