#!/usr/bin/env python3
"""Next-character accuracy and bits per character of the split character LM vs Q (the method's Table 3).

Runs the bundled character-level language model (models/kjv_charlm, tools/train_charlm.py) on the
test chapters of its corpus, which training never saw: every window of the model's context length
at a stride of one context (6,233 windows), the label being the character that follows. For each
window the head's feature [T, D] is coded on its own with the splitrans package at each Q (as the
edge sends it: the bitstream with its header), decoded, and the tail predicts the next character.

Per Q it reports:
  bytes/req       mean coded size of one window's feature
  vs f16, vs f32  float16 / float32 feature bytes divided by the coded bytes (transfer reduction)
  top-1           next-character accuracy
  bpc             bits per character: mean -log2 p(next character)
  agree           fraction of windows where the split model's top-1 equals the unsplit model's
The "float32" and "float16" rows send the feature uncoded (float16: cast on the edge, back to
float32 before the tail).

    PYTHONPATH=build/python /usr/bin/python3 tools/evaluate_charlm.py --q 2,3,4,6,8

With --calibration-out FILE it also writes the calibration table the edge's adaptive policy reads
(calibration.json in the model's version directory, README "Adaptive policy"): agreement with the
unsplit model per Q. Measure it on the tune chapters, not on the reported test ones:

    PYTHONPATH=build/python /usr/bin/python3 tools/evaluate_charlm.py --part tune --q 1,2,3,4,5,6,7,8 \
        --calibration-out models/kjv_charlm/1/calibration.json

Needs the splitrans package (PYTHONPATH=build/python), numpy, torch and Debian's bible-kjv (the
corpus reader, as for training).
"""
import argparse
import concurrent.futures
import json
import math
import os
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F

sys.dont_write_bytecode = True  # do not leave tools/__pycache__ in the tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from train_charlm import load_chapters, split_corpus, windows  # noqa: E402

try:
    import splitrans
except ImportError as e:  # pragma: no cover
    sys.exit("evaluate_charlm.py: cannot import splitrans (%s): PYTHONPATH=build/python after building "
             "target splitrans_python" % e)

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEFAULT_MODELS = os.path.join(ROOT, "models", "kjv_charlm", "1")


