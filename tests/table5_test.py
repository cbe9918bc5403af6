"""Tests of tools/table5.py (the Table 5 analog of results/paper.md).

Run by ctest (table5, which sets PYTHONPATH to the built Python package) or:
    PYTHONPATH=build/python /usr/bin/python3 -m pytest tests/table5_test.py

The tool runs once on resnet18 (its default split layer2, 128x28x28) with a few eval images at Q = 2
and 4, its photos made from Debian's plasma-workspace-wallpapers into a temporary directory (the
tool's "made when missing" path; deploy/bootstrap.sh installs the package). Its JSONL and Markdown
output are checked for structure and invariants, and its zstd -19 peer is checked against the zstd
command line on a committed feature (the figure codec_bench reports for it).
"""

import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
TOOL = os.path.join(REPO, "tools", "table5.py")
FEATURE = os.path.join(HERE, "data", "features", "resnet34_layer2_img0.npy")
LIMIT = 6
QS = (2, 4)


def _env():
    env = dict(os.environ)
    env.setdefault("PYTHONPATH", os.path.join(REPO, "build", "python"))
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    return env


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    d = tmp_path_factory.mktemp("table5")
    jsonl, md = d / "t5.jsonl", d / "t5.md"
    p = subprocess.run([sys.executable, TOOL, "--arch", "resnet18", "--limit", str(LIMIT),
                        "--q", ",".join(map(str, QS)), "--photos", str(d / "photos"),
                        "--jsonl", str(jsonl), "--md", str(md)],
                       capture_output=True, text=True, timeout=240, env=_env())
    assert p.returncode == 0, "table5.py failed (%d):\n%s\n%s" % (p.returncode, p.stdout, p.stderr)
    rows = [json.loads(l) for l in jsonl.read_text().splitlines() if l.strip()]
    return rows, md.read_text(), p.stdout


@pytest.fixture(scope="module")
def table5_module():
    sys.path.insert(0, os.path.join(REPO, "tools"))
    try:
        import table5
    finally:
        sys.path.pop(0)
    return table5


def test_rows_and_structure(run):
    rows, _, _ = run
    assert [r["q"] for r in rows] == list(QS)
    for r in rows:
        assert r["arch"] == "resnet18" and r["split"] == "layer2" and r["layer"] == "layer2"
        assert r["feature_shape"] == [128, 28, 28]
        assert r["elements"] == 128 * 28 * 28
        assert r["images"] == LIMIT
        assert r["weights"] == "random-init"
        assert r["batchnorm_layers"] > 0 and "BatchNorm re-estimated" in r["normalization"]
        assert r["meta"]["images"] == LIMIT and r["meta"]["calib_images"] == 27
        for k in ("enc_auto_ms", "dec_auto_ms", "enc_paper_ms", "dec_paper_ms"):
            assert r[k] > 0


def test_bytes_invariants(run):
    rows, _, _ = run
    for r in rows:
        raw = r["bytes_raw"]
        assert raw == 4 * r["elements"]
        assert 0 < r["bytes_auto"] <= r["max_bytes_auto"] <= raw
        assert 0 < r["bytes_paper"] <= r["max_bytes_paper"]
        assert 0 < r["min_bytes_zstd19"] <= r["bytes_zstd19"] < raw
        # Q-bit symbols, one byte each: zstd cannot beat Q/8 bytes per element by much on this
        # non-constant feature, and cannot exceed the symbol bytes plus its frame overhead.
        assert r["bytes_zstd19"] <= r["elements"] + 64
        assert r["auto_over_zstd19"] == pytest.approx(r["bytes_auto"] / r["bytes_zstd19"])
        assert r["paper_over_zstd19"] == pytest.approx(r["bytes_paper"] / r["bytes_zstd19"])
        assert r["raw_over_auto"] == pytest.approx(raw / r["bytes_auto"])
        assert sum(r["auto_layouts"].values()) == LIMIT
        assert set(r["auto_layouts"]) <= {"dense", "sparse", "context", "constant"}
    by_q = {r["q"]: r for r in rows}
    assert by_q[2]["bytes_auto"] < by_q[4]["bytes_auto"]
    assert by_q[2]["bytes_zstd19"] < by_q[4]["bytes_zstd19"]


