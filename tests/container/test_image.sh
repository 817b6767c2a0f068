#!/usr/bin/env bash
# End-to-end test of the server image (deploy/Dockerfile) with podman.
# Not part of ctest: it needs podman + runc as root and takes minutes.
#
#   bash tests/container/test_image.sh
#
# Builds the base image and the server image, runs the server in a container,
# then checks: the gRPC health check turns SERVING (inside the container and
# through the published port), the baked-in HEALTHCHECK passes, `wavepool
# models` lists the models (those in models/; while models/ is empty, one made
# from specs/untrained-digits.json and mounted over /models), `wavepool stream`
# of a WAV from tests/data returns one window line per window, the server runs
# as uid 10001, and `podman stop` (SIGTERM) during a real-time stream lets the
# stream finish with every window and ends the server with exit code 0. The
# server container runs locked down as deploy/kubernetes runs it (read-only root
# filesystem, no capabilities, no privilege escalation).
# When the image's wavepool-server has --metrics-address (the default
# ENTRYPOINT passes it), it also checks the HTTP endpoint on port 9090:
# /healthz and /readyz answer 200, /metrics has wavepool_streams_open, and
# /readyz stops answering 200 once SIGTERM starts the drain; when it also has
# --config, the server runs with deploy/kubernetes/base/config.json mounted as in
# Kubernetes. With an older binary those checks are skipped with a note, and
# the server is started with the flags it knows.
# Last, where podman-compose is installed, deploy/compose.yaml runs with the
# image: the demo client waits for the server, streams the demo WAV (events
# and a summary) and runs `wavepool bench` without errors; the server answers
# on its published ports and exits 0 on `podman-compose stop -t 30`.
# Containers (and the compose project) are removed on every exit.
#
# Environment (all optional):
#   WAVEPOOL_TEST_IMAGE       image tag to build and run (default localhost/wavepool:test)
#   WAVEPOOL_TEST_SKIP_BUILD  1: run an already-built image, skip both builds
#   WAVEPOOL_TEST_WAV         WAV file to stream (default tests/data/demo_digits.wav)
#   WAVEPOOL_TEST_SPEC        spec for the model made while models/ is empty
#                             (default specs/untrained-digits.json)
#   WAVEPOOL_TEST_MODEL       model to stream with (default: the first expected model)
#   WAVEPOOL_TEST_NOFILE      open-file limit for the container (default 65536,
#                             lowered to this shell's hard limit when that is smaller)
#   WAVEPOOL_TEST_LOG_DIR     where build and run logs go (default a temp dir, printed)
#   WAVEPOOL_TEST_COMPOSE     0: skip the deploy/compose.yaml step
set -euo pipefail
cd "$(dirname "$0")/../.."

IMAGE=${WAVEPOOL_TEST_IMAGE:-localhost/wavepool:test}
NAME="wavepool-test-$$"
COMPOSE_PROJECT=""   # set while the compose step's containers exist
READY_TIMEOUT_S=60
LOG_DIR=${WAVEPOOL_TEST_LOG_DIR:-$(mktemp -d /tmp/wavepool-container-test.XXXXXX)}
mkdir -p "$LOG_DIR"

fail() { echo "FAIL: $*" >&2; exit 1; }
step() { echo "== $*"; }

# Dumps the server's log on failure, then removes the container whatever happened.
cleanup() {
  local rc=$?
  if podman container exists "$NAME" 2>/dev/null; then
    if [ "$rc" -ne 0 ]; then
      echo "--- last 40 lines of the server log ($NAME) ---" >&2
      podman logs --tail 40 "$NAME" >&2 2>&1 || true
    fi
    podman rm -f -t 2 "$NAME" >/dev/null 2>&1 || true
  fi
  if [ -n "$COMPOSE_PROJECT" ]; then
    if [ "$rc" -ne 0 ]; then
      for c in server demo; do
        echo "--- last 20 lines of compose service $c ---" >&2
        podman logs --tail 20 "${COMPOSE_PROJECT}_${c}_1" >&2 2>&1 || true
      done
    fi
    for c in demo server; do podman rm -f -t 2 "${COMPOSE_PROJECT}_${c}_1" >/dev/null 2>&1 || true; done
    podman network rm -f "${COMPOSE_PROJECT}_default" >/dev/null 2>&1 || true
  fi
  [ "$rc" -eq 0 ] || echo "test_image: FAILED (logs in $LOG_DIR)" >&2
}
trap cleanup EXIT

