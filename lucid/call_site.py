"""The fast path of a compiled function's call: ``CallSite``.

``lucid.compile(fn)(*args)`` in general flattens the arguments, builds a signature key
of every tensor's shape, dtype and ``requires_grad``, looks the program up and checks
its guards (the captured tensors, ``.grad`` states, static values) before the plan runs.
A call site remembers the last positional call's argument pattern and program; a call
with the same pattern then checks, in Python, only what the plan cannot check: the
argument types, ``requires_grad`` flags, static argument values, grad mode, and the
program's guards that are not arrays. The shapes and dtypes of every array the plan
reads (arguments, captured tensors, existing gradients) are checked natively by the
plan's native program as it starts (``Plan.run_prepared``); when anything differs, the
site reports ``MISS`` having changed nothing, and the call takes the general path.

>>> import lucid, lucid.nn.functional as F
>>> w = lucid.randn(3, 4)
>>> f = lucid.compile(lambda x: F.relu(F.linear(x, w)))
>>> for _ in range(3):   # the plan builds its native program on its second call
...     y = f(lucid.randn(2, 4))
>>> f._site.program.calls_prepared > 0
True
"""
from __future__ import annotations

import operator

import numpy as np

from .grad_mode import is_grad_enabled
from .tensor import Tensor

#: what a call site or ``Program.call_prepared`` returns when the call is not theirs
MISS = object()
_REQUIRES = operator.attrgetter("requires_grad")


class CallSite:
    """A positional call pattern (per argument: a tensor and its ``requires_grad``, a
    numpy array, or a static value of one type) and the program it selected (``key``:
    its signature key)."""

    def __init__(self, program, key, args: tuple, grad_enabled: bool):
        self.program, self.key = program, key
        self.grad_enabled = grad_enabled
        self.n_args = len(args)
        pattern = []
        for a in args:
            t = type(a)
            if t is Tensor:
                pattern.append((Tensor, a.requires_grad))
            elif t is np.ndarray:
                pattern.append((np.ndarray, None))
            else:
                pattern.append((t, a))
        self.pattern = tuple(pattern)
        # all arguments tensors: the pattern is two tuples, compared at once
        self.types = tuple(kind for kind, _ in pattern)
        self.requires = tuple(want for _, want in pattern) if set(self.types) == {Tensor} else None
        #: the call (``run(args)``): the program's closure for all-tensor calls it runs
        #: with its plan alone (``Program.plain_call``), else this site's ``__call__``
        plain = (program.plain_call(self.types, self.requires, grad_enabled)
                 if self.requires is not None else None)
        self.run = plain if plain is not None else self.__call__

    def __call__(self, args: tuple):
        """The program's result for ``args``, or ``MISS`` (nothing done)."""
        if is_grad_enabled() != self.grad_enabled:
            return MISS
        if self.requires is not None:
            if tuple(map(type, args)) != self.types or tuple(map(_REQUIRES, args)) != self.requires:
                return MISS
            return self.program.call_prepared(list(args))
        if len(args) != self.n_args:
            return MISS
        dynamic = []
        for a, (kind, want) in zip(args, self.pattern):
            if type(a) is not kind:
                return MISS
            if kind is Tensor:
                if a.requires_grad != want:
                    return MISS
                dynamic.append(a)
            elif kind is np.ndarray:
                dynamic.append(Tensor(a))
            elif a != want:
                return MISS
        return self.program.call_prepared(dynamic)
