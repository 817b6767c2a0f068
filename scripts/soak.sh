#!/usr/bin/env bash
# Soak: the Release server with the shipped models under the load tool for
# minutes, with a share of faulty clients mixed in, while the server's RSS and
# open file descriptors are sampled. Not part of the default suite.
#
#   bash scripts/soak.sh [DURATION_S] [STREAMS] [FAULTY_SHARE]
#   bash scripts/soak.sh 360 200 0.1      # 6 minutes, 200 digit streams, 10% faulty
#
# STREAMS real-time digit streams (model digits) and ECG_STREAMS (default
# STREAMS/2) real-time ECG streams (model ecg-beats, record 208) run at once,
# each for DURATION_S, through `wavepool bench --faulty-share` (vanish,
# cancel, deadline, stall, one-sample chunks, silent: docs/bench.md). Every
# KILL_EVERY_S seconds (default 10) a `wavepool stream --realtime` process is
# started and killed with SIGKILL 1-4 s later: a client whose socket the
# kernel closes. The faulty streams of those two runs strike early (their
# faults are one per stream), so for churn all along the run CHURN_STREAMS
# (default 20) more streams, all faulty, run in back-to-back rounds of
# CHURN_ROUND_S (default 20 s). The server runs with --idle-timeout-s IDLE_S
# (default 10) so that silent and stalled streams are ended within the run.
#
# Every SAMPLE_S seconds (default 5): the server's VmRSS and open fds
# (/proc/PID/status, /proc/PID/fd) and threads. Writes into OUT (default
# docs/results/reliability/): soak.csv, soak_digits.json and soak_ecg.json
# (the load tool's JSON lines), soak_churn.json (one line per churn round),
# soak_metrics.txt (the server's /metrics at
# the end), soak_summary.json (figures and verdict) and soak.svg (RSS and fds
# over time).
#
# Verdict (exit 1 if any fails):
#   - RSS after warm-up (the first WARMUP_S, default a sixth of the run, at
#     least 30 s) grows by at most max(RSS_BOUND_PCT % (default 10), 16 MiB),
#     comparing the mean of the last quarter of the samples after warm-up with
#     the mean of the first quarter;
#   - open fds return to the count before the load (within 15 s of its end);
#   - no stream is left open (wavepool_streams_open sums to 0);
#   - the checked streams (healthy and one-sample, of every run) have
#     windows_lost == 0, windows_disordered == 0 and checked_errors == 0, and
#     every load tool run exited 0.
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION_S=${1:-360}
STREAMS=${2:-200}
FAULTY_SHARE=${3:-0.1}
ECG_STREAMS=${ECG_STREAMS:-$((STREAMS / 2))}
SAMPLE_S=${SAMPLE_S:-5}
IDLE_S=${IDLE_S:-10}
KILL_EVERY_S=${KILL_EVERY_S:-10}
CHURN_STREAMS=${CHURN_STREAMS:-20}
CHURN_ROUND_S=${CHURN_ROUND_S:-20}
RSS_BOUND_PCT=${RSS_BOUND_PCT:-10}
WARMUP_S=${WARMUP_S:-$(python3 -c "print(max(30, int($DURATION_S) // 6))")}
OUT=${OUT:-docs/results/reliability}
BUILD_DIR=${BUILD_DIR:-build}
SERVER=$BUILD_DIR/server/wavepool-server
CLI=$BUILD_DIR/clients/wavepool
[ -x "$SERVER" ] && [ -x "$CLI" ] || BUILD_DIR=$BUILD_DIR bash scripts/build.sh
mkdir -p "$OUT"
WORK=$(mktemp -d)
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  [ -n "${SERVER_PID:-}" ] && kill -TERM "$SERVER_PID" 2>/dev/null
  wait 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT

"$SERVER" --address 127.0.0.1:0 --metrics-address 127.0.0.1:0 --model-repository models \
  --idle-timeout-s "$IDLE_S" >"$WORK/server.log" 2>&1 &
SERVER_PID=$!
for _ in $(seq 1 100); do grep -q "ready on" "$WORK/server.log" && break; sleep 0.1; done
PORT=$(sed -n 's/.*(port \([0-9]*\)).*/\1/p' "$WORK/server.log" | head -n 1)
[ -n "$PORT" ] || { cat "$WORK/server.log"; echo "soak: the server did not start" >&2; exit 1; }
METRICS_PORT=$(sed -n 's/.*metrics_port[^0-9]*\([0-9][0-9]*\).*/\1/p' "$WORK/server.log" | head -n 1)
ADDR=127.0.0.1:$PORT

