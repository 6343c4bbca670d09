"""Batched matrix products (float32): ``a @ b`` on stacks of matrices, lucid against torch
and numpy.

    python benchmarks/bench_bmm.py [--quick]

Rows, for 1 and 2 threads (each thread count in its own process, every library set to
that count; numpy/OpenBLAS with OPENBLAS_THREAD_TIMEOUT=4 so its idle threads sleep
between calls):

* ``(16,64,64)@(16,64,64)``: many small products (attention heads of a small model);
* ``(32,256,64)@(32,64,256)``: attention scores ``q @ k^T`` of 4 sequences x 8 heads,
  sequence 256, head size 64 (B given as the transposed view of a (32,256,64) tensor,
  read in place);
* ``... kernel``: lucid's batched GEMM entry alone (``run_batched`` into a preallocated
  output), without the eager dispatch.

Times are interleaved medians (microseconds); ratios are torch / lucid and numpy / lucid
(> 1: lucid faster); GFLOP/s are lucid's.
"""
from __future__ import annotations

from harness import interleaved, print_table, results_per_thread_count, setup_path

CASES = [("(16,64,64)@(16,64,64)", (16, 64, 64), (16, 64, 64), False),
         ("(32,256,64)@(32,64,256)", (32, 256, 64), (32, 256, 64), True)]


def worker(nthreads: int, quick: bool) -> dict:
    setup_path()
    import numpy as np

    import lucid
    from lucid_codegen.runtime import threads
    from lucid_codegen.gemm.batched_call import run_batched
    from lucid_codegen.gemm.call import GemmSpec, get_gemm

    try:
        import torch
        torch.set_num_threads(nthreads)
    except ImportError:
        torch = None
    threads.set_num_threads(nthreads)
    rng = np.random.default_rng(0)
    gemm = get_gemm(GemmSpec("float32"))
    reps = 7 if quick else 25
    rows = []
    for name, sa, sb, b_transposed in CASES:
        an = rng.uniform(-1, 1, sa).astype(np.float32)
        bn = rng.uniform(-1, 1, sb).astype(np.float32)
        if b_transposed:  # (.., K, N) as a view of a (.., N, K) array
            bn = np.swapaxes(bn, -1, -2)
        a, b = lucid.tensor(an), lucid.tensor(bn)
        out = np.empty(an.shape[:-1] + bn.shape[-1:], np.float32)
        flop = 2.0 * out.size * an.shape[-1]
        fns = {"lucid": lambda: a @ b, "numpy": lambda: an @ bn,
               "kernel": lambda: run_batched(gemm, an, bn, out)}
        if torch is not None:
            at, bt = torch.from_numpy(an), torch.from_numpy(bn)   # (the same strided views)
            fns["torch"] = lambda: at @ bt
        inner = max(1, int(2e7 // flop))
        t = interleaved(fns, reps, inner=inner)
        err = float(np.abs((a @ b).numpy() - an.astype(np.float64) @ bn).max())
        rows.append(dict(case=name, flop=flop, err=err, **t))
    return dict(threads=nthreads, rows=rows)


def main() -> None:
    results = results_per_thread_count(__doc__, __file__, worker)
    if results is None:
        return
    print("float32; times in µs (interleaved medians); numpy with OPENBLAS_THREAD_TIMEOUT=4")
    table = []
    for res in results:
        for r in res["rows"]:
            torch_t = r.get("torch")
            for label, key in ((r["case"], "lucid"), (r["case"] + " kernel", "kernel")):
                lt = r[key]
                table.append([label, res["threads"], f"{lt * 1e6:.1f}",
                              "-" if torch_t is None else f"{torch_t * 1e6:.1f}", f"{r['numpy'] * 1e6:.1f}",
                              "-" if torch_t is None else f"{torch_t / lt:.2f}", f"{r['numpy'] / lt:.2f}",
                              f"{r['flop'] / lt / 1e9:.1f}", f"{r['err']:.1e}" if key == "lucid" else ""])
    print_table(["case", "threads", "lucid us", "torch us", "numpy us", "torch/lucid", "numpy/lucid",
                 "lucid GFLOP/s", "max err"], table)


if __name__ == "__main__":
    main()