[ "$(id -u)" -eq 0 ] || fail "run as root (rootful podman; debootstrap for the base image)"
command -v podman >/dev/null || fail "podman not found: apt-get install podman runc debootstrap"

# runc refuses a limit above the caller's hard limit ("error setting rlimit
# type 7"); some CI sandboxes cap nofile at 20000.
nofile=${WAVEPOOL_TEST_NOFILE:-65536}
hard=$(ulimit -Hn)
if [ "$hard" != unlimited ] && [ "$hard" -lt "$nofile" ]; then
  echo "note: nofile lowered from $nofile to this shell's hard limit $hard"
  nofile=$hard
fi
RUN_FLAGS=(--runtime runc --ulimit "nofile=$nofile:$nofile" --ulimit nproc=4096:4096)

# Runs a command inside the server container and fails the test if it fails.
in_container() {
  local out
  if ! out=$(podman exec "$NAME" "$@" 2>&1); then
    echo "$out" >&2
    fail "'$*' failed inside the container"
  fi
  printf '%s\n' "$out"
}

if [ "${WAVEPOOL_TEST_SKIP_BUILD:-0}" != 1 ]; then
  step "base image (deploy/make-base-image.sh)"
  bash deploy/make-base-image.sh || fail "deploy/make-base-image.sh failed"

  step "podman build -f deploy/Dockerfile -t $IMAGE . (log: $LOG_DIR/build.log)"
  start=$SECONDS
  # --format docker: podman drops HEALTHCHECK from OCI-format images.
  if ! podman build --runtime runc --format docker \
      --ignorefile deploy/Dockerfile.dockerignore \
      -f deploy/Dockerfile -t "$IMAGE" . >"$LOG_DIR/build.log" 2>&1; then
    tail -n 40 "$LOG_DIR/build.log" >&2
    fail "image build failed (full log: $LOG_DIR/build.log)"
  fi
  echo "built in $((SECONDS - start)) s; size $(podman image inspect --format '{{.Size}}' "$IMAGE" | numfmt --to=si)B"
fi
podman image exists "$IMAGE" || fail "image $IMAGE does not exist"

step "image metadata"
[ "$(podman image inspect --format '{{.Config.User}}' "$IMAGE")" = "10001:10001" ] ||
  fail "image USER is not 10001:10001"
entrypoint=$(podman image inspect --format '{{json .Config.Entrypoint}}' "$IMAGE")
[[ "$entrypoint" == '["wavepool-server",'*'"--address","0.0.0.0:50051"'* ]] &&
  [[ "$entrypoint" == *'"--model-repository","/models"'* ]] &&
  [[ "$entrypoint" == *'"--metrics-address","0.0.0.0:9090"'* ]] ||
  fail "unexpected ENTRYPOINT $entrypoint"
exposed=$(podman image inspect --format '{{json .Config.ExposedPorts}}' "$IMAGE")
[[ "$exposed" == *'"50051/tcp"'* && "$exposed" == *'"9090/tcp"'* ]] ||
  fail "image does not expose 50051 and 9090: $exposed"
healthcheck=$(podman image inspect --format '{{json .Config.Healthcheck}}' "$IMAGE")
[[ "$healthcheck" == *'"wavepool","health"'* ]] ||
  fail "image has no HEALTHCHECK running wavepool health (built without --format docker?)"

# The models the server must list: the repository's models/ baked into the
# image, or, while models/ is empty, one made from a spec by the image's own
# `wavepool init-model` and mounted over /models (the documented -v path).
expected_models=()
for d in models/*/; do [ -d "$d" ] && expected_models+=("$(basename "$d")"); done
MODEL_MOUNT=()
if [ ${#expected_models[@]} -eq 0 ]; then
  spec=${WAVEPOOL_TEST_SPEC:-specs/untrained-digits.json}
  [ -f "$spec" ] || fail "models/ is empty and there is no spec $spec to make a model from"
  spec_name=$(sed -n 's/^  "name": *"\([^"]*\)".*/\1/p' "$spec" | head -n 1)
  [ -n "$spec_name" ] || fail "cannot read the model name from $spec"
  step "models/ is empty: init-model $spec into $LOG_DIR/models, mounted over /models"
  mkdir -p "$LOG_DIR/models"
  podman run --rm "${RUN_FLAGS[@]}" --no-healthcheck --user 0 --entrypoint wavepool \
      -v "$PWD/$spec:/spec.json:ro" -v "$LOG_DIR/models:/out" "$IMAGE" \
      init-model --spec /spec.json --seed 1 --out "/out/$spec_name/1" ||
    fail "wavepool init-model in the image failed"
  chmod -R a+rX "$LOG_DIR/models"
  expected_models=("$spec_name")
  MODEL_MOUNT=(-v "$LOG_DIR/models:/models:ro")
