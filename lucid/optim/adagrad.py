"""Adagrad (Duchi et al.), as ``torch.optim.Adagrad``: ``lr_decay``,
``initial_accumulator_value``, ``eps``, ``weight_decay``, ``maximize``; one fused
native kernel per parameter.

>>> import lucid
>>> w = lucid.Tensor([1.0], requires_grad=True)
>>> (w * w).sum().backward()                 # the first step is lr·g/|g| = lr
>>> Adagrad([w], lr=0.1).step()
>>> round(w.item(), 4)
0.9
"""
from __future__ import annotations

from .optimizer import Optimizer
from .update import adagrad_rule


class Adagrad(Optimizer):
    def __init__(self, params, lr: float = 1e-2, lr_decay: float = 0.0, weight_decay: float = 0.0,
                 initial_accumulator_value: float = 0.0, eps: float = 1e-10, foreach=None, *,
                 maximize: bool = False, differentiable: bool = False, fused=None):
        super().__init__(params, dict(lr=lr, lr_decay=lr_decay, eps=eps, weight_decay=weight_decay,
                                      initial_accumulator_value=initial_accumulator_value,
                                      foreach=foreach, maximize=maximize, differentiable=differentiable,
                                      fused=fused))

    def _check_options(self, group):
        super()._check_options(group)
        for key in ("lr_decay", "weight_decay", "initial_accumulator_value", "eps"):
            if group[key] < 0:
                raise ValueError(f"Adagrad: invalid {key} value: {group[key]}")

        for group in self.param_groups:  # PyTorch makes the state up front
            for p in group["params"]:
                self._init_state(p)

    def _init_state(self, p):
        """As PyTorch: the accumulator starts at the constructor's
        ``initial_accumulator_value``, whatever a group says."""
        self.step_counter(p)
        self.buffer(p, "sum", self.defaults["initial_accumulator_value"])

    def group_structure(self, group):
        return bool(group["maximize"]), group["weight_decay"] != 0

    def rule(self, p, group):
        self._init_state(p)
        flags = self.group_structure(group)

        def scalars():
            t = self.advance_step(p)
            out = (group["lr"] / (1 + (t - 1) * group["lr_decay"]), group["eps"])
            return (group["weight_decay"],) + out if flags[1] else out
        return adagrad_rule(*flags), [self.state[p]["sum"]], scalars