def scores(logits, y, ref_pred):
    pred = logits.argmax(1)
    nll = F.cross_entropy(logits, y, reduction="sum").item()
    return {"top1": float((pred == y).float().mean()), "bpc": nll / len(y) / math.log(2),
            "agreement": float((pred == ref_pred).float().mean())}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", default=DEFAULT_MODELS, help="model version dir [%(default)s]")
    ap.add_argument("--split", default=None, help="split name [the manifest's default]")
    ap.add_argument("--q", default="2,3,4,6,8", help="comma-separated Q values [%(default)s]")
    ap.add_argument("--mode", default="auto", choices=list(splitrans.MODES), help="codec mode [%(default)s]")
    ap.add_argument("--quantizer", default="aiq", choices=["aiq", "clip"],
                    help="aiq (over [min, max]) or clip (range clipped by squared error) [%(default)s]")
    ap.add_argument("--limit", type=int, default=0, help="first N test windows only (0: all)")
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--jobs", type=int, default=1, help="codec threads")
    ap.add_argument("--part", default="test", choices=["test", "tune"],
                    help="held-out chapters to use: test (reported figures) or tune (calibration) [%(default)s]")
    ap.add_argument("--json", help="also write the rows here")
    ap.add_argument("--calibration-out", help="write the calibration table (JSON) for the edge's adaptive policy")
    ap.add_argument("--accuracy-floor", type=float, default=0.99,
                    help="the calibration's default agreement floor [%(default)s]")
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    qs = sorted({int(v) for v in args.q.split(",") if v.strip()})

    with open(os.path.join(args.models, "manifest.json")) as f:
        m = json.load(f)
    split = args.split or m["default_split"]
    s = m["splits"][split]
    T = m["input"]["shape"][0]
    index = {c: i for i, c in enumerate(m["labels"])}
    text = split_corpus(load_chapters())[args.part]
    x, y = windows(np.array([index[c] for c in text], dtype=np.int64), T, T)
    if args.limit:
        x, y = x[:args.limit], y[:args.limit]
    full = torch.jit.load(os.path.join(args.models, m["full"])).eval()
    head = torch.jit.load(os.path.join(args.models, s["head"])).eval()
    tail = torch.jit.load(os.path.join(args.models, s["tail"])).eval()
    elements = int(np.prod(s["feature_shape"]))
    t0 = time.time()
    with torch.no_grad():
        ref = torch.cat([full(x[i:i + args.batch]) for i in range(0, len(y), args.batch)])
        feats = [head(x[i:i + args.batch]).contiguous() for i in range(0, len(y), args.batch)]
    ref_pred = ref.argmax(1)
    rows = []
    rel_mse = {}  # Q -> sum (f - decoded)^2 / sum f^2 over every feature

    def add(label, coded_bytes, logits):
        r = {"split": split, "q": label, "mode": args.mode if isinstance(label, int) else "-",
             "quantizer": args.quantizer if isinstance(label, int) else "-", "rel_mse": rel_mse.get(label),
             "bytes_per_request": coded_bytes / len(y), "vs_f16": 2.0 * elements * len(y) / coded_bytes,
             "vs_f32": 4.0 * elements * len(y) / coded_bytes}
        r.update(scores(logits, y, ref_pred))
        rows.append(r)

    add("unsplit", 4.0 * elements * len(y), ref)
    with torch.no_grad():
        add("float32", 4.0 * elements * len(y), torch.cat([tail(f) for f in feats]))
        add("float16", 2.0 * elements * len(y), torch.cat([tail(f.half().float()) for f in feats]))
        with concurrent.futures.ThreadPoolExecutor(args.jobs) as pool:
            for q in qs:
                coded, logits, err, energy = 0, [], 0.0, 0.0
                for f in feats:
                    blobs = list(pool.map(lambda a: splitrans.encode(a, q=q, mode=args.mode, quantizer=args.quantizer),
                                          list(f.numpy())))
                    coded += sum(len(b) for b in blobs)
                    dec = np.stack(list(pool.map(splitrans.decode, blobs)))
                    err += float(((f.numpy().astype(np.float64) - dec) ** 2).sum())
                    energy += float((f.numpy().astype(np.float64) ** 2).sum())
                    logits.append(tail(torch.from_numpy(dec)))
                rel_mse[q] = err / energy
                add(q, coded, torch.cat(logits))
    print("# %s v%s split %s, %d held-out %s windows (context %d, feature %s), splitrans %s, %.1f s" % (
        m["name"], m["version"], split, len(y), args.part, T, s["feature_shape"], getattr(splitrans, "__version__", "?"),
        time.time() - t0))
    print("| Q | mode | quantizer | bytes/req | vs float16 | vs float32 | rel. MSE | next-char top-1 | bits/char | agree |")
    print("|---|---|---|---:|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        sizes = ("- (nothing sent)", "-", "-") if r["q"] == "unsplit" else (
            "%.1f" % r["bytes_per_request"], "%.2fx" % r["vs_f16"], "%.2fx" % r["vs_f32"])
        mse = "-" if r["rel_mse"] is None else "%.2e" % r["rel_mse"]
        print("| %s | %s | %s | %s | %s | %s | %s | %.4f | %.4f | %.4f |" % (
            (r["q"], r["mode"], r["quantizer"]) + sizes + (mse, r["top1"], r["bpc"], r["agreement"])))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(rows, f, indent=1)
            f.write("\n")
    if args.calibration_out:
        cal = {"model": m["name"], "version": m["version"], "metric": "top1_agreement_with_unsplit",
               "accuracy_floor": args.accuracy_floor, "windows": len(y),
               "data": "%s chapters of the corpus (tools/train_charlm.py), windows of %d at stride %d" % (args.part, T, T),
               "tool": "tools/evaluate_charlm.py (splitrans %s)" % getattr(splitrans, "__version__", "?"),
               "entries": [{"split": r["split"], "q": r["q"], "agreement": round(r["agreement"], 4),
                            "bytes_per_sample": round(r["bytes_per_request"], 1)} for r in rows if isinstance(r["q"], int)]}
        with open(args.calibration_out, "w") as f:
            json.dump(cal, f, indent=1)
            f.write("\n")
        print("# wrote %s (%d entries)" % (args.calibration_out, len(cal["entries"])))
    return 0


if __name__ == "__main__":
    sys.exit(main())
