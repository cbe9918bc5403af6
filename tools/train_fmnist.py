#!/usr/bin/env python3
"""Train a small ResNet on Fashion-MNIST and export split TorchScript models.

Reads the Fashion-MNIST IDX files directly (gzip + numpy; no downloads),
trains a 3-stage ResNet for 1x28x28 input on one CPU thread, and writes a
Triton-style model repository version directory:

    <out>/full.pt              input [B,1,28,28] normalized -> logits [B,10]
    <out>/head_<s>.pt          input -> post-ReLU feature after stage s
    <out>/tail_<s>.pt          feature after stage s -> logits
    <out>/manifest.json

for s in {stage1, stage2, stage3}. All modules are traced in eval mode and
are loadable with LibTorch 1.13 (torch::jit::load).

Usage:
    /usr/bin/python3 tools/train_fmnist.py --out models/fmnist_resnet/1
"""
import argparse
import gzip
import json
import os
import random
import sys
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

DEFAULT_DATA = "/usr/share/datasets/fashion-mnist"
LABELS = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
          "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]
SPLITS = ["stage1", "stage2", "stage3"]


# ----------------------------------------------------------------------------
# Data
# ----------------------------------------------------------------------------
def read_idx(path):
    """Read a (gzipped) IDX file into a numpy array (big-endian header)."""
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rb") as f:
        data = f.read()
    zero, dtype_code, ndim = data[0] * 256 + data[1], data[2], data[3]
    if zero != 0 or dtype_code != 0x08:
        raise ValueError("%s: unsupported IDX header" % path)
    dims = [int.from_bytes(data[4 + 4 * i:8 + 4 * i], "big") for i in range(ndim)]
    arr = np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim)
    if arr.size != int(np.prod(dims)):
        raise ValueError("%s: size mismatch" % path)
    return arr.reshape(dims)


def load_fmnist(data_dir, split):
    prefix = "train" if split == "train" else "t10k"
    images = read_idx(os.path.join(data_dir, prefix + "-images-idx3-ubyte.gz"))
    labels = read_idx(os.path.join(data_dir, prefix + "-labels-idx1-ubyte.gz"))
    assert images.shape[0] == labels.shape[0]
    return images, labels


def normalize(images_u8, mean, std):
    """uint8 [N,28,28] -> float32 tensor [N,1,28,28]: pixel/255 then (x-mean)/std."""
    x = torch.from_numpy(images_u8.astype(np.float32) / 255.0).unsqueeze(1)
    return (x - mean) / std


# ----------------------------------------------------------------------------
# Model
# ----------------------------------------------------------------------------
class BasicBlock(nn.Module):
    def __init__(self, cin, cout, stride):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        if stride != 1 or cin != cout:
            self.downsample = nn.Sequential(
                nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))
        else:
            self.downsample = nn.Identity()

    def forward_preact(self, x):
        """Residual-add output before the final ReLU (signed)."""
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return out + self.downsample(x)

    def forward(self, x):
        return F.relu(self.forward_preact(x))


def make_stage(cin, cout, blocks, stride):
    layers = [BasicBlock(cin, cout, stride)]
    layers += [BasicBlock(cout, cout, 1) for _ in range(blocks - 1)]
    return nn.Sequential(*layers)


class FmnistResNet(nn.Module):
    """stem conv3x3-BN-ReLU, stage1 28x28, stage2 14x14, stage3 7x7, GAP, fc."""

    def __init__(self, widths=(16, 32, 64), blocks=(1, 1, 1), num_classes=10):
        super().__init__()
        w1, w2, w3 = widths
        self.stem = nn.Sequential(
            nn.Conv2d(1, w1, 3, 1, 1, bias=False), nn.BatchNorm2d(w1), nn.ReLU(inplace=False))
        self.stage1 = make_stage(w1, w1, blocks[0], 1)
        self.stage2 = make_stage(w1, w2, blocks[1], 2)
        self.stage3 = make_stage(w2, w3, blocks[2], 2)
        self.fc = nn.Linear(w3, num_classes)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

    def stages(self):
        return [self.stage1, self.stage2, self.stage3]

    def classifier(self, x):
        x = F.adaptive_avg_pool2d(x, 1)
        return self.fc(torch.flatten(x, 1))

    def forward(self, x):
        x = self.stem(x)
        for st in self.stages():
            x = st(x)
        return self.classifier(x)


