"""Stochastic gradient descent with momentum, dampening, Nesterov momentum, weight
decay and ``maximize`` (``torch.optim.SGD``'s rule), each parameter updated in place by
one fused native kernel.

>>> import lucid
>>> w = lucid.Tensor([1.0], requires_grad=True)
>>> (w * w).sum().backward()
>>> SGD([w], lr=0.1).step()
>>> w.tolist()
[0.800000011920929]
"""
from __future__ import annotations

from .optimizer import Optimizer
from .update import sgd_rule


class SGD(Optimizer):
    def __init__(self, params, lr: float = 1e-3, momentum: float = 0.0, dampening: float = 0.0,
                 weight_decay: float = 0.0, nesterov: bool = False, *, maximize: bool = False,
                 foreach=None, differentiable: bool = False, fused=None):
        super().__init__(params, dict(lr=lr, momentum=momentum, dampening=dampening,
                                      weight_decay=weight_decay, nesterov=nesterov, maximize=maximize,
                                      foreach=foreach, differentiable=differentiable, fused=fused))

    def _check_options(self, group):
        super()._check_options(group)
        if group["momentum"] < 0:
            raise ValueError(f"SGD: invalid momentum value: {group['momentum']}")
        if group["weight_decay"] < 0:
            raise ValueError(f"SGD: invalid weight_decay value: {group['weight_decay']}")
        if group["nesterov"] and (group["momentum"] <= 0 or group["dampening"] != 0):
            raise ValueError("SGD: Nesterov momentum requires a momentum and zero dampening")

    def group_structure(self, group):
        momentum = group["momentum"] != 0
        return momentum, momentum and bool(group["nesterov"]), bool(group["maximize"]), group["weight_decay"] != 0

    def rule(self, p, group):
        momentum, nesterov, _, decay = flags = self.group_structure(group)
        rule = sgd_rule(*flags)
        if not momentum:
            if decay:
                return rule, [], lambda: (group["lr"], group["weight_decay"])
            return rule, [], lambda: (group["lr"],)
        runtime = self._runtime.setdefault(p, {})
        if self.state[p].get("momentum_buffer") is None:
            runtime["started"] = False
        buf = self.buffer(p, "momentum_buffer")

        def scalars():
            # PyTorch starts the buffer at the first step's direction, undamped
            first = not runtime.get("started")
            runtime["started"] = True
            mu = group["momentum"]
            out = (group["lr"], group["weight_decay"]) if decay else (group["lr"],)
            out += (0.0, 1.0) if first else (mu, 1.0 - group["dampening"])
            return out + (mu,) if nesterov else out
        return rule, [buf], scalars
