"""In-place ops: ``add_``, ``sub_``, ``mul_``, ``div_``, ``zero_``, ``fill_``, ``copy_``,
``clamp_`` (here), and the augmented assignments ``x += y`` ... and the other ``*_``
methods (``lucid.inplace_ops``). Each computes the eager op's result and writes it into
the tensor's own array (so views of that array see it, as in PyTorch), then returns the
tensor. The result keeps the tensor's dtype: PyTorch's rule refuses a result of a
higher kind (``int_tensor += 0.5``: RuntimeError "result type Float can't be cast to the
desired output type Long"); a same-kind result is cast (float64 into float32).

Autograd, as in PyTorch: a leaf that requires grad is refused while grad mode is on
(``lucid.no_grad()`` for an optimiser's update); any other tensor may be written. When
autograd records the write (the tensor or an operand requires grad) the tensor takes the
op's history (``lucid.rebase``: calls recorded before keep the old one; a view's base
takes it too). Every write bumps the memory's version counter (``t._version``, shared by
views, see ``lucid.versions``), and ``backward()`` raises PyTorch's RuntimeError when a
value its gradient reads was written after it was saved. Inside ``lucid.compile`` a
tensor from outside the function is updated at every call (as optimisers' updates are);
a tensor computed inside it takes the new value from then on.

>>> import lucid
>>> x = lucid.tensor([1.0, 2.0, 3.0])
>>> x.add_(1.0).mul_(2.0).tolist(), x.clamp_(max=6.0).tolist(), x._version
([4.0, 6.0, 8.0], [4.0, 6.0, 6.0], 3)
>>> w = lucid.tensor([1.0], requires_grad=True)
>>> with lucid.no_grad():
...     _ = w.sub_(0.5)
>>> w.tolist()
[0.5]
>>> h = w * 2.0
>>> h.mul_(w)            # recorded: h is now w * 2 * w
Tensor([0.5], grad=None)
>>> h.backward(); w.grad.tolist()
[2.0]
"""
from __future__ import annotations

import numpy as np

from . import dispatch, grad_mode, rebase, tracing
from .dispatch import as_tensor, cast

__all__ = ["add_", "sub_", "mul_", "div_", "zero_", "fill_", "copy_", "clamp_"]

_KIND = {"bool": 0, "int32": 1, "int64": 1, "float32": 2, "float64": 2}


class CastError(RuntimeError, TypeError):
    """An in-place result of a higher dtype kind than the tensor's (PyTorch raises
    RuntimeError; lucid's earlier TypeError still catches it)."""


class ShapeMismatch(RuntimeError, ValueError):
    """An in-place result whose broadcast shape is not the tensor's (PyTorch's
    RuntimeError; a ValueError as lucid's other shape errors)."""


_TORCH_NAMES = {"bool": "Bool", "int32": "Int", "int64": "Long", "float32": "Float", "float64": "Double"}


def _check_target(t, op: str) -> None:
    """Refuse in-place writes PyTorch refuses (before computing anything), and mark the
    start of the op for autograd (``lucid.rebase.begin``)."""
    tracer = tracing._state.tracer
    if t.requires_grad and grad_mode._state.enabled:
        # a tensor being traced is a leaf only as an argument (else computed inside)
        if t._is_leaf and (tracer is None or t._data is not None or id(t) in tracer.arg_index):
            raise RuntimeError(f"{op}: a leaf Variable that requires grad is being used in an "
                               f"in-place operation (shape {tuple(t.shape)}); wrap it in "
                               f"lucid.no_grad() or use the out-of-place op")
        if t._data is not None:
            rebase.check_view_of_leaf(t, op)
    data = t._data
    if data is not None and not data.flags.writeable:
        raise RuntimeError(f"{op}: unsupported operation: more than one element of the written-to "
                           f"tensor (shape {tuple(t.shape)}) refers to a single memory location "
                           f"(an expanded view); clone() it first")
    if data is not None and tracer is None:
        rebase.begin(t)


def _write(t, result, op: str, casting: bool = False, reads_self: bool = True):
    """Store ``result`` (a tensor) into ``t``; its shape must be ``t``'s (no growing) and,
    unless ``casting``, its dtype must not be of a higher kind (float into int).
    ``reads_self``: the op's gradient may read ``t``'s old values (autograd then keeps
    a copy of them)."""
    if tuple(result.shape) != tuple(t.shape):
        raise ShapeMismatch(f"{op}: output with shape {tuple(t.shape)} doesn't match the broadcast "
                         f"shape {tuple(result.shape)}")
    if not casting and _KIND[str(result.dtype)] > _KIND[str(t.dtype)]:
        raise CastError(f"{op}: result type {_TORCH_NAMES[str(result.dtype)]} can't be cast to the "
                        f"desired output type {_TORCH_NAMES[str(t.dtype)]} (shape {tuple(t.shape)})")
    result = cast(result, t.dtype)
    tracer = tracing._state.tracer
    if tracer is not None:
        _write_traced(tracer, t, result, op)
        return t
    return rebase.store(t, result, reads_self)


