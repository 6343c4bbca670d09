"""Native math ops against numpy (and PyTorch) on 1M elements, one thread, medians of
interleaved runs: ``python benchmarks/bench_math.py``."""
import os
import time

os.environ.setdefault("OPENBLAS_THREAD_TIMEOUT", "4")
import numpy as np
import torch

from lucid_codegen.kernels import loops
from lucid_codegen.kernels.elementwise import ElementwiseKernel
from lucid_ir.builder import GraphBuilder

torch.set_num_threads(1)


def median_us(fn, reps=15):
    times = []
    for _ in range(reps):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return 1e6 * sorted(times)[len(times) // 2]


def main():
    pool = loops.thread_pool()
    if pool is not None:
        pool.set_num_threads(1)
    rng = np.random.default_rng(0)
    print("1M elements, one thread, median µs (lucid / numpy / torch)")
    for dtype in ("float32", "float64"):
        x = (rng.standard_normal(1 << 20) * 4).astype(dtype)
        y = rng.uniform(0.5, 2, 1 << 20).astype(dtype)
        for op, np_fn, t_fn, args in [("sin", np.sin, torch.sin, [x]), ("erf", None, torch.erf, [x]),
                                      ("log1p", np.log1p, torch.log1p, [np.abs(x)]),
                                      ("expm1", np.expm1, torch.expm1, [x]),
                                      ("pow", np.power, torch.pow, [y, x])]:
            b = GraphBuilder()
            vs = [b.input(a.shape, dtype) for a in args]
            k = ElementwiseKernel.for_graph(b.build([b.emit(op, *vs)]))
            out = [np.empty_like(args[0])]
            k(args, out)
            ts = [torch.from_numpy(a) for a in args]
            lu = median_us(lambda: k(args, out))
            nu = median_us(lambda: np_fn(*args)) if np_fn else float("nan")
            tu = median_us(lambda: t_fn(*ts))
            print(f"{dtype} {op:6s} {lu:8.0f} {nu:8.0f} {tu:8.0f}")


if __name__ == "__main__":
    main()
