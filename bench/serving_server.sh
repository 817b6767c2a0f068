# Sourced by the serving benchmarks: a loopback wavepool-server on a free port.
# start_server TREE [FLAGS...]: runs TREE/build/server/wavepool-server from TREE
# (its models/) with stream limits high enough for any sweep, OPENBLAS_CORETYPE
# unset (OpenBLAS picks its kernel for this CPU, as on a user's machine); sets
# PORT and SPID. stop_server: SIGTERM and wait.
start_server() {
  local tree=$1 log
  shift
  log=$(mktemp)
  (cd "$tree" && exec env -u OPENBLAS_CORETYPE build/server/wavepool-server \
    --address 127.0.0.1:0 --model-repository models --max-streams 20000 \
    --max-streams-per-peer 20000 "$@") >"$log" 2>&1 &
  SPID=$!
  PORT=
  for _ in $(seq 100); do
    PORT=$(grep -o 'port [0-9]*' "$log" | head -1 | cut -d' ' -f2 || true)
    [ -n "$PORT" ] && break
    sleep 0.1
  done
  [ -n "$PORT" ] || { cat "$log"; exit 1; }
}
stop_server() { kill "$SPID"; wait "$SPID" 2>/dev/null || true; }
