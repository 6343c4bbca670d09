"""Normalisation functions of ``lucid.nn.functional``: ``layer_norm``, ``rms_norm``,
``group_norm``, ``batch_norm``, ``instance_norm``, ``normalize``.

Each normalisation is one chain (one eager call of fused native kernels; the row
statistics and the affine transform included), its gradient derived by the IR's
autodiff. ``batch_norm`` in training mode also updates the running statistics in place
(with the unbiased variance, as PyTorch), outside autograd.

>>> import lucid
>>> import lucid.nn.functional as F
>>> [round(v, 4) for v in F.layer_norm(lucid.tensor([[1.0, 2.0, 3.0]]), (3,)).tolist()[0]]
[-1.2247, 0.0, 1.2247]
"""
from __future__ import annotations

from .. import dispatch, grad_mode
from ..dispatch import as_tensor
from .chain_steps import ChainMemo, cached_chain
from .functional_activation import _float_input


def _shape_of(t):
    return None if t is None else tuple(as_tensor(t).shape)


def _same_dtype(x, *others):
    return tuple(None if o is None else dispatch.cast(as_tensor(o), str(x.dtype)) for o in others)


def _normalized(s, x, axes, eps):
    """``(x - mean) / sqrt(var + eps)`` over ``axes`` (biased variance), as steps."""
    centred = s("sub", x, s("mean", x, axes=axes, keepdims=True))
    var = s("mean", s("mul", centred, centred), axes=axes, keepdims=True)
    return s("mul", centred, s("rsqrt", s("add", var, eps)))


def _affine(s, y, weight, bias, shape=None):
    """``y * weight + bias`` (either may be None: operand index or None), each reshaped
    to ``shape`` first when given."""
    if weight is not None:
        y = s("mul", y, weight if shape is None else s("reshape", weight, shape=shape))
    if bias is not None:
        y = s("add", y, bias if shape is None else s("reshape", bias, shape=shape))
    return y


def _operands(x, numbers, *optional):
    """The call's operands (x, the numbers, the tensors given) and each optional
    tensor's operand index (None when absent)."""
    ops, where = [x, *[float(n) for n in numbers]], []
    for t in optional:
        where.append(None if t is None else len(ops))
        if t is not None:
            ops.append(t)
    return tuple(ops), where


#: chains of checked calls by signature: a repeated call skips the checks and casts
_LAYER_NORM, _RMS_NORM = ChainMemo(), ChainMemo()


def _no_cast(x, *params) -> bool:
    """Whether the call needs no cast (every parameter given has ``x``'s dtype): only
    such a call's chain is kept for its signature."""
    return all(p is None or as_tensor(p).dtype == x.dtype for p in params)


def layer_norm(input, normalized_shape, weight=None, bias=None, eps: float = 1e-5):  # noqa: A002
    """Normalise over the last ``len(normalized_shape)`` dimensions (mean 0, biased
    variance 1), then ``* weight + bias`` (each of shape ``normalized_shape``): one
    kernel over the rows (the statistics kept for the backward).

    >>> import lucid
    >>> [round(v, 4) for v in layer_norm(lucid.tensor([[1.0, 3.0]]), 2).tolist()[0]]
    [-1.0, 1.0]
    """
    key = _LAYER_NORM.key(input, normalized_shape, weight, bias)
    chain = _LAYER_NORM.get(key)
    if chain is not None:
        return dispatch.call(chain, (input, float(eps)) + tuple(t for t in (weight, bias) if t is not None))
    x = _float_input(input, "layer_norm")
    shape = (int(normalized_shape),) if isinstance(normalized_shape, int) else tuple(normalized_shape)
    k = len(shape)
    if k == 0 or x.shape[x.ndim - k:] != shape or x.ndim < k:
        raise RuntimeError(f"layer_norm: input of shape {tuple(x.shape)} does not end with "
                           f"normalized_shape {shape}")
    for name, t in (("weight", weight), ("bias", bias)):
        if t is not None and _shape_of(t) != shape:
            raise RuntimeError(f"layer_norm: {name} of shape {_shape_of(t)} must have the shape "
                               f"normalized_shape {shape}")
    if not _no_cast(x, weight, bias):
        key = None
    weight, bias = _same_dtype(x, weight, bias)
    operands, (w, b) = _operands(x, (eps,), weight, bias)
    axes = tuple(range(x.ndim - k, x.ndim))
    chain = cached_chain("layer_norm", (axes, w, b),
                         lambda s: _affine(s, _normalized(s, 0, axes, 1), w, b), str(x.dtype))
    _LAYER_NORM.keep(key, chain)
    return dispatch.call(chain, operands)


