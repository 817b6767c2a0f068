#!/usr/bin/env bash
# wavepool bench end to end: wavepool-server on a loopback port, the shipped
# models, short runs whose JSON is checked by a small parser. Counts, not
# timings, are asserted (windows_per_s only against the run's own windows).
# Usage: cli_bench_test.sh SERVER_BIN CLI_BIN SOURCE_DIR
set -euo pipefail
SERVER_BIN=$1 CLI=$2 SRC=$3
WORK=$(mktemp -d)
cleanup() { [ -n "${PID:-}" ] && kill -TERM "$PID" 2>/dev/null; wait 2>/dev/null; rm -rf "$WORK"; }
trap cleanup EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }
cd "$SRC"  # the default inputs are tests/data/... from here

"$SERVER_BIN" --address 127.0.0.1:0 --model-repository "$SRC/models" >"$WORK/server.log" 2>&1 &
PID=$!
for _ in $(seq 1 100); do grep -q "ready on" "$WORK/server.log" && break; sleep 0.1; done
PORT=$(sed -n 's/.*(port \([0-9]*\)).*/\1/p' "$WORK/server.log" | head -n 1)
[ -n "$PORT" ] || { cat "$WORK/server.log"; fail "server did not report ready"; }
ADDR=127.0.0.1:$PORT

# check_run FILE STREAMS DURATION [REALTIME_WINDOWS_PER_S]: every JSON line in
# FILE is one healthy run. With the last argument, the window count must be
# streams x duration x that rate within 20%.
check_run() {
  python3 - "$@" <<'EOF' || { cat "$1"; fail "check_run $*"; }
import json, sys
path, streams, duration = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
rate = float(sys.argv[4]) if len(sys.argv) > 4 else None
lines = [l for l in open(path) if l.strip()]
assert lines, "no output"
for line in lines:
    r = json.loads(line)
    n = r["streams"]
    assert n == streams or streams == 0, ("streams", n)
    assert r["windows"] > 0, "no windows"
    assert r["errors"] == 0 and r["errors_by_code"] == {}, ("errors", r["errors_by_code"])
    assert r["streams_completed"] == n, ("streams_completed", r["streams_completed"])
    assert r["unmatched_windows"] == 0, "a window ended after the last sample sent"
    lat = r["latency_ms"]
    assert 0 <= lat["p50"] <= lat["p90"] <= lat["p99"] <= lat["max"], lat
    expected = r["windows"] / duration
    assert abs(r["windows_per_s"] - expected) <= 0.2 * expected, \
        ("windows_per_s", r["windows_per_s"], "vs windows/duration", expected)
    if rate is not None:
        want = n * duration * rate
        assert abs(r["windows"] - want) <= 0.2 * want, ("windows", r["windows"], "want ~", want)
    for key in ("duration_s", "realtime", "chunk_ms", "client_cpu_s", "model", "version"):
        assert key in r, key
EOF
}

# check_exact FILE STREAMS SAMPLES: every stream sent exactly SAMPLES samples
# (8 kHz, the digit model's rate) and got every window of them: the windowing
# of docs/api.md (window 8000, hop 2000, plus a zero-padded tail window when
# samples remain after the last complete one), computed here independently.
check_exact() {
  python3 - "$@" <<'EOF' || { cat "$1"; fail "check_exact $*"; }
import json, sys
path, streams, samples = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
complete = (samples - 8000) // 2000 + 1 if samples >= 8000 else 0
tail = samples > ((complete - 1) * 2000 + 8000 if complete else 0)
per_stream = complete + (1 if tail else 0)
lines = [l for l in open(path) if l.strip()]
assert len(lines) == 1, ("lines", len(lines))
r = json.loads(lines[0])
assert r["streams"] == streams, ("streams", r["streams"])
assert r["errors"] == 0 and r["errors_by_code"] == {}, ("errors", r["errors_by_code"])
assert r["streams_completed"] == streams, ("streams_completed", r["streams_completed"])
assert r["unmatched_windows"] == 0, "a window ended after the last sample sent"
assert r["windows_all"] == streams * per_stream, \
    ("windows_all", r["windows_all"], "want", streams, "x", per_stream)
print(f"check_exact: {streams} x {per_stream} windows of {samples} samples")
EOF
}

# As fast as possible, the digit model (default input: tests/data/demo_digits.wav).
"$CLI" bench --server "$ADDR" --model digits --streams 4 --duration-s 2 --json >"$WORK/digits.json" \
  || { cat "$WORK/digits.json"; fail "bench digits exit code"; }
[ "$(wc -l <"$WORK/digits.json")" = 1 ] || fail "one run prints one JSON line"
grep -q '"input":"tests/data/demo_digits.wav"' "$WORK/digits.json" || fail "digits default input"
check_run "$WORK/digits.json" 4 2

