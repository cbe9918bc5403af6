#!/usr/bin/env python3
"""Table 5 analog: the codec on every export-tool architecture at its default split.

The paper's Table 5 reports ImageNet top-1 of VGG16, MobileNetV2, SwinT, DenseNet121 and
EfficientNetB0 split and compressed at Q = 4 against the unsplit baseline. No pretrained
weights and no ImageNet can be downloaded here, so this measures the closest thing we can:

  * Models: the architectures of tools/export_torchvision.py (resnet18/34/50, vgg16, mobilenet_v2,
    densenet121, efficientnet_b0, swin_t) built by its own functions (build_model: seed 0, 1000
    classes) and cut at its default split (--list), exactly the head/tail that
    `export_torchvision.py --arch A --split <default> --bn-images PHOTOS/calib` traces.
    **Weights are random initialisation.** Models with BatchNorm get their running statistics
    re-estimated on the calibration photos (export_torchvision.reestimate_bn); vgg16 has no
    BatchNorm and swin_t uses LayerNorm: those two are plain random init.
  * Images: the 224x224 JPEG crops of Debian's plasma-workspace-wallpapers photographs made by
    tools/make_photos.py (PHOTOS/eval: 72 crops of 8 photos; PHOTOS/calib: 27 crops of 3 other
    photos, used only for the BatchNorm re-estimation). Made when missing, like tools/link_bench.py.
    There are no labels: "agreement" is top-1 agreement of the split model (tail of the decoded
    feature) with the unsplit model on the same image, not ImageNet accuracy.
  * Codec: the splitrans Python package (PYTHONPATH=build/python). Each image's feature [C,H,W]
    is coded on its own with splitrans.encode(x, q=Q, mode="auto") and mode="paper" (Algorithm 1's
    search), decoded with splitrans.decode, and the tail runs on the decoded features.
  * zstd -19: libzstd's ZSTD_compress at level 19 (ctypes on Debian's libzstd.so.1) of the same
    AIQ symbols, one byte per symbol in C order, as codec_bench computes its zstd peer (one frame,
    content size, no checksum). The symbols are recovered from the decoded tensor and the header's
    scale and zero point, and checked: (sym - z) * s must give the decoded floats bit for bit.

Reported per architecture and Q: feature shape; the number of distinct top-1 classes the unsplit
model produces over the images (random weights may give a nearly constant top-1, which would make
agreement meaningless: read it first); top-1 agreement counts (float32 split and decoded split,
e.g. 71/72); mean top-5 overlap |top5(split) & top5(full)| / 5; the relative logit error
||tail(decoded) - full|| / ||full|| (mean and max over images); mean bytes per sample of the raw
float32 feature, zstd -19, paper and auto; ratios; median single-thread encode/decode times per
sample; and the unsplit model's median top-1 margin (top-1 minus top-2 logit, in units of the
logits' standard deviation over the classes): random-init logits are nearly flat, so small
perturbations flip the top-1 far more often than with trained weights. Whether paper and auto
decode to the same values (they code the same AIQ symbols losslessly, so they must) is checked
per sample and reported; paper's agreement is computed separately only where they differ.

Usage:
    PYTHONPATH=build/python /usr/bin/python3 tools/table5.py \\
        --jsonl results/paper_table5.jsonl --md /tmp/table5.md
    PYTHONPATH=build/python /usr/bin/python3 tools/table5.py --arch resnet18 --limit 8 --q 2,4

Exit status 0 on success, 1 when a check fails (symbols, zstd round trip), 2 on bad usage or a
missing prerequisite (the message says which).
"""
import argparse
import ctypes
import ctypes.util
import json
import os
import platform
import subprocess
import sys
import time

sys.dont_write_bytecode = True  # do not leave tools/__pycache__ in the tree
HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)

import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn as nn  # noqa: E402

import export_torchvision as et  # noqa: E402

try:
    import splitrans  # noqa: E402
except ImportError as e:  # pragma: no cover
    sys.stderr.write("table5.py: cannot import splitrans (%s): PYTHONPATH=build/python after building target "
                     "splitrans_python, or /usr/bin/python3 -m pip install --no-build-isolation ./python\n" % e)
    sys.exit(2)

