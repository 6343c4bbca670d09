"""The reference interpreter: runs any graph with numpy. It defines what every op means;
compiled kernels are tested against it.

>>> import numpy as np
>>> from lucid_ir.builder import GraphBuilder
>>> b = GraphBuilder()
>>> x = b.input((2,), "float64")
>>> g = b.build([b.emit("mul", x, x)])
>>> interpret(g, [np.array([3.0, 4.0])])
[array([ 9., 16.])]
"""
from __future__ import annotations

import numpy as np

from .graph import Graph, Node
from .ops import get_op


def check_inputs(graph: Graph, arrays) -> None:
    if len(arrays) != len(graph.inputs):
        raise ValueError(f"graph takes {len(graph.inputs)} inputs, got {len(arrays)}")
    for i, (v, a) in enumerate(zip(graph.inputs, arrays)):
        if tuple(a.shape) != v.shape or a.dtype != np.dtype(v.dtype):
            raise ValueError(f"graph input {i}: expected {v.type}, got {a.dtype}{list(a.shape)}")


def evaluate_node(node: Node, arrays) -> np.ndarray:
    """Apply one node's op to numpy arrays, giving an array of exactly its output type."""
    with np.errstate(all="ignore"):  # NaN and Inf propagate as numpy's do, silently
        out = get_op(node.op).evaluate(list(arrays), node.attr_dict)
    return np.asarray(out, dtype=node.out.dtype)


def interpret(graph: Graph, arrays) -> list[np.ndarray]:
    arrays = [np.asarray(a) for a in arrays]
    check_inputs(graph, arrays)
    env = dict(zip(graph.inputs, arrays))
    for node in graph.nodes:
        args = [env[v] for v in node.inputs]
        if node.op == "kernel":  # a fused group: run its body
            env.update(zip(node.outs, interpret(node.body, args)))
        else:
            env[node.out] = evaluate_node(node, args)
    return [env[v] for v in graph.outputs]
