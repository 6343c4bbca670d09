"""RMSprop (Hinton), as ``torch.optim.RMSprop``: ``alpha``, ``eps``, ``centered``,
``momentum``, ``weight_decay``, ``maximize``; one fused native kernel per parameter.

>>> import lucid
>>> w = lucid.Tensor([1.0], requires_grad=True)
>>> (w * w).sum().backward()                 # gradient 2: the first step is lr·2/√(0.01·4)
>>> RMSprop([w], lr=0.01).step()
>>> round(w.item(), 4)
0.9
"""
from __future__ import annotations

from .optimizer import Optimizer
from .update import rmsprop_rule


class RMSprop(Optimizer):
    def __init__(self, params, lr: float = 1e-2, alpha: float = 0.99, eps: float = 1e-8,
                 weight_decay: float = 0.0, momentum: float = 0.0, centered: bool = False,
                 capturable: bool = False, foreach=None, maximize: bool = False,
                 differentiable: bool = False):
        super().__init__(params, dict(lr=lr, momentum=momentum, alpha=alpha, eps=eps, centered=centered,
                                      weight_decay=weight_decay, capturable=capturable, foreach=foreach,
                                      maximize=maximize, differentiable=differentiable))

    def _check_options(self, group):
        super()._check_options(group)
        for key in ("eps", "momentum", "weight_decay", "alpha"):
            if group[key] < 0:
                raise ValueError(f"RMSprop: invalid {key} value: {group[key]}")

    def group_structure(self, group):
        return bool(group["centered"]), group["momentum"] > 0, bool(group["maximize"]), group["weight_decay"] != 0

    def rule(self, p, group):
        centered, momentum, _, decay = flags = self.group_structure(group)
        self.step_counter(p)
        state = {n: self.buffer(p, n) for n in ("square_avg",) + ("momentum_buffer",) * momentum
                 + ("grad_avg",) * centered}  # made in PyTorch's order; the kernel's order:
        buffers = [state[n] for n in ("square_avg", "grad_avg", "momentum_buffer") if n in state]

        def scalars():
            self.advance_step(p)
            alpha = group["alpha"]
            out = (alpha, 1.0 - alpha, group["eps"], group["lr"]) + ((group["momentum"],) if momentum else ())
            return (group["weight_decay"],) + out if decay else out
        return rmsprop_rule(*flags), buffers, scalars
