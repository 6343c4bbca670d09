"""``lucid.nn.functional.pad``: constant, reflect, replicate and circular padding.

``pad`` lists ``(left, right)`` pairs from the last dimension backwards, as PyTorch.
The whole padding is one chain: ``constant`` is ``embed`` (the input placed into a
larger array) plus the fill value outside it; the other modes ``concat`` slices of the
input (reversed for ``reflect``, broadcast edges for ``replicate``, the far side for
``circular``) around it, one dimension after another. Negative amounts crop.

>>> import lucid
>>> import lucid.nn.functional as F
>>> x = lucid.tensor([[1.0, 2.0, 3.0]])
>>> F.pad(x, (2, 1), mode="reflect").tolist(), F.pad(x, (1, 1), value=9.0).tolist()
([[3.0, 2.0, 1.0, 2.0, 3.0, 2.0]], [[9.0, 1.0, 2.0, 3.0, 9.0]])
>>> F.pad(x, (1, 2), mode="replicate").tolist(), F.pad(x, (2, 0), mode="circular").tolist()
([[1.0, 1.0, 2.0, 3.0, 3.0, 3.0]], [[2.0, 3.0, 1.0, 2.0, 3.0]])
"""
from __future__ import annotations

from .. import dispatch
from ..dispatch import as_tensor
from .chain_steps import cached_chain

_MODES = ("constant", "reflect", "replicate", "circular")


