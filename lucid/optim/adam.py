"""Adam (Kingma & Ba), with PyTorch's defaults and bias correction; each parameter and
its two moments are updated in place by one fused native kernel.

>>> import lucid
>>> w = lucid.Tensor([1.0, -3.0], requires_grad=True)
>>> (w * w).sum().backward()
>>> Adam([w], lr=0.01).step()   # the first step moves each weight by lr, against its gradient
>>> [round(v, 4) for v in w.tolist()]
[0.99, -2.99]
"""
from __future__ import annotations

import numpy as np

from .optimizer import Optimizer
from .update import ADAM


class Adam(Optimizer):
    def __init__(self, params, lr: float = 1e-3, betas=(0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 0.0):
        super().__init__(params, lr)
        b1, b2 = betas
        if not (0 <= b1 < 1 and 0 <= b2 < 1):
            raise ValueError(f"Adam: betas must lie in [0, 1), got {betas}")
        self.b1, self.b2, self.eps, self.weight_decay = float(b1), float(b2), float(eps), float(weight_decay)

    def update(self, p, grad, state):
        if not state:
            state.update(step=0, m=np.zeros_like(p._data), v=np.zeros_like(p._data))
        state["step"] += 1
        t = state["step"]
        ADAM([p._data, state["m"], state["v"]], [grad],
             [self.weight_decay, self.b1, self.b2, self.lr / (1 - self.b1 ** t),
              1.0 / (1 - self.b2 ** t), self.eps], state)
