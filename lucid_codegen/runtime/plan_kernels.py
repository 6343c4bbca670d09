"""Compiling a plan's kernels ahead, all at once, on the compile pool (compile_pool.py).

``precompile_plan(fused)``, before a plan builds its steps one by one (each loading its
kernel), compiles in one parallel batch, longest first:

* the object files of the graph's GEMM kernels and of their shared cores (building the
  GEMM steps then only links them);
* the attention kernels, and the index kernels (their steps load them when built, one
  after another);
* the loop kernels (elementwise, reduction, row and scan kernels) of the plan's first
  run. They are specialised on their operands' layouts, so they would otherwise compile
  at that run, one after another. Here the layouts of that run are predicted (inputs
  contiguous, every kernel's outputs fresh and contiguous, views applied to empty
  arrays of those layouts) and each kernel is planned for them (plans and compiles,
  runs nothing). A wrong prediction costs a kernel compiled for nothing, never a
  result: the run plans for its real arrays as before.

One batch rather than a batch of GEMMs and then one of loop kernels: the pool's threads
stay busy until the last module, instead of idling at the end of the first batch.
``precompile_loops(plan)`` predicts the loop kernels of a plan whose graph did not go
through ``precompile_plan`` (nothing to do otherwise). ``runner_ready()`` says whether
the native plan runner's library can be had without waiting for LLVM, and else starts
compiling it in the background (a plan builds its native program once it is there).

Kernels already loaded or on disk cost nothing here.

>>> from lucid_ir.builder import GraphBuilder
>>> from lucid_ir.passes.fuse import run as fuse
>>> b = GraphBuilder()
>>> x, w = b.input((4, 8)), b.input((3, 8))
>>> graph = fuse(b.build([b.emit("matmul", x, w, trans_b=True)]))
>>> precompile_plan(graph)          # the GEMM's object compiled (or found): no error
"""
from __future__ import annotations

import os
import threading
import weakref

import numpy as np

from lucid_ir.graph import Graph
from lucid_ir.opnames import ATTENTION, INDEXING

from lucid_codegen.jit import compile_pool
from lucid_codegen.kernels.elementwise import ElementwiseKernel, planned
from lucid_codegen.gemm.call import precompile_tasks
from lucid_codegen.runtime import native_runner
from lucid_codegen.runtime.steps import GemmStep, KernelStep, make_step

__all__ = ["precompile_plan", "precompile_loops", "runner_ready"]

#: the steps whose kernels depend on their operands' layouts (planned for predicted ones)
LOOP_KINDS = ("elementwise", "reduction", "rows", "scan")
#: graphs whose loop kernels ``precompile_plan`` predicted (``precompile_loops`` skips them)
_PREDICTED: weakref.WeakSet = weakref.WeakSet()


def precompile_plan(fused: Graph) -> None:
    """The fused graph's GEMM objects and its first run's loop kernels, compiled in one
    parallel batch (see above)."""
    if compile_pool.threads() <= 1:
        return
    gemms = [n for n in fused.nodes if n.op == "kernel" and n.kind == "gemm"]
    read = [GemmStep.read(n) for n in gemms]
    gemm_tasks = precompile_tasks([step.spec for step in read], [step.likely for step in read])
    steps, attention, others = _predicted_steps(fused)
    # (a lone loop kernel in a plan of no other kernel, an eager op's, is left to its run:
    # its inputs may be views the prediction would take for contiguous arrays, a kernel
    # compiled for nothing, and there is nothing to compile it alongside)
    kinds = [] if steps is None else [kind for _, _, _, kind, _ in steps]
    n_loops = sum(kind in LOOP_KINDS for kind in kinds)
    loops = []
    if n_loops >= 2 or (n_loops == 1 and any(kind in ("gemm", "attention", "index") for kind in kinds)):
        loops = _loop_tasks(steps, fused.inputs)
        if loops is not None:
            _PREDICTED.add(fused)
    rows, rest = _rows_first(loops or [])
    # longest first: a GEMM core's micro-kernels, the attention kernels, the row kernels,
    # the GEMM variants, the rest
    compile_pool.run_all(gemm_tasks[:1] + attention + rows + gemm_tasks[1:] + others + rest)


def precompile_loops(plan) -> None:
    """The loop kernels of ``plan``'s first run, compiled in parallel (see above), unless
    ``precompile_plan`` did it for the plan's graph."""
    if plan.graph in _PREDICTED or compile_pool.threads() <= 1:
        return
    if sum(kind in LOOP_KINDS for kind in plan.kinds) < 2:
        return
    steps = [(fn, ins, outs, kind, node) for (fn, ins, outs), kind, node
             in zip(plan.steps, plan.kinds, plan.step_nodes)]
    env: list = [None] * plan.n_slots
    for slot, value in plan.constants:
        env[slot] = value
    rows, rest = _rows_first(_loop_tasks(steps, plan.graph.inputs, env, plan.input_slots) or [])
    compile_pool.run_all(rows + rest)


_RUNNER: list = []   # [the future of the plan runner's compilation in the background]
_RUNNER_LOCK = threading.Lock()


def runner_ready() -> bool:
    """Whether the native plan runner's library (``native_runner``) can be had without
    waiting for LLVM: it is linked, or cached, or its compilation in the background has
    finished. Otherwise that compilation is started (once) on the compile pool and this
    says False: a plan's first call, which would build its native program after running,
    returns without it instead of compiling this module alone, last, on the calling
    thread (about a tenth of a cold MLP step's first call), and a later call builds it.
    True with one compile thread (no background: the caller compiles it)."""
    if native_runner.loaded():
        return True
    if _RUNNER:   # (compiling in the background: no digest and no file check a call)
        return _RUNNER[0].done()
    if native_runner.cached():
        return True
    with _RUNNER_LOCK:
        if not _RUNNER:
            future = compile_pool.submit(native_runner.precompile_library)
            if future is None:
                return True
            _RUNNER.append(future)
        # (done, even with an error: the caller's load compiles again and raises it)
        return _RUNNER[0].done()