DEFAULT_PHOTOS = "/var/tmp/splitrans-imagenet/photos"
ZSTD_LEVEL = 19


class CheckError(Exception):
    pass


# ----------------------------------------------------------------------------------------------
# zstd (libzstd through ctypes: the library codec_bench links, same one-shot API)
# ----------------------------------------------------------------------------------------------
class Zstd:
    def __init__(self):
        name = ctypes.util.find_library("zstd") or "libzstd.so.1"
        try:
            lib = ctypes.CDLL(name)
        except OSError as e:
            raise SystemExit("table5.py: cannot load libzstd (%s): apt-get install libzstd1" % e)
        lib.ZSTD_compressBound.restype = ctypes.c_size_t
        lib.ZSTD_compressBound.argtypes = [ctypes.c_size_t]
        lib.ZSTD_compress.restype = ctypes.c_size_t
        lib.ZSTD_compress.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_void_p, ctypes.c_size_t,
                                      ctypes.c_int]
        lib.ZSTD_decompress.restype = ctypes.c_size_t
        lib.ZSTD_decompress.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_void_p, ctypes.c_size_t]
        lib.ZSTD_isError.restype = ctypes.c_uint
        lib.ZSTD_isError.argtypes = [ctypes.c_size_t]
        lib.ZSTD_versionString.restype = ctypes.c_char_p
        self.lib = lib
        self.version = lib.ZSTD_versionString().decode()

    def compress(self, data, level=ZSTD_LEVEL):
        """bytes -> zstd frame (bytes); checked by decompressing it again."""
        src = bytes(data)
        cap = self.lib.ZSTD_compressBound(len(src))
        dst = ctypes.create_string_buffer(cap)
        n = self.lib.ZSTD_compress(dst, cap, src, len(src), level)
        if self.lib.ZSTD_isError(n):
            raise CheckError("ZSTD_compress failed")
        frame = dst.raw[:n]
        back = ctypes.create_string_buffer(max(1, len(src)))
        r = self.lib.ZSTD_decompress(back, len(src), frame, n)
        if self.lib.ZSTD_isError(r) or r != len(src) or back.raw[:len(src)] != src:
            raise CheckError("zstd round trip differs")
        return frame


# ----------------------------------------------------------------------------------------------
# AIQ symbols of a bitstream (for the zstd peer)
# ----------------------------------------------------------------------------------------------
def symbols_of(decoded, info, q):
    """The Q-bit AIQ symbols the bitstream codes, one uint8 per element (C order)."""
    n = decoded.size
    if info["layout"] == "constant":
        return np.zeros(n, dtype=np.uint8)
    s = np.float32(info["scale"])
    z = int(info["zero_point"])
    flat = decoded.reshape(-1)
    sym = np.rint(flat.astype(np.float64) / float(s)) + z
    if sym.min() < 0 or sym.max() > (1 << q) - 1:
        raise CheckError("recovered symbols out of range 0..%d" % ((1 << q) - 1))
    sym = sym.astype(np.uint8)
    back = (sym.astype(np.int64) - z).astype(np.float32) * s
    if not np.array_equal(back.view(np.uint32), flat.view(np.uint32)):
        raise CheckError("(symbol - zero_point) * scale does not reproduce the decoded tensor")
    return sym


# ----------------------------------------------------------------------------------------------
# Inputs
# ----------------------------------------------------------------------------------------------
def ensure_photos(photos):
    if os.path.isdir(os.path.join(photos, "eval")) and os.path.isdir(os.path.join(photos, "calib")):
        return
    print("table5: %s/{calib,eval} missing: making them with tools/make_photos.py" % photos, file=sys.stderr,
          flush=True)
    r = subprocess.run([sys.executable, os.path.join(HERE, "make_photos.py"), "--out", photos], stdout=sys.stderr)
    if r.returncode != 0:
        raise SystemExit("table5.py: tools/make_photos.py failed (exit %d): it needs Debian's "
                         "plasma-workspace-wallpapers and python3-pil (deploy/bootstrap.sh installs both)"
                         % r.returncode)


def cpu_model():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.machine()


