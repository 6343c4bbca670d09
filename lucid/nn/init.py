"""``lucid.nn.init``: filling tensors in place with initial values, as ``torch.nn.init``.

Every function writes into the tensor's own array under ``no_grad`` (so parameters
can be initialised), draws from ``generator=`` or the default generator
(``lucid.manual_seed``), and returns the tensor.

>>> import lucid, lucid.nn as nn
>>> w = nn.Parameter(lucid.empty(256, 128))
>>> _ = nn.init.kaiming_uniform_(w, a=5 ** 0.5, generator=lucid.Generator().manual_seed(0))
>>> bound = 1 / 128 ** 0.5; bool((w.abs() <= bound).all()), w.requires_grad
(True, True)
>>> nn.init.calculate_gain("relu") == 2 ** 0.5, nn.init.calculate_gain("leaky_relu", 0.2)
(True, 1.3867504905630728)
"""
from __future__ import annotations

import math
import warnings

import numpy as np

from .. import versions
from ..grad_mode import no_grad
from ..sampling import _rng

__all__ = ["calculate_gain", "uniform_", "normal_", "trunc_normal_", "constant_", "ones_", "zeros_",
           "eye_", "dirac_", "xavier_uniform_", "xavier_normal_", "kaiming_uniform_",
           "kaiming_normal_", "orthogonal_"]

_LINEAR_GAIN = ("linear", "conv1d", "conv2d", "conv3d", "conv_transpose1d", "conv_transpose2d",
                "conv_transpose3d", "sigmoid")


def calculate_gain(nonlinearity: str, param=None) -> float:
    """The recommended gain for ``nonlinearity`` (``"relu"``: √2; ``"leaky_relu"``:
    √(2 / (1 + slope²)) with ``param`` the slope, 0.01 by default; ``"tanh"``: 5/3;
    ``"selu"``: 3/4; linear and convolutions and sigmoid: 1)."""
    if nonlinearity in _LINEAR_GAIN:
        return 1
    if nonlinearity == "tanh":
        return 5.0 / 3
    if nonlinearity == "relu":
        return math.sqrt(2.0)
    if nonlinearity == "leaky_relu":
        if param is None:
            slope = 0.01
        elif not isinstance(param, bool) and isinstance(param, (int, float)):
            slope = param
        else:
            raise ValueError(f"negative_slope {param} not a valid number")
        return math.sqrt(2.0 / (1 + slope ** 2))
    if nonlinearity == "selu":
        return 3.0 / 4
    raise ValueError(f"Unsupported nonlinearity {nonlinearity}")


def _calculate_fan_in_and_fan_out(tensor) -> tuple[int, int]:
    """``(fan_in, fan_out)``: ``shape[1]`` and ``shape[0]`` times the receptive field
    (the product of ``shape[2:]``)."""
    shape = tuple(tensor.shape)
    if len(shape) < 2:
        raise ValueError("Fan in and fan out can not be computed for tensor with fewer than 2 dimensions")
    receptive = 1
    for s in shape[2:]:
        receptive *= s
    return shape[1] * receptive, shape[0] * receptive


def _calculate_correct_fan(tensor, mode: str) -> int:
    mode = mode.lower()
    if mode not in ("fan_in", "fan_out"):
        raise ValueError(f"Mode {mode} not supported, please use one of ['fan_in', 'fan_out']")
    fan_in, fan_out = _calculate_fan_in_and_fan_out(tensor)
    return fan_in if mode == "fan_in" else fan_out


def _write(tensor, values) -> None:
    """Store ``values`` (an array or a number) into ``tensor``'s array."""
    data = tensor._concrete("nn.init")
    data[...] = np.asarray(values).astype(data.dtype, copy=False)
    versions.bump(tensor)   # an in-place write (PyTorch's init runs under no_grad, and counts it)


def uniform_(tensor, a: float = 0.0, b: float = 1.0, generator=None):
    """Samples uniform on ``[a, b)``."""
    with no_grad():
        return tensor.uniform_(a, b, generator=generator)


def normal_(tensor, mean: float = 0.0, std: float = 1.0, generator=None):
    """Samples of ``N(mean, std²)``."""
    with no_grad():
        return tensor.normal_(mean, std, generator=generator)


