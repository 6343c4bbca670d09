"""Small-batch GEMMs (float32): a linear layer 784 -> 256 at batch M = 1, 2, 4, 8, and its
backward GEMMs, lucid against numpy and torch.

    python benchmarks/bench_small_gemm.py [--quick]

Rows, for each M and for 1 and 2 threads (each thread count in its own process, every
library set to that count; numpy/OpenBLAS with OPENBLAS_THREAD_TIMEOUT=4 so its idle
threads sleep between calls):

* ``fwd``: ``F.linear(x, w, b)`` eagerly (lucid), ``x @ w.T + b`` (numpy),
  ``torch.nn.functional.linear`` (torch); ``fwd kernel``: lucid's GEMM kernel alone,
  ``Gemm.__call__(x, w.T, out, bias=b)`` into a preallocated output;
* ``dX``: (M, 256) · (256, 784), B row-major: ``dy @ w``;
* ``dW``: (256, M) · (M, 784), K = M: ``dy.T @ x`` (a rank-M update).

Times are interleaved medians (microseconds); ratios are numpy / lucid and
torch / lucid (> 1: lucid faster).
"""
from __future__ import annotations

from harness import interleaved, print_table, results_per_thread_count, setup_path

K_IN, N_OUT = 784, 256
BATCHES = (1, 2, 4, 8)


def worker(nthreads: int, quick: bool) -> dict:
    setup_path()
    import numpy as np

    import lucid
    import lucid.nn.functional as F
    from lucid_codegen.runtime import threads
    from lucid_codegen.gemm.call import GemmSpec, get_gemm
    from lucid_codegen.gemm.epilogue import Epilogue

    try:
        import torch
        torch.set_num_threads(nthreads)
    except ImportError:
        torch = None
    threads.set_num_threads(nthreads)
    rng = np.random.default_rng(0)
    wn = rng.uniform(-1, 1, (N_OUT, K_IN)).astype(np.float32)
    bn = rng.uniform(-1, 1, N_OUT).astype(np.float32)
    w, b = lucid.Tensor(wn), lucid.Tensor(bn)
    plain, with_bias = get_gemm(GemmSpec("float32")), get_gemm(GemmSpec("float32", Epilogue.chain("float32", bias=True)))
    reps = 7 if quick else 25
    rows = []
    for M in BATCHES:
        xn = rng.uniform(-1, 1, (M, K_IN)).astype(np.float32)
        dyn = rng.uniform(-1, 1, (M, N_OUT)).astype(np.float32)
        x = lucid.Tensor(xn)
        out = np.empty((M, N_OUT), np.float32)
        dx = np.empty((M, K_IN), np.float32)
        dw = np.empty((N_OUT, K_IN), np.float32)
        cases = {
            "fwd": {"lucid": lambda: F.linear(x, w, b), "numpy": lambda: xn @ wn.T + bn},
            "fwd kernel": {"lucid": lambda: with_bias(xn, wn.T, out, bias=bn),
                           "numpy": lambda: xn @ wn.T + bn},
            "dX": {"lucid": lambda: plain(dyn, wn, dx), "numpy": lambda: dyn @ wn},
            "dW": {"lucid": lambda: plain(dyn.T, xn, dw), "numpy": lambda: dyn.T @ xn},
        }
        if torch is not None:
            xt, wt, bt, dyt = (torch.from_numpy(v) for v in (xn, wn, bn, dyn))
            for name, fn in (("fwd", lambda: torch.nn.functional.linear(xt, wt, bt)),
                             ("fwd kernel", lambda: torch.nn.functional.linear(xt, wt, bt)),
                             ("dX", lambda: dyt @ wt), ("dW", lambda: dyt.T @ xt)):
                cases[name]["torch"] = fn
        for name, fns in cases.items():
            t = interleaved(fns, reps, inner=200)
            rows.append(dict(M=M, case=name, **t))
        # the results themselves, against float64
        ref = xn.astype(np.float64) @ wn.T + bn
        err = float(np.abs(F.linear(x, w, b).numpy() - ref).max())
        rows[-4]["err"] = err
    return dict(threads=nthreads, rows=rows)


def main() -> None:
    results = results_per_thread_count(__doc__, __file__, worker)
    if results is None:
        return
    print(f"float32, K={K_IN}, N={N_OUT}; times in µs (interleaved medians); "
          "numpy with OPENBLAS_THREAD_TIMEOUT=4")
    table = []
    for res in results:
        for r in res["rows"]:
            shape = {"fwd": f"{r['M']}x{K_IN}->{N_OUT}", "fwd kernel": f"{r['M']}x{K_IN}->{N_OUT}",
                     "dX": f"{r['M']}x{N_OUT}·{N_OUT}x{K_IN}", "dW": f"{N_OUT}x{r['M']}·{r['M']}x{K_IN}"}[r["case"]]
            torch_t = r.get("torch")
            table.append([r["case"], shape, res["threads"], f"{r['lucid'] * 1e6:.1f}",
                          f"{r['numpy'] * 1e6:.1f}", "-" if torch_t is None else f"{torch_t * 1e6:.1f}",
                          f"{r['numpy'] / r['lucid']:.2f}",
                          "-" if torch_t is None else f"{torch_t / r['lucid']:.2f}",
                          f"{r['err']:.1e}" if "err" in r else ""])
    print_table(["case", "shape", "threads", "lucid us", "numpy us", "torch us", "numpy/lucid",
                 "torch/lucid", "max err"], table)


if __name__ == "__main__":
    main()
