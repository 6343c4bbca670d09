"""Regression and margin losses of ``lucid.nn.functional``: each one ``dispatch.Chain``
(one fused native call in eager mode) ending in its ``reduction``.

>>> import lucid
>>> x, t = lucid.tensor([0.0, 1.0, 3.0]), lucid.tensor([0.0, 0.5, 1.0])
>>> mse_loss(x, t, reduction="sum").item(), l1_loss(x, t).item()
(4.25, 0.8333333134651184)
>>> smooth_l1_loss(x, t, reduction="none").tolist(), huber_loss(x, t, delta=2.0).item()
([0.0, 0.125, 1.5], 0.7083333134651184)
"""
from __future__ import annotations

import math
import warnings

import numpy as np

from lucid_ir.types import default_float, promote

from .. import dispatch
from ..dispatch import as_tensor, cast
from ..tensor import Tensor
from .loss_reduction import PREVIOUS, check_reduction, legacy_reduction, loss_chain, reduction_steps


_FLOATS = (np.dtype("float32"), np.dtype("float64"))


def float_operands(op: str, *tensors):
    """The tensors (or arrays, lists) as tensors of one float dtype: the dtype they
    promote to, or the default float for integer and bool ones."""
    ts = [as_tensor(t) for t in tensors]
    first = ts[0]._data
    if first is not None and first.dtype in _FLOATS:  # the common case, decided on numpy dtypes
        for t in ts:
            if t._data is None or t._data.dtype != first.dtype:
                break
        else:
            return ts
    dtype = promote(*(t.dtype for t in ts))
    if dtype not in ("float32", "float64"):
        dtype = default_float()
    return [cast(t, dtype) for t in ts]


def check_target_shape(op: str, x: Tensor, t: Tensor, warn: bool = True, exact: bool = False) -> None:
    """Input and target of one shape; a target that broadcasts warns as PyTorch does
    (``exact``: it is an error), one that does not broadcast is a ``ValueError``."""
    if x.shape == t.shape:
        return
    if exact:
        raise ValueError(f"{op}: Using a target size {t.shape} that is different to the input size "
                         f"{x.shape} is deprecated. Please ensure they have the same size.")
    try:
        np.broadcast_shapes(x.shape, t.shape)
    except ValueError:
        raise ValueError(f"{op}: input {x.shape} and target {t.shape} must have the same shape "
                         f"(or broadcast)") from None
    if warn:
        warnings.warn(f"{op}: Using a target size {t.shape} that is different to the input size "
                      f"{x.shape}. This will likely lead to incorrect results due to broadcasting. "
                      "Please ensure they have the same size.", UserWarning, stacklevel=3)


def _pair_loss(op, input_, target, reduction, params, make, numbers=(), warn=True, weight=None,
               weighted_mean="sum_weights"):
    """``make()``'s steps on (input, target, *numbers), times ``weight`` (of the input's
    size), then the reduction: one call. With a weight, ``'mean'`` is ``Σ w·loss / Σ w``
    (``weighted_mean="sum_weights"``) or the plain mean of ``w·loss``, as PyTorch."""
    x, t, *w = float_operands(op, input_, target, *(() if weight is None else (weight,)))
    check_target_shape(op, x, t, warn)
    reduce = reduction_steps(reduction, op)
    if w:
        if w[0].shape != x.shape:
            raise ValueError(f"{op}: Weights and input must have the same size: weight {w[0].shape}, "
                             f"input {x.shape}")
        at = 2 + len(numbers)
        if reduction == "mean" and weighted_mean == "sum_weights":
            reduce = [("sum", {}, (PREVIOUS,)), ("sum", {}, (at,)), ("div", {}, (("%", -2), PREVIOUS))]
        reduce = [("mul", {}, (PREVIOUS, at)), *reduce]
    chain = loss_chain(op, (params, reduction, bool(w)), lambda: [*make(), *reduce])
    return dispatch.call(chain, (x, t, *numbers, *w))


