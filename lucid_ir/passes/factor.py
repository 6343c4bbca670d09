"""Factor a gradient's common multiplicand out of a sum: ``g·a + g·b`` → ``g·(a + b)``.

Reverse-mode autodiff sums the contributions of every path from a value to the loss,
and each contribution of an elementwise chain is the cotangent times that path's
derivative: GELU's ``x/2 · erfc(-x/√2)`` gives ``(g·erfc)·½ + ((g·x/2)·e')·(-1/√2)``.
Written as ``g · (erfc·½ + (x/2·e')·(-1/√2))``, the derivative is one value computed
from the forward's values alone, so the fusion pass can compute it in the forward's
own loop (beside the erfc it computes anyway) and the backward GEMM's epilogue only
multiplies by it, instead of computing erfc and exp again in every tile.

The rule, for ``add(A, B)`` of float values of the sum's own shape: ``A`` and ``B`` are
products (``mul`` trees, each inner product read only by its tree) whose factors share
a value ``g`` of the sum's shape; the sum becomes ``mul(g, add(A', B'))``, ``A'`` and
``B'`` the products of the other factors in their order. Exact in real arithmetic; in
floating point one rounding fewer (the sum is multiplied once): PyTorch's GELU
backward computes ``g · (cdf + x·pdf)`` the same way.

>>> from lucid_ir.builder import GraphBuilder
>>> b = GraphBuilder()
>>> g, x, y = b.input((3,)), b.input((3,)), b.input((3,))
>>> s = b.emit("add", b.emit("mul", b.emit("mul", g, x), b.constant(0.5)), b.emit("mul", g, y))
>>> print(run(b.build([s])))
{ lambda ; %0:f32[3] %1:f32[3] %2:f32[3]. let
    %3:f32[] = constant[value=0.5]
    %4:f32[3] = mul %1 %3
    %5:f32[3] = add %4 %2
    %6:f32[3] = mul %0 %5
  in (%6) }
"""
from __future__ import annotations

from ..builder import make_node
from ..graph import Graph, Node
from . import dce


def _factors(v, producer, readers) -> list | None:
    """The factors of product ``v`` in order (inner products read only by their tree
    are opened), or None when ``v`` is not a product. (A walk with its own stack: a
    gradient's product may be thousands of factors deep.)"""
    p = producer.get(v)
    if p is None or p.op != "mul":
        return None
    out, stack = [], list(reversed(p.inputs))
    while stack:
        x = stack.pop()
        q = producer.get(x)
        if q is not None and q.op == "mul" and readers.get(x, 0) == 1:
            stack.extend(reversed(q.inputs))
        else:
            out.append(x)
    return out


def _product(factors, made: list):
    """``factors`` multiplied left to right (nodes appended to ``made``)."""
    acc = factors[0]
    for x in factors[1:]:
        made.append(make_node("mul", (acc, x), {}))
        acc = made[-1].out
    return acc


def _factored(node: Node, producer, readers) -> list[Node] | None:
    """The nodes computing ``node`` (an add) as ``g · (A' + B')``, or None."""
    if node.op != "add" or node.out.dtype not in ("float32", "float64"):
        return None
    if any(v.type != node.out.type or readers.get(v, 0) != 1 for v in node.inputs):
        return None
    a, b = (_factors(v, producer, readers) for v in node.inputs)
    if a is None or b is None:
        return None
    common = next((g for g in a if g.type == node.out.type and any(g is y for y in b)), None)
    if common is None:
        return None
    rest = []
    for side in (a, b):
        at = next(i for i, y in enumerate(side) if y is common)
        rest.append(side[:at] + side[at + 1:])
    if not rest[0] or not rest[1]:   # (a side that is g alone: nothing to gain)
        return None
    made = []
    parts = [_product(r, made) for r in rest]
    made.append(make_node("add", tuple(parts), {}))
    made.append(Node("mul", (common, made[-1].out), (), node.out))
    return made


def run(graph: Graph) -> Graph:
    """``graph`` with every such sum factored (nodes in order, so a sum of factored sums
    is factored again), then dead code dropped."""
    readers: dict = {}
    for n in graph.nodes:
        for v in n.inputs:
            readers[v] = readers.get(v, 0) + 1
    for v in graph.outputs:
        readers[v] = readers.get(v, 0) + 1
    producer, nodes = {}, []
    for node in graph.nodes:
        for m in _factored(node, producer, readers) or [node]:
            producer[m.out] = m
            nodes.append(m)
    return dce.run(Graph(graph.inputs, tuple(nodes), graph.outputs))
