"""tools/train_charlm.py's corpus and split, and tools/evaluate_charlm.py, against the bundled
character LM (models/kjv_charlm/1) and its held-out sample (tests/data/kjv_heldout.txt).

Run by ctest `charlm_tools` with /usr/bin/python3 and PYTHONPATH=<build>/python (the splitrans
package). Needs Debian's bible-kjv (deploy/bootstrap.sh installs it).
"""
import json
import os
import shutil
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tools"))
sys.dont_write_bytecode = True

import train_charlm  # noqa: E402

MODEL = os.path.join(ROOT, "models", "kjv_charlm", "1")
SAMPLE = os.path.join(ROOT, "tests", "data", "kjv_heldout.txt")


@pytest.fixture(scope="module")
def corpus():
    if shutil.which("bible") is None:
        pytest.fail("no `bible` program: apt-get install bible-kjv (deploy/bootstrap.sh)")
    chapters = train_charlm.load_chapters()
    return chapters, train_charlm.split_corpus(chapters)


@pytest.fixture(scope="module")
def manifest():
    with open(os.path.join(MODEL, "manifest.json")) as f:
        return json.load(f)


def test_corpus_is_the_whole_kjv(corpus):
    chapters, parts = corpus
    assert len(chapters) == 1189  # Genesis 1 .. Revelation 22
    assert chapters[0].startswith("In the beginning God created the heaven and the earth.")
    assert chapters[-1].endswith("The grace of our Lord Jesus Christ be with you all. Amen.")
    assert not any(c.isdigit() for c in chapters[0])  # verse numbers are dropped
    total = sum(len(c) for c in chapters) + len(chapters) - 1
    assert sum(len(v) for v in parts.values()) == total - 2  # three parts, each joined by newlines


def test_split_is_by_chapter_and_disjoint(corpus):
    chapters, parts = corpus
    assert parts["test"] == "\n".join(chapters[9::10])
    assert parts["tune"] == "\n".join(chapters[4::10])
    train = [c for i, c in enumerate(chapters) if i % 10 not in (4, 9)]
    assert parts["train"] == "\n".join(train)


def test_bundled_model_matches_the_corpus(corpus, manifest):
    chapters, parts = corpus
    assert manifest["labels"] == sorted(set("\n".join(chapters)))
    assert manifest["input"]["vocab"] == len(manifest["labels"])
    assert manifest["input"]["dtype"] == "INT64"
    assert manifest["corpus"]["chars"] == {k: len(v) for k, v in parts.items()}


def test_heldout_sample_is_test_text(corpus):
    _, parts = corpus
    with open(SAMPLE) as f:
        sample = f.read()
    assert len(sample) >= 1000 + 64
    assert parts["test"].startswith(sample)


def test_windows():
    import numpy as np
    ids = np.arange(10, dtype=np.int64)
    x, y = train_charlm.windows(ids, 4, 3)
    assert x.tolist() == [[0, 1, 2, 3], [3, 4, 5, 6]]
    assert y.tolist() == [4, 7]


def test_evaluate_charlm(tmp_path, manifest):
    out = tmp_path / "rows.json"
    r = subprocess.run([sys.executable, os.path.join(ROOT, "tools", "evaluate_charlm.py"), "--limit", "200",
                        "--q", "2,8", "--json", str(out)], capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr
    rows = {str(row["q"]): row for row in json.load(open(out))}
    assert set(rows) == {"unsplit", "float32", "float16", "2", "8"}
    feature = manifest["splits"][manifest["default_split"]]["feature_shape"]
    f32 = 4 * feature[0] * feature[1]
    assert rows["float32"]["bytes_per_request"] == f32
    assert rows["float32"]["agreement"] == 1.0  # tail(head(x)) == full(x)
    assert rows["unsplit"]["top1"] > 0.4  # a trained model, not noise (1/63 by chance)
    assert rows["8"]["agreement"] >= 0.97
    assert rows["8"]["bytes_per_request"] < f32 / 4  # at most one byte per value before coding
    assert rows["2"]["bytes_per_request"] < rows["8"]["bytes_per_request"]
    assert abs(rows["8"]["vs_f16"] * rows["8"]["bytes_per_request"] - f32 / 2) < 1e-6 * f32
    assert "| 8 | auto |" in r.stdout
