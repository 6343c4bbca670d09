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

    def _scalars(self, state) -> tuple:
        """(lr / (1 - b1^t), 1 / (1 - b2^t)) for this step t (counted in ``state``)."""
        t = state["step"] = state.get("step", 0) + 1
        return self.lr / (1 - self.b1 ** t), 1.0 / (1 - self.b2 ** t)

    def rule(self, p, state):
        def scalars():
            step_size, inv_bc2 = self._scalars(state)
            return self.weight_decay, self.b1, self.b2, step_size, inv_bc2, self.eps
        return ADAM, [self.buffer(p, state, "m"), self.buffer(p, state, "v")], scalars
