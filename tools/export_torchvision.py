#!/usr/bin/env python3
"""Split torchvision classifiers into TorchScript head/tail pairs for splitrans.

Writes a Triton-style model repository version directory in the same form as
the bundled Fashion-MNIST model (tools/train_fmnist.py):

    <repo>/<name>/<version>/full.pt          input [B,3,S,S] normalized -> logits [B,K]
    <repo>/<name>/<version>/head_<split>.pt  input -> feature at <split> (NCHW, contiguous)
    <repo>/<name>/<version>/tail_<split>.pt  feature at <split> -> logits
    <repo>/<name>/<version>/manifest.json

Supported architectures: resnet18, resnet34, resnet50, vgg16, mobilenet_v2,
densenet121, efficientnet_b0, swin_t (see --list for the named split layers
and their feature shapes).

How a model is split: every architecture is described as an ordered "body"
(the modules its forward() applies in sequence up to the feature extractor's
output) plus a "post" module that repeats exactly what forward() does after it
(pooling, flatten, classifier; for swin_t also norm and permute). For a split
at body element i:

    head = Sequential(body[0..i])                  (+ NHWC->NCHW for swin_t)
    tail = Sequential(body[i+1..], post)           (+ NCHW->NHWC for swin_t)

Besides the named splits, any body key (e.g. "features.7", "maxpool",
"pool0") is accepted by --split.

Every (arch, split) is verified before anything is written: tail(head(x)) of
the eager modules and of the traced modules must match the full model on a
random input, the traced modules must also be correct at a batch size other
than the one they were traced with, and after writing the saved files are
reloaded and checked again. Modules are traced with torch.jit.trace in eval
mode and are loadable with LibTorch 1.13 (torch::jit::load).

Weights: random initialisation by default (no downloads are possible here);
--weights FILE loads a user's state_dict (a plain state_dict, or a checkpoint
dict holding one under "state_dict"/"model"; a "module." prefix is stripped).
--bn-images DIR re-estimates every BatchNorm layer's running mean and variance
on the JPEG/PNG files in DIR before tracing (train mode with momentum=None, i.e.
the equally weighted average of the per-batch statistics over batches of 8, no
gradients, then back to eval): the
images are resized to --size and normalized like the manifest's input (pixel/255,
ImageNet mean/std), as the edge does. With random weights this gives activations
of the scale real images produce instead of the init's running stats (0 and 1).

Note: the traced modules are specialised to the export resolution (--size,
default 224): swin_t's window padding/shift decisions and adaptive pooling
sizes are baked in, so feed the resolution recorded in the manifest.

Examples:
    /usr/bin/python3 tools/export_torchvision.py --list
    /usr/bin/python3 tools/export_torchvision.py --selftest --arch resnet18
    /usr/bin/python3 tools/export_torchvision.py --arch resnet50 --split layer2 \\
        --split layer3 --repo models --version 1
    /usr/bin/python3 tools/export_torchvision.py --arch resnet50 --split layer3 \\
        --bn-images /var/tmp/splitrans-imagenet/photos/calib --repo /tmp/repo
    /usr/bin/python3 tools/export_torchvision.py --arch mobilenet_v2 \\
        --weights mobilenet_v2.pth --labels imagenet_classes.txt
"""
import argparse
import collections
import json
import os
import sys
import time
import warnings

import torch
import torch.nn as nn
import torchvision

IMAGENET_MEAN = [0.485, 0.456, 0.406]
IMAGENET_STD = [0.229, 0.224, 0.225]

# Selftest input sizes: the smallest size that exercises the real code paths.
# swin_t needs 224: below that every window covers the whole (padded) feature
# map, so torchvision disables the shifted-window branch and the test would not
# cover the path that the exported (224x224) model takes.
SELFTEST_SIZE = {"swin_t": 224}
SELFTEST_DEFAULT_SIZE = 64


class Permute(nn.Module):
    """torch.permute followed by .contiguous() (heads hand C++ a dense NCHW tensor)."""

    def __init__(self, dims):
        super().__init__()
        self.dims = list(dims)

    def forward(self, x):
        return x.permute(self.dims).contiguous()


