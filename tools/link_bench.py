#!/usr/bin/env python3
"""link_bench.py: split inference against its alternatives on emulated links (Linux, root).

For each link (bandwidth x round-trip time) the harness creates a private network namespace,
starts splitrans-cloud and splitrans-edge inside it on loopback, shapes only the edge->cloud
connection, and runs `splitrans-client eval` against the edge for every method at concurrency 1
and 8. All traffic stays inside the namespace, which is deleted afterwards.

The link:
  bandwidth   `tc` on the namespace's `lo` (MTU set to 1500): an htb root whose class for the
              link port (u32 filters on its source and destination port) holds a `tbf` qdisc at
              the link's rate; every other connection on `lo` (client -> edge, relay -> cloud) is
              not shaped. With --userspace-shaping (or where tc is missing) the relay paces instead.
  delay       these kernels have no netem: tools/link_relay.py sits between edge and cloud and
              delays each direction by RTT/2. Links with RTT 0 connect the edge straight to the cloud.

Methods (through the same edge, link and cloud; README "Services" names the parameters):
  offload           placement=offload: the input (UINT8 pixels, as the client sends them) goes to the
                    cloud, which runs the unsplit model
  local             placement=local: the unsplit model on the edge, nothing sent
  raw               split, feature_codec=raw (float32)
  zstd-qQ           split, feature_codec=zstd (zstd -3 of the AIQ symbols at Q bits)
  dense-qQ, auto-qQ split, the codec in that mode at Q bits
  policy            policy=latency: the edge picks placement, split, Q and layout per request (README
                    "Adaptive policy"), measured after --policy-warmup requests on the link; it
                    runs after the other methods of each link, so that its servers are as warm as
                    theirs were
  METHOD@SPLIT      a split method at that split point, e.g. dense-q4@stage3
  (the split is the model's default unless --split or @SPLIT says otherwise)

Workloads (--workload):
  fmnist            the bundled Fashion-MNIST ResNet (models/), UINT8 pixels from the IDX test set
  imagenet          ImageNet-shaped: a torchvision model (--arch, default ResNet-50) at 224x224 (random init, BatchNorm
                    re-estimated on held-out photographs), split at layer3 unless --split says
                    otherwise; the inputs are 224x224 JPEG (quality 90) crops of the photographs in
                    Debian's plasma-workspace-wallpapers (tools/make_photos.py), sent as they are
                    (BYTES; offload forwards the JPEG). No labels: accuracy = top-1 agreement with the
                    unsplit model. Photos and the exported model (~200 MB, not in git) are made on
                    first use in --imagenet-dir (photos/, models/); its defaults are smaller runs
                    (links inf:0,100:0,10:0,1:0,10:40; 48 requests per run, at least 6).

Output: one JSON object per run (--out, JSON lines); tools/link_report.py turns it into tables
and plots. The eps-outage column (outage_transfer_ms) is the payload's transfer time at the
eps-outage rate of a Rayleigh block-fading link (--outage-*; formula in results/link.md).

    tools/link_bench.py --out /tmp/link.jsonl && tools/link_report.py /tmp/link.jsonl
    tools/link_bench.py --links 10:40 --methods auto-q4,raw --requests 50 --out /tmp/smoke.jsonl
    tools/link_bench.py --workload imagenet --accuracy-images 72 --out /tmp/link_imagenet.jsonl
"""

import argparse
import atexit
import json
import math
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CLOUD_PORT, EDGE_PORT, RELAY_PORT = 50052, 8001, 6001

DEFAULT_LINKS = "inf:0,inf:40,100:0,100:40,10:0,10:40,1:0,1:40"
DEFAULT_METHODS = "offload,local,raw,zstd-q4,dense-q2,dense-q4,dense-q8,auto-q2,auto-q4,auto-q8"
# Per workload: defaults of the options left unset (sized so that the ImageNet-shaped run, ResNet-50
# on one CPU thread per server, takes about 20 minutes on two cores: 18.5 measured).
WORKLOAD_DEFAULTS = {
    "fmnist": {"links": DEFAULT_LINKS, "requests": 300, "min_requests": 40, "run_budget_s": 20.0,
               "model": "fmnist_resnet", "split": ""},
    "imagenet": {"links": "inf:0,100:0,10:0,1:0,10:40", "requests": 48, "min_requests": 6, "run_budget_s": 15.0,
                 "model": "resnet50", "split": "layer3"},
}
IMAGENET_ARCHS = ("resnet18", "resnet34", "resnet50", "vgg16", "mobilenet_v2", "densenet121", "efficientnet_b0")


