#!/usr/bin/env bash
# Builds the libFuzzer targets in fuzz/ with clang-14 (ASan + UBSan, into
# build-fuzz/) and runs each for SECONDS_PER_TARGET (default 60) on its corpus,
# one after another. Prints per target the executions, exec/s, coverage (cov:
# edges, ft: features, from libFuzzer's final line) and corpus size, and
# whether it crashed; exits 1 if any did (the input is kept in
# build-fuzz/artifacts/<target>/: reproduce with build-fuzz/fuzz/<target> FILE).
#
#   bash scripts/fuzz.sh [SECONDS_PER_TARGET]
#   FUZZ_TARGETS="stream_fuzzer spec_fuzzer" bash scripts/fuzz.sh 300
#   FUZZ_JOBS=1 bash scripts/fuzz.sh    # build with one job (default: all cores)
#
# Corpora: the committed seeds (fuzz/corpus/<target>/, made by
# fuzz/make_corpus.py with the dictionaries in fuzz/dict/) are copied into
# build-fuzz/corpus/<target>/, which keeps what runs find, so later runs start
# from there. docs/reliability.md says
# what each target feeds.
set -euo pipefail
cd "$(dirname "$0")/.."
SECONDS_PER_TARGET=${1:-60}
ALL_TARGETS=(spec_fuzzer pool_override_fuzzer safetensors_fuzzer wav_fuzzer wfdb_record_fuzzer
  wfdb_annotations_fuzzer server_config_fuzzer auth_fuzzer http_fuzzer stream_fuzzer)
read -r -a TARGETS <<< "${FUZZ_TARGETS:-${ALL_TARGETS[*]}}"

# clang-14 and its runtime libraries (libFuzzer, the sanitizers), Debian bookworm.
bash scripts/deps.sh clang-14 libclang-rt-14-dev

# Debug at -O1: assertions on, fast enough to fuzz. Only the libraries the
# targets link are built (no tests, benchmarks or CLI).
cmake -S . -B build-fuzz -G Ninja -DCMAKE_C_COMPILER=clang-14 -DCMAKE_CXX_COMPILER=clang++-14 \
  -DCMAKE_BUILD_TYPE=Debug "-DCMAKE_C_FLAGS_DEBUG=-O1 -g" "-DCMAKE_CXX_FLAGS_DEBUG=-O1 -g" \
  -DWAVEPOOL_FUZZ=ON -DWAVEPOOL_BUILD_TESTS=OFF -DWAVEPOOL_BUILD_BENCHMARKS=OFF >/dev/null
cmake --build build-fuzz -j "${FUZZ_JOBS:-$(nproc)}" --target "${TARGETS[@]}"

export ASAN_OPTIONS="detect_leaks=1:allocator_may_return_null=0${ASAN_OPTIONS:+:$ASAN_OPTIONS}"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1${UBSAN_OPTIONS:+:$UBSAN_OPTIONS}"
rows=()
failed=0
for t in "${TARGETS[@]}"; do
  corpus="build-fuzz/corpus/$t"
  artifacts="build-fuzz/artifacts/$t"
  log="build-fuzz/logs/$t.log"
  mkdir -p "$corpus" "$artifacts" "$(dirname "$log")"
  cp -n "fuzz/corpus/$t/"* "$corpus/" 2>/dev/null || true
  echo "fuzz: $t for ${SECONDS_PER_TARGET}s"
  dict=()
  [ -f "fuzz/dict/$t.dict" ] && dict=(-dict="fuzz/dict/$t.dict")
  rc=0
  # -timeout: one input taking 60 s is a hang. -rss_limit_mb: libFuzzer's default.
  "build-fuzz/fuzz/$t" -max_total_time="$SECONDS_PER_TARGET" -timeout=60 -rss_limit_mb=2048 \
    -print_final_stats=1 -artifact_prefix="$artifacts/" "${dict[@]}" "$corpus" >"$log" 2>&1 || rc=$?
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
  speed=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)
  last=$(grep -E '^#[0-9]+.*cov: ' "$log" | tail -1 || true)
  cov=$(sed -n 's/.* cov: \([0-9]*\).*/\1/p' <<<"$last")
  ft=$(sed -n 's/.* ft: \([0-9]*\).*/\1/p' <<<"$last")
  corp=$(sed -n 's/.* corp: \([^ ]*\).*/\1/p' <<<"$last")
  result=ok
  if [ "$rc" -ne 0 ]; then
    result="CRASHED (exit $rc; $(grep -m1 -o 'Test unit written to [^ ]*' "$log" || echo "see $log"))"
    failed=1
    grep -m1 -E 'ERROR: |fuzz invariant broken|runtime error' "$log" || true
  fi
  rows+=("$(printf '%-24s %12s %8s %7s %7s %12s  %s' "$t" "${execs:-?}" "${speed:-?}" \
    "${cov:-?}" "${ft:-?}" "${corp:-?}" "$result")")
done

echo
echo "fuzz: ${SECONDS_PER_TARGET}s per target, logs in build-fuzz/logs/"
printf '%-24s %12s %8s %7s %7s %12s  %s\n' target executions exec/s cov ft corpus result
printf '%s\n' "${rows[@]}"
exit "$failed"
