"""Slow checks (ctest python_tools): the pip-installed package, and tools/evaluate.py."""
import csv
import io
import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest

import splitrans
from conftest import FEATURES, ROOT

pytestmark = pytest.mark.tools
PYTHON = sys.executable


def test_pip_install_target_offline(tmp_path):
    """pip install --no-build-isolation --no-deps --target of ./python, from a copy of the files it needs
    (python/, codec/, CMakeLists.txt), with no index; then the installed package codes alone."""
    src = tmp_path / "src"
    ignore = shutil.ignore_patterns("build", "dist", "*.egg-info", "__pycache__", "*.so")
    shutil.copytree(os.path.join(ROOT, "python"), src / "python", ignore=ignore)
    shutil.copytree(os.path.join(ROOT, "codec"), src / "codec", ignore=ignore)
    shutil.copy(os.path.join(ROOT, "CMakeLists.txt"), src / "CMakeLists.txt")
    site = tmp_path / "site"
    env = dict(os.environ, PIP_NO_INDEX="1", PIP_DISABLE_PIP_VERSION_CHECK="1", PYTHONPATH="")
    subprocess.run([PYTHON, "-m", "pip", "install", "--no-build-isolation", "--no-deps", "--target", str(site),
                    str(src / "python")], check=True, env=env, cwd=tmp_path)
    pkg = site / "splitrans"
    for f in ("__init__.py", "__init__.pyi", "_splitrans.pyi", "py.typed"):
        assert (pkg / f).exists(), f
    feature = os.path.join(FEATURES, "fmnist_stage2_img1.npy")
    out = tmp_path / "x.srns"
    script = (
        "import sys, numpy as np, splitrans\n"
        "assert splitrans.__file__.startswith(%r), splitrans.__file__\n"
        "x = np.load(%r)\n"
        "b = splitrans.encode(x, q=5, mode='auto')\n"
        "y = splitrans.decode(b)\n"
        "assert y.shape == x.shape and np.abs(y - x).max() <= splitrans.inspect(b)['scale']\n"
        "open(%r, 'wb').write(b)\n"
        "print(splitrans.__version__)\n" % (str(site), feature, str(out)))
    run = subprocess.run([PYTHON, "-c", script], check=True, capture_output=True, text=True,
                         env=dict(os.environ, PYTHONPATH=str(site)), cwd=tmp_path)
    assert run.stdout.strip() == splitrans.__version__
    # The pip build and the CMake build (this process) write the same bytes.
    assert out.read_bytes() == splitrans.encode(np.load(feature), q=5, mode="auto")


def test_evaluate_smoke():
    run = subprocess.run([PYTHON, os.path.join(ROOT, "tools", "evaluate.py"), "--limit", "200", "--split", "stage3",
                          "--q", "2,8", "--csv", "--jobs", "2"],
                         check=True, capture_output=True, text=True, cwd=ROOT)
    rows = list(csv.DictReader(io.StringIO(run.stdout)))
    assert [r["q"] for r in rows] == ["float32", "2", "8"]
    assert "200 Fashion-MNIST test images" in run.stderr
    by_q = {r["q"]: r for r in rows}
    assert float(by_q["float32"]["bytes_per_sample"]) == 64 * 7 * 7 * 4
    assert float(by_q["float32"]["agreement"]) == 1.0
    assert float(by_q["float32"]["top1"]) > 0.85
    assert float(by_q["2"]["bytes_per_sample"]) < float(by_q["8"]["bytes_per_sample"]) < 64 * 7 * 7
    assert float(by_q["8"]["agreement"]) >= 0.98
    assert abs(float(by_q["8"]["delta_top1"])) <= 0.02


def test_evaluate_clip_quantizer_lowers_the_error_at_q2():
    rel = {}
    for quantizer in ("aiq", "clip"):
        run = subprocess.run([PYTHON, os.path.join(ROOT, "tools", "evaluate.py"), "--limit", "100", "--split", "stage3",
                              "--q", "2", "--csv", "--jobs", "2", "--quantizer", quantizer],
                             check=True, capture_output=True, text=True, cwd=ROOT)
        rows = {r["q"]: r for r in csv.DictReader(io.StringIO(run.stdout))}
        assert rows["2"]["quantizer"] == quantizer and "quantizer %s" % quantizer in run.stderr
        rel[quantizer] = float(rows["2"]["rel_mse"])
        assert 0 < rel[quantizer] < 1
    assert rel["clip"] < rel["aiq"], rel


def test_evaluate_writes_the_policy_calibration(tmp_path):
    out = tmp_path / "calibration.json"
    subprocess.run([PYTHON, os.path.join(ROOT, "tools", "evaluate.py"), "--limit", "100", "--skip", "9000",
                    "--split", "all", "--q", "2,8", "--jobs", "2", "--accuracy-floor", "0.97",
                    "--calibration-out", str(out)], check=True, capture_output=True, text=True, cwd=ROOT)
    table = json.loads(out.read_text())
    assert table["metric"] == "top1_agreement_with_unsplit"
    assert table["accuracy_floor"] == 0.97
    assert table["images"] == 100 and "9000..9099" in table["data"]
    assert sorted((e["split"], e["q"]) for e in table["entries"]) == [
        (s, q) for s in ("stage1", "stage2", "stage3") for q in (2, 8)]
    for e in table["entries"]:
        assert 0 <= e["agreement"] <= 1 and e["bytes_per_sample"] > 0
    # The calibration committed with the bundled model is what the edge reads: same shape.
    committed = json.loads(open(os.path.join(ROOT, "models", "fmnist_resnet", "1", "calibration.json")).read())
    assert committed["metric"] == table["metric"] and len(committed["entries"]) >= 3 * 8
