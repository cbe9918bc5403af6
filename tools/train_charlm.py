#!/usr/bin/env python3
"""Train a character-level transformer language model on the King James Bible and export it split.

Corpus: the King James Version (1611, public domain) as Debian's bible-kjv-text package ships
it, read with the package's own reader (`apt-get install bible-kjv`, which pulls in
bible-kjv-text; `bible -l100000 "Genesis 1:1-Revelation 22:21"` prints one verse per line).
Verse numbers and chapter headings are dropped; a chapter is its verses joined by "\\n", and
chapters are joined by "\\n" in canonical order.

Held-out split by chapter (1,189 chapters, numbered 0.. in canonical order):
    test:  chapter % 10 == 9   reported only, never used to choose anything
    tune:  chapter % 10 == 4   the validation figure printed during training
    train: every other chapter
The vocabulary is the set of characters of the whole corpus (63 here), in code-point order;
token id i is the character labels[i].

Model: token embedding + learned positions, pre-LN causal transformer blocks (tools/train_vit.py's
Block and Attention, the latter with its registered causal mask: matmul/softmax written out, so the traced
modules load in the LibTorch the servers link), final LayerNorm and a linear head. Trained on
random 65-character windows of the training text with the loss on every position; served as
"next character after a 64-character context": the exported modules return the logits of the
last position only.

    <out>/full.pt             int64 ids [B,64] -> next-character logits [B,V]
    <out>/head_block<k>.pt    int64 ids [B,64] -> residual stream after block k, float32 [B,64,D]
    <out>/tail_block<k>.pt    residual stream after block k -> next-character logits [B,V]
    <out>/manifest.json

--heldout-sample FILE also writes a contiguous piece of the test chapters (tests/data/kjv_heldout.txt,
what the integration test sends).

Usage (the bundled model: 1980 s at 2 threads on a 2-core machine shared with other jobs;
test next-character top-1 0.6801, 1.501 bits per character on 6,233 held-out windows):
    /usr/bin/python3 tools/train_charlm.py --out models/kjv_charlm/1 --heldout-sample tests/data/kjv_heldout.txt
"""
import argparse
import math
import os
import re
import subprocess
import sys
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from train_fmnist import write_manifest  # noqa: E402
from train_vit import Attention, Block  # noqa: E402

BIBLE_RANGE = "Genesis 1:1-Revelation 22:21"
HEADING = re.compile(r"^\S.* \d+$")      # "Genesis 1", "1 Kings 3", "Song of Solomon 2"
VERSE = re.compile(r"^\s+\d+ (.*)$")     # "  12 And God said, ..."


def load_chapters(bible="bible"):
    """The KJV as a list of chapters, each its verses joined by newlines."""
    try:
        out = subprocess.run([bible, "-l100000", BIBLE_RANGE], check=True, capture_output=True, text=True).stdout
    except FileNotFoundError:
        sys.exit("train_charlm: no '%s' program: apt-get install bible-kjv" % bible)
    chapters, verses = [], None
    for line in out.splitlines():
        if not line.strip():
            continue
        m = VERSE.match(line)
        if m:
            if verses is None:
                sys.exit("train_charlm: a verse before the first chapter heading: %r" % line[:80])
            verses.append(m.group(1).strip())
        elif HEADING.match(line):
            if verses:
                chapters.append("\n".join(verses))
            verses = []
        else:
            sys.exit("train_charlm: unexpected line from bible: %r" % line[:80])
    if verses:
        chapters.append("\n".join(verses))
    return chapters


def split_corpus(chapters):
    parts = {"train": [], "tune": [], "test": []}
    for i, ch in enumerate(chapters):
        parts["test" if i % 10 == 9 else "tune" if i % 10 == 4 else "train"].append(ch)
    return {k: "\n".join(v) for k, v in parts.items()}


class CharLM(nn.Module):
    def __init__(self, vocab, context=64, dim=96, depth=4, heads=4, mlp=384):
        super().__init__()
        self.tok = nn.Embedding(vocab, dim)
        self.pos = nn.Parameter(torch.zeros(1, context, dim))
        nn.init.normal_(self.tok.weight, std=0.02)
        nn.init.normal_(self.pos, std=0.02)
        self.blocks = nn.ModuleList([Block(dim, heads, mlp, Attention(dim, heads, causal_context=context))
                                     for _ in range(depth)])
        self.norm = nn.LayerNorm(dim)
        self.fc = nn.Linear(dim, vocab)

    def all_logits(self, ids):
        """ids [B,T] -> logits of every position [B,T,V] (training and evaluation)."""
        x = self.tok(ids) + self.pos[:, :ids.shape[1]]
        for blk in self.blocks:
            x = blk(x)
        return self.fc(self.norm(x))

    def forward(self, ids):
        return self.all_logits(ids)[:, -1]


