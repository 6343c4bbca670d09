"""Resizing: ``interpolate`` (nearest, nearest-exact, linear/bilinear/trilinear, bicubic,
area),
``upsample*`` aliases, ``pixel_shuffle`` and ``pixel_unshuffle``.

* nearest modes gather through a static index table (the pools' machinery);
* the linear and bicubic modes are separable: one ``matmul`` per spatial axis against a
  static ``(out, in)`` interpolation matrix with PyTorch's source-coordinate rule (two
  or four non-zero weights per row), so values and gradients are PyTorch's to rounding;
* ``area`` is ``adaptive_avg_pool``.

>>> import lucid
>>> x = lucid.tensor([[[1.0, 3.0]]])
>>> interpolate(x, scale_factor=2, mode="nearest").tolist()
[[[1.0, 1.0, 3.0, 3.0]]]
>>> interpolate(x, size=3, mode="linear", align_corners=True).tolist()
[[[1.0, 2.0, 3.0]]]
"""
from __future__ import annotations

import math

import numpy as np

from .. import dispatch
from ..dispatch import as_tensor
from ..tensor import Tensor
from . import functional_pool as pool
from .steps import ChainCache, Steps

_MODES_D = {"linear": 1, "bilinear": 2, "trilinear": 3, "bicubic": 2}
_CHAINS = ChainCache()


def _scale_value(scale, size_in: int, size_out: int, dtype):
    """PyTorch's ``compute_scales_value``: 1/scale_factor when given, else in/out."""
    if scale is not None and scale > 0:
        return dtype(1.0 / scale)
    return dtype(size_in) / dtype(size_out)


def _nearest_rows(size_in, size_out, scale, exact: bool) -> np.ndarray:
    dst = np.arange(size_out)
    if size_out == size_in and not exact:
        src = dst
    elif size_out == 2 * size_in and not exact:
        src = dst >> 1
    else:
        s = _scale_value(scale, size_in, size_out, np.float32)
        pos = (dst.astype(np.float32) + np.float32(0.5 if exact else 0.0)) * s
        src = np.minimum(np.floor(pos).astype(np.int64), size_in - 1)
    return src.astype(np.int64).reshape(size_out, 1)


def _linear_matrix(size_in, size_out, scale, align_corners: bool) -> np.ndarray:
    """``(out, in)`` weights of linear interpolation along one axis (PyTorch's rule)."""
    a = np.zeros((size_out, size_in))
    if size_out == size_in:
        return np.eye(size_in)
    if align_corners:
        s = (size_in - 1) / (size_out - 1) if size_out > 1 else 0.0
    else:
        s = _scale_value(scale, size_in, size_out, float)
    for o in range(size_out):
        real = s * o if align_corners else max(s * (o + 0.5) - 0.5, 0.0)
        i0 = min(int(math.floor(real)), size_in - 1)
        lam = min(max(real - i0, 0.0), 1.0)
        i1 = i0 + (1 if i0 < size_in - 1 else 0)
        a[o, i0] += 1.0 - lam
        a[o, i1] += lam
    return a


def _cubic_matrix(size_in, size_out, scale, align_corners: bool, a: float = -0.75) -> np.ndarray:
    """``(out, in)`` weights of bicubic interpolation along one axis (PyTorch's cubic
    convolution with A = -0.75; taps outside the input read the edge element)."""
    m = np.zeros((size_out, size_in))
    if align_corners:
        s = (size_in - 1) / (size_out - 1) if size_out > 1 else 0.0
    else:
        s = _scale_value(scale, size_in, size_out, float)
    near = lambda x: ((a + 2) * x - (a + 3)) * x * x + 1  # noqa: E731  |x| <= 1
    far = lambda x: ((a * x - 5 * a) * x + 8 * a) * x - 4 * a  # noqa: E731  1 < |x| < 2
    for o in range(size_out):
        real = s * o if align_corners else s * (o + 0.5) - 0.5
        i = int(math.floor(real))
        t = real - i
        for k, w in zip(range(i - 1, i + 3), (far(t + 1), near(t), near(1 - t), far(2 - t))):
            m[o, min(max(k, 0), size_in - 1)] += w
    return m


