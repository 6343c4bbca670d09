"""Raw GEMM speed: lucid's generated kernel vs numpy (and PyTorch's ``F.linear``, MKL,
when torch is installed), float32 C = X.W^T + b.

    python benchmarks/bench_gemm_raw.py [--threads 1,2] [--quick] [--shapes MxKxN,...]

``--shapes 1024x128x384,1024x512x128`` times those (M, K, N) instead of the default
list (those two: a GPT block's products). Each thread count runs in its own subprocess
(OPENBLAS_NUM_THREADS, MKL/OMP and LUCID_NUM_THREADS set there, unless threadpoolctl is
installed). Within a process lucid, numpy and torch are timed interleaved (A B C A B
C ...), median of the repetitions, so machine noise hits them alike; the ratios are the
numbers to read (> 1: lucid faster). ``%peak`` is lucid's share of the host's fp32 peak
for its threads (``harness.peak_gflops_per_core``, measured in the worker).
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


def _worker(nthreads: int, quick: bool, shapes) -> dict:
    import numpy as np
    from harness import peak_gflops_per_core, quiesce
    try:
        import torch
        torch.set_num_threads(nthreads)
        linear = torch.nn.functional.linear
    except ImportError:
        torch = None

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
    for M, K, N in shapes:
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
        fns = {"lucid": lucid, "numpy": numpy}
        if torch is not None:
            tx, tw, tb = (torch.from_numpy(a) for a in (x, w, b))

            def torch_linear():
                for _ in range(inner):
                    linear(tx, tw, tb)
            fns["torch"] = torch_linear
        for fn in fns.values():
            fn()  # warm up (workspace, worker threads, BLAS buffers)
        times = {name: [] for name in fns}
        for _ in range(reps):
            for name, fn in fns.items():
                s = time.perf_counter(); fn(); times[name].append((time.perf_counter() - s) / inner)
                quiesce()  # (lucid's polling workers asleep before a peer is timed)
        err = float(np.abs(out - (x.astype(np.float64) @ w.T.astype(np.float64) + b)).max())
        rows.append(dict(shape=(M, K, N), threads=nthreads, flop=flop, err=err,
                         **{name: float(np.median(t)) for name, t in times.items()}))
    return dict(rows=rows, build=t1 - t0, compile=t2 - t1, peak=peak_gflops_per_core() * nthreads)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", default="1,2")
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--shapes", default=None, help="MxKxN,... (default: %s)"
                    % ",".join("x".join(map(str, sh)) for sh in SHAPES))
    ap.add_argument("--_worker", type=int, help=argparse.SUPPRESS)
    args = ap.parse_args()
    shapes = SHAPES if args.shapes is None else [tuple(int(d) for d in sh.split("x"))
                                                 for sh in args.shapes.split(",")]
    if any(len(sh) != 3 for sh in shapes):
        raise SystemExit("bench_gemm_raw: --shapes takes MxKxN,MxKxN,...")
    if args._worker is not None:
        print(json.dumps(_worker(args._worker, args.quick, shapes)))
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
        env.setdefault("GOMP_SPINCOUNT", "20000")   # PyTorch's OpenMP threads: the same
        cmd = [sys.executable, os.path.abspath(__file__), "--_worker", str(nt)]
        if args.shapes:
            cmd += ["--shapes", args.shapes]
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
    peers = [p for p in ("numpy", "torch") if p in r0["rows"][0]]
    print(f"{'(M, K, N)':>20} {'thr':>3} {'lucid':>12} {'%peak':>6} "
          + " ".join(f"{p:>12} {p + '/lucid':>11}" for p in peers) + "  max|err|")
    for res in results:
        for r in res["rows"]:
            M, K, N = r["shape"]

            def cell(t):
                return f"{t * 1e6:.2f} us" if r["flop"] < 1e6 else f"{r['flop'] / t / 1e9:.1f} GF/s"
            share = f"{100 * r['flop'] / r['lucid'] / 1e9 / res['peak']:.0f}%"
            print(f"{str((M, K, N)):>20} {r['threads']:>3} {cell(r['lucid']):>12} {share:>6} "
                  + " ".join(f"{cell(r[p]):>12} {r[p] / r['lucid']:11.2f}" for p in peers)
                  + f"  {r['err']:.1e}")
    print(f"peak: {r0['peak']:.0f} GFLOP/s a core (harness.peak_gflops_per_core); ratios: the peer's "
          "time / lucid's (> 1: lucid faster)")


if __name__ == "__main__":
    main()
