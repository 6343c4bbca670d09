"""Raw GEMM speed: lucid's generated kernel vs numpy, float32 C = X.W^T + b.

    python benchmarks/bench_gemm_raw.py [--threads 1,2] [--quick]

Each thread count runs in its own subprocess (OPENBLAS_NUM_THREADS and
LUCID_NUM_THREADS set there, unless threadpoolctl is installed). Within a process
lucid and numpy are timed interleaved (A B A B ...), median of the repetitions,
so machine noise hits both alike; the ratio is the number to read.
OPENBLAS_THREAD_TIMEOUT defaults to 4 in the subprocesses (see main()).
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

SHAPES = [(8, 8, 8), (64, 784, 256), (256, 1024, 1024), (1024, 1024, 1024), (4096, 1024, 1024)]


def _worker(nthreads: int, quick: bool) -> dict:
    import numpy as np

    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
    from lucid_codegen.jit import llvm as jit
    from lucid_codegen.runtime import threads
    from lucid_codegen.gemm.kernel import GemmSpec, build_gemm_module
    from lucid_codegen.gemm.epilogue import Epilogue
    from lucid_codegen.gemm.call import Gemm

    try:
        from threadpoolctl import threadpool_limits
        threadpool_limits(nthreads)
    except ImportError:
        pass
    threads.set_num_threads(nthreads)
    spec = GemmSpec("float32", Epilogue.chain("float32", bias=True))
    t0 = time.perf_counter()
    module = build_gemm_module(spec)
    t1 = time.perf_counter()
    jit.compile_to_object(module, 2, False)
    t2 = time.perf_counter()
    g = Gemm(spec)
    rows = []
    rng = np.random.default_rng(0)
    for M, K, N in SHAPES:
        x = rng.uniform(-1, 1, (M, K)).astype(np.float32)
        w = rng.uniform(-1, 1, (N, K)).astype(np.float32)
        b = rng.uniform(-1, 1, N).astype(np.float32)
        out = np.empty((M, N), np.float32)
        flop = 2.0 * M * N * K
        inner = max(1, int(2e6 // max(flop, 1))) if flop < 2e6 else 1
        inner = min(inner, 2000)
        reps = 31 if flop < 2e6 else max(5, min(31, int(3e10 // flop)))
        if quick:
            reps = max(3, reps // 3)

        def lucid():
            for _ in range(inner):
                g(x, w.T, out, bias=b)

        def numpy():
            for _ in range(inner):
                x @ w.T + b
        lucid(), numpy()  # warm up (workspace, worker threads, BLAS buffers)
        tl, tn = [], []
        for _ in range(reps):
            s = time.perf_counter(); lucid(); tl.append((time.perf_counter() - s) / inner)
            s = time.perf_counter(); numpy(); tn.append((time.perf_counter() - s) / inner)
        err = float(np.abs(out - (x.astype(np.float64) @ w.T.astype(np.float64) + b)).max())
        rows.append(dict(shape=(M, K, N), threads=nthreads, lucid=float(np.median(tl)),
                         numpy=float(np.median(tn)), flop=flop, err=err))
    return dict(rows=rows, build=t1 - t0, compile=t2 - t1)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", default="1,2")
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--_worker", type=int, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args._worker is not None:
        print(json.dumps(_worker(args._worker, args.quick)))
        return
    results = []
    for nt in [int(t) for t in args.threads.split(",")]:
        env = dict(os.environ, OPENBLAS_NUM_THREADS=str(nt), OMP_NUM_THREADS=str(nt),
                   MKL_NUM_THREADS=str(nt), LUCID_NUM_THREADS=str(nt))
        # OpenBLAS's idle worker threads busy-wait for seconds after each call; in an
        # interleaved A/B run they steal the second core from lucid (whose workers
        # block). A short timeout makes them sleep instead (numpy then pays a thread
        # wake-up per call, ~30-40 us on this VM). Override by setting it yourself.
        env.setdefault("OPENBLAS_THREAD_TIMEOUT", "4")
        cmd = [sys.executable, os.path.abspath(__file__), "--_worker", str(nt)]
        if args.quick:
            cmd.append("--quick")
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
        if proc.returncode:
            sys.stderr.write(proc.stderr)
            raise SystemExit(f"worker for {nt} threads failed")
        results.append(json.loads(proc.stdout.strip().splitlines()[-1]))
    r0 = results[0]
    print(f"kernel float32 bias: IR build {r0['build'] * 1e3:.1f} ms, "
          f"LLVM optimise+codegen {r0['compile'] * 1e3:.0f} ms")
    print(f"{'(M, K, N)':>20} {'thr':>3} {'lucid':>12} {'numpy':>12} {'ratio':>6}  max|err|")
    for res in results:
        for r in res["rows"]:
            M, K, N = r["shape"]
            if r["flop"] < 1e6:
                lu, nu = f"{r['lucid'] * 1e6:.2f} us", f"{r['numpy'] * 1e6:.2f} us"
            else:
                lu = f"{r['flop'] / r['lucid'] / 1e9:.1f} GF/s"
                nu = f"{r['flop'] / r['numpy'] / 1e9:.1f} GF/s"
            print(f"{str((M, K, N)):>20} {r['threads']:>3} {lu:>12} {nu:>12} "
                  f"{r['numpy'] / r['lucid']:6.2f}  {r['err']:.1e}")


if __name__ == "__main__":
    main()