sample() {  # t_s rss_kb fds threads load1
  local rss fds thr
  rss=$(awk '/^VmRSS:/ {print $2}' "/proc/$SERVER_PID/status")
  thr=$(awk '/^Threads:/ {print $2}' "/proc/$SERVER_PID/status")
  fds=$(ls "/proc/$SERVER_PID/fd" | wc -l)
  echo "$1,$rss,$fds,$thr,$(cut -d' ' -f1 /proc/loadavg)"
}
START=$(date +%s.%N)
elapsed() { python3 -c "import time; print(f'{time.time() - $START:.1f}')"; }
echo "t_s,rss_kb,fds,threads,load1,phase" >"$OUT/soak.csv"
echo "$(sample 0.0),idle" >>"$OUT/soak.csv"
FDS_BEFORE=$(ls "/proc/$SERVER_PID/fd" | wc -l)

# The sampler, until the file STOP appears.
(
  while [ ! -e "$WORK/STOP" ]; do
    sleep "$SAMPLE_S"
    phase=load
    [ -e "$WORK/LOAD_DONE" ] && phase=after
    echo "$(sample "$(elapsed)"),$phase" >>"$OUT/soak.csv"
  done
) &
PIDS+=($!)

# Killed client processes, for the duration of the load.
(
  kills=0
  end=$(( $(date +%s) + DURATION_S ))
  while [ "$(date +%s)" -lt $((end - 5)) ]; do
    sleep "$KILL_EVERY_S"
    "$CLI" stream tests/data/demo_digits.wav --server "$ADDR" --model digits --realtime \
      >/dev/null 2>&1 &
    victim=$!
    sleep "$(python3 -c "import random; print(round(random.uniform(1, 4), 2))")"
    kill -KILL "$victim" 2>/dev/null && kills=$((kills + 1))
    wait "$victim" 2>/dev/null || true
  done
  echo "$kills" >"$WORK/kills"
) &
KILLER=$!

# Rounds of all-faulty streams, until the main runs end (file LOAD_DONE).
(
  round=0
  : >"$OUT/soak_churn.json"
  while [ "$CHURN_STREAMS" -gt 0 ] && [ ! -e "$WORK/LOAD_DONE" ]; do
    round=$((round + 1))
    "$CLI" bench --server "$ADDR" --realtime --duration-s "$CHURN_ROUND_S" --warmup-s 1 --json \
      --model digits --streams "$CHURN_STREAMS" --faulty-share 1 --faulty-seed "$((100 + round))" \
      --timeout-s 30 >>"$OUT/soak_churn.json" 2>>"$WORK/churn.err" || echo "$round" >>"$WORK/churn_failed"
  done
) &
CHURN=$!

BENCH_COMMON=(--server "$ADDR" --realtime --duration-s "$DURATION_S" --warmup-s 5 --json
  --faulty-share "$FAULTY_SHARE" --timeout-s 60)
set +e
"$CLI" bench "${BENCH_COMMON[@]}" --model digits --streams "$STREAMS" --faulty-seed 1 \
  --server-pid "$SERVER_PID" >"$OUT/soak_digits.json" 2>"$WORK/digits.err" &
DIGITS=$!
ECG=
if [ "$ECG_STREAMS" -gt 0 ]; then
  "$CLI" bench "${BENCH_COMMON[@]}" --model ecg-beats --streams "$ECG_STREAMS" --faulty-seed 2 \
    >"$OUT/soak_ecg.json" 2>"$WORK/ecg.err" &
  ECG=$!
fi
wait "$DIGITS"; DIGITS_RC=$?
ECG_RC=0
[ -n "$ECG" ] && { wait "$ECG"; ECG_RC=$?; }
wait "$KILLER"
touch "$WORK/LOAD_DONE"
wait "$CHURN"
set -e
LOAD_END=$(elapsed)
cat "$WORK/digits.err" "$WORK/ecg.err" 2>/dev/null >&2 || true

# After the load: fds back to where they were (gRPC closes connections
# asynchronously), then a last sample and the metrics.
FDS_AFTER=0
for _ in $(seq 1 30); do
  FDS_AFTER=$(ls "/proc/$SERVER_PID/fd" | wc -l)
  [ "$FDS_AFTER" -le "$FDS_BEFORE" ] && break
  sleep 0.5
