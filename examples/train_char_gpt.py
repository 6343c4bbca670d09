"""Train a nanoGPT-style character model on the Python standard library's own source
text (present on every machine), then print a sample.

    python examples/train_char_gpt.py [--steps 1500] [--compile]
    mpiexec -n 2 python examples/train_char_gpt.py --ddp        # data parallel over MPI

Token and position embeddings, pre-norm blocks of causal self-attention
(``F.scaled_dot_product_attention``) and a GELU MLP, an untied bias-free head; AdamW with
a warm-up and cosine schedule and gradient clipping at 1.0. The model and the training
loop use PyTorch's API names only: change the three imports marked below to ``torch``
and the same file trains under PyTorch. Prints the validation loss against the unigram
baseline (the entropy of the character frequencies) and saves the loss curves as
``char_gpt_loss.png`` (with matplotlib).
"""
from __future__ import annotations

import argparse
import math
import os
import sys
import sysconfig
import time

import numpy as np

import lucid as torch                                      # PyTorch: import torch
import lucid.nn as nn                                      # PyTorch: import torch.nn as nn
import lucid.nn.functional as F                            # PyTorch: import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _progress import progress, save_loss_plot, set_postfix  # noqa: E402

VOCAB = ["\n"] + [chr(c) for c in range(32, 127)]          # newline and printable ASCII: 96


