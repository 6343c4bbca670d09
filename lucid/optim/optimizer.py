"""The optimiser base: holds the parameters and their per-parameter state."""
from __future__ import annotations

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
        for p in self.params:
            if p.grad is not None:
                self.update(p, p.grad.astype(p.dtype, copy=False), self.state.setdefault(id(p), {}))

    def update(self, p: Tensor, grad, state: dict) -> None:
        raise NotImplementedError