def rms_norm(input, normalized_shape, weight=None, eps=None):  # noqa: A002
    """``x / sqrt(mean(x²) + eps) * weight`` over the last ``len(normalized_shape)``
    dimensions; ``eps`` None is the dtype's machine epsilon (as PyTorch).

    >>> import lucid
    >>> [round(v, 4) for v in rms_norm(lucid.tensor([[3.0, 4.0]]), (2,), eps=0.0).tolist()[0]]
    [0.8485, 1.1314]
    """
    import numpy as np
    key = _RMS_NORM.key(input, normalized_shape, weight)
    chain = _RMS_NORM.get(key)
    if chain is not None:
        if eps is None:
            eps = float(np.finfo(input._data.dtype).eps)
        return dispatch.call(chain, (input, float(eps)) + (() if weight is None else (weight,)))
    x = _float_input(input, "rms_norm")
    shape = (int(normalized_shape),) if isinstance(normalized_shape, int) else tuple(normalized_shape)
    k = len(shape)
    if k == 0 or x.ndim < k or x.shape[x.ndim - k:] != shape:
        raise RuntimeError(f"rms_norm: input of shape {tuple(x.shape)} does not end with "
                           f"normalized_shape {shape}")
    if weight is not None and _shape_of(weight) != shape:
        raise RuntimeError(f"rms_norm: weight of shape {_shape_of(weight)} must have the shape "
                           f"normalized_shape {shape}")
    eps = float(np.finfo(str(x.dtype)).eps) if eps is None else eps
    if not _no_cast(x, weight):
        key = None
    (weight,) = _same_dtype(x, weight)
    operands, (w,) = _operands(x, (eps,), weight)
    axes = tuple(range(x.ndim - k, x.ndim))

    def build(s):
        ms = s("mean", s("mul", 0, 0), axes=axes, keepdims=True)
        return _affine(s, s("mul", 0, s("rsqrt", s("add", ms, 1))), w, None)
    chain = cached_chain("rms_norm", (axes, w), build, str(x.dtype))
    _RMS_NORM.keep(key, chain)
    return dispatch.call(chain, operands)


def _channels(op: str, x, min_ndim: int = 2) -> int:
    if x.ndim < min_ndim:
        raise ValueError(f"{op}: expected an input of at least {min_ndim} dimensions (N, C, *), "
                         f"got shape {tuple(x.shape)}")
    return x.shape[1]


def _check_per_channel(op: str, c: int, **tensors):
    for name, t in tensors.items():
        if t is not None and _shape_of(t) != (c,):
            raise RuntimeError(f"{op}: {name} of shape {_shape_of(t)} must have shape ({c},) "
                               f"(the input's channels)")