def prepare_imagenet(args):
    """Photos (tools/make_photos.py) and the exported model in --imagenet-dir, made when missing."""
    d = args.imagenet_dir
    photos, repo = os.path.join(d, "photos"), os.path.join(d, "models")
    if not os.path.isdir(os.path.join(photos, "eval")):
        run([args.python, os.path.join(ROOT, "tools", "make_photos.py"), "--out", photos])
    manifest = os.path.join(repo, args.model, "1", "manifest.json")
    split = args.split or WORKLOAD_DEFAULTS["imagenet"]["split"]
    have = os.path.exists(manifest) and split in json.load(open(manifest))["splits"]
    if not have:
        print(f"link_bench: exporting {args.arch} (split {split}, BatchNorm on {photos}/calib) to {repo}",
              file=sys.stderr)
        run([args.python, os.path.join(ROOT, "tools", "export_torchvision.py"), "--arch", args.arch, "--name",
             args.model, "--split", split, "--bn-images", os.path.join(photos, "calib"), "--repo", repo])
    return repo, os.path.join(photos, "eval")


def rounds(methods, repeat):
    """(round, method) for --repeat rounds: the given order first (the policy last, so that the
    others warm the servers for it), then rotated by one method per round, so that no method is
    always measured right after the same one or at the same point of a link's run."""
    for rep in range(max(repeat, 1)):
        k = rep % len(methods)
        for m in methods[k:] + methods[:k]:
            yield rep, m


def parse_links(s):
    links = []
    for part in s.split(","):
        bw, _, rtt = part.partition(":")
        links.append((None if bw in ("inf", "0", "") else float(bw), float(rtt or 0)))
    return links


def method_params(name):
    """Client flags for a method name ("METHOD@SPLIT": at that split instead of --split)."""
    name, at, split = name.partition("@")
    if at:
        if not split or name in ("offload", "local", "policy"):
            raise SystemExit(f"link_bench: '{name}@{split}': only split methods take a split")
        return method_params(name) + ["--split", split]
    if name == "policy":
        return ["--policy", "latency"]
    if name == "offload":
        return ["--placement", "offload"]
    if name == "local":
        return ["--placement", "local"]
    if name == "raw":
        return ["--placement", "split", "--feature-codec", "raw"]
    kind, _, q = name.partition("-q")
    if not q.isdigit() or not 1 <= int(q) <= 8:
        raise SystemExit(f"link_bench: unknown method '{name}'")
    if kind == "zstd":
        return ["--placement", "split", "--feature-codec", "zstd", "--q", q]
    if kind in ("dense", "auto", "context", "sparse", "paper"):
        return ["--placement", "split", "--feature-codec", "srns", "--mode", kind, "--q", q]
    raise SystemExit(f"link_bench: unknown method '{name}'")


def outage_rate_bps(eps, bandwidth_hz, sigma2, snr_db):
    """eps-outage rate of a Rayleigh block-fading link: W log2(1 + gamma * F^-1(eps)), where
    |h|^2 ~ Exp(mean sigma2) has F^-1(eps) = -sigma2 ln(1 - eps)."""
    gamma = 10 ** (snr_db / 10)
    return bandwidth_hz * math.log2(1 + gamma * (-sigma2 * math.log(1 - eps)))


def run(cmd, check=True, **kw):
    r = subprocess.run(cmd, capture_output=True, text=True, **kw)
    if check and r.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)}: exit {r.returncode}: {r.stderr.strip()[:500]}")
    return r


def tbf_burst(rate_mbit):
    """tbf's bucket: 1 ms at the rate, at least two full frames (a link has no large bursts)."""
    return max(2 * 1514, int(rate_mbit * 1e6 / 8 * 0.001))


