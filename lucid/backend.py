"""Where graphs run. ``LUCID_BACKEND=interpret`` runs them with the numpy reference
interpreter; the default, ``compiled``, runs them as native kernels (see
``lucid_codegen``). Eager ops, backward graphs and compiled functions all come through
``executable``, so every path agrees on how a graph is executed.
"""
from __future__ import annotations

import os
import warnings

import numpy as np

from lucid_ir.graph import Graph, Node
from lucid_ir.interpreter import interpret
from lucid_ir import pipeline
from lucid_ir.compile_times import phase
from lucid_ir.executable import Executable

BACKENDS = ("interpret", "compiled")


# os.environ.get encodes the key and decodes the value on every call (~0.5 µs, paid by
# every eager op); the raw bytes mapping behind it answers in ~0.05 µs.
_RAW_ENV = getattr(os.environ, "_data", None)
_RAW_KEY = os.environ.encodekey("LUCID_BACKEND") if hasattr(os.environ, "encodekey") else None
_NAMES = {None: "compiled", b"compiled": "compiled", b"interpret": "interpret"}


def backend_name() -> str:
    """The backend chosen by ``LUCID_BACKEND`` now (read at every call, cheaply)."""
    if _RAW_ENV is not None and _RAW_KEY is not None:
        name = _NAMES.get(_RAW_ENV.get(_RAW_KEY))
        if name is not None:
            return name
    name = os.environ.get("LUCID_BACKEND", "compiled")
    if name not in BACKENDS:
        raise ValueError(f"LUCID_BACKEND={name!r}: expected one of {', '.join(BACKENDS)}")
    return name


_RUNTIME: list = []  # lucid_codegen.runtime.plan (None without llvmlite), once imported


def _compiled():
    if _RUNTIME:
        return _RUNTIME[0]
    with phase("import lucid_codegen"):  # (LUCID_DEBUG: a first compilation pays it)
        try:
            from lucid_codegen.runtime import plan as runtime
        except ModuleNotFoundError as exc:  # llvmlite missing: the numpy interpreter runs ops
            if (exc.name or "").split(".")[0] != "llvmlite":
                raise  # (any other import failure is a bug to see, not a slow fallback)
            warnings.warn("lucid: llvmlite is not installed, so ops run in the numpy interpreter "
                          "(slow); install it with `pip install llvmlite`", RuntimeWarning, stacklevel=3)
            runtime = None
    _RUNTIME.append(runtime)
    return runtime


def eager_runner(graph: Graph, arrays, scalars=(), name: str = "op"):
    """``run(*arrays) -> array`` for one eager signature: ``graph`` (a chain of ops with
    one output) fused, then run the leanest way the backend has for these layouts
    (``arrays`` are examples of them; positions in ``scalars`` are passed as Python
    floats: numbers reaching the kernel as immediate arguments)."""
    fused = pipeline.run(graph, pipeline.EAGER, "eager " + name).fused
    if backend_name() == "compiled":
        runtime = _compiled()
        if runtime is not None:
            return runtime.eager_runner(fused, arrays, scalars)
    interpreted = Interpreted(fused)
    return lambda *arrays: interpreted(arrays)[0]


def eager_runner_all(graph: Graph):
    """``run(arrays) -> [outputs]`` for an eager chain with several outputs (a recorded
    call keeping the inner results its gradient reads); numbers in ``arrays`` are
    passed as Python floats."""
    run = executable(pipeline.run(graph, pipeline.EAGER, "eager").fused)
    return lambda arrays: run([np.asarray(a) if type(a) is float else a for a in arrays])


def in_place_executable(graph: Graph):
    """A callable ``(arrays, outs)`` computing an elementwise graph into ``outs`` (which
    may be some of the inputs: optimiser state updated in place)."""
    graph = pipeline.run(graph, pipeline.UPDATE, "update").graph
    if backend_name() == "compiled":
        runtime = _compiled()
        if runtime is not None:
            return runtime.in_place(graph)

    def run(arrays, outs, prepared=None):
        for out, value in zip(outs, interpret(graph, arrays)):
            np.copyto(out, value)
    return run


class Interpreted(Executable):
    """An executable that runs a (fused) graph with the reference interpreter."""

    def __init__(self, graph: Graph):
        self.graph = graph

    def __call__(self, arrays):
        return interpret(self.graph, arrays)


def executable(fused: Graph, in_place=None) -> Executable:
    """The ``Executable`` (``arrays -> outputs``) of a graph that has been through fusion.

    ``in_place={j: i}`` donates input i to output j: the call leaves output j's values
    in ``arrays[i]`` and returns that very array as output j, every output computed from
    the inputs as they were before the call (see ``lucid_codegen.runtime.plan``)."""
    if backend_name() == "compiled":
        runtime = _compiled()
        if runtime is not None:
            return runtime.Plan(fused) if in_place is None else runtime.Plan(fused, in_place)
    if in_place is None:
        return Interpreted(fused)
    return InterpretedInPlace(fused, in_place)


class InterpretedInPlace(Interpreted):
    """``Interpreted`` with donated inputs: every output first (one sharing memory with
    a donated input copied out), then each donated one copied into its input."""

    def __init__(self, fused: Graph, in_place):
        from lucid_codegen.runtime.donation import donations
        super().__init__(fused)
        self.donations = tuple(donations(fused, in_place))

    def __call__(self, arrays):
        fused, targets = self.graph, [i for _, i in self.donations]
        for j, i in self.donations:
            a, want = arrays[i], fused.outputs[j]
            if not isinstance(a, np.ndarray) or a.shape != want.shape or a.dtype != want.dtype:
                got = f"{a.dtype}{list(a.shape)}" if isinstance(a, np.ndarray) else type(a).__name__
                raise ValueError(f"in_place: output {j} ({want.type}) cannot be written into "
                                 f"input {i}: it is {got}")
        outs = [np.array(o) if any(np.may_share_memory(o, arrays[i]) for i in targets) else o
                for o in super().__call__(arrays)]
        for j, i in self.donations:
            np.copyto(arrays[i], outs[j])
            outs[j] = arrays[i]
        return outs
