"""``lucid.nn.functional``: the functions layers are made of, each built from IR
primitives so that autodiff, fusion and codegen see every step.

``linear`` follows the seed page (``../shared/seed/linear.md``): out = x · Wᵀ + b.

>>> import lucid
>>> import lucid.nn.functional as F
>>> x = lucid.Tensor([[1.0, 2.0], [3.0, 4.0]], requires_grad=True)
>>> w = lucid.Tensor([[5.0, 6.0], [7.0, 8.0]], requires_grad=True)
>>> b = lucid.Tensor([[9.0, 10.0]], requires_grad=True).reshape(1, -1)
>>> out = F.linear(x, w, b)
>>> out
Tensor([[26.0, 33.0],
 [48.0, 63.0]], grad=None)
>>> out.backward()
>>> b.grad  # a batch of two rows: each bias element receives 1 + 1
Tensor([[2.0, 2.0]], grad=None)
"""
from __future__ import annotations

import math

from lucid_ir.types import promote

from .. import dispatch, tracing
from ..dispatch import as_tensor, cast
from ..tensor import Tensor
from .chain_steps import ChainMemo


def linear(input_: Tensor, weight: Tensor, bias: Tensor | None = None) -> Tensor:
    """Apply ``out = input_ · weightᵀ + bias``.

    input_: ``(N, *, in_features)`` (a 1-D ``(in_features,)`` vector is accepted too);
    weight: ``(out_features, in_features)``; bias: ``(out_features,)`` or
    ``(1, out_features)``, or None. Returns ``(N, *, out_features)``. A 2-D input is one
    GEMM kernel with the bias added in its epilogue.

    Shapes that do not fit raise ``ValueError`` naming both shapes:

    >>> import lucid
    >>> linear(lucid.zeros(2, 3), lucid.zeros(2, 4))
    Traceback (most recent call last):
    ...
    ValueError: linear: input (2, 3) and weight (2, 4) do not fit: in_features 3 != 4
    """
    if bias is None:
        return dispatch.call2(_LINEAR, input_, weight, _linear)
    return dispatch.call3(_LINEAR_BIAS, input_, weight, bias, _linear)


def _linear(input_, weight, bias=None):
    """linear's general path (a signature's first call, 3-D inputs, mixed dtypes)."""
    x, w = as_tensor(input_), as_tensor(weight)
    b = None if bias is None else as_tensor(bias)
    if x.ndim == 2 and x.dtype == w.dtype and (b is None or b.dtype == x.dtype):
        # the general eager path; the checks below run on a signature's first call only
        if b is None:
            return dispatch.call(_LINEAR, (x, w), check=_check_linear)
        return dispatch.call(_LINEAR_BIAS, (x, w, b), check=_check_linear)
    _check_linear(x, w, b)
    if x.ndim > 2 and x.dtype == w.dtype and (b is None or b.dtype == x.dtype):
        # one call: the 2-D product between two reshapes (views), kept as linear's own
        # signature for these layouts (dispatch.call_as)
        key = (x.shape, w.shape[0], b is not None)
        chain = _LINEAR_ND.get(key)
        if chain is None:
            chain = _LINEAR_ND[key] = _nd_linear_chain(*key)
        alias = _LINEAR if b is None else _LINEAR_BIAS
        return dispatch.call_as(alias, chain, (x, w) if b is None else (x, w, b))
    dtype = promote(x.dtype, w.dtype, *(() if b is None else (b.dtype,)))
    x, w = cast(x, dtype), cast(w, dtype)
    b = None if b is None else cast(b, dtype)
    lead = x.shape[:-1]
    out = _linear(x.reshape(math.prod(lead), w.shape[1]), w, b)  # (not -1: in_features may be 0)
    return out.reshape(*lead, w.shape[0])


_LINEAR_ND: dict = dispatch.ChainCache()   # (input shape, out_features, bias) -> chain