class Namespace:
    """A private network namespace with lo up; removed by close()."""

    def __init__(self, name):
        self.name = name
        self.shaped = False
        run(["ip", "netns", "add", name])
        try:
            self.exec(["ip", "link", "set", "lo", "up"])
            self.exec(["ip", "link", "set", "lo", "mtu", "1500"])
        except BaseException:
            self.close()
            raise

    def exec(self, cmd, **kw):
        return run(["ip", "netns", "exec", self.name] + cmd, **kw)

    def popen(self, cmd, log):
        return subprocess.Popen(["ip", "netns", "exec", self.name] + cmd, stdout=log, stderr=subprocess.STDOUT,
                                start_new_session=True)

    def shape(self, port, rate_mbit):
        """tbf at rate_mbit on the connections to and from port; nothing else is shaped."""
        burst = tbf_burst(rate_mbit)
        self.exec(["tc", "qdisc", "add", "dev", "lo", "root", "handle", "1:", "htb", "default", "20", "r2q", "1000000"])
        for cls in ("1:10", "1:20"):
            self.exec(["tc", "class", "add", "dev", "lo", "parent", "1:", "classid", cls, "htb", "rate", "100gbit"])
        self.exec(["tc", "qdisc", "add", "dev", "lo", "parent", "1:10", "handle", "10:", "tbf", "rate",
                   f"{rate_mbit}mbit", "burst", str(burst), "latency", "200ms"])
        for field in ("dport", "sport"):
            self.exec(["tc", "filter", "add", "dev", "lo", "parent", "1:", "protocol", "ip", "prio", "1", "u32",
                       "match", "ip", field, str(port), "0xffff", "flowid", "1:10"])
        self.shaped = True

    def change_rate(self, rate_mbit):
        burst = tbf_burst(rate_mbit)
        self.exec(["tc", "qdisc", "change", "dev", "lo", "parent", "1:10", "handle", "10:", "tbf", "rate",
                   f"{rate_mbit}mbit", "burst", str(burst), "latency", "200ms"])

    def close(self):
        r = run(["ip", "netns", "pids", self.name], check=False)
        for pid in r.stdout.split():
            try:
                os.kill(int(pid), signal.SIGKILL)
            except (ProcessLookupError, ValueError):
                pass
        run(["ip", "netns", "del", self.name], check=False)


def tc_available():
    if os.geteuid() != 0 or not shutil.which("ip") or not shutil.which("tc"):
        return False
    name = f"splitrans-probe-{os.getpid()}"
    try:
        ns = Namespace(name)
    except RuntimeError:
        return False
    try:
        ns.shape(RELAY_PORT, 10)
        return True
    except RuntimeError:
        return False
    finally:
        ns.close()


