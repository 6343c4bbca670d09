"""Convolution layers: ``Conv1d/2d/3d`` and ``ConvTranspose1d/2d/3d``, as PyTorch's
(same arguments, attributes, parameter shapes, initialisation bounds and ``repr``).

Weights and biases start uniform in ``[-1/√fan_in, 1/√fan_in]`` -- PyTorch's
``kaiming_uniform_(a=√5)`` -- with ``fan_in = weight.shape[1] · kernel elements``.

>>> import lucid
>>> conv = Conv2d(3, 8, 3, padding=1, bias=False)
>>> conv
Conv2d(3, 8, kernel_size=(3, 3), stride=(1, 1), padding=(1, 1), bias=False)
>>> conv(lucid.zeros(2, 3, 5, 5)).shape, conv.weight.shape
((2, 8, 5, 5), (8, 3, 3, 3))
"""
from __future__ import annotations

import math

import numpy as np

from .. import random
from ..creation import get_default_dtype
from . import functional_conv as FC
from .module import Module
from .parameter import Parameter
from .window import as_tuple

_PADDING_MODES = ("zeros", "reflect", "replicate", "circular")


class _ConvNd(Module):
    """What every convolution layer shares: argument checks, parameters, ``repr``."""

    _d = 2
    _transposed = False

    def __init__(self, in_channels, out_channels, kernel_size, stride, padding, dilation, groups, bias,
                 padding_mode, output_padding=0, device=None, dtype=None):
        super().__init__()
        d, name = self._d, type(self).__name__
        if groups <= 0:
            raise ValueError("groups must be a positive integer")
        if in_channels % groups != 0:
            raise ValueError("in_channels must be divisible by groups")
        if out_channels % groups != 0:
            raise ValueError("out_channels must be divisible by groups")
        if isinstance(padding, str):
            if padding not in ("same", "valid"):
                raise ValueError(f"Invalid padding string {padding!r}, should be one of {{'same', 'valid'}}")
            if padding == "same" and any(s != 1 for s in as_tuple(name, "stride", stride, d)):
                raise ValueError("padding='same' is not supported for strided convolutions")
        if padding_mode not in _PADDING_MODES:
            raise ValueError(f"padding_mode must be one of {set(_PADDING_MODES)}, but got "
                             f"padding_mode='{padding_mode}'")
        self.in_channels, self.out_channels = int(in_channels), int(out_channels)
        self.kernel_size = as_tuple(name, "kernel_size", kernel_size, d)
        self.stride = as_tuple(name, "stride", stride, d)
        self.padding = padding if isinstance(padding, str) else as_tuple(name, "padding", padding, d)
        self.dilation = as_tuple(name, "dilation", dilation, d)
        self.transposed = self._transposed
        self.output_padding = as_tuple(name, "output_padding", output_padding, d)
        self.groups, self.padding_mode = int(groups), padding_mode
        dtype = str(dtype or get_default_dtype())
        if self._transposed:
            shape = (self.in_channels, self.out_channels // groups) + self.kernel_size
        else:
            shape = (self.out_channels, self.in_channels // groups) + self.kernel_size
        self.weight = Parameter(np.zeros(shape, dtype))
        self.bias = Parameter(np.zeros((self.out_channels,), dtype)) if bias else None
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Draw the weights again: PyTorch's ``kaiming_uniform_(a=√5)`` (uniform in
        ``±1/√fan_in``), then the bias in the same bounds, from the default generator."""
        fan_in = self.weight.shape[1] * int(np.prod(self.kernel_size))
        bound = 1.0 / math.sqrt(fan_in) if fan_in > 0 else 0.0
        rng = random.generator()
        w = self.weight._data
        w[...] = rng.uniform(-bound, bound, w.shape)
        if self.bias is not None:
            self.bias._data[...] = rng.uniform(-bound, bound, self.bias.shape)

    def extra_repr(self) -> str:
        s = (f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}"
             f", stride={self.stride}")
        if self.padding != (0,) * len(self.kernel_size):
            s += f", padding={self.padding}"
        if self.dilation != (1,) * len(self.dilation):
            s += f", dilation={self.dilation}"
        if self.output_padding != (0,) * len(self.output_padding):
            s += f", output_padding={self.output_padding}"
        if self.groups != 1:
            s += f", groups={self.groups}"
        if self.bias is None:
            s += ", bias=False"
        if self.padding_mode != "zeros":
            s += f", padding_mode={self.padding_mode}"
        return s


class _Conv(_ConvNd):
    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, dilation=1, groups=1,
                 bias=True, padding_mode="zeros", device=None, dtype=None):
        super().__init__(in_channels, out_channels, kernel_size, stride, padding, dilation, groups, bias,
                         padding_mode, 0, device, dtype)

    def forward(self, input):  # noqa: A002
        return FC._convnd(f"conv{self._d}d", self._d, input, self.weight, self.bias, self.stride,
                          self.padding, self.dilation, self.groups, self.padding_mode)


class Conv1d(_Conv):
    """1-D convolution layer over ``(N, C_in, L)``; see ``Conv2d``."""
    _d = 1


class Conv2d(_Conv):
    """2-D convolution layer over ``(N, C_in, H, W)``: ``weight`` ``(C_out, C_in/groups,
    kh, kw)``, ``bias`` ``(C_out,)``; ``padding`` an int, a pair, ``'valid'`` or
    ``'same'``; ``padding_mode`` zeros, reflect, replicate or circular."""
    _d = 2


class Conv3d(_Conv):
    """3-D convolution layer over ``(N, C_in, D, H, W)``; see ``Conv2d``."""
    _d = 3


class _ConvTranspose(_ConvNd):
    _transposed = True

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, output_padding=0,
                 groups=1, bias=True, dilation=1, padding_mode="zeros", device=None, dtype=None):
        if padding_mode != "zeros":
            raise ValueError(f'Only "zeros" padding mode is supported for {type(self).__name__}')
        super().__init__(in_channels, out_channels, kernel_size, stride, padding, dilation, groups, bias,
                         padding_mode, output_padding, device, dtype)

    def _output_padding(self, input, output_size):  # noqa: A002
        """The output padding that makes the output ``output_size`` (PyTorch's rule)."""
        if output_size is None:
            return self.output_padding
        d = self._d
        size = list(output_size)[-d:]
        if len(size) != d:
            raise ValueError(f"ConvTranspose{d}D: for {input.ndim}D input, output_size must have {d} or "
                             f"{d + 2} elements (got {len(output_size)})")
        pads = []
        for i in range(d):
            m = input.shape[input.ndim - d + i]
            least = ((m - 1) * self.stride[i] - 2 * self.padding[i]
                     + self.dilation[i] * (self.kernel_size[i] - 1) + 1)
            most = least + self.stride[i] - 1
            if not least <= size[i] <= most:
                raise ValueError(f"requested an output size of {size}, but valid sizes range from "
                                 f"{least} to {most} (for an input of {input.shape[-d:]})")
            pads.append(size[i] - least)
        return tuple(pads)

    def forward(self, input, output_size=None):  # noqa: A002
        output_padding = self._output_padding(input, output_size)
        return FC._conv_transposend(f"conv_transpose{self._d}d", self._d, input, self.weight, self.bias,
                                    self.stride, self.padding, output_padding, self.groups, self.dilation)


class ConvTranspose1d(_ConvTranspose):
    """1-D transposed convolution layer; see ``ConvTranspose2d``."""
    _d = 1


class ConvTranspose2d(_ConvTranspose):
    """2-D transposed convolution layer: ``weight`` ``(C_in, C_out/groups, kh, kw)``;
    ``forward(input, output_size=None)`` picks the output padding for a requested size."""
    _d = 2


class ConvTranspose3d(_ConvTranspose):
    """3-D transposed convolution layer; see ``ConvTranspose2d``."""
    _d = 3
