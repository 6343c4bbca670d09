"""Normalisation modules: ``LayerNorm``, ``RMSNorm``, ``GroupNorm``, ``BatchNorm1d``,
``BatchNorm2d`` (PyTorch's arguments, initial values, buffers and ``repr``).

>>> import lucid
>>> import lucid.nn as nn
>>> bn = nn.BatchNorm1d(3)
>>> bn
BatchNorm1d(3, eps=1e-05, momentum=0.1, affine=True, bias=True, track_running_stats=True)
>>> list(bn.state_dict())
['weight', 'bias', 'running_mean', 'running_var', 'num_batches_tracked']
>>> _ = bn(lucid.randn(4, 3)); int(bn.num_batches_tracked.item())
1
"""
from __future__ import annotations

import numpy as np

from .. import dtypes, tracing
from ..tensor import Tensor
from . import functional as F
from .module import Module
from .parameter import Parameter


def _dtype(dtype) -> str:
    return str(dtypes.default_float() if dtype is None else dtypes.as_dtype(dtype))


def _filled(value: float, shape, dtype, as_parameter: bool = True):
    data = np.full(shape, value, _dtype(dtype))
    return Parameter(data) if as_parameter else Tensor._wrap(data)


def _shape(normalized_shape) -> tuple:
    if isinstance(normalized_shape, (int, np.integer)):
        return (int(normalized_shape),)
    return tuple(int(d) for d in normalized_shape)


class LayerNorm(Module):
    """``F.layer_norm`` over the last dimensions ``normalized_shape``; weight ones and
    bias zeros of that shape (``elementwise_affine``, ``bias``)."""

    def __init__(self, normalized_shape, eps: float = 1e-5, elementwise_affine: bool = True,
                 bias: bool = True, device=None, dtype=None):
        super().__init__()
        self.normalized_shape = _shape(normalized_shape)
        self.eps, self.elementwise_affine = eps, elementwise_affine
        self.weight = _filled(1.0, self.normalized_shape, dtype) if elementwise_affine else None
        self.bias = _filled(0.0, self.normalized_shape, dtype) if elementwise_affine and bias else None

    def forward(self, input):  # noqa: A002
        return F.layer_norm(input, self.normalized_shape, self.weight, self.bias, self.eps)

    def extra_repr(self) -> str:
        return (f"{self.normalized_shape}, eps={self.eps}, elementwise_affine={self.elementwise_affine}, "
                f"bias={self.bias is not None}")


class RMSNorm(Module):
    """``F.rms_norm`` over the last dimensions ``normalized_shape``; weight ones."""

    def __init__(self, normalized_shape, eps: float | None = None, elementwise_affine: bool = True,
                 device=None, dtype=None):
        super().__init__()
        self.normalized_shape = _shape(normalized_shape)
        self.eps, self.elementwise_affine = eps, elementwise_affine
        self.weight = _filled(1.0, self.normalized_shape, dtype) if elementwise_affine else None

    def forward(self, x):
        return F.rms_norm(x, self.normalized_shape, self.weight, self.eps)

    def extra_repr(self) -> str:
        return f"{self.normalized_shape}, eps={self.eps}, elementwise_affine={self.elementwise_affine}"


class GroupNorm(Module):
    """``F.group_norm`` with ``num_groups`` groups of ``num_channels`` channels."""

    def __init__(self, num_groups: int, num_channels: int, eps: float = 1e-5, affine: bool = True,
                 device=None, dtype=None, *, bias: bool = True):
        super().__init__()
        if num_groups <= 0 or num_channels % num_groups:
            raise ValueError("GroupNorm: num_channels must be divisible by num_groups "
                             f"(got num_channels={num_channels}, num_groups={num_groups})")
        self.num_groups, self.num_channels, self.eps, self.affine = num_groups, num_channels, eps, affine
        self.weight = _filled(1.0, (num_channels,), dtype) if affine else None
        self.bias = _filled(0.0, (num_channels,), dtype) if affine and bias else None

    def forward(self, input):  # noqa: A002
        return F.group_norm(input, self.num_groups, self.weight, self.bias, self.eps)

    def extra_repr(self) -> str:
        return (f"{self.num_groups}, {self.num_channels}, eps={self.eps}, affine={self.affine}, "
                f"bias={self.bias is not None}")


class _BatchNorm(Module):
    """Batch normalisation per channel; running statistics as buffers (``momentum``
    None: a cumulative average over ``num_batches_tracked`` batches)."""

    _ranks: tuple = ()

    def __init__(self, num_features: int, eps: float = 1e-5, momentum: float | None = 0.1,
                 affine: bool = True, track_running_stats: bool = True, device=None, dtype=None, *,
                 bias: bool = True):
        super().__init__()
        self.num_features, self.eps, self.momentum = num_features, eps, momentum
        self.affine, self.track_running_stats = affine, track_running_stats
        self.weight = _filled(1.0, (num_features,), dtype) if affine else None
        self.bias = _filled(0.0, (num_features,), dtype) if affine and bias else None
        if track_running_stats:
            self.register_buffer("running_mean", _filled(0.0, (num_features,), dtype, False))
            self.register_buffer("running_var", _filled(1.0, (num_features,), dtype, False))
            self.register_buffer("num_batches_tracked", Tensor._wrap(np.array(0, np.int64)))
        else:
            for name in ("running_mean", "running_var", "num_batches_tracked"):
                self.register_buffer(name, None)

    def reset_running_stats(self) -> None:
        if self.track_running_stats:
            self.running_mean._data[...] = 0.0
            self.running_var._data[...] = 1.0
            self.num_batches_tracked._data[...] = 0

    def forward(self, input):  # noqa: A002
        if input.ndim not in self._ranks:
            want = " or ".join(f"{r}D" for r in self._ranks)
            raise ValueError(f"{type(self).__name__}: expected {want} input (got {input.ndim}D input "
                             f"of shape {tuple(input.shape)})")
        factor = 0.0 if self.momentum is None else self.momentum
        if self.training and self.track_running_stats and self.num_batches_tracked is not None:
            self.num_batches_tracked.add_(1)
            if self.momentum is None:
                factor = self._cumulative_factor()
        training = self.training or (self.running_mean is None and self.running_var is None)
        use_stats = not self.training or self.track_running_stats
        return F.batch_norm(input, self.running_mean if use_stats else None,
                            self.running_var if use_stats else None, self.weight, self.bias,
                            training, factor, self.eps)

    def _cumulative_factor(self):
        """``1 / num_batches_tracked``: a number eagerly; inside ``lucid.compile`` a traced
        tensor (the count changes at every call of the compiled function)."""
        if tracing.current() is None:
            return 1.0 / float(self.num_batches_tracked.item())
        return 1.0 / self.num_batches_tracked.to(self.running_mean.dtype)

    def extra_repr(self) -> str:
        return (f"{self.num_features}, eps={self.eps}, momentum={self.momentum}, affine={self.affine}, "
                f"bias={self.bias is not None}, track_running_stats={self.track_running_stats}")


class BatchNorm1d(_BatchNorm):
    """Over ``(N, C)`` or ``(N, C, L)`` inputs."""
    _ranks = (2, 3)


class BatchNorm2d(_BatchNorm):
    """Over ``(N, C, H, W)`` inputs."""
    _ranks = (4,)