def mse_loss(input_: Tensor, target, size_average=None, reduce=None, reduction: str = "mean",
             weight=None) -> Tensor:
    """``weight · (input - target)²``, reduced (``'mean'`` with a weight: ``/ Σ weight``);
    a target that only broadcasts warns (as PyTorch).

    >>> import lucid
    >>> mse_loss(lucid.tensor([1.0, 2.0]), lucid.tensor([0.0, 0.0])).item()
    2.5
    """
    reduction = legacy_reduction(size_average, reduce, reduction)
    return _pair_loss("mse_loss", input_, target, reduction, (), lambda: [
        ("sub", {}, (0, 1)), ("mul", {}, ("%0", "%0"))], weight=weight)


def l1_loss(input_: Tensor, target, size_average=None, reduce=None, reduction: str = "mean",
            weight=None) -> Tensor:
    """``weight · |input - target|``, reduced (``'mean'`` with a weight: ``/ Σ weight``).

    >>> import lucid
    >>> l1_loss(lucid.tensor([1.0, -2.0]), lucid.tensor([0.0, 0.0]), reduction="sum").item()
    3.0
    """
    reduction = legacy_reduction(size_average, reduce, reduction)
    return _pair_loss("l1_loss", input_, target, reduction, (), _l1_steps, weight=weight)


def _l1_steps():
    return [("sub", {}, (0, 1)), ("abs", {}, ("%0",))]


def smooth_l1_loss(input_: Tensor, target, size_average=None, reduce=None, reduction: str = "mean",
                   beta: float = 1.0) -> Tensor:
    """``0.5 d² / beta`` where ``|d| < beta``, else ``|d| - 0.5 beta`` (``d = input - target``);
    ``beta = 0`` is ``l1_loss``.

    >>> import lucid
    >>> smooth_l1_loss(lucid.tensor([0.5, 3.0]), lucid.tensor([0.0, 0.0]), reduction="none").tolist()
    [0.125, 2.5]
    """
    reduction = legacy_reduction(size_average, reduce, reduction)
    beta = float(beta)
    if beta < 0:
        raise RuntimeError(f"smooth_l1_loss does not support negative values for beta, got {beta}")
    if beta == 0:
        return _pair_loss("smooth_l1_loss", input_, target, reduction, "l1", _l1_steps)
    return _pair_loss("smooth_l1_loss", input_, target, reduction, "beta", lambda: [
        ("sub", {}, (0, 1)),                 # %0 d
        ("abs", {}, ("%0",)),                # %1 |d|
        ("lt", {}, ("%1", 2)),               # %2 |d| < beta
        ("mul", {}, ("%0", "%0")),
        ("mul", {}, ("%3", 3)),              # %4 0.5 d² / beta
        ("sub", {}, ("%1", 4)),              # %5 |d| - 0.5 beta
        ("select", {}, ("%2", "%4", "%5"))], (beta, 0.5 / beta, 0.5 * beta))


def huber_loss(input_: Tensor, target, reduction: str = "mean", delta: float = 1.0, weight=None) -> Tensor:
    """``0.5 d²`` where ``|d| < delta``, else ``delta (|d| - 0.5 delta)``, times ``weight``.

    >>> import lucid
    >>> huber_loss(lucid.tensor([0.5, 3.0]), lucid.tensor([0.0, 0.0]), reduction="none").tolist()
    [0.125, 2.5]
    """
    delta = float(delta)
    if not delta > 0:
        raise RuntimeError(f"huber_loss does not support non-positive values for delta, got {delta}")
    return _pair_loss("huber_loss", input_, target, reduction, (), lambda: [
        ("sub", {}, (0, 1)),                 # %0 d
        ("abs", {}, ("%0",)),                # %1 |d|
        ("lt", {}, ("%1", 2)),               # %2 |d| < delta
        ("mul", {}, ("%0", "%0")),
        ("mul", {}, ("%3", 3)),              # %4 0.5 d²
        ("sub", {}, ("%1", 4)),
        ("mul", {}, ("%5", 2)),              # %6 delta (|d| - 0.5 delta)
        ("select", {}, ("%2", "%4", "%6"))], (delta, 0.5, 0.5 * delta), weight=weight,
        weighted_mean="mean")


