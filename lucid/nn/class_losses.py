"""Classification losses: ``nll_loss``, ``cross_entropy``, ``binary_cross_entropy`` and
``binary_cross_entropy_with_logits``, each one ``dispatch.Chain`` (one fused native call
in eager mode).

Class-index targets become one-hot codes in the graph (``eq(target, iota)``), so
``weight``, ``ignore_index`` and ``label_smoothing`` are products with those codes:
the per-element loss is ``-Σ_c q_c · logp_c`` with ``q = w · ((1-ε) onehot + ε/C)``
(0 at ignored targets), and ``'mean'`` divides by ``Σ w_target`` over the targets not
ignored, as PyTorch.

>>> import lucid
>>> z = lucid.zeros(2, 4)
>>> round(cross_entropy(z, [1, 3]).item(), 6)                    # log 4
1.386294
>>> cross_entropy(z, lucid.tensor([1, -100]), reduction="none")[1].item() == 0   # ignored
True
"""
from __future__ import annotations

import math

import numpy as np

from .. import dispatch
from ..dispatch import as_tensor, cast
from ..tensor import Tensor
from .chain_steps import ChainMemo
from .functional import _log_softmax_steps
from .functional_losses import check_target_shape, float_operands, softplus_steps
from .index_bounds import indices_below
from .loss_reduction import legacy_reduction, loss_chain, reduction_steps


def nll_loss(input_: Tensor, target, weight=None, size_average=None, ignore_index: int = -100,
             reduce=None, reduction: str = "mean") -> Tensor:
    """``-input[n, target[n], d...]`` (``input`` holds log-probabilities ``(N, C, d...)``
    or ``(C,)``), times ``weight[target]``; ignored targets give 0.

    >>> import lucid
    >>> nll_loss(lucid.tensor([[-1.0, -2.0], [-3.0, -4.0]]), [1, 0]).item()
    2.5
    """
    reduction = legacy_reduction(size_average, reduce, reduction)
    return _class_loss("nll_loss", as_tensor(input_), target, weight, ignore_index, reduction, 0.0, False)


def cross_entropy(input_: Tensor, target, weight=None, size_average=None, ignore_index: int = -100,
                  reduce=None, reduction: str = "mean", label_smoothing: float = 0.0) -> Tensor:
    """Cross entropy of logits ``(N, C, d...)`` or ``(C,)`` against class indices
    (any integer dtype, ``(N, d...)`` or ``()``) or against class probabilities (a float
    target of the input's shape). One eager call: the one-hot codes, the log-softmax and
    the reduction run as fused native kernels.

    >>> import lucid
    >>> round(cross_entropy(lucid.zeros(2, 4), [1, 3], label_smoothing=0.5).item(), 6)
    1.386294
    """
    reduction = legacy_reduction(size_average, reduce, reduction)
    smoothing = float(label_smoothing)
    if not 0.0 <= smoothing <= 1.0:
        raise ValueError(f"cross_entropy: label_smoothing must be between 0.0 and 1.0, got {smoothing}")
    return _class_loss("cross_entropy", as_tensor(input_), target, weight, ignore_index, reduction,
                       smoothing, True)


#: a call's signature -> (chain, classes, constants) of the class-index losses whose
#: every target was a class (none ignored); the next call with the same signature
#: checks its targets with one reduction and calls the chain
_SEEN = ChainMemo()


