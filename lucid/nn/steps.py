"""``Steps``: write a ``dispatch.Chain`` with named results instead of relative wires.

Convolutions and pools are chains of dozens of primitive steps whose wiring depends on
the kernel size; this writer lets their code refer to any earlier result by the handle
``emit`` returned, and tracks each result's shape.

>>> s = Steps(n_operands=1, shapes=[(2, 3)])
>>> y = s.emit("transpose", {"perm": (1, 0)}, s.operand(0), shape=(3, 2))
>>> z = s.emit("reshape", {"shape": (6,)}, y, shape=(6,))
>>> chain = s.chain("demo")
>>> [(op, wires) for op, _, wires in chain.steps]
[('transpose', (0,)), ('reshape', (-1,))]
"""
from __future__ import annotations

from .. import dispatch


class Ref:
    """A value of the chain being written: operand ``k`` or the result of step ``k``."""

    __slots__ = ("kind", "k", "shape")

    def __init__(self, kind: str, k: int, shape):
        self.kind, self.k, self.shape = kind, k, tuple(shape)


class Steps:
    """Collects ``(op, attrs, refs)`` steps and turns them into a ``dispatch.Chain``."""

    def __init__(self, n_operands: int, shapes):
        self._operands = [Ref("operand", k, shape) for k, shape in zip(range(n_operands), shapes)]
        self._steps: list = []

    def operand(self, k: int) -> Ref:
        return self._operands[k]

    def emit(self, op: str, attrs: dict, *inputs: Ref, shape) -> Ref:
        self._steps.append((op, attrs, inputs))
        return Ref("step", len(self._steps) - 1, shape)

    # shorthands for the steps windows use most
    def reshape(self, x: Ref, shape) -> Ref:
        shape = tuple(int(d) for d in shape)
        return x if shape == x.shape else self.emit("reshape", {"shape": shape}, x, shape=shape)

    def transpose(self, x: Ref, perm) -> Ref:
        perm = tuple(perm)
        if perm == tuple(range(len(perm))):
            return x
        return self.emit("transpose", {"perm": perm}, x, shape=tuple(x.shape[p] for p in perm))

    def slice(self, x: Ref, starts, stops, steps) -> Ref:
        shape = tuple(len(range(*slice(a, e, s).indices(n))) for n, a, e, s in zip(x.shape, starts, stops, steps))
        return self.emit("slice", {"starts": tuple(starts), "stops": tuple(stops),
                                   "steps": tuple(steps)}, x, shape=shape)

    def concat(self, parts, axis: int) -> Ref:
        if len(parts) == 1:
            return parts[0]
        shape = list(parts[0].shape)
        shape[axis] = sum(p.shape[axis] for p in parts)
        return self.emit("concat", {"axis": axis}, *parts, shape=tuple(shape))

    def chain(self, name: str) -> dispatch.Chain:
        """The chain: the last step's result is the chain's."""
        wired = []
        for at, (op, attrs, inputs) in enumerate(self._steps):
            wires = tuple(r.k if r.kind == "operand" else r.k - at for r in inputs)
            wired.append((op, attrs, wires))
        return dispatch.Chain(wired, name=name)


class ChainCache(dict):
    """Chains made per signature (shapes and window arguments): a dict that starts over
    when it holds ``limit`` entries, so a stream of new shapes cannot grow it forever.

    >>> cache = ChainCache(limit=2)
    >>> cache["a"], cache["b"], cache["c"] = 1, 2, 3
    >>> sorted(cache)
    ['c']
    """

    def __init__(self, limit: int = 1024):
        super().__init__()
        self.limit = limit

    def __setitem__(self, key, value):
        if len(self) >= self.limit:
            self.clear()
        super().__setitem__(key, value)
