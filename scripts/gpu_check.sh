#!/usr/bin/env bash
# GPU check of the CUDA codec on a bare GPU machine (nvcc, cmake, ninja; no Debian packages):
# builds the codec alone with CUDA, runs the "gpu" tests (plus the CPU model test of the GPU
# core), compute-sanitizer memcheck on the malformed-input tests, then the GPU benchmark, and
# prints a short table. Results go to $OUT when it is set
# (logs, JUnit XML, bench.json, summary.txt). Needs GoogleTest sources in .gtest-src/ (run
# scripts/fetch_gtest_src.sh on a Debian machine first; carry the folder along).
#   usage: scripts/gpu_check.sh [BUILD_DIR]     (default: build-gpu)
#   env:   OUT (results folder), GPU_CHECK_ARCH (e.g. 90; default: the GPU's compute capability),
#          GPU_CHECK_BENCH_RUNS (default 200), GPU_CHECK_CMAKE_ARGS (extra configure arguments,
#          e.g. -DCMAKE_DISABLE_FIND_PACKAGE_GTest=ON to rehearse a bare machine elsewhere)
set -uo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BUILD="${1:-build-gpu}"
RESULTS="${OUT:-$ROOT/$BUILD/gpu-check}"
RUNS="${GPU_CHECK_BENCH_RUNS:-200}"
cd "$ROOT"
mkdir -p "$RESULTS"
START=$(date +%s)
status_build="not run" status_tests="not run" status_model="not run" status_bench="not run"
status_sanitizer="not run"
rc=0

log() { echo "gpu_check: $*"; }
elapsed() { echo $(( $(date +%s) - START ))s; }

# --- tools --------------------------------------------------------------------------------
NVCC="$(command -v nvcc || true)"
[ -z "$NVCC" ] && [ -x /usr/local/cuda/bin/nvcc ] && NVCC=/usr/local/cuda/bin/nvcc
if [ -z "$NVCC" ]; then
  log "nvcc not found (PATH or /usr/local/cuda/bin)"; exit 2
fi
export CUDACXX="$NVCC"
export PATH="$(dirname "$NVCC"):$PATH"
GEN="Ninja"
command -v ninja >/dev/null 2>&1 || GEN="Unix Makefiles"
JOBS="$(nproc 2>/dev/null || echo 8)"
ARCH="${GPU_CHECK_ARCH:-}"
if [ -z "$ARCH" ] && command -v nvidia-smi >/dev/null 2>&1; then
  ARCH="$(nvidia-smi --query-gpu=compute_cap --format=csv,noheader 2>/dev/null | head -1 | tr -d ' .')"
fi
[ -z "$ARCH" ] && ARCH="80;86;89;90"
{
  nvidia-smi 2>&1 || true
  "$NVCC" --version
  cmake --version | head -1
  echo "generator: $GEN, jobs: $JOBS, CUDA architectures: $ARCH"
} > "$RESULTS/environment.txt" 2>&1
GPU_NAME="$(nvidia-smi --query-gpu=name,driver_version --format=csv,noheader 2>/dev/null | head -1)"
log "${GPU_NAME:-no nvidia-smi}, nvcc $("$NVCC" --version | sed -n 's/.*release \([0-9.]*\).*/\1/p'), arch $ARCH, $GEN"

TESTS=ON
if [ ! -f "$ROOT/.gtest-src/googletest/CMakeLists.txt" ]; then
  if [ -f /usr/src/googletest/CMakeLists.txt ]; then
    bash "$ROOT/scripts/fetch_gtest_src.sh" >/dev/null
  else
    log "no .gtest-src/ (run scripts/fetch_gtest_src.sh where GoogleTest exists): tests not built"
    TESTS=OFF
  fi
fi

# --- configure and build (codec only, CUDA) -------------------------------------------------
log "configure + build ($(elapsed))"
if timeout 120 cmake -S . -B "$BUILD" -G "$GEN" -DCMAKE_BUILD_TYPE=Release -DSPLITRANS_CODEC_ONLY=ON \
      -DSPLITRANS_BUILD_BENCH=OFF -DSPLITRANS_BUILD_TESTS=$TESTS -DCMAKE_CUDA_ARCHITECTURES="$ARCH" \
      ${GPU_CHECK_CMAKE_ARGS:-} \
      > "$RESULTS/configure.log" 2>&1; then
  targets="gpu_bench"
  [ "$TESTS" = ON ] && targets="$targets gpu_codec_test gpu_core_test"
  if timeout 330 cmake --build "$BUILD" -j "$JOBS" --target $targets > "$RESULTS/build.log" 2>&1; then
    status_build="ok"
  else
    status_build="FAILED"; rc=1
    tail -40 "$RESULTS/build.log"
  fi
else
  status_build="configure FAILED"; rc=1
  tail -40 "$RESULTS/configure.log"
fi
log "build: $status_build ($(elapsed))"