def parse_qs(text):
    try:
        qs = sorted({int(v) for v in text.split(",") if v.strip()})
    except ValueError:
        raise argparse.ArgumentTypeError("--q takes comma-separated integers")
    if not qs or qs[0] < splitrans.MIN_Q or qs[-1] > splitrans.MAX_Q:
        raise argparse.ArgumentTypeError("Q values must be in %d..%d" % (splitrans.MIN_Q, splitrans.MAX_Q))
    return qs


def parse_archs(values):
    out = []
    for v in values or []:
        for a in v.split(","):
            a = a.strip()
            if not a:
                continue
            if a not in et.ARCHS:
                raise SystemExit("table5.py: unknown --arch %r (have %s)" % (a, ", ".join(et.ARCHS)))
            if a not in out:
                out.append(a)
    return out or list(et.ARCHS)


# ----------------------------------------------------------------------------------------------
# Measurement
# ----------------------------------------------------------------------------------------------
def run_batches(module, x, batch):
    with torch.no_grad():
        return torch.cat([module(x[i:i + batch]) for i in range(0, len(x), batch)])


def logit_stats(logits, ref):
    """Agreement count, mean top-5 overlap, relative L2 logit error (mean, max) against ref."""
    agree = int((logits.argmax(1) == ref.argmax(1)).sum())
    k = min(5, ref.shape[1])
    t_a, t_r = logits.topk(k, 1).indices, ref.topk(k, 1).indices
    overlap = [len(set(a.tolist()) & set(r.tolist())) / k for a, r in zip(t_a, t_r)]
    rel = ((logits - ref).norm(dim=1) / ref.norm(dim=1).clamp_min(1e-30)).tolist()
    return {"agree": agree, "top5_overlap": float(np.mean(overlap)),
            "rel_logit_err_mean": float(np.mean(rel)), "rel_logit_err_max": float(np.max(rel))}


def median_ms(ns):
    return float(np.median(ns)) / 1e6