def _nd_linear_chain(shape, out_features: int, bias: bool) -> dispatch.Chain:
    """linear on an input of ``shape`` (3-D or more) as one chain: the input viewed as
    (rows, in_features), the product (and bias), viewed back as (*lead, out_features)."""
    lead = tuple(shape[:-1])
    steps = [("reshape", {"shape": (math.prod(lead), shape[-1])}, (0,)),  # (not -1: in_features may be 0)
             ("matmul", {"trans_b": True}, (-1, 1))]
    if bias:
        steps.append(("add", {}, (-1, 2)))
    steps.append(("reshape", {"shape": lead + (out_features,)}, (-1,)))
    return dispatch.Chain(steps, name="linear")


_LINEAR = dispatch.Chain([("matmul", {"trans_b": True}, (0, 1))], name="linear")
_LINEAR_BIAS = dispatch.Chain([("matmul", {"trans_b": True}, (0, 1)), ("add", {}, (-1, 2))], name="linear")


def _check_linear(x: Tensor, w: Tensor, b=None) -> None:
    """linear's own errors, in its terms (before the matmul's shape rule)."""
    if w.ndim != 2:
        raise ValueError(f"linear: weight must be 2-D (out_features, in_features), got shape {w.shape}")
    if x.ndim < 1:
        raise ValueError(f"linear: input must have at least 1 dimension, got shape {x.shape}")
    out_features, in_features = w.shape
    if x.shape[-1] != in_features:
        raise ValueError(f"linear: input {x.shape} and weight {w.shape} do not fit: "
                         f"in_features {x.shape[-1]} != {in_features}")
    if b is not None and b.shape not in ((out_features,), (1, out_features)):
        raise ValueError(f"linear: bias {b.shape} does not fit weight {w.shape}: expected "
                         f"({out_features},) or (1, {out_features})")


def sigmoid(x: Tensor) -> Tensor:
    return dispatch.unary("sigmoid", x)


def tanh(x: Tensor) -> Tensor:
    return dispatch.unary("tanh", x)


def _log_softmax_steps(axis, at: int = 0):
    """``x - log Σ exp(x - max x)`` along ``axis`` as chain steps on operand ``at``: the
    max shift changes no value and no gradient (Σ softmax = 1), so autodiff skips it."""
    return [("max", {"axes": axis, "keepdims": True}, (at,)),
            ("stop_gradient", {}, (-1,)),
            ("sub", {}, (at, -1)),                              # shifted
            ("exp", {}, (-1,)),
            ("sum", {"axes": axis, "keepdims": True}, (-1,)),
            ("log", {}, (-1,)),
            ("sub", {}, (-4, -1))]                              # shifted - log Σ exp


_CHAINS: dict = dispatch.ChainCache()
_SOFTMAX = ChainMemo()      # (dim, axis) -> softmax's chain
_LOG_SOFTMAX = ChainMemo()  # the same for log_softmax


def _chain(name: str, params, make) -> dispatch.Chain:
    """The chain ``make()`` for these parameters, made once."""
    chain = _CHAINS.get((name, params))
    if chain is None:
        chain = _CHAINS[(name, params)] = dispatch.Chain(make(), name=name)
    return chain


def _softmax_dim(name: str, dim, axis) -> int:
    """``dim`` (PyTorch's keyword) or ``axis`` (lucid's first spelling, kept working)."""
    if dim is not None and axis is not None and dim != axis:
        raise TypeError(f"{name}: got both dim={dim} and axis={axis}")
    return -1 if dim is None and axis is None else (dim if dim is not None else axis)


def _row_call(name: str, memo: ChainMemo, x, dim, axis, make):
    """``x`` through the chain ``make(axis)`` for this ``dim``/``axis``; a dim seen before
    (``memo``) goes straight to the unrolled dispatch: one native call."""
    plain = (dim is None or type(dim) is int) and (axis is None or type(axis) is int)
    key = (dim, axis) if plain else None
    chain = memo.get(key)
    try:
        if chain is not None:
            return dispatch.call1(chain, x)
        axis_ = _softmax_dim(name, dim, axis)
        chain = memo.keep(key, _chain(name, axis_, lambda: make(axis_)))
        return dispatch.call1(chain, as_tensor(x))
    except ValueError:  # (the max of an empty axis has no value: checked only then)
        x = as_tensor(x)
        a = _softmax_dim(name, dim, axis)
        if isinstance(a, int) and -x.ndim <= a < max(x.ndim, 1) and x.ndim and x.shape[a] == 0:
            return x * 1.0          # as PyTorch: nothing to normalise, an empty result
        raise


