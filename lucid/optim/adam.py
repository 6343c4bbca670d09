"""Adam and AdamW (Kingma & Ba; Loshchilov & Hutter), with PyTorch's defaults, bias
correction, ``amsgrad`` and ``maximize``; each parameter and its moments are updated in
place by one fused native kernel.

>>> import lucid
>>> w = lucid.Tensor([1.0, -3.0], requires_grad=True)
>>> (w * w).sum().backward()
>>> Adam([w], lr=0.01).step()   # the first step moves each weight by lr, against its gradient
>>> [round(v, 4) for v in w.tolist()]
[0.99, -2.99]
"""
from __future__ import annotations

from .optimizer import Optimizer
from .update import adam_rule


class Adam(Optimizer):
    decoupled = False  # AdamW: weight decay shrinks the weights instead of joining the gradient

    def __init__(self, params, lr: float = 1e-3, betas=(0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 0.0, amsgrad: bool = False, *, foreach=None,
                 maximize: bool = False, capturable: bool = False, differentiable: bool = False,
                 fused=None, decoupled_weight_decay: bool | None = None):
        defaults = dict(lr=lr, betas=tuple(betas), eps=eps, weight_decay=weight_decay, amsgrad=amsgrad,
                        maximize=maximize, foreach=foreach, capturable=capturable,
                        differentiable=differentiable, fused=fused,
                        decoupled_weight_decay=self.decoupled if decoupled_weight_decay is None
                        else bool(decoupled_weight_decay))
        super().__init__(params, defaults)

    def _check_options(self, group):
        super()._check_options(group)
        name = type(self).__name__
        for i, beta in enumerate(group["betas"]):
            if not 0.0 <= beta < 1.0:
                raise ValueError(f"{name}: invalid beta parameter at index {i}: {beta}")
        if group["eps"] < 0:
            raise ValueError(f"{name}: invalid epsilon value: {group['eps']}")
        if group["weight_decay"] < 0:
            raise ValueError(f"{name}: invalid weight_decay value: {group['weight_decay']}")

    def group_structure(self, group):
        decay = group["weight_decay"] != 0
        return (bool(group["amsgrad"]), bool(group["maximize"]), decay,
                decay and bool(group["decoupled_weight_decay"]))

    def rule(self, p, group):
        amsgrad, _, decay, decoupled = flags = self.group_structure(group)
        self.step_counter(p)
        names = ("exp_avg", "exp_avg_sq") + (("max_exp_avg_sq",) if amsgrad else ())
        buffers = [self.buffer(p, n) for n in names]

        def scalars():
            t = self.advance_step(p)
            lr, (b1, b2) = group["lr"], group["betas"]
            out = (lr / (1 - b1 ** t), (1 - b2 ** t) ** 0.5, group["eps"])
            out = (1.0 - b1, b2, 1.0 - b2) + out
            if decay:
                wd = group["weight_decay"]
                return (1.0 - lr * wd if decoupled else wd,) + out
            return out
        return adam_rule(*flags), buffers, scalars


class AdamW(Adam):
    """Adam with decoupled weight decay (``torch.optim.AdamW``: weight_decay 1e-2).

    >>> import lucid
    >>> w = lucid.Tensor([1.0], requires_grad=True)
    >>> w.grad = lucid.Tensor([0.0]).numpy()
    >>> AdamW([w], lr=0.1, weight_decay=0.5).step()   # no gradient: only the decay, w·(1 - lr·wd)
    >>> round(w.item(), 6)
    0.95
    """
    decoupled = True

    def __init__(self, params, lr: float = 1e-3, betas=(0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 1e-2, amsgrad: bool = False, **kw):
        super().__init__(params, lr, betas, eps, weight_decay, amsgrad, **kw)
