"""Tests of tools/plot_search.py (the Fig. 4 analog of results/paper.md).

Run by ctest (plot_search, which sets SPLITRANS_CODEC to the built CLI) or:
    SPLITRANS_CODEC=build/codec/splitrans-codec /usr/bin/python3 -m pytest tests/plot_search_test.py

The table the tool prints is checked against the CLI's CSV read here independently: the exhaustive
N must be the row with the least cost_bits, Algorithm 1's N the row flagged algorithm1_choice, the
smallest N the row with the fewest coded_bytes, and the visited count the rows flagged visited.
"""

import csv
import io
import os
import stat
import struct
import subprocess
import sys
import zlib

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
TOOL = os.path.join(REPO, "tools", "plot_search.py")
FEATURE = os.path.join(HERE, "data", "features", "fmnist_stage3_img0.npy")
QS = (2, 4)


@pytest.fixture(scope="module")
def cli():
    path = os.environ.get("SPLITRANS_CODEC", os.path.join(REPO, "build", "codec", "splitrans-codec"))
    assert os.path.isfile(path) and os.access(path, os.X_OK), \
        f"splitrans-codec not found at {path}: set SPLITRANS_CODEC (ctest does)"
    return path


def run_tool(*args, env=None):
    return subprocess.run([sys.executable, TOOL, *args], capture_output=True, text=True, timeout=300,
                          env=env)


def csv_rows(cli, q):
    p = subprocess.run([cli, "search", "--csv", "--q", str(q), FEATURE], capture_output=True, text=True,
                       check=True, timeout=120)
    return list(csv.DictReader(io.StringIO(p.stdout)))


def parse_tables(text):
    """{Q: {column: cell}} from the tool's Markdown table (one feature)."""
    lines = [l for l in text.splitlines() if l.startswith("|")]
    header = [c.strip() for c in lines[0].strip("|").split("|")]
    out = {}
    for l in lines[2:]:
        cells = dict(zip(header, (c.strip() for c in l.strip("|").split("|"))))
        out[int(cells["Q"])] = cells
    return out


def check_png(path):
    data = open(path, "rb").read()
    assert len(data) > 100, f"PNG is {len(data)} bytes"
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "bad PNG signature"
    pos, chunks = 8, []
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos:pos + 4])
        kind = data[pos + 4:pos + 8]
        body = data[pos + 8:pos + 8 + length]
        (crc,) = struct.unpack(">I", data[pos + 8 + length:pos + 12 + length])
        assert zlib.crc32(kind + body) & 0xFFFFFFFF == crc, f"CRC mismatch in chunk {kind!r}"
        chunks.append((kind, body))
        pos += 12 + length
    assert pos == len(data), "trailing bytes after the last chunk"
    assert chunks[0][0] == b"IHDR" and chunks[-1][0] == b"IEND", [k for k, _ in chunks]
    width, height = struct.unpack(">II", chunks[0][1][:8])
    assert width > 100 and height > 100, (width, height)
    idat = b"".join(b for k, b in chunks if k == b"IDAT")
    assert len(zlib.decompress(idat)) > 0


def test_table_and_png_match_the_csv(cli, tmp_path):
    png, md = tmp_path / "fig.png", tmp_path / "table.md"
    p = run_tool(FEATURE, "--q", ",".join(map(str, QS)), "--cli", cli, "--png", str(png),
                 "--markdown", str(md))
    assert p.returncode == 0, p.stderr
    check_png(png)
    assert md.read_text() == p.stdout
    table = parse_tables(p.stdout)
    assert sorted(table) == list(QS)
    for q in QS:
        rows = csv_rows(cli, q)
        assert rows, f"no candidates at q {q}"
        by_cost = min(rows, key=lambda r: float(r["cost_bits"]))
        ties = [r for r in rows if float(r["cost_bits"]) == float(by_cost["cost_bits"])]
        assert len(ties) == 1, f"q {q}: {len(ties)} rows tie on cost_bits; the test needs a unique minimum"
        (a1,) = [r for r in rows if r["algorithm1_choice"] == "1"]
        smallest = min(int(r["coded_bytes"]) for r in rows)
        got = table[q]
        assert int(got["exhaustive N"]) == int(by_cost["n"]), (q, got, by_cost)
        assert int(got["exhaustive bytes"]) == int(by_cost["coded_bytes"])
        assert int(got["Algorithm 1 N"]) == int(a1["n"]), (q, got, a1)
        assert int(got["Algorithm 1 bytes"]) == int(a1["coded_bytes"])
        assert int(got["smallest bytes"]) == smallest
        assert int(got["Alg. 1 - smallest (bytes)"]) == int(a1["coded_bytes"]) - smallest
        visited = sum(r["visited_by_algorithm1"] == "1" for r in rows)
        assert got["visited / candidates"] == f"{visited} / {len(rows)}"


