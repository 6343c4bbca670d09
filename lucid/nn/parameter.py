"""``Parameter``: a leaf tensor that requires grad and that modules register; ``Buffer``:
a tensor that, assigned to a module's attribute, becomes a buffer.

>>> import lucid
>>> from lucid.nn import Parameter
>>> p = Parameter(lucid.tensor([1.0, 2.0]))
>>> p.requires_grad, p.is_leaf
(True, True)
>>> p
Parameter containing:
Tensor([1.0, 2.0], grad=None)
"""
from __future__ import annotations

import numpy as np

from ..data import to_array
from ..tensor import Tensor


class Parameter(Tensor):
    """A tensor that is a model's parameter: ``requires_grad`` defaults to True. Made
    from a tensor, it shares that tensor's memory (as ``torch.nn.Parameter``);
    ``Parameter()`` is an empty float tensor."""

    def __init__(self, data=None, requires_grad: bool = True, dtype=None):
        if data is None:
            data = np.empty((0,), dtype="float32" if dtype is None else dtype)
        super().__init__(to_array(data, dtype, op="Parameter", infer=True), requires_grad=requires_grad)

    def __repr__(self) -> str:
        return "Parameter containing:\n" + Tensor.__repr__(self)


class Buffer(Tensor):
    """Marks a tensor as a buffer: ``self.running_mean = nn.Buffer(lucid.zeros(3))``
    is ``self.register_buffer("running_mean", lucid.zeros(3))`` (``persistent=False``:
    left out of ``state_dict``). The module holds a plain tensor sharing its memory.

    >>> import lucid, lucid.nn as nn
    >>> m = nn.Module(); m.steps = nn.Buffer(lucid.zeros(1), persistent=False)
    >>> [name for name, _ in m.named_buffers()], list(m.state_dict())
    (['steps'], [])
    """

    def __init__(self, data=None, *, persistent: bool = True):
        if data is None:
            data = np.empty((0,), dtype="float32")
        requires_grad = bool(getattr(data, "requires_grad", False))
        super().__init__(to_array(data, op="Buffer", infer=True), requires_grad=requires_grad)
        self.persistent = bool(persistent)

    def as_tensor(self) -> Tensor:
        """The plain tensor a module registers (sharing memory)."""
        t = Tensor._wrap(self._data)
        t.requires_grad = self.requires_grad
        return t
