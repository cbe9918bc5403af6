#!/usr/bin/env python3
"""policy_bench.py: the edge's adaptive policy on a link that drops mid-run (Linux, root).

In a private network namespace (tools/link_bench.py's harness: tbf on the edge->cloud connection,
nothing else shaped) the cloud and the edge run once for the whole benchmark:

  1. every fixed configuration the policy may choose (offload, and per split the smallest Q whose
     calibrated agreement meets the model's floor, in dense and auto; models/<m>/<v>/calibration.json)
     is measured at the high rate (--fixed-requests each, concurrency 1);
  2. one `splitrans-client eval --policy latency` run starts at the high rate; after
     --switch-after-s the harness changes the tbf rate to the low one (tc qdisc change) while the
     run goes on; requests that started before the change are phase 1, the others phase 2;
  3. every fixed configuration is measured at the low rate.

Checks (exit 1 when one fails; every figure goes to --out as JSON):
  - switch: within --switch-within requests after the change, the policy chooses configurations
    whose fixed p50 at the low rate is within --tolerance of the best one (the first request from
    which 8 of the next 10 are such), and keeps to them (--steady-share of phase 2's later requests);
  - p50: in each phase, the policy's p50 is within --tolerance of the best fixed configuration's
    (phase 1 from request --skip on: the policy measures every candidate once first; phase 2 all
    of it and from request --switch-within on).

    sudo tools/policy_bench.py --out results/policy_fmnist.json
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import link_bench  # noqa: E402

ROOT = link_bench.ROOT


def candidates(model_dir, modes=("dense", "auto"), floor=None):
    """The configurations the edge's policy chooses among, by the rule of edge/link_policy.cc."""
    with open(os.path.join(model_dir, "manifest.json")) as f:
        manifest = json.load(f)
    with open(os.path.join(model_dir, "calibration.json")) as f:
        cal = json.load(f)
    floor = cal.get("accuracy_floor", 0.99) if floor is None else floor
    out = ["offload"] if manifest.get("full") else []
    for split in sorted(manifest["splits"]):
        qs = [e["q"] for e in cal["entries"] if e["split"] == split and e["agreement"] >= floor]
        if qs:
            out += [f"{split}/q{min(qs)}/{m}" for m in modes]
    return out, floor


def config_params(name):
    if name == "offload":
        return ["--placement", "offload"]
    split, q, mode = name.split("/")
    return ["--placement", "split", "--feature-codec", "srns", "--split", split, "--q", q[1:], "--mode", mode]


def p50(values):
    return statistics.median(values) if values else float("nan")


class Bench:
    def __init__(self, args):
        self.a = args
        self.client = os.path.join(args.build, "client", "splitrans-client")

    def eval_cmd(self, limit, extra):
        a = self.a
        return [self.client, "eval", "--edge", f"127.0.0.1:{link_bench.EDGE_PORT}", "--model", a.model,
                "--model-repo", a.model_repo, "--limit", str(limit), "--concurrency", "1", "--json",
                "--no-progress", "--no-unsplit", "--deadline-ms", "60000"] + extra

    def fixed(self, stack, configs):
        out = {}
        for c in configs:
            r = stack.ns.exec(self.eval_cmd(self.a.fixed_requests, config_params(c)), check=False,
                              timeout=self.a.run_timeout_s)
            if r.returncode != 0:
                raise RuntimeError(f"eval {c}: exit {r.returncode}: {r.stderr.strip()[-500:]}")
            s = json.loads(r.stdout)
            out[c] = {"p50_ms": s["latency_ms"]["end_to_end"]["p50"], "p99_ms": s["latency_ms"]["end_to_end"]["p99"],
                      "bytes": s["mean_feature_bytes"], "requests": s["requests"], "failed": s["failed_requests"]}
            print(f"  fixed {c:18s} p50 {out[c]['p50_ms']:8.2f} ms  {out[c]['bytes']:9.1f} B", flush=True)
        return out

    def policy_run(self, stack):
        a = self.a
        cmd = ["ip", "netns", "exec", stack.ns.name] + self.eval_cmd(a.requests, ["--policy", "latency",
                                                                                  "--per-request"])
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            time.sleep(a.switch_after_s)
            if proc.poll() is not None:
                raise RuntimeError(f"the policy run ended before the link changed (raise --requests): "
                                   f"{proc.stderr.read()[-500:]}")
            stack.ns.change_rate(a.low)
            t_change_ms = time.time() * 1000
            out, err = proc.communicate(timeout=a.run_timeout_s)
        except BaseException:
            proc.kill()
            proc.wait()
            raise
        if proc.returncode != 0:
            raise RuntimeError(f"policy run: exit {proc.returncode}: {err.strip()[-500:]}")
        s = json.loads(out)
        recs = sorted(s.get("per_request", []), key=lambda r: r["start_unix_ms"])
        return s, recs, t_change_ms


