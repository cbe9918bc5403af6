#!/usr/bin/env bash
# Checks that tools/export_torchvision.py splits resnet18 into head/tail
# TorchScript modules whose composition reproduces the full model
# (eager, traced, and traced at another batch size). Writes no files.
# Exit: 0 pass, 1 mismatch/failure, 77 skipped (no torch/torchvision).
# Override the interpreter with PYTHON=... (default: Debian's /usr/bin/python3).
set -u
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(dirname "$here")"
py="${PYTHON:-/usr/bin/python3}"

if ! "$py" -c 'import torch, torchvision' >/dev/null 2>&1; then
  echo "SKIP: $py cannot import torch and torchvision (apt-get install python3-torch python3-torchvision)"
  exit 77
fi

out="$("$py" "$root/tools/export_torchvision.py" --selftest --arch resnet18 --threads 1 2>&1)"
rc=$?
echo "$out"
if [ $rc -ne 0 ]; then
  echo "FAIL: export_torchvision.py --selftest exited $rc"
  exit 1
fi
if echo "$out" | grep -q MISMATCH || ! echo "$out" | grep -q '^selftest: 5/5 checks passed'; then
  echo "FAIL: unexpected selftest result"
  exit 1
fi
echo "PASS"
