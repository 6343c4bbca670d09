"""``Tensor.backward``: collect the recorded calls, derive their backward graph with
the autodiff pass, compile it (same pipeline as every graph: simplify, fuse, native
kernels) and run it.

Recording is cheap: an eager call's result keeps one ``Record`` (its signature's
``Entry``, its operands, and the inner results its gradient reads); no IR exists yet.
A backward pass keys its graph by the entries and the wiring of the calls, so a
training loop expands the records into a primitive graph, derives and compiles its
backward once, and later passes only look the key up and feed the recorded arrays.

Outputs of ``lucid.compile``d functions carry a ``CallOutput`` record instead of a
primitive node: their backward graph was derived and compiled with the forward.
A graph that contains such records is differentiated record by record (so is one with
custom ``autograd.Function`` calls, ``lucid.autograd_function``).

In-place writes: every record keeps the clock of ``lucid.versions`` at which it was
made; ``collect`` resolves operands that a recorded in-place write gave a new history
since (``lucid.rebase``), and ``backward`` checks that the values the gradient reads
were not overwritten (``lucid.autograd_versions``).
"""
from __future__ import annotations

from collections import OrderedDict

import numpy as np

from lucid_ir import compile_times
from lucid_ir.graph import Graph, Node, Value
from lucid_ir.types import TensorType
from lucid_ir import pipeline

from . import versions
from .backend import backend_name
from .compiler import compile_graph

_CLOCK, _LAST_REBASE = versions.clock, versions.last_rebase

_CACHE: "OrderedDict[tuple, tuple]" = OrderedDict()
FREED_MESSAGE = ("backward: trying to backward through the graph a second time: this graph was "
                 "already used by a backward pass (or autograd.grad) and its saved values were "
                 "freed; pass retain_graph=True to the first one if you need to run it again")
_CACHE_SIZE = 256


class Record:
    """One eager call recorded for autograd (made by ``lucid.dispatch``): the signature's
    entry (its chain of ops, attributes and types), the call's operands (tensors and
    Python numbers) and the results of the inner steps its gradient reads."""

    __slots__ = ("entry", "operands", "saved", "clock")
    op = "record"

    def __init__(self, entry, operands, saved):
        self.entry, self.operands, self.saved = entry, operands, saved
        self.clock = _CLOCK[0]  # when it was recorded (see lucid.versions)


class CallOutput:
    """Output ``index`` of one call of a compiled function (see ``lucid.compiled``)."""

    op = "call"

    def __init__(self, record, index: int):
        self.record, self.index = record, index
        self.clock = record.clock


class _FreedIncarnation:
    """What a tensor rewritten in place links to once the graph that held its earlier
    incarnation was freed: reaching it is the second-backward error."""

    _rebased_at, _freed, _node, _parents, _previous, _snapshot_from, _current = (0, True, None, None,
                                                                                None, None, None)


FREED_INCARNATION = _FreedIncarnation()


def collect(root, *more):
    """The recorded tensors reachable from ``root`` (and ``more`` roots), in topological
    order, and the leaves."""
    order, leaves, seen = [], [], set()
    stack = [(t, False) for t in reversed((root,) + more)]
    rebased = _LAST_REBASE[0]   # a recorded in-place write happened: resolve operands
    while stack:
        t, done = stack.pop()
        if done:
            order.append(t)
            continue
        if id(t) in seen:
            continue
        seen.add(id(t))
        if t._freed:
            raise RuntimeError(FREED_MESSAGE)
        if t._node is None:
            leaves.append(t)
            continue
        stack.append((t, True))
        if rebased and t._node.clock < rebased:
            autograd_versions.resolve(t)
        for p in reversed(t._parents):
            if id(p) not in seen:
                stack.append((p, False))
    return order, leaves


