#!/usr/bin/env python3
"""plot_search.py: the paper's Fig. 4 analog from `splitrans-codec search --csv`.

    /usr/bin/python3 tools/plot_search.py FEATURE.npy [MORE.npy ...] [--q 2,4,6,8]
        [--png results/paper_fig4.png] [--markdown OUT.md] [--cli build/codec/splitrans-codec]

For each feature and each Q it runs `splitrans-codec search --csv --q Q FEATURE`, which lists the
candidate reshape dimensions of paper mode (N | T, N > sqrt(T), K = T/N <= 2^Q, in Algorithm 1's
descending order) with Algorithm 1's cost (len_D x H(D), bits), the exact coded size of the whole
bitstream (bytes) and which rows Algorithm 1 visited and picked, which minimises the cost over all
candidates ("exhaustive") and which gives the smallest exact size.

Output:
  * Markdown on stdout (and in --markdown OUT if given): one table per feature, one row per Q:
    Algorithm 1's N and bytes, the exhaustive optimum's N and bytes, the smallest exact size's N
    and bytes, and how many candidates Algorithm 1 visited out of all of them.
  * --png PATH: one figure for the FIRST feature only, one panel per Q: coded size (bytes, solid
    blue) and Algorithm 1's cost / 8 (bytes, dashed orange) against N (log axis), filled markers on
    the candidates Algorithm 1 visited, hollow ones on the rest, and Algorithm 1's pick, the
    exhaustive optimum and the smallest exact size marked and labelled. Needs Debian's
    python3-matplotlib (Agg backend; imported only when --png is given).

The flags are the CLI's; this script checks them against the numbers (exactly one row per flag,
the exhaustive row has the minimum cost, the smallest row the minimum size, Algorithm 1's pick is
the cheapest visited row) and stops with an error if they disagree.

Exit status: 0 on success, 1 on a runtime error (the CLI fails on a feature, e.g. a file that is
not a .npy tensor, or its CSV is inconsistent), 2 on a usage error (bad --q, a missing feature
file, the CLI not found or not executable).
"""

import argparse
import csv
import io
import os
import subprocess
import sys

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEFAULT_CLI = os.path.join(REPO, "build", "codec", "splitrans-codec")
COLUMNS = ["n", "k", "len_d", "entropy_bits_per_symbol", "cost_bits", "coded_bytes",
           "visited_by_algorithm1", "algorithm1_choice", "exhaustive_choice", "smallest_coded"]
# cost_bits is printed with one decimal: rows within this of the minimum tie.
COST_EPS = 0.051


class SearchError(Exception):
    pass


