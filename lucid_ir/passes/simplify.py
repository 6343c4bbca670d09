"""Simplify: algebraic identities, transpose folding, constant folding, common
subexpressions, dead code. One walk that rewrites nodes, then DCE.

- ``x*1``, ``1*x``, ``x+0``, ``0+x``, ``x-0``, ``x/1`` → ``x`` (when the shape is unchanged;
  the ops' ``units`` trait); ``neg(neg(x))`` → ``x`` (the ``involution`` trait);
- reshape/broadcast_to to the same shape, identity transposes, whole slices,
  stop_gradient (its work is done once autodiff has run) → the input (the
  ``forwards`` trait);
  reshape of a reshape → one reshape; transpose of a transpose → one transpose;
- ``matmul(transpose(a), b)`` → ``matmul[trans_a]`` of ``a`` (likewise for b): no copies;
- elementwise ops read through ``broadcast_to`` (they broadcast by themselves), and a
  unary op of a movement op (broadcast, reshape, transpose; not a slice) runs before
  it, on its source, joining the kernel that produces that;
- ops whose inputs are all constant fills (``constant`` nodes) → one constant;
- the sum of ``embed`` s of adjacent ranges of one axis (the gradient of a tensor split
  into parts: ``q, k, v = qkv.split(...)``) → the parts joined by one ``concat`` (and
  embedded once, unless they cover the axis): one copy instead of zero fills and adds;
  any other sum of ``embed`` s (and ``embed_sum`` s) into one shape → one ``embed_sum``
  (the gradient of a convolution's overlapping taps: one pass instead of an add each);
- a ``concat`` of ``reshape`` s that each split the concatenated axis the same way (a
  multi-head layer's q, k and v gradients, each ``(B, T, H, D)`` merged to ``(B, T, C)``)
  → the sources concatenated, then one reshape (a view): the concat reads the heads'
  strided layouts itself, instead of a copy to merge each and a copy to join them;
- a ``scatter_add`` of one index per line (the gradient of ``gather`` along an axis the
  index has size 1 on: a max pool's winner, ``x.max(dim)``'s values) → a one-hot
  ``select(eq(iota, index), src, 0)``, an elementwise loop that fuses with its
  neighbours (no zero fill, no read-modify-write);
- an ``attention_backward`` of a packed gradient that is zero past the output (an
  ``embed`` of the output's part) → of the output's gradient itself, read at its
  strides (no zero-filled packed copy);
- nodes equal in op, attributes and inputs → the first one.

>>> from lucid_ir.builder import GraphBuilder
>>> b = GraphBuilder()
>>> x, w = b.input((4, 3)), b.input((3, 2))
>>> y = b.emit("matmul", x, b.emit("transpose", b.emit("transpose", w)))
>>> z = b.emit("mul", y, b.constant(1.0))
>>> print(run(b.build([b.emit("add", z, b.emit("matmul", x, w))])))
{ lambda ; %0:f32[4,3] %1:f32[3,2]. let
    %2:f32[4,2] = matmul %0 %1
    %3:f32[4,2] = add %2 %2
  in (%3) }
"""
from __future__ import annotations

import numpy as np

from ..graph import Graph, Node, Value
from ..interpreter import evaluate_node
from ..ops import get_op
from ..types import TensorType, broadcast_shapes, fill_value
from . import dce


def _fill(node: Node | None):
    """The value of a constant fill node, else None."""
    return node.attr("value") if node is not None and node.op == "constant" else None


def _identity(node: Node, producer) -> Value | None:
    """The value ``node`` can be replaced by, when an identity applies."""
    op, ins, out = node.op, node.inputs, node.out
    d = get_op(op)
    if d.forwards(node):
        return ins[0]
    if d.involution:
        p = producer.get(ins[0])
        if p is not None and p.op == op:
            return p.inputs[0]
    left, right = d.units
    if left is not None or right is not None:
        a, b = ins
        if right is not None and _fill(producer.get(b)) == right and a.type == out.type:
            return a
        if left is not None and _fill(producer.get(a)) == left and b.type == out.type:
            return b
    return None


