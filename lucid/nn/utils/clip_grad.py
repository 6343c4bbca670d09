"""Gradient clipping, as ``torch.nn.utils``: ``clip_grad_norm_`` (rescale all gradients
so that their joint norm is at most ``max_norm``), ``clip_grad_value_``, and the two
halves of the first, ``get_total_norm`` and ``clip_grads_with_norm_``.

The arithmetic is lucid ops on the gradients, so inside a function compiled by
``lucid.compile`` it joins the traced graph (the norm, the scale and the rescaled
gradients fuse with the backward pass and the optimiser's update); eagerly the
gradients are rescaled in place, as PyTorch's.

>>> import lucid
>>> from lucid.nn.utils import clip_grad_norm_
>>> w = lucid.Tensor([3.0, 4.0], requires_grad=True)
>>> (w * w).sum().backward()          # gradient [6, 8]: norm 10
>>> round(clip_grad_norm_([w], max_norm=5.0).item(), 4)
10.0
>>> [round(v, 4) for v in w.grad.tolist()]
[3.0, 4.0]
"""
from __future__ import annotations

import math

import numpy as np

from ... import tracing
from ...functional_core import stack
from ...grad_mode import no_grad
from ...tensor import Tensor
from .clip_fused import joint_norm, scale_in_place


def _parameters(parameters) -> list:
    return [parameters] if isinstance(parameters, Tensor) else list(parameters)


def _as_tensor(grad):
    """A gradient as a tensor (eagerly ``.grad`` is a numpy array: wrapped, not copied)."""
    return grad if isinstance(grad, Tensor) else Tensor._wrap(np.asarray(grad))


def _set_grad(p: Tensor, new: Tensor) -> None:
    """``p.grad = new``, in place when eager (as PyTorch's ``mul_``/``clamp_``)."""
    old = p.grad
    if old is not None and old._data is not None and new._data is not None:
        np.copyto(old._data, new._data)
    else:
        p.grad = new


def _vector_norm(x: Tensor, norm_type: float) -> Tensor:
    from ...linalg import vector_norm  # (lucid.linalg builds on lucid.nn's chain steps)
    return vector_norm(x, norm_type)


def get_total_norm(tensors, norm_type: float = 2.0, error_if_nonfinite: bool = False, foreach=None) -> Tensor:
    """The ``norm_type``-norm of all ``tensors`` (gradients) together, as one 0-d tensor.

    >>> import lucid
    >>> get_total_norm([lucid.Tensor([3.0]), lucid.Tensor([-4.0])], norm_type=1.0).item()
    7.0
    """
    norm_type = float(norm_type)
    tensors = [_as_tensor(t) for t in _parameters(tensors) if t is not None]
    if not tensors:
        return Tensor(0.0)
    if math.isinf(norm_type) and any(t.numel() == 0 for t in tensors):
        raise RuntimeError(f"clip_grad_norm_: cannot compute the {norm_type} norm of an empty gradient "
                           f"(the maximum/minimum has no identity)")
    with no_grad():  # an empty gradient adds nothing to any other norm
        nonempty = [t for t in tensors if t.numel()]
        if not nonempty:
            return Tensor(np.zeros((), tensors[0].dtype))
        if len({t.dtype for t in nonempty}) == 1:  # one call for all (PyTorch's foreach)
            total = joint_norm(nonempty, norm_type)
        else:  # each norm in its tensor's dtype, their norm in the promoted one
            norms = [_vector_norm(t.reshape(-1), norm_type) for t in nonempty]
            total = _vector_norm(stack(norms), norm_type) if len(norms) != 1 else norms[0]
    if error_if_nonfinite:
        if tracing.current() is not None:
            raise tracing.TracingError("clip_grad_norm_: error_if_nonfinite=True needs the norm's value, "
                                       "which is not known while lucid.compile traces the function")
        if not np.isfinite(total.item()):
            raise RuntimeError(f"The total norm of order {norm_type} for gradients from `parameters` is "
                               f"non-finite, so it cannot be clipped. To disable this error and scale the "
                               f"gradients by the non-finite norm anyway, set `error_if_nonfinite=False`")
    return total


def clip_grads_with_norm_(parameters, max_norm: float, total_norm: Tensor, foreach=None) -> None:
    """Scale the parameters' gradients by ``min(1, max_norm / (total_norm + 1e-6))``."""
    params = [p for p in _parameters(parameters) if p.grad is not None]
    if not params:
        return
    if (tracing.current() is None and isinstance(total_norm, Tensor)
            and scale_in_place([p._grad for p in params], total_norm._data, float(max_norm))):
        return  # (eagerly: every gradient rescaled in place by one native call)
    with no_grad():
        coef = (float(max_norm) / (total_norm + 1e-6)).clamp(max=1.0)
        for p in params:
            grad = _as_tensor(p.grad)
            _set_grad(p, grad * coef.to(grad.dtype))


def clip_grad_norm_(parameters, max_norm: float, norm_type: float = 2.0, error_if_nonfinite: bool = False,
                    foreach=None) -> Tensor:
    """Rescale the gradients of ``parameters`` in place so that their joint
    ``norm_type``-norm is at most ``max_norm``; the norm before clipping."""
    params = _parameters(parameters)
    grads = [p.grad for p in params if p.grad is not None]
    total = get_total_norm(grads, norm_type, error_if_nonfinite, foreach)
    clip_grads_with_norm_(params, max_norm, total, foreach)
    return total


def clip_grad_value_(parameters, clip_value: float, foreach=None) -> None:
    """Clamp every gradient of ``parameters`` into ``[-clip_value, clip_value]``, in place.

    >>> import lucid
    >>> w = lucid.Tensor([3.0, -4.0], requires_grad=True)
    >>> (w * w).sum().backward()
    >>> clip_grad_value_(w, 1.5)
    >>> w.grad.tolist()
    [1.5, -1.5]
    """
    clip_value = float(clip_value)
    with no_grad():
        for p in _parameters(parameters):
            if p.grad is not None:
                _set_grad(p, _as_tensor(p.grad).clamp(-clip_value, clip_value))