def parse_qs(text):
    try:
        qs = [int(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"--q wants a comma-separated list of integers, got {text!r}")
    if not qs or any(not 1 <= q <= 8 for q in qs):
        raise argparse.ArgumentTypeError(f"--q values must be in 1..8, got {text!r}")
    return qs


def run_search(cli, feature, q):
    """Rows of `search --csv --q Q FEATURE` as dicts (ints for N, K, len_D, bytes, flags)."""
    try:
        p = subprocess.run([cli, "search", "--csv", "--q", str(q), feature],
                           capture_output=True, text=True, timeout=300)
    except OSError as e:
        raise SearchError(f"cannot run {cli}: {e}")
    if p.returncode != 0:
        raise SearchError(f"{os.path.basename(cli)} search --q {q} failed on {feature} "
                          f"(exit {p.returncode}): {p.stderr.strip() or p.stdout.strip()}")
    reader = csv.DictReader(io.StringIO(p.stdout))
    if reader.fieldnames != COLUMNS:
        raise SearchError(f"unexpected CSV header from {cli} search on {feature}: {reader.fieldnames}"
                          f" (expected {','.join(COLUMNS)})")
    rows = []
    for r in reader:
        row = {c: int(r[c]) for c in COLUMNS if c not in ("entropy_bits_per_symbol", "cost_bits")}
        row["entropy_bits_per_symbol"] = float(r["entropy_bits_per_symbol"])
        row["cost_bits"] = float(r["cost_bits"])
        rows.append(row)
    if not rows:
        raise SearchError(f"{cli} search --q {q} on {feature} printed no candidates")
    return rows


def pick(rows, flag, feature, q):
    marked = [r for r in rows if r[flag] == 1]
    if len(marked) != 1:
        raise SearchError(f"{feature} q {q}: {len(marked)} rows flagged {flag}, expected exactly 1")
    return marked[0]


def summarise(rows, feature, q):
    """Algorithm 1's pick, the exhaustive optimum and the smallest size, checked against the numbers."""
    a1 = pick(rows, "algorithm1_choice", feature, q)
    ex = pick(rows, "exhaustive_choice", feature, q)
    sm = pick(rows, "smallest_coded", feature, q)
    visited = [r for r in rows if r["visited_by_algorithm1"]]
    min_cost = min(r["cost_bits"] for r in rows)
    if ex["cost_bits"] > min_cost + COST_EPS:
        raise SearchError(f"{feature} q {q}: exhaustive_choice N={ex['n']} costs {ex['cost_bits']} bits,"
                          f" but the minimum over the candidates is {min_cost}")
    if sm["coded_bytes"] != min(r["coded_bytes"] for r in rows):
        raise SearchError(f"{feature} q {q}: smallest_coded N={sm['n']} is not the smallest coded size")
    if not a1["visited_by_algorithm1"] or a1["cost_bits"] > min(r["cost_bits"] for r in visited) + COST_EPS:
        raise SearchError(f"{feature} q {q}: algorithm1_choice N={a1['n']} is not the cheapest visited row")
    return {"q": q, "total": len(rows), "visited": len(visited), "a1": a1, "ex": ex, "sm": sm}


def markdown(feature, shape_note, summaries):
    out = [f"`{os.path.basename(feature)}`{shape_note}, paper mode, candidates N | T, N > sqrt(T), "
           f"T/N <= 2^Q:", "",
           "| Q | Algorithm 1 N | Algorithm 1 bytes | exhaustive N | exhaustive bytes | smallest N "
           "| smallest bytes | Alg. 1 - smallest (bytes) | visited / candidates |",
           "|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for s in summaries:
        a1, ex, sm = s["a1"], s["ex"], s["sm"]
        out.append(f"| {s['q']} | {a1['n']} | {a1['coded_bytes']} | {ex['n']} | {ex['coded_bytes']} | "
                   f"{sm['n']} | {sm['coded_bytes']} | {a1['coded_bytes'] - sm['coded_bytes']:+d} | "
                   f"{s['visited']} / {s['total']} |")
    return out


def shape_of(feature):
    """' (CxHxW, T elements)' from the .npy header, or '' if numpy cannot read it."""
    try:
        import numpy as np
        a = np.load(feature, mmap_mode="r")
        return f" ({'x'.join(str(d) for d in a.shape)}, T = {a.size})"
    except Exception:
        return ""


def plot(path, feature, shape_note, per_q):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import matplotlib.ticker

    n = len(per_q)
    cols = 2 if n > 1 else 1
    rows_ = (n + cols - 1) // cols
    fig, axes = plt.subplots(rows_, cols, figsize=(5.2 * cols, 3.6 * rows_), squeeze=False)
    for ax in axes.flat[n:]:
        ax.set_visible(False)
    for ax, (rows, s) in zip(axes.flat, per_q):
        ns = [r["n"] for r in rows]
        size = [r["coded_bytes"] / 1000 for r in rows]
        cost = [r["cost_bits"] / 8 / 1000 for r in rows]
        ax.plot(ns, size, "-", color="tab:blue", label="coded size (exact)")
        ax.plot(ns, cost, "--", color="tab:orange", label="Alg. 1 cost len_D·H / 8")
        vis = [r["visited_by_algorithm1"] == 1 for r in rows]
        for ys, color in ((size, "tab:blue"), (cost, "tab:orange")):
            ax.scatter([x for x, v in zip(ns, vis) if v], [y for y, v in zip(ys, vis) if v],
                       s=18, color=color, zorder=3)
            ax.scatter([x for x, v in zip(ns, vis) if not v], [y for y, v in zip(ys, vis) if not v],
                       s=18, facecolors="white", edgecolors=color, zorder=3)
        # One label per distinct N: the marks that fall on it.
        marks = {}
        for key, name in (("a1", "Alg. 1"), ("ex", "exhaustive"), ("sm", "smallest")):
            marks.setdefault(s[key]["n"], (s[key], []))[1].append(name)
        # Drawn in this order so that coinciding marks stay visible: a hollow square, a hollow
        # diamond inside it, a filled star on top.
        for key, name, m, sz, c, fill in (("sm", "smallest", "s", 170, "black", "none"),
                                          ("ex", "exhaustive", "D", 90, "tab:green", "none"),
                                          ("a1", "Alg. 1", "*", 90, "tab:red", "tab:red")):
            r = s[key]
            ax.scatter([r["n"]], [r["coded_bytes"] / 1000], marker=m, s=sz, facecolors=fill,
                       edgecolors=c, linewidths=1.4, zorder=4, label=name)
        ymin, ymax = min(min(size), min(cost)), max(max(size), max(cost))
        span = (ymax - ymin) or 1.0
        for i, (nv, (r, names)) in enumerate(sorted(marks.items())):
            ax.annotate(f"{' = '.join(names)}\nN={nv}, {r['coded_bytes']} B",
                        xy=(nv, r["coded_bytes"] / 1000),
                        xytext=(0, -28 - 22 * i if len(marks) > 1 else -28), textcoords="offset points",
                        ha="center", va="top", fontsize=7,
                        arrowprops=dict(arrowstyle="-", color="0.5", lw=0.6))
        ax.set_ylim(ymin - 0.55 * span, ymax + 0.08 * span)
        ax.set_xscale("log")
        ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
        if max(ns) / min(ns) < 20 and len(ns) <= 5:  # few, under a decade: label them
            ax.set_xticks(ns)
            ax.set_xticklabels([str(x) for x in ns])
        ax.set_title(f"Q = {s['q']}: Alg. 1 visited {s['visited']} of {s['total']} candidates", fontsize=9)
        ax.set_xlabel("N (rows of the N x K reshape)", fontsize=8)
        ax.set_ylabel("kB (1000 bytes)", fontsize=8)
        ax.tick_params(labelsize=7)
        ax.grid(True, which="both", alpha=0.25)
        if s is per_q[0][1]:
            ax.legend(fontsize=6.5, loc="upper left", ncol=2)
    fig.suptitle(f"Paper mode search, {os.path.basename(feature)}{shape_note}\n"
                 f"filled: visited by Algorithm 1 (descending N), hollow: not visited", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)


def main(argv=None):
    ap = argparse.ArgumentParser(prog="plot_search.py", description=__doc__.split("\n", 1)[1],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("features", nargs="+", metavar="FEATURE.npy",
                    help="float32/float16 .npy tensors; the PNG shows the first one only")
    ap.add_argument("--q", type=parse_qs, default=[2, 4, 6, 8], metavar="Q,Q,...",
                    help="quantization bit widths, comma-separated, each in 1..8 (default 2,4,6,8)")
    ap.add_argument("--cli", default=os.environ.get("SPLITRANS_CODEC", DEFAULT_CLI),
                    help="the splitrans-codec binary (default: $SPLITRANS_CODEC, else "
                         "build/codec/splitrans-codec in the repository)")
    ap.add_argument("--png", metavar="PATH", help="write the plot of the first feature here (matplotlib, Agg)")
    ap.add_argument("--markdown", metavar="PATH", help="also write the Markdown tables here")
    args = ap.parse_args(argv)

    if not (os.path.isfile(args.cli) and os.access(args.cli, os.X_OK)):
        ap.error(f"codec CLI not found or not executable: {args.cli} (build it with "
                 f"`cmake --build build --target splitrans-codec`, or pass --cli / set SPLITRANS_CODEC)")
    for f in args.features:
        if not os.path.isfile(f):
            ap.error(f"feature file not found: {f}")

    lines, first = [], None
    try:
        for fi, feature in enumerate(args.features):
            note = shape_of(feature)
            per_q = []
            for q in args.q:
                rows = run_search(args.cli, feature, q)
                per_q.append((rows, summarise(rows, feature, q)))
            if fi:
                lines.append("")
            lines += markdown(feature, note, [s for _, s in per_q])
            if fi == 0:
                first = (feature, note, per_q)
    except SearchError as e:
        print(f"plot_search.py: error: {e}", file=sys.stderr)
        return 1
    text = "\n".join(lines) + "\n"
    sys.stdout.write(text)
    if args.markdown:
        with open(args.markdown, "w") as fh:
            fh.write(text)
    if args.png:
        plot(args.png, *first)
        print(f"wrote {args.png} ({os.path.getsize(args.png)} bytes)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
