"""In-place ops: ``add_``, ``sub_``, ``mul_``, ``div_``, ``zero_``, ``fill_``, ``copy_``,
``clamp_``. Each computes the eager op's result and writes it into the tensor's own
array (so views of that array see it, as in PyTorch), then returns the tensor.

Autograd keeps operand tensors, not copies, so an in-place write could change a value a
backward pass reads. Lucid refuses what it can see: a tensor that requires grad while
grad mode is on (PyTorch's leaf rule), and any result of a recorded call. (A plain
tensor used earlier as an operand of a recorded call is not detected: PyTorch's version
counters would catch that.) Inside ``lucid.compile`` a tensor from outside the function
is updated at every call (as optimisers' updates are); a tensor computed inside it takes
the new value from then on.

>>> import lucid
>>> x = lucid.tensor([1.0, 2.0, 3.0])
>>> x.add_(1.0).mul_(2.0).tolist(), x.clamp_(max=6.0).tolist()
([4.0, 6.0, 8.0], [4.0, 6.0, 6.0])
>>> w = lucid.tensor([1.0], requires_grad=True)
>>> with lucid.no_grad():
...     _ = w.sub_(0.5)
>>> w.tolist()
[0.5]
"""
from __future__ import annotations

import numpy as np

from . import dispatch, grad_mode, tracing
from .dispatch import as_tensor, cast

__all__ = ["add_", "sub_", "mul_", "div_", "zero_", "fill_", "copy_", "clamp_"]

_KIND = {"bool": 0, "int32": 1, "int64": 1, "float32": 2, "float64": 2}


def _check_target(t, op: str) -> None:
    """Refuse in-place writes autograd could not account for (before computing anything)."""
    if t.requires_grad and grad_mode.is_grad_enabled():
        if t.is_leaf:
            raise RuntimeError(f"{op}: a leaf Variable that requires grad is being used in an "
                               f"in-place operation (shape {tuple(t.shape)}); wrap it in "
                               f"lucid.no_grad() or use the out-of-place op")
        raise RuntimeError(f"{op}: an in-place operation on a tensor that autograd recorded "
                           f"(shape {tuple(t.shape)}) is not supported; use the out-of-place op")
    if not t.is_leaf:
        raise RuntimeError(f"{op}: an in-place operation on a tensor that autograd recorded "
                           f"(shape {tuple(t.shape)}) is not supported, even under no_grad; "
                           f"detach() it first")
    data = t._data
    if data is not None and not data.flags.writeable:
        raise RuntimeError(f"{op}: unsupported operation: more than one element of the written-to "
                           f"tensor (shape {tuple(t.shape)}) refers to a single memory location "
                           f"(an expanded view); clone() it first")


def _write(t, result, op: str, casting: bool = False):
    """Store ``result`` (a tensor) into ``t``; its shape must be ``t``'s (no growing) and,
    unless ``casting``, its dtype must not be of a higher kind (float into int)."""
    if tuple(result.shape) != tuple(t.shape):
        raise ValueError(f"{op}: output with shape {tuple(t.shape)} doesn't match the broadcast "
                         f"shape {tuple(result.shape)}")
    if not casting and _KIND[str(result.dtype)] > _KIND[str(t.dtype)]:
        raise TypeError(f"{op}: result type {result.dtype!r} can't be cast to the desired output "
                        f"type {t.dtype!r} (shape {tuple(t.shape)})")
    result = cast(result, t.dtype)
    tracer = tracing._state.tracer
    if tracer is not None:
        _write_traced(tracer, t, result, op)
    else:
        np.copyto(t._data, result._data, casting="unsafe")
    return t


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
    return _write(self, dispatch.binary("add", self, _scaled(other, alpha)), "add_")


def sub_(self, other, alpha=1):
    """``self -= alpha * other`` in place."""
    _check_target(self, "sub_")
    return _write(self, dispatch.binary("sub", self, _scaled(other, alpha)), "sub_")


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
    self._data[...] = value
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
    return _write(self, src, "copy_", casting=True)


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
