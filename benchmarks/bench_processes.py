"""Processes sharing the machine: ``F.linear`` 64x784x256 (float32, with bias) in one
process alone, then in two processes at once, each with as many threads as there are
cores (the default). lucid and numpy (OpenBLAS) in turn, three rounds, medians.

    python benchmarks/bench_processes.py [--quick]

Spinning threads are the danger here: a thread that polls for work, or for another
thread to finish, takes a core that the other process's threads need, and the thread
it waits for may not be running at all. lucid's spin-waits yield the core every few
polls (``lucid_codegen.runtime.spin.YIELD_EVERY``).
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

from harness import OPENBLAS_SPIN, STEADY_MALLOC, print_table, setup_path

M, K, N = 64, 784, 256


def worker(lib: str, seconds: float) -> None:
    setup_path()
    import numpy as np
    rng = np.random.default_rng(0)
    x = rng.standard_normal((M, K)).astype(np.float32)
    w = rng.standard_normal((N, K)).astype(np.float32)
    b = rng.standard_normal(N).astype(np.float32)
    if lib == "lucid":
        import lucid
        import lucid.nn.functional as F
        xt, wt, bt = lucid.Tensor(x), lucid.Tensor(w), lucid.Tensor(b)
        call = lambda: F.linear(xt, wt, bt)
    else:
        call = lambda: x @ w.T + b
    for _ in range(50):
        call()
    times = []
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        t0 = time.perf_counter()
        for _ in range(10):
            call()
        times.append((time.perf_counter() - t0) / 10)
    times.sort()
    print(json.dumps(times[len(times) // 2]))


def run(lib: str, copies: int, seconds: float) -> float:
    """Median µs per call of the slowest of ``copies`` processes started together."""
    env = dict(os.environ, OPENBLAS_THREAD_TIMEOUT=OPENBLAS_SPIN, **STEADY_MALLOC)
    procs = [subprocess.Popen([sys.executable, __file__, "--worker", lib, str(seconds)], env=env,
                              stdout=subprocess.PIPE, text=True) for _ in range(copies)]
    medians = []
    for p in procs:
        out, _ = p.communicate()
        if p.returncode != 0:
            raise SystemExit(f"benchmark worker ({lib}) failed")
        medians.append(json.loads(out.strip().splitlines()[-1]))
    return max(medians) * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--worker", nargs=2, help=argparse.SUPPRESS)
    parser.add_argument("--quick", action="store_true", help="shorter runs")
    args = parser.parse_args()
    if args.worker:
        worker(args.worker[0], float(args.worker[1]))
        return
    seconds = 0.5 if args.quick else 1.5
    results = {}
    for _ in range(3):
        for copies in (1, 2):
            for lib in ("lucid", "numpy"):
                results.setdefault((copies, lib), []).append(run(lib, copies, seconds))
    rows = []
    for copies in (1, 2):
        lu, nu = (sorted(results[(copies, lib)])[1] for lib in ("lucid", "numpy"))
        rows.append([copies, f"{lu:.0f}", f"{nu:.0f}", f"{nu / lu:.2f}"])
    print(f"F.linear {M}x{K}x{N} float32, {os.cpu_count()} cores, every process with its default "
          f"threads (median µs per call; of two processes, the slower)")
    print_table(["processes", "lucid us", "numpy us", "numpy/lucid"], rows)


if __name__ == "__main__":
    main()