def _write_traced(tracer, t, result, op: str) -> None:
    if t._data is not None:  # from outside the function: every call updates its array
        tracer.assign(t, result)
    elif id(t) in tracer.arg_index:
        raise tracing.TracingError(f"{op}: an argument of a compiled function cannot be updated in "
                                   f"place (at {tracing.user_location()}); return the new value")
    else:  # computed inside: rebind it (later reads see the new value)
        t._value = result._value


def _scaled(other, alpha):
    return other if alpha == 1 else other * alpha


def add_(self, other, alpha=1):
    """``self += alpha * other`` in place."""
    _check_target(self, "add_")
    return _write(self, dispatch.binary("add", self, _scaled(other, alpha)), "add_", reads_self=False)


def sub_(self, other, alpha=1):
    """``self -= alpha * other`` in place."""
    _check_target(self, "sub_")
    return _write(self, dispatch.binary("sub", self, _scaled(other, alpha)), "sub_", reads_self=False)


def mul_(self, other):
    """``self *= other`` in place."""
    _check_target(self, "mul_")
    return _write(self, dispatch.binary("mul", self, other), "mul_")


def div_(self, other):
    """``self /= other`` in place (true division: an integer tensor cannot hold it)."""
    _check_target(self, "div_")
    return _write(self, dispatch.binary("div", self, other), "div_")


def clamp_(self, min=None, max=None):  # noqa: A002 - PyTorch's names
    """``self.clamp(min, max)`` in place."""
    from .tensor_ops import clamp
    _check_target(self, "clamp_")
    return _write(self, clamp(self, min, max), "clamp_")


def fill_(self, value):
    """Every element set to ``value`` (a number or a 0-d tensor, converted to the dtype).

    >>> import lucid
    >>> lucid.zeros(2).fill_(2.5).tolist(), lucid.tensor([1, 2]).fill_(7.9).tolist()
    ([2.5, 2.5], [7, 7])
    """
    _check_target(self, "fill_")
    if hasattr(value, "_data") or isinstance(value, np.ndarray):
        value = as_tensor(value)
        if value.ndim != 0:
            raise ValueError(f"fill_: only supports 0-dimension value tensor but got tensor with "
                             f"shape {tuple(value.shape)}")
        return copy_(self, value)
    if not isinstance(value, (int, float, bool, np.number, np.bool_)):
        raise TypeError(f"fill_: the value must be a number or a 0-d tensor, got {type(value).__name__}")
    if tracing._state.tracer is not None:
        return copy_(self, as_tensor(np.array(value, dtype=str(self.dtype))))
    if self.requires_grad and grad_mode._state.enabled:  # recorded: it keeps requiring grad
        return rebase.store(self, dispatch._wrap(np.full(self.shape, value, self._data.dtype)), False)
    self._data[...] = value
    rebase.versions.bump(self)
    return self


def zero_(self):
    """Every element set to zero."""
    return fill_(self, 0)


def copy_(self, src, non_blocking: bool = False):
    """``src``'s values (broadcast to ``self``'s shape, converted to its dtype) written into
    ``self``.

    >>> import lucid
    >>> x = lucid.zeros(2, 2); x.copy_(lucid.tensor([1, 2])).tolist()
    [[1.0, 2.0], [1.0, 2.0]]
    """
    _check_target(self, "copy_")
    src = as_tensor(src)
    try:
        np.broadcast_shapes(src.shape, self.shape)
        ok = len(src.shape) <= len(self.shape) and np.broadcast_shapes(src.shape, self.shape) == tuple(self.shape)
    except ValueError:
        ok = False
    if not ok:
        raise ValueError(f"copy_: the source of shape {tuple(src.shape)} does not broadcast to "
                         f"the destination's shape {tuple(self.shape)}")
    if tuple(src.shape) != tuple(self.shape):
        src = src.expand(*self.shape)
    elif src.requires_grad and grad_mode._state.enabled and src.dtype == self.dtype:
        src = src.clone()   # the recorded copy (the source keeps its own history)
    return _write(self, src, "copy_", casting=True, reads_self=False)


def _install(Tensor) -> None:
    """Attach the in-place methods to ``Tensor`` (from ``lucid.tensor_ops._install``)."""
    Tensor.add_ = add_
    Tensor.sub_ = sub_
    Tensor.mul_ = mul_
    Tensor.div_ = div_
    Tensor.clamp_ = clamp_
    Tensor.clip_ = clamp_
    Tensor.fill_ = fill_
    Tensor.zero_ = zero_
    Tensor.copy_ = copy_