def measure_arch(arch, args, calib, evalx, zstd):
    t_start = time.time()
    model, spec, _ = et.build_model(arch)
    n_bn = sum(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in model.modules())
    if n_bn:
        et.reestimate_bn(model, calib)
        norm_note = "BatchNorm re-estimated (%d layers, %d calib images)" % (n_bn, len(calib))
    else:
        has_ln = any(isinstance(m, nn.LayerNorm) for m in model.modules())
        norm_note = "no BatchNorm (%s): plain random init" % ("LayerNorm" if has_ln else "no normalization layers")
    split, idx = spec.resolve(spec.default_split)
    head, tail = spec.make_head(idx), spec.make_tail(idx)
    n = len(evalx)

    full = run_batches(model, evalx, args.batch)
    feats = run_batches(head, evalx, args.batch)
    f32 = logit_stats(run_batches(tail, feats, args.batch), full)
    shape = list(feats.shape[1:])
    elements = int(np.prod(shape))
    distinct_full = len(set(full.argmax(1).tolist()))
    top2 = full.topk(2, 1).values
    margin = ((top2[:, 0] - top2[:, 1]) / full.std(1)).tolist()  # top-1 lead in logit std units
    t_model = time.time() - t_start
    feats_np = feats.numpy()

    rows = []
    for q in args.q:
        t_q = time.time()
        sizes = {"auto": [], "paper": [], "zstd19": []}
        times = {"enc_auto": [], "dec_auto": [], "enc_paper": [], "dec_paper": []}
        layouts = {}
        dec_auto = np.empty_like(feats_np)
        dec_paper = np.empty_like(feats_np)
        same = 0
        for i in range(n):
            x = np.ascontiguousarray(feats_np[i])
            t0 = time.perf_counter_ns()
            a = splitrans.encode(x, q=q, mode="auto")
            t1 = time.perf_counter_ns()
            ya = splitrans.decode(a)
            t2 = time.perf_counter_ns()
            p = splitrans.encode(x, q=q, mode="paper")
            t3 = time.perf_counter_ns()
            yp = splitrans.decode(p)
            t4 = time.perf_counter_ns()
            times["enc_auto"].append(t1 - t0)
            times["dec_auto"].append(t2 - t1)
            times["enc_paper"].append(t3 - t2)
            times["dec_paper"].append(t4 - t3)
            if list(ya.shape) != shape or list(yp.shape) != shape:
                raise CheckError("%s Q=%d image %d: decoded shape differs" % (arch, q, i))
            info = splitrans.inspect(a)
            layouts[info["layout"]] = layouts.get(info["layout"], 0) + 1
            sym = symbols_of(ya, info, q)
            sizes["zstd19"].append(len(zstd.compress(sym.tobytes())))
            sizes["auto"].append(len(a))
            sizes["paper"].append(len(p))
            same += int(np.array_equal(ya.view(np.uint32), yp.view(np.uint32)))
            dec_auto[i] = ya
            dec_paper[i] = yp
        st_auto = logit_stats(run_batches(tail, torch.from_numpy(dec_auto), args.batch), full)
        st_paper = st_auto if same == n else logit_stats(
            run_batches(tail, torch.from_numpy(dec_paper), args.batch), full)
        raw = 4 * elements
        mean = {k: float(np.mean(v)) for k, v in sizes.items()}
        row = {
            "arch": arch, "split": split, "layer": list(spec.body.keys())[idx], "feature_shape": shape,
            "elements": elements, "feature_nonneg": bool(float(feats.min()) >= 0.0),
            "zero_fraction": float((feats_np == 0).mean()),
            "weights": "random-init", "normalization": norm_note, "batchnorm_layers": n_bn,
            "images": n, "size": args.size, "q": q,
            "distinct_top1_full": distinct_full,
            "top1_margin_full_median": float(np.median(margin)),
            "distinct_top1_split": len(set(run_batches(tail, torch.from_numpy(dec_auto), args.batch)
                                           .argmax(1).tolist())),
            "agree_float32": f32["agree"],
            "rel_logit_err_float32_max": f32["rel_logit_err_max"],
            "agree_auto": st_auto["agree"], "top5_overlap_auto": st_auto["top5_overlap"],
            "rel_logit_err_auto_mean": st_auto["rel_logit_err_mean"],
            "rel_logit_err_auto_max": st_auto["rel_logit_err_max"],
            "paper_same_values": same,
            "agree_paper": st_paper["agree"], "top5_overlap_paper": st_paper["top5_overlap"],
            "bytes_raw": raw, "bytes_zstd19": mean["zstd19"], "bytes_paper": mean["paper"],
            "bytes_auto": mean["auto"],
            "max_bytes_auto": max(sizes["auto"]), "max_bytes_paper": max(sizes["paper"]),
            "min_bytes_zstd19": min(sizes["zstd19"]),
            "auto_over_zstd19": mean["auto"] / mean["zstd19"],
            "paper_over_zstd19": mean["paper"] / mean["zstd19"],
            "auto_over_paper": mean["auto"] / mean["paper"],
            "raw_over_auto": raw / mean["auto"],
            "auto_layouts": layouts,
            "enc_auto_ms": median_ms(times["enc_auto"]), "dec_auto_ms": median_ms(times["dec_auto"]),
            "enc_paper_ms": median_ms(times["enc_paper"]), "dec_paper_ms": median_ms(times["dec_paper"]),
            "seconds_model": t_model, "seconds_codec": time.time() - t_q,
        }
        rows.append(row)
        print("table5: %s %s Q=%d: agree %d/%d (distinct full top-1 %d), auto %.0f B, paper %.0f B, "
              "zstd-19 %.0f B (%.1fs)" % (arch, split, q, row["agree_auto"], n, distinct_full, mean["auto"],
                                          mean["paper"], mean["zstd19"], time.time() - t_q),
              file=sys.stderr, flush=True)
    return rows


# ----------------------------------------------------------------------------------------------
# Output
# ----------------------------------------------------------------------------------------------
MD_HEADER = ("| arch | split | feature | Q | norm | distinct top-1 (full) | top-1 margin (full) | agree f32 | agree Q | top-5 overlap "
             "| rel. logit err (mean / max) | raw B | zstd-19 B | paper B | auto B | auto / zstd-19 "
             "| paper / zstd-19 | raw / auto | paper = auto values | enc / dec auto ms | enc / dec paper ms |")


