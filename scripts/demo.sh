#!/usr/bin/env bash
# The main job: install what is needed, build, start the server with the shipped
# models, stream the demo signal through it at real-time pace, print the
# results, stop the server. WAVEPOOL_PORT (default 50051) picks the port;
# WAVEPOOL_DEMO_FAST=1 streams as fast as possible instead of in real time.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/deps.sh
bash scripts/build.sh
PORT=${WAVEPOOL_PORT:-50051}
LOG=$(mktemp)
./build/server/wavepool-server --address "127.0.0.1:${PORT}" --model-repository ./models >"$LOG" 2>&1 &
SERVER=$!
trap 'kill -TERM $SERVER 2>/dev/null; wait $SERVER 2>/dev/null; rm -f "$LOG"' EXIT
for _ in $(seq 1 100); do
  grep -q "ready on" "$LOG" && break
  kill -0 $SERVER 2>/dev/null || { cat "$LOG"; echo "demo: the server did not start" >&2; exit 1; }
  sleep 0.1
done
cat "$LOG"
CLI=./build/clients/wavepool
echo
echo "== wavepool models"
$CLI models --server "127.0.0.1:${PORT}"
MODEL=${WAVEPOOL_DEMO_MODEL:-digits}
echo
echo "== wavepool describe ${MODEL}"
$CLI describe "$MODEL" --server "127.0.0.1:${PORT}"
REALTIME=--realtime
[ "${WAVEPOOL_DEMO_FAST:-0}" = 1 ] && REALTIME=
echo
echo "== wavepool stream tests/data/demo_digits.wav --model ${MODEL} ${REALTIME} --top-k 2"
echo "   (9.7 s of six spoken digits with pauses; one line per window, EVENT when a digit ends)"
$CLI stream tests/data/demo_digits.wav --model "$MODEL" --server "127.0.0.1:${PORT}" $REALTIME --top-k 2 \
  | tee /tmp/wavepool-demo.$$ 
echo
echo "digits heard: $(awk '/^EVENT/ {printf "%s ", $2}' /tmp/wavepool-demo.$$)"
echo "digits said:  $(awk '/^digit/ {printf "%s ", $2}' tests/data/demo_digits.txt)"
rm -f /tmp/wavepool-demo.$$

if $CLI models --server "127.0.0.1:${PORT}" | grep -q "^ecg-beats "; then
  echo
  echo "== wavepool stream tests/data/mitdb/208.hea --model ecg-beats"
  echo "   (60 s of MIT-BIH record 208, lead MLII; one line per detected heartbeat with its AAMI class)"
  $CLI stream tests/data/mitdb/208.hea --model ecg-beats --server "127.0.0.1:${PORT}" \
    | tee /tmp/wavepool-ecg.$$ | tail -8
  echo "beats found by class: $(awk '/^beat/ {n[$10]++} END {for (c in n) printf "%s %d  ", c, n[c]}' /tmp/wavepool-ecg.$$)"
  echo "reference (cardiologists' annotations of this excerpt): N 64  V 30  F 12"
  rm -f /tmp/wavepool-ecg.$$
fi