def trunc_normal_(tensor, mean: float = 0.0, std: float = 1.0, a: float = -2.0, b: float = 2.0,
                  generator=None):
    """Samples of ``N(mean, std²)`` conditioned on lying in ``[a, b]`` (rejection
    sampling: exact, whatever the interval)."""
    if not a < b:
        raise ValueError(f"trunc_normal_: expected a < b, got a={a}, b={b}")
    if std <= 0:
        _write(tensor, np.clip(mean, a, b))
        return tensor
    rng = _rng("trunc_normal_", generator)
    cdf = lambda x: 0.5 * (1 + math.erf((x - mean) / (std * math.sqrt(2))))  # noqa: E731
    accept = cdf(b) - cdf(a)
    if accept < 1e-6:
        raise ValueError(f"trunc_normal_: the interval [{a}, {b}] holds a negligible part of "
                         f"N({mean}, {std}²); move it closer to the mean")
    n = int(np.prod(tensor.shape))
    kept = np.empty(0)
    while kept.size < n:
        draw = rng.normal(mean, std, int((n - kept.size) / accept * 1.1) + 16)
        kept = np.concatenate([kept, draw[(draw >= a) & (draw <= b)]])
    with no_grad():
        _write(tensor, kept[:n].reshape(tensor.shape))
    return tensor


def constant_(tensor, val: float):
    """Every element ``val``."""
    with no_grad():
        _write(tensor, val)
    return tensor


def ones_(tensor):
    return constant_(tensor, 1.0)


def zeros_(tensor):
    return constant_(tensor, 0.0)


def eye_(tensor):
    """The identity matrix (a 2-D tensor; ones on the diagonal of a rectangle)."""
    if tensor.ndim != 2:
        raise ValueError("Only tensors with 2 dimensions are supported")
    with no_grad():
        _write(tensor, np.eye(*tensor.shape))
    return tensor


def dirac_(tensor, groups: int = 1):
    """The Dirac delta (a 3-, 4- or 5-D convolution weight that passes its input through)."""
    dims = tensor.ndim
    if dims not in (3, 4, 5):
        raise ValueError("Only tensors with 3, 4, or 5 dimensions are supported")
    sizes = tensor.shape
    if sizes[0] % groups != 0:
        raise ValueError("dim 0 must be divisible by groups")
    out_per_group = sizes[0] // groups
    min_dim = min(out_per_group, sizes[1])
    values = np.zeros(sizes)
    centre = tuple(s // 2 for s in sizes[2:])
    for g in range(groups):
        for d in range(min_dim):
            values[(g * out_per_group + d, d) + centre] = 1
    with no_grad():
        _write(tensor, values)
    return tensor


def xavier_uniform_(tensor, gain: float = 1.0, generator=None):
    """Glorot uniform: ``U(-a, a)`` with ``a = gain · √(6 / (fan_in + fan_out))``."""
    fan_in, fan_out = _calculate_fan_in_and_fan_out(tensor)
    std = gain * math.sqrt(2.0 / float(fan_in + fan_out))
    return uniform_(tensor, -math.sqrt(3.0) * std, math.sqrt(3.0) * std, generator)


def xavier_normal_(tensor, gain: float = 1.0, generator=None):
    """Glorot normal: ``N(0, std²)`` with ``std = gain · √(2 / (fan_in + fan_out))``."""
    fan_in, fan_out = _calculate_fan_in_and_fan_out(tensor)
    return normal_(tensor, 0.0, gain * math.sqrt(2.0 / float(fan_in + fan_out)), generator)


def _kaiming_std(tensor, a, mode, nonlinearity) -> float | None:
    if 0 in tuple(tensor.shape):
        warnings.warn("Initializing zero-element tensors is a no-op", stacklevel=3)
        return None
    return calculate_gain(nonlinearity, a) / math.sqrt(_calculate_correct_fan(tensor, mode))


def kaiming_uniform_(tensor, a: float = 0, mode: str = "fan_in", nonlinearity: str = "leaky_relu",
                     generator=None):
    """He uniform: ``U(-bound, bound)``, ``bound = gain · √(3 / fan)``."""
    std = _kaiming_std(tensor, a, mode, nonlinearity)
    if std is None:
        return tensor
    return uniform_(tensor, -math.sqrt(3.0) * std, math.sqrt(3.0) * std, generator)


def kaiming_normal_(tensor, a: float = 0, mode: str = "fan_in", nonlinearity: str = "leaky_relu",
                    generator=None):
    """He normal: ``N(0, std²)``, ``std = gain / √fan``."""
    std = _kaiming_std(tensor, a, mode, nonlinearity)
    if std is None:
        return tensor
    return normal_(tensor, 0.0, std, generator)


def orthogonal_(tensor, gain: float = 1, generator=None):
    """A (semi-)orthogonal matrix (the trailing dimensions flattened), times ``gain``."""
    if tensor.ndim < 2:
        raise ValueError("Only tensors with 2 or more dimensions are supported")
    n = int(np.prod(tensor.shape))
    if n == 0:
        return tensor
    rows = tensor.shape[0]
    cols = n // rows
    flat = _rng("orthogonal_", generator).standard_normal((rows, cols))
    if rows < cols:
        flat = flat.T
    q, r = np.linalg.qr(flat)
    q = q * np.sign(np.diag(r))
    if rows < cols:
        q = q.T
    with no_grad():
        _write(tensor, gain * q.reshape(tensor.shape))
    return tensor
