#!/usr/bin/env bash
# Sanitizer run (CI runs it after scripts/test.sh): builds with AddressSanitizer +
# UndefinedBehaviorSanitizer (CMake preset "asan", CPU only) and runs the codec, common, edge and
# integration tests (labels cpu and integration: unit tests, in-process serving tests and the
# child-process fault tests) under them. Any report fails the run (UBSan does not recover; ASan
# and LeakSanitizer exit non-zero).
#   usage: scripts/sanitize.sh            (build directory: build-asan)
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
bash deploy/bootstrap.sh
start=$(date +%s)
cmake --preset asan
cmake --build build-asan -j "$(nproc)"
built=$(date +%s)
export ASAN_OPTIONS="detect_leaks=1:abort_on_error=0:strict_string_checks=1:detect_stack_use_after_return=0"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"
ctest --test-dir build-asan --output-on-failure -j1 -L 'cpu|integration'
end=$(date +%s)
echo "sanitize.sh: build $((built - start)) s, tests $((end - built)) s"
