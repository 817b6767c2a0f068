#!/usr/bin/env bash
# Serving capacity on this machine, with the load tool (wavepool bench) on
# loopback: real-time stream sweeps for the digit and ECG models (p99 window
# latency against streams, plotted), and the batching gain (windows/s with
# batching vs without, as fast as possible, back to back in one run).
# Writes docs/results/serving/. Usage: bench/serving_capacity.sh [DURATION_S]
# The client runs on the same machine and its CPU use is in each JSON line.
set -euo pipefail
cd "$(dirname "$0")/.."
DUR=${1:-10}
CLI=./build/clients/wavepool
SRV=./build/server/wavepool-server
OUT=docs/results/serving
mkdir -p "$OUT"

start_server() {  # extra flags...; sets PORT and SPID
  local log; log=$(mktemp)
  "$SRV" --address 127.0.0.1:0 --model-repository models --max-streams 20000 \
    --max-streams-per-peer 20000 "$@" >"$log" 2>&1 &
  SPID=$!
  for _ in $(seq 100); do
    PORT=$(grep -o 'port [0-9]*' "$log" | head -1 | cut -d' ' -f2 || true)
    [ -n "$PORT" ] && break
    sleep 0.1
  done
  [ -n "$PORT" ] || { cat "$log"; exit 1; }
}
stop_server() { kill "$SPID"; wait "$SPID" 2>/dev/null || true; }

{
  echo "# $(date -u +%FT%TZ) $(nproc) cores: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2)"
  echo "# git $(git rev-parse --short HEAD)$(git diff --quiet || echo +uncommitted)"
} >"$OUT/machine.txt"

start_server
$CLI bench --server "127.0.0.1:$PORT" --model digits --sweep 100,200,300,400,500,600,700 \
  --realtime --duration-s "$DUR" --json --server-pid "$SPID" \
  --plot "$OUT/digits_realtime.svg" | tee "$OUT/digits_realtime.jsonl"
$CLI bench --server "127.0.0.1:$PORT" --model ecg-beats --sweep 500,1000,1500,2000,2500 \
  --realtime --duration-s "$DUR" --json --server-pid "$SPID" \
  --plot "$OUT/ecg_realtime.svg" | tee "$OUT/ecg_realtime.jsonl"
$CLI bench --server "127.0.0.1:$PORT" --model ecg-beats --sweep 2500,5000 --chunk-ms 250 \
  --realtime --duration-s "$DUR" --json --server-pid "$SPID" | tee "$OUT/ecg_realtime_250ms.jsonl"
stop_server

# Batching gain: the same load as fast as possible against a server that
# batches (default: up to 32, 2 ms) and one that does not (batch 1).
: >"$OUT/batching_gain.jsonl"
for batch in 32 1; do
  start_server --batch-max-size "$batch"
  $CLI bench --server "127.0.0.1:$PORT" --model digits --streams 64 --duration-s "$DUR" \
    --json --server-pid "$SPID" | sed "s/^{/{\"server_batch_max_size\":$batch,/" \
    | tee -a "$OUT/batching_gain.jsonl"
  stop_server
done
