"""``Tensor.backward``: collect the recorded forward graph, derive its backward graph
with the autodiff pass, compile it (same pipeline as every graph: simplify, fuse,
native kernels) and run it. Backward graphs are cached by the forward graph's
structure, so a training loop derives and compiles each backward graph once.

Outputs of ``lucid.compile``d functions carry a ``CallOutput`` record instead of a
primitive node: their backward graph was derived and compiled with the forward.
A graph that contains such records is differentiated record by record.
"""
from __future__ import annotations

from collections import OrderedDict

import numpy as np

from lucid_ir.graph import Graph, Node
from lucid_ir.passes import autodiff

from .backend import backend_name
from .compiler import compile_graph

_CACHE: "OrderedDict[tuple, tuple]" = OrderedDict()
_CACHE_SIZE = 256


class CallOutput:
    """Output ``index`` of one call of a compiled function (see ``lucid.compiled``)."""

    op = "call"

    def __init__(self, record, index: int):
        self.record, self.index = record, index


def collect(root):
    """The recorded tensors reachable from ``root``, in topological order, and the leaves."""
    order, leaves, seen = [], [], set()
    stack = [(root, False)]
    while stack:
        t, done = stack.pop()
        if done:
            order.append(t)
            continue
        if id(t) in seen:
            continue
        seen.add(id(t))
        if t._freed:
            raise RuntimeError("backward: this graph was already used by a backward pass and its "
                               "saved values were freed; pass retain_graph=True to the first backward")
        if t._node is None:
            leaves.append(t)
            continue
        stack.append((t, True))
        for p in reversed(t._parents):
            if id(p) not in seen:
                stack.append((p, False))
    return order, leaves


def derive(forward: Graph, wrt, also_positions=()):
    """The compiled backward graph of ``forward`` (cached by its structure) and
    the positions (inputs, then nodes) of the forward values it reads."""
    key = (forward.structure_key(), tuple(wrt), tuple(also_positions), backend_name())
    try:
        hit = _CACHE.get(key)
    except TypeError:  # an unhashable attribute: key by the printed graph
        key = (str(forward), key[1:])
        hit = _CACHE.get(key)
    if hit is not None:
        _CACHE.move_to_end(key)
        return hit
    bwd = autodiff.run(forward, wrt, [forward.nodes[i].out for i in also_positions])
    position = {v: i for i, v in enumerate(forward.inputs)}
    position.update({n.out: len(forward.inputs) + i for i, n in enumerate(forward.nodes)})
    entry = (compile_graph(bwd.graph, "backward"), tuple(position[v] for v in bwd.residuals))
    _CACHE[key] = entry
    if len(_CACHE) > _CACHE_SIZE:
        _CACHE.popitem(last=False)
    return entry


def _seed(root, gradient) -> np.ndarray:
    if gradient is None:
        return np.ones(root.shape, dtype=root.dtype)
    seed = np.asarray(getattr(gradient, "_data", gradient), dtype=root.dtype)
    if seed.shape != root.shape:
        raise ValueError(f"backward: gradient of shape {seed.shape} does not match the "
                         f"tensor's shape {root.shape}")
    return seed


def _deliver(t, g, handed: set) -> None:
    """Accumulate ``g`` into ``t.grad``. Plans return arrays their caller owns, so ``g``
    is stored as it is, unless this backward pass already handed the same array to
    another tensor (one gradient shared by two inputs): then each gets its own copy.
    (Eager backward runs outside any trace: ``_grad`` is the gradient itself.)"""
    if t._grad is not None:
        t._grad = t._grad + g
        return
    if id(g) in handed:
        g = g.copy()
    handed.add(id(g))
    t._grad = g


