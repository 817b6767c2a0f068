#!/usr/bin/env bash
# The README's grpcurl calls, made with `buf curl` (the same kind of
# reflection-driven client; grpcurl is not packaged for Debian bookworm):
# reflection listing, health, ListModels, GetModel, Classify, StreamClassify
# from JSON, and an error. Usage: grpcurl_test.sh SERVER_BIN SOURCE_DIR
set -euo pipefail
SERVER_BIN=$1 SRC=$2
BUF=${BUF:-$SRC/.tools/node_modules/.bin/buf}
[ -x "$BUF" ] || { echo "FAIL: buf not found at $BUF; run scripts/test-tools.sh" >&2; exit 1; }
WORK=$(mktemp -d)
cleanup() { [ -n "${PID:-}" ] && kill -TERM "$PID" 2>/dev/null; wait 2>/dev/null; rm -rf "$WORK"; }
trap cleanup EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

"$SERVER_BIN" --address 127.0.0.1:0 --model-repository "$SRC/models" >"$WORK/server.log" 2>&1 &
PID=$!
for _ in $(seq 1 100); do grep -q "ready on" "$WORK/server.log" && break; sleep 0.1; done
PORT=$(sed -n 's/.*(port \([0-9]*\)).*/\1/p' "$WORK/server.log")
[ -n "$PORT" ] || { cat "$WORK/server.log"; fail "server did not report ready"; }
URL=http://127.0.0.1:$PORT
CURL=("$BUF" curl --protocol grpc --http2-prior-knowledge)

# grpcurl -plaintext localhost:50051 list
"${CURL[@]}" --list-services "$URL" >"$WORK/services.txt"
grep -qx "wavepool.v1.Classifier" "$WORK/services.txt" || { cat "$WORK/services.txt"; fail "list"; }
grep -qx "grpc.health.v1.Health" "$WORK/services.txt" || fail "health not listed"

# grpcurl -plaintext -d '{"service":"wavepool.v1.Classifier/untrained-digits"}' localhost:50051 grpc.health.v1.Health/Check
"${CURL[@]}" -d '{"service":"wavepool.v1.Classifier/untrained-digits"}' \
  "$URL/grpc.health.v1.Health/Check" | grep -q '"SERVING"' || fail "health check"

# grpcurl -plaintext localhost:50051 wavepool.v1.Classifier/ListModels
"${CURL[@]}" "$URL/wavepool.v1.Classifier/ListModels" | grep -q '"untrained-digits"' || fail "ListModels"

# grpcurl -plaintext -d '{"model":"untrained-digits"}' localhost:50051 wavepool.v1.Classifier/GetModel
"${CURL[@]}" -d '{"model":"untrained-digits"}' "$URL/wavepool.v1.Classifier/GetModel" >"$WORK/get.json"
grep -q '"receptiveFieldMs"' "$WORK/get.json" || fail "GetModel has no description"

# Classify 1.25 s of a 440 Hz tone sent as JSON values: window 1 s, hop 0.25 s ->
# windows 0 and 1 complete (2000 j + 8000 <= 10000), no tail.
VALUES=$(awk 'BEGIN { for (i = 0; i < 10000; i++) printf "%s%.5f", (i ? "," : ""), 0.3 * sin(2 * 3.14159265 * 440 * i / 8000) }')
printf '{"config":{"model":"untrained-digits","sampleRateHz":8000,"topK":3},"samples":{"values":[%s]}}' "$VALUES" >"$WORK/classify.json"
"${CURL[@]}" -d @"$WORK/classify.json" "$URL/wavepool.v1.Classifier/Classify" >"$WORK/classify.out"
[ "$(grep -c '"startSample"' "$WORK/classify.out")" = 1 ] || { cat "$WORK/classify.out"; fail "Classify windows"; }
grep -q '"windows": "2"' "$WORK/classify.out" || fail "Classify summary"

# grpcurl -plaintext -d @ localhost:50051 wavepool.v1.Classifier/StreamClassify (config, then samples)
{
  echo '{"config":{"model":"untrained-digits","sampleRateHz":8000}}'
  printf '{"samples":{"values":[%s]}}\n' "$VALUES"
} >"$WORK/stream.json"
"${CURL[@]}" -d @"$WORK/stream.json" "$URL/wavepool.v1.Classifier/StreamClassify" >"$WORK/stream.out"
[ "$(grep -c '"window"' "$WORK/stream.out")" = 2 ] || { cat "$WORK/stream.out"; fail "StreamClassify windows"; }
grep -q '"summary"' "$WORK/stream.out" || fail "StreamClassify summary"

# An unknown model is NOT_FOUND, with the models that exist in the message.
if "${CURL[@]}" -d '{"config":{"model":"nope","sampleRateHz":8000}}' \
    "$URL/wavepool.v1.Classifier/StreamClassify" >"$WORK/err.out" 2>&1; then
  fail "unknown model must fail"
fi
grep -q "not_found" "$WORK/err.out" || { cat "$WORK/err.out"; fail "NOT_FOUND expected"; }
echo "grpcurl_test: all checks passed"