def _separable(op: str, x: Tensor, matrices) -> Tensor:
    """``x`` with ``matrices[i]`` ``(out, in)`` applied along spatial axis i (one
    matmul per axis, the last axis first)."""
    key = (op, x.shape, x.dtype, tuple(m.tobytes() for m in matrices), tuple(m.shape for m in matrices))
    hit = _CHAINS.get(key)
    if hit is None:
        extra = tuple(Tensor._wrap(np.ascontiguousarray(m, dtype=x.dtype)) for m in matrices)
        s = Steps(1 + len(extra), [x.shape] + [m.shape for m in matrices])
        y, nd = s.operand(0), x.ndim
        for i in reversed(range(len(matrices))):
            axis = nd - len(matrices) + i
            perm = tuple(a for a in range(nd) if a != axis) + (axis,)
            moved = s.transpose(y, perm)
            rows = int(np.prod(moved.shape[:-1]))
            out = matrices[i].shape[0]
            flat = s.reshape(moved, (rows, moved.shape[-1]))
            z = s.emit("matmul", {"trans_b": True}, flat, s.operand(1 + i), shape=(rows, out))
            z = s.reshape(z, moved.shape[:-1] + (out,))
            y = s.transpose(z, tuple(int(p) for p in np.argsort(perm)))
        _CHAINS[key] = hit = (s.chain(op), extra)
    chain, extra = hit
    return dispatch.call(chain, (x, *extra))


def _output_size(x, d, size, scale_factor):
    if size is not None and scale_factor is not None:
        raise ValueError("interpolate: only one of size or scale_factor should be defined")
    if size is None and scale_factor is None:
        raise ValueError("interpolate: either size or scale_factor should be defined")
    spatial = x.shape[2:]
    if size is not None:
        out = (int(size),) * d if isinstance(size, (int, np.integer)) else tuple(int(v) for v in size)
        if len(out) != d:
            raise ValueError(f"interpolate: Input and output must have the same number of spatial "
                             f"dimensions, but got input with spatial dimensions of {list(spatial)} and "
                             f"output size of {list(out)}. Please provide input tensor in (N, C, d1, d2, "
                             f"...,dK) format and output size in (o1, o2, ...,oK) format.")
        return out, (None,) * d
    scales = (float(scale_factor),) * d if isinstance(scale_factor, (int, float)) else \
        tuple(float(v) for v in scale_factor)
    if len(scales) != d:
        raise ValueError(f"interpolate: scale_factor {scale_factor} must have {d} elements")
    return tuple(int(math.floor(float(m) * f)) for m, f in zip(spatial, scales)), scales


def interpolate(input, size=None, scale_factor=None, mode="nearest", align_corners=None,  # noqa: A002
                recompute_scale_factor=None, antialias=False):
    """Resize the spatial axes of ``(N, C, *spatial)`` to ``size`` or by
    ``scale_factor``, as ``torch.nn.functional.interpolate`` (modes ``nearest``,
    ``nearest-exact``, ``linear``, ``bilinear``, ``bicubic``, ``trilinear``, ``area``).

    >>> import lucid
    >>> interpolate(lucid.tensor([[[0.0, 1.0]]]), scale_factor=2, mode="linear").tolist()
    [[[0.0, 0.25, 0.75, 1.0]]]
    """
    x = as_tensor(input)
    d = x.ndim - 2
    if d not in (1, 2, 3):
        raise NotImplementedError(f"interpolate: Input Error: Only 3D, 4D and 5D input Tensors supported "
                                  f"(got {x.ndim}D) for the modes: nearest | linear | bilinear | bicubic "
                                  f"| trilinear | area | nearest-exact (got {mode})")
    if x.dtype not in ("float32", "float64"):
        raise RuntimeError(f"interpolate: expected a float32 or float64 input, got {x.dtype}")
    if mode in ("nearest", "nearest-exact", "area") and align_corners is not None:
        raise ValueError("align_corners option can only be set with the interpolating modes: "
                         "linear | bilinear | bicubic | trilinear")
    if antialias:
        raise NotImplementedError("interpolate: antialias=True is not supported")
    out, scales = _output_size(x, d, size, scale_factor)
    if any(o <= 0 for o in out):
        raise RuntimeError(f"interpolate: Input and output sizes should be greater than 0, but got "
                           f"input ({', '.join(map(str, x.shape[2:]))}) and output "
                           f"({', '.join(map(str, out))})")
    if recompute_scale_factor:
        scales = (None,) * d
    if mode in ("nearest", "nearest-exact"):
        def tables():
            return [_nearest_rows(m, o, sc, mode == "nearest-exact")
                    for m, o, sc in zip(x.shape[2:], out, scales)], None
        return pool._pool_call("interpolate_" + mode, x, (out, scales), tables, "sum")
    if mode == "area":
        return pool._adaptive_avg("interpolate_area", d, x, out)
    if mode not in _MODES_D:
        raise NotImplementedError(f"interpolate: unknown mode {mode!r}; expected one of nearest, "
                                  f"nearest-exact, linear, bilinear, bicubic, trilinear, area")
    if _MODES_D[mode] != d:
        raise NotImplementedError(f"Got {x.ndim}D input, but {mode} mode needs {_MODES_D[mode] + 2}D input")
    corners = bool(align_corners)
    make = _cubic_matrix if mode == "bicubic" else _linear_matrix
    matrices = [make(m, o, sc, corners) for m, o, sc in zip(x.shape[2:], out, scales)]
    return _separable("interpolate_" + mode, x, matrices)


