"""The per-call cost of compiled plans (issues 13 and 17): what a call costs in Python
around its kernels.

    python benchmarks/bench_call_overhead.py [--quick] [--tree PATH]

Rows (microseconds per call, interleaved medians, one process, 1 thread):

* ``compile relu(linear) 8x8``: ``lucid.compile(lambda x, w, b: F.relu(F.linear(x, w, b)))``
  called on 8x8 tensors; ``its plan``: the compiled plan called on the arrays
  (``Plan.__call__``); ``its native program alone``: the plan's native program's builtin
  call with the arrays and output buffers (the native layout check and the kernels);
* ``softmax 64x64 plan``: a 3-kernel plan (max, exp-sum, divide), the same two rows;
* ``compile SGD step``: a compiled training step (forward, ``backward()``,
  ``opt.step()`` with momentum) of an 8-8-4 MLP on 8 rows: a plan with donated inputs
  and run-time scalars;
* ``eager softmax`` / ``eager cross_entropy``: ``F.softmax`` of 64x64 and
  ``F.cross_entropy`` of 64x10 called eagerly (several kernels: a plan per call);
* each with PyTorch's eager time where there is one (``torch``), for scale.

Issue 17's target: the compiled tiny function at most 3 µs. ``--tree PATH`` imports
lucid from another checkout (the figures before a change); rows its code cannot show
print ``-``.
"""
from __future__ import annotations

import os
import sys

from harness import interleaved, print_table, setup_path

TARGET_US = 3.0


def main() -> None:
    import argparse
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer repetitions")
    parser.add_argument("--tree", help="import lucid from this checkout instead")
    args = parser.parse_args()
    os.environ.setdefault("LUCID_NUM_THREADS", "1")
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
    if args.tree:
        sys.path.insert(0, os.path.abspath(args.tree))
    else:
        setup_path()
    rows = measure(args.quick)
    import lucid
    print(f"lucid from {os.path.dirname(os.path.dirname(os.path.abspath(lucid.__file__)))}, 1 thread, "
          f"medians of interleaved runs (us per call)")
    print_table(["call", "lucid", "torch"], [(name, _fmt(t), _fmt(torch_t)) for name, t, torch_t in rows])
    tiny = rows[0][1]
    print(f"\ncompiled relu(linear) 8x8: {tiny:.2f} us, target <= {TARGET_US} us: "
          f"{'PASS' if tiny <= TARGET_US else 'MISS'}")


def _fmt(t):
    return "-" if t is None else f"{t:.2f}"


def _kernels_alone(plan, arrays):
    """The plan's native program called on its own (None for code without one)."""
    program = getattr(getattr(plan, "_local", None), "last", None)
    if program is None or not hasattr(program, "call"):
        return None
    bufs = program.buffers
    return lambda: program.call(*arrays, *bufs)


def measure(quick: bool) -> list:
    import numpy as np

    import lucid
    import lucid.nn as nn
    import lucid.nn.functional as F
    from lucid.compiler import compile_graph
    from lucid_ir.builder import GraphBuilder
    try:
        import torch
        import torch.nn.functional as TF
        torch.set_num_threads(1)
    except ImportError:
        torch = None
    reps, inner = (9, 300) if quick else (31, 1000)
    rng = np.random.default_rng(0)

    def arr(*shape):
        return rng.standard_normal(shape).astype(np.float32)

    fns, rows = {}, []

    # a compiled tiny function, its plan, its native program
    x, w, b = (lucid.Tensor(arr(8, 8)), lucid.Tensor(arr(8, 8)), lucid.Tensor(arr(8)))
    tiny = lucid.compile(lambda x, w, b: F.relu(F.linear(x, w, b)))
    for _ in range(3):
        tiny(x, w, b)
    plan = next(iter(tiny._programs.values())).run_forward
    arrays = [x.numpy(), w.numpy(), b.numpy()]
    fns["compile relu(linear) 8x8"] = lambda: tiny(x, w, b)
    fns["  its plan (Plan.__call__)"] = lambda: plan(arrays)
    fns["  its native program alone"] = _kernels_alone(plan, arrays)
    if torch is not None:
        tx, tw, tb = (torch.from_numpy(a) for a in arrays)
        fns["torch relu(linear)"] = lambda: TF.relu(TF.linear(tx, tw, tb))

    # a three-kernel plan
    g = GraphBuilder()
    xi = g.input((64, 64))
    m = g.emit("max", xi, axes=(1,), keepdims=True)
    e = g.emit("exp", g.emit("sub", xi, m))
    softmax_plan = compile_graph(g.build([g.emit("div", e, g.emit("sum", e, axes=(1,), keepdims=True))])).executable
    a64 = [arr(64, 64)]
    for _ in range(3):
        softmax_plan(a64)
    fns["softmax 64x64 plan (Plan.__call__)"] = lambda: softmax_plan(a64)
    fns["  softmax plan's native program alone"] = _kernels_alone(softmax_plan, a64)

    # a compiled training step: donated parameters, run-time scalars
    lucid.random.seed(0)
    model = nn.Sequential(nn.Linear(8, 8), nn.ReLU(), nn.Linear(8, 4))
    opt = lucid.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)

    @lucid.compile
    def step(xb, yb):
        opt.zero_grad()
        loss = F.cross_entropy(model(xb), yb)
        loss.backward()
        opt.step()
        return loss
    xb, yb = lucid.Tensor(arr(8, 8)), rng.integers(0, 4, 8)
    for _ in range(3):
        step(xb, yb)
    fns["compile SGD step 8-8-4"] = lambda: step(xb, yb)

    # eager calls whose chains are plans of several kernels
    t64, logits, target = lucid.Tensor(arr(64, 64)), lucid.Tensor(arr(64, 10)), rng.integers(0, 10, 64)
    target_t = lucid.Tensor(target)
    fns["eager softmax 64x64"] = lambda: F.softmax(t64, 1)
    fns["eager cross_entropy 64x10"] = lambda: F.cross_entropy(logits, target_t)
    torch_of = {}
    if torch is not None:
        tt64, tlog, ttar = torch.from_numpy(t64.numpy()), torch.from_numpy(logits.numpy()), torch.from_numpy(target)
        torch_of = {"compile relu(linear) 8x8": "torch relu(linear)",
                    "eager softmax 64x64": "torch softmax", "eager cross_entropy 64x10": "torch cross_entropy"}
        fns["torch softmax"] = lambda: TF.softmax(tt64, 1)
        fns["torch cross_entropy"] = lambda: TF.cross_entropy(tlog, ttar)
    fns = {k: f for k, f in fns.items() if f is not None}
    times = interleaved(fns, reps, inner)
    names = ("compile relu(linear) 8x8", "  its plan (Plan.__call__)", "  its native program alone",
             "softmax 64x64 plan (Plan.__call__)", "  softmax plan's native program alone",
             "compile SGD step 8-8-4", "eager softmax 64x64", "eager cross_entropy 64x10")
    for name in names:
        t = times.get(name)
        other = times.get(torch_of.get(name))
        rows.append((name, None if t is None else t * 1e6, None if other is None else other * 1e6))
    return rows


if __name__ == "__main__":
    main()
