"""Making tensors: ``tensor``, ``zeros``, ``ones``, ``randn`` (seeded by ``lucid.random.seed``).

>>> import lucid
>>> lucid.zeros(2, 3).shape
(2, 3)
>>> lucid.random.seed(0); a = lucid.randn(3).numpy()
>>> lucid.random.seed(0); bool((a == lucid.randn(3).numpy()).all())
True
"""
from __future__ import annotations

import numpy as np

from lucid_ir.types import check_dtype

from . import random
from .tensor import Tensor


def _shape(shape) -> tuple[int, ...]:
    if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
        shape = tuple(shape[0])
    return tuple(int(d) for d in shape)


def tensor(data, dtype=None, requires_grad: bool = False) -> Tensor:
    """A tensor of ``data`` with its dtype inferred as PyTorch's ``torch.tensor`` does:
    Python floats give float32, ints int64, bools bool; numpy arrays keep their dtype.

    >>> import lucid
    >>> lucid.tensor([1, 2]).dtype, lucid.tensor([1.0]).dtype, lucid.tensor([True]).dtype
    (lucid.int64, lucid.float32, lucid.bool)
    """
    from .data import to_array
    t = Tensor._wrap(to_array(data, dtype, infer=True))
    if requires_grad:
        t.requires_grad_()
    return t


def zeros(*shape, dtype="float32", requires_grad: bool = False) -> Tensor:
    return Tensor(np.zeros(_shape(shape), check_dtype(dtype)), requires_grad=requires_grad)


def ones(*shape, dtype="float32", requires_grad: bool = False) -> Tensor:
    return Tensor(np.ones(_shape(shape), check_dtype(dtype)), requires_grad=requires_grad)


def randn(*shape, dtype="float32", requires_grad: bool = False) -> Tensor:
    data = random.generator().standard_normal(_shape(shape)).astype(check_dtype(dtype))
    return Tensor(data, requires_grad=requires_grad)


def rand(*shape, dtype="float32", requires_grad: bool = False) -> Tensor:
    data = random.generator().random(_shape(shape)).astype(check_dtype(dtype))
    return Tensor(data, requires_grad=requires_grad)