class ArchSpec:
    """body: ordered dict key -> module; post: module after the body;
    splits: ordered dict split name -> body key; head_out/tail_in: optional
    adapters around the split point."""

    def __init__(self, body, post, splits, default_split, head_out=None, tail_in=None,
                 feature_note=""):
        self.body = body
        self.post = post
        self.splits = splits
        self.default_split = default_split
        self.head_out = head_out
        self.tail_in = tail_in
        self.feature_note = feature_note

    def resolve(self, split):
        """split name or body key -> (canonical split name, body index)."""
        keys = list(self.body.keys())
        key = self.splits.get(split, split)
        if key not in self.body and ("features." + key) in self.body:
            key = "features." + key
        if key not in self.body and key.startswith("features.") and key[9:] in self.body:
            key = key[9:]
        if key not in self.body:
            raise KeyError("unknown split %r; named splits: %s; body keys: %s" % (
                split, ", ".join(self.splits), ", ".join(keys)))
        canonical = {v: k for k, v in self.splits.items()}.get(key, key)
        return canonical, keys.index(key)

    def make_head(self, idx):
        keys = list(self.body.keys())
        mods = collections.OrderedDict(
            (k.replace(".", "_"), self.body[k]) for k in keys[:idx + 1])
        if self.head_out is not None:
            mods["to_nchw"] = self.head_out
        return nn.Sequential(mods).eval()

    def make_tail(self, idx):
        keys = list(self.body.keys())
        mods = collections.OrderedDict()
        if self.tail_in is not None:
            mods["from_nchw"] = self.tail_in
        for k in keys[idx + 1:]:
            mods[k.replace(".", "_")] = self.body[k]
        mods["post"] = self.post
        return nn.Sequential(mods).eval()


def _indexed(seq, prefix):
    return collections.OrderedDict(("%s.%d" % (prefix, i), m) for i, m in enumerate(seq))


def spec_resnet(m):
    body = collections.OrderedDict(
        (n, getattr(m, n)) for n in
        ["conv1", "bn1", "relu", "maxpool", "layer1", "layer2", "layer3", "layer4"])
    post = nn.Sequential(collections.OrderedDict(
        [("avgpool", m.avgpool), ("flatten", nn.Flatten(1)), ("fc", m.fc)]))
    splits = collections.OrderedDict((n, n) for n in ["layer1", "layer2", "layer3", "layer4"])
    return ArchSpec(body, post, splits, "layer2", feature_note="post-ReLU residual stage outputs")


def spec_vgg(m):
    body = _indexed(m.features, "features")
    post = nn.Sequential(collections.OrderedDict(
        [("avgpool", m.avgpool), ("flatten", nn.Flatten(1)), ("classifier", m.classifier)]))
    splits = collections.OrderedDict()
    n = 0
    for i, mod in enumerate(m.features):
        if isinstance(mod, nn.MaxPool2d):
            n += 1
            splits["pool%d" % n] = "features.%d" % i
    return ArchSpec(body, post, splits, "pool3", feature_note="max-pool outputs (post-ReLU)")


def spec_mobilenet_v2(m):
    body = _indexed(m.features, "features")
    post = nn.Sequential(collections.OrderedDict(
        [("avgpool", nn.AdaptiveAvgPool2d((1, 1))), ("flatten", nn.Flatten(1)),
         ("classifier", m.classifier)]))
    # last block of each inverted-residual stage (t,c,n,s table) + final 1x1 conv
    names = ["features.%d" % i for i in (1, 3, 6, 10, 13, 16, 17, 18)]
    splits = collections.OrderedDict((n, n) for n in names)
    return ArchSpec(body, post, splits, "features.6",
                    feature_note="linear bottlenecks (signed) except features.18 (ReLU6)")


def spec_densenet(m):
    body = collections.OrderedDict((n, mod) for n, mod in m.features.named_children())
    post = nn.Sequential(collections.OrderedDict(
        [("relu", nn.ReLU()), ("avgpool", nn.AdaptiveAvgPool2d((1, 1))),
         ("flatten", nn.Flatten(1)), ("classifier", m.classifier)]))
    names = ["denseblock1", "transition1", "denseblock2", "transition2",
             "denseblock3", "transition3", "denseblock4"]
    splits = collections.OrderedDict((n, n) for n in names)
    return ArchSpec(body, post, splits, "transition2",
                    feature_note="dense-block concatenations / transition outputs (signed)")