def _structure(order, leaves) -> tuple:
    """What a backward graph depends on: each call's entry and where its operands come
    from (a leaf, an earlier call, or a number)."""
    pos = {id(t): i for i, t in enumerate(leaves)}
    n = len(leaves)
    for i, t in enumerate(order):
        pos[id(t)] = n + i
    return tuple((t._node.entry.uid, tuple([pos.get(id(o), -1) for o in t._node.operands]))
                 for t in order)


def expand(order, leaves):
    """The recorded calls as one primitive graph (no outputs yet), and where each of its
    values can be found: ``("t", i)`` tensor i of ``leaves + order``, ``("s", r, j)`` the
    j-th saved inner result of call r, ``("n", r, k)`` call r's number operand k."""
    from .dispatch import _TENSOR_TYPES
    value, sources, inputs, numbers, nodes = {}, {}, [], [], []
    for i, t in enumerate(leaves):
        value[id(t)] = v = t.value
        inputs.append(v)
        sources[v] = ("t", i)
    for r, t in enumerate(order):
        rec = t._node
        entry = rec.entry
        ins = []
        for k, o in enumerate(rec.operands):
            if type(o) in _TENSOR_TYPES:
                ins.append(value[id(o)])
            else:
                v = Value(TensorType((), entry.scalar_dtypes[k]))
                numbers.append(v)
                sources[v] = ("n", r, k)
                ins.append(v)
        saved = {k: j for j, k in enumerate(entry.saved)}
        outs, last = [], len(entry.steps) - 1
        for k, (op, attrs, wires, out_type) in enumerate(entry.steps):
            out = t.value if k == last else Value(out_type)
            nodes.append(Node(op, tuple([outs[w] if w < 0 else ins[w] for w in wires]), attrs, out))
            outs.append(out)
            if k in saved:
                sources[out] = ("s", r, saved[k])
        value[id(t)] = t.value
        sources[t.value] = ("t", len(leaves) + r)
    return Graph(tuple(inputs + numbers), tuple(nodes), ()), sources


def recorded_graph(root) -> Graph:
    """The primitive graph eager calls recorded for ``root`` (leaves first, then the
    numbers the calls took), as a backward pass would differentiate it."""
    order, leaves = collect(root)
    forward, _ = expand(order, leaves)
    return Graph(forward.inputs, forward.nodes, (root.value,))


def _derive(order, leaves, wrt, retained):
    forward, sources = expand(order, leaves)
    forward = Graph(forward.inputs, forward.nodes, (order[-1].value if order else leaves[0].value,))
    with compile_times.compilation("backward"):  # (LUCID_DEBUG: autodiff, then the pipeline)
        held = [v for v, where in sources.items() if where[0] != "s"]  # tensors and numbers
        bwd = pipeline.run(forward, pipeline.differentiate(wrt, [order[i].value for i in retained], held),
                           "backward").backward
        missing = [v for v in bwd.residuals if v not in sources]
        if missing:
            raise AssertionError(f"eager backward: the gradient reads {missing}, which no record kept")
        compiled = compile_graph(bwd.graph, "backward")
    return compiled, tuple(sources[v] for v in bwd.residuals)


def _run_backward(order, leaves, seed, retained=(), wrt=None):
    """Gradients of the leaves that require grad (or of the leaves at positions ``wrt``),
    then of ``retained`` calls' results, for the recorded calls ``order`` (the root last)
    seeded with ``seed``."""
    if wrt is None:
        wrt = tuple(i for i, t in enumerate(leaves) if t.requires_grad)
    structure = _structure(order, leaves) if order else tuple((t.shape, t.dtype) for t in leaves)
    key = (structure, wrt, tuple(retained), backend_name())
    hit = _CACHE.get(key)
    if hit is None:
        hit = _CACHE[key] = _derive(order, leaves, wrt, retained)
        if len(_CACHE) > _CACHE_SIZE:
            _CACHE.popitem(last=False)
    compiled, sources = hit
    tensors = leaves + order
    feed = [seed]
    for src in sources:
        if src[0] == "t":
            feed.append(tensors[src[1]]._data)
        elif src[0] == "s":
            feed.append(order[src[1]]._node.saved[src[2]])
        else:
            rec = order[src[1]]._node
            feed.append(np.array(rec.operands[src[2]], dtype=rec.entry.scalar_dtypes[src[2]]))
    return wrt, compiled(feed)


