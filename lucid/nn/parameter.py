"""``Parameter``: a leaf tensor that requires grad and that modules register."""
from __future__ import annotations

from ..tensor import Tensor


class Parameter(Tensor):
    """A tensor that is a model's parameter: ``requires_grad`` defaults to True.

    >>> from lucid.nn import Parameter
    >>> p = Parameter([1.0, 2.0])
    >>> p.requires_grad, p.is_leaf
    (True, True)
    """

    def __init__(self, data, requires_grad: bool = True, dtype=None):
        super().__init__(data, requires_grad=requires_grad, dtype=dtype)

    def __repr__(self) -> str:
        return "Parameter(" + super().__repr__()[len("Tensor("):]
