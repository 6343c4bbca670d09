"""Train a small CNN on scikit-learn's bundled 8x8 handwritten digits (1797 images, no
download), eagerly or with the whole training step compiled, on one process or several.

    python examples/train_cnn_digits.py [--epochs 20] [--compile]
    mpiexec -n 2 python examples/train_cnn_digits.py --ddp      # data parallel over MPI

The model and the training loop use PyTorch's API names only: change the three imports
marked below to ``torch`` and the same file trains under PyTorch. Prints the test
accuracy at the end and saves the loss curve as ``cnn_digits_loss.png`` (with
matplotlib). Needs the examples extra: ``pip install 'lucid[examples]'``.
"""
from __future__ import annotations

import argparse
import os
import sys
import time

import numpy as np

import lucid as torch                                      # PyTorch: import torch
import lucid.nn as nn                                      # PyTorch: import torch.nn as nn
import lucid.nn.functional as F                            # PyTorch: import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _progress import progress, save_loss_plot, set_postfix  # noqa: E402


class DigitsCNN(nn.Module):
    """conv-BN-ReLU ×2, max-pool, conv-BN-ReLU, max-pool, linear: 8×8 → 10 classes (no
    dropout: it reaches its accuracy without, and its losses follow PyTorch's step by step
    in tests/test_examples.py, which random masks would not)."""

    def __init__(self, width: int = 32):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(1, width, 3, padding=1), nn.BatchNorm2d(width), nn.ReLU(),
            nn.Conv2d(width, width, 3, padding=1), nn.BatchNorm2d(width), nn.ReLU(),
            nn.MaxPool2d(2),                                               # 8x8 -> 4x4
            nn.Conv2d(width, 2 * width, 3, padding=1), nn.BatchNorm2d(2 * width), nn.ReLU(),
            nn.MaxPool2d(2),                                               # 4x4 -> 2x2
        )
        self.classifier = nn.Sequential(nn.Flatten(), nn.Linear(8 * width, 10))

    def forward(self, x):
        return self.classifier(self.features(x))


def load_digits(seed: int = 0, test_fraction: float = 0.2):
    """(train_x, train_y, test_x, test_y): images as float32 (N, 1, 8, 8) in [0, 1]."""
    try:
        from sklearn.datasets import load_digits as sk_digits
    except ImportError:
        raise SystemExit("train_cnn_digits needs scikit-learn for its bundled digits: "
                         "pip install 'lucid[examples]'") from None
    digits = sk_digits()
    x = (digits.images / 16.0).astype(np.float32)[:, None]
    y = digits.target.astype(np.int64)
    order = np.random.default_rng(seed).permutation(len(x))
    n_test = int(len(x) * test_fraction)
    test, train = order[:n_test], order[n_test:]
    return x[train], y[train], x[test], y[test]


def accuracy(model, x, y) -> float:
    model.eval()
    with torch.no_grad():
        pred = model(torch.tensor(x)).argmax(dim=1).numpy()
    model.train()
    return float((pred == y).mean())


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--batch", type=int, default=64, help="global batch size")
    parser.add_argument("--lr", type=float, default=3e-3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--compile", action="store_true", help="compile the whole training step")
    parser.add_argument("--ddp", action="store_true", help="data parallel over MPI (launch with mpiexec)")
    parser.add_argument("--plot", default="cnn_digits_loss.png", help="where to save the loss curve")
    parser.add_argument("--save", default="", help="write a checkpoint here at the end (rank 0)")
    parser.add_argument("--no-progress", action="store_true")
    args = parser.parse_args(argv)

    rank, world = 0, 1
    if args.ddp:
        import lucid.distributed as dist                    # PyTorch: import torch.distributed as dist
        dist.init_process_group("mpi")
        rank, world = dist.get_rank(), dist.get_world_size()
    torch.manual_seed(args.seed)
    xtr, ytr, xte, yte = load_digits(args.seed)
    model = DigitsCNN()
    net = model
    if args.ddp:
        from lucid.nn.parallel import DistributedDataParallel   # PyTorch: torch.nn.parallel
        net = DistributedDataParallel(model)
    opt = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=1e-4)
    steps_per_epoch = len(xtr) // args.batch
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=args.lr, total_steps=args.epochs * steps_per_epoch)

    def train_step(xb, yb):
        opt.zero_grad()
        loss = F.cross_entropy(net(xb), yb, label_smoothing=0.05)
        loss.backward()
        opt.step()
        return loss

    step = torch.compile(train_step) if args.compile else train_step
    local = args.batch // world
    rng = np.random.default_rng(args.seed)
    curve, start = [], time.perf_counter()
    for epoch in range(1, args.epochs + 1):
        order = rng.permutation(len(xtr))[:steps_per_epoch * args.batch]   # same on every rank
        bar = progress(range(steps_per_epoch), steps_per_epoch, f"epoch {epoch}/{args.epochs}",
                       enabled=rank == 0 and not args.no_progress)
        for i in bar:
            idx = order[i * args.batch:(i + 1) * args.batch][rank * local:(rank + 1) * local]
            loss = step(torch.tensor(xtr[idx]), torch.tensor(ytr[idx]))
            sched.step()
            curve.append((len(curve), loss.item()))
            set_postfix(bar, f"loss {curve[-1][1]:.4f}")
    seconds = time.perf_counter() - start
    acc = accuracy(model, xte, yte)
    if rank == 0:
        print(f"test accuracy {acc:.2%} on {len(xte)} digits after {args.epochs} epochs "
              f"({seconds:.1f} s of training, {'compiled' if args.compile else 'eager'}, "
              f"{world} rank(s)); final training loss {np.mean([l for _, l in curve[-steps_per_epoch:]]):.4f}")
        if args.save:  # rank 0 only; lucid.save writes a temporary file, then renames it
            torch.save({"model": model.state_dict(), "optimizer": opt.state_dict()}, args.save)
            print(f"checkpoint saved to {args.save}")
        if args.plot:
            saved = save_loss_plot(args.plot, {"training loss": curve}, "CNN on 8x8 digits")
            if saved:
                print(f"loss curve saved to {saved}")
    if args.ddp:
        dist.destroy_process_group()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
