#!/usr/bin/env python3
"""Rate-accuracy table of the splitrans codec on a split model, in Python.

Splits a bundled Fashion-MNIST model (the ResNet by default; the ViT with --models
models/fmnist_vit/1) at a named layer (a split point of the model repository's manifest: stage1..3,
block1..3), runs the head on Fashion-MNIST test images, codes each image's feature tensor ([C,H,W],
or [tokens, dim] for the ViT) on its own with the splitrans package (`splitrans.encode` at each Q,
`splitrans.decode`), runs the tail on the decoded features and reports per Q:

  bytes/sample   mean coded size of one image's feature (the bitstream, header included)
  bits/elem      8 x bytes / elements
  ratio          float32 feature bytes / coded bytes
  top-1          accuracy against the labels
  d top-1        top-1 minus the unsplit model's (full.pt) top-1
  agree          fraction of images with the unsplit model's prediction

The head and tail are the repository's TorchScript pair for the split (head_<s>.pt, tail_<s>.pt,
as the edge and cloud services run them). full.pt is traced as a whole: its children (stem,
stage1..3, fc) are there, but the pooling before fc is inside its traced forward, so it is not cut
by name here; the script checks tail(head(x)) == full(x) instead (the "float32" row).

With --calibration-out FILE it also writes the calibration table that the edge's adaptive policy
reads (calibration.json in the model's version directory, README "Adaptive policy"): the agreement
with the unsplit model per split and Q (the layout does not change it: every mode codes the same
AIQ symbols losslessly) and the model's default accuracy floor.

Usage:
    /usr/bin/python3 tools/evaluate.py                      # stage2, Q 2..8, 10k test images
    /usr/bin/python3 tools/evaluate.py --split all --q 1,2,3,4,5,6,7,8 --skip 5000 \
        --calibration-out models/fmnist_resnet/1/calibration.json
    /usr/bin/python3 tools/evaluate.py --split all --limit 1000 --mode paper --csv

Needs the splitrans package importable (pip install ./python, or PYTHONPATH=build/python),
numpy and torch.
"""
import argparse
import concurrent.futures
import json
import os
import sys
import time

import numpy as np
import torch

sys.dont_write_bytecode = True  # do not leave tools/__pycache__ in the tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from train_fmnist import DEFAULT_DATA, load_fmnist, normalize  # noqa: E402

try:
    import splitrans
except ImportError as e:  # pragma: no cover
    sys.exit("evaluate.py: cannot import splitrans (%s): /usr/bin/python3 -m pip install --no-build-isolation "
             "./python, or PYTHONPATH=build/python after building target splitrans_python" % e)

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEFAULT_MODELS = os.path.join(ROOT, "models", "fmnist_resnet", "1")


def parse_qs(text):
    qs = sorted({int(v) for v in text.split(",") if v.strip()})
    if not qs or qs[0] < splitrans.MIN_Q or qs[-1] > splitrans.MAX_Q:
        raise argparse.ArgumentTypeError("Q values must be in %d..%d" % (splitrans.MIN_Q, splitrans.MAX_Q))
    return qs


class Split:
    """A model cut at a named layer: head (input -> feature) and tail (feature -> logits)."""

    def __init__(self, models, manifest, name):
        if name not in manifest["splits"]:
            raise SystemExit("evaluate.py: no split %r in %s (have %s)" % (
                name, models, ", ".join(sorted(manifest["splits"]))))
        s = manifest["splits"][name]
        self.name = name
        self.head = torch.jit.load(os.path.join(models, s["head"])).eval()
        self.tail = torch.jit.load(os.path.join(models, s["tail"])).eval()
        self.feature_shape = tuple(s["feature_shape"])


def evaluate_split(split, full_logits, x, y, qs, mode, batch, pool, quantizer="aiq"):
    """Rows of the table for one split (float32 first, then each Q)."""
    elements = int(np.prod(split.feature_shape))
    pred_full = full_logits.argmax(1)
    top1_full = float((pred_full == y).float().mean())
    rows = []

    def row(label, coded_bytes, pred, rel_mse=0.0):
        top1 = float((pred == y).float().mean())
        rows.append({
            "split": split.name, "q": label, "mode": mode if label != "float32" else "-",
            "quantizer": quantizer if label != "float32" else "-", "rel_mse": rel_mse,
            "bytes_per_sample": coded_bytes / len(y), "bits_per_element": 8.0 * coded_bytes / len(y) / elements,
            "ratio": 4.0 * elements * len(y) / coded_bytes, "top1": top1, "delta_top1": top1 - top1_full,
            "agreement": float((pred == pred_full).float().mean()),
        })

    feats, logits = [], []
    with torch.no_grad():
        for i in range(0, len(y), batch):
            f = split.head(x[i:i + batch]).contiguous()
            assert tuple(f.shape[1:]) == split.feature_shape, f.shape
            feats.append(f)
            logits.append(split.tail(f))
    logits = torch.cat(logits)
    err = float((logits - full_logits).abs().max())
    if err > 1e-3:
        raise SystemExit("evaluate.py: tail(head(x)) differs from full(x) by %g at split %s" % (err, split.name))
    row("float32", 4.0 * elements * len(y), logits.argmax(1))

    for q in qs:
        coded, preds, err, energy = 0, [], 0.0, 0.0
        with torch.no_grad():
            for f in feats:
                samples = list(f.numpy())  # [C,H,W] views of the batch: encode reads them in place
                blobs = list(pool.map(lambda a: splitrans.encode(a, q=q, mode=mode, quantizer=quantizer), samples))
                coded += sum(len(b) for b in blobs)
                dec = np.stack(list(pool.map(splitrans.decode, blobs)))
                err += float(((f.numpy().astype(np.float64) - dec) ** 2).sum())
                energy += float((f.numpy().astype(np.float64) ** 2).sum())
                preds.append(split.tail(torch.from_numpy(dec)).argmax(1))
        row(q, coded, torch.cat(preds), err / energy if energy > 0 else 0.0)
    return rows, top1_full


