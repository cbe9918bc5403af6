"""The package and the splitrans-codec CLI write and read the same bytes."""
import csv
import io
import json
import os
import subprocess

import numpy as np
import pytest

import splitrans
from conftest import FEATURES, feature_files


def run(cli, *args):
    return subprocess.run([cli, *args], check=True, capture_output=True, text=True).stdout


# Paper mode's exhaustive search differs from Algorithm 1 on the preact features at q 4 and 5.
CASES = [(q, mode, "alg1") for q in (1, 4, 8) for mode in splitrans.MODES] + [(q, "paper", "exhaustive") for q in (4, 5)]


@pytest.mark.parametrize("name", feature_files())
def test_encode_bytes_identical(cli, tmp_path, name):
    src = os.path.join(FEATURES, name)
    x = np.load(src)
    for q, mode, search in CASES:
        out = tmp_path / "cli.srns"
        run(cli, "encode", src, str(out), "--q", str(q), "--mode", mode, "--search", search)
        assert splitrans.encode(x, q=q, mode=mode, search=search) == out.read_bytes(), (q, mode, search)


def test_python_arrays_through_npy(cli, tmp_path):
    """Arrays made in Python, saved with numpy.save, encode the same in both (float32 and float16)."""
    rng = np.random.default_rng(7)
    for i, x in enumerate([np.maximum(rng.standard_normal((64, 9, 11)), 0).astype(np.float32),
                           rng.standard_normal((5, 1000)).astype(np.float16),
                           np.linspace(-3, 3, 4097, dtype=np.float32)]):
        npy = tmp_path / ("x%d.npy" % i)
        np.save(npy, x)
        out = tmp_path / ("x%d.srns" % i)
        run(cli, "encode", str(npy), str(out), "--q", "5")
        data = out.read_bytes()
        assert splitrans.encode(x, q=5) == data
        # decode: the CLI's .npy equals the package's array (dtype and shape included)
        back = tmp_path / ("x%d.out.npy" % i)
        run(cli, "decode", str(out), str(back))
        y = np.load(back)
        z = splitrans.decode(data)
        assert y.dtype == z.dtype and y.shape == z.shape
        np.testing.assert_array_equal(y, z)


@pytest.mark.parametrize("mode", ["auto", "paper", "sparse", "dense"])
def test_inspect_matches_cli_json(cli, tmp_path, mode):
    src = os.path.join(FEATURES, "fmnist_stage3_img2.npy")
    out = tmp_path / "x.srns"
    run(cli, "encode", src, str(out), "--q", "4", "--mode", mode)
    want = json.loads(run(cli, "inspect", str(out), "--json"))
    got = splitrans.inspect(out.read_bytes())
    del want["file"]
    assert list(got) == list(want)
    assert np.float32(got.pop("scale")) == np.float32(want.pop("scale"))
    want["shape"] = tuple(want["shape"])
    for a, b in zip(got.pop("sections"), want.pop("sections")):
        assert a == pytest.approx(b, rel=1e-12)
    assert got == pytest.approx(want, rel=1e-12)


def test_search_matches_cli_csv(cli):
    src = os.path.join(FEATURES, "fmnist_stage2_img2.npy")
    x = np.load(src)
    for q in (2, 6):
        rows = list(csv.DictReader(io.StringIO(run(cli, "search", src, "--q", str(q), "--csv"))))
        got = splitrans.search(x, q)
        assert len(got) == len(rows) > 0
        for g, r in zip(got, rows):
            for key in ("n", "k", "len_d", "coded_bytes"):
                assert g[key] == int(r[key]), key
            for key in ("visited_by_algorithm1", "algorithm1_choice", "exhaustive_choice", "smallest_coded"):
                assert g[key] == bool(int(r[key])), key
            assert g["entropy_bits_per_symbol"] == pytest.approx(float(r["entropy_bits_per_symbol"]), abs=1e-6)
            assert g["cost_bits"] == pytest.approx(float(r["cost_bits"]), abs=0.06)