def _class_loss(op, z, target, weight, ignore_index, reduction, smoothing, logits):
    key = _key(op, z, target, weight, ignore_index, reduction, smoothing, logits)
    seen = _SEEN.get(key)
    if seen is not None:
        chain, c, constants = seen
        a = target._data
        t = _wrap(a.astype(z._data.dtype))
        operands = [z, t, *constants] if weight is None else [z, t, cast(weight, z.dtype), *constants]
        if reduction != "none":
            # a target that is not a class makes the loss NaN or infinite (``_index_loss``):
            # the targets are checked only then
            out = dispatch.call(chain, operands)
            if _isfinite(float(out._data)) or indices_below(a, c):
                return out
        elif indices_below(a, c):
            return dispatch.call(chain, operands)
    reduce = reduction_steps(reduction, op)
    if z.ndim == 0:
        raise ValueError(f"{op}: input must have a class dimension, got shape {z.shape}")
    if z.dtype not in ("float32", "float64"):
        raise TypeError(f"{op}: input must be float32 or float64, got {z.dtype}")
    single = z.ndim == 1                  # (C,) logits: one sample
    zz = z.reshape(1, z.shape[0]) if single else z
    c = zz.shape[1]
    w = _class_weight(op, weight, c, z.dtype)
    if c == 0:
        out = _without_classes(op, zz, z.shape, target, ignore_index, reduction, smoothing)
    elif _is_probabilities(target, z):
        out = _probability_loss(op, zz, target, w, reduction, reduce, smoothing, logits)
    else:
        t, ignored = class_targets(op, target, z.shape, c, int(ignore_index), z.dtype)
        chain, operands = _index_loss(op, zz, t.reshape(1) if single else t, w,
                                      int(ignore_index) if ignored else None, reduction, reduce, smoothing, logits)
        if (key is not None and not single and not ignored and type(target) is Tensor
                and target._data.size and target._data.dtype.kind in "iu"
                and (weight is None or type(weight) is Tensor)):
            _SEEN.keep(key, (chain, c, operands[2 + (w is not None):]))
        out = dispatch.call(chain, operands)
    return out.reshape(()) if single and reduction == "none" else out


def _without_classes(op, z, shape, target, ignore_index, reduction, smoothing):
    """The loss over no classes (``z`` of shape (N, 0, ...)), as PyTorch gives it: the
    log-probabilities are empty, so a probability target's loss is ``-0.0`` an element
    (``-Σ`` of nothing), and a class-index target can only be ``ignore_index`` (any other
    is out of bounds: IndexError), its loss 0, NaN with label smoothing (``ε / C``);
    ``'mean'`` divides by a count of 0 (NaN).

    >>> import lucid
    >>> F = lucid.nn.functional
    >>> x = lucid.zeros((2, 0))
    >>> F.cross_entropy(x, lucid.zeros((2, 0)), reduction="none").tolist(), F.cross_entropy(x, lucid.zeros((2, 0))).item()
    ([-0.0, -0.0], nan)
    """
    nothing = z.sum(1)                      # zeros of the loss's shape, through z for the gradient
    if _is_probabilities(target, Tensor._wrap(np.empty(shape, z.dtype))):
        p = as_tensor(target) if isinstance(target, Tensor) else Tensor(np.asarray(target, z.dtype))
        per = (z * cast(p.reshape(z.shape), z.dtype)).sum(1)
        sign = -1.0
    else:
        class_targets(op, target, shape, 0, int(ignore_index), z.dtype)
        per = nothing * float("nan") if smoothing > 0 else nothing
        sign = 1.0
    if reduction == "none":
        out = per * sign if sign < 0 else per
        return out.reshape(()) if len(shape) == 1 else out
    total = per.sum() * sign if sign < 0 else per.sum()
    return total if reduction == "sum" else total / 0.0


_isfinite = math.isfinite
_wrap = Tensor._wrap


def _key(op, z, target, weight, ignore_index, reduction, smoothing, logits):
    """``_SEEN``'s key of a call: built in place for the common one (two plain tensors,
    no weight), else ``ChainMemo.key`` (a key of another length: they never meet)."""
    if weight is None and type(z) is Tensor and type(target) is Tensor:
        d, a = z._data, target._data
        if d is not None and a is not None:
            return (op, d.shape, d.dtype, a.shape, a.dtype, ignore_index, reduction, smoothing, logits)
    return _SEEN.key(op, z, target, weight, ignore_index, reduction, smoothing, logits)


def _is_probabilities(target, z) -> bool:
    """A float target of the input's shape holds class probabilities (as in PyTorch)."""
    if isinstance(target, Tensor):
        return target.shape == z.shape and target.dtype in ("float32", "float64")
    a = np.asarray(target)
    return a.shape == z.shape and a.dtype.kind == "f"


def _class_weight(op, weight, c, dtype):
    if weight is None:
        return None
    w = as_tensor(weight)
    if w.shape != (c,):
        raise ValueError(f"{op}: weight tensor should be defined either for all {c} classes or no "
                         f"classes but got weight tensor of shape {w.shape}")
    return cast(w, dtype)