def softplus_steps(z, zero, at: int) -> list:
    """``log(1 + exp(z)) = log1p(exp(-|z|)) + max(z, 0)`` (stable) as steps numbered
    from ``at``, on wire ``z``; ``zero`` is the operand holding 0.0."""
    s = f"%{at}"
    return [("abs", {}, (z,)),
            ("neg", {}, (s,)),
            ("exp", {}, (f"%{at + 1}",)),
            ("log1p", {}, (f"%{at + 2}",)),
            ("maximum", {}, (z, zero)),
            ("add", {}, (f"%{at + 3}", f"%{at + 4}"))]


def soft_margin_loss(input_: Tensor, target, size_average=None, reduce=None,
                     reduction: str = "mean") -> Tensor:
    """``log(1 + exp(-target · input))`` (targets ±1), reduced.

    >>> import lucid
    >>> round(soft_margin_loss(lucid.tensor([0.0]), lucid.tensor([1.0])).item(), 6)  # log 2
    0.693147
    """
    reduction = legacy_reduction(size_average, reduce, reduction)
    return _pair_loss("soft_margin_loss", input_, target, reduction, (), lambda: [
        ("mul", {}, (0, 1)), ("neg", {}, ("%0",)), *softplus_steps("%1", 2, 2)], (0.0,), warn=False)


def margin_ranking_loss(input1: Tensor, input2: Tensor, target, margin: float = 0.0, size_average=None,
                        reduce=None, reduction: str = "mean") -> Tensor:
    """``max(0, -target · (input1 - input2) + margin)``, reduced.

    >>> import lucid
    >>> margin_ranking_loss(lucid.tensor([1.0, 1.0]), lucid.tensor([0.0, 0.0]),
    ...                     lucid.tensor([1.0, -1.0]), reduction="none").tolist()
    [0.0, 1.0]
    """
    reduction = legacy_reduction(size_average, reduce, reduction)
    x1, x2, y = float_operands("margin_ranking_loss", input1, input2, target)
    if not x1.ndim == x2.ndim == y.ndim:
        raise ValueError(f"margin_ranking_loss: All input tensors should have same dimension but got "
                         f"sizes: input1: {x1.shape}, input2: {x2.shape}, target: {y.shape}")
    _broadcast("margin_ranking_loss", x1, x2, y)
    reduce_ = reduction_steps(reduction, "margin_ranking_loss")
    chain = loss_chain("margin_ranking_loss", reduction, lambda: [
        ("sub", {}, (0, 1)), ("mul", {}, (2, "%0")), ("neg", {}, ("%1",)), ("add", {}, ("%2", 3)),
        ("maximum", {}, ("%3", 4)), *reduce_])
    return dispatch.call(chain, (x1, x2, y, float(margin), 0.0))


def _broadcast(op: str, *tensors) -> tuple:
    try:
        return np.broadcast_shapes(*(t.shape for t in tensors))
    except ValueError:
        shapes = ", ".join(str(t.shape) for t in tensors)
        raise ValueError(f"{op}: shapes {shapes} do not broadcast") from None


