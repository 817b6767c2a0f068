#!/usr/bin/env bash
# TLS, mutual TLS and bearer tokens end to end: wavepool-server started with
# --tls-* and --auth-tokens-file, the wavepool CLI with and without --tls-ca,
# --tls-cert/--tls-key and --token / $WAVEPOOL_TOKEN. Certificates are made
# fresh by make_test_certs.sh (exit 77 = skipped when openssl is missing).
# Usage: cli_security_test.sh SERVER_BIN CLI_BIN SOURCE_DIR
set -euo pipefail
SERVER_BIN=$1 CLI=$2 SRC=$3
WORK=$(mktemp -d)
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

bash "$SRC/tests/make_test_certs.sh" "$WORK/certs" || exit $?
C=$WORK/certs
GOOD=good-token-$RANDOM$RANDOM$RANDOM
ONLY=digits-token-$RANDOM$RANDOM$RANDOM
cat >"$WORK/tokens.txt" <<EOF
# test tokens
$GOOD *
$ONLY model:untrained-digits
EOF

# Starts a server with the given extra flags; sets ADDR and PIDS.
start() {
  local log=$1; shift
  "$SERVER_BIN" --address 127.0.0.1:0 --model-repository "$SRC/models" "$@" >"$log" 2>&1 &
  PIDS+=($!)
  for _ in $(seq 1 100); do grep -q "ready on" "$log" && break; sleep 0.1; done
  local port
  port=$(sed -n 's/.*(port \([0-9]*\)).*/\1/p' "$log")
  [ -n "$port" ] || { cat "$log"; fail "server did not report ready"; }
  ADDR=127.0.0.1:$port
}

# expect_fail CODE_TEXT CMD...: the command fails and says CODE_TEXT on stderr.
expect_fail() {
  local what=$1; shift
  if "$@" >"$WORK/out.txt" 2>"$WORK/err.txt"; then fail "should fail ($what): $*"; fi
  grep -q "$what" "$WORK/err.txt" || { cat "$WORK/err.txt"; fail "expected $what from: $*"; }
}

# Config errors: exit 2 with the key named.
for args in "--tls-key $C/server.key" "--tls-cert $C/server.pem" \
            "--tls-cert $C/missing.pem --tls-key $C/server.key" \
            "--auth-tokens-file $WORK/missing.txt"; do
  # shellcheck disable=SC2086
  set +e; "$SERVER_BIN" --address 127.0.0.1:0 --model-repository "$SRC/models" $args \
    >"$WORK/bad.log" 2>&1; rc=$?; set -e
  [ "$rc" = 2 ] || { cat "$WORK/bad.log"; fail "exit $rc (want 2) for $args"; }
  grep -q "tls\.\|auth\." "$WORK/bad.log" || { cat "$WORK/bad.log"; fail "message for $args"; }
done

# --check-config validates the TLS files and tokens and prints the JSON.
"$SERVER_BIN" --check-config --tls-cert "$C/server.pem" --tls-key "$C/server.key" \
  --auth-tokens-file "$WORK/tokens.txt" >"$WORK/check.json" || fail "--check-config"
grep -q "\"cert_file\": \"$C/server.pem\"" "$WORK/check.json" || fail "--check-config output"
grep -q "$GOOD" "$WORK/check.json" && fail "--check-config printed a token"

# TLS + tokens.
start "$WORK/tls.log" --tls-cert "$C/server.pem" --tls-key "$C/server.key" \
  --auth-tokens-file "$WORK/tokens.txt"
"$CLI" models --server "$ADDR" --tls-ca "$C/ca.pem" --token "$GOOD" >"$WORK/models.txt" \
  || fail "models with TLS and token"
grep -q "^untrained-digits " "$WORK/models.txt" || fail "models list over TLS"
WAVEPOOL_TOKEN=$GOOD "$CLI" models --server "$ADDR" --tls-ca "$C/ca.pem" >/dev/null \
  || fail "token from \$WAVEPOOL_TOKEN"