class CausalSelfAttention(nn.Module):
    def __init__(self, d_model: int, n_head: int):
        super().__init__()
        self.n_head = n_head
        self.qkv = nn.Linear(d_model, 3 * d_model)
        self.proj = nn.Linear(d_model, d_model)

    def forward(self, x):
        B, T, C = x.shape
        q, k, v = self.qkv(x).split(C, dim=2)
        q = q.view(B, T, self.n_head, C // self.n_head).transpose(1, 2)
        k = k.view(B, T, self.n_head, C // self.n_head).transpose(1, 2)
        v = v.view(B, T, self.n_head, C // self.n_head).transpose(1, 2)
        y = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        return self.proj(y.transpose(1, 2).reshape(B, T, C))


class Block(nn.Module):
    def __init__(self, d_model: int, n_head: int):
        super().__init__()
        self.ln1 = nn.LayerNorm(d_model)
        self.attn = CausalSelfAttention(d_model, n_head)
        self.ln2 = nn.LayerNorm(d_model)
        self.mlp = nn.Sequential(nn.Linear(d_model, 4 * d_model), nn.GELU(), nn.Linear(4 * d_model, d_model))

    def forward(self, x):
        x = x + self.attn(self.ln1(x))
        return x + self.mlp(self.ln2(x))


class CharGPT(nn.Module):
    def __init__(self, vocab: int = 96, context: int = 64, d_model: int = 128, n_head: int = 4, n_layer: int = 2):
        super().__init__()
        self.context = context
        self.tok = nn.Embedding(vocab, d_model)
        self.pos = nn.Embedding(context, d_model)
        self.blocks = nn.Sequential(*[Block(d_model, n_head) for _ in range(n_layer)])
        self.ln_f = nn.LayerNorm(d_model)
        self.head = nn.Linear(d_model, vocab, bias=False)

    def forward(self, idx):
        B, T = idx.shape
        x = self.tok(idx) + self.pos(torch.arange(T))
        return self.head(self.ln_f(self.blocks(x)))


def stdlib_text(max_bytes: int) -> str:
    """The standard library's .py files, in sorted order, up to ``max_bytes``."""
    root = sysconfig.get_paths()["stdlib"]
    parts, size = [], 0
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if d not in ("site-packages", "test", "tests", "idlelib"))
        for name in sorted(filenames):
            if name.endswith(".py"):
                with open(os.path.join(dirpath, name), encoding="utf-8", errors="replace") as f:
                    text = f.read()
                parts.append(text)
                size += len(text)
                if size >= max_bytes:
                    return "".join(parts)[:max_bytes]
    return "".join(parts)


def encode(text: str) -> np.ndarray:
    """Characters as indices into ``VOCAB`` (tabs as 4 spaces; anything else outside it dropped)."""
    table = np.full(0x110000, -1, np.int64)
    for i, ch in enumerate(VOCAB):
        table[ord(ch)] = i
    codes = table[np.frombuffer(text.replace("\t", "    ").encode("utf-32-le"), np.uint32)]
    return codes[codes >= 0]


def batch(data: np.ndarray, batch_size: int, context: int, rng):
    start = rng.integers(0, len(data) - context - 1, batch_size)
    window = start[:, None] + np.arange(context + 1)
    chunk = data[window]
    return torch.tensor(chunk[:, :-1]), torch.tensor(chunk[:, 1:])


def unigram_entropy(train: np.ndarray, val: np.ndarray) -> float:
    """Cross-entropy (nats) of the validation characters under the training frequencies."""
    counts = np.bincount(train, minlength=len(VOCAB)) + 1.0
    p = counts / counts.sum()
    return float(-np.log(p[val]).mean())


def sample(model, prompt: str, length: int, rng, temperature: float = 0.8) -> str:
    model.eval()
    idx = list(encode(prompt))
    with torch.no_grad():
        for _ in range(length):
            ctx = torch.tensor(np.array([idx[-model.context:]]))
            logits = model(ctx)[0, -1].numpy().astype(np.float64) / temperature
            p = np.exp(logits - logits.max())
            idx.append(int(rng.choice(len(VOCAB), p=p / p.sum())))
    model.train()
    return "".join(VOCAB[i] for i in idx)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=1500)
    parser.add_argument("--batch", type=int, default=16, help="global batch size")
    parser.add_argument("--context", type=int, default=64)
    parser.add_argument("--lr", type=float, default=3e-3)
    parser.add_argument("--text-mb", type=float, default=4.0, help="how much stdlib source to read")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--compile", action="store_true", help="compile the whole training step")
    parser.add_argument("--ddp", action="store_true", help="data parallel over MPI (launch with mpiexec)")
    parser.add_argument("--plot", default="char_gpt_loss.png")
    parser.add_argument("--save", default="", help="write a checkpoint here at the end (rank 0)")
    parser.add_argument("--no-progress", action="store_true")
    args = parser.parse_args(argv)

    rank, world = 0, 1
    if args.ddp:
        import lucid.distributed as dist                    # PyTorch: import torch.distributed as dist
        dist.init_process_group("mpi")
        rank, world = dist.get_rank(), dist.get_world_size()
    data = encode(stdlib_text(int(args.text_mb * 1e6)))
    split = int(len(data) * 0.9)
    train, val = data[:split], data[split:]
    baseline = unigram_entropy(train, val)
    torch.manual_seed(args.seed)
    model = CharGPT(len(VOCAB), args.context)
    net = model
    if args.ddp:
        from lucid.nn.parallel import DistributedDataParallel   # PyTorch: torch.nn.parallel
        net = DistributedDataParallel(model)
    opt = torch.optim.AdamW(model.parameters(), lr=args.lr, betas=(0.9, 0.95), weight_decay=0.1)
    warmup = max(1, args.steps // 20)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: min(1.0, (s + 1) / warmup) * 0.5 * (1 + math.cos(math.pi * min(1.0, s / args.steps))))

    def train_step(x, y):
        opt.zero_grad()
        logits = net(x)
        loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), y.reshape(-1))
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        return loss

    def val_loss(n_batches: int = 8) -> float:
        model.eval()
        vrng = np.random.default_rng(1234)
        with torch.no_grad():
            losses = []
            for _ in range(n_batches):
                x, y = batch(val, 32, args.context, vrng)
                logits = model(x)
                losses.append(F.cross_entropy(logits.reshape(-1, len(VOCAB)), y.reshape(-1)).item())
        model.train()
        return float(np.mean(losses))

    step = torch.compile(train_step) if args.compile else train_step
    rng = np.random.default_rng([args.seed, rank])
    local = args.batch // world
    curve, val_curve = [], []
    start, evaluating = time.perf_counter(), 0.0
    bar = progress(range(args.steps), args.steps, "training", enabled=rank == 0 and not args.no_progress)
    for i in bar:
        loss = step(*batch(train, local, args.context, rng))
        sched.step()
        curve.append((i, loss.item()))
        if (i + 1) % max(1, args.steps // 10) == 0 or i + 1 == args.steps:
            at = time.perf_counter()
            val_curve.append((i, val_loss()))
            evaluating += time.perf_counter() - at
            set_postfix(bar, f"loss {curve[-1][1]:.3f} val {val_curve[-1][1]:.3f}")
    seconds = time.perf_counter() - start - evaluating   # training only (the first step compiles)
    if rank == 0:
        final = val_curve[-1][1]
        print(f"validation loss {final:.3f} nats/char against the unigram baseline {baseline:.3f} "
              f"after {args.steps} steps ({seconds:.1f} s of training, {1e3 * seconds / args.steps:.1f} ms/step, "
              f"{'compiled' if args.compile else 'eager'}, {world} rank(s), {len(data) / 1e6:.1f} M chars)")
        if args.save:  # rank 0 only; lucid.save writes a temporary file, then renames it
            torch.save({"model": model.state_dict(), "optimizer": opt.state_dict(), "step": args.steps},
                       args.save)
            print(f"checkpoint saved to {args.save}")
        print("sample:\n" + sample(model, "def ", 300, np.random.default_rng(0)))
        if args.plot:
            saved = save_loss_plot(args.plot, {"train": curve, "validation": val_curve}, "char-GPT on stdlib source")
            if saved:
                print(f"loss curves saved to {saved}")
    if args.ddp:
        dist.destroy_process_group()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
