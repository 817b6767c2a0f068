#!/usr/bin/env bash
# End to end through the real binaries: wavepool-server on a loopback port and
# the wavepool CLI. Usage: cli_test.sh SERVER_BIN CLI_BIN SOURCE_DIR
set -euo pipefail
SERVER_BIN=$1 CLI=$2 SRC=$3
WORK=$(mktemp -d)
cleanup() { [ -n "${PID:-}" ] && kill -TERM "$PID" 2>/dev/null; wait 2>/dev/null; rm -rf "$WORK"; }
trap cleanup EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

# A repository with the shipped models.
"$SERVER_BIN" --address 127.0.0.1:0 --model-repository "$SRC/models" >"$WORK/server.log" 2>&1 &
PID=$!
for _ in $(seq 1 100); do grep -q "ready on" "$WORK/server.log" && break; sleep 0.1; done
PORT=$(sed -n 's/.*(port \([0-9]*\)).*/\1/p' "$WORK/server.log")
[ -n "$PORT" ] || { cat "$WORK/server.log"; fail "server did not report ready"; }
ADDR=127.0.0.1:$PORT

"$CLI" health --server "$ADDR" | grep -qx SERVING || fail "health is not SERVING"
"$CLI" models --server "$ADDR" >"$WORK/models.txt"
grep -q "^untrained-digits .* no " "$WORK/models.txt" || { cat "$WORK/models.txt"; fail "models list"; }
"$CLI" describe untrained-digits --server "$ADDR" >"$WORK/describe.txt"
grep -q "pool1" "$WORK/describe.txt" || fail "describe lacks pool1"
"$CLI" describe untrained-digits --server "$ADDR" --override pool1.stride-time=1 >/dev/null 2>&1 \
  && fail "a misspelt override field must fail"
"$CLI" describe untrained-digits --server "$ADDR" --override pool1.stride_time=1 >"$WORK/describe1.txt"
cmp -s "$WORK/describe.txt" "$WORK/describe1.txt" && fail "override changed nothing"

# Streaming a 9.72 s file (77743 samples at 8 kHz, window 8000, hop 2000):
# complete windows j with 2000 j + 8000 <= 77743 -> j = 0..34, plus a padded tail.
"$CLI" stream "$SRC/tests/data/demo_digits.wav" --model untrained-digits --server "$ADDR" \
  --chunk-ms 37 >"$WORK/stream.txt"
[ "$(grep -c '^window' "$WORK/stream.txt")" = 36 ] || { cat "$WORK/stream.txt"; fail "expected 36 windows"; }
[ "$(grep -c '(padded)' "$WORK/stream.txt")" = 1 ] || fail "expected one padded window"
grep -q "^summary: 36 windows, [0-9]* events, 77743 samples" "$WORK/stream.txt" || fail "summary"
"$CLI" classify "$SRC/tests/data/demo_digits.wav" --model untrained-digits --server "$ADDR" >"$WORK/classify.txt"
diff <(grep '^window' "$WORK/stream.txt") <(grep '^window' "$WORK/classify.txt") \
  || fail "classify and stream differ"

# Clear errors with a non-zero exit.
if "$CLI" stream "$SRC/tests/data/demo_digits.wav" --model nope --server "$ADDR" 2>"$WORK/err.txt"; then
  fail "unknown model must fail"
fi
grep -q "NOT_FOUND" "$WORK/err.txt" || { cat "$WORK/err.txt"; fail "unknown model message"; }
if "$CLI" models --server 127.0.0.1:1 --timeout-s 5 2>"$WORK/err2.txt"; then fail "server down must fail"; fi
grep -q "UNAVAILABLE" "$WORK/err2.txt" || { cat "$WORK/err2.txt"; fail "server down message"; }
if "$CLI" stream /nonexistent.wav --model untrained-digits --server "$ADDR" 2>"$WORK/err3.txt"; then
  fail "missing file must fail"
fi
grep -q "nonexistent.wav" "$WORK/err3.txt" || fail "missing file message"

# The address is taken: a second server exits non-zero with a clear message.
if "$SERVER_BIN" --address "$ADDR" --model-repository "$SRC/models" >"$WORK/second.log" 2>&1; then
  fail "second server on a taken port must fail"
