"""Causal attention forward + backward (float32): lucid's fused kernels (eager
``F.scaled_dot_product_attention`` and the same step under ``lucid.compile``) against
PyTorch's ``scaled_dot_product_attention`` (its CPU flash-attention kernels).

    python benchmarks/bench_attention.py [--quick] [--lengths 256,1024] [--shape 4,8,64]

One row per (thread count, sequence length, mode): q, k, v of batch 4, 8 heads, head dim
64 (``--shape B,H,D``; the GPT workload's heads are ``--shape 16,4,32 --lengths 64``,
where packing the operands weighs as much as the products); a step is ``loss = sdpa(q, k, v, is_causal=True).sum(); loss.backward()``. Each
thread count runs in its own process, every library set to that count. Times are medians
of interleaved rounds (the order rotating through every permutation); ``ratio`` is the
mode's time over torch's (< 1: lucid faster); ``GFLOP/s`` counts the causal products'
useful FLOPs (forward 2, backward 5 products of half the L×L×D each); ``fwd ms`` is the
forward alone (no autograd recording); ``max err`` the largest difference of q's gradient
from torch's. The load average is printed with the figures: the machine is shared.
"""
from __future__ import annotations

import os

from harness import command_line, interleaved, print_table, run_per_thread_count, setup_path

BATCH, HEADS, HEAD_DIM = 4, 8, 64


def _options(parser):
    parser.add_argument("--lengths", default="256,1024", help="sequence lengths (comma-separated)")
    parser.add_argument("--shape", default=f"{BATCH},{HEADS},{HEAD_DIM}",
                        help="batch, heads and head dim (comma-separated)")


def worker(nthreads: int, quick: bool, lengths, shape=(BATCH, HEADS, HEAD_DIM)) -> dict:
    setup_path()
    import numpy as np
    import torch

    import lucid
    import lucid.nn.functional as F
    from lucid_codegen.runtime import threads

    torch.set_num_threads(nthreads)
    threads.set_num_threads(nthreads)
    batch, heads, head_dim = shape
    rows = []
    for T in lengths:
        rng = np.random.default_rng(0)
        arrays = [rng.standard_normal((batch, heads, T, head_dim)).astype(np.float32) for _ in range(3)]
        lq, lk, lv = (lucid.tensor(a, requires_grad=True) for a in arrays)
        tq, tk, tv = (torch.tensor(a, requires_grad=True) for a in arrays)

        def lucid_step(q, k, v):
            loss = F.scaled_dot_product_attention(q, k, v, is_causal=True).sum()
            loss.backward()
            return loss

        compiled = lucid.compile(lucid_step)

        def eager():
            for t in (lq, lk, lv):
                t.grad = None
            lucid_step(lq, lk, lv)

        def comp():
            for t in (lq, lk, lv):
                t.grad = None
            compiled(lq, lk, lv)

        def torch_step():
            for t in (tq, tk, tv):
                t.grad = None
            torch.nn.functional.scaled_dot_product_attention(tq, tk, tv, is_causal=True).sum().backward()

        def lucid_fwd():
            with lucid.no_grad():
                F.scaled_dot_product_attention(lq, lk, lv, is_causal=True)

        def torch_fwd():
            with torch.no_grad():
                torch.nn.functional.scaled_dot_product_attention(tq, tk, tv, is_causal=True)

        reps = 5 if quick else (9 if T >= 1024 else 21)
        steps = interleaved({"lucid": eager, "lucid.compile": comp, "torch": torch_step}, reps)
        fwd = interleaved({"lucid": lucid_fwd, "torch": torch_fwd}, reps)
        torch_step()
        eager()
        err = float(np.abs(np.asarray(lq.grad.numpy()) - tq.grad.numpy()).max())
        flop = 7 * 2.0 * batch * heads * T * T * head_dim / 2
        for mode, t in steps.items():
            rows.append(dict(T=T, mode=mode, seconds=t, torch=steps["torch"], flop=flop,
                             fwd=fwd.get(mode.split(".")[0]), err=err if mode == "lucid" else None))
    return dict(threads=nthreads, rows=rows, load=os.getloadavg())


def main() -> None:
    args = command_line(__doc__, options=_options)
    lengths = [int(x) for x in args.lengths.split(",")]
    shape = tuple(int(x) for x in args.shape.split(","))
    if len(shape) != 3:
        raise SystemExit(f"--shape takes batch,heads,head_dim; got {args.shape!r}")
    if args.worker:
        import json
        print(json.dumps(worker(args.worker, args.quick, lengths, shape)))
        return
    extra = (["--quick"] if args.quick else []) + ["--lengths", args.lengths, "--shape", args.shape]
    results = run_per_thread_count(os.path.abspath(__file__), (1, 2), extra)
    print(f"causal SDPA forward + backward, float32, batch {shape[0]} x {shape[1]} heads x T x {shape[2]}; "
          f"interleaved medians")
    table = []
    for res in results:
        for r in res["rows"]:
            table.append([res["threads"], r["T"], r["mode"], f"{r['seconds'] * 1e3:.1f}",
                          f"{r['seconds'] / r['torch']:.2f}", f"{r['flop'] / r['seconds'] / 1e9:.1f}",
                          "" if r["fwd"] is None or r["mode"] == "lucid.compile" else f"{r['fwd'] * 1e3:.1f}",
                          "" if r["err"] is None else f"{r['err']:.1e}"])
    print_table(["threads", "T", "mode", "ms", "ratio", "GFLOP/s", "fwd ms", "max err"], table)
    print("load average (1, 5, 15 min) per worker: "
          + "; ".join(f"{res['threads']} thread(s): " + ", ".join(f"{x:.2f}" for x in res["load"])
                      for res in results))


if __name__ == "__main__":
    main()
