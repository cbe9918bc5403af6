#!/usr/bin/env python3
"""Train a small Vision Transformer on Fashion-MNIST and export split TorchScript models.

Reads the Fashion-MNIST IDX files directly (as tools/train_fmnist.py does; no
downloads), trains a ViT for 1x28x28 input (4x4 patches -> 49 tokens, pre-norm
blocks, mean-pooled tokens into a linear classifier) on CPU, and writes a
Triton-style model repository version directory:

    <out>/full.pt              input [B,1,28,28] normalized -> logits [B,10]
    <out>/head_block<k>.pt     input -> token features [B,49,D] after block k
    <out>/tail_block<k>.pt     token features after block k -> logits
    <out>/manifest.json

The split feature is the residual stream between two blocks: signed, dense,
[tokens, dim]. Attention is written out with matmul/softmax (no fused kernels)
so the traced modules load in the LibTorch the servers link.

Usage (the bundled model; about 17 minutes at 2 threads on a 2-core machine):
    /usr/bin/python3 tools/train_vit.py --out models/fmnist_vit/1 --epochs 10 --flip
"""
import argparse
import math
import os
import sys
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from train_fmnist import (DEFAULT_DATA, LABELS, evaluate, load_fmnist, normalize, set_seed,  # noqa: E402
                          write_manifest)