fi

# What the image's server binary accepts: the HTTP endpoint (--metrics-address,
# in the default ENTRYPOINT) and the config file arrived after the first image.
podman run --rm "${RUN_FLAGS[@]}" --no-healthcheck --entrypoint wavepool-server "$IMAGE" \
    --helpfull >"$LOG_DIR/helpfull.txt" 2>&1 || true  # --helpfull exits 1
has_flag() { grep -q -- "^ *--$1 (" "$LOG_DIR/helpfull.txt"; }
grep -q -- '--address (' "$LOG_DIR/helpfull.txt" ||
  fail "wavepool-server --helpfull in the image lists no --address: $(head -n 3 "$LOG_DIR/helpfull.txt")"
HTTP=0
SERVER_OPTS=()   # podman run options
SERVER_ARGS=()   # after the image name
if has_flag metrics_address; then
  HTTP=1
  SERVER_OPTS+=(-p 127.0.0.1::9090)
  if has_flag config; then
    # As deploy/kubernetes mounts it; text logs because this test reads them.
    SERVER_OPTS+=(-v "$PWD/deploy/kubernetes/base/config.json:/etc/wavepool/config.json:ro")
    SERVER_ARGS+=(--config /etc/wavepool/config.json --log-format text)
  else
    echo "note: wavepool-server has no --config yet: deploy/kubernetes/base/config.json not exercised"
  fi
else
  # The default ENTRYPOINT passes --metrics-address, which this binary would
  # reject: start it with the flags it has.
  echo "note: wavepool-server has no --metrics-address yet: default ENTRYPOINT and HTTP checks skipped"
  SERVER_OPTS+=(--entrypoint wavepool-server)
  SERVER_ARGS+=(--address 0.0.0.0:50051 --model-repository /models)
fi

# HTTP status of a URL (000 when nothing answers); the body goes to $LOG_DIR/http-body.
http_status() {
  if command -v curl >/dev/null; then
    curl -s -m 5 -o "$LOG_DIR/http-body" -w '%{http_code}' "$1" || true
  else
    python3 - "$1" "$LOG_DIR/http-body" <<'PYEOF' || echo 000
import sys, urllib.error, urllib.request
try:
    r = urllib.request.urlopen(sys.argv[1], timeout=5); code, body = r.status, r.read()
except urllib.error.HTTPError as e:
    code, body = e.code, e.read()
open(sys.argv[2], "wb").write(body); print(code)
PYEOF
  fi
}

step "podman run -d $IMAGE ${SERVER_ARGS[*]} (locked down as in deploy/kubernetes)"
# Host port 0 = podman picks a free one, so parallel runs never collide.
# Without systemd, podman logs errors about health-check timers on stderr; they
# are harmless (the test runs the check itself), so stderr goes to run.log.
# --read-only etc. mirror the securityContext of deploy/kubernetes/base/deployment.yaml
# (podman's --read-only keeps a tmpfs on /tmp, as the Deployment's emptyDir does).
podman run -d --name "$NAME" "${RUN_FLAGS[@]}" "${MODEL_MOUNT[@]}" \
    --read-only --cap-drop ALL --security-opt no-new-privileges \
    -p 127.0.0.1::50051 "${SERVER_OPTS[@]}" "$IMAGE" "${SERVER_ARGS[@]}" \
    >/dev/null 2>"$LOG_DIR/run.log" || { cat "$LOG_DIR/run.log" >&2; fail "podman run failed"; }
