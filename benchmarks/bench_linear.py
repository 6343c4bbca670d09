"""F.linear forward with bias (float32) against numpy's ``x @ w.T + b``.

    python benchmarks/bench_linear.py [--quick]

For each shape (M, K, N) and for 1 and 2 threads (each thread count in its own
process), lucid and numpy are timed interleaved in the same process; the table gives
GFLOP/s, % of the per-core peak (measured: ``harness.peak_gflops_per_core``), and the
ratio lucid/numpy (> 1: lucid faster).
Then: cold compile time of the linear kernels (empty kernel cache) and warm load time
(a fresh process whose disk cache holds them).
"""
from __future__ import annotations

import os
import subprocess
import sys
import tempfile

from harness import interleaved, peak_gflops_per_core, print_table, results_per_thread_count, setup_path

SHAPES = [(8, 8, 8), (64, 784, 256), (256, 1024, 1024), (1024, 1024, 1024), (4096, 1024, 1024)]


def worker(threads: int, quick: bool) -> dict:
    setup_path()
    import numpy as np

    import lucid
    import lucid.nn.functional as F

    rng = np.random.default_rng(0)
    rows = []
    for M, K, N in SHAPES:
        xn = rng.uniform(-1, 1, (M, K)).astype(np.float32)
        wn = rng.uniform(-1, 1, (N, K)).astype(np.float32)
        bn = rng.uniform(-1, 1, N).astype(np.float32)
        x, w, b = lucid.Tensor(xn), lucid.Tensor(wn), lucid.Tensor(bn)
        flop = 2.0 * M * N * K
        # blocks of >= ~100 MFLOP: one 250 µs call alone is mostly thread wake-up jitter here
        inner = int(min(2000, max(1, 1e8 // flop)))
        reps = 21 if flop < 2e6 else max(5, min(21, int(2e10 // flop)))
        if quick:
            reps = max(3, reps // 3)
        t = interleaved({"lucid": lambda: F.linear(x, w, b), "numpy": lambda: xn @ wn.T + bn},
                        reps, inner)
        err = float(np.abs(F.linear(x, w, b).numpy() - (xn.astype(np.float64) @ wn.T + bn)).max())
        rows.append(dict(shape=[M, K, N], lucid=t["lucid"], numpy=t["numpy"], flop=flop, err=err))
    return dict(threads=threads, rows=rows)


def first_call_seconds(cache_dir: str) -> tuple[float, float]:
    """In a fresh process using ``cache_dir``: the time of the first F.linear call, and
    the part of it spent getting its kernel (compile, or load from the disk cache)."""
    code = (
        "import time, numpy as np, lucid, lucid.nn.functional as F\n"
        "import lucid_codegen.runtime.plan, lucid_codegen.jit.cache as cache\n"
        "spent = [0.0]\n"
        "real = cache.load_or_compile\n"
        "def timed(*a, **k):\n"
        "    t = time.perf_counter(); r = real(*a, **k); spent[0] += time.perf_counter() - t; return r\n"
        "cache.load_or_compile = timed\n"
        "x=lucid.Tensor(np.ones((64,784),np.float32)); w=lucid.Tensor(np.ones((256,784),np.float32))\n"
        "b=lucid.Tensor(np.ones(256,np.float32))\n"
        "from lucid_codegen.jit.target import host_target; host_target()\n"  # imports are not loading
        "t=time.perf_counter(); F.linear(x,w,b); print(time.perf_counter()-t, spent[0])\n")
    env = dict(os.environ, LUCID_CACHE_DIR=cache_dir, PYTHONPATH=os.path.join(os.path.dirname(__file__), ".."))
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    total, kernel = out.stdout.strip().splitlines()[-1].split()
    return float(total), float(kernel)


def main() -> None:
    results = results_per_thread_count(__doc__, __file__, worker)
    if results is None:
        return
    table = []
    for res in results:
        n = res["threads"]
        for r in res["rows"]:
            gl, gn = r["flop"] / r["lucid"] / 1e9, r["flop"] / r["numpy"] / 1e9
            table.append(["x".join(map(str, r["shape"])), n, f"{gl:.1f}", f"{gn:.1f}",
                          f"{100 * gl / (peak_gflops_per_core() * n):.0f}%",
                          f"{r['lucid'] * 1e6:.1f}", f"{r['numpy'] * 1e6:.1f}",
                          f"{r['numpy'] / r['lucid']:.2f}", f"{r['err']:.1e}"])
    print("F.linear(x, w, b) vs numpy x @ w.T + b, float32 (ratio = numpy time / lucid time)")
    print_table(["M x K x N", "threads", "lucid GF/s", "numpy GF/s", "lucid %peak",
                 "lucid us", "numpy us", "ratio", "max err"], table)
    with tempfile.TemporaryDirectory() as cache:
        cold, cold_kernel = first_call_seconds(cache)
        warm, warm_kernel = first_call_seconds(cache)
    print(f"\nlinear forward kernel, empty cache:     compile {cold_kernel * 1e3:.0f} ms "
          f"(first call {cold * 1e3:.0f} ms)")
    print(f"linear forward kernel, warm disk cache: load {warm_kernel * 1e3:.1f} ms "
          f"(first call in a fresh process {warm * 1e3:.1f} ms)")


if __name__ == "__main__":
    main()
