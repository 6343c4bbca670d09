"""Tensor element types as objects: ``lucid.float32``, ``float64``, ``int32``, ``int64``,
``bool`` (with PyTorch's aliases ``float``, ``double``, ``int``, ``long``).

A dtype is its name as a string as well, so it compares equal to ``"float32"``, to
numpy's dtype of the same name and to itself, works as a dictionary key next to the
name, and goes wherever numpy takes a dtype:

>>> import lucid, numpy as np
>>> lucid.tensor([1, 2]).dtype
lucid.int64
>>> lucid.float32 == "float32", lucid.float == lucid.float32, lucid.long is lucid.int64
(True, True, True)
>>> np.zeros(2, lucid.float64).dtype
dtype('float64')
>>> lucid.float32.is_floating_point, lucid.int32.itemsize
(True, 4)
"""
from __future__ import annotations

import numpy as np

from lucid_ir.types import check_dtype

__all__ = ["dtype", "float32", "float64", "int32", "int64", "bool", "as_dtype", "of_array"]


class dtype(str):
    """One element type. Equal to its name; ``repr`` is ``lucid.<name>``."""

    __slots__ = ()

    def __repr__(self) -> str:
        return f"lucid.{str.__str__(self)}"

    @property
    def is_floating_point(self) -> bool:
        return self in ("float32", "float64")

    @property
    def is_signed(self) -> bool:
        return self != "bool"

    @property
    def itemsize(self) -> int:
        return np.dtype(str(self)).itemsize

    def __eq__(self, other) -> bool:
        if isinstance(other, str):
            return str.__eq__(self, other)
        if isinstance(other, np.dtype):
            return other.name == self
        return NotImplemented

    def __ne__(self, other) -> bool:
        eq = self.__eq__(other)
        return eq if eq is NotImplemented else not eq

    __hash__ = str.__hash__

    def __reduce__(self):
        return (as_dtype, (str(self),))


float32 = dtype("float32")
float64 = dtype("float64")
int32 = dtype("int32")
int64 = dtype("int64")
bool = dtype("bool")  # noqa: A001 - PyTorch's name (lucid.bool)

_BY_NAME = {str(d): d for d in (float32, float64, int32, int64, bool)}
_BY_NUMPY = {np.dtype(name): d for name, d in _BY_NAME.items()}


def as_dtype(x) -> dtype:
    """The lucid dtype for ``x``: a lucid dtype, a name (``"float32"``, ``"f8"``), a numpy
    dtype or type, or Python's ``float`` (float32), ``int`` (int64) and ``bool``.

    >>> as_dtype("f8"), as_dtype(np.int32), as_dtype(int), as_dtype(float)
    (lucid.float64, lucid.int32, lucid.int64, lucid.float32)
    """
    if type(x) is dtype:
        return x
    if x is float:
        return float32
    if x is int:
        return int64
    return _BY_NAME[check_dtype(x)]


def of_array(a: np.ndarray) -> dtype:
    """The lucid dtype of a numpy array (one of the five)."""
    return _BY_NUMPY[a.dtype]


def default_float() -> dtype:
    """The default floating dtype: what Python floats, ``zeros()`` and ``rand()`` give
    (float32 unless ``lucid.set_default_dtype`` changed it). One setting, kept in
    ``lucid_ir.types`` so the promotion rules read it too.

    >>> default_float()
    lucid.float32
    """
    from lucid_ir.types import default_float as _name
    return _BY_NAME[_name()]
