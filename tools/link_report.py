#!/usr/bin/env python3
"""link_report.py: tables, crossovers and a plot from tools/link_bench.py's JSON lines.

    /usr/bin/python3 tools/link_report.py RUN.jsonl [--png results/link_fmnist.png] [--title TEXT]

Prints Markdown on stdout: per link, one row per method (bytes per request, p50/p99 end-to-end
latency and throughput at each concurrency, agreement with the unsplit model, the eps-outage
transfer time); then the crossovers read off the measurements: on which links split (the best
codec configuration) beats full offload, and where compression stops paying (the best codec
configuration against the raw float32 split). --png draws p50 latency at concurrency 1 against
bandwidth, one line per method, one panel per round-trip time (Debian's python3-matplotlib).
"""

import argparse
import collections
import json
import math
import sys


def median(xs):
    xs = sorted(xs)
    n = len(xs)
    return xs[n // 2] if n % 2 else (xs[n // 2 - 1] + xs[n // 2]) / 2


def merge_repeats(recs):
    """link_bench --repeat N writes N latency records per (link, method, concurrency): one record
    each, with the median of the runs' p50, p99 and throughput, the mean bytes, the choices summed
    and the runs' p50s in p50_runs_ms."""
    groups = collections.OrderedDict()
    for r in recs:
        groups.setdefault((r["bandwidth_mbit"], r["rtt_ms"], r["method"], r["concurrency"]), []).append(r)
    out = []
    for rs in groups.values():
        if len(rs) == 1:
            out.append(rs[0])
            continue
        m = dict(rs[0])
        for k in ("p50_ms", "p99_ms", "mean_ms", "requests_per_s"):
            m[k] = median([r[k] or 0 for r in rs])
        m["bytes"] = sum(r["bytes"] for r in rs) / len(rs)
        m["requests"] = sum(r["requests"] for r in rs)
        m["failed"] = sum(r["failed"] for r in rs)
        configs = collections.Counter()
        for r in rs:
            configs.update(r.get("configs") or {})
        m["configs"] = dict(configs)
        m["p50_runs_ms"] = [r["p50_ms"] for r in rs]
        out.append(m)
    return out


def load(path):
    recs = [json.loads(line) for line in open(path) if line.strip()]
    return merge_repeats([r for r in recs if r["kind"] == "latency"]), [r for r in recs if r["kind"] == "accuracy"]


def runs(r):
    """" (runs a-b)" where the record merges repeated runs."""
    xs = r.get("p50_runs_ms")
    return f" ({len(xs)} runs {min(xs):.2f}-{max(xs):.2f})" if xs else ""


def bw_name(bw):
    return "unlimited" if bw is None else f"{bw:g} Mbit/s"


def policy_table(links, concs, methods, by, tolerance=0.15):
    """The adaptive policy against the best fixed method of the run (local excluded: it is not a
    use of the link) and against full offload, per link and concurrency."""
    fixed = [m for m in methods if m not in ("policy", "local")]
    out = ["", f"Adaptive policy (p50; the median over the runs where --repeat made several) against the "
               f"best fixed method of this run and full offload (pass: within {tolerance:.0%}):\n",
           "| link | c | policy (ms) | best fixed | its p50 (ms) | policy / best | offload (ms) | policy / offload "
           "| pass | policy's configurations |",
           "|---|---:|---:|---|---:|---:|---:|---:|---|---|"]
    for bw, rtt in links:
        for c in concs:
            pol = by.get((bw, rtt, "policy", c))
            cands = [by[(bw, rtt, m, c)] for m in fixed if (bw, rtt, m, c) in by]
            if not pol or not cands:
                continue
            best = min(cands, key=lambda r: r["p50_ms"])
            off = by.get((bw, rtt, "offload", c))
            r_best = pol["p50_ms"] / best["p50_ms"]
            r_off = pol["p50_ms"] / off["p50_ms"] if off else None
            ok = r_best <= 1 + tolerance and (r_off is None or r_off <= 1 + tolerance)
            cfg = ", ".join(f"{k} {v}" for k, v in sorted((pol.get("configs") or {}).items(), key=lambda kv: -kv[1])[:3])
            out.append(f"| {bw_name(bw)}, RTT {rtt:g} ms | {c} | {pol['p50_ms']:.2f}{runs(pol)} | {best['method']} | "
                       f"{best['p50_ms']:.2f}{runs(best)} | {r_best:.2f} | {off['p50_ms'] if off else float('nan'):.2f} | "
                       f"{'-' if r_off is None else f'{r_off:.2f}'} | {'yes' if ok else 'NO'} | {cfg} |")
    return out


def is_codec(method):
    return method.split("-q")[0] in ("dense", "auto", "context", "sparse", "paper")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("jsonl")
    ap.add_argument("--png", default="")
    ap.add_argument("--title", default="")
    args = ap.parse_args()
    lat, acc = load(args.jsonl)
    if not lat:
        raise SystemExit("link_report: no latency records")
    links = []
    for r in lat:
        key = (r["bandwidth_mbit"], r["rtt_ms"])
        if key not in links:
            links.append(key)
    methods = list(dict.fromkeys(r["method"] for r in lat))
    concs = sorted({r["concurrency"] for r in lat})
    by = {(r["bandwidth_mbit"], r["rtt_ms"], r["method"], r["concurrency"]): r for r in lat}
    out = []
    if acc:
        out.append("Accuracy (one run per method on the first link, concurrency 8):\n")
        if any(a.get("label_source") == "unsplit" for a in acc):
            out.append("(No labels for these images: top-1 is agreement with the unsplit model, whose own top-1 "
                       "is 1 by definition.)\n")
        out.append("| method | images | top-1 | unsplit top-1 | agreement | bytes/request |")
        out.append("|---|---:|---:|---:|---:|---:|")
        f4 = lambda v: "-" if v is None else f"{v:.4f}"
        for a in acc:
            out.append(f"| {a['method']} | {a['images']} | {f4(a['accuracy'])} | {f4(a.get('unsplit_accuracy'))} | "
                       f"{f4(a.get('agreement'))} | {a['bytes']:.0f} |")
        out.append("")
    for bw, rtt in links:
        out.append(f"#### {bw_name(bw)}, RTT {rtt:g} ms\n")
        head = "| method | bytes/req |"
        sep = "|---|---:|"
        for c in concs:
            head += f" p50 c{c} (ms) | p99 c{c} (ms) | req/s c{c} |"
            sep += "---:|---:|---:|"
        head += " agreement | ε-outage transfer (ms) |"
        sep += "---:|---:|"
        out += [head, sep]
        for m in methods:
            rows = [by.get((bw, rtt, m, c)) for c in concs]
            first = next((x for x in rows if x), None)
            if not first:
                continue
            line = f"| {m} | {first['bytes']:.0f} |"
            for x in rows:
                line += (f" {x['p50_ms']:.2f} | {x['p99_ms']:.2f} | {x['requests_per_s'] or 0:.1f} |" if x
                         else " - | - | - |")
            agree = first.get("agreement")
            line += f" {agree:.3f} |" if agree is not None else " - |"
            line += f" {first['outage_transfer_ms']:.1f} |"
            out.append(line)
        out.append("")
    # Crossovers at concurrency 1.
    c = concs[0]
    out.append(f"Crossovers (p50 at concurrency {c}):\n")
    for bw, rtt in links:
        def p50(m):
            r = by.get((bw, rtt, m, c))
            return r["p50_ms"] if r else math.inf
        codec = [m for m in methods if is_codec(m) and p50(m) < math.inf]
        best = min(codec, key=p50) if codec else None
        parts = []
        if best and p50("offload") < math.inf:
            ratio = p50("offload") / p50(best)
            parts.append(f"best split {best} {p50(best):.2f} ms vs offload {p50('offload'):.2f} ms: "
                         f"{'split' if ratio > 1 else 'offload'} wins ({ratio:.2f}×)")
        if best and p50("raw") < math.inf:
            parts.append(f"vs raw float32 split {p50('raw'):.2f} ms ({p50('raw') / p50(best):.2f}×)")
        zstd = [m for m in methods if m.startswith("zstd") and p50(m) < math.inf]
        if best and zstd:
            z = min(zstd, key=p50)
            parts.append(f"vs {z} {p50(z):.2f} ms ({p50(z) / p50(best):.2f}×)")
        if p50("local") < math.inf:
            parts.append(f"local {p50('local'):.2f} ms")
        out.append(f"- {bw_name(bw)}, RTT {rtt:g} ms: " + "; ".join(parts))
    if "policy" in methods:
        out += policy_table(links, concs, methods, by)
    print("\n".join(out))

    if args.png:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        rtts = sorted({rtt for _, rtt in links})
        bws = sorted({bw for bw, _ in links if bw is not None})
        top = (max(bws) * 10) if bws else 1000  # "unlimited" drawn at 10x the fastest link
        fig, axes = plt.subplots(1, len(rtts), figsize=(6 * len(rtts), 4.5), squeeze=False)
        for ax, rtt in zip(axes[0], rtts):
            for m in methods:
                pts = sorted(((top if bw is None else bw), by[(bw, rtt2, m, c)]["p50_ms"])
                             for (bw, rtt2) in links if rtt2 == rtt and (bw, rtt2, m, c) in by)
                if pts:
                    ax.plot([p[0] for p in pts], [p[1] for p in pts], marker="o", label=m)
            ax.set_xscale("log")
            ax.set_yscale("log")
            ax.set_xlabel(f"bandwidth (Mbit/s; {top:g} = unlimited)")
            ax.set_ylabel(f"p50 end-to-end latency (ms), concurrency {c}")
            ax.set_title(f"{args.title} RTT {rtt:g} ms".strip())
            ax.grid(True, which="both", alpha=0.3)
        axes[0][-1].legend(fontsize=8)
        fig.tight_layout()
        fig.savefig(args.png, dpi=110)
        print(f"\n(plot: {args.png})", file=sys.stderr)


if __name__ == "__main__":
    main()
