#!/usr/bin/env bash
# The README's test command: installs what is missing (Debian 12), builds everything and runs
# every test (unit, integration, deploy checks). GPU tests skip cleanly without a GPU.
#   usage: scripts/test.sh [BUILD_DIR]     (default: build)
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BUILD="${1:-build}"
cd "$ROOT"
bash deploy/bootstrap.sh
cmake -S . -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo
cmake --build "$BUILD" -j "$(nproc)"
ctest --test-dir "$BUILD" --output-on-failure -j1
