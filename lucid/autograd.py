"""``Tensor.backward``: collect the recorded forward graph, derive its backward graph
with the autodiff pass, and run that graph through the backend (the same execution
path as the forward ops). Backward graphs are cached by the forward graph's structure,
so a training loop derives (and compiles) each backward graph once.
"""
from __future__ import annotations

from collections import OrderedDict

import numpy as np

from lucid_ir.graph import Graph
from lucid_ir.passes import autodiff
from lucid_ir.printer import format_graph

from . import backend

_CACHE: "OrderedDict[str, tuple]" = OrderedDict()
_CACHE_SIZE = 256


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
    """The backward graph of ``forward`` (cached by its printed structure).

    ``also_positions`` are node indices whose outputs' gradients are wanted too.
    """
    key = format_graph(forward) + repr((tuple(wrt), tuple(also_positions)))
    hit = _CACHE.get(key)
    if hit is not None:
        _CACHE.move_to_end(key)
        return hit
    bwd = autodiff.run(forward, wrt, [forward.nodes[i].out for i in also_positions])
    # Residuals are named by their position in the forward graph, so the cached entry
    # can be reused with the values of a structurally identical graph.
    position = {v: i for i, v in enumerate(forward.inputs)}
    position.update({n.out: len(forward.inputs) + i for i, n in enumerate(forward.nodes)})
    entry = (bwd.graph, tuple(position[v] for v in bwd.residuals))
    _CACHE[key] = entry
    if len(_CACHE) > _CACHE_SIZE:
        _CACHE.popitem(last=False)
    return entry


def backward(root, gradient=None, retain_graph: bool = False) -> None:
    if not root.requires_grad:
        raise RuntimeError("backward: this tensor does not require grad (no input of the "
                           "computation that made it has requires_grad=True)")
    order, leaves = collect(root)
    if gradient is None:
        seed = np.ones(root.shape, dtype=root.dtype)
    else:
        seed = np.asarray(getattr(gradient, "_data", gradient), dtype=root.dtype)
        if seed.shape != root.shape:
            raise ValueError(f"backward: gradient of shape {seed.shape} does not match the "
                             f"tensor's shape {root.shape}")
    wrt = [i for i, t in enumerate(leaves) if t.requires_grad]
    retained = [i for i, t in enumerate(order) if t._retains_grad]
    forward = Graph(tuple(t.value for t in leaves), tuple(t._node for t in order), (root.value,))
    graph, residual_positions = derive(forward, wrt, retained)
    tensors = leaves + order
    arrays = [seed] + [tensors[i]._data for i in residual_positions]
    grads = backend.run_graph(graph, arrays)
    receivers = [leaves[i] for i in wrt] + [order[i] for i in retained]
    for t, g in zip(receivers, grads):
        t.grad = g.copy() if t.grad is None else t.grad + g
    if not retain_graph:
        for t in order:
            if not t._parents:
                continue  # a constant: nothing saved to free
            t._freed = True
            t._node = t._parents = None