host_addr=$(podman port "$NAME" 50051) || fail "no published port for 50051"
echo "gRPC published at $host_addr"
if [ "$HTTP" = 1 ]; then
  http_addr=$(podman port "$NAME" 9090) || fail "no published port for 9090"
  echo "HTTP (metrics, healthz, readyz) published at $http_addr"
fi

step "wait for SERVING (at most ${READY_TIMEOUT_S} s)"
deadline=$((SECONDS + READY_TIMEOUT_S))
until podman exec "$NAME" wavepool health --server 127.0.0.1:50051 >"$LOG_DIR/health.log" 2>&1; do
  state=$(podman inspect --format '{{.State.Status}}' "$NAME")
  [ "$state" = running ] || fail "server container is $state before it became healthy"
  [ "$SECONDS" -lt "$deadline" ] ||
    fail "server not SERVING after ${READY_TIMEOUT_S} s: $(tail -n 3 "$LOG_DIR/health.log")"
  sleep 1
done
echo "SERVING after $((SECONDS - deadline + READY_TIMEOUT_S)) s"
# Logs go to a file first: `podman logs | grep -q` fails under pipefail when
# grep exits at the first match and podman logs gets SIGPIPE.
podman logs "$NAME" >"$LOG_DIR/server.log" 2>&1
grep -m1 'wavepool-server ready on' "$LOG_DIR/server.log" ||
  fail "SERVING, but the server's ready line is not in the container log (stdout not flushed?)"

if [ "$HTTP" = 1 ]; then
  step "HTTP /healthz, /readyz, /metrics on port 9090"
  code=$(http_status "http://$http_addr/healthz")
  [ "$code" = 200 ] || fail "/healthz answered $code, not 200"
  # SERVING on gRPC means ready; give /readyz a few seconds all the same.
  for _ in $(seq 1 20); do
    code=$(http_status "http://$http_addr/readyz")
    [ "$code" = 200 ] && break
    sleep 0.5
  done
  [ "$code" = 200 ] || fail "/readyz answered $code, not 200, while gRPC health is SERVING"
  code=$(http_status "http://$http_addr/metrics")
  [ "$code" = 200 ] || fail "/metrics answered $code, not 200"
  cp "$LOG_DIR/http-body" "$LOG_DIR/metrics.txt"
  grep -q '^wavepool_streams_open' "$LOG_DIR/metrics.txt" ||
    fail "/metrics has no wavepool_streams_open (saved in $LOG_DIR/metrics.txt)"
  echo "/healthz 200, /readyz 200, /metrics $(grep -c '^wavepool_' "$LOG_DIR/metrics.txt") wavepool_ samples"
fi

step "HEALTHCHECK baked into the image"
podman healthcheck run "$NAME" >/dev/null || fail "podman healthcheck run reported unhealthy"

step "health through the published port, from a second container"
podman run --rm "${RUN_FLAGS[@]}" --no-healthcheck --network host --entrypoint wavepool "$IMAGE" \
  health --server "$host_addr" >"$LOG_DIR/health-host.log" 2>&1 ||
  fail "health via $host_addr failed: $(tail -n 3 "$LOG_DIR/health-host.log")"

step "server runs as uid 10001"
[ "$(in_container id -u)" = 10001 ] || fail "podman exec id -u is not 10001"
pid1_uid=$(in_container grep '^Uid:' /proc/1/status | awk '{print $2}')
[ "$pid1_uid" = 10001 ] || fail "the server process (pid 1) runs as uid $pid1_uid, not 10001"

step "runtime image carries no build tools"
tools=$(podman exec "$NAME" sh -c 'command -v c++ cc cmake protoc ninja' || true)
[ -z "$tools" ] || fail "build tools in the runtime image: $tools"

step "wavepool models"
models_out=$(in_container wavepool models --server 127.0.0.1:50051)
printf '%s\n' "$models_out" | tee "$LOG_DIR/models.log"
for m in "${expected_models[@]}"; do
  grep -qw -- "$m" <<<"$models_out" || fail "'wavepool models' does not list the model $m"
done