def _through_movements(node: Node, producer) -> list[Node] | None:
    """Elementwise ops broadcast by themselves: read a ``broadcast_to``'s source directly
    when that leaves the output shape unchanged. A unary op of a movement op (which only
    places its source's elements: a broadcast, a reshape, a transpose) runs before it,
    on the source, when that has no more elements (not before a slice): on fewer
    elements, and next to the source's producer, whose kernel it then joins (through
    a chain of them: ``neg(reshape(broadcast_to(reshape(s))))`` computes ``neg(s)``).
    A random op's values depend on its own shape, not its key's: it never moves."""
    d = get_op(node.op)
    if not d.fusible:
        return None
    sources = [producer.get(v) for v in node.inputs]
    if d.arity == 1:
        p = sources[0]
        if p is None or get_op(p.op).group != "movement" or p.inputs[0].type.size > node.out.type.size:
            return None
        x = p.inputs[0]
        small = Node(node.op, (x,), node.attrs, Value(TensorType(x.shape, node.out.dtype)))
        return (_through_movements(small, producer) or [small]) + [Node(p.op, (small.out,), p.attrs, node.out)]
    ins = list(node.inputs)
    for i, p in enumerate(sources):
        if p is not None and p.op == "broadcast_to":
            trial = ins[:i] + [p.inputs[0]] + ins[i + 1:]
            if broadcast_shapes(*(v.shape for v in trial)) == node.out.shape:
                ins = trial
    return [Node(node.op, tuple(ins), node.attrs, node.out)] if ins != list(node.inputs) else None


def _embed_range(p: Node | None):
    """``(axis, start, stop, part)`` when ``p`` is an ``embed`` of unit steps whose slice
    is whole on every axis but one (``part`` fills ``[start, stop)`` of that axis)."""
    if p is None or p.op != "embed" or set(p.attr("steps")) - {1}:
        return None
    shape, starts, stops = p.attr("shape"), p.attr("starts"), p.attr("stops")
    partial = [d for d, n in enumerate(shape) if (starts[d], stops[d]) != (0, n)]
    if len(partial) != 1:
        return None
    d = partial[0]
    return d, starts[d], stops[d], p.inputs[0]


def _joined_embeds(node: Node, producer) -> list[Node] | None:
    """``add(embed(a), embed(b))`` over adjacent ranges of one axis → ``concat(a, b)``,
    embedded into the range they cover together unless that is the whole axis (a part
    that is itself such a concat contributes its own parts)."""
    if node.op != "add":
        return None
    spans = [_embed_range(producer.get(v)) for v in node.inputs]
    if None in spans or spans[0][0] != spans[1][0] or node.inputs[0].type != node.out.type \
            or node.inputs[1].type != node.out.type:
        return None
    first, second = sorted(spans, key=lambda r: r[1])
    if first[2] != second[1]:
        return None
    axis, lo, hi, shape = first[0], first[1], second[2], node.out.shape
    parts = []
    for _, _, _, part in (first, second):
        p = producer.get(part)
        parts += p.inputs if p is not None and p.op == "concat" and p.attr("axis") == axis else [part]
    joined_shape = shape[:axis] + (hi - lo,) + shape[axis + 1:]
    if (lo, hi) == (0, shape[axis]):
        return [Node("concat", tuple(parts), (("axis", axis),), node.out)]
    cat = Node("concat", tuple(parts), (("axis", axis),), Value(TensorType(joined_shape, node.out.dtype)))
    n = len(shape)
    attrs = {"shape": shape, "starts": tuple(lo if d == axis else 0 for d in range(n)),
             "stops": tuple(hi if d == axis else shape[d] for d in range(n)), "steps": (1,) * n}
    return [cat, Node("embed", (cat.out,), tuple(sorted(attrs.items())), node.out)]


def _embed_parts(p: Node | None):
    """``(inputs, starts, stops, steps)`` of an ``embed`` or ``embed_sum``, else None."""
    if p is None or get_op(p.op).kind != "embed":
        return None
    return (p.inputs, p.attr("starts"), p.attr("stops"), p.attr("steps"))


def _summed_embeds(node: Node, producer) -> list[Node] | None:
    """``add(embed(a), embed(b))`` (either side may be an ``embed_sum``) → one
    ``embed_sum(a, b)``, when both are of the output's float type (no broadcast)."""
    if (node.op != "add" or node.out.dtype not in ("float32", "float64")
            or any(v.type != node.out.type for v in node.inputs)):
        return None
    parts = [_embed_parts(producer.get(v)) for v in node.inputs]
    if None in parts:
        return None
    inputs = parts[0][0] + parts[1][0]
    attrs = {"shape": node.out.shape}
    for k, name in enumerate(("starts", "stops", "steps"), start=1):
        attrs[name] = parts[0][k] + parts[1][k]
    return [Node("embed_sum", inputs, tuple(sorted(attrs.items())), node.out)]