def group_norm(input, num_groups: int, weight=None, bias=None, eps: float = 1e-5):  # noqa: A002
    """Normalise each of ``num_groups`` groups of channels of an ``(N, C, *)`` input over
    its channels and positions, then ``* weight + bias`` per channel (shape ``(C,)``).

    >>> import lucid
    >>> x = lucid.tensor([[1.0, 3.0, 10.0, 20.0]], dtype=lucid.float64)
    >>> [round(v, 4) for v in group_norm(x, 2, eps=0.0).tolist()[0]]
    [-1.0, 1.0, -1.0, 1.0]
    """
    x = _float_input(input, "group_norm")
    c = _channels("group_norm", x)
    if num_groups <= 0 or c % num_groups:
        raise RuntimeError(f"group_norm: Expected number of channels in input to be divisible by "
                           f"num_groups, but got input of shape {tuple(x.shape)} and num_groups={num_groups}")
    _check_per_channel("group_norm", c, weight=weight, bias=bias)
    if not _no_cast(x, weight, bias):
        key = None
    weight, bias = _same_dtype(x, weight, bias)
    operands, (w, b) = _operands(x, (eps,), weight, bias)
    shape = tuple(x.shape)
    grouped = (shape[0], num_groups, -1) if shape[0] else (0, num_groups, c // num_groups)
    per_channel = (c,) + (1,) * (x.ndim - 2)

    def build(s):
        y = _normalized(s, s("reshape", 0, shape=grouped), (2,), 1)
        return _affine(s, s("reshape", y, shape=shape), w, b, per_channel)
    return dispatch.call(cached_chain("group_norm", (shape, num_groups, w, b), build, str(x.dtype)),
                         operands)


def _stat_axes(x):
    return (0,) + tuple(range(2, x.ndim))


def batch_norm(input, running_mean, running_var, weight=None, bias=None,  # noqa: A002
               training: bool = False, momentum: float = 0.1, eps: float = 1e-5):
    """Batch normalisation of an ``(N, C, *)`` input per channel.

    ``training``: normalise with the batch's mean and biased variance, and (when given)
    update ``running_mean``/``running_var`` in place: ``(1 - momentum) * running +
    momentum * batch`` with the batch's *unbiased* variance. Otherwise normalise with the
    running statistics.

    >>> import lucid
    >>> rm, rv = lucid.zeros(2), lucid.ones(2)
    >>> x = lucid.tensor([[1.0, 2.0], [3.0, 6.0]])
    >>> [round(v, 4) for v in batch_norm(x, rm, rv, training=True).tolist()[0]]
    [-1.0, -1.0]
    >>> [round(v, 4) for v in rm.tolist()], [round(v, 4) for v in rv.tolist()]
    ([0.2, 0.4], [1.1, 1.7])
    """
    x = _float_input(input, "batch_norm")
    c = _channels("batch_norm", x)
    _check_per_channel("batch_norm", c, running_mean=running_mean, running_var=running_var,
                       weight=weight, bias=bias)
    axes = _stat_axes(x)
    per_channel = (c,) + (1,) * (x.ndim - 2)
    weight, bias = _same_dtype(x, weight, bias)
    if training:
        n = x.numel() // max(c, 1)
        if n <= 1:
            raise ValueError(f"batch_norm: Expected more than 1 value per channel when training, "
                             f"got input size {tuple(x.shape)}")
        if running_mean is not None or running_var is not None:
            _update_running(x, running_mean, running_var, axes, n, momentum)
        operands, (w, b) = _operands(x, (eps,), weight, bias)
        chain = cached_chain("batch_norm", (axes, per_channel, w, b),
                             lambda s: _affine(s, _normalized(s, 0, axes, 1), w, b, per_channel),
                             str(x.dtype))
        return dispatch.call(chain, operands)
    if running_mean is None or running_var is None:
        raise RuntimeError("batch_norm: running_mean and running_var must be defined in evaluation mode")
    rm, rv = _same_dtype(x, running_mean, running_var)
    operands, (m, v, w, b) = _operands(x, (eps,), rm, rv, weight, bias)

    def build(s):
        centred = s("sub", 0, s("reshape", m, shape=per_channel))
        y = s("mul", centred, s("rsqrt", s("add", s("reshape", v, shape=per_channel), 1)))
        return _affine(s, y, w, b, per_channel)
    return dispatch.call(cached_chain("batch_norm_eval", (x.ndim, c, w, b), build, str(x.dtype)), operands)


def _update_running(x, running_mean, running_var, axes, n: int, momentum: float) -> None:
    """The running statistics' in-place update (no gradient; inside ``lucid.compile``
    each call updates them)."""
    with grad_mode.no_grad():
        d = x.detach()
        mean = d.mean(dim=axes)
        var = d.var(dim=axes, correction=1)
        for stat, batch in ((running_mean, mean), (running_var, var)):
            if stat is not None:
                stat.copy_(stat * (1.0 - momentum) + batch * momentum)  # momentum: a number or a traced 0-d tensor


def instance_norm(input, running_mean=None, running_var=None, weight=None, bias=None,  # noqa: A002
                  use_input_stats: bool = True, momentum: float = 0.1, eps: float = 1e-5):
    """Normalise each channel of each sample of an ``(N, C, *)`` input over its positions
    (``use_input_stats``; the running statistics, if given, are updated with the mean of
    the per-sample statistics), or with the running statistics.

    >>> import lucid
    >>> x = lucid.tensor([[[1.0, 3.0], [0.0, 8.0]]], dtype=lucid.float64)
    >>> instance_norm(x, eps=0.0).tolist()
    [[[-1.0, 1.0], [-1.0, 1.0]]]
    """
    x = _float_input(input, "instance_norm")
    c = _channels("instance_norm", x, 3) if use_input_stats else _channels("instance_norm", x)
    if not use_input_stats:
        return batch_norm(x, running_mean, running_var, weight, bias, False, momentum, eps)
    _check_per_channel("instance_norm", c, running_mean=running_mean, running_var=running_var,
                       weight=weight, bias=bias)
    axes = tuple(range(2, x.ndim))
    if running_mean is not None or running_var is not None:
        n = x.numel() // max(c * x.shape[0], 1)
        with grad_mode.no_grad():
            d = x.detach()
            for stat, batch in ((running_mean, d.mean(dim=axes)), (running_var, d.var(dim=axes, correction=1))):
                if stat is not None and n > 0:
                    stat.copy_(stat * (1.0 - momentum) + batch.mean(dim=0) * float(momentum))
    if not _no_cast(x, weight, bias):
        key = None
    weight, bias = _same_dtype(x, weight, bias)
    operands, (w, b) = _operands(x, (eps,), weight, bias)
    per_channel = (c,) + (1,) * (x.ndim - 2)
    chain = cached_chain("instance_norm", (axes, per_channel, w, b),
                         lambda s: _affine(s, _normalized(s, 0, axes, 1), w, b, per_channel), str(x.dtype))
    return dispatch.call(chain, operands)


def normalize(input, p: float = 2.0, dim: int = 1, eps: float = 1e-12, out=None):  # noqa: A002
    """``x / max(‖x‖_p, eps)`` along ``dim``.

    >>> import lucid
    >>> normalize(lucid.tensor([[3.0, 4.0]], dtype=lucid.float64)).tolist()
    [[0.6, 0.8]]
    """
    from .functional_activation import _dim
    if out is not None:
        raise TypeError("normalize: out= is not supported by lucid")
    x = _float_input(input, "normalize")
    d = _dim("normalize", dim, x.ndim)
    p = float(p)
    if p <= 0:
        raise ValueError(f"normalize: p must be positive, got {p}")

    def build(s):
        return s("div", 0, _p_norm(s, 0, p, d, 1, keepdims=True))
    return dispatch.call(cached_chain("normalize", (p, d), build, str(x.dtype)), (x, float(eps)))


def _p_norm(s, x, p: float, axis: int, eps, keepdims: bool):
    """``max(‖x‖_p, eps)`` along ``axis`` as steps (eps: an operand or None). The clamp is
    taken on ``Σ|x|^p`` (as ``eps^p``) so that a zero vector has a zero gradient, not NaN."""
    if p == float("inf"):
        norm = s("max", s("abs", x), axes=axis, keepdims=keepdims)
        return norm if eps is None else s("maximum", norm, eps)
    powered = s("mul", x, x) if p == 2.0 else s("pow", s("abs", x), p)
    total = s("sum", powered, axes=axis, keepdims=keepdims)
    if eps is not None:
        total = s("maximum", total, s("mul", eps, eps) if p == 2.0 else s("pow", eps, p))
    return s("sqrt", total) if p == 2.0 else s("pow", total, 1.0 / p)