def spec_efficientnet(m):
    body = _indexed(m.features, "features")
    post = nn.Sequential(collections.OrderedDict(
        [("avgpool", m.avgpool), ("flatten", nn.Flatten(1)), ("classifier", m.classifier)]))
    names = ["features.%d" % i for i in range(1, len(m.features))]
    splits = collections.OrderedDict((n, n) for n in names)
    return ArchSpec(body, post, splits, "features.4",
                    feature_note="MBConv stage outputs and final conv-BN-SiLU (all signed)")


def spec_swin(m):
    body = _indexed(m.features, "features")
    post = nn.Sequential(collections.OrderedDict(
        [("norm", m.norm), ("permute", m.permute), ("avgpool", m.avgpool),
         ("flatten", m.flatten), ("head", m.head)]))
    # features.{1,3,5,7} are the four Swin stages; the even ones are patch merging
    names = ["features.%d" % i for i in (1, 3, 5, 7)]
    splits = collections.OrderedDict((n, n) for n in names)
    return ArchSpec(body, post, splits, "features.3",
                    head_out=Permute([0, 3, 1, 2]), tail_in=Permute([0, 2, 3, 1]),
                    feature_note="stage outputs (signed); NHWC inside the model, "
                                 "permuted to NCHW at the split")


ARCHS = collections.OrderedDict([
    ("resnet18", (torchvision.models.resnet18, spec_resnet)),
    ("resnet34", (torchvision.models.resnet34, spec_resnet)),
    ("resnet50", (torchvision.models.resnet50, spec_resnet)),
    ("vgg16", (torchvision.models.vgg16, spec_vgg)),
    ("mobilenet_v2", (torchvision.models.mobilenet_v2, spec_mobilenet_v2)),
    ("densenet121", (torchvision.models.densenet121, spec_densenet)),
    ("efficientnet_b0", (torchvision.models.efficientnet_b0, spec_efficientnet)),
    ("swin_t", (torchvision.models.swin_t, spec_swin)),
])

CLASSIFIER_KEYS = ["fc.weight", "classifier.weight", "classifier.6.weight",
                   "classifier.1.weight", "head.weight"]


# ----------------------------------------------------------------------------
# Model construction
# ----------------------------------------------------------------------------
def load_state_dict(path):
    obj = torch.load(path, map_location="cpu")
    if isinstance(obj, nn.Module):
        obj = obj.state_dict()
    if isinstance(obj, dict):
        for k in ("state_dict", "model", "model_state_dict"):
            if k in obj and isinstance(obj[k], dict):
                obj = obj[k]
                break
    if not isinstance(obj, dict):
        raise ValueError("%s: not a state_dict" % path)
    return collections.OrderedDict(
        (k[7:] if k.startswith("module.") else k, v) for k, v in obj.items())