def _split_axis(source: tuple, merged: tuple, axis: int):
    """The dims ``source`` has where ``merged`` has dim ``axis`` alone, when ``merged`` is
    ``source`` with the dims ``axis`` .. ``axis + k`` (k >= 1) merged, else None:
    ``(2, 4, 3, 5)`` merged at axis 1 into ``(2, 12, 5)`` gives ``(4, 3)``."""
    k = len(source) - len(merged)
    tail = len(merged) - axis - 1
    if k < 1 or source[:axis] != merged[:axis] or source[len(source) - tail:] != merged[axis + 1:]:
        return None
    split = source[axis:axis + k + 1]
    return split if int(np.prod(split)) == merged[axis] else None


def _concat_of_reshapes(node: Node, producer) -> list[Node] | None:
    """``concat(reshape(a_i), axis)`` → ``reshape(concat(a_i, axis), shape)`` when every
    reshape merges the concatenated axis of ``a_i`` with the same trailing dims (``a_i``
    differ in that axis only): C-order lays out both the same. An ``a_i`` that is itself
    a concat along the axis gives its parts (the add of embeds that made q and k's
    concat before v's joined it: one concat of three)."""
    if node.op != "concat":
        return None
    axis = node.attr("axis")
    sources, rest = [], None
    for v in node.inputs:
        p = producer.get(v)
        split = None if p is None or p.op != "reshape" else _split_axis(p.inputs[0].shape, v.shape, axis)
        if split is None or rest not in (None, split[1:]):
            return None
        rest = split[1:]
        inner = producer.get(p.inputs[0])   # (a concat's parts join this one: one copy)
        sources += inner.inputs if inner is not None and inner.op == "concat" and inner.attr("axis") == axis \
            else [p.inputs[0]]
    shape = node.out.shape
    joined = shape[:axis] + (sum(a.shape[axis] for a in sources),) + rest + shape[axis + 1:]
    cat = Node("concat", tuple(sources), (("axis", axis),), Value(TensorType(joined, node.out.dtype)))
    return [cat, Node("reshape", (cat.out,), (("shape", shape),), node.out)]


def _attention_output_gradient(node: Node, producer) -> list[Node] | None:
    """``attention_backward`` whose packed gradient ``g`` is an ``embed`` of the output's
    part alone (zeros for ``lse``: the usual case) → ``attention_backward`` of that part
    in the output's shape, which the kernel reads at its strides: no zero-filled packed
    copy (and no copy merging a transposed gradient's heads into rows before it)."""
    if node.op != "attention_backward":
        return None
    q, v, g = node.inputs[0], node.inputs[2], node.inputs[4]
    if g.ndim != q.ndim - 1:   # (already the output's gradient)
        return None
    span = _embed_range(producer.get(g))
    *lead, L = q.shape[:-1]
    shape = (*lead, L, v.shape[-1])
    if span is None or span[:3] != (g.ndim - 1, 0, L * v.shape[-1]):
        return None
    part = span[3]
    p = producer.get(part)
    if p is not None and p.op == "reshape" and p.inputs[0].shape == shape:
        made, d_out = [], p.inputs[0]
    else:
        made = [Node("reshape", (part,), (("shape", shape),), Value(TensorType(shape, part.dtype)))]
        d_out = made[0].out
    return made + [Node(node.op, node.inputs[:4] + (d_out,), node.attrs, node.out)]


def _one_hot_scatter(node: Node) -> list[Node] | None:
    """``scatter_add[axis, shape](index, src)`` with one index per line along ``axis``
    (index and src of ``shape`` but 1 on ``axis``) → ``select(eq(iota, index), src, 0)``:
    an index out of ``[0, n)`` matches no position and adds nothing, as scatter_add."""
    if node.op != "scatter_add":
        return None
    index, src = node.inputs
    axis, shape = node.attr("axis"), node.out.shape
    line = shape[:axis] + (1,) + shape[axis + 1:]
    if index.shape != line or src.dtype not in ("float32", "float64", "int32", "int64"):
        return None
    iota_shape = tuple(n if d == axis else 1 for d, n in enumerate(shape))
    iota = Node("iota", (), (("axis", axis), ("dtype", index.dtype), ("shape", iota_shape)),
                Value(TensorType(iota_shape, index.dtype)))
    hit = Node("eq", (iota.out, index), (), Value(TensorType(shape, "bool")))
    zero = Node("constant", (), (("dtype", src.dtype), ("shape", ()), ("value", fill_value(0, src.dtype))),
                Value(TensorType((), src.dtype)))
    return [iota, hit, zero, Node("select", (hit.out, src, zero.out), (), node.out)]