class Head(nn.Module):
    """ids -> residual stream after block `k` (1-based). Holds only the modules it runs."""

    def __init__(self, net, k):
        super().__init__()
        self.tok = net.tok
        self.pos = net.pos
        self.blocks = nn.Sequential(*net.blocks[:k])

    def forward(self, ids):
        return self.blocks(self.tok(ids) + self.pos[:, :ids.shape[1]])


class Tail(nn.Module):
    """residual stream after block `k` -> logits of the last position."""

    def __init__(self, net, k):
        super().__init__()
        self.blocks = nn.Sequential(*net.blocks[k:])
        self.norm = net.norm
        self.fc = net.fc

    def forward(self, x):
        return self.fc(self.norm(self.blocks(x)[:, -1]))


def windows(ids, context, stride):
    """Every window of context+1 ids at the given stride: inputs [N,context], next ids [N]."""
    n = (len(ids) - context - 1) // stride + 1
    idx = np.arange(n)[:, None] * stride + np.arange(context + 1)[None, :]
    w = torch.from_numpy(ids[idx])
    return w[:, :context].contiguous(), w[:, context].contiguous()


@torch.no_grad()
def next_char_eval(fn, x, y, batch=512):
    """(top-1 accuracy, bits per character) of the last-position prediction."""
    ok, nll = 0, 0.0
    for i in range(0, x.shape[0], batch):
        logits = fn(x[i:i + batch])
        ok += (logits.argmax(1) == y[i:i + batch]).sum().item()
        nll += F.cross_entropy(logits, y[i:i + batch], reduction="sum").item()
    return ok / x.shape[0], nll / x.shape[0] / math.log(2)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", required=True, help="output version dir, e.g. models/kjv_charlm/1")
    ap.add_argument("--bible", default="bible", help="the bible-kjv reader program")
    ap.add_argument("--context", type=int, default=64)
    ap.add_argument("--dim", type=int, default=96)
    ap.add_argument("--depth", type=int, default=4)
    ap.add_argument("--heads", type=int, default=4)
    ap.add_argument("--mlp", type=int, default=384)
    ap.add_argument("--split", type=int, default=2, help="block after which to split (1-based)")
    ap.add_argument("--steps", type=int, default=2000)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--lr", type=float, default=3e-3, help="OneCycle max LR (AdamW)")
    ap.add_argument("--wd", type=float, default=0.05)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--eval-every", type=int, default=500)
    ap.add_argument("--heldout-sample", default="",
                    help="also write the first --heldout-chars characters of the test chapters here")
    ap.add_argument("--heldout-chars", type=int, default=20000, help="size of --heldout-sample")
    ap.add_argument("--min-top1", type=float, default=0.5, help="fail (exit 1) below this test next-char top-1")
    args = ap.parse_args(argv)
    if not 1 <= args.split < args.depth:
        ap.error("--split must lie in 1..depth-1")

    torch.set_num_threads(args.threads)
    torch.set_num_interop_threads(1)
    torch.manual_seed(args.seed)
    np.random.seed(args.seed)

    chapters = load_chapters(args.bible)
    text = split_corpus(chapters)
    labels = sorted(set("\n".join(chapters)))
    index = {c: i for i, c in enumerate(labels)}
    ids = {k: np.array([index[c] for c in v], dtype=np.int64) for k, v in text.items()}
    print("%d chapters, vocab %d, chars: train %d tune %d test %d" % (
        len(chapters), len(labels), len(ids["train"]), len(ids["tune"]), len(ids["test"])))

    T = args.context
    x_tune, y_tune = windows(ids["tune"], T, 4 * T)
    x_test, y_test = windows(ids["test"], T, T)
    model = CharLM(len(labels), T, args.dim, args.depth, args.heads, args.mlp)
    nparams = sum(p.numel() for p in model.parameters())
    print("model dim=%d depth=%d heads=%d mlp=%d context=%d params=%d" % (
        args.dim, args.depth, args.heads, args.mlp, T, nparams))

    decay = [p for n, p in model.named_parameters() if p.ndim >= 2 and n != "pos" and not n.startswith("tok")]
    no_decay = [p for n, p in model.named_parameters() if not (p.ndim >= 2 and n != "pos" and not n.startswith("tok"))]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": args.wd},
                             {"params": no_decay, "weight_decay": 0.0}], lr=args.lr, betas=(0.9, 0.99))
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=args.lr, total_steps=args.steps, pct_start=0.1)
    gen = np.random.default_rng(args.seed)
    train = torch.from_numpy(ids["train"])
    span = torch.arange(T + 1)
    t0 = time.time()
    for step in range(1, args.steps + 1):
        model.train()
        starts = torch.from_numpy(gen.integers(0, len(train) - T - 1, size=args.batch))
        w = train[starts[:, None] + span[None, :]]
        logits = model.all_logits(w[:, :T])
        loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), w[:, 1:].reshape(-1))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        sched.step()
        if step % args.eval_every == 0 or step == args.steps:
            model.eval()
            acc, bpc = next_char_eval(model, x_tune, y_tune)
            print("step %d: train loss %.4f (%.3f bpc, all positions) | tune next-char top1 %.4f, %.3f bpc | %.0fs"
                  % (step, loss.item(), loss.item() / math.log(2), acc, bpc, time.time() - t0), flush=True)
    train_wall = time.time() - t0

    model.eval()
    os.makedirs(args.out, exist_ok=True)
    s = "block%d" % args.split
    example = x_test[:4]
    with torch.no_grad():
        head, tail = Head(model, args.split).eval(), Tail(model, args.split).eval()
        feat = head(example)
        torch.jit.trace(model, example).save(os.path.join(args.out, "full.pt"))
        torch.jit.trace(head, example).save(os.path.join(args.out, "head_%s.pt" % s))
        torch.jit.trace(tail, feat).save(os.path.join(args.out, "tail_%s.pt" % s))

        # Verify the saved files: reloaded, another batch size than tracing.
        full_l = torch.jit.load(os.path.join(args.out, "full.pt"))
        h = torch.jit.load(os.path.join(args.out, "head_%s.pt" % s))
        t = torch.jit.load(os.path.join(args.out, "tail_%s.pt" % s))
        xb = x_test[100:133]
        y_full = full_l(xb)
        assert torch.allclose(y_full, model(xb), atol=1e-5, rtol=1e-5), "full.pt mismatch"
        f = h(xb)
        err = (t(f) - y_full).abs().max().item()
        assert err < 1e-4, err
        print("split %s feature %s  min %.3f max %.3f  max|tail(head(x))-full(x)| = %.3g  OK" % (
            s, list(f.shape[1:]), float(f.min()), float(f.max()), err))
        test_acc, test_bpc = next_char_eval(full_l, x_test, y_test)
        tune_acc, tune_bpc = next_char_eval(full_l, x_tune, y_tune)
    print("reloaded full.pt: test next-char top1 %.4f, %.3f bpc on %d windows (tune %.4f, %.3f bpc)" % (
        test_acc, test_bpc, x_test.shape[0], tune_acc, tune_bpc))

    manifest = {
        "name": os.path.basename(os.path.dirname(os.path.abspath(args.out))),
        "version": int(os.path.basename(os.path.abspath(args.out))),
        "platform": "torchscript",
        "input": {"shape": [T], "dtype": "INT64", "kind": "tokens", "vocab": len(labels),
                  "text": "one token per character: id i is labels[i]"},
        "output": {"shape": [len(labels)], "dtype": "FP32", "kind": "logits",
                   "meaning": "next-character logits after the last input position"},
        "labels": labels,
        "full": "full.pt",
        "default_split": s,
        "splits": {s: {"head": "head_%s.pt" % s, "tail": "tail_%s.pt" % s, "feature_shape": list(feat.shape[1:])}},
        "architecture": {"kind": "char-transformer", "context": T, "dim": args.dim, "depth": args.depth,
                         "heads": args.heads, "mlp": args.mlp, "norm": "pre-LN", "attention": "causal",
                         "feature": "residual stream after the block (signed, dense)", "params": nparams},
        "corpus": {"text": "King James Version (1611, public domain)",
                   "debian_package": "bible-kjv-text (read with bible-kjv's `bible`)",
                   "split": "by chapter: test = chapter % 10 == 9, tune = chapter % 10 == 4, train = the rest",
                   "chars": {k: int(len(v)) for k, v in ids.items()}},
        "test_next_char_top1": round(test_acc, 4),
        "test_bits_per_char": round(test_bpc, 4),
        "test_windows": int(x_test.shape[0]),
        "train_steps": args.steps,
        "batch": args.batch,
        "seed": args.seed,
        "train_wall_s": round(train_wall, 1),
        "train_threads": args.threads,
        "torch_version": torch.__version__,
        "generated_by": "/usr/bin/python3 tools/train_charlm.py " + " ".join(sys.argv[1:] if argv is None else argv),
    }
    write_manifest(args.out, manifest)
    if args.heldout_sample:
        sample = text["test"][:args.heldout_chars]
        with open(args.heldout_sample, "w") as fh:
            fh.write(sample)
        print("wrote %s (%d chars of the test chapters)" % (args.heldout_sample, len(sample)))
    if test_acc < args.min_top1:
        print("ERROR: test next-char top1 %.4f < %.2f" % (test_acc, args.min_top1), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