def class_targets(op: str, target, shape, c: int, ignore_index: int, dtype: str):
    """Validate class-index targets for an input of ``shape`` (concrete data: every
    value in ``[0, c)`` or ``ignore_index``); return them as a ``dtype`` tensor, and
    whether any may be ``ignore_index`` (always, for traced targets)."""
    want = (shape[0], *shape[2:]) if len(shape) > 1 else ()
    what = "logits" if op == "cross_entropy" else "input"
    t = target if isinstance(target, Tensor) else None
    if t is not None and t._data is None:       # traced: values are not known yet
        if t.shape != want:
            raise ValueError(f"{op}: {what} {shape} and target {t.shape} do not fit: "
                             f"expected a target of shape {want}")
        return cast(t, dtype), True
    a = t._data if t is not None else np.asarray(target)
    if a.shape != want:
        raise ValueError(f"{op}: {what} {shape} and target {a.shape} do not fit: "
                         f"expected a target of shape {want}")
    if a.dtype.kind not in "iuf":
        raise TypeError(f"{op}: target must hold class indices (integers), got {a.dtype}")
    if a.dtype.kind == "f" and not np.all(a == np.round(a)):
        raise TypeError(f"{op}: class targets must be integers, got {a.dtype} values that are not")
    ignored = False
    if a.size:
        bad = (a < 0) | (a >= c)
        if bad.any():
            is_ignored = a == ignore_index
            bad &= ~is_ignored
            if bad.any():
                raise IndexError(f"{op}: Target {a[bad].flat[0]:g} is out of bounds: classes lie "
                                 f"in [0, {c}) (ignore_index={ignore_index})")
            ignored = True
        elif 0 <= ignore_index < c:
            ignored = bool((a == ignore_index).any())
    return Tensor._wrap(a.astype(dtype)), ignored  # checked above: a plain float array


