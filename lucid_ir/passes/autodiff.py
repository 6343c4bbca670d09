"""Reverse-mode autodiff as a graph transformation.

``run(forward, wrt)`` derives the backward graph of ``forward``. It is a graph, not a
tape of closures: it prints, verifies, fuses and compiles like any other.

The backward graph's inputs are, in order: one cotangent (gradient seed) per forward
output, then the *residuals*: the forward values (inputs or intermediates) that the
gradient rules read. Its outputs are the gradients of the forward inputs selected by
``wrt``. Eager mode feeds residuals from tensors it already holds; ``lucid.compile``
makes the forward graph return them, so nothing is recomputed.

Gradients of values used more than once are accumulated; broadcasting is undone by the
rules (``sum_to``); inputs not in ``wrt`` get no gradient computed; an input that no
output depends on gets zeros. Only float values carry gradients: none flows into or
out of an int or bool value (a comparison, a cast to int, an integer sum), so their
gradient rules are never asked, and a wanted int/bool input gets zeros. A sum of
contributions that share a multiplicand is factored (``factor``): ``g·x + g·x`` is
``g·(x + x)``, so an elementwise chain's derivative is one value the fusion pass may
compute where the forward computes its parts.

>>> from lucid_ir.builder import GraphBuilder
>>> b = GraphBuilder()
>>> x = b.input((3,))
>>> fwd = b.build([b.emit("mul", x, x)])
>>> bwd = run(fwd, wrt=[0])
>>> print(bwd.graph)
{ lambda ; %0:f32[3] %1:f32[3]. let
    %2:f32[3] = add %1 %1
    %3:f32[3] = mul %0 %2
  in (%3) }
"""
from __future__ import annotations

from dataclasses import dataclass

from ..builder import GraphBuilder
from ..graph import Graph, Value
from ..ops import get_op
from ..types import is_float
from . import dce, factor, gather_operand


@dataclass(frozen=True)
class BackwardGraph:
    graph: Graph                    # inputs: cotangents + residuals; outputs: gradients
    residuals: tuple[Value, ...]    # the forward values fed as the residual inputs
    wrt: tuple[int, ...]            # indices of the forward inputs whose gradients are output
    also: tuple[Value, ...] = ()    # intermediate values whose gradients are output after those


def depends_on(graph: Graph, sources) -> set[Value]:
    """Values of ``graph`` that depend on any of ``sources``."""
    reached = set(sources)
    for node in graph.nodes:
        if any(v in reached for v in node.inputs):
            reached.add(node.out)
    return reached


def _copy_constants(body: Graph, forward: Graph) -> Graph:
    """Forward constants that the backward reads are re-emitted, not saved as residuals."""
    consts = {n.out: n for n in forward.nodes if n.op == "constant"}
    needed = [consts[v] for v in dict.fromkeys(v for n in body.nodes for v in n.inputs) if v in consts]
    return Graph(body.inputs, tuple(needed) + body.nodes, body.outputs)


def _recompute_gathers(body: Graph, forward: Graph) -> Graph:
    """A forward operand that a backward GEMM reads as an im2col gather
    (``gather_operand.find``: a convolution's patch matrix) is re-emitted from the tensor
    it gathers, which is saved instead: the GEMM packs it from that tensor, so the
    patch matrix is never saved nor written."""
    producer = {n.out: n for n in forward.nodes}
    defined = {n.out for n in body.nodes}
    producer.update({n.out: n for n in body.nodes})
    chains = {}
    for n in body.nodes:
        if get_op(n.op).group != "matmul":
            continue
        for k, v in enumerate(n.inputs):
            if v not in defined and v not in chains:
                g = gather_operand.find(n, k, producer)
                if g is not None and all(m.out not in defined for m in g.nodes):
                    chains[v] = g.nodes
    if not chains:
        return body
    nodes = tuple(dict.fromkeys(m for chain in chains.values() for m in chain))
    order = {n.out: k for k, n in enumerate(forward.nodes)}
    return Graph(body.inputs, tuple(sorted(nodes, key=lambda m: order[m.out])) + body.nodes, body.outputs)


#: the most a value re-emitted in the backward may cost per element (``OpDef.cost`` of
#: the elementwise ops that make it from free values, summed): GELU's ``erfc(-x/√2)``
#: (30) is recomputed from x, not saved; a ``pow`` or a ``log1p`` (210+) is saved
RECOMPUTE_COST = 48


SMALL_FRACTION = 8   # a value at most this many times smaller than what it helps recompute


def _small(v: Value, made: Value) -> bool:
    """Whether ``v`` is small enough beside ``made`` to be saved so that ``made`` is
    recomputed from it (a layer norm's per-row mean and 1/std, (N, 1), instead of its
    (N, D) centred and normalised input)."""
    return v.type.size * SMALL_FRACTION <= made.type.size


