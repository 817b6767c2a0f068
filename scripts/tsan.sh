#!/usr/bin/env bash
# ThreadSanitizer pass over the code that synchronises on its own: the batcher
# (queues, workers, completions), the metrics registry (atomics from many
# threads), the HTTP endpoint (its thread and Stop) and the model repository
# with sessions scoring while versions are added, reloaded and unloaded
# (server_repository_concurrency_test). Builds only those tests, into build-tsan/.
#
# Not covered here: the gRPC reactors. Debian's gRPC is not built with TSan,
# so every hand-off through it (a read completing on another thread, OnDone
# after a write) is invisible to TSan and reported as a race — hundreds of
# false reports inside gRPC's own inline code. Those paths run under
# ASan+UBSan in scripts/test.sh instead, including the lifecycle stress tests.
set -euo pipefail
cd "$(dirname "$0")/.."
TARGETS=(server_batcher_test server_metrics_test server_http_test server_repository_concurrency_test)
cmake -S . -B build-tsan -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DWAVEPOOL_TSAN=ON \
  -DWAVEPOOL_BUILD_BENCHMARKS=OFF >/dev/null
cmake --build build-tsan -j "$(nproc)" --target "${TARGETS[@]}"
export TSAN_OPTIONS="halt_on_error=1 second_deadlock_stack=1 suppressions=$PWD/tests/tsan.supp"
for t in "${TARGETS[@]}"; do
  echo "tsan: $t"
  "build-tsan/tests/$t" --gtest_brief=1
done
echo "tsan: clean"