class Attention(nn.Module):
    """Multi-head self-attention. causal_context > 0: a registered causal mask for sequences of up
    to that many tokens (position i sees 0..i; tools/train_charlm.py)."""

    def __init__(self, dim, heads, causal_context=0):
        super().__init__()
        self.heads = heads
        self.scale = 1.0 / math.sqrt(dim // heads)
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)
        self.causal = causal_context > 0
        if self.causal:
            self.register_buffer("mask", torch.tril(torch.ones(causal_context, causal_context, dtype=torch.bool)),
                                 persistent=False)

    def forward(self, x):
        b, t, d = x.shape
        h = self.heads
        qkv = self.qkv(x).reshape(b, t, 3, h, d // h).permute(2, 0, 3, 1, 4)
        q, k, v = qkv[0], qkv[1], qkv[2]
        att = torch.matmul(q, k.transpose(-2, -1)) * self.scale
        if self.causal:
            att = att.masked_fill(~self.mask[:t, :t], float("-inf"))
        out = torch.matmul(torch.softmax(att, dim=-1), v).transpose(1, 2).reshape(b, t, d)
        return self.proj(out)


class Block(nn.Module):
    """Pre-norm transformer block: x + attn(LN(x)), then x + mlp(LN(x)). `attn` defaults to
    Attention(dim, heads); tools/train_charlm.py passes its causal attention."""

    def __init__(self, dim, heads, mlp, attn=None):
        super().__init__()
        self.ln1 = nn.LayerNorm(dim)
        self.attn = attn if attn is not None else Attention(dim, heads)
        self.ln2 = nn.LayerNorm(dim)
        self.fc1 = nn.Linear(dim, mlp)
        self.fc2 = nn.Linear(mlp, dim)

    def forward(self, x):
        x = x + self.attn(self.ln1(x))
        return x + self.fc2(F.gelu(self.fc1(self.ln2(x))))


class FmnistViT(nn.Module):
    def __init__(self, dim=64, depth=4, heads=4, mlp=128, patch=4, num_classes=10):
        super().__init__()
        self.patch = nn.Conv2d(1, dim, patch, patch)
        tokens = (28 // patch) ** 2
        self.pos = nn.Parameter(torch.zeros(1, tokens, dim))
        nn.init.trunc_normal_(self.pos, std=0.02)
        self.blocks = nn.ModuleList([Block(dim, heads, mlp) for _ in range(depth)])
        self.norm = nn.LayerNorm(dim)
        self.fc = nn.Linear(dim, num_classes)

    def embed(self, x):
        return self.patch(x).flatten(2).transpose(1, 2) + self.pos

    def classifier(self, x):
        return self.fc(self.norm(x).mean(1))

    def forward(self, x):
        x = self.embed(x)
        for blk in self.blocks:
            x = blk(x)
        return self.classifier(x)


class Head(nn.Module):
    """input -> residual stream after block `k` (1-based). Holds only the modules it runs."""

    def __init__(self, net, k):
        super().__init__()
        self.patch = net.patch
        self.pos = net.pos
        self.blocks = nn.Sequential(*net.blocks[:k])

    def forward(self, x):
        return self.blocks(self.patch(x).flatten(2).transpose(1, 2) + self.pos)


class Tail(nn.Module):
    """residual stream after block `k` -> logits. Holds only the modules it runs."""

    def __init__(self, net, k):
        super().__init__()
        self.blocks = nn.Sequential(*net.blocks[k:])
        self.norm = net.norm
        self.fc = net.fc

    def forward(self, x):
        return self.fc(self.norm(self.blocks(x)).mean(1))


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", required=True, help="output version dir, e.g. models/fmnist_vit/1")
    ap.add_argument("--data", default=DEFAULT_DATA, help="dir with Fashion-MNIST *-ubyte.gz files")
    ap.add_argument("--epochs", type=int, default=10)
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--lr", type=float, default=3e-3, help="OneCycle max LR (AdamW)")
    ap.add_argument("--wd", type=float, default=0.05, help="AdamW weight decay")
    ap.add_argument("--dim", type=int, default=64)
    ap.add_argument("--depth", type=int, default=4)
    ap.add_argument("--heads", type=int, default=4)
    ap.add_argument("--mlp", type=int, default=128)
    ap.add_argument("--splits", default="1,2,3", help="blocks after which to split (1-based)")
    ap.add_argument("--default-split", type=int, default=2)
    ap.add_argument("--flip", action="store_true", help="random horizontal flip augmentation")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--max-train", type=int, default=0, help="use only the first N training images (0 = all)")
    ap.add_argument("--checkpoint", default="", help="also save the trained state_dict here (not bundled)")
    ap.add_argument("--min-top1", type=float, default=0.88, help="fail (exit 1) below this")
    args = ap.parse_args(argv)

    torch.set_num_threads(args.threads)
    torch.set_num_interop_threads(1)
    set_seed(args.seed)
    split_blocks = [int(v) for v in args.splits.split(",")]
    if any(k < 1 or k >= args.depth for k in split_blocks) or args.default_split not in split_blocks:
        ap.error("--splits must lie in 1..depth-1 and contain --default-split")

    tr_img, tr_lab = load_fmnist(args.data, "train")
    te_img, te_lab = load_fmnist(args.data, "test")
    if args.max_train:
        tr_img, tr_lab = tr_img[:args.max_train], tr_lab[:args.max_train]
    pix = tr_img.astype(np.float64) / 255.0
    mean, std = float(pix.mean()), float(pix.std())
    del pix
    print("train %s test %s  mean=%.6f std=%.6f" % (tr_img.shape, te_img.shape, mean, std))
    x_tr, y_tr = normalize(tr_img, mean, std), torch.from_numpy(tr_lab.astype(np.int64))
    x_te, y_te = normalize(te_img, mean, std), torch.from_numpy(te_lab.astype(np.int64))

    model = FmnistViT(args.dim, args.depth, args.heads, args.mlp)
    nparams = sum(p.numel() for p in model.parameters())
    print("model dim=%d depth=%d heads=%d mlp=%d params=%d" % (
        args.dim, args.depth, args.heads, args.mlp, nparams))

    n = x_tr.shape[0]
    steps_per_epoch = (n + args.batch - 1) // args.batch
    decay = [p for name, p in model.named_parameters() if p.ndim >= 2 and name != "pos"]
    no_decay = [p for name, p in model.named_parameters() if p.ndim < 2 or name == "pos"]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": args.wd},
                             {"params": no_decay, "weight_decay": 0.0}], lr=args.lr)
    sched = torch.optim.lr_scheduler.OneCycleLR(
        opt, max_lr=args.lr, epochs=args.epochs, steps_per_epoch=steps_per_epoch, pct_start=0.15)
    gen = torch.Generator().manual_seed(args.seed)

    t0 = time.time()
    for ep in range(args.epochs):
        model.train()
        perm = torch.randperm(n, generator=gen)
        tot_loss, tot_ok, seen = 0.0, 0, 0
        for it in range(steps_per_epoch):
            idx = perm[it * args.batch:(it + 1) * args.batch]
            xb, yb = x_tr[idx], y_tr[idx]
            if args.flip:
                flip = torch.rand(xb.shape[0], generator=gen) < 0.5
                xb = torch.where(flip[:, None, None, None], xb.flip(3), xb)
            logits = model(xb)
            loss = F.cross_entropy(logits, yb, label_smoothing=0.1)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            sched.step()
            tot_loss += loss.item() * xb.shape[0]
            tot_ok += (logits.argmax(1) == yb).sum().item()
            seen += xb.shape[0]
        te_acc = evaluate(model, x_te, y_te)
        print("epoch %d: train loss %.4f acc %.4f | test top1 %.4f | %.1fs" % (
            ep + 1, tot_loss / seen, tot_ok / seen, te_acc, time.time() - t0), flush=True)
    train_wall = time.time() - t0

    model.eval()
    os.makedirs(args.out, exist_ok=True)
    if args.checkpoint:
        torch.save(model.state_dict(), args.checkpoint)
    example = x_te[:4].contiguous()
    names = ["block%d" % k for k in split_blocks]
    with torch.no_grad():
        torch.jit.trace(model, example).save(os.path.join(args.out, "full.pt"))
        splits = {}
        for k, s in zip(split_blocks, names):
            head, tail = Head(model, k).eval(), Tail(model, k).eval()
            feat = head(example)
            torch.jit.trace(head, example).save(os.path.join(args.out, "head_%s.pt" % s))
            torch.jit.trace(tail, feat).save(os.path.join(args.out, "tail_%s.pt" % s))
            splits[s] = {"head": "head_%s.pt" % s, "tail": "tail_%s.pt" % s,
                         "feature_shape": list(feat.shape[1:])}

        # Verify the saved files (reloaded, another batch size than tracing).
        xb = x_te[100:133]
        full_l = torch.jit.load(os.path.join(args.out, "full.pt"))
        y_full = full_l(xb)
        assert torch.allclose(y_full, model(xb), atol=1e-5, rtol=1e-5), "full.pt mismatch"
        for s in names:
            h = torch.jit.load(os.path.join(args.out, splits[s]["head"]))
            t = torch.jit.load(os.path.join(args.out, splits[s]["tail"]))
            f = h(xb)
            assert list(f.shape[1:]) == splits[s]["feature_shape"]
            err = (t(f) - y_full).abs().max().item()
            assert err < 1e-4, (s, err)
            print("split %-6s feature %s  min %.3f max %.3f  max|tail(head(x))-full(x)| = %.3g  OK" % (
                s, splits[s]["feature_shape"], float(f.min()), float(f.max()), err))
        full_top1 = evaluate(full_l, x_te, y_te)
        print("reloaded full.pt test top1 = %.4f" % full_top1)

    manifest = {
        "name": os.path.basename(os.path.dirname(os.path.abspath(args.out))),
        "version": int(os.path.basename(os.path.abspath(args.out))),
        "platform": "torchscript",
        "input": {"shape": [1, 28, 28], "dtype": "FP32", "layout": "CHW",
                  "mean": [round(mean, 6)], "std": [round(std, 6)],
                  "scale": "pixel/255 then (x-mean)/std", "color": "grayscale"},
        "output": {"shape": [10], "dtype": "FP32", "kind": "logits"},
        "labels": LABELS,
        "full": "full.pt",
        "default_split": "block%d" % args.default_split,
        "splits": splits,
        "architecture": {"kind": "vit", "patch": 4, "tokens": 49, "dim": args.dim, "depth": args.depth,
                         "heads": args.heads, "mlp": args.mlp, "norm": "pre-LN", "pool": "mean",
                         "feature": "residual stream after the block (signed, dense)",
                         "params": nparams},
        "test_top1": round(full_top1, 4),
        "trained_epochs": args.epochs,
        "seed": args.seed,
        "train_wall_s": round(train_wall, 1),
        "train_threads": args.threads,
        "torch_version": torch.__version__,
        "generated_by": "/usr/bin/python3 tools/train_vit.py " + " ".join(sys.argv[1:] if argv is None else argv),
    }
    write_manifest(args.out, manifest)
    if full_top1 < args.min_top1:
        print("ERROR: test top1 %.4f < %.2f" % (full_top1, args.min_top1), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
