"""Plan steps for the collective ops (``lucid_ir.opnames.COLLECTIVE``: ``all_reduce``,
``broadcast``): each node runs the op's reference in Python, which calls the
communicator the runtime registered (``lucid_ir.ops.collective.set_communicator``;
with none, a world of one rank, where both are the identity). Host code by nature, so
native programs decline a plan holding one (no ``native_job``).

>>> import numpy as np
>>> from lucid_ir.builder import GraphBuilder
>>> b = GraphBuilder()
>>> x = b.input((3,), "float64")
>>> step = ReferenceStep(b.build([b.emit("all_reduce", x, reduce="sum")]).nodes[0])
>>> step(np.array([1.0, 2.0, 3.0]))[0]
array([1., 2., 3.])
"""
from __future__ import annotations

import numpy as np

from lucid_ir.graph import Node
from lucid_ir.ops import get_op


class ReferenceStep:
    """``step(x) -> (out,)`` and ``step.call_into([out], x)`` by the op's reference."""

    #: the communicator reads the whole input: never written in place
    same_element_reads = frozenset()

    def __init__(self, node: Node):
        self.node, self.op = node, get_op(node.op)
        self.attrs = dict(node.attrs)
        self.dtype = np.dtype(node.out.dtype)

    def __call__(self, *arrays):
        out = np.asarray(self.op.evaluate(list(arrays), self.attrs))
        return (out.astype(self.dtype, copy=False),)

    def call_into(self, outs, *arrays):
        (out,) = outs
        np.copyto(out, self(*arrays)[0])
        return (out,)

    def can_write_into(self, array) -> bool:
        return False
