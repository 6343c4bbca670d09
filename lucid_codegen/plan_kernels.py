"""Compiling a plan's kernels ahead, all at once, on the compile pool (compile_pool.py).

``precompile_plan(fused)``, before a plan builds its steps one by one (each loading its
kernel), compiles in one parallel batch, longest first:

* the object files of the graph's GEMM kernels and of their shared cores (building the
  GEMM steps then only links them);
* the loop kernels (elementwise, reduction, row kernels) of the plan's first run. They
  are specialised on their operands' layouts, so they would otherwise compile at that
  run, one after another. Here the layouts of that run are predicted (inputs
  contiguous, every kernel's outputs fresh and contiguous, views applied to empty
  arrays of those layouts) and each kernel is planned for them (plans and compiles,
  runs nothing). A wrong prediction costs a kernel compiled for nothing, never a
  result: the run plans for its real arrays as before.

One batch rather than a batch of GEMMs and then one of loop kernels: the pool's threads
stay busy until the last module, instead of idling at the end of the first batch.
``precompile_loops(plan)`` predicts the loop kernels of a plan whose graph did not go
through ``precompile_plan`` (nothing to do otherwise).

Kernels already loaded or on disk cost nothing here.

>>> from lucid_ir.builder import GraphBuilder
>>> from lucid_ir.passes.fuse import run as fuse
>>> b = GraphBuilder()
>>> x, w = b.input((4, 8)), b.input((3, 8))
>>> graph = fuse(b.build([b.emit("matmul", x, w, trans_b=True)]))
>>> precompile_plan(graph)          # the GEMM's object compiled (or found): no error
"""
from __future__ import annotations

import weakref

import numpy as np

from lucid_ir.graph import Graph

from . import compile_pool
from .elementwise import ElementwiseKernel, planned
from .gemm_call import precompile_tasks
from .steps import GemmStep, KernelStep, make_step

__all__ = ["precompile_plan", "precompile_loops"]

#: graphs whose loop kernels ``precompile_plan`` predicted (``precompile_loops`` skips them)
_PREDICTED: weakref.WeakSet = weakref.WeakSet()


def precompile_plan(fused: Graph) -> None:
    """The fused graph's GEMM objects and its first run's loop kernels, compiled in one
    parallel batch (see above)."""
    if compile_pool.threads() <= 1:
        return
    gemms = [n for n in fused.nodes if n.op == "kernel" and n.kind == "gemm"]
    tasks = precompile_tasks([GemmStep.spec_of(n) for n in gemms])
    loops = _loop_tasks(_predicted_steps(fused), fused.inputs)
    if loops is not None:
        tasks += loops
        try:
            _PREDICTED.add(fused)
        except TypeError:  # (not weakly referenceable: precompile_loops predicts again)
            pass
    if len(tasks) > 1:
        compile_pool.run_all(tasks)
    elif tasks:
        tasks[0]()


def precompile_loops(plan) -> None:
    """The loop kernels of ``plan``'s first run, compiled in parallel (see above), unless
    ``precompile_plan`` did it for the plan's graph."""
    if plan.graph in _PREDICTED or compile_pool.threads() <= 1:
        return
    if sum(isinstance(fn, KernelStep) for fn, _, _ in plan.steps) < 2:
        return
    steps = [(fn, ins, outs, kind, node) for (fn, ins, outs), kind, node
             in zip(plan.steps, plan.kinds, plan.step_nodes)]
    env: list = [None] * plan.n_slots
    for slot, value in plan.constants:
        env[slot] = value
    tasks = _loop_tasks(steps, plan.graph.inputs, env, plan.input_slots)
    compile_pool.run_all(tasks or [])


def _predicted_steps(fused: Graph):
    """``(fn, input slots, output slots, kind, node)`` of the fused graph's nodes, slots
    numbered as values appear; ``fn`` is None for the steps the prediction does not run
    (GEMMs: their kernels are what the batch compiles; index, scan, ...: not loop
    kernels), a constant's value for a constant."""
    slot = {v: k for k, v in enumerate(dict.fromkeys(fused.inputs))}
    out = []
    for node in fused.nodes:
        ins = tuple(slot[v] for v in node.inputs)
        for v in node.outs:
            slot[v] = len(slot)
        outs = tuple(slot[v] for v in node.outs)
        if node.op == "kernel":
            fn, kind = (KernelStep(node), node.kind) if node.kind != "gemm" else (None, "gemm")
        elif node.op in ("constant", "iota"):
            fn, kind = make_step(node)
        else:
            try:
                fn, kind = make_step(node)
            except Exception:  # noqa: BLE001 - a prediction only; the plan reports errors
                return []
            if kind != "view":
                fn = None
        out.append((fn, ins, outs, kind, node))
    return out


def _loop_tasks(steps, inputs, env=None, input_slots=None):
    """Tasks planning (and so compiling) each loop kernel for the predicted layouts, or
    None when a view step fails on them (then nothing is predicted)."""
    if env is None:
        env = [None] * (max((max(outs, default=-1) for _, _, outs, _, _ in steps), default=-1) + 1
                        + len(inputs))
    for slot, v in zip(input_slots or range(len(inputs)), inputs):
        env[slot] = np.empty(v.shape, v.dtype)   # pages untouched: nothing read or written
    tasks = []
    for fn, ins, outs, kind, node in steps:
        arrays = [env[i] for i in ins]
        if kind == "constant":
            results = [fn]
        elif kind == "view" and fn is not None:
            try:
                results = fn(*arrays)
            except Exception:  # noqa: BLE001 - a prediction only; the run reports errors
                return None
        else:
            results = [np.empty(v.shape, v.dtype) for v in node.outs]
            if isinstance(fn, KernelStep) and all(a is not None for a in arrays):
                tasks.append(lambda fn=fn, arrays=arrays: _plan_for(fn, arrays))
        for slot, r in zip(outs, results):
            env[slot] = r
    return tasks


def _plan_for(step: KernelStep, arrays) -> None:
    """Plan (and so compile) ``step``'s kernel for ``arrays`` and fresh outputs."""
    kernel = step.kernel
    try:
        if isinstance(kernel, ElementwiseKernel):
            kernel.call_block(arrays)   # (one output: several are planned at the run)
        else:
            planned(kernel, list(arrays))
    except Exception:  # noqa: BLE001 - a prediction only; the run reports errors
        pass