def _index_loss(op, z, t, w, ignore_index, reduction, reduce, smoothing, logits):
    """The chain of the loss of class indices ``t`` (a float tensor ``(N, d...)``) for ``z``
    ``(N, C, d...)``, and its operands (``z``, ``t``, the weight if any, then constants);
    ``ignore_index`` None: no target is ignored (then an unweighted mean is a plain mean)."""
    c, spatial = z.shape[1], z.shape[2:]
    ones = (1,) * len(spatial)
    ignoring = ignore_index is not None
    masked = ignoring and 0 <= ignore_index < c   # otherwise its one-hot row is all zeros already
    weighted = w is not None
    plain_mean = reduction == "mean" and not (weighted or ignoring)
    params = (c, spatial, z.dtype, reduction, weighted, masked, smoothing > 0, logits, ignoring)

    operands, at = [z, t], {}      # the numbers this chain reads, by name: operand positions

    def put(name, value):
        at[name] = len(operands)
        operands.append(value)

    if weighted:
        put("weight", w)
    if masked:
        put("ignore_index", float(ignore_index))
        put("minus_one", -1.0)
    if smoothing > 0:
        put("keep", 1.0 - smoothing)
        put("spread", smoothing / c)
    if smoothing == 0:
        put("nought", 0.0)
    if reduction == "mean" and ignoring:
        put("zero", 0.0)
        put("one", 1.0)
        put("nan", float("nan"))

    def make():
        steps = _log_softmax_steps(1) if logits else []
        logp = f"%{len(steps) - 1}" if logits else 0
        tgt = 1
        if masked:  # an ignored target becomes -1: a row of zeros
            steps += [("eq", {}, (1, at["ignore_index"])), ("select", {}, (f"%{len(steps)}", at["minus_one"], 1))]
            tgt = f"%{len(steps) - 1}"
        k = len(steps)
        steps += [("reshape", {"shape": (-1, 1, *spatial)}, (tgt,)),
                  ("iota", {"shape": (1, c, *ones), "axis": 1, "dtype": z.dtype}, ()),
                  ("eq", {}, (f"%{k}", f"%{k + 1}")),
                  ("cast", {"dtype": z.dtype}, (f"%{k + 2}",))]           # one-hot codes
        onehot = wo = f"%{k + 3}"
        if weighted:
            steps += [("reshape", {"shape": (1, c, *ones)}, (at["weight"],)), ("mul", {}, (onehot, f"%{k + 4}"))]
            wr, wo = f"%{k + 4}", f"%{k + 5}"                         # weighted one-hot
        q = wo
        if smoothing > 0:
            j = len(steps)
            steps += [("sum", {"axes": 1, "keepdims": True}, (onehot,)),   # 1, 0 where ignored
                      ("mul", {}, (f"%{j}", wr) if weighted else (f"%{j}", at["spread"])),
                      *([("mul", {}, (f"%{j + 1}", at["spread"]))] if weighted else []),
                      ("mul", {}, (wo, at["keep"]))]
            steps += [("add", {}, (f"%{len(steps) - 2}", f"%{len(steps) - 1}"))]
            q = f"%{len(steps) - 1}"
        j = len(steps)
        if smoothing > 0:
            steps += [("mul", {}, (q, logp))]
        else:  # the target's term alone: a -inf or NaN elsewhere stays out, as in PyTorch
            term = logp
            if weighted:
                steps += [("mul", {}, (wr, logp))]
                term = f"%{j}"
            steps += [("select", {}, (f"%{k + 2}", term, at["nought"]))]
        j = len(steps) - 1
        steps += [("sum", {"axes": 1}, (f"%{j}",))]
        if not ignoring:  # ÷ the row's one-hot count: 1, or 0 for a target that is not a
            # class (its loss NaN or infinite: how a repeated call learns to check them)
            steps += [("sum", {"axes": 1}, (onehot,)), ("div", {}, (f"%{j + 1}", f"%{j + 2}"))]
        steps += [("neg", {}, (f"%{len(steps) - 1}",))]
        if reduction != "mean" or plain_mean:
            return steps + reduce
        j = len(steps)   # mean: Σ loss / Σ w[target] over the targets not ignored
        if not ignoring:
            return steps + [("sum", {}, (f"%{j - 1}",)), ("sum", {}, (wo,)), ("div", {}, (f"%{j}", f"%{j + 1}"))]
        zero, one, nan = at["zero"], at["one"], at["nan"]   # every target ignored: NaN, zero gradient
        return steps + [("sum", {}, (f"%{j - 1}",)), ("sum", {}, (wo,)), ("eq", {}, (f"%{j + 1}", zero)),
                        ("select", {}, (f"%{j + 2}", one, f"%{j + 1}")), ("div", {}, (f"%{j}", f"%{j + 3}")),
                        ("select", {}, (f"%{j + 2}", nan, zero)), ("add", {}, (f"%{j + 4}", f"%{j + 5}"))]

    return loss_chain(op, params, make), operands


def _probability_loss(op, z, target, w, reduction, reduce, smoothing, logits):
    """The loss of class probabilities ``target`` (``z``'s shape): ``-Σ_c w_c p_c logp_c``
    per element, ``'mean'`` over the elements (weights do not divide)."""
    p = as_tensor(target) if isinstance(target, Tensor) else Tensor(np.asarray(target, z.dtype))
    p = cast(p.reshape(z.shape), z.dtype)
    spatial = z.shape[2:]
    weighted = w is not None
    params = ("probs", z.dtype, spatial, reduction, weighted, smoothing > 0, logits)

    def make():
        # operands: 0 z, 1 p, then the weight, then 1 - ε and ε / C
        steps = _log_softmax_steps(1) if logits else []
        logp = f"%{len(steps) - 1}" if logits else 0
        q = 1
        if smoothing > 0:
            j, keep = len(steps), 2 + weighted
            steps += [("mul", {}, (1, keep)), ("add", {}, (f"%{j}", keep + 1))]
            q = f"%{j + 1}"
        if weighted:
            j = len(steps)
            steps += [("reshape", {"shape": (1, -1, *((1,) * len(spatial)))}, (2,)), ("mul", {}, (q, f"%{j}"))]
            q = f"%{j + 1}"
        j = len(steps)
        return steps + [("mul", {}, (q, logp)), ("sum", {"axes": 1}, (f"%{j}",)),
                        ("neg", {}, (f"%{j + 1}",)), *reduce]

    c = z.shape[1]
    operands = [z, p, *([w] if weighted else []), *((1.0 - smoothing, smoothing / c) if smoothing > 0 else ())]
    return dispatch.call(loss_chain(op, params, make), operands)


