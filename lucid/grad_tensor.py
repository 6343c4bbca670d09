"""``Tensor.grad`` as a Tensor (as in PyTorch) sharing memory with the stored gradient.

The gradient itself stays a numpy array in ``t._grad`` (what autograd, optimisers and
DDP use); ``t.grad`` wraps it in a Tensor without copying (cached per array object), so
in-place ops on ``t.grad`` change the gradient.

>>> import lucid
>>> w = lucid.tensor([1.0, 2.0], requires_grad=True)
>>> (w * w).sum().backward()
>>> w.grad
Tensor([2.0, 4.0], grad=None)
>>> _ = w.grad.zero_(); w.grad.tolist()
[0.0, 0.0]
>>> w.grad = lucid.ones(3)
Traceback (most recent call last):
    ...
RuntimeError: assigned grad has data of a different size: (3,) vs the tensor's (2,)
"""
from __future__ import annotations

import numpy as np


def read(t):
    """The Tensor view of ``t._grad`` (None when there is no gradient)."""
    g = t._grad
    if g is None:
        return None
    cached = t.__dict__.get("_grad_view")
    if cached is not None and cached._data is g:
        return cached
    from .tensor import Tensor
    view = Tensor._wrap(g)
    t.__dict__["_grad_view"] = view
    return view


def to_array(t, value):
    """The array to store as ``t._grad`` for ``t.grad = value`` (PyTorch's checks)."""
    if value is None:
        return None
    from .tensor import Tensor
    if isinstance(value, Tensor):
        value = value._data
    elif isinstance(value, np.generic):  # a 0-d gradient computed by numpy
        value = np.asarray(value)
    elif not isinstance(value, np.ndarray):
        raise TypeError(f"assigned grad expected to be a Tensor or None but got grad of type "
                        f"{type(value).__name__}")
    if value.shape != tuple(t._data.shape):
        raise RuntimeError(f"assigned grad has data of a different size: {value.shape} vs "
                           f"the tensor's {tuple(t._data.shape)}")
    if value.dtype != t._data.dtype:
        raise RuntimeError(f"assigned grad has data of a different type: {value.dtype} vs "
                           f"the tensor's {t._data.dtype}")
    return value
