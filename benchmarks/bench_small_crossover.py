"""Where the GEMM's small-shape paths stop paying: M = 1 .. 16 rows through a linear layer
784 -> 256 (float32, one thread), each shape timed on the kernel's own choice of path
and on the general path alone (a kernel built with the thresholds at 0), interleaved.

    python benchmarks/bench_small_crossover.py [--quick]

* ``fwd``: (M, 784) · Wᵀ, W (256, 784) row-major: the dot path (gemm_small.SMALL_M);
* ``dX``: (M, 256) · W, B row-major: the row path (gemm_rows.ROWS_M).

Times are interleaved medians of the kernel call alone (``Gemm.__call__`` into a
preallocated output), in microseconds; ``general/small`` > 1: the small path is faster.
The thresholds in gemm_small.py and gemm_rows.py are set from this table.
"""
from __future__ import annotations

from harness import command_line, interleaved, print_table, setup_path

K_IN, N_OUT = 784, 256


def main() -> None:
    args = command_line(__doc__)
    setup_path()
    import numpy as np

    from lucid_codegen.gemm import rows as gemm_rows
    from lucid_codegen.gemm import small as gemm_small
    from lucid_codegen.runtime import threads
    from lucid_codegen.gemm.call import Gemm, GemmSpec

    threads.set_num_threads(1)
    chosen = Gemm(GemmSpec("float32"))
    saved = gemm_small.SMALL_M, gemm_small.SMALL_N, gemm_rows.ROWS_M
    gemm_small.SMALL_M, gemm_small.SMALL_N, gemm_rows.ROWS_M = 0, 0, 0
    try:
        general = Gemm(GemmSpec("float32"))   # its own cache key: see gemm._path_thresholds
    finally:
        gemm_small.SMALL_M, gemm_small.SMALL_N, gemm_rows.ROWS_M = saved
    rng = np.random.default_rng(0)
    w = rng.uniform(-1, 1, (N_OUT, K_IN)).astype(np.float32)
    reps = 7 if args.quick else 21
    table = []
    for M in range(1, 17):
        x = rng.uniform(-1, 1, (M, K_IN)).astype(np.float32)
        dy = rng.uniform(-1, 1, (M, N_OUT)).astype(np.float32)
        out = np.empty((M, N_OUT), np.float32)
        dx = np.empty((M, K_IN), np.float32)
        row = [M]
        for a, b, c in ((x, w.T, out), (dy, w, dx)):
            t = interleaved({"small": lambda: chosen(a, b, c), "general": lambda: general(a, b, c),
                             "numpy": lambda: a @ b}, reps, inner=50)
            row += [f"{t['small'] * 1e6:.1f}", f"{t['general'] * 1e6:.1f}",
                    f"{t['numpy'] * 1e6:.1f}", f"{t['general'] / t['small']:.2f}"]
        table.append(row)
    print(f"float32, one thread, SMALL_M={saved[0]}, ROWS_M={saved[2]}; times in µs "
          "(interleaved medians, kernel call alone)")
    print_table(["M", "fwd small", "fwd general", "fwd numpy", "general/small",
                 "dX small", "dX general", "dX numpy", "general/small"], table)


if __name__ == "__main__":
    main()
