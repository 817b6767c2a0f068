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
OUT=docs/results/serving
mkdir -p "$OUT"

. bench/serving_server.sh

{
  echo "# $(date -u +%FT%TZ) $(nproc) cores: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2)"
  echo "# git $(git rev-parse --short HEAD)$(git diff --quiet || echo +uncommitted)"
} >"$OUT/machine.txt"

start_server .
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
  start_server . --batch-max-size "$batch"
  $CLI bench --server "127.0.0.1:$PORT" --model digits --streams 64 --duration-s "$DUR" \
    --json --server-pid "$SPID" | sed "s/^{/{\"server_batch_max_size\":$batch,/" \
    | tee -a "$OUT/batching_gain.jsonl"
  stop_server
done
