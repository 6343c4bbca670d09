"""Version counters, as PyTorch's: ``t._version`` counts the in-place writes into the
memory a tensor views, and ``backward()`` refuses a value its gradient reads that was
written after the call that saved it.

Tensors over the same memory (views: ``x[0]``, ``x.T``, ``x.reshape(...)``,
``x.detach()``) share one counter, found from the numpy array that owns the memory
(``array.base``); ``x.data`` has a counter of its own (as in PyTorch, writes through
it are hidden from autograd). A counter exists only once something wrote, so tensors
that are never written in place cost nothing.

Ordering uses one global clock that every in-place write advances. A recorded eager
call keeps the clock's value when it was made (``Record.clock``: one integer read per
recorded call, the only cost on the hot path); a counter keeps the clock of its last
write. A value saved by call ``r`` was overwritten exactly when its counter's clock is
later than ``r.clock``; the check runs at backward time only, and only over the calls
made before the last write.

>>> import lucid
>>> x = lucid.zeros(3)
>>> v = x[1:]
>>> x._version, v._version
(0, 0)
>>> _ = v.add_(1.0)
>>> x[0] = 5.0
>>> x._version, v._version, x.tolist()
(2, 2, [5.0, 1.0, 1.0])
>>> w = lucid.tensor([1.0, 2.0], requires_grad=True)
>>> y = w * x[1:]
>>> _ = x.mul_(2.0)
>>> y.sum().backward()
Traceback (most recent call last):
...
RuntimeError: one of the variables needed for gradient computation has been modified by an inplace operation: [lucid.FloatTensor [2]] is at version 3; expected version 2 instead. Hint: the operation that saved it is Mul; clone() the tensor before writing it in place, or write it after backward()
"""
from __future__ import annotations

import weakref

import numpy as np

#: the global clock: advanced by every in-place write (and by ``fence``)
clock = [0]
#: the clock of the latest in-place write that autograd recorded (0: none yet)
last_rebase = [0]
_HISTORY = 64      # write clocks a counter remembers (for "expected version M")


class Counter:
    """One memory's version (writes so far), the clock of its last write, the clocks of
    its recent writes, and those of the writes autograd recorded."""

    __slots__ = ("version", "last", "writes", "recorded")

    def __init__(self):
        self.version, self.last, self.writes, self.recorded = 0, 0, [], []

    def version_at(self, when: int) -> int:
        """The version this memory had at clock ``when`` (as far as the remembered
        writes tell)."""
        return self.version - sum(1 for w in self.writes if w > when)


_COUNTERS: dict = {}   # id(owning array) -> (weak reference to it, Counter)


def _owner(a: np.ndarray) -> np.ndarray:
    """The numpy array that owns ``a``'s memory (the last array along ``.base``, through
    the holder ``np.lib.stride_tricks.as_strided`` puts between a view and its array)."""
    while True:
        base = a.base
        if not isinstance(base, np.ndarray):
            base = getattr(base, "base", None)
            if not isinstance(base, np.ndarray):
                return a
        a = base


def _forget(key):
    return lambda _ref: _COUNTERS.pop(key, None)


def of_array(a) -> Counter | None:
    """The counter of the memory ``a`` views, or None if nothing ever wrote it."""
    if not _COUNTERS or not isinstance(a, np.ndarray):
        return None
    owner = _owner(a)
    hit = _COUNTERS.get(id(owner))
    return hit[1] if hit is not None and hit[0]() is owner else None


def of(t) -> Counter | None:
    """``t``'s counter (its own, or its memory's), or None if nothing ever wrote it."""
    own = t._vc
    return own if own is not None else of_array(t._data)


def for_write(t) -> Counter:
    """``t``'s counter, made if it has none yet."""
    own = t._vc
    if own is not None:
        return own
    owner = _owner(t._data)
    hit = _COUNTERS.get(id(owner))
    if hit is not None and hit[0]() is owner:
        return hit[1]
    counter = Counter()
    _COUNTERS[id(owner)] = (weakref.ref(owner, _forget(id(owner))), counter)
    return counter


def written_since(when: int) -> dict:
    """``{id(owning array): counter}`` for the memories written after clock ``when``."""
    out = {}
    for key, (ref, counter) in _COUNTERS.items():
        if counter.last > when and ref() is not None:
            out[key] = counter
    return out


def fence() -> int:
    """Advance the clock without a write: calls recorded from now on are told apart
    from those recorded before (an in-place op computes its result after one)."""
    clock[0] += 1
    return clock[0]


def bump(t, recorded: bool = False) -> int:
    """Count one in-place write into ``t``'s memory; its clock. ``recorded``: autograd
    recorded the write (the tensor's history changed with it)."""
    now = fence()
    counter = for_write(t)
    counter.version += 1
    counter.last = now
    writes = counter.writes
    writes.append(now)
    if len(writes) > _HISTORY:
        del writes[:len(writes) - _HISTORY]
    if recorded:
        counter.recorded.append(now)
        if len(counter.recorded) > 4 * _HISTORY:
            del counter.recorded[:2 * _HISTORY]
        last_rebase[0] = now
    return now


def version(t) -> int:
    """``t._version``: the in-place writes into its memory so far (0 for a tensor being
    traced by ``lucid.compile``)."""
    if t._data is None:
        return 0
    counter = of(t)
    return 0 if counter is None else counter.version


def own_counter(t) -> None:
    """Give ``t`` a counter of its own (``Tensor.data``: writes through it stay hidden
    from the tensors it shares memory with, as in PyTorch)."""
    t._vc = Counter()


# ---------------------------------------------------------------- the messages
_TYPE_NAMES = {"float32": "FloatTensor", "float64": "DoubleTensor", "int32": "IntTensor",
               "int64": "LongTensor", "bool": "BoolTensor"}


def describe(t) -> str:
    """``[lucid.FloatTensor [2, 3]]``, as PyTorch names a tensor in its messages."""
    return f"[lucid.{_TYPE_NAMES.get(str(t.dtype), 'Tensor')} {list(t.shape)}]"


def modified_error(t, counter: Counter, when: int, saved_by: str) -> RuntimeError:
    """PyTorch's error for a saved value written after the call ``saved_by`` saved it
    (at clock ``when``)."""
    return RuntimeError(
        f"one of the variables needed for gradient computation has been modified by an "
        f"inplace operation: {describe(t)} is at version {counter.version}; expected version "
        f"{counter.version_at(when)} instead. Hint: the operation that saved it is {saved_by}; "
        f"clone() the tensor before writing it in place, or write it after backward()")