def _finish_before_fork() -> None:
    """Let the runner's background compilation end before a fork: a compile thread caught
    holding the kernel cache's or LLVM's locks would leave them locked in the child."""
    if _RUNNER:
        try:
            _RUNNER[0].result()
        except Exception:  # noqa: BLE001 - the caller's load compiles again and raises it
            pass


def _forget_after_fork() -> None:
    """The child has no compile threads: it starts its own compilation when it needs one."""
    _RUNNER.clear()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(before=_finish_before_fork, after_in_child=_forget_after_fork)


def _rows_first(loops) -> tuple:
    """The row kernels' tasks of ``loops`` (``(task, kind)`` pairs) and the others': a row
    kernel (softmax, a loss, a norm and their gradients) is the longest loop module,
    several passes over each row each with a vector body, a tail and its transcendental
    functions (the MLP step's cross-entropy: 137 of its loop kernels' 410 ms at one
    thread), so the pool starts it first."""
    return [t for t, kind in loops if kind == "rows"], [t for t, kind in loops if kind != "rows"]


def _predicted_steps(fused: Graph):
    """``(steps, attention, others)``: ``(fn, input slots, output slots, kind, node)`` of
    the fused graph's nodes (None when a view cannot be made: nothing predicted), slots
    numbered as values appear, ``fn`` None for the steps
    the prediction does not run (GEMM, attention, index, scan: their kernels do not
    depend on the layouts) and a constant's value for a constant; and the tasks compiling
    the attention kernels, and the other kernels of those steps."""
    slot = {v: k for k, v in enumerate(dict.fromkeys(fused.inputs))}
    out, attention, others = [], {}, []
    for node in fused.nodes:
        ins = tuple(slot[v] for v in node.inputs)
        for v in node.outs:
            slot[v] = len(slot)
        outs = tuple(slot[v] for v in node.outs)
        if node.op == "kernel":
            fn, kind = (KernelStep(node), node.kind) if node.kind != "gemm" else (None, "gemm")
        elif node.op in ATTENTION:
            fn, kind = None, "attention"
            key = ("bwd" if node.op == "attention_backward" else "fwd", node.out.dtype)
            attention.setdefault(key, lambda key=key: _ahead(_attention_kernel, *key))
        elif node.op in INDEXING:
            fn, kind = None, "index"
            others.append(lambda node=node: _ahead(make_step, node))   # (its kernels load when built)
        else:
            try:
                fn, kind = make_step(node)   # a view, a constant, a scan: nothing compiled
            except Exception:  # noqa: BLE001 - a prediction only; the plan reports errors
                return None, [attention[k] for k in sorted(attention)], others
            if kind not in ("view", "constant", "scan"):
                fn = None
        out.append((fn, ins, outs, kind, node))
    return out, [attention[k] for k in sorted(attention)], others   # ("bwd", the longest, first)


def _attention_kernel(*key):
    from lucid_codegen.kernels import attention   # (imported by the first plan with attention)
    return attention.kernel(*key)


def _ahead(build, *args) -> None:
    """``build(*args)`` for the kernels it compiles; errors are the plan's to report."""
    try:
        build(*args)
    except Exception:  # noqa: BLE001 - compiled ahead only
        pass


def _loop_tasks(steps, inputs, env=None, input_slots=None):
    """``(task, kind)`` of the tasks planning (and so compiling) each loop kernel for the
    predicted layouts, or None when a view step fails on them (then nothing is
    predicted). A kernel planned again (one structure at several places: the bias
    gradients' column sums, the parameters' updates) is planned last: its module is
    compiled once, and a thread planning it meanwhile would wait for the thread
    compiling it instead of compiling another."""
    if env is None:
        env = [None] * (max((max(outs, default=-1) for _, _, outs, _, _ in steps), default=-1) + 1
                        + len(inputs))
    for slot, v in zip(input_slots or range(len(inputs)), inputs):
        env[slot] = np.empty(v.shape, v.dtype)   # pages untouched: nothing read or written
    tasks, again, kernels = [], [], set()
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
                (again if id(fn.kernel) in kernels else tasks).append(
                    (lambda fn=fn, arrays=arrays: _plan_for(fn, arrays), kind))
                kernels.add(id(fn.kernel))
            elif (kind == "scan" and getattr(fn, "call_block", None) is not None   # (not a reference step)
                  and all(a is not None for a in arrays)):
                tasks.append((lambda fn=fn, arrays=arrays: _ahead(fn.call_block, arrays), kind))  # plans, runs nothing
        for slot, r in zip(outs, results):
            env[slot] = r
    return tasks + again


def _plan_for(step: KernelStep, arrays) -> None:
    """Plan (and so compile) ``step``'s kernel for ``arrays`` and fresh outputs."""
    kernel = step.kernel
    try:
        if isinstance(kernel, ElementwiseKernel):
            # (the planning of the kernel's first call with fresh outputs, run nothing)
            kernel._checked_plan(list(arrays), None, tuple([(a.shape, a.strides, a.dtype) for a in arrays]))
        else:
            planned(kernel, list(arrays))
    except Exception:  # noqa: BLE001 - a prediction only; the run reports errors
        pass
