"""Adam (Kingma & Ba), with PyTorch's defaults and bias correction."""
from __future__ import annotations

import numpy as np

from .optimizer import Optimizer


class Adam(Optimizer):
    def __init__(self, params, lr: float = 1e-3, betas=(0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 0.0):
        super().__init__(params, lr)
        b1, b2 = betas
        if not (0 <= b1 < 1 and 0 <= b2 < 1):
            raise ValueError(f"Adam: betas must lie in [0, 1), got {betas}")
        self.b1, self.b2, self.eps, self.weight_decay = float(b1), float(b2), float(eps), float(weight_decay)

    def update(self, p, grad, state):
        if self.weight_decay:
            grad = grad + self.weight_decay * p._data
        if not state:
            state.update(step=0, m=np.zeros_like(p._data), v=np.zeros_like(p._data))
        state["step"] += 1
        t, m, v = state["step"], state["m"], state["v"]
        m *= self.b1
        m += (1 - self.b1) * grad
        v *= self.b2
        v += (1 - self.b2) * grad * grad
        step = self.lr / (1 - self.b1 ** t)
        denom = np.sqrt(v / (1 - self.b2 ** t)) + self.eps
        p._data -= (step * m / denom).astype(p.dtype, copy=False)