def _seed(root, gradient) -> np.ndarray:
    if gradient is None:
        return np.ones(root.shape, dtype=root.dtype)
    seed = np.asarray(getattr(gradient, "_data", gradient), dtype=root.dtype)
    if seed.shape != root.shape:
        raise ValueError(f"backward: gradient of shape {seed.shape} does not match the "
                         f"tensor's shape {root.shape}")
    return seed


def _hooked(t, g):
    """``g`` after ``t``'s hooks (``Tensor.register_hook``): each is called with the
    gradient as a tensor and may return a replacement."""
    from .autograd_api import run_hooks
    return run_hooks(t, g)


def _deliver(t, g, handed: set) -> None:
    """Accumulate ``g`` into ``t.grad`` (a leaf's hooks first). Plans return arrays their caller owns, so ``g``
    is stored as it is, unless this backward pass already handed the same array to
    another tensor (one gradient shared by two inputs): then each gets its own copy.
    (Eager backward runs outside any trace: ``_grad`` is the gradient itself.)"""
    if t._hooks and t._node is None:
        g = _hooked(t, g)
    if t._grad is not None:
        t._grad = t._grad + g
    else:
        if id(g) in handed:
            g = g.copy()
        handed.add(id(g))
        t._grad = g
    if t._post_accumulate_hooks:
        for hook in list(t._post_accumulate_hooks.values()):
            hook(t)


def backward(root, gradient=None, retain_graph: bool = False) -> None:
    if root._data is None:  # inside lucid.compile: the backward graph joins the trace
        from .tracing import TracingError, current
        tracer = current()
        if tracer is None:
            raise TracingError("backward: this tensor was traced by a compiled function; call "
                               "backward() on the compiled function's output instead")
        if any(t._hooks for t in tracer.arg_real + [t for t, _ in tracer.captured.values()]
               if t is not None):
            raise TracingError("backward: a tensor this compiled function reads has hooks "
                               "(register_hook), which a compiled backward cannot call; "
                               "remove them or run the function eagerly")
        tracer.backward(root, gradient)
        return
    if not root.requires_grad:
        raise RuntimeError("backward: this tensor does not require grad (no input of the "
                           "computation that made it has requires_grad=True)")
    node = root._node
    if (type(node) is CallOutput and node.record.n_outputs == 1 and not root._freed
            and not root._retains_grad and all(p._node is None for p in root._parents)):
        # the whole graph is one call of a compiled function (``loss = step(x, y)``)
        if autograd_versions.check([root], (root,)):   # a stale view regenerated
            return backward(root, gradient, retain_graph)
        handed: set = set()
        for p, g in node.record.backward([_seed(root, gradient)]):
            if p.requires_grad:
                _deliver(p, g, handed)
        if not retain_graph:
            free([root])
        return
    order, leaves = collect(root)
    while autograd_versions.check(order, (root,)):   # a stale view regenerated: again
        order, leaves = collect(root)
    seed = _seed(root, gradient)
    if any(isinstance(t._node, CallOutput) or t._hooks for t in order):
        _backward_by_record(root, seed, order)
    else:
        _backward_whole(root, seed, order, leaves)
    if not retain_graph:
        free(order)


