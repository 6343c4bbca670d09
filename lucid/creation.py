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


def tensor(data, requires_grad: bool = False, dtype=None) -> Tensor:
    return Tensor(data, requires_grad=requires_grad, dtype=dtype)


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