# --- tests ----------------------------------------------------------------------------------
if [ "$status_build" = ok ] && [ "$TESTS" = ON ]; then
  junit=()
  ctest --help 2>/dev/null | grep -q -- --output-junit && junit=(--output-junit "$RESULTS/ctest-gpu.xml")
  timeout 240 ctest --test-dir "$BUILD" -L gpu --output-on-failure --timeout 200 "${junit[@]}" \
    > "$RESULTS/ctest-gpu.log" 2>&1
  t=$?
  summary="$(grep -E 'tests passed|tests failed' "$RESULTS/ctest-gpu.log" | tail -1)"
  skipped="$(grep -c '(Skipped)' "$RESULTS/ctest-gpu.log" || true)"
  if [ $t -eq 0 ]; then status_tests="ok: $summary, $skipped skipped"; else status_tests="FAILED: $summary"; rc=1; fi
  [ $t -ne 0 ] && grep -E 'Failure|FAILED|Expected|Which is|first difference|error' "$RESULTS/ctest-gpu.log" | head -60
  # The CPU model of the GPU core on this machine's CPU and libm (seconds).
  if timeout 120 "$BUILD/codec/cuda/gpu_core_test" > "$RESULTS/gpu_core_test.log" 2>&1; then
    status_model="ok"
  else
    status_model="FAILED"; rc=1
    grep -E 'Failure|FAILED' "$RESULTS/gpu_core_test.log" | head -20
  fi
fi
log "gpu tests: $status_tests; gpu_core_test: $status_model ($(elapsed))"

# --- compute-sanitizer on the malformed-input and edge-size tests (out-of-bounds device access) --
SANITIZER="$(command -v compute-sanitizer || true)"
[ -z "$SANITIZER" ] && [ -x "$(dirname "$NVCC")/compute-sanitizer" ] && SANITIZER="$(dirname "$NVCC")/compute-sanitizer"
if [ "$status_build" = ok ] && [ "$TESTS" = ON ] && [ -n "$SANITIZER" ]; then
  if timeout 150 "$SANITIZER" --tool memcheck --error-exitcode 86 "$BUILD/codec/cuda/gpu_codec_test" \
       --gtest_filter='*Malformed*:*HostSideArgumentErrors*:*RandomDataAndEdgeSizes*' \
       > "$RESULTS/sanitizer.log" 2>&1; then
    status_sanitizer="ok: $(grep -E 'ERROR SUMMARY' "$RESULTS/sanitizer.log" | tail -1)"
  else
    status_sanitizer="FAILED (exit $?)"; rc=1
    grep -E 'ERROR SUMMARY|Invalid|out of bounds|FAILED' "$RESULTS/sanitizer.log" | head -20
  fi
elif [ -z "$SANITIZER" ]; then
  status_sanitizer="skipped (no compute-sanitizer)"
fi
# racecheck (shared memory hazards) and synccheck (barrier misuse) on one round-trip test, while
# the time budget allows (they are 10-100x slower); a time-out is reported, not counted as failure.
for tool in racecheck synccheck; do
  if [ "$status_build" = ok ] && [ "$TESTS" = ON ] && [ -n "$SANITIZER" ] && [ $(( $(date +%s) - START )) -lt 300 ]; then
    timeout 90 "$SANITIZER" --tool $tool --error-exitcode 86 "$BUILD/codec/cuda/gpu_codec_test" \
      --gtest_filter='*RandomDataAndEdgeSizes*' > "$RESULTS/$tool.log" 2>&1
    r=$?
    if [ $r -eq 0 ]; then s="ok: $(grep -E 'ERROR SUMMARY|RACECHECK SUMMARY' "$RESULTS/$tool.log" | tail -1)"
    elif [ $r -eq 124 ]; then s="timed out after 90 s (inconclusive)"
    else s="FAILED (exit $r)"; rc=1; grep -E 'SUMMARY|hazard|Barrier|Invalid' "$RESULTS/$tool.log" | head -10; fi
    status_sanitizer="$status_sanitizer; $tool $s"
  fi
done
log "compute-sanitizer: $status_sanitizer ($(elapsed))"

# --- benchmark ------------------------------------------------------------------------------
if [ "$status_build" = ok ]; then
  timeout 240 "$BUILD/codec/cuda/gpu_bench" --runs "$RUNS" --json "$RESULTS/bench.json" > "$RESULTS/bench.txt" 2>&1
  b=$?
  if [ $b -eq 0 ] && grep -q 'no usable GPU' "$RESULTS/bench.txt"; then status_bench="skipped (no usable GPU)"
  elif [ $b -eq 0 ]; then status_bench="ok"; else status_bench="FAILED (exit $b)"; rc=1; fi
  cat "$RESULTS/bench.txt"
fi

# --- summary --------------------------------------------------------------------------------
{
  echo "== gpu_check summary ($(elapsed)) =="
  printf '%-16s %s\n' "device" "$(nvidia-smi --query-gpu=name,driver_version,compute_cap --format=csv,noheader 2>/dev/null | head -1)"
  printf '%-16s %s\n' "build" "$status_build"
  printf '%-16s %s\n' "ctest -L gpu" "$status_tests"
  printf '%-16s %s\n' "gpu_core_test" "$status_model"
  printf '%-16s %s\n' "sanitizer" "$status_sanitizer"
  printf '%-16s %s\n' "gpu_bench" "$status_bench"
  if [ -f "$RESULTS/bench.txt" ]; then
    grep -E '^[0-9]+ x |GPU encode  |GPU encode \(|GPU decode \(host|GPU decode \(dev|CPU encode|CPU decode' \
      "$RESULTS/bench.txt" | sed -E 's/\(p10[^)]*\)//'
  fi
  echo "results: $RESULTS"
} | tee "$RESULTS/summary.txt"
exit $rc