fi
grep -q "cannot listen" "$WORK/second.log" || { cat "$WORK/second.log"; fail "taken-port message"; }
if "$SERVER_BIN" --address 127.0.0.1:0 --model-repository /nonexistent >"$WORK/third.log" 2>&1; then
  fail "unreadable repository must fail"
fi
grep -q "/nonexistent" "$WORK/third.log" || fail "unreadable repository message"

# Training end to end on the committed clips (seconds): the model folder gets a
# spec with provenance, loadable weights and a JSON-lines log, and eval reads it.
"$CLI" train --spec "$SRC/specs/digits.json" --data "$SRC/tests/data/fsdd" --split all \
  --epochs 3 --batch-size 16 --out "$WORK/trained" >"$WORK/train.txt" || { cat "$WORK/train.txt"; fail "train"; }
grep -q "^epoch   3/3" "$WORK/train.txt" || fail "train progress lines"
[ "$(wc -l <"$WORK/trained/train_log.jsonl")" = 3 ] || fail "train log lines"
grep -q '"trained": true' "$WORK/trained/spec.json" || fail "provenance trained"
grep -q '"command": "wavepool train --spec' "$WORK/trained/spec.json" || fail "provenance command"
"$CLI" eval "$WORK/trained" --data "$SRC/tests/data/fsdd" --split all \
  --confusion-svg "$WORK/cm.svg" >"$WORK/eval.txt" || { cat "$WORK/eval.txt"; fail "eval"; }
grep -q "^accuracy .* of 20)" "$WORK/eval.txt" || { cat "$WORK/eval.txt"; fail "eval report"; }
grep -q "<svg" "$WORK/cm.svg" || fail "confusion svg"
# Shift consistency and test-time shift pooling (docs/pooling.md), with a blur
# override on the trained max-pool weights; bad values are errors.
"$CLI" eval "$WORK/trained" --data "$SRC/tests/data/fsdd" --split all --shift-consistency \
  --max-shift 80 --shift-step 40 --tta-shifts 0,40 --tta-pool max --override pool1.blur=3 \
  >"$WORK/shift.txt" || { cat "$WORK/shift.txt"; fail "eval --shift-consistency"; }
grep -q "^20 clips; test-time shift pooling: max over shifts 0,40" "$WORK/shift.txt" || { cat "$WORK/shift.txt"; fail "shift report header"; }
grep -q "forward passes" "$WORK/shift.txt" || fail "shift report cost"
grep -q "^  shift    80: consistency" "$WORK/shift.txt" || fail "shift report rows"
grep -q "^overall consistency .* (mean over 2 shifts, 40..80 samples)" "$WORK/shift.txt" || fail "shift report overall"
"$CLI" eval "$WORK/trained" --data "$SRC/tests/data/fsdd" --split all --tta-shifts 0 --tta-pool median \
  >"$WORK/bad.txt" 2>&1 && fail "--tta-pool median must fail"
grep -q "must be avg or max" "$WORK/bad.txt" || { cat "$WORK/bad.txt"; fail "tta-pool message"; }
"$CLI" eval "$WORK/trained" --data "$SRC/tests/data/fsdd" --split all --override pool1.blur=9 \
  >"$WORK/bad.txt" 2>&1 && fail "blur 9 must fail"
grep -q "blur (9) must be" "$WORK/bad.txt" || { cat "$WORK/bad.txt"; fail "blur message"; }

# A pooling sweep on the committed clips (seconds): one model per valid point,
# an invalid point reported with the validator's reason, the table, JSON lines
# and chart written; a second run reuses the trained models.
SWEEP=("$CLI" sweep --spec "$SRC/specs/digits.json" --data "$SRC/tests/data/fsdd"
  --split speaker:jackson --epochs 1 --batch-size 16 --time-strides 2,4 --freq-strides 2,4
  --pool-kinds max,blur --latency-runs 3 --max-shift 40 --shift-step 20 --out "$WORK/sweep")
