#!/usr/bin/env bash
# End to end, before and after a change: the same load-tool runs against the
# server of two builds, alternating build by build at each load so both see the
# same machine state (issue #6: "how many more streams the server now holds").
# Usage: bench/serving_before_after.sh BEFORE_TREE AFTER_TREE [DURATION_S]
#   each TREE is a checkout with build/server/wavepool-server and models/.
# The load tool is the AFTER tree's. OPENBLAS_CORETYPE is unset for both
# servers, so OpenBLAS picks its kernel for this CPU as on a user's machine.
# Appends one JSON line per run (with "build": before|after) to
# docs/results/serving/before_after.jsonl.
set -euo pipefail
BEFORE=$(cd "$1" && pwd)
AFTER=$(cd "$2" && pwd)
DUR=${3:-10}
cd "$(dirname "$0")/.."
CLI=$AFTER/build/clients/wavepool
OUT=docs/results/serving
mkdir -p "$OUT"
JSONL=$OUT/before_after.jsonl
echo "# $(date -u +%FT%TZ) $(nproc) cores:$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2);" \
  "before $(git -C "$BEFORE" rev-parse --short HEAD), after $(git -C "$AFTER" rev-parse --short HEAD)" \
  >>"$OUT/before_after_machine.txt"

. bench/serving_server.sh

run() {  # MODEL STREAMS CHUNK_MS
  for build in before after; do
    local tree=$BEFORE
    [ "$build" = after ] && tree=$AFTER
    start_server "$tree"
    "$CLI" bench --server "127.0.0.1:$PORT" --model "$1" --streams "$2" --chunk-ms "$3" \
      --realtime --duration-s "$DUR" --json --server-pid "$SPID" \
      | sed "s/^{/{\"build\":\"$build\",\"chunk_ms\":$3,/" | tee -a "$JSONL" || true
    stop_server
  done
}

for n in 500 600 700 800 900; do run digits "$n" 100; done
for n in 1500 2000 2500; do run ecg-beats "$n" 100; done
run ecg-beats 5000 1000
