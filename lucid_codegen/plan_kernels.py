"""Compiling a plan's kernels ahead, in parallel, on the compile pool (compile_pool.py):

* ``precompile_plan(fused)``: before a plan builds its steps one by one (each loading its
  kernel), the object files of its GEMM kernels and of their shared cores are compiled at
  the same time; building the steps then only links them;
* ``precompile_loops(plan)``: the loop kernels (elementwise, reduction) are specialised
  on their operands' layouts, so they compile at the plan's first run, one after another.
  Here the layouts of that run are predicted (inputs contiguous, every kernel's outputs
  fresh and contiguous, views applied to empty arrays of those layouts) and each
  kernel is planned for them (``call_block``: plans and compiles, runs nothing) at the
  same time. A wrong prediction costs a kernel compiled for nothing, never a result:
  the run plans for its real arrays as before.

Kernels already loaded or on disk cost nothing here.

>>> from lucid_ir.builder import GraphBuilder
>>> from lucid_ir.passes.fuse import run as fuse
>>> b = GraphBuilder()
>>> x, w = b.input((4, 8)), b.input((3, 8))
>>> graph = fuse(b.build([b.emit("matmul", x, w, trans_b=True)]))
>>> precompile_plan(graph)          # the GEMM's object compiled (or found): no error
"""
from __future__ import annotations

from lucid_ir.graph import Graph

from . import compile_pool
import numpy as np

from .gemm_call import precompile_tasks
from .steps import GemmStep, KernelStep

__all__ = ["precompile_plan", "precompile_loops"]


def precompile_plan(fused: Graph) -> None:
    """The object files of the fused graph's GEMM kernels, compiled in parallel."""
    nodes = [n for n in fused.nodes if n.op == "kernel" and n.kind == "gemm"]
    if not nodes or compile_pool.threads() <= 1:
        return
    compile_pool.run_all(precompile_tasks([GemmStep.spec_of(n) for n in nodes]))


def precompile_loops(plan) -> None:
    """The loop kernels of ``plan``'s first run, compiled in parallel (see above)."""
    kernels = [fn for fn, _, _ in plan.steps if isinstance(fn, KernelStep)]
    if len(kernels) < 2 or compile_pool.threads() <= 1:
        return
    env: list = [None] * plan.n_slots
    for slot, v in zip(plan.input_slots, plan.graph.inputs):
        env[slot] = np.empty(v.shape, v.dtype)   # pages untouched: nothing read or written
    for slot, value in plan.constants:
        env[slot] = value
    tasks = []
    for (fn, ins, outs), kind, node in zip(plan.steps, plan.kinds, plan.step_nodes):
        arrays = [env[i] for i in ins]
        if kind == "view":
            try:
                results = fn(*arrays)
            except Exception:  # noqa: BLE001 - a prediction only; the run reports errors
                return
        else:
            results = [np.empty(v.shape, v.dtype) for v in node.outs]
            if isinstance(fn, KernelStep) and all(a is not None for a in arrays):
                tasks.append(lambda fn=fn, arrays=arrays: _plan_for(fn, arrays))
        for slot, r in zip(outs, results):
            env[slot] = r
    compile_pool.run_all(tasks)


def _plan_for(step: KernelStep, arrays) -> None:
    try:
        step.kernel.call_block(arrays)
    except Exception:  # noqa: BLE001 - a prediction only; the run reports errors
        pass