def log_softmax(x: Tensor, dim: int | None = None, *, axis: int | None = None) -> Tensor:
    """``x - logsumexp(x)`` along ``axis``, computed stably (the max is subtracted
    first); one native kernel over the rows (eager and compiled).

    >>> import lucid
    >>> [round(v, 4) for v in log_softmax(lucid.tensor([0.0, 0.0])).tolist()]
    [-0.6931, -0.6931]
    """
    return _row_call("log_softmax", _LOG_SOFTMAX, x, dim, axis, _log_softmax_steps)


def _softmax_steps(axis):
    return [("max", {"axes": axis, "keepdims": True}, (0,)),
            ("stop_gradient", {}, (-1,)),
            ("sub", {}, (0, -1)),
            ("exp", {}, (-1,)),
            ("sum", {"axes": axis, "keepdims": True}, (-1,)),
            ("div", {}, (-2, -1))]


def softmax(x: Tensor, dim: int | None = None, *, axis: int | None = None) -> Tensor:
    """``exp(x - max x) / Σ exp(x - max x)`` along ``dim`` (default -1); one native
    kernel over the rows (eager and compiled).

    >>> import lucid
    >>> [round(v, 4) for v in softmax(lucid.tensor([0.0, 0.0])).tolist()]
    [0.5, 0.5]
    """
    return _row_call("softmax", _SOFTMAX, x, dim, axis, _softmax_steps)


# the losses live in their own files (one import block: other helpers edit this file too)
from .class_losses import (binary_cross_entropy, binary_cross_entropy_with_logits,  # noqa: E402,F401
                           cross_entropy, nll_loss)
from .functional_losses import (cosine_embedding_loss, hinge_embedding_loss, huber_loss,  # noqa: E402,F401
                                kl_div, l1_loss, margin_ranking_loss, mse_loss, poisson_nll_loss,
                                smooth_l1_loss, soft_margin_loss)
from .functional_attention import multi_head_attention_forward, scaled_dot_product_attention  # noqa: E402,F401
from .functional_bilinear import bilinear  # noqa: E402,F401

# ------------------------------------------------------------------ the other functional files
from .functional_activation import (celu, elu, gelu, glu, hardsigmoid, hardswish, hardtanh,  # noqa: E402,F401
                                    leaky_relu, logsigmoid, mish, relu, relu6, selu, silu, softmin,
                                    prelu, softplus, softsign, tanhshrink, threshold)
from .functional_norm import (batch_norm, group_norm, instance_norm, layer_norm, normalize,  # noqa: E402,F401
                              rms_norm)
from .functional_dropout import alpha_dropout, dropout, dropout1d, dropout2d, dropout3d  # noqa: E402,F401
from .functional_sparse import embedding, one_hot  # noqa: E402,F401
from .functional_pad import pad  # noqa: E402,F401
from .functional_distance import cosine_similarity, pairwise_distance  # noqa: E402,F401

# convolutions, pools and resizing (their own modules; PyTorch's names here)
from .functional_conv import (conv1d, conv2d, conv3d, conv_transpose1d, conv_transpose2d,  # noqa: E402,F401
                              conv_transpose3d, fold, unfold)
from .functional_pool import (adaptive_avg_pool1d, adaptive_avg_pool2d, adaptive_avg_pool3d,  # noqa: E402,F401
                              adaptive_max_pool1d, adaptive_max_pool2d, adaptive_max_pool3d, avg_pool1d,
                              avg_pool2d, avg_pool3d, max_pool1d, max_pool2d, max_pool3d, max_unpool1d,
                              max_unpool2d, max_unpool3d)
from .functional_upsample import (interpolate, pixel_shuffle, pixel_unshuffle, upsample,  # noqa: E402,F401
                                  upsample_bilinear, upsample_nearest)