"${SWEEP[@]}" >"$WORK/sweep.txt" 2>&1 || { cat "$WORK/sweep.txt"; fail "sweep"; }
[ "$(wc -l <"$WORK/sweep/sweep.jsonl")" = 8 ] || fail "sweep: 8 points"
[ "$(grep -c '"invalid"' "$WORK/sweep/sweep.jsonl")" = 4 ] || fail "sweep: f4 points are invalid"
grep -q '^| blur-t4-f2 | blur | 4 | 2 | 96x5x1 |' "$WORK/sweep/sweep.md" || { cat "$WORK/sweep/sweep.md"; fail "sweep table"; }
grep -q '"blur": 3' "$WORK/sweep/blur-t2-f2/spec.json" || fail "sweep: blur point's spec"
[ "$(grep -c '"shift_consistency":0\.\|"shift_consistency":1\.' "$WORK/sweep/sweep.jsonl")" = 4 ] || fail "sweep: shift consistency per trained point"
[ -f "$WORK/sweep/max-t2-f2/weights.safetensors" ] || fail "sweep model folder"
grep -q "<circle" "$WORK/sweep/sweep.svg" || fail "sweep chart"
"${SWEEP[@]}" >"$WORK/sweep2.txt" 2>&1 || { cat "$WORK/sweep2.txt"; fail "sweep rerun"; }
[ "$(grep -c "reusing the trained model" "$WORK/sweep2.txt")" = 4 ] || fail "sweep resume"

# certify: a row per budget over the committed clips with the shipped model, a
# plot; certified fractions never rise with the budget; bad budgets refused.
"$CLI" certify "$SRC/models/digits/2" --data "$SRC/tests/data/fsdd" --split all \
  --epsilons 1e-10,1e-6 --looseness-windows 2 --looseness-trials 4 --plot "$WORK/cert.svg" \
  >"$WORK/cert.txt" 2>/dev/null || { cat "$WORK/cert.txt"; fail "certify"; }
[ "$(grep -c '^1e-' "$WORK/cert.txt")" = 2 ] || { cat "$WORK/cert.txt"; fail "certify rows"; }
awk '/^1e-10 /{a=$3} /^1e-06 /{b=$3} END{exit !(a >= b)}' "$WORK/cert.txt" || { cat "$WORK/cert.txt"; fail "certified fraction rose with eps"; }
grep -q "<svg" "$WORK/cert.svg" || fail "certify svg"
if "$CLI" certify "$SRC/models/digits/2" --data "$SRC/tests/data/fsdd" --epsilons=-1 2>"$WORK/cert.err"; then
  fail "negative epsilon accepted"
fi
grep -q "not a finite number > 0" "$WORK/cert.err" || fail "certify epsilon message"

# ensemble: a model merged with itself is that model (same classes on every
# beat of the committed records); members from different specs are refused.
"$CLI" ensemble --out "$WORK/ens" "$SRC/models/ecg-beats/4" "$SRC/models/ecg-beats/4" >/dev/null \
  || fail "ensemble of a model with itself"
grep -q '"outChannels": 32,' "$WORK/ens/spec.json" || fail "ensemble: conv1 not widened to 2 x 16"
"$CLI" eval "$SRC/models/ecg-beats/4" --data "$SRC/tests/data/mitdb" --split all >"$WORK/eval_one.txt" \
  || fail "eval ecg-beats/4"
"$CLI" eval "$WORK/ens" --data "$SRC/tests/data/mitdb" --split all >"$WORK/eval_ens.txt" || fail "eval ensemble"
diff "$WORK/eval_one.txt" "$WORK/eval_ens.txt" || fail "an ensemble of one model twice differs from it"
if "$CLI" ensemble --out "$WORK/ens2" "$SRC/models/ecg-beats/4" "$SRC/models/ecg-beats/3" 2>"$WORK/ens.err"; then
  fail "members from different specs accepted"
fi
grep -q "another spec" "$WORK/ens.err" || { cat "$WORK/ens.err"; fail "ensemble error message"; }

# SIGTERM: drains and exits 0.
kill -TERM "$PID"
wait "$PID" || fail "server exit code $? after SIGTERM"
PID=
echo "cli_test: all checks passed"