def _recompute_cheap(body: Graph, forward: Graph, free) -> Graph:
    """A forward value the backward reads that elementwise ops of at most
    ``RECOMPUTE_COST`` per element and movements (views: no cost) make from ``free``
    values (the forward's inputs, and what the caller holds anyway: eager mode's
    tensors), scalar constants and values ``SMALL_FRACTION`` times smaller (then saved
    instead: a layer norm saves its rows' mean and 1/std, as PyTorch's, and its backward
    recomputes the normalised input from x) is re-emitted in the backward instead of saved (an
    embedding's index broadcast over the features is viewed again, not copied out of
    the eager call); GELU's ``-x/√2``, ``x/2`` and
    ``erfc(-x/√2)`` come again from x, so its forward writes only its output and its
    backward reads x (as PyTorch's), and the backward GEMM whose output meets them
    applies GELU's gradient in its epilogue (``fuse_epilogue``: one operand of the
    product's shape, x, not x and a saved ``erfc``). The choice depends on the nodes
    alone, not on which gradients are wanted, so the residuals of fewer wanted
    gradients stay among those of more (eager records save the latter). A free value or
    an output itself is never recomputed: it is there anyway, and an eager tensor may
    have been written in place since (the record that reads it guards it, not the
    tensors it came from)."""
    defined = {n.out for n in body.nodes}
    read = [v for v in dict.fromkeys(v for n in body.nodes for v in n.inputs) if v not in defined]
    inputs = set(forward.inputs) | set(free)
    kept = inputs | set(forward.outputs)
    scalar = {n.out for n in forward.nodes if n.op == "constant" and n.out.shape == ()}
    # a value compared is the forward's own: recomputed by another kernel, its last bit
    # may differ and send a gradient to the wrong operand. So neither a value the
    # backward compares (maximum's gradient asks which operand the result is) nor a
    # comparison of recomputed values (a mask from log(x), say) is recomputed; a
    # comparison of free or saved values (relu's x > 0) gives the forward's bits anyway
    compared = {v for n in body.nodes if get_op(n.op).kind == "comparison" for v in n.inputs}
    made: dict = {}   # value -> (its node, its cost from free values)
    for n in forward.nodes:
        op = get_op(n.op)
        if (n.out in kept or n.out in compared or op.group not in ("elementwise", "movement") or op.random
                or n.op == "constant"
                or not all(u in scalar or u in inputs or u in made or _small(u, n.out) for u in n.inputs)
                or all(u in scalar for u in n.inputs)
                or op.kind == "comparison" and any(u in made for u in n.inputs)):
            continue
        own = op.cost if op.group == "elementwise" else 0   # (a movement is a view: free)
        cost = own + sum(made[u][1] for u in set(n.inputs) if u in made)
        if cost <= RECOMPUTE_COST:
            made[n.out] = (n, cost)
    needed, stack = set(), [v for v in read if v in made]
    while stack:
        v = stack.pop()
        if v not in needed:
            needed.add(v)
            stack += [u for u in made[v][0].inputs if u in made]
    again = [n for n in forward.nodes if n.out in needed]
    if not again:
        return body
    return Graph(body.inputs, tuple(again) + body.nodes, body.outputs)


def run(forward: Graph, wrt, also=(), free=()) -> BackwardGraph:
    """Derive the backward graph; ``also`` names intermediate values whose gradients
    are wanted too (``Tensor.retain_grad``); ``free``: values besides the inputs that
    the caller can hand the backward at no cost (see ``_recompute_cheap``)."""
    wrt, also = tuple(wrt), tuple(also)
    wanted = [forward.inputs[i] for i in wrt] + list(also)
    active = {v for v in depends_on(forward, [forward.inputs[i] for i in wrt] + list(also))
              if is_float(v.dtype)}
    b = GraphBuilder()
    cotangents = [Value(v.type) for v in forward.outputs]
    grads: dict[Value, Value] = {}

    def accumulate(v: Value, g: Value) -> None:
        if g.type != v.type:
            raise AssertionError(f"gradient rule produced {g.type} for a value of type {v.type}")
        grads[v] = b.emit("add", grads[v], g) if v in grads else g

    for v, ct in zip(forward.outputs, cotangents):
        if v in active:
            accumulate(v, ct)
    for node in reversed(forward.nodes):
        g = grads.get(node.out)
        if g is None:
            continue
        rule_grads = get_op(node.op).grad(b, node, g)
        for v, gv in zip(node.inputs, rule_grads):
            if gv is not None and v in active:
                accumulate(v, gv)
    outputs = [grads[v] if v in grads else b.constant(0.0, v.shape, v.dtype) for v in wanted]

    body = factor.run(dce.run(Graph((), tuple(b.nodes), tuple(outputs))))
    body = _copy_constants(_recompute_cheap(_recompute_gathers(body, forward), forward, free), forward)
    defined = {n.out for n in body.nodes} | set(cotangents)
    residuals, seen = [], set()
    for node in body.nodes:
        for v in node.inputs:
            if v not in defined and v not in seen:
                seen.add(v)
                residuals.append(v)
    for v in outputs:  # an output may be a residual itself (e.g. the gradient of x+y wrt y is g)
        if v not in defined and v not in seen:
            seen.add(v)
            residuals.append(v)
    graph = Graph(tuple(cotangents) + tuple(residuals), body.nodes, tuple(outputs))
    return BackwardGraph(graph, tuple(residuals), wrt, also)