WAVEPOOL_TOKEN=$GOOD "$CLI" health --server "$ADDR" --tls-ca "$C/ca.pem" | grep -qx SERVING \
  || fail "health over TLS"
# Dials 127.0.0.1 and verifies the DNS name: the --tls-server-name path. (Not
# --server localhost: gRPC's c-ares resolver leaks 10 bytes there, which fails
# the AddressSanitizer pass of scripts/test.sh.)
"$CLI" models --server "$ADDR" --tls-ca "$C/ca.pem" --tls-server-name localhost \
  --token "$GOOD" >/dev/null || fail "--tls-server-name"
"$CLI" stream "$SRC/tests/data/demo_digits.wav" --model untrained-digits --server "$ADDR" \
  --tls-ca "$C/ca.pem" --token "$ONLY" >"$WORK/stream.txt" || fail "stream with a model token"
grep -q "^summary: 36 windows" "$WORK/stream.txt" || fail "stream summary over TLS"
"$CLI" classify "$SRC/tests/data/demo_digits.wav" --model untrained-digits --server "$ADDR" \
  --tls-ca "$C/ca.pem" --token "$ONLY" >/dev/null || fail "classify with a model token"

expect_fail UNAUTHENTICATED "$CLI" models --server "$ADDR" --tls-ca "$C/ca.pem"
expect_fail "authorization: Bearer" "$CLI" models --server "$ADDR" --tls-ca "$C/ca.pem"
expect_fail UNAUTHENTICATED "$CLI" models --server "$ADDR" --tls-ca "$C/ca.pem" --token wrong-token
expect_fail PERMISSION_DENIED "$CLI" describe digits --server "$ADDR" --tls-ca "$C/ca.pem" \
  --token "$ONLY"
expect_fail PERMISSION_DENIED "$CLI" classify "$SRC/tests/data/demo_digits.wav" --model digits \
  --server "$ADDR" --tls-ca "$C/ca.pem" --token "$ONLY"
expect_fail UNAVAILABLE "$CLI" models --server "$ADDR" --token "$GOOD" --timeout-s 10
expect_fail UNAVAILABLE "$CLI" models --server "$ADDR" --tls-ca "$C/other-ca.pem" \
  --token "$GOOD" --timeout-s 10
expect_fail UNAVAILABLE "$CLI" models --server "$ADDR" --tls-ca "$C/ca.pem" \
  --tls-server-name wrong.example.com --token "$GOOD" --timeout-s 10
expect_fail "tls-cert and --tls-key" "$CLI" models --server "$ADDR" --tls-cert "$C/client.pem"
expect_fail "cannot read" "$CLI" models --server "$ADDR" --tls-ca "$WORK/missing.pem"
grep -q "$GOOD\|$ONLY" "$WORK/tls.log" && fail "the server log shows a token"

# Mutual TLS: a client certificate signed by the client CA is required.
start "$WORK/mtls.log" --tls-cert "$C/server.pem" --tls-key "$C/server.key" \
  --tls-client-ca "$C/ca.pem"
"$CLI" models --server "$ADDR" --tls-ca "$C/ca.pem" --tls-cert "$C/client.pem" \
  --tls-key "$C/client.key" >/dev/null || fail "mutual TLS with a client certificate"
expect_fail UNAVAILABLE "$CLI" models --server "$ADDR" --tls-ca "$C/ca.pem" --timeout-s 10
expect_fail UNAVAILABLE "$CLI" models --server "$ADDR" --tls-ca "$C/ca.pem" \
  --tls-cert "$C/other-client.pem" --tls-key "$C/other-client.key" --timeout-s 10

for p in "${PIDS[@]}"; do kill -TERM "$p"; wait "$p" || fail "server exit code $? after SIGTERM"; done
PIDS=()
echo "cli_security_test: all checks passed"