# The ECG model, chosen input by kind (tests/data/mitdb/208.hea, INT16 with its
# gain and baseline), with the server's CPU from /proc.
"$CLI" bench --server "$ADDR" --model ecg-beats --streams 4 --duration-s 2 --json \
  --server-pid "$PID" >"$WORK/ecg.json" || { cat "$WORK/ecg.json"; fail "bench ecg exit code"; }
grep -q '"kind":"BEAT_WINDOWS","input":"tests/data/mitdb/208.hea"' "$WORK/ecg.json" \
  || { cat "$WORK/ecg.json"; fail "ecg default input"; }
grep -q '"server_cpu_percent":' "$WORK/ecg.json" || fail "server_cpu_percent with --server-pid"
check_run "$WORK/ecg.json" 4 2

# Realtime: the digit model's hop is 0.25 s, so each stream yields 4 windows/s
# of signal sent after warm-up (9 per stream here: the first window ends
# exactly at the 1 s warm-up boundary and counts).
"$CLI" bench --server "$ADDR" --model digits --streams 4 --duration-s 2 --realtime --json \
  >"$WORK/rt.json" || { cat "$WORK/rt.json"; fail "bench realtime exit code"; }
check_run "$WORK/rt.json" 4 2 4
grep -q '"realtime":true' "$WORK/rt.json" || fail "realtime flag in the report"
# Its plan is exact too: ceil((1 + 2) s x 8000 / 800) = 30 chunks of 800
# samples per stream, 24000 samples, 9 windows each (no tail).
check_exact "$WORK/rt.json" 4 24000

# --chunks N: every stream sends exactly N chunks, so the windows are known in
# advance. As fast as possible, 101 chunks of 130 ms (1040 samples): 105040
# samples, more than the 77743-sample input (it loops), 49 complete windows and
# a padded tail. With no warm-up every window is also a latency sample.
"$CLI" bench --server "$ADDR" --model digits --streams 4 --chunks 101 --chunk-ms 130 \
  --warmup-s 0 --duration-s 1 --json >"$WORK/exact.json" \
  || { cat "$WORK/exact.json"; fail "bench --chunks exit code"; }
check_exact "$WORK/exact.json" 4 105040
python3 - "$WORK/exact.json" <<'EOF' || { cat "$WORK/exact.json"; fail "bench --chunks report"; }
import json, sys
r = json.loads(open(sys.argv[1]).read())
assert r["chunk_ms"] == 130.0 and r["windows_all"] == 4 * 50, r
assert r["windows"] == r["windows_all"], ("windows", r["windows"], r["windows_all"])
EOF
# Realtime, 6 chunks of 300 ms (2400 samples): 14400 samples, 4 complete
# windows and a tail, whatever warm-up + duration say.
"$CLI" bench --server "$ADDR" --model digits --streams 3 --realtime --chunks 6 --chunk-ms 300 \
  --warmup-s 0 --duration-s 0.5 --json >"$WORK/exact_rt.json" \
  || { cat "$WORK/exact_rt.json"; fail "bench --realtime --chunks exit code"; }
check_exact "$WORK/exact_rt.json" 3 14400
# Beats have no formula, but the server's results do not depend on chunking:
# the same 20 s of record 208 as 200 chunks of 100 ms or 100 of 200 ms give the
# same windows and events.
for c in 200:100 100:200; do
  "$CLI" bench --server "$ADDR" --model ecg-beats --streams 2 --chunks "${c%%:*}" \
    --chunk-ms "${c##*:}" --warmup-s 0 --duration-s 1 --json >"$WORK/ecg_$c.json" \
    || { cat "$WORK/ecg_$c.json"; fail "bench ecg --chunks $c exit code"; }
done
python3 - "$WORK/ecg_200:100.json" "$WORK/ecg_100:200.json" <<'EOF' \
  || { cat "$WORK"/ecg_*.json; fail "ecg --chunks: chunking changed the results"; }
import json, sys
a, b = (json.loads(open(p).read()) for p in sys.argv[1:])
for r in (a, b):
    assert r["errors"] == 0 and r["streams_completed"] == 2 and r["unmatched_windows"] == 0, r
assert a["windows_all"] == b["windows_all"] > 2 * 10, (a["windows_all"], b["windows_all"])
assert a["windows_all"] % 2 == 0 and a["events"] == b["events"], (a, b)
EOF

# Faulty clients: half of 12 streams misbehave, one of each kind; the other
# six and the one_sample stream are checked. Realtime, 1 s + 1 s: each sends
# ceil(2 s x 8000 / 800) = 20 chunks, 16000 samples, 5 windows (window 8000,
# hop 2000, no tail). --timeout-s 3 ends the silent stream's wait (the
# server's idle timeout is 60 s) with its deadline.
"$CLI" bench --server "$ADDR" --model digits --streams 12 --realtime --duration-s 1 \
  --faulty-share 0.5 --timeout-s 3 --json >"$WORK/faulty.json" \
  || { cat "$WORK/faulty.json"; fail "bench --faulty-share exit code"; }
