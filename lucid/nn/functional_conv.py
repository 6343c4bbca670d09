"""Convolutions: ``conv1d/2d/3d``, ``conv_transpose1d/2d/3d``, ``unfold`` and ``fold``.

A convolution is one eager call (one chain, one signature entry): the input is viewed
channels-last and padded (``embed`` into zeros), each kernel tap is a strided ``slice``
of it, the taps are concatenated into the im2col matrix ``(N·out positions,
taps·C/groups)``, and each group is
ONE ``matmul`` against its weights, the bias added in the GEMM's epilogue. Gradients
come from autodiff of those primitives (slices become embeds, the matmul two matmuls).

That matrix is never written: fusion recognises the matmul whose operand is a concat
of strided slices of one tensor (``lucid_ir.passes.gather_operand``) and the GEMM packs
the operand straight from the padded input through two offset tables (an implicit
GEMM: ``lucid_codegen.gemm.gather``), in eager and compiled mode; the weight gradient's
GEMM reads the same gather (autodiff saves the padded input, not the patches), and the
input gradient's col2im becomes a gathered GEMM over the stride-spread output gradient
where that moves less data (``lucid_ir.passes.col2im``).

A transposed convolution is the convolution of the input spread out by the stride
(zeros between its elements) with the flipped, transposed kernel.

>>> import lucid
>>> x = lucid.arange(5.0).reshape(1, 1, 5)
>>> w = lucid.tensor([[[1.0, 0.0, -1.0]]])
>>> conv1d(x, w, padding=1).tolist()
[[[-1.0, -2.0, -2.0, -2.0, 3.0]]]
"""
from __future__ import annotations

import numpy as np

from .. import dispatch
from ..dispatch import as_tensor
from ..tensor import Tensor
from .steps import ChainCache, Ref, Steps
from .window import as_tuple, conv_out_size, tap_offsets

_CHAINS = ChainCache()
_PAD_MODES = ("zeros", "reflect", "replicate", "circular")


def _dtype_of(op, x, weight, bias):
    if x.dtype not in ("float32", "float64"):
        raise RuntimeError(f"{op}: expected a float32 or float64 input, got {x.dtype}")
    for name, t in (("weight", weight), ("bias", bias)):
        if t is not None and t.dtype != x.dtype:
            raise RuntimeError(f"{op}: input type ({x.dtype}) and {name} type ({t.dtype}) should be the same")


def _pad(s: Steps, x: Ref, pads, mode: str, first: int | None = None) -> Ref:
    """``x`` padded by ``(left, right)`` pairs on the axes ``first, first+1, ...`` (the
    trailing axes by default); ``mode`` zeros: one ``embed``; reflect, replicate,
    circular: slices and concats."""
    first = len(x.shape) - len(pads) if first is None else first
    if all(a == 0 and b == 0 for a, b in pads):
        return x
    if mode == "zeros":
        before = {first + i: p for i, p in enumerate(pads)}
        shape = tuple(m + sum(before.get(k, (0, 0))) for k, m in enumerate(x.shape))
        starts = tuple(before.get(k, (0, 0))[0] for k in range(len(shape)))
        return s.emit("embed", {"shape": shape, "starts": starts,
                                "stops": tuple(a + m for a, m in zip(starts, x.shape)),
                                "steps": (1,) * len(shape)}, x, shape=shape)
    for i, (a, b) in enumerate(pads):
        axis = first + i
        n = x.shape[axis]
        parts = [_edge(s, x, axis, n, a, mode, left=True), x, _edge(s, x, axis, n, b, mode, left=False)]
        x = s.concat([p for p in parts if p is not None], axis)
    return x


def _edge(s: Steps, x: Ref, axis: int, n: int, p: int, mode: str, left: bool):
    """The ``p`` values a non-zero padding mode puts before (``left``) or after ``x``."""
    if p == 0:
        return None
    if mode == "reflect":
        start, stop, step = (p, 0, -1) if left else (n - 2, n - 2 - p, -1)
    elif mode == "circular":
        start, stop, step = (n - p, n, 1) if left else (0, p, 1)
    else:  # replicate: the edge element, repeated
        at = 0 if left else n - 1
        one = _axis_slice(s, x, axis, at, at + 1, 1)
        shape = list(x.shape)
        shape[axis] = p
        return s.emit("broadcast_to", {"shape": tuple(shape)}, one, shape=tuple(shape))
    return _axis_slice(s, x, axis, start, stop, step)


