"""Stochastic gradient descent with momentum and weight decay (PyTorch's rule), each
parameter updated in place by one fused native kernel.

>>> import lucid
>>> w = lucid.Tensor([1.0], requires_grad=True)
>>> (w * w).sum().backward()
>>> SGD([w], lr=0.1).step()
>>> w.tolist()
[0.800000011920929]
"""
from __future__ import annotations

from .optimizer import Optimizer
from .update import SGD_MOMENTUM, SGD_PLAIN


class SGD(Optimizer):
    def __init__(self, params, lr: float = 1e-3, momentum: float = 0.0, weight_decay: float = 0.0,
                 dampening: float = 0.0, nesterov: bool = False):
        super().__init__(params, lr)
        if nesterov and (momentum <= 0 or dampening != 0):
            raise ValueError("SGD: nesterov needs momentum > 0 and no dampening")
        self.momentum, self.weight_decay = float(momentum), float(weight_decay)
        self.dampening, self.nesterov = float(dampening), bool(nesterov)

    def structure(self):
        return bool(self.momentum)

    def rule(self, p, state):
        if not self.momentum:
            return SGD_PLAIN, [], lambda: (self.lr, self.weight_decay)
        buf = self.buffer(p, state, "momentum")
        return SGD_MOMENTUM, [buf], lambda: (self.lr, self.weight_decay, *self._momentum_scalars(state),
                                             self.momentum, float(self.nesterov))

    def _momentum_scalars(self, state) -> tuple:
        """(decay, grad_scale) of the momentum buffer at this step; PyTorch starts the
        buffer at the first step's direction, undamped."""
        first = not state.get("started")
        state["started"] = True
        return (0.0, 1.0) if first else (self.momentum, 1.0 - self.dampening)