def hinge_embedding_loss(input_: Tensor, target, margin: float = 1.0, size_average=None, reduce=None,
                         reduction: str = "mean") -> Tensor:
    """``input`` where ``target == 1``, ``max(0, margin - input)`` where ``target == -1``.

    >>> import lucid
    >>> hinge_embedding_loss(lucid.tensor([0.3, 0.3]), lucid.tensor([1.0, -1.0]),
    ...                      reduction="none").tolist()
    [0.30000001192092896, 0.699999988079071]
    """
    reduction = legacy_reduction(size_average, reduce, reduction)
    return _pair_loss("hinge_embedding_loss", input_, target, reduction, (), lambda: [
        ("sub", {}, (2, 0)), ("maximum", {}, ("%0", 3)),      # %1 max(0, margin - x)
        ("ne", {}, (1, 4)), ("select", {}, ("%2", "%1", 3)),  # %3 where target != 1
        ("ne", {}, (1, 5)), ("select", {}, ("%4", 0, 3)),     # %5 x where target != -1
        ("add", {}, ("%3", "%5"))], (float(margin), 0.0, 1.0, -1.0), warn=False)


def kl_div(input_: Tensor, target, size_average=None, reduce=None, reduction: str = "mean",
           log_target: bool = False) -> Tensor:
    """``target · (log target - input)`` (0 where target is 0), ``input`` holding
    log-probabilities; ``log_target``: ``exp(target) · (target - input)``. ``'batchmean'``
    divides the sum by the batch size (``'mean'`` by every element, and warns, as PyTorch).

    >>> import lucid
    >>> round(kl_div(lucid.tensor([[-0.6931472, -0.6931472]]), lucid.tensor([[1.0, 0.0]]),
    ...              reduction="batchmean").item(), 6)  # log 2
    0.693147
    """
    if size_average is not None or reduce is not None:
        reduction = legacy_reduction(size_average, reduce, reduction)
    check_reduction(reduction, "kl_div", ("batchmean",))
    if reduction == "mean":
        warnings.warn("kl_div: reduction: 'mean' divides the total loss by both the batch size and the "
                      "support size.'batchmean' divides only by the batch size, and aligns with the KL "
                      "div math definition.'mean' will be changed to behave the same as 'batchmean' in "
                      "the next major release.", UserWarning, stacklevel=2)
    x, t = float_operands("kl_div", input_, target)
    check_target_shape("kl_div", x, t, warn=False)
    batch = reduction == "batchmean" and x.ndim > 0
    reduce_ = reduction_steps("sum" if reduction == "batchmean" else reduction, "kl_div")
    n = 2 if log_target else 4       # operands: x, t, (0.0, 1.0 unless log_target), the batch size
    if batch:
        reduce_ = [*reduce_, ("div", {}, (PREVIOUS, n))]
    log_steps = [("exp", {}, (1,)), ("sub", {}, (1, 0)), ("mul", {}, ("%0", "%1"))]
    steps = [("gt", {}, (1, 2)), ("select", {}, ("%0", 1, 3)), ("log", {}, ("%1",)),   # log t (1 at 0)
             ("mul", {}, (1, "%2")), ("mul", {}, (1, 0)), ("sub", {}, ("%3", "%4"))]
    chain = loss_chain("kl_div", (bool(log_target), reduction, batch), lambda: [
        *(log_steps if log_target else steps), *reduce_])
    numbers = (() if log_target else (0.0, 1.0)) + ((float(x.shape[0]),) if batch else ())
    return dispatch.call(chain, (x, t, *numbers))