def binary_cross_entropy(input_: Tensor, target, weight=None, size_average=None, reduce=None,
                         reduction: str = "mean") -> Tensor:
    """``-weight · (target log input + (1 - target) log(1 - input))`` for probabilities
    ``input`` in [0, 1] (each log clamped at -100, as PyTorch).

    >>> import lucid
    >>> round(binary_cross_entropy(lucid.tensor([0.5, 0.5]), lucid.tensor([1.0, 0.0])).item(), 6)
    0.693147
    """
    reduction = legacy_reduction(size_average, reduce, reduction)
    x, t, *w = float_operands("binary_cross_entropy", input_, target, *(() if weight is None else (weight,)))
    check_target_shape("binary_cross_entropy", x, t, exact=True)
    _check_weight("binary_cross_entropy", "weight", w, x)
    a = x._data
    if a is not None and a.size and not ((a >= 0) & (a <= 1)).all():
        raise RuntimeError("binary_cross_entropy: all elements of input should be between 0 and 1")
    reduce_ = reduction_steps(reduction, "binary_cross_entropy")
    chain = loss_chain("binary_cross_entropy", (bool(w), reduction), lambda: [
        ("log", {}, (0,)), ("maximum", {}, ("%0", 2)),                 # %1 log x, at least -100
        ("sub", {}, (3, 0)), ("log", {}, ("%2",)), ("maximum", {}, ("%3", 2)),
        ("mul", {}, (1, "%1")), ("sub", {}, (3, 1)), ("mul", {}, ("%6", "%4")),
        ("add", {}, ("%5", "%7")), ("neg", {}, ("%8",)),
        *([("mul", {}, ("%9", 4))] if w else []), *reduce_])
    return dispatch.call(chain, (x, t, -100.0, 1.0, *w))


def _check_weight(op, name, ws, x):
    for w in ws:
        try:
            ok = np.broadcast_shapes(w.shape, x.shape) == x.shape
        except ValueError:
            ok = False
        if not ok:
            raise ValueError(f"{op}: {name} {w.shape} does not broadcast to the input {x.shape}")


def binary_cross_entropy_with_logits(input_: Tensor, target, weight=None, size_average=None, reduce=None,
                                     reduction: str = "mean", pos_weight=None) -> Tensor:
    """``binary_cross_entropy(sigmoid(input), target)`` computed stably from logits:
    ``(1 - t) x + (1 + (pos_weight - 1) t) · softplus(-x)``, times ``weight``.

    >>> import lucid
    >>> round(binary_cross_entropy_with_logits(lucid.tensor([0.0]), lucid.tensor([1.0])).item(), 6)
    0.693147
    """
    reduction = legacy_reduction(size_average, reduce, reduction)
    op = "binary_cross_entropy_with_logits"
    extra = [v for v in (weight, pos_weight) if v is not None]
    x, t, *extra = float_operands(op, input_, target, *extra)
    check_target_shape(op, x, t, exact=True)
    w = extra[:1] if weight is not None else []
    pw = extra[-1:] if pos_weight is not None else []
    _check_weight(op, "weight", w, x)
    _check_weight(op, "pos_weight", pw, x)
    reduce_ = reduction_steps(reduction, op)

    def make():
        # operands: 0 x, 1 t, 2 0.0, 3 1.0, then weight, then pos_weight
        steps = [("neg", {}, (0,)), *softplus_steps("%0", 2, 1),      # %6 softplus(-x)
                 ("sub", {}, (3, 1)), ("mul", {}, ("%7", 0))]          # %8 (1 - t) x
        sp = "%6"
        if pw:
            at = 4 + len(w)
            steps += [("sub", {}, (at, 3)), ("mul", {}, ("%9", 1)), ("add", {}, ("%10", 3)),
                      ("mul", {}, ("%11", "%6"))]
            sp = "%12"
        steps += [("add", {}, ("%8", sp))]
        if w:
            steps += [("mul", {}, (f"%{len(steps) - 1}", 4))]
        return steps + reduce_

    chain = loss_chain(op, (bool(w), bool(pw), reduction), make)
    return dispatch.call(chain, (x, t, 0.0, 1.0, *w, *pw))