class Stack:
    """Cloud, relay (RTT > 0 or userspace shaping) and edge in one namespace, for one link."""

    def __init__(self, args, bw_mbit, rtt_ms, tag):
        self.args, self.bw, self.rtt = args, bw_mbit, rtt_ms
        self.dir = tempfile.mkdtemp(prefix="splitrans-link-")
        self.ns = Namespace(f"splitrans-link-{os.getpid()}-{tag}")
        self.procs = []
        try:
            self._start()
        except BaseException:
            self.close()
            raise

    def _log(self, name):
        return open(os.path.join(self.dir, name + ".log"), "w")

    def _wait_port(self, port, proc, what, timeout=60):
        probe = ("import socket,sys\ns=socket.socket()\ns.settimeout(1)\n"
                 f"sys.exit(s.connect_ex(('127.0.0.1',{port})))")
        until = time.monotonic() + timeout
        while time.monotonic() < until:
            if proc.poll() is not None:
                raise RuntimeError(f"{what} exited with {proc.returncode} (log in {self.dir})")
            if self.ns.exec([sys.executable, "-c", probe], check=False).returncode == 0:
                return
            time.sleep(0.2)
        raise RuntimeError(f"{what} did not listen on {port} within {timeout} s (log in {self.dir})")

    def _start(self):
        a = self.args
        b = os.path.join(a.build)
        cloud = self.ns.popen([os.path.join(b, "cloud", "splitrans-cloud"), "--model-repo", a.model_repo, "--listen",
                               f"127.0.0.1:{CLOUD_PORT}", "--workers", str(a.cloud_workers), "--codec-device", "cpu"],
                              self._log("cloud"))
        self.procs.append(cloud)
        self._wait_port(CLOUD_PORT, cloud, "splitrans-cloud")
        userspace = self.bw is not None and a.userspace_shaping
        link_port = CLOUD_PORT
        if self.rtt > 0 or userspace:
            relay = [sys.executable, os.path.join(ROOT, "tools", "link_relay.py"), "--listen", f"127.0.0.1:{RELAY_PORT}",
                     "--target", f"127.0.0.1:{CLOUD_PORT}", "--delay-ms", str(self.rtt / 2)]
            if userspace:
                relay += ["--rate-mbit", str(self.bw)]
            p = self.ns.popen(relay, self._log("relay"))
            self.procs.append(p)
            self._wait_port(RELAY_PORT, p, "link_relay")
            link_port = RELAY_PORT
        if self.bw is not None and not userspace:
            self.ns.shape(link_port, self.bw)
        self.link_port = link_port
        edge = self.ns.popen([os.path.join(b, "edge", "splitrans-edge"), "--model-repo", a.model_repo, "--listen",
                              f"127.0.0.1:{EDGE_PORT}", "--cloud", f"127.0.0.1:{link_port}", "--workers",
                              str(a.edge_workers), "--codec-device", "cpu", "--cloud-deadline-ms",
                              str(a.cloud_deadline_ms)] + a.edge_arg,
                             self._log("edge"))
        self.procs.append(edge)
        self._wait_port(EDGE_PORT, edge, "splitrans-edge")

    def eval(self, method, concurrency, limit, unsplit):
        a = self.args
        cmd = [os.path.join(a.build, "client", "splitrans-client"), "eval", "--edge", f"127.0.0.1:{EDGE_PORT}",
               "--model", a.model, "--model-repo", a.model_repo, "--limit", str(limit), "--concurrency",
               str(concurrency), "--json", "--no-progress", "--deadline-ms", str(a.cloud_deadline_ms + 60000)]
        if a.image_dir:
            cmd += ["--image-dir", a.image_dir]
        if a.unsplit_cache:
            cmd += ["--unsplit-cache", a.unsplit_cache]
        if a.split:
            cmd += ["--split", a.split]
        if not unsplit:
            cmd.append("--no-unsplit")
        cmd += method_params(method)
        r = self.ns.exec(cmd, check=False, timeout=a.run_timeout_s)
        if r.returncode != 0:
            raise RuntimeError(f"eval {method} c{concurrency}: exit {r.returncode}: {r.stderr.strip()[-800:]}")
        return json.loads(r.stdout)

    def close(self):
        for p in reversed(self.procs):
            if p.poll() is None:
                try:
                    os.killpg(p.pid, signal.SIGTERM)
                except ProcessLookupError:
                    pass
        for p in self.procs:
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                try:
                    os.killpg(p.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
        self.ns.close()  # also kills whatever is left inside
        if not self.args.keep_logs:
            shutil.rmtree(self.dir, ignore_errors=True)


def requests_for(args, bw_mbit, rtt_ms, est_bytes, concurrency):
    """Enough requests for stable percentiles, bounded so that one run takes about --run-budget-s."""
    n = args.requests
    if bw_mbit is not None and est_bytes:
        # The link is shared: concurrency overlaps round trips, not transfers.
        per_req_s = est_bytes * 8 / (bw_mbit * 1e6) + (rtt_ms / 1e3 + 0.002) / concurrency
        n = min(n, max(args.min_requests, int(args.run_budget_s / per_req_s)))
    return n


def fmt_link(bw, rtt):
    return f"{'unlimited' if bw is None else f'{bw:g} Mbit/s'}, RTT {rtt:g} ms"


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], epilog=__doc__.split("\n\n", 1)[1],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--build", default=os.path.join(ROOT, "build"), help="CMake build directory with the binaries")
    ap.add_argument("--workload", choices=list(WORKLOAD_DEFAULTS), default="fmnist",
                    help="fmnist or imagenet (see above) [%(default)s]")
    ap.add_argument("--imagenet-dir", default="/var/tmp/splitrans-imagenet",
                    help="imagenet: where the photos and the exported model are kept (made when missing) "
                         "[%(default)s]")
    ap.add_argument("--python", default="/usr/bin/python3", help="interpreter with torch, torchvision, PIL")
    ap.add_argument("--model-repo", default=None, help="[fmnist: models/; imagenet: IMAGENET_DIR/models]")
    ap.add_argument("--arch", choices=IMAGENET_ARCHS, default="resnet50",
                    help="imagenet: the torchvision architecture exported by tools/export_torchvision.py "
                         "[%(default)s]")
    ap.add_argument("--model", default=None, help="[fmnist_resnet; imagenet: the --arch name]")
    ap.add_argument("--image-dir", default="",
                    help="send the JPEG/PNG files of this directory instead of the IDX test set "
                         "[imagenet: IMAGENET_DIR/photos/eval]")
    ap.add_argument("--split", default=None,
                    help="split point for the split methods (empty: the model's default) [imagenet: layer3]")
    ap.add_argument("--links", default=None,
                    help=f"comma list of BW_MBIT:RTT_MS (BW inf: unlimited) [{DEFAULT_LINKS}]")
    ap.add_argument("--methods", default=DEFAULT_METHODS, help="comma list [%(default)s]")
    ap.add_argument("--concurrency", default="1,8", help="comma list of client concurrencies [%(default)s]")
    ap.add_argument("--requests", type=int, default=None, help="requests per run at most [300; imagenet 48]")
    ap.add_argument("--min-requests", type=int, default=None, help="requests per run at least [40; imagenet 6]")
    ap.add_argument("--run-budget-s", type=float, default=None,
                    help="slow links: fewer requests so that a run takes about this long [20; imagenet 15]")
    ap.add_argument("--cloud-deadline-ms", type=int, default=None,
                    help="the edge's deadline for the cloud's answer (the client's is 60 s longer) "
                         "[60000; imagenet 300000]")
    ap.add_argument("--run-timeout-s", type=float, default=600.0)
    ap.add_argument("--accuracy-images", type=int, default=0,
                    help="also measure each method's accuracy and agreement on this many test images, on the "
                         "first link (0: only on each run's own images)")
    ap.add_argument("--policy-warmup", type=int, default=30,
                    help="method policy: requests sent on each link before it is measured [%(default)s]")
    ap.add_argument("--warmup", type=int, default=5,
                    help="every other method: requests sent on each link before it is measured (the "
                         "models' first runs are slow) [%(default)s]")
    ap.add_argument("--repeat", type=int, default=1,
                    help="measure every (method, concurrency) this many times per link, the methods in "
                         "a rotated order each time (the c8 p50 of one configuration varies by up to "
                         "+-40%% between runs on a 2-core host); link_report.py takes the median "
                         "[%(default)s]")
    ap.add_argument("--edge-workers", type=int, default=1)
    ap.add_argument("--edge-arg", action="append", default=[],
                    help="one more splitrans-edge flag, e.g. --edge-arg=--policy-explore-every=32 (repeatable)")
    ap.add_argument("--cloud-workers", type=int, default=1)
    ap.add_argument("--userspace-shaping", action="store_true",
                    help="pace bandwidth in the relay instead of tc (where tc or namespaces are unavailable "
                         "namespaces are still needed: run as root)")
    ap.add_argument("--outage-eps", type=float, default=0.001)
    ap.add_argument("--outage-bandwidth-hz", type=float, default=10e6)
    ap.add_argument("--outage-sigma2", type=float, default=1.0)
    ap.add_argument("--outage-snr-db", type=float, default=10.0)
    ap.add_argument("--out", required=True, help="JSON lines, one object per run")
    ap.add_argument("--keep-logs", action="store_true", help="keep the servers' logs (their directory is printed)")
    args = ap.parse_args()
    if args.workload == "imagenet" and args.model is None:
        args.model = args.arch
    for k, v in WORKLOAD_DEFAULTS[args.workload].items():
        if getattr(args, k) is None:
            setattr(args, k, v)
    if args.cloud_deadline_ms is None:
        args.cloud_deadline_ms = 300000 if args.workload == "imagenet" else 60000
    args.unsplit_cache = ""
    if not 0 < args.outage_eps < 1:
        ap.error("--outage-eps must be in (0, 1)")
    # SIGTERM unwinds like Ctrl-C: the namespace and the servers are removed on the way out.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))

    if os.geteuid() != 0:
        raise SystemExit("link_bench: needs root (ip netns, tc)")
    for b in ("cloud/splitrans-cloud", "edge/splitrans-edge", "client/splitrans-client"):
        if not os.access(os.path.join(args.build, b), os.X_OK):
            raise SystemExit(f"link_bench: {os.path.join(args.build, b)} not found: build first")
    if not args.userspace_shaping and not tc_available():
        print("link_bench: tc htb/tbf unusable here: shaping in the relay instead", file=sys.stderr)
        args.userspace_shaping = True
    if args.workload == "imagenet":
        repo, eval_dir = prepare_imagenet(args)
        args.model_repo = args.model_repo or repo
        args.image_dir = args.image_dir or eval_dir
    args.model_repo = args.model_repo or os.path.join(ROOT, "models")
    if args.image_dir:
        # The unsplit model's predictions are computed once (first run) and reused by every run.
        cache_dir = tempfile.mkdtemp(prefix="splitrans-unsplit-")
        args.unsplit_cache = os.path.join(cache_dir, "unsplit.txt")
        atexit.register(shutil.rmtree, cache_dir, True)
    links = parse_links(args.links)
    methods = args.methods.split(",")
    # The policy last: on each link the others warm the servers (every model's first runs) for it.
    methods = [m for m in methods if m != "policy"] + [m for m in methods if m == "policy"]
    for m in methods:
        method_params(m)
    concurrencies = [int(c) for c in args.concurrency.split(",")]
    outage_bps = outage_rate_bps(args.outage_eps, args.outage_bandwidth_hz, args.outage_sigma2, args.outage_snr_db)
    print(f"link_bench: eps-outage rate {outage_bps / 1e3:.1f} kbit/s (eps {args.outage_eps}, W "
          f"{args.outage_bandwidth_hz / 1e6:g} MHz, sigma_h^2 {args.outage_sigma2}, gamma {args.outage_snr_db} dB)",
          file=sys.stderr)
    est_bytes = {}
    # Warm-up runs skip the unsplit reference, except on label-free images (the cached reference
    # is their labels).
    warmup_unsplit = bool(args.image_dir)
    with open(args.out, "w") as out:
        for li, (bw, rtt) in enumerate(links):
            stack = Stack(args, bw, rtt, li)
            try:
                print(f"link_bench: link {fmt_link(bw, rtt)} (shaping "
                      f"{'none' if bw is None else 'relay' if args.userspace_shaping else 'tc tbf'}, link port "
                      f"{stack.link_port})", file=sys.stderr)
                for rep, m in rounds(methods, args.repeat):
                    if rep == 0 and li == 0 and args.accuracy_images:
                        s = stack.eval(m, 8, args.accuracy_images, unsplit=True)
                        est_bytes[m] = s["mean_feature_bytes"]
                        rec = {"kind": "accuracy", "method": m, "workload": args.workload,
                               "label_source": s.get("label_source"), "images": s["images"],
                               "accuracy": s["accuracy"],
                               "agreement": s.get("agreement"), "unsplit_accuracy": s.get("unsplit_accuracy"),
                               "bytes": s["mean_feature_bytes"], "failed": s["failed_requests"]}
                        out.write(json.dumps(rec) + "\n")
                        out.flush()
                    if rep > 0:
                        pass  # the servers and the policy are warm from the first round
                    elif m == "policy" and args.policy_warmup:
                        # A deployed edge has measured its link already: let this fresh one learn it.
                        stack.eval(m, 1, args.policy_warmup, unsplit=warmup_unsplit)
                    elif m != "policy" and args.warmup:
                        stack.eval(m, 1, args.warmup, unsplit=warmup_unsplit)
                    for c in concurrencies:
                        n = requests_for(args, bw, rtt, est_bytes.get(m), c)
                        t = time.monotonic()
                        s = stack.eval(m, c, n, unsplit=True)
                        est_bytes[m] = s["mean_feature_bytes"]
                        e2e = s["latency_ms"]["end_to_end"]
                        rec = {"kind": "latency", "method": m, "workload": args.workload, "bandwidth_mbit": bw, "rtt_ms": rtt, "concurrency": c,
                               "requests": s["requests"], "failed": s["failed_requests"],
                               "bytes": s["mean_feature_bytes"], "p50_ms": e2e["p50"], "p99_ms": e2e["p99"],
                               "mean_ms": e2e["mean"], "requests_per_s": s["requests_per_s"],
                               "accuracy": s["accuracy"], "agreement": s.get("agreement"),
                               "stages_p50_ms": {k: v["p50"] for k, v in s["latency_ms"].items()},
                               "outage_transfer_ms": s["mean_feature_bytes"] * 8 / outage_bps * 1e3,
                               "split": s.get("split"), "configs": s.get("configs"), "rep": rep,
                               "wall_s": round(time.monotonic() - t, 2)}
                        out.write(json.dumps(rec) + "\n")
                        out.flush()
                        print(f"  {m:>9} c{c}: {rec['requests']} req, {rec['bytes']:.0f} B, p50 {rec['p50_ms']:.2f} "
                              f"ms, p99 {rec['p99_ms']:.2f} ms, {rec['requests_per_s'] or 0:.1f} req/s, "
                              f"agree {rec['agreement']}", file=sys.stderr)
                        if rec["failed"]:
                            print(f"  {m} c{c}: {rec['failed']} requests failed", file=sys.stderr)
            finally:
                stack.close()


if __name__ == "__main__":
    main()
