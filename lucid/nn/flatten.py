"""``Flatten`` and ``Unflatten``: reshaping layers, as PyTorch's.

>>> import lucid, lucid.nn as nn
>>> x = lucid.zeros(2, 3, 4)
>>> nn.Flatten()(x).shape, nn.Unflatten(1, (3, 2, 2))(nn.Flatten()(x)).shape
((2, 12), (2, 3, 2, 2))
"""
from __future__ import annotations

from ..tensor import _dim
from .module import Module


class Flatten(Module):
    """Merge the dimensions ``start_dim .. end_dim`` into one (``Tensor.flatten``)."""

    def __init__(self, start_dim: int = 1, end_dim: int = -1):
        super().__init__()
        self.start_dim, self.end_dim = start_dim, end_dim

    def forward(self, input):  # noqa: A002 - PyTorch's name
        return input.flatten(self.start_dim, self.end_dim)

    def extra_repr(self) -> str:
        return f"start_dim={self.start_dim}, end_dim={self.end_dim}"


def unflatten(x, dim: int, sizes):
    """``x`` with dimension ``dim`` split into ``sizes`` (one of them may be -1)."""
    shape = tuple(x.shape)
    d = _dim(dim, len(shape), "unflatten")
    sizes = tuple(int(s) for s in sizes)
    if not sizes:
        raise RuntimeError("unflatten: sizes must be non-empty")
    if sizes.count(-1) > 1:
        raise RuntimeError("unflatten: only one dimension can be inferred")
    known = 1
    for s in sizes:
        known *= s if s != -1 else 1
    if -1 in sizes:
        if known == 0 or shape[d] % known:
            raise RuntimeError(f"unflatten: Provided sizes {list(sizes)} don't multiply up to the "
                               f"size of dim {dim} ({shape[d]}) in the input tensor")
        sizes = tuple(shape[d] // known if s == -1 else s for s in sizes)
    elif known != shape[d]:
        raise RuntimeError(f"unflatten: Provided sizes {list(sizes)} don't multiply up to the size "
                           f"of dim {dim} ({shape[d]}) in the input tensor")
    return x.reshape(*shape[:d], *sizes, *shape[d + 1:])


class Unflatten(Module):
    """Split dimension ``dim`` into ``unflattened_size`` (a tuple or list of ints)."""

    def __init__(self, dim: int, unflattened_size):
        super().__init__()
        if not isinstance(unflattened_size, (tuple, list)) or not all(
                isinstance(s, int) for s in unflattened_size):
            raise TypeError(f"unflattened_size must be tuple of ints, but found type "
                            f"{type(unflattened_size).__name__}")
        self.dim, self.unflattened_size = dim, unflattened_size

    def forward(self, input):  # noqa: A002 - PyTorch's name
        return unflatten(input, self.dim, self.unflattened_size)

    def extra_repr(self) -> str:
        return f"dim={self.dim}, unflattened_size={self.unflattened_size}"
