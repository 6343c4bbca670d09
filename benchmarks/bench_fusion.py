"""What fusion buys: compiled relu(linear) against numpy, forward+backward of linear and
of a transformer's GELU MLP block (``x + linear(gelu(linear(x)))``, tanh GELU) against
numpy written by hand, and fused against unfused lucid (LUCID_FUSION=0), all float32,
interleaved in the same process, at 1 and 2 threads.

    python benchmarks/bench_fusion.py [--quick]
"""
from __future__ import annotations

import os

from harness import interleaved, print_table, results_per_thread_count, setup_path

RELU_SHAPES = [(16384, 64, 64), (64, 784, 256)]
BACKWARD_SHAPES = [(64, 784, 256), (256, 1024, 1024)]
MLP_SHAPES = [(1024, 128, 512)]  # tokens x d_model x hidden: the GPT workload's MLP (batch 16 x 64)


def gelu_mlp_by_hand(np, xn, w1, b1, w2, b2, gn):
    """Forward and backward of ``x + linear(gelu_tanh(linear(x, w1, b1)), w2, b2)`` in numpy."""
    c = np.float32(0.7978845608028654)
    h = xn @ w1.T + b1
    u = c * (h + np.float32(0.044715) * h * h * h)
    t = np.tanh(u)
    a = np.float32(0.5) * h * (1 + t)
    _ = xn + a @ w2.T + b2
    ga = gn @ w2
    dt = (1 - t * t) * c * (1 + np.float32(3 * 0.044715) * h * h)
    gh = ga * (np.float32(0.5) * (1 + t) + np.float32(0.5) * h * dt)
    return gn.T @ a, gn.sum(0), gh.T @ xn, gh.sum(0), gh @ w1 + gn


def compiled_pair(fn):
    """The same function compiled with fusion on and off (LUCID_FUSION read at compile)."""
    import lucid
    fused, unfused = lucid.compile(fn), lucid.compile(fn)
    return fused, unfused


def warm(unfused, *args):
    os.environ["LUCID_FUSION"] = "0"
    try:
        unfused(*args)
    finally:
        del os.environ["LUCID_FUSION"]


def first_steps(step, fused, unfused) -> None:
    """``step(fused)``, then ``step(unfused)`` compiled without fusion (their first calls)."""
    step(fused)
    os.environ["LUCID_FUSION"] = "0"
    try:
        step(unfused)
    finally:
        del os.environ["LUCID_FUSION"]


def worker(threads: int, quick: bool) -> dict:
    setup_path()
    import numpy as np

    import lucid
    import lucid.nn.functional as F

    rng = np.random.default_rng(0)
    reps = 9 if quick else 31
    # timed blocks of >= ~300 MFLOP: a single sub-millisecond step swings with the VM's
    # scheduling far more than fusion changes it
    block_flop = 3e8
    rows = []
    for M, K, N in RELU_SHAPES:
        xn, wn = rng.standard_normal((M, K)).astype(np.float32), rng.standard_normal((N, K)).astype(np.float32)
        bn = rng.standard_normal(N).astype(np.float32)
        x, w, b = lucid.Tensor(xn), lucid.Tensor(wn), lucid.Tensor(bn)
        fused, unfused = compiled_pair(lambda x, w, b: F.relu(F.linear(x, w, b)))
        fused(x, w, b)
        warm(unfused, x, w, b)
        inner = max(1, int(block_flop // (2 * M * N * K)))
        by_numpy = lambda: np.maximum(xn @ wn.T + bn, 0)  # noqa: E731
        # numpy alone too: right after lucid's big writes numpy's own call runs slower
        # (measured 2.1 -> 3.5 ms at 16384x64x64); the table keeps its faster figure
        alone = interleaved({"numpy": by_numpy}, reps, inner)["numpy"]
        t = interleaved({"fused": lambda: fused(x, w, b), "unfused": lambda: unfused(x, w, b),
                         "numpy": by_numpy}, reps, inner)
        t["numpy"] = min(t["numpy"], alone)
        rows.append(dict(case=f"relu(linear) {M}x{K}x{N}", **t))
    for M, K, N in BACKWARD_SHAPES:
        xn, wn = rng.standard_normal((M, K)).astype(np.float32), rng.standard_normal((N, K)).astype(np.float32)
        bn, gn = rng.standard_normal(N).astype(np.float32), rng.standard_normal((M, N)).astype(np.float32)
        x = lucid.Tensor(xn, requires_grad=True)
        w, b = lucid.Tensor(wn, requires_grad=True), lucid.Tensor(bn, requires_grad=True)
        fused, unfused = compiled_pair(lambda x, w, b: F.linear(x, w, b))

        def step(f):
            x.grad = w.grad = b.grad = None
            f(x, w, b).backward(gn)

        def by_hand():
            xn @ wn.T + bn
            return gn @ wn, gn.T @ xn, gn.sum(0)
        first_steps(step, fused, unfused)
        t = interleaved({"fused": lambda: step(fused), "unfused": lambda: step(unfused), "numpy": by_hand},
                        reps, max(1, int(block_flop // (6 * M * N * K))))
        rows.append(dict(case=f"linear fwd+bwd {M}x{K}x{N}", **t))
    for M, D, H in MLP_SHAPES:
        xn, gn = rng.standard_normal((M, D)).astype(np.float32), rng.standard_normal((M, D)).astype(np.float32)
        arrays = [rng.standard_normal(s).astype(np.float32) / 8 for s in ((H, D), (H,), (D, H), (D,))]
        x = lucid.Tensor(xn, requires_grad=True)
        params = [lucid.Tensor(a, requires_grad=True) for a in arrays]
        fused, unfused = compiled_pair(
            lambda x, w1, b1, w2, b2: x + F.linear(F.gelu(F.linear(x, w1, b1), approximate="tanh"), w2, b2))

        def mlp_step(f):
            x.grad = None
            for p in params:
                p.grad = None
            f(x, *params).backward(gn)
        first_steps(mlp_step, fused, unfused)
        t = interleaved({"fused": lambda: mlp_step(fused), "unfused": lambda: mlp_step(unfused),
                         "numpy": lambda: gelu_mlp_by_hand(np, xn, *arrays, gn)},
                        reps, max(1, int(block_flop // (12 * M * D * H))))
        rows.append(dict(case=f"gelu mlp fwd+bwd {M}x{D}x{H}", **t))
    return dict(threads=threads, rows=rows)


def main() -> None:
    results = results_per_thread_count(__doc__, __file__, worker)
    if results is None:
        return
    table = []
    for res in results:
        for r in res["rows"]:
            table.append([r["case"], res["threads"], f"{r['fused'] * 1e6:.0f}", f"{r['unfused'] * 1e6:.0f}",
                          f"{r['numpy'] * 1e6:.0f}", f"{r['numpy'] / r['fused']:.2f}",
                          f"{r['unfused'] / r['fused']:.2f}"])
    print("float32, median µs; numpy/fused > 1: lucid faster; unfused/fused > 1: fusion helps; "
          "numpy = the faster of numpy interleaved and numpy alone")
    print_table(["case", "threads", "fused us", "unfused us", "numpy us", "numpy/fused", "unfused/fused"], table)


if __name__ == "__main__":
    main()