def _axis_slice(s: Steps, x: Ref, axis, start, stop, step) -> Ref:
    nd = len(x.shape)
    starts = tuple(start if d == axis else 0 for d in range(nd))
    stops = tuple(stop if d == axis else x.shape[d] for d in range(nd))
    steps = tuple(step if d == axis else 1 for d in range(nd))
    if stop < 0:
        stops = stops[:axis] + (-1 - x.shape[axis],) + stops[axis + 1:]
    return s.slice(x, starts, stops, steps)


def _im2col(s: Steps, x: Ref, kernel, stride, dilation, out) -> Ref:
    """``(N, C, taps, *out)``: every tap's strided slice of the padded ``x`` (unfold's
    layout)."""
    n, c = x.shape[:2]
    taps = []
    for offset in tap_offsets(kernel, dilation):
        stops = tuple(o + (m - 1) * st + 1 for o, m, st in zip(offset, out, stride))
        tap = s.slice(x, (0, 0) + offset, (n, c) + stops, (1, 1) + tuple(stride))
        taps.append(s.reshape(tap, (n, c, 1) + tuple(out)))
    return s.concat(taps, axis=2)


def _conv_steps(s: Steps, x: Ref, w: Ref, b, groups, stride, pads, dilation, mode, kernel) -> Ref:
    """The convolution of ``x`` (N, C, *spatial) with ``w`` (OC, C/groups, *kernel).

    The input goes channels-last first, so each tap's strided slice is ``(N, *out, C)``
    and the taps concatenated along the channels ARE the im2col matrix (tap-major
    columns; the small weight is permuted to match): one copy of the data."""
    d = len(kernel)
    x = s.transpose(x, (0, *range(2, d + 2), 1))
    x = _pad(s, x, pads, mode, first=1)
    n, spatial, c = x.shape[0], x.shape[1:-1], x.shape[-1]
    out = tuple(conv_out_size(m, k, st, 0, dl) for m, k, st, dl in zip(spatial, kernel, stride, dilation))
    oc, cg, t = w.shape[0], c // groups, int(np.prod(kernel))
    ocg, rows = oc // groups, n * int(np.prod(out))
    w2 = s.reshape(s.transpose(s.reshape(w, (oc, cg, t)), (0, 2, 1)), (oc, t * cg))
    results = []
    for g in range(groups):
        taps = []
        for offset in tap_offsets(kernel, dilation):
            stops = tuple(o + (m - 1) * st + 1 for o, m, st in zip(offset, out, stride))
            taps.append(s.slice(x, (0,) + offset + (g * cg,), (n,) + stops + ((g + 1) * cg,),
                                (1,) + tuple(stride) + (1,)))
        part = s.reshape(s.concat(taps, axis=d + 1), (rows, t * cg))
        wg = w2 if groups == 1 else s.slice(w2, (g * ocg, 0), ((g + 1) * ocg, t * cg), (1, 1))
        results.append(s.emit("matmul", {"trans_b": True}, part, wg, shape=(rows, ocg)))
    y = s.concat(results, axis=1)
    if b is not None:
        y = s.emit("add", {}, y, b, shape=y.shape)
    y = s.reshape(y, (n,) + out + (oc,))
    return s.transpose(y, (0, d + 1, *range(1, d + 1)))