def upsample(input, size=None, scale_factor=None, mode="nearest", align_corners=None):  # noqa: A002
    """Deprecated alias of ``interpolate`` (as PyTorch)."""
    return interpolate(input, size, scale_factor, mode, align_corners)


def upsample_nearest(input, size=None, scale_factor=None):  # noqa: A002
    return interpolate(input, size, scale_factor, mode="nearest")


def upsample_bilinear(input, size=None, scale_factor=None):  # noqa: A002
    return interpolate(input, size, scale_factor, mode="bilinear", align_corners=True)


# ---------------------------------------------------------------- pixel shuffle
def _shuffle(op: str, x: Tensor, r: int, up: bool) -> Tensor:
    if x.ndim < 3:
        raise RuntimeError(f"{op} expects input to have at least 3 dimensions, but got input with "
                           f"{x.ndim} dimension(s)")
    if r <= 0:
        raise RuntimeError(f"{op} expects a positive factor, but got {r}")
    *lead, c, h, w = x.shape
    b = int(np.prod(lead))
    if up:
        if c % (r * r):
            raise RuntimeError(f"pixel_shuffle expects its input's 'channel' dimension to be divisible by "
                               f"the square of upscale_factor, but input.size(-3)={c} is not divisible by "
                               f"{r * r}")
        shape6, perm, final = (b, c // (r * r), r, r, h, w), (0, 1, 4, 2, 5, 3), (*lead, c // (r * r), h * r, w * r)
    else:
        if h % r or w % r:
            raise RuntimeError(f"pixel_unshuffle expects height and width to be divisible by "
                               f"downscale_factor, but input.size(-2)={h} and input.size(-1)={w} with "
                               f"downscale_factor={r}")
        shape6, perm, final = (b, c, h // r, r, w // r, r), (0, 1, 3, 5, 2, 4), (*lead, c * r * r, h // r, w // r)
    key = (op, x.shape, r)
    chain = _CHAINS.get(key)
    if chain is None:
        s = Steps(1, [x.shape])
        y = s.reshape(s.operand(0), shape6)
        y = s.transpose(y, perm)
        s.emit("reshape", {"shape": final}, y, shape=final)
        chain = _CHAINS[key] = s.chain(op)
    return dispatch.call(chain, (x,))


def pixel_shuffle(input, upscale_factor: int):  # noqa: A002
    """``(*, C·r², H, W)`` -> ``(*, C, H·r, W·r)``, as ``torch.nn.functional.pixel_shuffle``.

    >>> import lucid
    >>> pixel_shuffle(lucid.arange(4.0).reshape(1, 4, 1, 1), 2).tolist()
    [[[[0.0, 1.0], [2.0, 3.0]]]]
    """
    return _shuffle("pixel_shuffle", as_tensor(input), int(upscale_factor), True)


def pixel_unshuffle(input, downscale_factor: int):  # noqa: A002
    """``(*, C, H·r, W·r)`` -> ``(*, C·r², H, W)``, the inverse of ``pixel_shuffle``."""
    return _shuffle("pixel_unshuffle", as_tensor(input), int(downscale_factor), False)


__all__ = ["interpolate", "upsample", "upsample_nearest", "upsample_bilinear", "pixel_shuffle",
           "pixel_unshuffle"]
