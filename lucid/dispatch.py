"""Applying one primitive op to tensors, eagerly.

The op is type-checked by its shape rule (a clear error before any native code runs),
executed by the backend, and, when gradients are enabled and an input requires them,
recorded as a graph node linking the output to its input tensors.
"""
from __future__ import annotations

from lucid_ir.builder import make_node
from lucid_ir.graph import Node, Value
from lucid_ir.opnames import COMPARISON
from lucid_ir.types import promote

from . import backend, tracing
from .grad_mode import is_grad_enabled


class _Prepared:
    """What one eager signature needs, computed once: the checked attributes and output
    types of each step, and the executable that runs the chain."""

    __slots__ = ("ops", "attrs", "types", "run")

    def __init__(self, nodes):
        self.ops = [n.op for n in nodes]
        self.attrs = [n.attrs for n in nodes]
        self.types = [n.out.type for n in nodes]
        self.run = backend.chain_executable(nodes)


_PREPARED: dict = {}
_PREPARED_LIMIT = 8192


def _prepare(steps, externals, wiring):
    """Check a chain through the op shape rules (the clear errors come from here)."""
    nodes = []
    for (op, _, attrs), wires in zip(steps, wiring):
        values = [nodes[-1].out if w < 0 else externals[w].value for w in wires]
        nodes.append(make_node(op, values, attrs))
    return _Prepared(nodes)


def apply_chain(steps):
    """Apply a chain of ops eagerly as one executable (``F.linear``'s matmul and bias add
    run as one GEMM with its epilogue). ``steps`` are ``(op, inputs, attrs)``; an input
    ``None`` means the previous step's result.

    Each signature (ops, attributes, input shapes and dtypes, wiring) is checked and
    planned once; later calls are a dict lookup and the kernel call. Nodes are recorded
    for autograd only when an input requires grad; the intermediate results of a chain
    hold no data (no gradient rule of these chains reads them).
    """
    from .tensor import Tensor
    if tracing.current() is not None:
        prev = None
        for op, inputs, attrs in steps:
            prev = tracing.current().apply(op, [prev if t is None else t for t in inputs], attrs)
        return prev
    prepared, externals, wiring, arrays = prepare_chain(steps)
    out = prepared.run(arrays)
    if not externals:  # a constant: keep its node so recorded graphs show the number
        node = Node(prepared.ops[0], (), prepared.attrs[0], Value(prepared.types[0]))
        return Tensor._from_node(out, node, None)
    if not (is_grad_enabled() and any(t.requires_grad for t in externals)):
        return Tensor._wrap(out)
    result = None
    for k, (wires, step) in enumerate(zip(wiring, steps)):
        parents = [result if w < 0 else externals[w] for w in wires]
        node = Node(prepared.ops[k], tuple(p.value for p in parents), prepared.attrs[k],
                    Value(prepared.types[k]))
        result = Tensor._from_node(out if k == len(steps) - 1 else None, node, parents)
    return result


def prepare_chain(steps):
    """The prepared executable of a chain's signature (checked and planned on first
    sight), with the chain's external input tensors, its wiring and their arrays."""
    externals, wiring = [], []
    for _, inputs, _ in steps:
        wires = []
        for t in inputs:
            if t is None:
                wires.append(-1)
                continue
            for k, e in enumerate(externals):
                if e is t:
                    break
            else:
                k = len(externals)
                externals.append(t)
            wires.append(k)
        wiring.append(tuple(wires))
    arrays = [t._data for t in externals]
    try:
        key = (backend.backend_name(), tuple((op, _attrs_key(a) if op == "constant" else tuple(a.items()))
                                             for op, _, a in steps),
               tuple(wiring), tuple((a.shape, a.dtype) for a in arrays))
        prepared = _PREPARED.get(key)
    except TypeError:  # unhashable attributes (a list of axes): plan without caching
        key, prepared = None, None
    if prepared is None:
        prepared = _prepare(steps, externals, wiring)
        if key is not None:
            if len(_PREPARED) >= _PREPARED_LIMIT:
                _PREPARED.clear()
            _PREPARED[key] = prepared
    return prepared, externals, wiring, arrays


def _attrs_key(attrs: dict) -> tuple:
    """A constant's attributes as part of a cache key: floats by their bits (0.0 and
    -0.0 are different constants, though equal as numbers). Only constants carry float
    attributes, so other ops keep the plain (cheaper) key."""
    return tuple((k, v.hex() if type(v) is float else v) for k, v in attrs.items())


def apply(op: str, *inputs, **attrs):
    """Apply one primitive op to tensors (see ``apply_chain``)."""
    return apply_chain(((op, inputs, attrs),))


def as_tensor(x, like=None):
    """A tensor from ``x``. A Python number next to a tensor ``like`` becomes a
    ``constant`` node of ``like``'s dtype (so ``x * 2`` stays float32 and the graph
    shows the number)."""
    from .tensor import Tensor
    if isinstance(x, Tensor):
        return x
    if like is not None and isinstance(x, (int, float)) and not isinstance(x, bool):
        return apply("constant", value=float(x), shape=(), dtype=like.dtype)
    return Tensor(x)


def cast(t, dtype: str):
    return t if t.dtype == dtype else apply("cast", t, dtype=dtype)


def binary(op: str, a, b):
    """Apply a binary op, promoting mixed float32/float64 operands to float64.
    Comparisons give bool in the IR; tensors here are still float, so their result
    is cast back to the operands' dtype (1.0/0.0) in the same chain (one kernel)."""
    from .tensor import Tensor
    if not isinstance(a, Tensor):
        a = as_tensor(a, like=b)
    if not isinstance(b, Tensor):
        b = as_tensor(b, like=a)
    dtype = promote(a.dtype, b.dtype)
    a, b = cast(a, dtype), cast(b, dtype)
    if op in COMPARISON:  # one chain: no bool tensor is ever made here
        return apply_chain(((op, (a, b), {}), ("cast", (None,), {"dtype": dtype})))
    return apply(op, a, b)