def poisson_nll_loss(input_: Tensor, target, log_input: bool = True, full: bool = False,
                     size_average=None, eps: float = 1e-8, reduce=None, reduction: str = "mean") -> Tensor:
    """Negative log likelihood of a Poisson target: ``exp(input) - target · input``
    (``log_input``), else ``input - target · log(input + eps)``; ``full`` adds Stirling's
    ``target log target - target + 0.5 log(2π target)`` where ``target > 1``.

    >>> import lucid
    >>> poisson_nll_loss(lucid.tensor([0.0]), lucid.tensor([2.0])).item()
    1.0
    """
    reduction = legacy_reduction(size_average, reduce, reduction)
    log_input, full = bool(log_input), bool(full)
    loss = ([("exp", {}, (0,)), ("mul", {}, (1, 0)), ("sub", {}, ("%0", "%1"))] if log_input else
            [("add", {}, (0, 2)), ("log", {}, ("%0",)), ("mul", {}, (1, "%1")), ("sub", {}, (0, "%2"))])
    k = len(loss)
    stirling = [("gt", {}, (1, 4)), ("select", {}, (f"%{k}", 1, 4)),          # t, 1 where t <= 1
                ("log", {}, (f"%{k + 1}",)), ("mul", {}, (f"%{k + 1}", f"%{k + 2}")),
                ("sub", {}, (f"%{k + 3}", f"%{k + 1}")),                     # t log t - t
                ("mul", {}, (f"%{k + 2}", 6)), ("add", {}, (f"%{k + 5}", 5)),  # 0.5 log(2π t)
                ("add", {}, (f"%{k + 4}", f"%{k + 6}")),
                ("select", {}, (f"%{k}", f"%{k + 7}", 3)),
                ("add", {}, (f"%{k - 1}", f"%{k + 8}"))]
    return _pair_loss("poisson_nll_loss", input_, target, reduction, (log_input, full),
                      lambda: [*loss, *(stirling if full else [])],
                      (float(eps), *((0.0, 1.0, 0.5 * math.log(2 * math.pi), 0.5) if full else ())),
                      warn=False)


def cosine_embedding_loss(input1: Tensor, input2: Tensor, target, margin: float = 0.0, size_average=None,
                          reduce=None, reduction: str = "mean") -> Tensor:
    """``1 - cos(input1, input2)`` where ``target == 1``, ``max(0, cos - margin)`` where
    ``target == -1``; rows ``(N, D)`` with targets ``(N,)``, or one pair ``(D,)`` with a
    0-d target.

    >>> import lucid
    >>> cosine_embedding_loss(lucid.tensor([[1.0, 0.0], [1.0, 0.0]]), lucid.tensor([[1.0, 0.0], [0.0, 1.0]]),
    ...                       lucid.tensor([1.0, 1.0]), reduction="none").tolist()
    [0.0, 1.0]
    """
    reduction = legacy_reduction(size_average, reduce, reduction)
    op = "cosine_embedding_loss"
    x1, x2, y = float_operands(op, input1, input2, target)
    if y.ndim > 1:
        raise ValueError(f"{op}: 0D or 1D target tensor expected, multi-target not supported, got {y.shape}")
    if x1.shape != x2.shape or x1.ndim != y.ndim + 1 or (y.ndim and y.shape[0] != x1.shape[0]):
        raise ValueError(f"{op}: inputs {x1.shape} and {x2.shape} and target {y.shape} do not fit: "
                         f"expected inputs of one shape (N, D) with a target (N,), or (D,) with a 0-d target")
    ax = y.ndim
    reduce_ = reduction_steps(reduction, op)
    chain = loss_chain(op, (ax, reduction), lambda: [
        # operands: 0 x1, 1 x2, 2 y, 3 margin, 4 eps, 5 0.0, 6 1.0, 7 -1.0
        ("mul", {}, (0, 1)), ("sum", {"axes": ax}, ("%0",)),                     # %1 x1·x2
        ("mul", {}, (0, 0)), ("sum", {"axes": ax}, ("%2",)), ("add", {}, ("%3", 4)),
        ("mul", {}, (1, 1)), ("sum", {"axes": ax}, ("%5",)), ("add", {}, ("%6", 4)),
        ("mul", {}, ("%4", "%7")), ("sqrt", {}, ("%8",)), ("div", {}, ("%1", "%9")),  # %10 cos
        ("sub", {}, (6, "%10")), ("sub", {}, ("%10", 3)), ("maximum", {}, ("%12", 5)),
        ("eq", {}, (2, 6)), ("select", {}, ("%14", "%11", 5)),
        ("eq", {}, (2, 7)), ("select", {}, ("%16", "%13", 5)), ("add", {}, ("%15", "%17")), *reduce_])
    return dispatch.call(chain, (x1, x2, y, float(margin), 1e-12, 0.0, 1.0, -1.0))
