"""The optimiser base: holds the parameters and their per-parameter state.

``step()`` runs eagerly (one fused native kernel per parameter, ``update``) or, inside
a function being compiled by ``lucid.compile``, adds the same update to the traced
graph (``traced_update``): the compiled training step then writes the parameters and
the optimiser's state in place at every call, and reads the learning rate (and other
values that change from step to step) at every call, so a schedule never retraces.
"""
from __future__ import annotations

import numpy as np

from .. import dispatch, tracing
from ..grad_mode import no_grad
from ..tensor import Tensor


class Optimizer:
    def __init__(self, params, lr: float):
        self.params = list(params)
        if not self.params:
            raise ValueError(f"{type(self).__name__}: got an empty parameter list")
        for i, p in enumerate(self.params):
            if not isinstance(p, Tensor) or not p.requires_grad or not p.is_leaf:
                raise TypeError(f"{type(self).__name__}: parameter {i} is not a leaf tensor "
                                f"that requires grad")
        if lr < 0:
            raise ValueError(f"{type(self).__name__}: learning rate must be >= 0, got {lr}")
        self.lr = float(lr)
        self.state: dict[int, dict] = {}

    def zero_grad(self) -> None:
        for p in self.params:
            p.grad = None

    def step(self) -> None:
        tracer = tracing.current()
        for p in self.params:
            grad = p.grad
            if grad is None:
                continue
            state = self.state.setdefault(id(p), {})
            if tracer is None:
                self.update(p, grad.astype(p.dtype, copy=False), state)
                continue
            with no_grad():
                self.traced_update(tracer, p, grad, state)

    def rule(self, p: Tensor, state: dict):
        """``(InPlaceRule, state tensors, scalars)`` of ``p``'s update: the rule updates
        ``p`` and the state tensors in place; ``scalars()`` gives this step's run-time
        scalars (and advances the state's step counters)."""
        raise NotImplementedError

    def structure(self):
        """What decides which rule ``rule`` picks (a compiled step retraces when it changes)."""
        return None

    def update(self, p: Tensor, grad: np.ndarray, state: dict) -> None:
        """Update ``p`` (and ``state``) in place, eagerly: one fused native kernel."""
        rule, buffers, scalars = self.rule(p, state)
        rule([p._data] + [b._data for b in buffers], [grad], scalars(), state)

    def traced_update(self, tracer, p: Tensor, grad: Tensor, state: dict) -> None:
        """The same update inside a trace (the same rule: the same rounding as eager)."""
        tracer.static(self.structure)
        rule, buffers, scalars = self.rule(p, state)
        rule.trace(tracer, [p] + buffers, [dispatch.cast(grad, p.dtype)], scalars)

    @staticmethod
    def buffer(p: Tensor, state: dict, name: str) -> Tensor:
        """The state tensor ``name`` of ``p`` (zeros like ``p``, made on first use)."""
        buf = state.get(name)
        if buf is None:
            buf = state[name] = Tensor(np.zeros_like(p._data))
        return buf
