"""Plan steps for the scan ops (``lucid_ir.opnames.SCAN``: ``argmax``, ``argmin``,
``cumsum``, ``cumprod``, ``cumargmax``, ``cumargmin``, ``argsort``): each node runs the op's numpy reference (``lucid_ir``'s definition of the
op, so the results are exact by construction). There is no native kernel for them yet,
so a plan holding one runs in Python (native programs decline it: no ``native_job``).

>>> import numpy as np
>>> from lucid_ir.builder import GraphBuilder
>>> b = GraphBuilder()
>>> x = b.input((2, 3), "float32")
>>> step = ReferenceStep(b.build([b.emit("argmin", x, axis=1)]).nodes[0])
>>> step(np.array([[3, 1, 1], [0, 2, -1]], np.float32))[0]
array([1, 2])
"""
from __future__ import annotations

import numpy as np

from lucid_ir.graph import Node
from lucid_ir.ops import get_op


class ReferenceStep:
    """``step(x) -> (out,)`` and ``step.call_into([out], x)`` by the op's reference."""

    #: it reads every element of its input for each output: never written in place
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
