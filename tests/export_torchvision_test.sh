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
# BatchNorm re-estimation (--bn-images): on images from a directory, the running stats become the
# images' batch statistics (cumulative average) and the model is back in eval mode.
bn="$(mktemp -d)"
trap 'rm -rf "$bn"' EXIT
if ! "$py" - "$root/tools" "$bn" <<'EOF2'
import sys, torch
from PIL import Image
sys.path.insert(0, sys.argv[1])
import export_torchvision as et
g = torch.Generator().manual_seed(3)
for i in range(4):
    px = (torch.rand(32, 32, 3, generator=g) * 255).to(torch.uint8).numpy()
    Image.fromarray(px).save("%s/img%d.jpg" % (sys.argv[2], i), quality=90)
x, files = et.load_images(sys.argv[2], 32)
assert x.shape == (4, 3, 32, 32) and files == ["img%d.jpg" % i for i in range(4)], (x.shape, files)
model, spec, _ = et.build_model("resnet18")
n = et.reestimate_bn(model, x, batch=2)
assert n == 20, n
# bn1 sees conv1's output directly: its running mean is the mean over the 4 images (two equal batches).
with torch.no_grad():
    y = model.conv1(x)
ref_mean, ref_var = y.mean((0, 2, 3)), y.var((0, 2, 3), unbiased=True)
assert torch.allclose(model.bn1.running_mean, ref_mean, rtol=1e-3, atol=1e-4), "bn1 mean"
assert not model.training and all(not m.training for m in model.modules()), "not back in eval mode"
assert model.bn1.momentum == 0.1
print("bn re-estimation: OK (%d BatchNorm layers)" % n)
EOF2
then
  echo "FAIL: BatchNorm re-estimation"
  exit 1
fi
echo "PASS"