done
touch "$WORK/STOP"
echo "$(sample "$(elapsed)"),after" >>"$OUT/soak.csv"
if [ -n "$METRICS_PORT" ]; then
  curl -s "http://127.0.0.1:$METRICS_PORT/metrics" >"$OUT/soak_metrics.txt" || true
fi

CHURN_FAILED=0
[ -e "$WORK/churn_failed" ] && CHURN_FAILED=$(wc -l <"$WORK/churn_failed")
python3 - "$OUT" "$WARMUP_S" "$RSS_BOUND_PCT" "$FDS_BEFORE" "$FDS_AFTER" "$(cat "$WORK/kills")" \
  "$DURATION_S" "$STREAMS" "$ECG_STREAMS" "$FAULTY_SHARE" "$LOAD_END" "$DIGITS_RC" "$ECG_RC" \
  "$CHURN_STREAMS" "$CHURN_FAILED" <<'EOF'
import csv, json, os, platform, sys
out, warmup, bound_pct, fds_before, fds_after, kills = sys.argv[1], float(sys.argv[2]), \
    float(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5]), int(sys.argv[6])
duration, streams, ecg_streams, share = float(sys.argv[7]), int(sys.argv[8]), int(sys.argv[9]), \
    float(sys.argv[10])
load_end, digits_rc, ecg_rc = float(sys.argv[11]), int(sys.argv[12]), int(sys.argv[13])
churn_streams, churn_failed = int(sys.argv[14]), int(sys.argv[15])
rows = list(csv.DictReader(open(os.path.join(out, "soak.csv"))))
t = [float(r["t_s"]) for r in rows]
rss = [int(r["rss_kb"]) / 1024 for r in rows]
fds = [int(r["fds"]) for r in rows]
post = [(ti, ri) for ti, ri, r in zip(t, rss, rows) if r["phase"] == "load" and ti >= warmup]
verdict, figures = {}, {}
if len(post) >= 8:
    q = max(2, len(post) // 4)
    first = sum(r for _, r in post[:q]) / q
    last = sum(r for _, r in post[-q:]) / q
    allowed = max(first * bound_pct / 100, 16.0)
    figures["rss_mib_after_warmup_first_quarter"] = round(first, 1)
    figures["rss_mib_last_quarter"] = round(last, 1)
    figures["rss_growth_mib"] = round(last - first, 1)
    figures["rss_growth_allowed_mib"] = round(allowed, 1)
    verdict["rss_bounded"] = last - first <= allowed
else:
    verdict["rss_bounded"] = False
    figures["rss_note"] = "fewer than 8 samples after warm-up: run longer"
figures["rss_mib_start"] = round(rss[0], 1)
figures["rss_mib_max"] = round(max(rss), 1)
figures["rss_mib_end"] = round(rss[-1], 1)
figures["fds_before"], figures["fds_max"], figures["fds_after"] = fds_before, max(fds), fds_after
verdict["fds_back"] = fds_after <= fds_before
runs = {}
for name in ("digits", "ecg", "churn"):
    p = os.path.join(out, f"soak_{name}.json")
    lines = [l for l in open(p) if l.strip()] if os.path.exists(p) else []
    for i, line in enumerate(lines):
        runs[name if name != "churn" else f"churn{i + 1}"] = json.loads(line)
lost = sum(r["windows_lost"] for r in runs.values())
disordered = sum(r["windows_disordered"] for r in runs.values())
checked_errors = sum(r["checked_errors"] for r in runs.values())
verdict["no_window_lost"] = bool(runs) and lost == 0 and disordered == 0 and checked_errors == 0
verdict["load_tool_ok"] = digits_rc == 0 and ecg_rc == 0 and churn_failed == 0
open_streams = None
mp = os.path.join(out, "soak_metrics.txt")
if os.path.exists(mp):
    open_streams = sum(float(l.split()[-1]) for l in open(mp)
                       if l.startswith("wavepool_streams_open{"))
    verdict["no_stream_open"] = open_streams == 0
errors_by_kind = {}
for name, r in runs.items():
    for kind, codes in r["faults"].items():
        for code, n in codes.items():
            k = errors_by_kind.setdefault(kind, {})
            k[code] = k.get(code, 0) + n
errors_by_kind["killed_process"] = {"SIGKILL": kills}
summary = {
    "command": f"ECG_STREAMS={ecg_streams} CHURN_STREAMS={churn_streams} "
               f"bash scripts/soak.sh {int(duration)} {streams} {share}",
    "duration_s": duration, "digit_streams": streams, "ecg_streams": ecg_streams,
    "churn_rounds": sum(1 for n in runs if n.startswith("churn")),
    "churn_streams_per_round": churn_streams,
    "faulty_share": share, "load_end_s": load_end, "samples": len(rows),
    "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, "
               f"{open('/proc/cpuinfo').read().split('model name')[1].split(':')[1].splitlines()[0].strip()}",
    "figures": figures, "streams_open_at_end": open_streams,
    "checked_streams": sum(r["checked_streams"] for r in runs.values()),
    "windows_expected": sum(r["windows_expected"] for r in runs.values()),
    "windows_lost": lost, "windows_disordered": disordered, "checked_errors": checked_errors,
    "faulty_streams": sum(r["faulty_streams"] for r in runs.values()),
    "outcomes_by_kind": errors_by_kind,
    "latency_ms": {n: r["latency_ms"] for n, r in runs.items() if not n.startswith("churn")},
    "verdict": verdict, "pass": all(verdict.values()),
}
json.dump(summary, open(os.path.join(out, "soak_summary.json"), "w"), indent=1)

# The chart: RSS (MiB) and open fds against time, two panels.
W, H, L, R, T, G = 760, 460, 70, 20, 40, 40
ph = (H - T - 2 * G) / 2
tmax = max(t) or 1
def panel(y0, ys, label, color, lo=0, hi=None):
    hi = hi if hi is not None else (max(ys) * 1.1 or 1)
    def X(v): return L + (W - L - R) * v / tmax
    def Y(v): return y0 + ph - ph * (v - lo) / (hi - lo)
    s = [f'<rect x="{L}" y="{y0}" width="{W-L-R}" height="{ph}" fill="none" stroke="#999"/>']
    for i in range(5):
        v = lo + (hi - lo) * i / 4
        s.append(f'<text x="{L-6}" y="{Y(v)+4:.1f}" text-anchor="end" font-size="11">{v:.1f}</text>')
        s.append(f'<line x1="{L}" x2="{W-R}" y1="{Y(v):.1f}" y2="{Y(v):.1f}" stroke="#eee"/>')
    s.append(f'<text x="{L}" y="{y0-6}" font-size="12">{label}</text>')
    pts = " ".join(f"{X(a):.1f},{Y(b):.1f}" for a, b in zip(t, ys) if lo <= b <= hi)
    s.append(f'<polyline points="{pts}" fill="none" stroke="{color}" stroke-width="1.5"/>')
    for x in (warmup, load_end):
        s.append(f'<line x1="{X(x):.1f}" x2="{X(x):.1f}" y1="{y0}" y2="{y0+ph}" '
                 f'stroke="#888" stroke-dasharray="4,3"/>')
    return s
svg = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" font-family="sans-serif">',
       f'<rect width="{W}" height="{H}" fill="white"/>',
       f'<text x="{W/2}" y="18" text-anchor="middle" font-size="13">wavepool soak: {streams} digit + '
       f'{ecg_streams} ECG real-time streams, {share:g} faulty, {duration:g} s '
       f'(dashed: end of warm-up, end of load)</text>']
# RSS on an axis around its values under load (the idle sample before the
# load is left off), so that growth of an MiB shows.
loaded = [r for r, row in zip(rss, rows) if row["phase"] != "idle"] or rss
svg += panel(T, rss, f"server RSS, MiB (idle before the load: {rss[0]:.1f})", "#1f77b4",
             lo=max(0.0, min(loaded) - 4), hi=max(loaded) + 4)
svg += panel(T + ph + G, fds, "server open file descriptors", "#d62728")
for i in range(6):
    v = tmax * i / 5
    x = L + (W - L - R) * v / tmax
    svg.append(f'<text x="{x:.1f}" y="{H-G+16}" text-anchor="middle" font-size="11">{v:.0f}</text>')
svg.append(f'<text x="{W/2}" y="{H-6}" text-anchor="middle" font-size="12">seconds</text>')
svg.append("</svg>")
open(os.path.join(out, "soak.svg"), "w").write("\n".join(svg) + "\n")
print(json.dumps(summary, indent=1))
sys.exit(0 if summary["pass"] else 1)
EOF
