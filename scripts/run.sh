#!/usr/bin/env bash
# The README's main command: installs what is missing (Debian 12), builds, then runs the split
# inference demo (cloud + edge on loopback, Fashion-MNIST test set through the client) and prints
# accuracy vs the unsplit model, compression and the latency breakdown.
#   usage: scripts/run.sh [demo.sh options, e.g. --limit 1000 --q 4]
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
bash deploy/bootstrap.sh
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo
cmake --build build -j "$(nproc)"
exec scripts/demo.sh build "$@"
