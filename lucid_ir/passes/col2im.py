"""col2im as a gathered GEMM: a convolution's input gradient without its patch matrix.

Autodiff of a convolution (``lucid.nn.functional_conv``: taps sliced from the padded
input, concatenated, one matmul) gives the input's gradient as a *col2im*: the patch
matrix's gradient ``Q = dY · W`` (positions x taps·C), each tap's column block placed
back at its offset and summed (``embed_sum``, made by ``simplify``). ``run`` rewrites
that, when it moves less data, into the equivalent convolution of the output gradient:
``dY`` spread by the stride into zeros (``Z``: one ``embed``), each tap a slice of ``Z``
at the opposite offset, concatenated, against the taps' weight blocks stacked — an
im2col gather (``gather_operand``) that the GEMM packs from ``Z``: neither ``Q`` nor a
patch matrix is written, and the sum of the taps happens in the GEMM's registers.

Values: the same sums of products of finite values, in another order (rounding may
differ, as between any two GEMMs). Non-finite weights are the exception: the GEMM also
multiplies the zeros between and around the spread gradient by them, so an inf weight
gives NaN (0·inf) at positions its tap does not reach, where the embed_sum gave a sum
without it (as PyTorch's transposed-convolution algorithms do on some backends).

Recognised: ``embed_sum`` of slices of one ``reshape(matmul(G, B))`` (any transpose
flags), each slice a column block of the product with every leading axis whole, each
placed with the same steps, the first and last axes whole; at least two taps; applied
when ``Z`` is smaller than ``Q``.

>>> from lucid_ir.builder import GraphBuilder
>>> from lucid_ir.interpreter import interpret
>>> import numpy as np
>>> b = GraphBuilder()
>>> g, w = b.input((1, 3, 1), "float64"), b.input((1, 4), "float64")   # dY: 3 positions, 1 channel
>>> q = b.emit("reshape", b.emit("matmul", b.emit("reshape", g, shape=(3, 1)), w), shape=(1, 3, 4))
>>> taps = [b.emit("slice", q, starts=(0, 0, 2 * t), stops=(1, 3, 2 * t + 2), steps=(1, 1, 1)) for t in (0, 1)]
>>> dx = b.emit("embed_sum", *taps, shape=(1, 4, 2), starts=(0, 0, 0, 0, 1, 0), stops=(1, 3, 2, 1, 4, 2),
...             steps=(1, 1, 1, 1, 1, 1))
>>> graph = b.build([dx])
>>> new = run(graph)
>>> "embed_sum" in [n.op for n in new.nodes], "concat" in [n.op for n in new.nodes]
(False, True)
>>> args = [np.arange(3.0).reshape(1, 3, 1), np.arange(4.0).reshape(1, 4)]
>>> bool(np.allclose(interpret(new, args)[0], interpret(graph, args)[0]))
True
"""
from __future__ import annotations

import numpy as np

from ..graph import Graph, Node, Value
from ..types import TensorType
from . import dce

__all__ = ["run"]


def _node(nodes: list, op: str, inputs, attrs: dict, shape, dtype, out: Value | None = None) -> Value:
    v = out if out is not None else Value(TensorType(tuple(shape), dtype))
    nodes.append(Node(op, tuple(inputs), tuple(sorted(attrs.items())), v))
    return v


def _placements(node: Node):
    """Per input of an ``embed_sum``: (starts, stops, steps)."""
    r = len(node.attr("shape"))
    at = [node.attr(k) for k in ("starts", "stops", "steps")]
    return [tuple(a[k * r:(k + 1) * r] for a in at) for k in range(len(node.inputs))]