def test_agreement_invariants(run):
    rows, _, _ = run
    for r in rows:
        n = r["images"]
        assert 1 <= r["distinct_top1_full"] <= n and 1 <= r["distinct_top1_split"] <= n
        for k in ("agree_float32", "agree_auto", "agree_paper"):
            assert isinstance(r[k], int) and 0 <= r[k] <= n
        # The head/tail pair is the unsplit model: the undecoded split agrees everywhere.
        assert r["agree_float32"] == n and r["rel_logit_err_float32_max"] < 1e-4
        # paper and auto code the same AIQ symbols losslessly: same decoded values, same logits.
        assert r["paper_same_values"] == n and r["agree_paper"] == r["agree_auto"]
        assert 0.0 <= r["top5_overlap_auto"] <= 1.0
        assert 0.0 <= r["rel_logit_err_auto_mean"] <= r["rel_logit_err_auto_max"]
    by_q = {r["q"]: r for r in rows}
    assert by_q[4]["rel_logit_err_auto_mean"] < by_q[2]["rel_logit_err_auto_mean"]


def test_markdown_matches_jsonl(run):
    rows, md, stdout = run
    assert md == stdout
    lines = [l for l in md.splitlines() if l.startswith("|")]
    header = [c.strip() for c in lines[0].strip("|").split("|")]
    assert set(lines[1].strip("|").split("|")) == {"---"} and len(lines[1].strip("|").split("|")) == len(header)
    body = [dict(zip(header, (c.strip() for c in l.strip("|").split("|")))) for l in lines[2:]]
    assert len(body) == len(rows)
    for cells, r in zip(body, rows):
        assert len(cells) == len(header)
        assert cells["arch"] == "resnet18" and int(cells["Q"]) == r["q"]
        assert cells["agree Q"] == "%d/%d" % (r["agree_auto"], r["images"])
        assert cells["agree f32"] == "%d/%d" % (r["agree_float32"], r["images"])
        assert int(cells["raw B"]) == r["bytes_raw"]
        assert int(cells["auto B"]) == round(r["bytes_auto"])
        assert int(cells["zstd-19 B"]) == round(r["bytes_zstd19"])


def test_zstd_peer_matches_cli(table5_module):
    """The tool's zstd -19 of the AIQ symbols = `zstd -19 --no-check` of the same bytes (and codec_bench's)."""
    import splitrans
    cli = shutil.which("zstd")
    assert cli, "the zstd command line is missing: apt-get install zstd (deploy/bootstrap.sh installs it)"
    x = np.load(FEATURE)
    z = table5_module.Zstd()
    for q in (2, 4, 8):
        data = splitrans.encode(x, q=q, mode="auto")
        sym = table5_module.symbols_of(splitrans.decode(data), splitrans.inspect(data), q)
        assert sym.dtype == np.uint8 and sym.size == x.size and int(sym.max()) < (1 << q)
        p = subprocess.run([cli, "-19", "--no-check", "-q", "-c"], input=sym.tobytes(), capture_output=True,
                           check=True, timeout=120)
        ours = z.compress(sym.tobytes())
        assert len(ours) > 0
        # from stdin the CLI does not know the content size: its frame header is 0-8 bytes shorter
        assert 0 <= len(ours) - len(p.stdout) <= 8, (q, len(ours), len(p.stdout))
        if q == 4:
            assert len(ours) == 25586  # results/codec_bench.md, resnet34_layer2_img0 Q=4, zstd-19 B


def test_symbols_check_catches_a_wrong_tensor(table5_module):
    import splitrans
    x = np.load(FEATURE)
    data = splitrans.encode(x, q=4)
    y = splitrans.decode(data)
    info = splitrans.inspect(data)
    table5_module.symbols_of(y, info, 4)
    bad = y.copy()
    bad.reshape(-1)[123] += np.float32(info["scale"]) * np.float32(0.25)  # off the quantization grid
    with pytest.raises(table5_module.CheckError):
        table5_module.symbols_of(bad, info, 4)
    with pytest.raises(table5_module.CheckError):
        table5_module.symbols_of(y, info, 2)  # symbols beyond 2 bits


def test_unknown_arch_is_refused():
    p = subprocess.run([sys.executable, TOOL, "--arch", "resnet9000", "--limit", "1"],
                       capture_output=True, text=True, timeout=120, env=_env())
    assert p.returncode != 0 and "unknown --arch" in p.stderr
