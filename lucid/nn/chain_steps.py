"""Writing ``dispatch.Chain`` step lists by name instead of by relative wire.

A chain step names its inputs by position (``k >= 0``: operand k; ``-j``: the result of
the step j places back). ``Steps`` lets a function write its formula as ordinary calls
that return references, and turns them into those wires; ``cached_chain`` makes each
chain once per parameter set, so every call of a signature reuses its kernel.

>>> s = Steps(dtype="float64")
>>> x = s.arg(0)
>>> y = s("mul", x, s("sigmoid", x))          # silu
>>> [(op, wires) for op, _, wires in s.steps]
[('sigmoid', (0,)), ('mul', (0, -1))]
>>> chain = cached_chain("silu_doc", (), lambda s: s("mul", s.arg(0), s("sigmoid", s.arg(0))))
>>> chain is cached_chain("silu_doc", (), lambda s: None), chain.n_operands
(True, 1)
"""
from __future__ import annotations

from .. import dispatch


class Ref:
    """The result of one step of a ``Steps`` list (its absolute position)."""

    __slots__ = ("index",)

    def __init__(self, index: int):
        self.index = index


class Steps:
    """A step list under construction. ``s(op, *inputs, **attrs)`` appends a step and
    returns a reference to its result; an input is ``s.arg(k)`` (operand k), a ``Ref``
    or a Python number (a ``constant`` step of ``dtype``)."""

    def __init__(self, dtype: str = "float32"):
        self.steps: list = []
        self.dtype = dtype

    @staticmethod
    def arg(k: int) -> int:
        return k

    def const(self, value: float) -> Ref:
        return self("constant", value=float(value), shape=(), dtype=self.dtype)

    def _wire(self, x) -> int:
        if isinstance(x, Ref):
            return x.index - len(self.steps)
        if isinstance(x, bool) or not isinstance(x, (int, float)):
            raise TypeError(f"Steps: an input must be an operand index, a Ref or a number, got {x!r}")
        if isinstance(x, int):
            return x
        return self._wire(self.const(x))

    def __call__(self, op: str, *inputs, **attrs) -> Ref:
        wires = []
        for x in inputs:  # constants are emitted first, then every wire is measured from here
            wires.append(self.const(x) if isinstance(x, float) else x)
        n = len(self.steps)
        self.steps.append((op, attrs, tuple(w.index - n if isinstance(w, Ref) else self._wire(w)
                                            for w in wires)))
        return Ref(n)


_CHAINS: dict = dispatch.ChainCache()


class ChainMemo:
    """A function's chains by the *signature* of its calls, so a repeated call skips the
    argument checks, casts and chain building (every function that checks its arguments
    in Python uses one; ``dispatch.call``'s own table then finds the kernels).

    ``key(*parts)``: a tensor part is its (shape, dtype), None stays None, anything else
    is itself; None when a part is unhashable (the call then takes the checked path).
    ``get(key)`` is the chain kept for ``key`` (None: not seen, or ``key`` is None);
    ``keep(key, chain)`` keeps it and returns it. The table is cleared when it reaches
    ``limit`` entries (a program calling with ever new shapes does not grow it forever).

    >>> import lucid
    >>> memo = ChainMemo()
    >>> k = memo.key(lucid.zeros(2, 3), (3,), None)
    >>> k
    (((2, 3), dtype('float32')), (3,), None)
    >>> memo.get(k) is None, memo.keep(k, "chain"), memo.get(k)
    (True, 'chain', 'chain')
    >>> memo.key([1, 2]) is None    # unhashable
    True
    """

    __slots__ = ("_table",)

    def __init__(self, limit: int = 4096):
        self._table: dict = dispatch.ChainCache(limit)

    @staticmethod
    def key(*parts):
        out = []
        for p in parts:
            if type(p) in dispatch._TENSOR_TYPES:
                d = p._data
                if d is None:
                    return None
                p = (d.shape, d.dtype)
            out.append(p)
        key = tuple(out)
        try:
            hash(key)
        except TypeError:
            return None
        return key

    def get(self, key):
        return None if key is None else self._table.get(key)

    def keep(self, key, chain):
        if key is not None:
            self._table[key] = chain
        return chain


def make_chain(name: str, build, dtype: str = "float32") -> dispatch.Chain:
    """The chain ``build(Steps(dtype))`` writes (its last step is the result), made now
    (for callers that keep their chains themselves)."""
    s = Steps(dtype)
    build(s)
    return dispatch.Chain(s.steps, name=name)


def cached_chain(name: str, params, build, dtype: str = "float32") -> dispatch.Chain:
    """``make_chain``'s chain, made once for ``(name, params, dtype)``."""
    key = (name, params, dtype)
    chain = _CHAINS.get(key)
    if chain is None:
        chain = _CHAINS[key] = make_chain(name, build, dtype)
    return chain