def _match(node: Node, producer: dict):
    """(matmul node, product's leading shape, column starts, leading starts, steps) of a
    col2im ``embed_sum``, else None."""
    if node.op != "embed_sum" or len(node.inputs) < 2:
        return None
    shape = node.attr("shape")
    places = _placements(node)
    slices = [producer.get(v) for v in node.inputs]
    if any(s is None or s.op != "slice" for s in slices) or len({s.inputs[0] for s in slices}) != 1:
        return None
    p = producer.get(slices[0].inputs[0])
    mm = producer.get(p.inputs[0]) if p is not None and p.op == "reshape" else None
    if mm is None or mm.op != "matmul" or mm.out.ndim != 2 or any(v.ndim != 2 for v in mm.inputs):
        return None
    lead, cg = p.out.shape[:-1], shape[-1]
    if p.out.shape[-1] != mm.out.shape[1] or len(shape) != len(p.out.shape) or len(shape) < 3:
        return None
    cols, steps = [], None
    for s, (starts, stops, st), u in zip(slices, places, node.inputs):
        a, e, k = s.attr("starts"), s.attr("stops"), s.attr("steps")
        if (any(x != 1 for x in k) or tuple(a[:-1]) != (0,) * len(lead) or tuple(e[:-1]) != tuple(lead)
                or e[-1] - a[-1] != cg or u.shape[0] != shape[0]):
            return None
        if starts[0] != 0 or st[0] != 1 or starts[-1] != 0 or st[-1] != 1 or stops[-1] != cg:
            return None
        if steps is not None and tuple(st) != steps:
            return None
        steps = tuple(st)
        cols.append(a[-1])
    return mm, tuple(lead), cols, [tuple(pl[0][1:-1]) for pl in places], steps[1:-1]


def _rewrite(node: Node, producer: dict) -> list | None:
    found = _match(node, producer)
    if found is None:
        return None
    mm, lead, cols, offsets, stride = found
    shape, dtype, nodes = node.attr("shape"), node.out.dtype, []
    g, b = mm.inputs
    if mm.attr("trans_a"):
        g = _node(nodes, "transpose", [g], {"perm": (1, 0)}, g.shape[::-1], dtype)
    if mm.attr("trans_b"):
        b = _node(nodes, "transpose", [b], {"perm": (1, 0)}, b.shape[::-1], dtype)
    oc, cg, n, spatial = g.shape[1], shape[-1], shape[0], shape[1:-1]
    hi = [max(o[a] for o in offsets) for a in range(len(spatial))]
    lo = [min(o[a] for o in offsets) for a in range(len(spatial))]
    zshape = (n, *[s + h - m for s, h, m in zip(spatial, hi, lo)], oc)
    if int(np.prod(zshape)) >= int(np.prod(mm.out.shape)):
        return None  # the spread gradient would be bigger than the patch matrix's gradient
    gr = _node(nodes, "reshape", [g], {"shape": lead + (oc,)}, lead + (oc,), dtype)
    z = _node(nodes, "embed", [gr], {"shape": zshape, "starts": (0, *hi, 0), "steps": (1, *stride, 1),
                                     "stops": (n, *[h + (m - 1) * st + 1 for h, m, st in zip(hi, lead[1:], stride)],
                                               oc)}, zshape, dtype)
    taps = []
    for off in offsets:
        begin = [h - o for h, o in zip(hi, off)]
        taps.append(_node(nodes, "slice", [z], {"starts": (0, *begin, 0), "steps": (1,) * len(zshape),
                                                "stops": (n, *[a + s for a, s in zip(begin, spatial)], oc)},
                          (n, *spatial, oc), dtype))
    cat = _node(nodes, "concat", taps, {"axis": len(zshape) - 1}, (n, *spatial, oc * len(taps)), dtype)
    rows = n * int(np.prod(spatial))
    a = _node(nodes, "reshape", [cat], {"shape": (rows, oc * len(taps))}, (rows, oc * len(taps)), dtype)
    blocks = [_node(nodes, "slice", [b], {"starts": (0, c), "stops": (oc, c + cg), "steps": (1, 1)}, (oc, cg), dtype)
              for c in cols]
    w = _node(nodes, "concat", blocks, {"axis": 0}, (oc * len(taps), cg), dtype)
    y = _node(nodes, "matmul", [a, w], {"trans_a": False, "trans_b": False}, (rows, cg), dtype)
    _node(nodes, "reshape", [y], {"shape": shape}, shape, dtype, out=node.out)
    return nodes


def run(graph: Graph) -> Graph:
    """``graph`` with every col2im ``embed_sum`` that moves less data as a gathered GEMM
    rewritten so (see the module docstring)."""
    producer = {n.out: n for n in graph.nodes}
    nodes, changed = [], False
    for node in graph.nodes:
        new = _rewrite(node, producer)
        if new is None:
            nodes.append(node)
            continue
        changed = True
        nodes.extend(new)
    if not changed:
        return graph
    return dce.run(Graph(graph.inputs, tuple(nodes), graph.outputs))
