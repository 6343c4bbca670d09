"""What every loss shares: the ``reduction`` argument (with PyTorch's legacy
``size_average``/``reduce`` flags), the chain cache, and step lists written with
named wires.

A loss is one ``dispatch.Chain``; its steps are written here with *absolute* wires,
which read like the printed IR: an int ``k`` is operand k, the string ``"%j"`` is the
result of step j, and ``PREVIOUS`` the step before (for steps that end any loss, like
the reduction's; ``("%", -j)`` is the step j places back). ``wired`` turns them into the chain's relative wires.

>>> wired([("sub", {}, (0, 1)), ("mul", {}, ("%0", "%0"))])
[('sub', {}, (0, 1)), ('mul', {}, (-1, -1))]
>>> reduction_steps("sum", "l1_loss") == [("sum", {}, (PREVIOUS,))]
True
"""
from __future__ import annotations

import warnings

from .. import dispatch
from .functional import _chain

_REDUCTIONS = ("mean", "sum", "none")
#: the wire of the previous step's result (kept relative by ``wired``)
PREVIOUS = ("%", -1)


def wired(steps) -> list:
    """Steps with absolute wires (operand ``k``, step ``"%j"``) as chain steps (relative
    wires: ``-1`` is the previous step); ``("%", -j)`` becomes -j."""
    out = []
    for p, (op, attrs, wires) in enumerate(steps):
        rel = []
        for w in wires:
            if isinstance(w, tuple):     # ("%", -j), PREVIOUS: already relative
                rel.append(w[1])
            elif isinstance(w, str):
                rel.append(int(w[1:]) - p)
            else:
                rel.append(w)
        out.append((op, attrs, tuple(rel)))
    return out


def reduction_steps(reduction: str, op: str) -> list:
    """The steps that reduce the previous step's result as ``reduction`` says."""
    if reduction == "mean":
        return [("mean", {}, (PREVIOUS,))]
    if reduction == "sum":
        return [("sum", {}, (PREVIOUS,))]
    if reduction == "none":
        return []
    raise ValueError(f"{op}: reduction must be 'mean', 'sum' or 'none', got {reduction!r}")


def check_reduction(reduction, op: str, extra=()) -> str:
    if not (isinstance(reduction, str) and (reduction in _REDUCTIONS or reduction in extra)):
        allowed = ", ".join(repr(r) for r in (*_REDUCTIONS, *extra))
        raise ValueError(f"{op}: reduction must be one of {allowed}, got {reduction!r}")
    return reduction


def legacy_reduction(size_average, reduce, reduction: str) -> str:
    """PyTorch's deprecated ``size_average``/``reduce`` flags as a ``reduction`` (each
    None means True); without them, ``reduction`` itself."""
    if size_average is None and reduce is None:
        return reduction
    warnings.warn("size_average and reduce args will be deprecated, please use reduction='"
                  f"{_legacy(size_average, reduce)}' instead.", UserWarning, stacklevel=3)
    return _legacy(size_average, reduce)


def _legacy(size_average, reduce) -> str:
    size_average = True if size_average is None else size_average
    reduce = True if reduce is None else reduce
    return ("mean" if size_average else "sum") if reduce else "none"


def loss_chain(name: str, params, make) -> dispatch.Chain:
    """The chain of ``make()`` (absolute-wire steps) for these parameters, made once."""
    return _chain(name, params, lambda: wired(make()))