def build_model(arch, num_classes=None, weights=None, seed=0):
    ctor, spec_fn = ARCHS[arch]
    sd = load_state_dict(weights) if weights else None
    if num_classes is None and sd is not None:
        for k in CLASSIFIER_KEYS:
            if k in sd and sd[k].dim() == 2:
                num_classes = int(sd[k].shape[0])
                break
    if num_classes is None:
        num_classes = 1000
    torch.manual_seed(seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = ctor(weights=None, num_classes=num_classes)
    if sd is not None:
        model.load_state_dict(sd, strict=True)
    model.eval()
    for p in model.parameters():
        p.requires_grad_(False)
    return model, spec_fn(model), num_classes


def load_images(directory, size):
    """JPEG/PNG files of directory (sorted) -> [N,3,size,size] normalized as the manifest says."""
    from PIL import Image
    files = sorted(f for f in os.listdir(directory)
                   if f.lower().endswith((".jpg", ".jpeg", ".png")))
    if not files:
        raise SystemExit("error: no .jpg/.jpeg/.png files in %s" % directory)
    mean = torch.tensor(IMAGENET_MEAN).view(3, 1, 1)
    std = torch.tensor(IMAGENET_STD).view(3, 1, 1)
    out = []
    for f in files:
        with Image.open(os.path.join(directory, f)) as im:
            im = im.convert("RGB")
            if im.size != (size, size):
                im = im.resize((size, size), Image.BILINEAR)
            x = torch.frombuffer(bytearray(im.tobytes()), dtype=torch.uint8)
        x = x.view(size, size, 3).permute(2, 0, 1).float() / 255.0
        out.append((x - mean) / std)
    return torch.stack(out), files


def reestimate_bn(model, images, batch=8):
    """Running mean/var of every BatchNorm layer := average of the per-batch statistics (no grad)."""
    bns = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    for m in bns:
        m.reset_running_stats()
        m.momentum = None  # cumulative moving average
        m.train()
    with torch.no_grad():
        for i in range(0, len(images), batch):
            model(images[i:i + batch])
    for m in bns:
        m.momentum = 0.1
    model.eval()
    return len(bns)


# ----------------------------------------------------------------------------
# Checking
# ----------------------------------------------------------------------------
def rel_err(y, ref):
    """max |y-ref| relative to max|ref| (random-init logits vary widely in scale)."""
    if y.shape != ref.shape:
        return float("inf")
    scale = max(1e-12, float(ref.abs().max()))
    return float((y - ref).abs().max()) / scale


TOL = 1e-4


def trace(module, example):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # TracerWarnings: we verify the results ourselves
        return torch.jit.trace(module, example, check_trace=False)


def check_split(model, spec, split, x, x2, ref, ref2):
    """Eager + traced check of one split. Returns (row dict, head_ts, tail_ts)."""
    name, idx = spec.resolve(split)
    head, tail = spec.make_head(idx), spec.make_tail(idx)
    feat = head(x)
    e_eager = rel_err(tail(feat.clone()), ref)
    head_ts = trace(head, x)
    tail_ts = trace(tail, feat.clone())
    e_trace = rel_err(tail_ts(head_ts(x)), ref)
    f2 = head_ts(x2)
    e_batch = rel_err(tail_ts(f2), ref2)
    row = {"split": name, "key": list(spec.body.keys())[idx],
           "feature_shape": list(feat.shape[1:]), "nonneg": bool(float(feat.min()) >= 0.0),
           "err_eager": e_eager, "err_traced": e_trace, "err_batch": e_batch,
           "ok": max(e_eager, e_trace, e_batch) <= TOL and list(f2.shape[1:]) == list(feat.shape[1:])}
    return row, head_ts, tail_ts


def inputs(size, seed=1):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(2, 3, size, size, generator=g)
    x2 = torch.randn(3, 3, size, size, generator=g)  # other batch size than traced
    return x, x2


def fmt_row(arch, size, r, secs):
    return "%-16s %-5d %-15s %-16s %-8s %9.2e %9.2e %9.2e %6.1fs  %s" % (
        arch, size, r["split"], "x".join(str(v) for v in r["feature_shape"]),
        "yes" if r["nonneg"] else "no", r["err_eager"], r["err_traced"], r["err_batch"],
        secs, "OK" if r["ok"] else "MISMATCH")


TABLE_HDR = "%-16s %-5s %-15s %-16s %-8s %9s %9s %9s %7s  %s" % (
    "arch", "size", "split", "feature CxHxW", "nonneg", "eager", "traced", "batch3",
    "time", "result")


# ----------------------------------------------------------------------------
# Modes
# ----------------------------------------------------------------------------
def cmd_list(archs, size):
    for arch in archs:
        model, spec, _ = build_model(arch)
        x = torch.zeros(1, 3, size, size)
        shapes = {}
        with torch.no_grad():
            for k, mod in spec.body.items():
                x = mod(x)
                shapes[k] = list(x.permute(0, 3, 1, 2).shape[1:]) if spec.head_out is not None \
                    else list(x.shape[1:])
        print("%s  (input 3x%dx%d; default split %s; %s)" % (
            arch, size, size, spec.default_split, spec.feature_note))
        for name, key in spec.splits.items():
            alias = "" if name == key else "  (= %s)" % key
            print("    %-13s feature %s%s" % (name, "x".join(map(str, shapes[key])), alias))
        others = [k for k in spec.body if k not in spec.splits.values()]
        print("    other accepted --split values: %s" % ", ".join(others))
    return 0


def cmd_selftest(archs, splits_arg, size_arg):
    print(TABLE_HDR)
    failures = 0
    total = 0
    for arch in archs:
        size = size_arg or SELFTEST_SIZE.get(arch, SELFTEST_DEFAULT_SIZE)
        model, spec, _ = build_model(arch)
        splits = splits_arg or list(spec.splits)
        x, x2 = inputs(size)
        with torch.no_grad():
            ref, ref2 = model(x), model(x2)
            t0 = time.time()
            full_ts = trace(model, x)
            e_full = max(rel_err(full_ts(x), ref), rel_err(full_ts(x2), ref2))
            ok_full = e_full <= TOL
            print("%-16s %-5d %-15s %-16s %-8s %9s %9.2e %9.2e %6.1fs  %s" % (
                arch, size, "(full.pt)", "x".join(map(str, ref.shape[1:])), "", "",
                rel_err(full_ts(x), ref), rel_err(full_ts(x2), ref2), time.time() - t0,
                "OK" if ok_full else "MISMATCH"), flush=True)
            total += 1
            failures += 0 if ok_full else 1
            for s in splits:
                t0 = time.time()
                row, _, _ = check_split(model, spec, s, x, x2, ref, ref2)
                print(fmt_row(arch, size, row, time.time() - t0), flush=True)
                total += 1
                failures += 0 if row["ok"] else 1
        del model, spec
    print("selftest: %d/%d checks passed (tolerance: max|err| <= %.0e * max|logit|)" % (
        total - failures, total, TOL))
    return 1 if failures else 0


def read_labels(path):
    with open(path) as f:
        labels = [ln.strip() for ln in f if ln.strip()]
    if not labels:
        raise ValueError("%s: no labels" % path)
    return labels


def cmd_export(args, arch):
    labels = read_labels(args.labels) if args.labels else None
    num_classes = args.num_classes or (len(labels) if labels else None)
    model, spec, num_classes = build_model(arch, num_classes, args.weights)
    bn_note = None
    if args.bn_images:
        imgs, files = load_images(args.bn_images, args.size)
        t0 = time.time()
        n_bn = reestimate_bn(model, imgs)
        bn_note = {"images": len(files), "directory": os.path.abspath(args.bn_images),
                   "layers": n_bn, "momentum": None}
        print("BatchNorm re-estimated: %d layers on %d images from %s (%.1fs)" % (
            n_bn, len(files), args.bn_images, time.time() - t0), flush=True)
    if labels is None:
        labels = ["class_%d" % i for i in range(num_classes)]
    if len(labels) != num_classes:
        raise SystemExit("error: %d labels but the model has %d classes" % (
            len(labels), num_classes))
    splits = args.split or list(spec.splits)
    for s in splits:
        spec.resolve(s)  # fail early on unknown names
    name = args.name or arch
    out = os.path.join(args.repo, name, str(args.version))
    size = args.size
    x, x2 = inputs(size)
    print("%s: %d params, %d classes, input 3x%dx%d, splits %s -> %s" % (
        arch, sum(p.numel() for p in model.parameters()), num_classes, size, size,
        ", ".join(splits), out), flush=True)

    with torch.no_grad():
        ref, ref2 = model(x), model(x2)
        full_ts = trace(model, x)
        e = max(rel_err(full_ts(x), ref), rel_err(full_ts(x2), ref2))
        if e > TOL:
            raise SystemExit("error: traced full model mismatch (%.3g)" % e)
        rows, traced = [], {}
        print(TABLE_HDR)
        for s in splits:
            t0 = time.time()
            row, h, t = check_split(model, spec, s, x, x2, ref, ref2)
            print(fmt_row(arch, size, row, time.time() - t0), flush=True)
            if not row["ok"]:
                raise SystemExit("error: split %s of %s does not reproduce the full model; "
                                 "nothing written" % (s, arch))
            rows.append(row)
            traced[s] = (h, t)

        # all verified: write
        os.makedirs(out, exist_ok=True)
        full_ts.save(os.path.join(out, "full.pt"))
        manifest_splits = collections.OrderedDict()
        for row in rows:
            s = row["split"]
            h, t = traced[s]
            hf, tf = "head_%s.pt" % s, "tail_%s.pt" % s
            h.save(os.path.join(out, hf))
            t.save(os.path.join(out, tf))
            manifest_splits[s] = {"head": hf, "tail": tf, "feature_shape": row["feature_shape"],
                                  "layer": row["key"], "feature_nonneg": row["nonneg"]}

        # reload what was written and verify again (other batch size than traced)
        full_l = torch.jit.load(os.path.join(out, "full.pt"))
        y_full = full_l(x2)
        if rel_err(y_full, ref2) > TOL:
            raise SystemExit("error: reloaded full.pt mismatch")
        for s, ms in manifest_splits.items():
            hl = torch.jit.load(os.path.join(out, ms["head"]))
            tl = torch.jit.load(os.path.join(out, ms["tail"]))
            f = hl(x2)
            e = rel_err(tl(f), y_full)
            if list(f.shape[1:]) != ms["feature_shape"] or not f.is_contiguous() or e > TOL:
                raise SystemExit("error: reloaded split %s mismatch (%.3g)" % (s, e))
            print("reloaded %-13s max rel |tail(head(x))-full(x)| = %.3g  OK" % (s, e))

    default_split = args.default_split or spec.default_split
    if default_split not in manifest_splits:
        default_split = next(iter(manifest_splits))
    manifest = collections.OrderedDict([
        ("name", name),
        ("version", args.version),
        ("platform", "torchscript"),
        ("input", {"shape": [3, size, size], "dtype": "FP32", "layout": "CHW",
                   "mean": IMAGENET_MEAN, "std": IMAGENET_STD,
                   "scale": "pixel/255 then (x-mean)/std", "color": "rgb"}),
        ("output", {"shape": [num_classes], "dtype": "FP32", "kind": "logits"}),
        ("labels", labels),
        ("full", "full.pt"),
        ("default_split", default_split),
        ("splits", manifest_splits),
        ("architecture", {"torchvision": arch, "params": sum(p.numel() for p in model.parameters()),
                          "feature_layout": "CHW", "feature_note": spec.feature_note}),
        ("weights", os.path.basename(args.weights) if args.weights else "random-init"),
        ("batchnorm_reestimated", bn_note),
        ("torch_version", torch.__version__),
        ("torchvision_version", torchvision.__version__),
        ("generated_by", "/usr/bin/python3 tools/export_torchvision.py " + " ".join(
            sys.argv[1:])),
    ])
    with open(os.path.join(out, "manifest.json"), "w") as f:
        json.dump(manifest, f, indent=2)
        f.write("\n")
    print("wrote", os.path.join(out, "manifest.json"))
    return 0


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--arch", action="append", choices=list(ARCHS),
                    help="architecture (repeatable for --list/--selftest; exactly one to export)")
    ap.add_argument("--split", action="append",
                    help="split layer (repeatable; default: all named splits of the arch)")
    ap.add_argument("--repo", default="models", help="model repository root (default: models)")
    ap.add_argument("--name", help="model name in the repository (default: the arch)")
    ap.add_argument("--version", type=int, default=1, help="model version (default: 1)")
    ap.add_argument("--weights", help="state_dict file to load (default: random init)")
    ap.add_argument("--bn-images", help="directory of JPEG/PNG images to re-estimate the "
                                        "BatchNorm statistics on before tracing (export only)")
    ap.add_argument("--labels", help="text file with one class label per line "
                                     "(default: class_0..class_{K-1})")
    ap.add_argument("--num-classes", type=int,
                    help="classifier size (default: from --labels, --weights, else 1000)")
    ap.add_argument("--default-split", help="manifest default_split (default: per arch)")
    ap.add_argument("--size", type=int,
                    help="input resolution (export default 224; selftest default 64, "
                         "swin_t 224)")
    ap.add_argument("--threads", type=int, default=1, help="torch threads (default: 1)")
    ap.add_argument("--list", action="store_true", help="list the named split layers and exit")
    ap.add_argument("--selftest", action="store_true",
                    help="verify every (arch, split) without writing files; exit 1 on mismatch")
    args = ap.parse_args(argv)

    torch.set_num_threads(args.threads)
    if torch.get_num_interop_threads() != 1:  # may be set once per process only
        torch.set_num_interop_threads(1)
    archs = args.arch or list(ARCHS)

    try:
        if args.list:
            return cmd_list(archs, args.size or 224)
        if args.selftest:
            return cmd_selftest(archs, args.split, args.size)
        if not args.arch or len(args.arch) != 1:
            ap.error("export needs exactly one --arch (or use --list / --selftest)")
        if args.size is None:
            args.size = 224
        return cmd_export(args, args.arch[0])
    except KeyError as e:  # unknown split name
        print("error: %s" % e.args[0], file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
