"""Collective ops: values combined across the ranks of a data-parallel job.

``all_reduce(x, reduce)`` is, on every rank, the elementwise ``reduce`` ("sum", "avg",
"max", "min") of the ranks' ``x``; ``broadcast(x, src)`` is rank ``src``'s ``x``. Their meaning
needs the other ranks' data, so the reference asks the *communicator* that the runtime
registered (``set_communicator``; ``lucid.distributed`` registers MPI's when its process
group starts). With none registered the job is one process, where both are the identity.

>>> import numpy as np
>>> from lucid_ir.builder import GraphBuilder
>>> from lucid_ir.interpreter import interpret
>>> b = GraphBuilder()
>>> x = b.input((3,), "float64")
>>> g = b.build([b.emit("all_reduce", x, reduce="avg")])
>>> interpret(g, [np.array([1.0, 2.0, 3.0])])[0]          # a world of one rank
array([1., 2., 3.])
"""
from __future__ import annotations

import numpy as np

from ..types import TensorType
from . import OpDef, register

_COMMUNICATOR = None
REDUCE_OPS = ("sum", "avg", "max", "min")


def set_communicator(communicator) -> None:
    """Register (or, with None, clear) the object collectives run on: it has
    ``all_reduce(array, op)`` and ``broadcast(array, src)``, both in place on a
    contiguous array, and ``size`` (the number of ranks). It may also have
    ``native_collective(name, value, dtype, count, in_place)``, giving the host calls
    that run one collective inside a native program (``lucid_codegen.runtime.collective_steps``;
    ``"avg"`` is asked for as ``"sum"``, the program divides), or None; without it a
    native program calls the two methods above from its host call into Python."""
    global _COMMUNICATOR
    _COMMUNICATOR = communicator


def communicator():
    return _COMMUNICATOR


@register
class AllReduce(OpDef):
    name = "all_reduce"
    group = "collective"
    arity = 1
    attr_names = ("reduce",)

    def normalize_attrs(self, inputs, attrs):
        super().normalize_attrs(inputs, attrs)
        op = attrs.get("reduce", "sum")
        if op not in REDUCE_OPS:
            raise ValueError(f"all_reduce: reduce must be one of {REDUCE_OPS}, got {op!r}")
        return {"reduce": op}

    def infer(self, types, attrs):
        if attrs["reduce"] == "avg" and types[0].dtype not in ("float32", "float64"):
            raise TypeError(f"all_reduce: reduce='avg' needs a float operand, got {types[0]}")
        return types[0]

    def evaluate(self, a, attrs):
        out = np.array(a[0], copy=True, order="C")
        comm = _COMMUNICATOR
        if comm is not None and comm.size > 1:
            comm.all_reduce(out, attrs["reduce"])
        return out

    def grad(self, b, node, g):
        # sum and avg are linear maps of every rank's operand: the gradient of rank r's
        # input collects every rank's cotangent (summed, or averaged)
        if node.attr("reduce") in ("sum", "avg"):
            return [b.emit("all_reduce", g, reduce=node.attr("reduce"))]
        raise ValueError(f"all_reduce: no gradient for reduce={node.attr('reduce')!r}")


@register
class Broadcast(OpDef):
    name = "broadcast"
    group = "collective"
    arity = 1
    attr_names = ("src",)

    def normalize_attrs(self, inputs, attrs):
        super().normalize_attrs(inputs, attrs)
        src = attrs.get("src", 0)
        if not isinstance(src, int) or src < 0:
            raise ValueError(f"broadcast: src must be a rank (an int >= 0), got {src!r}")
        return {"src": src}

    def infer(self, types, attrs):
        return types[0]

    def evaluate(self, a, attrs):
        out = np.array(a[0], copy=True, order="C")
        comm = _COMMUNICATOR
        if comm is not None and comm.size > 1:
            comm.broadcast(out, attrs["src"])
        return out

    def grad(self, b, node, g):
        raise ValueError("broadcast: no gradient (it replaces the operand by another rank's)")
