"""``Tensor.new_tensor``, ``new_zeros``, ``new_ones``, ``new_full``, ``new_empty``: new
tensors that take their dtype from an existing one (unless ``dtype=`` is given), as
PyTorch's methods of the same names.

>>> import lucid
>>> x = lucid.tensor([1, 2], dtype=lucid.int32)
>>> x.new_zeros(2, 3).dtype, x.new_ones((2,)).tolist(), x.new_full((2,), 7.9).tolist()
(lucid.int32, [1, 1], [7, 7])
>>> x.new_tensor([3.5]).dtype, x.new_empty(4, dtype=lucid.float64).shape
(lucid.int32, (4,))
"""
from __future__ import annotations


def new_tensor(self, data, dtype=None, device=None, requires_grad: bool = False):
    """``data`` as a new tensor (copied) in this tensor's dtype, or ``dtype``."""
    from . import creation
    return creation.tensor(data, dtype=creation.dtype_of(dtype, self.dtype), device=device,
                           requires_grad=requires_grad)


def new_zeros(self, *size, dtype=None, device=None, requires_grad: bool = False):
    """Zeros of ``size`` in this tensor's dtype, or ``dtype``."""
    from . import creation
    return creation.zeros(*size, dtype=creation.dtype_of(dtype, self.dtype), device=device,
                          requires_grad=requires_grad)


def new_ones(self, *size, dtype=None, device=None, requires_grad: bool = False):
    """Ones of ``size`` in this tensor's dtype, or ``dtype``."""
    from . import creation
    return creation.ones(*size, dtype=creation.dtype_of(dtype, self.dtype), device=device,
                         requires_grad=requires_grad)


def new_empty(self, *size, dtype=None, device=None, requires_grad: bool = False):
    """An uninitialised tensor of ``size`` in this tensor's dtype, or ``dtype``."""
    from . import creation
    return creation.empty(*size, dtype=creation.dtype_of(dtype, self.dtype), device=device,
                          requires_grad=requires_grad)


def new_full(self, size, fill_value, dtype=None, device=None, requires_grad: bool = False):
    """``fill_value`` in ``size`` (a tuple) and this tensor's dtype, or ``dtype``; the value
    is converted to that dtype (``full_like``'s rule)."""
    from . import creation
    dt = creation.dtype_of(dtype, self.dtype)
    shape = creation.size_tuple("new_full", size)
    return creation.full_like(creation.empty(shape, dtype=dt), fill_value, device=device,
                              requires_grad=requires_grad)


def _install(Tensor) -> None:
    Tensor.new_tensor = new_tensor
    Tensor.new_zeros = new_zeros
    Tensor.new_ones = new_ones
    Tensor.new_empty = new_empty
    Tensor.new_full = new_full