def free(order) -> None:
    """Drop what the recorded calls ``order`` saved for backward (a second pass raises);
    ``_spent`` keeps the record's entry (or, for a compiled call's output, the call's
    name), so ``grad_fn`` still names the op."""
    for t in order:
        if not t._parents:
            continue  # a constant: nothing saved to free
        node = t._node
        if type(node) is Record:
            t._spent = node.entry
        else:  # a compiled function's call, or a custom Function's (autograd_function.py)
            t._spent = getattr(node.record, "name", "CompiledFunctionBackward")
            release = getattr(node.record, "release", None)
            if release is not None:
                release()
        t._freed = True
        t._node = t._parents = None
    for t in order:  # tensors rewritten in place (rebase.py) whose earlier incarnations this
        prev = t._previous  # graph held: drop the links and the copies of old values
        if prev is not None and prev._freed:
            t._previous = FREED_INCARNATION
        if t._snapshot_from is not None:
            t._data = np.broadcast_to(np.zeros((), t._data.dtype), t._data.shape)


def _backward_whole(root, seed, order, leaves) -> None:
    """One backward graph for everything recorded (the eager path)."""
    retained = [i for i, t in enumerate(order) if t._retains_grad]
    wrt, grads = _run_backward(order, leaves, seed, retained)
    receivers = [leaves[i] for i in wrt] + [order[i] for i in retained]
    handed: set = set()
    for t, g in zip(receivers, grads):
        _deliver(t, g, handed)


def _node_grads(t, g):
    """Gradients of one recorded call's tensor operands, given the gradient ``g`` of its
    result."""
    parents = list(dict.fromkeys(t._parents))       # x*x reads x once
    wrt, grads = _run_backward([t], parents, g)
    return [(parents[i], gi) for i, gi in zip(wrt, grads)]


def _backward_by_record(root, seed, order) -> None:
    """Backward node by node (compiled calls, or hooks on intermediates): ``.grad`` of
    the retained tensors and the leaves that require grad."""
    handed: set = set()

    def visit(t, g):
        if t._hooks:
            g = _hooked(t, g)
        if t._retains_grad:
            _deliver(t, g, handed)
        return g

    for p, g in reverse_walk([(root, seed)], order, visit):
        _deliver(p, g, handed)


def reverse_walk(seeds, order, visit=None):
    """Reverse walk over primitive nodes and compiled calls, seeded with ``(tensor,
    gradient)`` pairs; each call's backward graph runs once, when the cotangents of all
    its outputs are complete. ``visit(t, g)`` sees each recorded tensor's complete
    gradient and returns the one to pass on. Returns ``[(leaf, gradient)]`` for the
    leaves that require grad, each gradient complete (summed over all paths)."""
    cot: dict[int, np.ndarray] = {}
    at_leaves: dict[int, list] = {}
    waiting: dict[int, list] = {}   # id(record) -> [outputs still to come, cotangents]
    for t in order:
        if isinstance(t._node, CallOutput):
            rec = t._node.record
            entry = waiting.setdefault(id(rec), [0, [None] * rec.n_outputs])
            entry[0] += 1

    def add(p, g):
        if p._node is None:
            if p.requires_grad:
                hit = at_leaves.get(id(p))
                if hit is None:
                    at_leaves[id(p)] = [p, g]
                else:
                    hit[1] = hit[1] + g
            return
        cot[id(p)] = g if id(p) not in cot else cot[id(p)] + g

    for t, g in seeds:
        add(t, g)
    for t in reversed(order):
        g = cot.pop(id(t), None)
        if g is not None and visit is not None:
            g = visit(t, g)
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
    return [tuple(pg) for pg in at_leaves.values()]


# the user-facing autograd API (lucid.autograd.grad, the grad modes) lives in its own
# modules; it is re-exported here, as torch.autograd has it
from .grad_mode import (enable_grad, inference_mode, is_grad_enabled,  # noqa: E402,F401
                        is_inference_mode_enabled, no_grad, set_grad_enabled)
from .autograd_api import grad  # noqa: E402,F401
from . import autograd_versions  # noqa: E402
from .autograd_function import Function, FunctionCtx, once_differentiable  # noqa: E402,F401
