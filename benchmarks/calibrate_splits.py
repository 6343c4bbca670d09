"""Measure the constants of the splitting cost model (``lucid_codegen.runtime.work_split``) on
this machine and print them next to the values the module holds.

    python benchmarks/calibrate_splits.py [--reps N]

What it measures (one process, medians of interleaved repetitions; the load average is
printed, since the machine is shared):

- loop bandwidth: one core running ``x + y`` (float32) over operands of 0.25-2 MB;
- per-element op costs: ``f(x)`` minus ``-x`` over the same elements, for every op with
  a ``cost`` trait, in bytes-equivalent at the loop bandwidth;
- GEMM rates: one core's FLOP rate at 256³ and the bytes a 1×784×256 product streams;
- attention: one core's FLOP rate of the fused causal attention (1×4×256×64);
- hand-off latencies: a native program's parts (a split loop kernel at 2 threads minus
  half its one-thread time), a GEMM posted by ``run_native`` (1×784×256 split vs not),
  and Python chunks (``threads.parallel_for`` of two empty chunks).

Not a test: the figures move with the load. Copy a value into ``work_split`` when it
moves a threshold and the benchmarks (bench_eager, bench_models) agree.
"""
from __future__ import annotations

import argparse
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

import lucid  # noqa: E402
import lucid.nn.functional as F  # noqa: E402
from lucid_codegen.runtime import threads  # noqa: E402
from lucid_codegen.runtime import work_split


def median_seconds(fn, reps: int, inner: int) -> float:
    fn()
    times = []
    for _ in range(reps):
        start = time.perf_counter()
        for _ in range(inner):
            fn()
        times.append((time.perf_counter() - start) / inner)
    return sorted(times)[len(times) // 2]


def tensor(shape, positive=False):
    a = np.random.default_rng(0).standard_normal(shape).astype(np.float32)
    return lucid.tensor(np.abs(a) + 0.5 if positive else a)


UNARY_CALLS = {"exp": lambda x: x.exp(), "log": lambda x: x.log(), "tanh": lambda x: x.tanh(),
               "sigmoid": lambda x: x.sigmoid(), "sqrt": lambda x: x.sqrt(), "rsqrt": lambda x: x.rsqrt(),
               "sin": lambda x: x.sin(), "cos": lambda x: x.cos(), "expm1": lambda x: x.expm1(),
               "log1p": lambda x: x.log1p(), "log2": lambda x: x.log2(), "erf": lambda x: x.erf(),
               "div": lambda x: x / x, "pow": lambda x: x ** x}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reps", type=int, default=41)
    args = ap.parse_args()
    reps = args.reps
    print(f"load average at start: {os.getloadavg()[0]:.2f}")
    rows = []

    threads.set_num_threads(1)
    rates = []
    for n in (1 << 15, 1 << 16, 1 << 17):
        x, y = tensor((n,)), tensor((n,))
        s = median_seconds(lambda: x + y, reps, 20)
        rates.append(3 * 4 * n / s)
    bandwidth = sorted(rates)[len(rates) // 2]
    rows.append(("LOOP_BYTES_PER_S", bandwidth, work_split.LOOP_BYTES_PER_S))

    n = 1 << 16
    x = tensor((n,), positive=True)
    base = median_seconds(lambda: -x, reps, 20)
    for op, call in UNARY_CALLS.items():
        if op not in work_split.OP_COST_BYTES:
            continue
        try:
            s = median_seconds(lambda: call(x), reps, 20)
        except AttributeError:
            continue
        rows.append((f"cost({op})", max(0.0, (s - base) / n * bandwidth), work_split.OP_COST_BYTES[op]))

    a, b = tensor((256, 256)), tensor((256, 256))
    s = median_seconds(lambda: a @ b, reps, 5)
    rows.append(("GEMM_FLOPS_PER_S", 2 * 256 ** 3 / s, work_split.GEMM_FLOPS_PER_S))
    v, w = tensor((1, 784)), tensor((256, 784))
    s1 = median_seconds(lambda: F.linear(v, w), reps, 20)
    rows.append(("GEMM_BYTES_PER_S", 4 * (784 + 784 * 256 + 256) / s1, work_split.GEMM_BYTES_PER_S))

    q, k, vv = tensor((1, 4, 256, 64)), tensor((1, 4, 256, 64)), tensor((1, 4, 256, 64))
    s = median_seconds(lambda: F.scaled_dot_product_attention(q, k, vv, is_causal=True), reps, 3)
    rows.append(("ATTENTION_FLOPS_PER_S", 4 * 256 * 256 * 64 * 4 / 2 / s, work_split.ATTENTION_FLOPS_PER_S))

    big = (1 << 20) // 12 * 2  # a loop of ~2 MB: splits in a native program
    x2, y2 = tensor((big,)), tensor((big,))
    f = lucid.compile(lambda p, r: p * r + p)
    one = median_seconds(lambda: f(x2, y2), reps, 5)
    threads.set_num_threads(2)
    two = median_seconds(lambda: f(x2, y2), reps, 5)
    rows.append(("NATIVE_HANDOFF_S", max(0.0, two - one / 2), work_split.NATIVE_HANDOFF_S))
    s2 = median_seconds(lambda: F.linear(v, w), reps, 20)
    rows.append(("GEMM_HANDOFF_S", max(0.0, s2 - s1 / 2), work_split.GEMM_HANDOFF_S))
    s = median_seconds(lambda: threads.parallel_for(2, lambda i: None), reps, 20)
    rows.append(("POOL_HANDOFF_S", s, work_split.POOL_HANDOFF_S))

    print(f"{'constant':24} {'measured':>12} {'work_split':>12} {'ratio':>7}")
    for name, measured, held in rows:
        print(f"{name:24} {measured:12.4g} {held:12.4g} {measured / held if held else float('nan'):7.2f}")
    print(f"load average at end: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