def _same_pads(kernel, dilation):
    """'same' padding: the total ``d·(k-1)`` split with the extra element on the right."""
    return tuple((dl * (k - 1) // 2, dl * (k - 1) - dl * (k - 1) // 2) for k, dl in zip(kernel, dilation))


def _check_shapes(op, d, x, weight, bias, groups, transposed=False):
    if x.ndim not in (d + 1, d + 2):
        raise RuntimeError(f"{op}: Expected {d + 1}D (unbatched) or {d + 2}D (batched) input to {op}, "
                           f"but got input of size: {list(x.shape)}")
    if weight.ndim != d + 2:
        raise RuntimeError(f"{op}: weight must be {d + 2}-D, got shape {tuple(weight.shape)}")
    if groups < 1:
        raise RuntimeError(f"{op}: non-positive groups is not supported (groups={groups})")
    c = x.shape[-d - 1]
    if transposed:
        if c != weight.shape[0]:
            raise RuntimeError(f"{op}: Given transposed=1, weight of size {list(weight.shape)}, expected "
                               f"input{list(x.shape)} to have {weight.shape[0]} channels, but got {c} "
                               f"channels instead")
        if c % groups:
            raise RuntimeError(f"{op}: input channels {c} are not divisible by groups={groups}")
        oc = weight.shape[1] * groups
    else:
        if weight.shape[0] % groups:
            raise RuntimeError(f"{op}: Given groups={groups}, expected weight to be divisible by {groups} "
                               f"at dimension 0, but got weight of size {list(weight.shape)} instead")
        if c != weight.shape[1] * groups:
            raise RuntimeError(f"{op}: Given groups={groups}, weight of size {list(weight.shape)}, expected "
                               f"input{list(x.shape)} to have {weight.shape[1] * groups} channels, but got "
                               f"{c} channels instead")
        oc = weight.shape[0]
    if bias is not None and tuple(bias.shape) != (oc,):
        raise RuntimeError(f"{op}: bias of shape {tuple(bias.shape)} does not fit {oc} output channels")


def _convnd(op: str, d: int, input_, weight, bias, stride, padding, dilation, groups,
            padding_mode: str = "zeros") -> Tensor:
    x, w = as_tensor(input_), as_tensor(weight)
    b = None if bias is None else as_tensor(bias)
    _dtype_of(op, x, w, b)
    groups = int(groups)
    _check_shapes(op, d, x, w, b, groups)
    stride, dilation = as_tuple(op, "stride", stride, d), as_tuple(op, "dilation", dilation, d)
    if any(v <= 0 for v in stride) or any(v <= 0 for v in dilation):
        raise RuntimeError(f"{op}: stride {stride} and dilation {dilation} must be positive")
    kernel = tuple(w.shape[2:])
    if isinstance(padding, str):
        if padding == "valid":
            pads = ((0, 0),) * d
        elif padding == "same":
            if any(v != 1 for v in stride):
                raise RuntimeError(f"{op}: padding='same' is not supported for strided convolutions")
            pads = _same_pads(kernel, dilation)
        else:
            raise RuntimeError(f"{op}: Invalid padding string {padding!r}, should be one of ['valid', 'same']")
    else:
        pads = tuple((p, p) for p in as_tuple(op, "padding", padding, d))
        if any(p < 0 for p, _ in pads):
            raise RuntimeError(f"{op}: negative padding is not supported, got {padding}")
    if padding_mode not in _PAD_MODES:
        raise ValueError(f"{op}: padding_mode must be one of {list(_PAD_MODES)}, got {padding_mode!r}")
    spatial = x.shape[-d:]
    padded = tuple(m + a + c for m, (a, c) in zip(spatial, pads))
    if any(p < dl * (k - 1) + 1 for p, k, dl in zip(padded, kernel, dilation)):
        raise RuntimeError(f"{op}: Calculated padded input size per channel: {padded}. Kernel size: "
                           f"{tuple(dl * (k - 1) + 1 for k, dl in zip(kernel, dilation))}. Kernel size "
                           f"can't be greater than actual input size")
    if padding_mode == "reflect" and any(a >= m or c >= m for m, (a, c) in zip(spatial, pads)):
        raise RuntimeError(f"{op}: reflect padding {pads} must be smaller than the input size {spatial}")
    if padding_mode == "circular" and any(a > m or c > m for m, (a, c) in zip(spatial, pads)):
        raise RuntimeError(f"{op}: circular padding {pads} must not exceed the input size {spatial}")
    key = (op, x.shape, w.shape, b is not None, groups, stride, pads, dilation, padding_mode)
    chain = _CHAINS.get(key)
    if chain is None:
        s = Steps(3 if b is not None else 2, [x.shape, w.shape] + ([b.shape] if b is not None else []))
        xin = s.operand(0)
        if x.ndim == d + 1:
            xin = s.reshape(xin, (1,) + x.shape)
        y = _conv_steps(s, xin, s.operand(1), s.operand(2) if b is not None else None, groups, stride,
                        pads, dilation, padding_mode, kernel)
        if x.ndim == d + 1:
            y = s.reshape(y, y.shape[1:])
        chain = _CHAINS[key] = s.chain(op)
    return dispatch.call(chain, (x, w) if b is None else (x, w, b))


def conv1d(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):  # noqa: A002
    """1-D convolution over ``(N, C, L)`` (or unbatched ``(C, L)``) with ``weight``
    ``(out_channels, C/groups, k)``; ``padding`` an int, a tuple, ``'valid'`` or ``'same'``."""
    return _convnd("conv1d", 1, input, weight, bias, stride, padding, dilation, groups)


def conv2d(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):  # noqa: A002
    """2-D convolution over ``(N, C, H, W)`` (or unbatched ``(C, H, W)``) with ``weight``
    ``(out_channels, C/groups, kh, kw)``, as ``torch.nn.functional.conv2d``.

    >>> import lucid
    >>> conv2d(lucid.ones(1, 1, 3, 3), lucid.ones(1, 1, 2, 2)).tolist()
    [[[[4.0, 4.0], [4.0, 4.0]]]]
    """
    return _convnd("conv2d", 2, input, weight, bias, stride, padding, dilation, groups)


def conv3d(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):  # noqa: A002
    """3-D convolution over ``(N, C, D, H, W)``; see ``conv2d``."""
    return _convnd("conv3d", 3, input, weight, bias, stride, padding, dilation, groups)


# ---------------------------------------------------------------- transposed
def _transpose_weight(s: Steps, w: Ref, groups: int, kernel) -> Ref:
    """``(C, OC/groups, *k)`` -> the equivalent forward kernel ``(OC, C/groups, *k)``,
    flipped along every spatial axis."""
    c, ocg = w.shape[:2]
    t, d = int(np.prod(kernel)), len(kernel)
    cg = c // groups
    v = s.reshape(w, (groups, cg, ocg, t))
    v = s.transpose(v, (0, 2, 1, 3))
    v = s.reshape(v, (groups * ocg, cg) + tuple(kernel))
    return s.slice(v, (0, 0) + tuple(k - 1 for k in kernel), (groups * ocg, cg) + (-1 - max(kernel),) * d,
                   (1, 1) + (-1,) * d) if t > 1 else v


def _conv_transposend(op, d, input_, weight, bias, stride, padding, output_padding, groups, dilation):
    x, w = as_tensor(input_), as_tensor(weight)
    b = None if bias is None else as_tensor(bias)
    _dtype_of(op, x, w, b)
    groups = int(groups)
    _check_shapes(op, d, x, w, b, groups, transposed=True)
    stride, dilation = as_tuple(op, "stride", stride, d), as_tuple(op, "dilation", dilation, d)
    padding = as_tuple(op, "padding", padding, d)
    output_padding = as_tuple(op, "output_padding", output_padding, d)
    if any(v <= 0 for v in stride + dilation) or any(p < 0 for p in padding + output_padding):
        raise RuntimeError(f"{op}: stride {stride} and dilation {dilation} must be positive, padding "
                           f"{padding} and output_padding {output_padding} non-negative")
    if any(o >= max(st, dl) for o, st, dl in zip(output_padding, stride, dilation)):
        raise RuntimeError(f"{op}: output padding must be smaller than either stride or dilation, got "
                           f"output_padding={output_padding}, stride={stride}, dilation={dilation}")
    kernel, spatial = tuple(w.shape[2:]), x.shape[-d:]
    out = tuple((m - 1) * st - 2 * p + dl * (k - 1) + o + 1
                for m, st, p, dl, k, o in zip(spatial, stride, padding, dilation, kernel, output_padding))
    if any(o <= 0 for o in out):
        raise RuntimeError(f"{op}: the output size {out} of input {tuple(x.shape)} is not positive")
    key = (op, x.shape, w.shape, b is not None, groups, stride, padding, output_padding, dilation)
    chain = _CHAINS.get(key)
    if chain is None:
        s = Steps(3 if b is not None else 2, [x.shape, w.shape] + ([b.shape] if b is not None else []))
        xin = s.operand(0)
        if x.ndim == d + 1:
            xin = s.reshape(xin, (1,) + x.shape)
        n, c = xin.shape[:2]
        left = tuple(dl * (k - 1) - p for dl, k, p in zip(dilation, kernel, padding))
        right = tuple(a + o for a, o in zip(left, output_padding))
        spread = tuple((m - 1) * st + 1 for m, st in zip(spatial, stride))
        full = tuple(z + max(a, 0) + max(r, 0) for z, a, r in zip(spread, left, right))
        starts = tuple(max(a, 0) for a in left)
        v = s.emit("embed", {"shape": (n, c) + full, "starts": (0, 0) + starts,
                             "stops": (n, c) + tuple(a + z for a, z in zip(starts, spread)),
                             "steps": (1, 1) + tuple(stride)}, xin, shape=(n, c) + full)
        if any(a < 0 for a in left + right):  # padding beyond the kernel's reach: crop
            lo = tuple(max(-a, 0) for a in left)
            hi = tuple(f - max(-r, 0) for f, r in zip(full, right))
            v = s.slice(v, (0, 0) + lo, (n, c) + hi, (1,) * (d + 2))
        wf = _transpose_weight(s, s.operand(1), groups, kernel)
        y = _conv_steps(s, v, wf, s.operand(2) if b is not None else None, groups, (1,) * d,
                        ((0, 0),) * d, dilation, "zeros", kernel)
        if x.ndim == d + 1:
            y = s.reshape(y, y.shape[1:])
        chain = _CHAINS[key] = s.chain(op)
    return dispatch.call(chain, (x, w) if b is None else (x, w, b))


def conv_transpose1d(input, weight, bias=None, stride=1, padding=0, output_padding=0,  # noqa: A002
                     groups=1, dilation=1):
    """1-D transposed convolution ("deconvolution"); ``weight`` ``(C, out_channels/groups, k)``."""
    return _conv_transposend("conv_transpose1d", 1, input, weight, bias, stride, padding,
                             output_padding, groups, dilation)


def conv_transpose2d(input, weight, bias=None, stride=1, padding=0, output_padding=0,  # noqa: A002
                     groups=1, dilation=1):
    """2-D transposed convolution, the adjoint of ``conv2d``; ``weight``
    ``(C, out_channels/groups, kh, kw)``.

    >>> import lucid
    >>> conv_transpose2d(lucid.ones(1, 1, 2, 2), lucid.ones(1, 1, 2, 2)).tolist()
    [[[[1.0, 2.0, 1.0], [2.0, 4.0, 2.0], [1.0, 2.0, 1.0]]]]
    """
    return _conv_transposend("conv_transpose2d", 2, input, weight, bias, stride, padding,
                             output_padding, groups, dilation)


def conv_transpose3d(input, weight, bias=None, stride=1, padding=0, output_padding=0,  # noqa: A002
                     groups=1, dilation=1):
    """3-D transposed convolution; see ``conv_transpose2d``."""
    return _conv_transposend("conv_transpose3d", 3, input, weight, bias, stride, padding,
                             output_padding, groups, dilation)


__all__ = ["conv1d", "conv2d", "conv3d", "conv_transpose1d", "conv_transpose2d", "conv_transpose3d"]


# ---------------------------------------------------------------- unfold / fold
def _block_args(op, kernel_size, dilation, padding, stride):
    args = [as_tuple(op, name, v, 2) for name, v in (("kernel_size", kernel_size), ("dilation", dilation),
                                                     ("padding", padding), ("stride", stride))]
    kernel, dilation, padding, stride = args
    if any(v <= 0 for v in kernel + dilation + stride) or any(p < 0 for p in padding):
        raise RuntimeError(f"{op}: kernel_size {kernel}, dilation {dilation} and stride {stride} must be "
                           f"positive and padding {padding} non-negative")
    return kernel, dilation, padding, stride


def unfold(input, kernel_size, dilation=1, padding=0, stride=1):  # noqa: A002
    """Sliding blocks of ``(N, C, H, W)`` as columns: ``(N, C·kh·kw, L)`` with L the
    number of block positions (im2col), as ``torch.nn.functional.unfold``.

    >>> import lucid
    >>> unfold(lucid.arange(9.0).reshape(1, 1, 3, 3), 2).tolist()
    [[[0.0, 1.0, 3.0, 4.0], [1.0, 2.0, 4.0, 5.0], [3.0, 4.0, 6.0, 7.0], [4.0, 5.0, 7.0, 8.0]]]
    """
    x = as_tensor(input)
    kernel, dilation, padding, stride = _block_args("unfold", kernel_size, dilation, padding, stride)
    if x.ndim not in (3, 4):
        raise RuntimeError(f"unfold: Expected 3D or 4D (batch mode) tensor for input, but got input of "
                           f"size: {list(x.shape)}")
    out = tuple(conv_out_size(m, k, s, p, d) for m, k, s, p, d in zip(x.shape[-2:], kernel, stride,
                                                                       padding, dilation))
    if any(o <= 0 for o in out):
        raise RuntimeError(f"unfold: Given input with spatial size {tuple(x.shape[-2:])}, kernel_size="
                           f"{kernel}, dilation={dilation}, padding={padding}, calculated shape of the "
                           f"array of sliding blocks as {out}, but its components must be at least one.")
    key = ("unfold", x.shape, kernel, dilation, padding, stride)
    chain = _CHAINS.get(key)
    if chain is None:
        s = Steps(1, [x.shape])
        v = s.reshape(s.operand(0), (1,) * (4 - x.ndim) + x.shape)
        n, c = v.shape[:2]
        v = _pad(s, v, tuple((p, p) for p in padding), "zeros")
        cols = _im2col(s, v, kernel, stride, dilation, out)
        shape = (n, c * kernel[0] * kernel[1], out[0] * out[1])
        s.emit("reshape", {"shape": shape[4 - x.ndim:]}, cols, shape=shape[4 - x.ndim:])
        chain = _CHAINS[key] = s.chain("unfold")
    return dispatch.call(chain, (x,))


def fold(input, output_size, kernel_size, dilation=1, padding=0, stride=1):  # noqa: A002
    """Sum columns ``(N, C·kh·kw, L)`` back into ``(N, C, *output_size)`` (col2im; the
    adjoint of ``unfold``), as ``torch.nn.functional.fold``.

    >>> import lucid
    >>> fold(lucid.ones(1, 4, 4), (3, 3), 2).tolist()
    [[[[1.0, 2.0, 1.0], [2.0, 4.0, 2.0], [1.0, 2.0, 1.0]]]]
    """
    x = as_tensor(input)
    size = as_tuple("fold", "output_size", output_size, 2)
    kernel, dilation, padding, stride = _block_args("fold", kernel_size, dilation, padding, stride)
    t = kernel[0] * kernel[1]
    if x.ndim not in (2, 3):
        raise RuntimeError(f"fold: Expected 2D or 3D (batch mode) tensor for input, but got input of "
                           f"size: {list(x.shape)}")
    if x.shape[-2] % t:
        raise RuntimeError(f"fold: Expected size of input's dimension 1 to be divisible by the product of "
                           f"kernel_size, but got input.size(1)={x.shape[-2]} and kernel_size={kernel}")
    blocks = tuple(conv_out_size(m, k, s, p, d) for m, k, s, p, d in zip(size, kernel, stride, padding, dilation))
    if any(b <= 0 for b in blocks) or x.shape[-1] != blocks[0] * blocks[1]:
        raise RuntimeError(f"fold: Given output_size={size}, kernel_size={kernel}, dilation={dilation}, "
                           f"padding={padding}, stride={stride}, expected size of input's dimension 2 to "
                           f"match the calculated number of sliding blocks {blocks[0]} * {blocks[1]} = "
                           f"{blocks[0] * blocks[1]}, but got input.size(2)={x.shape[-1]}.")
    key = ("fold", x.shape, size, kernel, dilation, padding, stride)
    chain = _CHAINS.get(key)
    if chain is None:
        s = Steps(1, [x.shape])
        cols = s.reshape(s.operand(0), (1,) * (3 - x.ndim) + x.shape)
        n, c = cols.shape[0], cols.shape[1] // t
        cols = s.reshape(cols, (n, c, t) + blocks)
        full = (n, c) + tuple(m + 2 * p for m, p in zip(size, padding))
        total = None
        for k, offset in enumerate(tap_offsets(kernel, dilation)):
            tap = s.reshape(s.slice(cols, (0, 0, k, 0, 0), (n, c, k + 1) + blocks, (1,) * 5), (n, c) + blocks)
            stops = tuple(o + (b - 1) * st + 1 for o, b, st in zip(offset, blocks, stride))
            placed = s.emit("embed", {"shape": full, "starts": (0, 0) + offset, "stops": (n, c) + stops,
                                      "steps": (1, 1) + tuple(stride)}, tap, shape=full)
            total = placed if total is None else s.emit("add", {}, total, placed, shape=full)
        y = s.slice(total, (0, 0) + tuple(padding), (n, c) + tuple(p + m for p, m in zip(padding, size)),
                    (1,) * 4)
        s.emit("reshape", {"shape": y.shape[3 - x.ndim:]}, y, shape=y.shape[3 - x.ndim:])
        chain = _CHAINS[key] = s.chain("fold")
    return dispatch.call(chain, (x,))


__all__ += ["unfold", "fold"]
