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
array([[2., 2.]], dtype=float32)
"""
from __future__ import annotations

import numpy as np

from lucid_ir.types import promote

from .. import dispatch, tracing
from ..dispatch import apply, as_tensor, cast
from ..tensor import Tensor


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
    dtype = promote(x.dtype, w.dtype, *(() if b is None else (b.dtype,)))
    x, w = cast(x, dtype), cast(w, dtype)
    b = None if b is None else cast(b, dtype)
    lead = x.shape[:-1]
    out = _linear(x.reshape(-1, w.shape[1]), w, b)
    return out.reshape(*lead, w.shape[0])


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


def relu(x: Tensor) -> Tensor:
    """``max(x, 0)``; its gradient at 0 is 0 (as in PyTorch)."""
    return as_tensor(x).relu()


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


_CHAINS: dict = {}


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


def log_softmax(x: Tensor, dim: int | None = None, *, axis: int | None = None) -> Tensor:
    """``x - logsumexp(x)`` along ``axis``, computed stably (the max is subtracted
    first); one eager call (fused native kernels).

    >>> import lucid
    >>> [round(v, 4) for v in log_softmax(lucid.tensor([0.0, 0.0])).tolist()]
    [-0.6931, -0.6931]
    """
    axis = _softmax_dim("log_softmax", dim, axis)
    return dispatch.call(_chain("log_softmax", axis, lambda: _log_softmax_steps(axis)), (as_tensor(x),))


def softmax(x: Tensor, dim: int | None = None, *, axis: int | None = None) -> Tensor:
    """``exp(x - max x) / Σ exp(x - max x)`` along ``dim`` (default -1); one eager call."""
    axis = _softmax_dim("softmax", dim, axis)
    return dispatch.call(_chain("softmax", axis, lambda: [
        ("max", {"axes": axis, "keepdims": True}, (0,)),
        ("stop_gradient", {}, (-1,)),
        ("sub", {}, (0, -1)),
        ("exp", {}, (-1,)),
        ("sum", {"axes": axis, "keepdims": True}, (-1,)),
        ("div", {}, (-2, -1))]), (as_tensor(x),))


_REDUCTIONS = {"mean": [("mean", {}, (-1,))], "sum": [("sum", {}, (-1,))], "none": []}


def _reduction_steps(reduction: str, op: str):
    try:
        return _REDUCTIONS[reduction]
    except (KeyError, TypeError):
        raise ValueError(f"{op}: reduction must be 'mean', 'sum' or 'none', got {reduction!r}") from None


def mse_loss(input_: Tensor, target, reduction: str = "mean") -> Tensor:
    """Mean (or sum) of squared differences; shapes must match exactly. One eager call."""
    x, t = as_tensor(input_), as_tensor(target)
    if x.shape != t.shape:
        raise ValueError(f"mse_loss: input {x.shape} and target {t.shape} must have the same shape")
    if x.dtype != t.dtype:
        dtype = promote(x.dtype, t.dtype)
        x, t = cast(x, dtype), cast(t, dtype)
    steps = _reduction_steps(reduction, "mse_loss")
    return dispatch.call(_chain("mse_loss", reduction, lambda: [
        ("sub", {}, (0, 1)), ("mul", {}, (-1, -1)), *steps]), (x, t))


def one_hot(target, num_classes: int, dtype: str = "float32") -> Tensor:
    """Rows of ``num_classes`` with a 1 at each target class, built in the graph:
    ``eq(target[:, None], iota)``. Class indices are exact in float32 below 2**24."""
    t = as_tensor(target)
    t = cast(t, dtype)
    classes = apply("iota", shape=(1, num_classes), axis=1, dtype=dtype)
    return cast(dispatch.binary("eq", t.reshape(-1, 1), classes), dtype)


def _class_targets(target, n: int, c: int, dtype: str):
    """Validate integer class targets (concrete data) and return them as a tensor."""
    if isinstance(target, Tensor) and target._data is None:
        if target.shape != (n,):
            raise ValueError(f"cross_entropy: logits ({n}, {c}) and target {target.shape} do not fit: "
                             f"expected a target of shape ({n},)")
        return target  # traced: values are not known yet
    t = target._data if isinstance(target, Tensor) else np.asarray(target)
    if t.shape != (n,):
        raise ValueError(f"cross_entropy: logits ({n}, {c}) and target {t.shape} do not fit: "
                         f"expected a target of shape ({n},)")
    if t.dtype.kind == "f" and not np.all(t == np.round(t)):
        raise TypeError("cross_entropy: class targets must be integers")
    if t.dtype.kind not in "iuf":
        raise TypeError(f"cross_entropy: target must hold integers or probabilities, got {t.dtype}")
    if t.size and (t.min() < 0 or t.max() >= c):
        raise ValueError(f"cross_entropy: target classes must lie in [0, {c}), "
                         f"got values from {t.min()} to {t.max()}")
    return Tensor._wrap(t.astype(dtype))  # checked above: a plain float array


def cross_entropy(logits: Tensor, target, reduction: str = "mean") -> Tensor:
    """Cross entropy of ``logits`` ``(N, C)`` against class indices ``target`` ``(N,)``
    (integers), or against class probabilities of shape ``(N, C)``. One eager call:
    the one-hot codes, the log-softmax and the reduction run as fused native kernels.

    >>> import lucid
    >>> round(cross_entropy(lucid.zeros(2, 4), [1, 3]).item(), 6)  # log(4)
    1.386294
    """
    z = as_tensor(logits)
    if z.ndim != 2:
        raise ValueError(f"cross_entropy: logits must be (N, C), got shape {z.shape}")
    n, c = z.shape
    reduce = _reduction_steps(reduction, "cross_entropy")
    shape = target.shape if isinstance(target, Tensor) else np.shape(target)
    if len(shape) == 2:  # class probabilities
        if tuple(shape) != (n, c):
            raise ValueError(f"cross_entropy: logits {z.shape} and target {tuple(shape)} do not fit")
        probs = as_tensor(target) if isinstance(target, Tensor) else Tensor(np.asarray(target, z.dtype))
        chain = _chain("cross_entropy", ("probs", reduction), lambda: [
            *_log_softmax_steps(1), ("mul", {}, (-1, 1)), *_per_row_loss(reduce)])
        return dispatch.call(chain, (z, cast(probs, z.dtype)))
    targets = _class_targets(target, n, c, z.dtype)
    chain = _chain("cross_entropy", (c, z.dtype, reduction), lambda: [
        ("reshape", {"shape": (-1, 1)}, (1,)),
        ("iota", {"shape": (1, c), "axis": 1, "dtype": z.dtype}, ()),
        ("eq", {}, (-2, -1)),
        ("cast", {"dtype": z.dtype}, (-1,)),                    # one-hot codes
        *_log_softmax_steps(1),
        ("mul", {}, (-1, -8)),
        *_per_row_loss(reduce)])
    return dispatch.call(chain, (z, cast(targets, z.dtype)))


def _per_row_loss(reduce):
    return [("sum", {"axes": 1}, (-1,)), ("neg", {}, (-1,)), *reduce]

from .functional_attention import multi_head_attention_forward, scaled_dot_product_attention  # noqa: E402,F401
