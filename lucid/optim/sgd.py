"""Stochastic gradient descent with momentum and weight decay (PyTorch's rule).

>>> import lucid
>>> w = lucid.Tensor([1.0], requires_grad=True)
>>> (w * w).sum().backward()
>>> SGD([w], lr=0.1).step()
>>> w.tolist()
[0.800000011920929]
"""
from __future__ import annotations

import numpy as np

from .optimizer import Optimizer


class SGD(Optimizer):
    def __init__(self, params, lr: float = 1e-3, momentum: float = 0.0, weight_decay: float = 0.0,
                 dampening: float = 0.0, nesterov: bool = False):
        super().__init__(params, lr)
        if nesterov and (momentum <= 0 or dampening != 0):
            raise ValueError("SGD: nesterov needs momentum > 0 and no dampening")
        self.momentum, self.weight_decay = float(momentum), float(weight_decay)
        self.dampening, self.nesterov = float(dampening), bool(nesterov)

    def update(self, p, grad, state):
        d = grad + self.weight_decay * p._data if self.weight_decay else grad
        if self.momentum:
            buf = state.get("momentum")
            if buf is None:
                buf = state["momentum"] = np.array(d, copy=True)
            else:
                buf *= self.momentum
                buf += (1 - self.dampening) * d
            d = d + self.momentum * buf if self.nesterov else buf
        p._data -= (self.lr * d).astype(p.dtype, copy=False)
