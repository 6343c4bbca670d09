"""Building graphs: ``GraphBuilder.emit(op, *inputs, **attrs)`` type-checks through the
op's shape rule and appends a node. Gradient rules and the user API both build graphs
this way, so every node that exists has passed its op's checks.

>>> b = GraphBuilder()
>>> x = b.input((4, 3), "float32")
>>> w = b.input((2, 3), "float32")
>>> y = b.emit("matmul", x, w, trans_b=True)
>>> y.type
TensorType(shape=(4, 2), dtype='float32')
"""
from __future__ import annotations

from .graph import Graph, Node, Value
from .types import TensorType


def make_node(op: str, inputs, attrs: dict) -> Node:
    """Check ``op`` against its shape rule and return the node (with a fresh output)."""
    from .ops import get_op
    opdef = get_op(op)
    inputs = tuple(inputs)
    for v in inputs:
        if not isinstance(v, Value):
            raise TypeError(f"{op}: inputs must be graph values, got {type(v).__name__}")
    attrs = opdef.normalize_attrs(inputs, dict(attrs))
    out_type = opdef.infer(tuple(v.type for v in inputs), attrs)
    return Node(op, inputs, tuple(sorted(attrs.items())), Value(out_type))


class GraphBuilder:
    def __init__(self):
        self.inputs: list[Value] = []
        self.nodes: list[Node] = []

    def input(self, shape, dtype: str = "float32") -> Value:
        v = Value(TensorType(tuple(shape), dtype))
        self.inputs.append(v)
        return v

    def add_input(self, v: Value) -> Value:
        self.inputs.append(v)
        return v

    def emit(self, op: str, *inputs: Value, **attrs) -> Value:
        node = make_node(op, inputs, attrs)
        self.nodes.append(node)
        return node.out

    def append(self, node: Node) -> Value:
        self.nodes.append(node)
        return node.out

    def constant(self, value: float, shape=(), dtype: str = "float32") -> Value:
        return self.emit("constant", value=float(value), shape=tuple(shape), dtype=dtype)

    def build(self, outputs) -> Graph:
        return Graph(tuple(self.inputs), tuple(self.nodes), tuple(outputs))