class Head(nn.Module):
    """input -> post-ReLU output of stage `k` (1-based)."""

    def __init__(self, net, k):
        super().__init__()
        self.stem = net.stem
        self.body = nn.Sequential(*net.stages()[:k])

    def forward(self, x):
        return self.body(self.stem(x))


class Tail(nn.Module):
    """post-ReLU output of stage `k` -> logits."""

    def __init__(self, net, k):
        super().__init__()
        self.body = nn.Sequential(*net.stages()[k:])
        self.fc = net.fc

    def forward(self, x):
        x = self.body(x)
        x = F.adaptive_avg_pool2d(x, 1)
        return self.fc(torch.flatten(x, 1))


# ----------------------------------------------------------------------------
# Train / eval
# ----------------------------------------------------------------------------
def set_seed(seed):
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


@torch.no_grad()
def evaluate(model, x, y, batch=1000):
    model.eval()
    correct = 0
    for i in range(0, x.shape[0], batch):
        logits = model(x[i:i + batch])
        correct += (logits.argmax(1) == y[i:i + batch]).sum().item()
    return correct / x.shape[0]


def write_manifest(out_dir, manifest):
    """<out_dir>/manifest.json, indented, with a final newline (every training tool writes it so)."""
    path = os.path.join(out_dir, "manifest.json")
    with open(path, "w") as f:
        json.dump(manifest, f, indent=2)
        f.write("\n")
    print("wrote", path)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", required=True, help="output version dir, e.g. models/fmnist_resnet/1")
    ap.add_argument("--data", default=DEFAULT_DATA, help="dir with Fashion-MNIST *-ubyte.gz files")
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--opt", choices=["sgd", "adamw"], default="sgd",
                    help="sgd = SGD momentum 0.9 nesterov; adamw = AdamW")
    ap.add_argument("--lr", type=float, default=0.2, help="OneCycle max LR")
    ap.add_argument("--wd", type=float, default=5e-4, help="weight decay")
    ap.add_argument("--widths", default="16,32,64", help="stage widths")
    ap.add_argument("--blocks", default="1,1,1", help="BasicBlocks per stage")
    ap.add_argument("--flip", action="store_true", help="random horizontal flip augmentation")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--min-top1", type=float, default=0.90, help="fail (exit 1) below this")
    args = ap.parse_args(argv)

    torch.set_num_threads(args.threads)
    torch.set_num_interop_threads(1)
    set_seed(args.seed)
    widths = tuple(int(v) for v in args.widths.split(","))
    blocks = tuple(int(v) for v in args.blocks.split(","))

    tr_img, tr_lab = load_fmnist(args.data, "train")
    te_img, te_lab = load_fmnist(args.data, "test")
    pix = tr_img.astype(np.float64) / 255.0
    mean, std = float(pix.mean()), float(pix.std())
    del pix
    print("train %s test %s  mean=%.6f std=%.6f" % (tr_img.shape, te_img.shape, mean, std))
    x_tr, y_tr = normalize(tr_img, mean, std), torch.from_numpy(tr_lab.astype(np.int64))
    x_te, y_te = normalize(te_img, mean, std), torch.from_numpy(te_lab.astype(np.int64))

    model = FmnistResNet(widths, blocks)
    nparams = sum(p.numel() for p in model.parameters())
    print("model widths=%s blocks=%s params=%d" % (widths, blocks, nparams))

    n = x_tr.shape[0]
    steps_per_epoch = (n + args.batch - 1) // args.batch
    if args.opt == "sgd":
        opt = torch.optim.SGD(model.parameters(), lr=args.lr, momentum=0.9,
                              nesterov=True, weight_decay=args.wd)
    else:
        opt = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=args.wd)
    sched = torch.optim.lr_scheduler.OneCycleLR(
        opt, max_lr=args.lr, epochs=args.epochs, steps_per_epoch=steps_per_epoch,
        pct_start=0.25)
    gen = torch.Generator().manual_seed(args.seed)

    t0 = time.time()
    for ep in range(args.epochs):
        model.train()
        perm = torch.randperm(n, generator=gen)
        tot_loss, tot_ok, seen = 0.0, 0, 0
        for it in range(steps_per_epoch):
            idx = perm[it * args.batch:(it + 1) * args.batch]
            xb, yb = x_tr[idx], y_tr[idx]
            if args.flip:  # optional augmentation: random horizontal flip
                flip = torch.rand(xb.shape[0], generator=gen) < 0.5
                xb = torch.where(flip[:, None, None, None], xb.flip(3), xb)
            logits = model(xb)
            loss = F.cross_entropy(logits, yb)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            tot_loss += loss.item() * xb.shape[0]
            tot_ok += (logits.argmax(1) == yb).sum().item()
            seen += xb.shape[0]
            if (it + 1) % 100 == 0:
                print("  ep %d it %d/%d loss %.4f acc %.4f  %.0fs" % (
                    ep + 1, it + 1, steps_per_epoch, tot_loss / seen, tot_ok / seen,
                    time.time() - t0), flush=True)
        te_acc = evaluate(model, x_te, y_te)
        print("epoch %d: train loss %.4f acc %.4f | test top1 %.4f | %.1fs" % (
            ep + 1, tot_loss / seen, tot_ok / seen, te_acc, time.time() - t0), flush=True)
    train_wall = time.time() - t0
    top1 = evaluate(model, x_te, y_te)
    print("TEST TOP1 = %.4f  (train wall time %.1f s, %d thread(s))" % (
        top1, train_wall, args.threads))

    # ---------------- export ----------------
    model.eval()
    os.makedirs(args.out, exist_ok=True)
    example = x_te[:4].contiguous()
    with torch.no_grad():
        full_ts = torch.jit.trace(model, example)
        full_ts.save(os.path.join(args.out, "full.pt"))
        splits = {}
        for k, s in enumerate(SPLITS, start=1):
            head, tail = Head(model, k).eval(), Tail(model, k).eval()
            feat = head(example)
            head_ts = torch.jit.trace(head, example)
            tail_ts = torch.jit.trace(tail, feat)
            head_ts.save(os.path.join(args.out, "head_%s.pt" % s))
            tail_ts.save(os.path.join(args.out, "tail_%s.pt" % s))
            splits[s] = {"head": "head_%s.pt" % s, "tail": "tail_%s.pt" % s,
                         "feature_shape": list(feat.shape[1:])}

        # verify the saved files (reloaded, different batch size than tracing)
        xb = x_te[100:133]
        full_l = torch.jit.load(os.path.join(args.out, "full.pt"))
        ref = model(xb)
        y_full = full_l(xb)
        assert torch.allclose(y_full, ref, atol=1e-5, rtol=1e-5), "full.pt mismatch"
        for s in SPLITS:
            h = torch.jit.load(os.path.join(args.out, splits[s]["head"]))
            t = torch.jit.load(os.path.join(args.out, splits[s]["tail"]))
            f = h(xb)
            assert list(f.shape[1:]) == splits[s]["feature_shape"]
            assert float(f.min()) >= 0.0, "head output must be post-ReLU"
            y_split = t(f)
            err = (y_split - y_full).abs().max().item()
            assert torch.allclose(y_split, y_full, atol=1e-5, rtol=1e-5), (s, err)
            print("split %-6s feature %s  max|tail(head(x))-full(x)| = %.3g  OK" % (
                s, splits[s]["feature_shape"], err))
        full_top1 = evaluate(full_l, x_te, y_te)
        print("reloaded full.pt test top1 = %.4f" % full_top1)

    manifest = {
        "name": "fmnist_resnet",
        "version": 1,
        "platform": "torchscript",
        "input": {"shape": [1, 28, 28], "dtype": "FP32", "layout": "CHW",
                  "mean": [round(mean, 6)], "std": [round(std, 6)],
                  "scale": "pixel/255 then (x-mean)/std", "color": "grayscale"},
        "output": {"shape": [10], "dtype": "FP32", "kind": "logits"},
        "labels": LABELS,
        "full": "full.pt",
        "default_split": "stage2",
        "splits": splits,
        "architecture": {"stem": "conv3x3-BN-ReLU", "widths": list(widths),
                         "blocks_per_stage": list(blocks), "block": "BasicBlock",
                         "params": nparams},
        "test_top1": round(full_top1, 4),
        "trained_epochs": args.epochs,
        "seed": args.seed,
        "train_wall_s": round(train_wall, 1),
        "train_threads": args.threads,
        "torch_version": torch.__version__,
        "generated_by": "/usr/bin/python3 tools/train_fmnist.py --out %s" % args.out,
    }
    write_manifest(args.out, manifest)
    if full_top1 < args.min_top1:
        print("ERROR: test top1 %.4f < %.2f" % (full_top1, args.min_top1), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