def within(fixed, config, best, tol):
    return config in fixed and fixed[config]["p50_ms"] <= (1 + tol) * best


def analyse(a, fixed_hi, fixed_lo, recs, t_change_ms):
    tol = a.tolerance
    best_hi = min(fixed_hi, key=lambda c: fixed_hi[c]["p50_ms"])
    best_lo = min(fixed_lo, key=lambda c: fixed_lo[c]["p50_ms"])
    ph1 = [r for r in recs if r["start_unix_ms"] < t_change_ms]
    ph2 = [r for r in recs if r["start_unix_ms"] >= t_change_ms]
    res = {"best_fixed_high": best_hi, "best_fixed_low": best_lo,
           "best_fixed_high_p50_ms": fixed_hi[best_hi]["p50_ms"], "best_fixed_low_p50_ms": fixed_lo[best_lo]["p50_ms"],
           "phase1_requests": len(ph1), "phase2_requests": len(ph2)}
    checks = {}
    # Phase 1, after the policy's first measurements.
    p1 = ph1[a.skip:]
    res["phase1_p50_ms"] = p50([r["ms"] for r in p1])
    res["phase1_p50_all_ms"] = p50([r["ms"] for r in ph1])
    res["phase1_configs"] = count(p1)
    checks["phase1_p50"] = res["phase1_p50_ms"] <= (1 + tol) * res["best_fixed_high_p50_ms"]
    # The switch.
    good = [within(fixed_lo, r["config"], res["best_fixed_low_p50_ms"], tol) for r in ph2]
    # The switch: the first request from which at least 8 of the next 10 choices are good ones.
    w = 10
    switch = next((i for i in range(max(0, len(good) - w + 1)) if sum(good[i:i + w]) >= 0.8 * w), None)
    res["switch_request"] = switch  # 0-based index in phase 2
    res["first_best_low_request"] = next((i for i, r in enumerate(ph2) if r["config"] == best_lo), None)
    res["phase1_main_config"] = max(res["phase1_configs"], key=res["phase1_configs"].get) if p1 else None
    later = good[a.switch_within:]
    res["phase2_good_share_after_switch_window"] = sum(later) / len(later) if later else 0.0
    checks["switch"] = switch is not None and switch < a.switch_within and \
        res["phase2_good_share_after_switch_window"] >= a.steady_share
    res["phase2_p50_ms"] = p50([r["ms"] for r in ph2])
    res["phase2_p50_after_switch_window_ms"] = p50([r["ms"] for r in ph2[a.switch_within:]])
    res["phase2_configs"] = count(ph2)
    res["phase2_first_configs"] = [r["config"] for r in ph2[:a.switch_within]]
    checks["phase2_p50"] = res["phase2_p50_ms"] <= (1 + tol) * res["best_fixed_low_p50_ms"]
    checks["enough_requests"] = len(p1) >= 50 and len(ph2) >= a.switch_within + 50
    res["checks"] = checks
    return res