python3 - "$WORK/faulty.json" <<'EOF' || { cat "$WORK/faulty.json"; fail "bench --faulty-share report"; }
import json, sys
r = json.loads(open(sys.argv[1]).read())
assert r["faulty_streams"] == 6 and r["checked_streams"] == 7, r
kinds = {"vanish", "cancel", "deadline", "stall", "one_sample", "silent"}
assert set(r["faults"]) == kinds and all(sum(c.values()) == 1 for c in r["faults"].values()), r
assert r["faults"]["one_sample"] == {"OK": 1}, r["faults"]
assert r["faults"]["cancel"] == {"CANCELLED": 1}, r["faults"]
assert r["faults"]["deadline"] == {"DEADLINE_EXCEEDED": 1}, r["faults"]
assert r["checked_errors"] == 0 and r["windows_lost"] == 0 and r["windows_disordered"] == 0, r
assert r["windows_expected"] == 7 * 5, r["windows_expected"]
EOF
if "$CLI" bench --server "$ADDR" --model digits --faulty-share 1.5 2>"$WORK/bad.err"; then
  fail "a --faulty-share above 1 must fail"
fi
grep -q -- "--faulty-share" "$WORK/bad.err" || fail "bad --faulty-share message"

# A sweep prints one JSON line per stream count and the plot is well-formed SVG.
"$CLI" bench --server "$ADDR" --model untrained-digits --sweep 1,2 --duration-s 1 --warmup-s 0.5 \
  --json --plot "$WORK/sweep.svg" >"$WORK/sweep.json" || { cat "$WORK/sweep.json"; fail "sweep"; }
[ "$(wc -l <"$WORK/sweep.json")" = 2 ] || { cat "$WORK/sweep.json"; fail "sweep lines"; }
check_run "$WORK/sweep.json" 0 1
grep -q '"streams":1,' "$WORK/sweep.json" && grep -q '"streams":2,' "$WORK/sweep.json" \
  || fail "sweep stream counts"
if command -v xmllint >/dev/null; then
  xmllint --noout "$WORK/sweep.svg" || fail "plot is not well-formed XML"
else
  python3 -c 'import sys, xml.etree.ElementTree as E; E.parse(sys.argv[1])' "$WORK/sweep.svg" \
    || fail "plot is not well-formed XML"
fi
grep -q "<polyline" "$WORK/sweep.svg" || fail "plot has no lines"

# Without --json: a table with a header and one row.
"$CLI" bench --server "$ADDR" --model digits --streams 2 --duration-s 1 >"$WORK/table.txt"
grep -q "^STREAMS .*P99_MS" "$WORK/table.txt" || { cat "$WORK/table.txt"; fail "table header"; }
grep -Eq "^ +2 +[0-9]+ " "$WORK/table.txt" || { cat "$WORK/table.txt"; fail "table row"; }

# Failed streams: counted by code, reported in the JSON, exit code 1.
code=0
"$CLI" bench --server "$ADDR" --model nope --streams 3 --duration-s 1 --json \
  >"$WORK/nope.json" 2>"$WORK/nope.err" || code=$?
[ "$code" = 1 ] || fail "unknown model: exit code $code, want 1"
python3 - "$WORK/nope.json" <<'EOF' || { cat "$WORK/nope.json"; fail "unknown model report"; }
import json, sys
r = json.loads(open(sys.argv[1]).read())
assert r["errors"] == 3 and r["errors_by_code"] == {"NOT_FOUND": 3}, r
assert r["windows"] == 0 and r["latency_ms"]["p50"] is None and r["streams_completed"] == 0, r
EOF
grep -q "NOT_FOUND" "$WORK/nope.err" || fail "unknown model: message on stderr"

# Bad flags: exit code 1 before any stream, with a message naming the flag.
if "$CLI" bench --server "$ADDR" --model digits --sweep 1,x 2>"$WORK/bad.err"; then
  fail "a bad --sweep must fail"
fi
grep -q -- "--sweep" "$WORK/bad.err" || fail "bad --sweep message"
if "$CLI" bench --server "$ADDR" --model digits --chunks -1 2>"$WORK/bad.err"; then
  fail "a negative --chunks must fail"
fi
grep -q -- "--chunks" "$WORK/bad.err" || fail "bad --chunks message"

kill -TERM "$PID"
wait "$PID" || fail "server exit code $? after SIGTERM"
PID=
echo "cli_bench_test: all checks passed"