def _swaps_last_two(perm) -> bool:
    """Whether ``perm`` swaps the last two axes only (what a matmul flag does)."""
    n = len(perm)
    return n >= 2 and tuple(perm) == tuple(range(n - 2)) + (n - 1, n - 2)


def _rewrite(node: Node, producer) -> Node:
    """Structural rewrites that produce a different node computing the same value."""
    op, ins = node.op, node.inputs
    if op == "matmul":
        flags = {"trans_a": node.attr("trans_a"), "trans_b": node.attr("trans_b")}
        new_ins = list(ins)
        for i, flag in enumerate(("trans_a", "trans_b")):
            p = producer.get(ins[i])
            if p is not None and p.op == "transpose" and _swaps_last_two(p.attr("perm")):
                new_ins[i], flags[flag] = p.inputs[0], not flags[flag]
        if new_ins != list(ins):
            return Node("matmul", tuple(new_ins), tuple(sorted(flags.items())), node.out)
    if op == "reshape":
        p = producer.get(ins[0])
        if p is not None and p.op == "reshape":
            return Node("reshape", p.inputs, node.attrs, node.out)
    if op == "transpose":
        p = producer.get(ins[0])
        if p is not None and p.op == "transpose":
            inner, outer = p.attr("perm"), node.attr("perm")
            return Node("transpose", p.inputs, (("perm", tuple(inner[i] for i in outer)),), node.out)
    return node


def _fold(node: Node, producer) -> Node | None:
    """Replace an op over constant fills by one constant fill (random numbers from a
    constant key are not a fill)."""
    d = get_op(node.op)
    if d.group not in ("elementwise", "movement", "reduction") or d.random or not node.inputs:
        return None
    fills = [_fill(producer.get(v)) for v in node.inputs]
    if any(f is None for f in fills):
        return None
    scalars = [np.full((1,) * len(v.shape), f, v.dtype) for v, f in zip(node.inputs, fills)]
    if d.group == "reduction":
        full = [np.full(v.shape, f, v.dtype) for v, f in zip(node.inputs, fills)]
        if full[0].size > 1 << 16:
            return None
        result = evaluate_node(node, full)
    elif d.group == "movement":
        result = scalars[0]
    else:
        result = evaluate_node(Node(node.op, tuple(Value(type(v.type)((1,) * len(v.shape), v.dtype))
                                                   for v in node.inputs), node.attrs, node.out), scalars)
    flat = np.asarray(result).reshape(-1)
    if flat.size == 0 or not np.all(flat == flat[0]) and not np.all(np.isnan(flat)):
        return None
    value = fill_value(flat[0].item(), node.out.dtype)
    return Node("constant", (), tuple(sorted({"value": value, "shape": node.out.shape,
                                               "dtype": node.out.dtype}.items())), node.out)


def run(graph: Graph) -> Graph:
    subst: dict[Value, Value] = {}
    producer: dict[Value, Node] = {}
    seen: dict[tuple, Value] = {}
    nodes = []
    for node in graph.nodes:
        if node.op == "kernel":
            raise ValueError("simplify runs before fusion; this graph already has kernels")
        ins = tuple(subst.get(v, v) for v in node.inputs)
        if ins != node.inputs:
            node = Node(node.op, ins, node.attrs, node.out)
        node = _rewrite(node, producer)
        made = (_through_movements(node, producer) or _joined_embeds(node, producer)
                or _summed_embeds(node, producer) or _one_hot_scatter(node)
                or _attention_output_gradient(node, producer) or [node])
        # (a concat made of joined embeds, too)
        for node in [m for n in made for m in (_concat_of_reshapes(n, producer) or [n])]:
            ins = tuple(subst.get(v, v) for v in node.inputs)  # an earlier part may be CSE'd
            if ins != node.inputs:
                node = Node(node.op, ins, node.attrs, node.out)
            same = _identity(node, producer)
            if same is not None:
                subst[node.out] = same
                continue
            node = _fold(node, producer) or node
            key = (node.op, tuple(id(v) for v in node.inputs), node.attrs, node.out.type)
            if key in seen:
                subst[node.out] = seen[key]
                continue
            seen[key] = node.out
            producer[node.out] = node
            nodes.append(node)
    outputs = tuple(subst.get(v, v) for v in graph.outputs)
    return dce.run(Graph(graph.inputs, tuple(nodes), outputs))