step "wavepool stream of a WAV from tests/data"
wav=${WAVEPOOL_TEST_WAV:-tests/data/demo_digits.wav}
[ -f "$wav" ] || wav=$(find tests/data -name '*.wav' -type f | sort | head -n 1)
[ -n "$wav" ] && [ -f "$wav" ] || fail "no WAV under tests/data (set WAVEPOOL_TEST_WAV)"
podman cp "$wav" "$NAME:/tmp/input.wav" || fail "podman cp $wav failed"
model=${WAVEPOOL_TEST_MODEL:-${expected_models[0]}}
stream_out=$(in_container wavepool stream /tmp/input.wav --model "$model" --server 127.0.0.1:50051)
printf '%s\n' "$stream_out" >"$LOG_DIR/stream.log"
windows=$(grep -c '^window ' <<<"$stream_out" || true)
summary=$(grep '^summary:' <<<"$stream_out" || true)
echo "$wav with model $model: $windows window lines; $summary"
[ "$windows" -gt 0 ] || { head -n 20 <<<"$stream_out" >&2; fail "'wavepool stream' printed no window lines"; }
# Every complete window gets exactly one result: the summary's count must match.
[ "$summary" != "${summary#summary: $windows windows,}" ] ||
  fail "$windows window lines but the stream's summary says: ${summary:-(no summary)}"

step "podman stop (SIGTERM) during a real-time stream: the stream completes, exit 0"
# The client runs in a second container, outside the server's PID namespace,
# so the server's exit cannot take the client down with it.
podman run --rm "${RUN_FLAGS[@]}" --no-healthcheck --network host --entrypoint wavepool \
    -v "$PWD/$wav:/input.wav:ro" "$IMAGE" \
    stream /input.wav --model "$model" --server "$host_addr" --realtime \
    >"$LOG_DIR/drain-stream.log" 2>&1 &
client_pid=$!
deadline=$((SECONDS + 30))
until grep -qs '^window ' "$LOG_DIR/drain-stream.log"; do
  kill -0 "$client_pid" 2>/dev/null || fail "real-time stream ended before its first window: $(tail -n 3 "$LOG_DIR/drain-stream.log")"
  [ "$SECONDS" -lt "$deadline" ] || fail "no window from the real-time stream within 30 s"
  sleep 0.2
done
# -t 30: more than the server's 20 s drain budget; 137 would mean SIGKILL.
podman stop -t 30 "$NAME" >/dev/null 2>>"$LOG_DIR/run.log" &
stop_pid=$!
if [ "$HTTP" = 1 ]; then
  # While the stream drains, /readyz must stop answering 200 (503, or nothing),
  # which is what takes a pod out of its Services in Kubernetes.
  ready_code=200
  for _ in $(seq 1 25); do
    ready_code=$(http_status "http://$http_addr/readyz")
    [ "$ready_code" != 200 ] && break
    sleep 0.2
  done
  [ "$ready_code" != 200 ] || fail "/readyz still answered 200 5 s after SIGTERM"
  echo "/readyz answered $ready_code during the drain"
fi
wait "$stop_pid" || { cat "$LOG_DIR/run.log" >&2; fail "podman stop failed"; }
code=$(podman inspect --format '{{.State.ExitCode}}' "$NAME")
[ "$code" = 0 ] || fail "server exited with $code after SIGTERM (137 = did not stop within 30 s)"
client_rc=0
wait "$client_pid" || client_rc=$?
[ "$client_rc" = 0 ] || fail "the stream open during SIGTERM failed (rc $client_rc): $(tail -n 3 "$LOG_DIR/drain-stream.log")"
drained=$(grep -c '^window ' "$LOG_DIR/drain-stream.log" || true)
[ "$drained" = "$windows" ] ||
  fail "the stream open during SIGTERM got $drained windows, the same file gave $windows before"
podman logs "$NAME" >"$LOG_DIR/server.log" 2>&1
grep -q 'draining' "$LOG_DIR/server.log" || fail "the server log has no drain line after SIGTERM"
echo "stream open during SIGTERM got all $drained windows; server exit code 0"

if [ "${WAVEPOOL_TEST_COMPOSE:-1}" = 0 ]; then
  echo "note: WAVEPOOL_TEST_COMPOSE=0: deploy/compose.yaml not run"
elif ! command -v podman-compose >/dev/null; then
  echo "note: podman-compose not installed (apt-get install podman-compose): deploy/compose.yaml not run"