def print_markdown(rows):
    print("| split | Q | mode | quantizer | bytes/sample | bits/elem | ratio | rel. MSE | top-1 | d top-1 | agree |")
    print("|---|---:|---|---|---:|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        print("| %s | %s | %s | %s | %.1f | %.3f | %.1fx | %s | %.4f | %+.4f | %.4f |" % (
            r["split"], r["q"], r["mode"], r["quantizer"], r["bytes_per_sample"], r["bits_per_element"], r["ratio"],
            "-" if r["q"] == "float32" else "%.2e" % r["rel_mse"], r["top1"], r["delta_top1"], r["agreement"]))


def print_csv(rows):
    keys = ["split", "q", "mode", "quantizer", "bytes_per_sample", "bits_per_element", "ratio", "rel_mse", "top1",
            "delta_top1", "agreement"]
    print(",".join(keys))
    for r in rows:
        print(",".join(("%.6g" % r[k]) if isinstance(r[k], float) else str(r[k]) for k in keys))


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", default=DEFAULT_MODELS, help="model version dir with manifest.json [%(default)s]")
    ap.add_argument("--data", default=DEFAULT_DATA, help="dir with the Fashion-MNIST t10k-*-ubyte.gz files [%(default)s]")
    ap.add_argument("--split", default=None,
                    help="layer to split at: a split of the manifest, or 'all' [the manifest's default_split]")
    ap.add_argument("--q", type=parse_qs, default=list(range(2, 9)), help="comma-separated Q values [2,...,8]")
    ap.add_argument("--mode", default="auto", choices=list(splitrans.MODES), help="codec mode [%(default)s]")
    ap.add_argument("--quantizer", default="aiq", choices=["aiq", "clip"],
                    help="aiq (AIQ over [min, max]) or clip (AIQ over a range clipped by squared error) [%(default)s]")
    ap.add_argument("--limit", type=int, default=0, help="first N test images only (0: all 10000)")
    ap.add_argument("--skip", type=int, default=0,
                    help="leave out the first N test images (the link benchmark measures accuracy on the first "
                         "ones: calibrate on others) [%(default)s]")
    ap.add_argument("--calibration-out", help="write the calibration table (JSON) for the edge's adaptive policy")
    ap.add_argument("--accuracy-floor", type=float, default=0.99,
                    help="the default floor written into --calibration-out [%(default)s]")
    ap.add_argument("--batch", type=int, default=500, help="images per head/tail batch [%(default)s]")
    ap.add_argument("--jobs", type=int, default=os.cpu_count() or 1,
                    help="threads coding features in parallel (the codec releases the GIL) [%(default)s]")
    ap.add_argument("--csv", action="store_true", help="print CSV instead of a Markdown table")
    args = ap.parse_args(argv)

    with open(os.path.join(args.models, "manifest.json")) as f:
        manifest = json.load(f)
    names = sorted(manifest["splits"]) if args.split == "all" else [args.split or manifest["default_split"]]
    splits = [Split(args.models, manifest, n) for n in names]
    full = torch.jit.load(os.path.join(args.models, manifest["full"])).eval()

    images, labels = load_fmnist(args.data, "test")
    if args.skip > 0:
        images, labels = images[args.skip:], labels[args.skip:]
    if args.limit > 0:
        images, labels = images[:args.limit], labels[:args.limit]
    x = normalize(images, manifest["input"]["mean"][0], manifest["input"]["std"][0])
    y = torch.from_numpy(labels.astype(np.int64))

    t0 = time.time()
    with torch.no_grad():
        full_logits = torch.cat([full(x[i:i + args.batch]) for i in range(0, len(y), args.batch)])
    rows, top1_full = [], None
    with concurrent.futures.ThreadPoolExecutor(max_workers=max(1, args.jobs)) as pool:
        for s in splits:
            r, top1_full = evaluate_split(s, full_logits, x, y, args.q, args.mode, args.batch, pool, args.quantizer)
            rows += r
    out = sys.stderr if args.csv else sys.stdout  # the CSV stays parseable
    print("# %s v%s, %d Fashion-MNIST test images, unsplit top-1 %.4f; splitrans %s, mode %s, quantizer %s, %.1f s" % (
        manifest["name"], manifest["version"], len(y), top1_full, splitrans.__version__, args.mode, args.quantizer,
        time.time() - t0), file=out)
    (print_csv if args.csv else print_markdown)(rows)
    if args.calibration_out:
        write_calibration(args, manifest, rows, len(y))
    return 0


def write_calibration(args, manifest, rows, images):
    table = {
        "model": manifest["name"], "version": manifest["version"],
        "metric": "top1_agreement_with_unsplit",
        "accuracy_floor": args.accuracy_floor,
        "images": images,
        "data": "Fashion-MNIST test images %d..%d" % (args.skip, args.skip + images - 1),
        "tool": "tools/evaluate.py (splitrans %s)" % splitrans.__version__,
        "entries": [{"split": r["split"], "q": r["q"], "agreement": round(r["agreement"], 6),
                     "bytes_per_sample": round(r["bytes_per_sample"], 1)}
                    for r in rows if r["q"] != "float32"],
    }
    with open(args.calibration_out, "w") as f:
        json.dump(table, f, indent=1)
        f.write("\n")
    print("# wrote %s (%d entries)" % (args.calibration_out, len(table["entries"])), file=sys.stderr)


if __name__ == "__main__":
    sys.exit(main())