def _pairs(op: str, pad, ndim: int):
    """``{dim: (left, right)}`` from PyTorch's flat ``pad`` tuple."""
    pad = tuple(int(p) for p in pad)
    if len(pad) % 2:
        raise ValueError(f"{op}: Padding length must be divisible by 2, got {len(pad)} values {pad}")
    if len(pad) // 2 > ndim:
        raise ValueError(f"{op}: Padding length should be less than or equal to two times the input "
                         f"dimension but got padding length {len(pad)} and input of dimension {ndim}")
    return {ndim - 1 - k: (pad[2 * k], pad[2 * k + 1]) for k in range(len(pad) // 2)}


def _slice(s, x, shape, dim, start, stop, step=1):
    nd = len(shape)
    return s("slice", x, starts=tuple(start if k == dim else None for k in range(nd)),
             stops=tuple(stop if k == dim else None for k in range(nd)),
             steps=tuple(step if k == dim else 1 for k in range(nd)))


def _crop(s, x, shape, dim, left, right):
    """Negative amounts: cut ``-left``/``-right`` elements off ``dim``."""
    n = shape[dim]
    lo, hi = max(-left, 0), n - max(-right, 0)
    if lo == 0 and hi == n:
        return x, shape
    if hi < lo:
        raise RuntimeError(f"pad: the padding {(left, right)} of dimension {dim} leaves a negative size "
                           f"of input shape {tuple(shape)}")
    shape = shape[:dim] + (hi - lo,) + shape[dim + 1:]
    return _slice(s, x, shape[:dim] + (n,) + shape[dim + 1:], dim, lo, hi), shape


def _sides(s, x, shape, dim, left, right, mode):
    """The pieces to put before and after ``x`` along ``dim``."""
    n = shape[dim]
    pieces = []
    for amount, before in ((left, True), (right, False)):
        if amount <= 0:
            pieces.append(None)
        elif mode == "reflect":
            pieces.append(_slice(s, x, shape, dim, amount, 0, -1) if before
                          else _slice(s, x, shape, dim, n - 2, n - 2 - amount if amount < n - 1 else None, -1))
        elif mode == "replicate":
            edge = _slice(s, x, shape, dim, 0, 1) if before else _slice(s, x, shape, dim, n - 1, n)
            pieces.append(s("broadcast_to", edge, shape=shape[:dim] + (amount,) + shape[dim + 1:]))
        else:  # circular
            pieces.append(_slice(s, x, shape, dim, n - amount, n) if before
                          else _slice(s, x, shape, dim, 0, amount))
    return pieces


def _check_mode_amounts(mode: str, shape, pairs):
    for dim, (left, right) in pairs.items():
        n = shape[dim]
        for amount in (left, right):
            if mode == "reflect" and amount >= n and amount > 0:
                raise RuntimeError(f"pad: Argument #4: Padding size should be less than the corresponding "
                                   f"input dimension, but got: padding ({left}, {right}) at dimension "
                                   f"{dim} of input {tuple(shape)}")
            if mode == "circular" and amount > n:
                raise RuntimeError(f"pad: Padding value causes wrapping around more than once "
                                   f"(padding ({left}, {right}) at dimension {dim} of input {tuple(shape)})")
            if mode == "replicate" and amount > 0 and n == 0:
                raise RuntimeError(f"pad: cannot replicate-pad the empty dimension {dim} of input "
                                   f"{tuple(shape)}")


def pad(input, pad, mode: str = "constant", value=None):  # noqa: A002
    """Pad ``input`` by ``pad = (left_last, right_last, left_second_last, ...)``.

    ``mode``: ``'constant'`` (fill with ``value``, default 0), ``'reflect'`` (mirror
    without repeating the edge), ``'replicate'`` (repeat the edge), ``'circular'``
    (wrap around). The non-constant modes pad at most the last three dimensions of a
    batched input, as PyTorch.

    >>> import lucid
    >>> pad(lucid.tensor([[1, 2], [3, 4]]), (1, 0, 0, 1), value=-1).tolist()
    [[-1, 1, 2], [-1, 3, 4], [-1, -1, -1]]
    """
    x = as_tensor(input)
    if mode not in _MODES:
        raise NotImplementedError(f"pad: unsupported padding mode {mode!r}; expected one of {_MODES}")
    pairs = _pairs("pad", pad, x.ndim)
    shape = tuple(x.shape)
    if mode != "constant":
        if value not in (None, 0, 0.0):
            raise ValueError(f"pad: padding mode {mode!r} doesn't take in value argument")
        if not 1 <= len(pairs) <= 3 or x.ndim not in (len(pairs) + 1, len(pairs) + 2):
            raise NotImplementedError(f"pad: {mode} padding of {len(pairs)} dimensions needs an input "
                                      f"of {len(pairs) + 1} or {len(pairs) + 2} dimensions (batched), "
                                      f"got shape {shape}")
        _check_mode_amounts(mode, shape, pairs)
    key = (shape, tuple(sorted(pairs.items())), mode)
    if mode == "constant":
        return _pad_constant(x, shape, pairs, key, 0.0 if value is None else value)

    def build(s):
        y, cur = 0, shape
        for dim in sorted(pairs, reverse=True):
            left, right = pairs[dim]
            y, cur = _crop(s, y, cur, dim, left, right)
            before, after = _sides(s, y, cur, dim, max(left, 0), max(right, 0), mode)
            parts = [p for p in (before, y, after) if p is not None]
            if len(parts) > 1:
                y = s("concat", *parts, axis=dim)
                cur = cur[:dim] + (cur[dim] + max(left, 0) + max(right, 0),) + cur[dim + 1:]
        if isinstance(y, int):  # nothing to do: still one step, a reshape to the same shape
            y = s("reshape", 0, shape=shape)
        return y
    return dispatch.call(cached_chain("pad", key, build, str(x.dtype)), (x,))


def _pad_constant(x, shape, pairs, key, value):
    cropped = list(shape)
    starts = []
    for dim in range(len(shape)):
        left, right = pairs.get(dim, (0, 0))
        cropped[dim] = shape[dim] - max(-left, 0) - max(-right, 0)
        if cropped[dim] < 0:
            raise RuntimeError(f"pad: the padding {(left, right)} of dimension {dim} leaves a negative "
                               f"size of input shape {shape}")
        starts.append(max(left, 0))
    out = tuple(cropped[d] + max(pairs.get(d, (0, 0))[0], 0) + max(pairs.get(d, (0, 0))[1], 0)
                for d in range(len(shape)))
    inner = tuple(slice(starts[d], starts[d] + cropped[d]) for d in range(len(shape)))

    def build(s):
        y = 0
        if any(left < 0 or right < 0 for left, right in pairs.values()):
            y = s("slice", 0, starts=tuple(max(-pairs.get(d, (0, 0))[0], 0) for d in range(len(shape))),
                  stops=tuple(shape[d] - max(-pairs.get(d, (0, 0))[1], 0) for d in range(len(shape))),
                  steps=(1,) * len(shape))
        embed = dict(shape=out, starts=tuple(i.start for i in inner), stops=tuple(i.stop for i in inner),
                     steps=(1,) * len(shape))
        placed = s("embed", y, **embed)
        inside = s("embed", s("constant", value=1, shape=tuple(cropped), dtype=s.dtype), **embed)
        return s("select", s("ne", inside, s("constant", value=0, shape=(), dtype=s.dtype)), placed, 1)
    return dispatch.call(cached_chain("pad_constant", key, build, str(x.dtype)), (x, float(value)))
