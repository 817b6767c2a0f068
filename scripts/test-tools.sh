#!/usr/bin/env bash
# Tools the tests need beyond the build: buf (npm package @bufbuild/buf), a
# reflection-driven gRPC client like grpcurl (which is not packaged for Debian
# bookworm), for the test that runs the README's grpcurl calls. Installed
# locally under .tools/ (git-ignored). Node.js/npm come from Debian if absent.
set -euo pipefail
cd "$(dirname "$0")/.."
# openssl (test certificates), yamllint and PyYAML (tests/deploy_test.sh) (kubectl is not packaged for
# bookworm; that test renders with it where present and skips otherwise).
TEST_PACKAGES=(yamllint python3-yaml openssl)
missing=()
for p in "${TEST_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -q
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
fi
BUF_VERSION=1.75.0
if [ -x .tools/node_modules/.bin/buf ] && .tools/node_modules/.bin/buf --version | grep -qx "$BUF_VERSION"; then
  echo "test-tools: buf $BUF_VERSION present"
  exit 0
fi
if ! command -v npm >/dev/null; then
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -q
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends nodejs npm
fi
mkdir -p .tools
npm install --prefix .tools --no-audit --no-fund --loglevel=error "@bufbuild/buf@${BUF_VERSION}"
.tools/node_modules/.bin/buf --version
