"""``ReferenceStep``: a plan step that runs its node's numpy reference (``lucid_ir``'s
definition of the op, so the results are exact by construction), for the ops without a
native kernel of their own: the scan ops ``cumprod``, ``cumargmax``, ``cumargmin``,
``argsort``, and the base of the collectives' steps. A plan holding one runs step by
step (native programs decline it: no ``native_job``), except the collectives, whose
``CollectiveStep`` adds one.

>>> import numpy as np
>>> from lucid_ir.builder import GraphBuilder
>>> b = GraphBuilder()
>>> x = b.input((2, 3), "float32")
>>> step = ReferenceStep(b.build([b.emit("cumprod", x, axis=1)]).nodes[0])
>>> step(np.array([[1, 2, 3], [2, 0, 5]], np.float32))[0]
array([[1., 2., 6.],
       [2., 0., 0.]], dtype=float32)
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