def backward(root, gradient=None, retain_graph: bool = False) -> None:
    if root._data is None:  # inside lucid.compile: the backward graph joins the trace
        from .tracing import TracingError, current
        tracer = current()
        if tracer is None:
            raise TracingError("backward: this tensor was traced by a compiled function; call "
                               "backward() on the compiled function's output instead")
        tracer.backward(root, gradient)
        return
    if not root.requires_grad:
        raise RuntimeError("backward: this tensor does not require grad (no input of the "
                           "computation that made it has requires_grad=True)")
    node = root._node
    if (type(node) is CallOutput and node.record.n_outputs == 1 and not root._freed
            and not root._retains_grad and all(p._node is None for p in root._parents)):
        # the whole graph is one call of a compiled function (``loss = step(x, y)``)
        handed: set = set()
        for p, g in node.record.backward([_seed(root, gradient)]):
            if p.requires_grad:
                _deliver(p, g, handed)
        if not retain_graph:
            root._freed = True
            root._node = root._parents = None
        return
    order, leaves = collect(root)
    seed = _seed(root, gradient)
    if any(isinstance(t._node, CallOutput) for t in order):
        _backward_by_record(root, seed, order, leaves)
    else:
        _backward_whole(root, seed, order, leaves)
    if not retain_graph:
        for t in order:
            if not t._parents:
                continue  # a constant: nothing saved to free
            t._freed = True
            t._node = t._parents = None


def _backward_whole(root, seed, order, leaves) -> None:
    """One backward graph for everything recorded (the eager path)."""
    wrt = [i for i, t in enumerate(leaves) if t.requires_grad]
    retained = [i for i, t in enumerate(order) if t._retains_grad]
    forward = Graph(tuple(t.value for t in leaves), tuple(t._node for t in order), (root.value,))
    compiled, residual_positions = derive(forward, wrt, retained)
    tensors = leaves + order
    grads = compiled([seed] + [tensors[i]._data for i in residual_positions])
    receivers = [leaves[i] for i in wrt] + [order[i] for i in retained]
    handed: set = set()
    for t, g in zip(receivers, grads):
        _deliver(t, g, handed)


def _node_grads(t, g):
    """Gradients of a primitive node's inputs, given the gradient ``g`` of its output."""
    node: Node = t._node
    parents = list(dict.fromkeys(t._parents))       # x*x reads x once
    values = [p.value for p in parents]
    wrt = [i for i, p in enumerate(parents) if p.requires_grad]
    forward = Graph(tuple(values), (node,), (node.out,))
    compiled, residual_positions = derive(forward, wrt)
    tensors = parents + [t]
    grads = compiled([g] + [tensors[i]._data for i in residual_positions])
    return [(parents[i], gi) for i, gi in zip(wrt, grads)]


def _backward_by_record(root, seed, order, leaves) -> None:
    """Reverse walk over primitive nodes and compiled calls (each call's backward graph
    runs once, when the cotangents of all its outputs are complete)."""
    cot: dict[int, np.ndarray] = {id(root): seed}
    handed: set = set()
    waiting: dict[int, list] = {}   # id(record) -> [outputs still to come, cotangents]
    for t in order:
        if isinstance(t._node, CallOutput):
            rec = t._node.record
            entry = waiting.setdefault(id(rec), [0, [None] * rec.n_outputs])
            entry[0] += 1

    def add(p, g):
        if p._node is None:
            if p.requires_grad:
                _deliver(p, g, handed)
            return
        cot[id(p)] = g if id(p) not in cot else cot[id(p)] + g

    for t in reversed(order):
        g = cot.pop(id(t), None)
        if t._retains_grad and g is not None:
            _deliver(t, g, handed)
        if isinstance(t._node, CallOutput):
            rec = t._node.record
            entry = waiting[id(rec)]
            entry[0] -= 1
            if g is not None:
                entry[1][t._node.index] = g
            if entry[0] == 0:
                for p, gp in rec.backward(entry[1]):
                    add(p, gp)
        elif g is not None and t._parents:
            for p, gp in _node_grads(t, g):
                add(p, gp)