def md_row(r):
    n = r["images"]
    norm = "BN re-est." if r["batchnorm_layers"] else "random (no BN)"
    paper_agree = "" if r["paper_same_values"] == n else " (paper %d/%d)" % (r["agree_paper"], n)
    return ("| %s | %s | %s | %d | %s | %d | %.3f | %d/%d | %d/%d%s | %.3f | %.4f / %.4f | %d | %.0f | %.0f | %.0f "
            "| %.3f | %.3f | %.1fx | %d/%d | %.2f / %.2f | %.2f / %.2f |" % (
                r["arch"], r["split"], "x".join(map(str, r["feature_shape"])), r["q"], norm,
                r["distinct_top1_full"], r["top1_margin_full_median"], r["agree_float32"], n, r["agree_auto"], n, paper_agree,
                r["top5_overlap_auto"], r["rel_logit_err_auto_mean"], r["rel_logit_err_auto_max"],
                r["bytes_raw"], r["bytes_zstd19"], r["bytes_paper"], r["bytes_auto"], r["auto_over_zstd19"],
                r["paper_over_zstd19"], r["raw_over_auto"], r["paper_same_values"], n,
                r["enc_auto_ms"], r["dec_auto_ms"], r["enc_paper_ms"], r["dec_paper_ms"]))


def markdown(rows, meta):
    lines = ["# Table 5 analog: %d images from %s, weights random-init, splitrans %s, zstd %s, torch %s" % (
        meta["images"], meta["eval_dir"], meta["splitrans_version"], meta["zstd_version"], meta["torch_version"]),
        "", MD_HEADER, "|" + "---|" * MD_HEADER.count(" | ") + "---|"]
    lines += [md_row(r) for r in rows]
    return "\n".join(lines) + "\n"


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    ap.add_argument("--arch", action="append",
                    help="architecture(s), repeatable or comma-separated (default: all of export_torchvision)")
    ap.add_argument("--q", type=parse_qs, default=[4], help="comma-separated Q values (default: 4)")
    ap.add_argument("--limit", type=int, default=0, help="use the first N eval images (default: all)")
    ap.add_argument("--photos", default=DEFAULT_PHOTOS,
                    help="directory with calib/ and eval/ from tools/make_photos.py, made when missing "
                         "(default: %(default)s)")
    ap.add_argument("--size", type=int, default=224, help="input resolution (default: 224, the export's)")
    ap.add_argument("--batch", type=int, default=8, help="images per forward pass (default: 8)")
    ap.add_argument("--threads", type=int, default=1, help="torch threads (default: 1)")
    ap.add_argument("--jsonl", help="write one JSON object per (arch, Q) row here")
    ap.add_argument("--md", help="write the Markdown table here too (it always goes to stdout)")
    args = ap.parse_args(argv)
    if args.limit < 0 or args.batch < 1 or args.size < 32:
        ap.error("--limit >= 0, --batch >= 1, --size >= 32")
    archs = parse_archs(args.arch)
    torch.set_num_threads(args.threads)

    ensure_photos(args.photos)
    calib, _ = et.load_images(os.path.join(args.photos, "calib"), args.size)
    evalx, files = et.load_images(os.path.join(args.photos, "eval"), args.size)
    if args.limit:
        evalx, files = evalx[:args.limit], files[:args.limit]
    zstd = Zstd()
    meta = {"images": len(files), "eval_dir": os.path.join(args.photos, "eval"), "calib_images": len(calib),
            "splitrans_version": splitrans.__version__, "zstd_version": zstd.version,
            "torch_version": torch.__version__, "threads": args.threads,
            "machine": cpu_model(), "cpus": os.cpu_count()}
    rows = []
    try:
        for arch in archs:
            rows += measure_arch(arch, args, calib, evalx, zstd)
    except CheckError as e:
        print("table5.py: CHECK FAILED: %s" % e, file=sys.stderr)
        return 1
    md = markdown(rows, meta)
    sys.stdout.write(md)
    if args.md:
        with open(args.md, "w") as f:
            f.write(md)
    if args.jsonl:
        with open(args.jsonl, "w") as f:
            for r in rows:
                f.write(json.dumps(dict(r, **{"meta": meta}), sort_keys=True) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
