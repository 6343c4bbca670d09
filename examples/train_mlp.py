"""Train an MLP on a three-armed spiral, eagerly and compiled, from the same weights.

    python examples/train_mlp.py [--epochs 30]

Both models start from the same initial weights and see the same batches; after every
step the two losses are compared (they must agree to 1e-4 relative). The compiled
training step is one ``lucid.compile``d function: zero_grad, forward, ``backward()`` and
the optimiser's ``step()`` are traced once per batch shape into one graph, fused and run
as native kernels that update the parameters in place.
"""
from __future__ import annotations

import argparse
import sys
import time

import numpy as np

import lucid
import lucid.nn as nn
import lucid.nn.functional as F


def make_spiral(points_per_class: int = 300, classes: int = 3, seed: int = 0):
    """A classic spiral: each class is one noisy arm winding out from the centre."""
    rng = np.random.default_rng(seed)
    xs, ys = [], []
    for c in range(classes):
        r = np.linspace(0.05, 1.0, points_per_class)
        theta = np.linspace(c * 4.0, (c + 1) * 4.0, points_per_class) + rng.normal(0, 0.2, points_per_class)
        xs.append(np.stack([r * np.sin(theta), r * np.cos(theta)], axis=1))
        ys.append(np.full(points_per_class, c))
    return np.concatenate(xs).astype(np.float32), np.concatenate(ys).astype(np.int64)


def make_model(classes: int) -> nn.Module:
    return nn.Sequential(nn.Linear(2, 64), nn.ReLU(), nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, classes))


def accuracy(model, x, y) -> float:
    with lucid.no_grad():
        return float((model(lucid.Tensor(x)).numpy().argmax(axis=1) == y).mean())


def bar(done: int, total: int, width: int = 24) -> str:
    filled = int(width * done / total)
    return "[" + "#" * filled + "." * (width - filled) + "]"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--lr", type=float, default=0.01)
    args = parser.parse_args(argv)

    x, y = make_spiral()
    lucid.random.seed(0)
    eager_model, compiled_model = make_model(3), make_model(3)
    compiled_model.load_state_dict(eager_model.state_dict())  # same initial weights
    eager_opt = lucid.optim.Adam(eager_model.parameters(), lr=args.lr)
    compiled_opt = lucid.optim.Adam(compiled_model.parameters(), lr=args.lr)

    def loss_of(model, xb, yb):
        return F.cross_entropy(model(xb), yb)

    def eager_step(xb, yb):
        eager_opt.zero_grad()
        loss = loss_of(eager_model, xb, yb)
        loss.backward()
        eager_opt.step()
        return loss

    @lucid.compile
    def compiled_step(xb, yb):  # the same code, traced and compiled as a whole
        compiled_opt.zero_grad()
        loss = loss_of(compiled_model, xb, yb)
        loss.backward()
        compiled_opt.step()
        return loss

    order_rng = np.random.default_rng(1)
    worst = 0.0
    times = {"eager": 0.0, "compiled": 0.0}
    steps = (len(x) + args.batch - 1) // args.batch
    for epoch in range(1, args.epochs + 1):
        order = order_rng.permutation(len(x))
        losses = []
        for i in range(steps):
            idx = order[i * args.batch:(i + 1) * args.batch]
            xb, yb = lucid.Tensor(x[idx]), y[idx]
            for name, step in (("eager", eager_step), ("compiled", compiled_step)):
                start = time.perf_counter()
                loss = step(xb, yb)
                times[name] += time.perf_counter() - start
                losses.append((name, loss.item()))
            (_, le), (_, lc) = losses[-2:]
            worst = max(worst, abs(le - lc) / max(abs(le), 1e-12))
            if worst > 1e-4:
                print(f"\neager and compiled losses differ: {le} vs {lc}", file=sys.stderr)
                return 1
            sys.stdout.write(f"\repoch {epoch:3d}/{args.epochs} {bar(i + 1, steps)} "
                             f"loss {np.mean([l for n, l in losses if n == 'eager']):.4f}")
            sys.stdout.flush()
        sys.stdout.write(f"  accuracy eager {accuracy(eager_model, x, y):6.1%}  "
                         f"compiled {accuracy(compiled_model, x, y):6.1%}\n")
    print(f"\nlargest relative difference between eager and compiled losses: {worst:.2e}")
    print(f"time in training steps: eager {times['eager']:.2f} s, compiled {times['compiled']:.2f} s "
          f"({compiled_step.traces} traces)")
    print(f"final accuracy: {accuracy(compiled_model, x, y):.1%} on {len(x)} spiral points")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
