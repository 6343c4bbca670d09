"""Elementwise and reduction kernels vs numpy, interleaved in one process (median of reps).

    .venv/bin/python benchmarks/bench_elementwise.py
"""
from __future__ import annotations

import statistics
import time

import numpy as np

from lucid_ir.builder import GraphBuilder
from lucid_codegen.kernels.elementwise import ElementwiseKernel
from lucid_codegen.kernels.reduction import ReductionKernel


def median_pair(f_lucid, f_numpy, reps):
    f_lucid(), f_numpy()
    a, b = [], []
    for _ in range(reps):  # interleaved A B A B: both see the same machine noise
        t = time.perf_counter(); f_lucid(); a.append(time.perf_counter() - t)
        t = time.perf_counter(); f_numpy(); b.append(time.perf_counter() - t)
    return statistics.median(a), statistics.median(b)


def cases():
    rng = np.random.default_rng(0)
    n = 4 * 1024 * 1024
    x, y, z = (rng.standard_normal(n).astype(np.float32) for _ in range(3))
    b = GraphBuilder()
    vx, vy, vz = (b.input((n,), "float32") for _ in range(3))
    k = ElementwiseKernel.for_graph(b.build([b.emit("sigmoid", b.emit("add", b.emit("mul", vx, vy), vz))]))
    out = np.empty(n, np.float32)
    yield ("sigmoid(x*y+z) f32 4M", lambda: k([x, y, z], [out]),
           lambda: np.divide(1, 1 + np.exp(-(x * y + z))), 30)

    m = rng.standard_normal((16384, 256)).astype(np.float32)
    b = GraphBuilder()
    v = b.input(m.shape, "float32")
    k2 = ReductionKernel.for_graph(b.build([b.emit("sum", v, axes=(0,))]))
    yield "column sum (16384,256) f32", lambda: k2([m]), lambda: m.sum(axis=0), 30

    r = rng.standard_normal((4096, 1000)).astype(np.float32)
    b = GraphBuilder()
    v = b.input(r.shape, "float32")
    k3 = ReductionKernel.for_graph(b.build([b.emit("sum", b.emit("exp", v), axes=(1,))]))
    yield "row sum exp (4096,1000) f32", lambda: k3([r]), lambda: np.exp(r).sum(axis=1), 30

    s, t = rng.standard_normal((8, 8)).astype(np.float32), rng.standard_normal((8, 8)).astype(np.float32)
    b = GraphBuilder()
    vs, vt = b.input((8, 8), "float32"), b.input((8, 8), "float32")
    k4 = ElementwiseKernel.for_graph(b.build([b.emit("add", vs, vt)]))
    yield "add 8x8 f32 (call overhead)", lambda: k4([s, t]), lambda: np.add(s, t), 2000


def main():
    print(f"{'case':34s} {'lucid':>11s} {'numpy':>11s} {'numpy/lucid':>12s}")
    for name, fl, fn, reps in cases():
        tl, tn = median_pair(fl, fn, reps)
        print(f"{name:34s} {tl * 1e6:9.1f}us {tn * 1e6:9.1f}us {tn / tl:11.2f}x")


if __name__ == "__main__":
    main()