def count(recs):
    out = {}
    for r in recs:
        out[r["config"]] = out.get(r["config"], 0) + 1
    return dict(sorted(out.items(), key=lambda kv: -kv[1]))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], epilog=__doc__.split("\n\n", 1)[1],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--build", default=os.path.join(ROOT, "build"))
    ap.add_argument("--model-repo", default=os.path.join(ROOT, "models"))
    ap.add_argument("--model", default="fmnist_resnet")
    ap.add_argument("--model-version", default="1", help="the version directory whose calibration.json to read")
    ap.add_argument("--high", type=float, default=100, help="Mbit/s before the change [%(default)s]")
    ap.add_argument("--low", type=float, default=1, help="Mbit/s after the change [%(default)s]")
    ap.add_argument("--rtt-ms", type=float, default=0, help="round-trip time (userspace relay) [%(default)s]")
    ap.add_argument("--fixed-requests", type=int, default=80, help="requests per fixed configuration [%(default)s]")
    ap.add_argument("--requests", type=int, default=2400, help="requests of the policy run at most [%(default)s]")
    ap.add_argument("--switch-after-s", type=float, default=2.0, help="change the link this long into the run")
    ap.add_argument("--switch-within", type=int, default=20)
    ap.add_argument("--skip", type=int, default=20, help="phase 1 p50 leaves out the first N requests [%(default)s]")
    ap.add_argument("--tolerance", type=float, default=0.15)
    ap.add_argument("--steady-share", type=float, default=0.8)
    ap.add_argument("--run-timeout-s", type=float, default=300)
    ap.add_argument("--out", help="write the results here (JSON)")
    ap.add_argument("--keep-logs", action="store_true")
    a = ap.parse_args()
    if not link_bench.tc_available():
        print("policy_bench: needs root, ip and tc with network namespaces (tbf on lo)", file=sys.stderr)
        return 77
    configs, floor = candidates(os.path.join(a.model_repo, a.model, a.model_version))
    print(f"# candidates at accuracy floor {floor}: {', '.join(configs)}", flush=True)
    stack_args = argparse.Namespace(build=a.build, model_repo=a.model_repo, model=a.model, cloud_workers=1,
                                    edge_workers=1, userspace_shaping=False, cloud_deadline_ms=30000, image_dir="",
                                    unsplit_cache="", split="", run_timeout_s=a.run_timeout_s, keep_logs=a.keep_logs,
                                    edge_arg=[])
    bench = Bench(a)
    stack = link_bench.Stack(stack_args, a.high, a.rtt_ms, "policy")
    try:
        print(f"# fixed configurations at {a.high:g} Mbit/s", flush=True)
        fixed_hi = bench.fixed(stack, configs)
        print(f"# policy latency, {a.high:g} -> {a.low:g} Mbit/s after {a.switch_after_s:g} s", flush=True)
        summary, recs, t_change = bench.policy_run(stack)
        print(f"# fixed configurations at {a.low:g} Mbit/s", flush=True)
        fixed_lo = bench.fixed(stack, configs)
        edge_log = os.path.join(stack.dir, "edge.log")
        policy_log = [l.strip() for l in open(edge_log) if "policy latency" in l] if os.path.exists(edge_log) else []
    finally:
        stack.close()
    res = analyse(a, fixed_hi, fixed_lo, recs, t_change)
    res.update({"date": time.strftime("%Y-%m-%d"), "high_mbit": a.high, "low_mbit": a.low, "rtt_ms": a.rtt_ms,
                "accuracy_floor": floor, "candidates": configs, "fixed_high": fixed_hi, "fixed_low": fixed_lo,
                "policy_failed_requests": summary["failed_requests"], "policy_accuracy": summary.get("accuracy"),
                "edge_policy_log": policy_log[-40:]})
    for k in ("phase1_p50_ms", "best_fixed_high_p50_ms", "phase2_p50_ms", "phase2_p50_after_switch_window_ms",
              "best_fixed_low_p50_ms", "switch_request"):
        print(f"{k:36s} {res[k]}")
    print(f"phase 1 configs {res['phase1_configs']}\nphase 2 configs {res['phase2_configs']}")
    print(f"checks {res['checks']}")
    if a.out:
        with open(a.out, "w") as f:
            json.dump(res, f, indent=1)
            f.write("\n")
    return 0 if all(res["checks"].values()) and summary["failed_requests"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