else
  step "deploy/compose.yaml with podman-compose: server + demo client"
  free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
  COMPOSE_PROJECT="wavepool-test-$$"
  # The image under test and free host ports instead of the file's defaults
  # (wavepool:latest, 50051, 9090); RUN_FLAGS (runc, explicit nofile and nproc
  # limits) as for every run here.
  export WAVEPOOL_IMAGE="$IMAGE" WAVEPOOL_GRPC_PORT WAVEPOOL_METRICS_PORT
  WAVEPOOL_GRPC_PORT=$(free_port)
  WAVEPOOL_METRICS_PORT=$(free_port)
  pc=(podman-compose --podman-run-args "${RUN_FLAGS[*]}" -p "$COMPOSE_PROJECT" -f deploy/compose.yaml)
  # bookworm's podman-compose 1.0.3 often exits 0 when podman failed: the
  # containers' states below are what counts.
  "${pc[@]}" up -d --no-build >"$LOG_DIR/compose-up.log" 2>&1 ||
    { tail -n 20 "$LOG_DIR/compose-up.log" >&2; fail "podman-compose up failed"; }
  server_c="${COMPOSE_PROJECT}_server_1"
  demo_c="${COMPOSE_PROJECT}_demo_1"
  for c in "$server_c" "$demo_c"; do
    state=$(podman inspect --format '{{.State.Status}}' "$c" 2>/dev/null || echo missing)
    case "$state" in
      running|exited) ;;
      *) grep -m 3 '^Error' "$LOG_DIR/compose-up.log" >&2 || true
         fail "compose container $c is $state after podman-compose up (log: $LOG_DIR/compose-up.log)" ;;
    esac
  done
  # The demo waits for the server (at most 60 s), streams about 10 s of audio,
  # then benches for 1 + 5 s.
  demo_rc=$(timeout 180 podman wait "$demo_c" 2>>"$LOG_DIR/compose-up.log") ||
    fail "the demo container did not finish within 180 s"
  podman logs "$demo_c" >"$LOG_DIR/compose-demo.log" 2>&1
  [ "$demo_rc" = 0 ] ||
    { tail -n 20 "$LOG_DIR/compose-demo.log" >&2; fail "the demo container exited with $demo_rc"; }
  events=$(grep -c '^EVENT ' "$LOG_DIR/compose-demo.log" || true)
  grep -q '^summary: ' "$LOG_DIR/compose-demo.log" || fail "the demo's stream printed no summary"
  [ "$events" -gt 0 ] || fail "the demo's stream printed no EVENT line"
  bench_errors=$(awk '/ERRORS/ { for (i = 1; i <= NF; i++) if ($i == "ERRORS") c = i; getline; print $c; exit }' \
    "$LOG_DIR/compose-demo.log")
  [ "$bench_errors" = 0 ] ||
    { tail -n 5 "$LOG_DIR/compose-demo.log" >&2; fail "the demo's bench reported errors: ${bench_errors:-no report}"; }
  echo "demo: $events events, $(grep '^summary: ' "$LOG_DIR/compose-demo.log"); bench without errors"
  podman run --rm "${RUN_FLAGS[@]}" --no-healthcheck --network host --entrypoint wavepool "$IMAGE" \
    health --server "127.0.0.1:$WAVEPOOL_GRPC_PORT" >"$LOG_DIR/compose-health.log" 2>&1 ||
    fail "gRPC health through the compose server's published port $WAVEPOOL_GRPC_PORT failed"
  if [ "$HTTP" = 1 ]; then
    code=$(http_status "http://127.0.0.1:$WAVEPOOL_METRICS_PORT/readyz")
    [ "$code" = 200 ] || fail "/readyz on the compose server's published port answered $code"
  fi
  # podman-compose 1.0.3 ignores stop_grace_period (and `down` waits 1 s):
  # give the drain its time explicitly.
  "${pc[@]}" stop -t 30 server >>"$LOG_DIR/compose-up.log" 2>&1 || fail "podman-compose stop failed"
  code=$(podman inspect --format '{{.State.ExitCode}}' "$server_c")
  [ "$code" = 0 ] || fail "the compose server exited with $code after SIGTERM"
  "${pc[@]}" down -t 30 >>"$LOG_DIR/compose-up.log" 2>&1 || true
  echo "compose: health and /readyz on the published ports; server exit code 0 on stop"
fi

echo "test_image: PASSED ($IMAGE)"
