"""A convolution alone, forward + backward (float32): lucid eager ``F.conv2d`` and the same
step under ``lucid.compile`` against PyTorch's ``conv2d`` (its CPU kernels).

    python benchmarks/bench_conv.py [--quick] [--sizes 8,32]

One row per (thread count, image size, mode): input (64, 16, s, s), weight (32, 16, 3, 3),
bias, padding 1; a step is ``loss = conv2d(x, w, b).sum(); loss.backward()`` (the
gradients of x, w and b). Each thread count runs in its own process, every library set
to that count. Times are medians of interleaved rounds (the order rotating through every
permutation); ``ratio`` is the mode's time over torch's (< 1: lucid faster); ``GFLOP/s``
counts the three products' FLOPs (forward, dX, dW: 3 x 2·N·s²·32·144); ``fwd ms`` is the
forward alone (no autograd recording); ``cpu ms`` the step's CPU time on the calling thread
(``time.thread_time``, interleaved the same way; at 1 thread all of each library's work
runs there, so this is the figure to trust when the shared machine is loaded);
``max err`` the largest difference of w's gradient from torch's, relative to its largest
value. The load average is printed with the figures.
"""
from __future__ import annotations

import os
import time

from harness import command_line, interleaved, print_table, run_per_thread_count, setup_path

BATCH, C_IN, C_OUT, K = 64, 16, 32, 3


def _options(parser):
    parser.add_argument("--sizes", default="8,32", help="image sizes (comma-separated)")


def _cpu_times(fns: dict, reps: int, inner: int) -> dict:
    """Median CPU seconds of the calling thread per call, the functions taken in turn."""
    times = {name: [] for name in fns}
    for r in range(reps):
        for name in (list(fns) if r % 2 == 0 else list(fns)[::-1]):
            start = time.thread_time()
            for _ in range(inner):
                fns[name]()
            times[name].append((time.thread_time() - start) / inner)
    return {name: sorted(t)[len(t) // 2] for name, t in times.items()}


def worker(nthreads: int, quick: bool, sizes) -> dict:
    setup_path()
    import numpy as np
    import torch

    import lucid
    import lucid.nn.functional as F
    from lucid_codegen.runtime import threads

    torch.set_num_threads(nthreads)
    threads.set_num_threads(nthreads)
    rows = []
    for S in sizes:
        rng = np.random.default_rng(0)
        arrays = [rng.standard_normal(shape).astype(np.float32)
                  for shape in ((BATCH, C_IN, S, S), (C_OUT, C_IN, K, K), (C_OUT,))]
        lx, lw, lb = (lucid.tensor(a, requires_grad=True) for a in arrays)
        tx, tw, tb = (torch.tensor(a, requires_grad=True) for a in arrays)

        def lucid_step(x, w, b):
            loss = F.conv2d(x, w, b, padding=1).sum()
            loss.backward()
            return loss

        compiled = lucid.compile(lucid_step)

        def eager():
            for t in (lx, lw, lb):
                t.grad = None
            lucid_step(lx, lw, lb)

        def comp():
            for t in (lx, lw, lb):
                t.grad = None
            compiled(lx, lw, lb)

        def torch_step():
            for t in (tx, tw, tb):
                t.grad = None
            torch.nn.functional.conv2d(tx, tw, tb, padding=1).sum().backward()

        def lucid_fwd():
            with lucid.no_grad():
                F.conv2d(lx, lw, lb, padding=1)

        def torch_fwd():
            with torch.no_grad():
                torch.nn.functional.conv2d(tx, tw, tb, padding=1)

        reps = 7 if quick else 21
        inner = max(1, 256 // (S * S // 16))
        steps = interleaved({"lucid": eager, "lucid.compile": comp, "torch": torch_step}, reps, inner)
        fwd = interleaved({"lucid": lucid_fwd, "torch": torch_fwd}, reps, inner)
        cpu = _cpu_times({"lucid": eager, "lucid.compile": comp, "torch": torch_step}, reps, inner)
        torch_step()
        eager()
        ref = tw.grad.numpy()
        err = float(np.abs(np.asarray(lw.grad.numpy()) - ref).max() / np.abs(ref).max())
        flop = 3 * 2.0 * BATCH * S * S * C_OUT * C_IN * K * K
        for mode, t in steps.items():
            rows.append(dict(S=S, mode=mode, seconds=t, torch=steps["torch"], flop=flop, cpu=cpu[mode],
                             fwd=fwd.get(mode.split(".")[0]), err=err if mode == "lucid" else None))
    return dict(threads=nthreads, rows=rows, load=os.getloadavg())


def main() -> None:
    args = command_line(__doc__, options=_options)
    sizes = [int(x) for x in args.sizes.split(",")]
    if args.worker:
        import json
        print(json.dumps(worker(args.worker, args.quick, sizes)))
        return
    extra = (["--quick"] if args.quick else []) + ["--sizes", args.sizes]
    results = run_per_thread_count(os.path.abspath(__file__), (1, 2), extra)
    print(f"conv2d forward + backward, float32, x ({BATCH}, {C_IN}, s, s), w ({C_OUT}, {C_IN}, {K}, {K}), "
          f"padding 1; interleaved medians")
    table = []
    for res in results:
        for r in res["rows"]:
            table.append([res["threads"], r["S"], r["mode"], f"{r['seconds'] * 1e3:.2f}",
                          f"{r['seconds'] / r['torch']:.2f}", f"{r['flop'] / r['seconds'] / 1e9:.1f}",
                          "" if r["fwd"] is None or r["mode"] == "lucid.compile" else f"{r['fwd'] * 1e3:.2f}",
                          f"{r['cpu'] * 1e3:.2f}", "" if r["err"] is None else f"{r['err']:.1e}"])
    print_table(["threads", "s", "mode", "ms", "ratio", "GFLOP/s", "fwd ms", "cpu ms", "max err"], table)
    print("load average (1, 5, 15 min) per worker: "
          + "; ".join(f"{res['threads']} thread(s): " + ", ".join(f"{x:.2f}" for x in res["load"])
                      for res in results))


if __name__ == "__main__":
    main()