def test_missing_cli_is_a_usage_error(tmp_path):
    p = run_tool(FEATURE, "--q", "2", "--cli", str(tmp_path / "no-such-cli"))
    assert p.returncode == 2
    assert "codec CLI not found" in p.stderr


def test_missing_and_bad_feature(cli, tmp_path):
    p = run_tool(str(tmp_path / "absent.npy"), "--q", "2", "--cli", cli)
    assert p.returncode == 2 and "feature file not found" in p.stderr
    bad = tmp_path / "bad.npy"
    bad.write_bytes(b"not a numpy file at all")
    p = run_tool(str(bad), "--q", "2", "--cli", cli)
    assert p.returncode == 1, p.stderr
    assert "search --q 2 failed on" in p.stderr and str(bad) in p.stderr


def test_bad_q_is_a_usage_error(cli):
    for q in ("0", "9", "2,x", ""):
        p = run_tool(FEATURE, "--q", q, "--cli", cli)
        assert p.returncode == 2, (q, p.stderr)


def test_inconsistent_flags_are_rejected(tmp_path):
    """A fake CLI whose exhaustive_choice row is not the cheapest: the tool must refuse it."""
    fake = tmp_path / "fake-codec"
    fake.write_text(
        "#!/bin/sh\n"
        "echo n,k,len_d,entropy_bits_per_symbol,cost_bits,coded_bytes,visited_by_algorithm1,"
        "algorithm1_choice,exhaustive_choice,smallest_coded\n"
        "echo 4,1,10,1.0,10.0,5,1,1,0,1\n"
        "echo 2,2,10,2.0,20.0,6,1,0,1,0\n")
    fake.chmod(fake.stat().st_mode | stat.S_IXUSR)
    p = run_tool(FEATURE, "--q", "2", "--cli", str(fake))
    assert p.returncode == 1
    assert "exhaustive_choice N=2" in p.stderr


def test_distinct_picks_are_reported_apart(tmp_path):
    """A fake CLI where Algorithm 1 stops early, so its pick, the exhaustive optimum and the
    smallest size are three different rows (on the real small feature they coincide)."""
    fake = tmp_path / "fake-codec"
    fake.write_text(
        "#!/bin/sh\n"
        "echo n,k,len_d,entropy_bits_per_symbol,cost_bits,coded_bytes,visited_by_algorithm1,"
        "algorithm1_choice,exhaustive_choice,smallest_coded\n"
        "echo 8,1,10,3.0,30.0,9,1,1,0,0\n"
        "echo 4,2,10,4.0,40.0,8,1,0,0,0\n"
        "echo 2,4,10,1.0,10.0,7,0,0,1,0\n"
        "echo 1,8,10,1.5,15.0,6,0,0,0,1\n")
    fake.chmod(fake.stat().st_mode | stat.S_IXUSR)
    png = tmp_path / "fig.png"
    p = run_tool(FEATURE, "--q", "3", "--cli", str(fake), "--png", str(png))
    assert p.returncode == 0, p.stderr
    check_png(png)
    got = parse_tables(p.stdout)[3]
    assert (got["Algorithm 1 N"], got["Algorithm 1 bytes"]) == ("8", "9")
    assert (got["exhaustive N"], got["exhaustive bytes"]) == ("2", "7")
    assert (got["smallest N"], got["smallest bytes"]) == ("1", "6")
    assert got["Alg. 1 - smallest (bytes)"] == "+3"
    assert got["visited / candidates"] == "2 / 4"
