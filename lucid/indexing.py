"""``tensor[index]``. Basic indices: integers (negative ones count from the end),
slices with positive steps (a negative step is a ValueError, as in PyTorch: use
``flip``), ``None`` (a new axis of size 1) and ``...``. Advanced indices: integer
tensors, lists and arrays, and boolean masks (see ``lucid.index_plan``).

A basic key is one eager call: a ``slice`` of the tensor (a numpy view, no copy, as
PyTorch's indexing returns a view) and a ``reshape`` dropping integer-indexed axes and
inserting new ones; its gradient places the values back into zeros. An advanced key adds
one ``gather`` (a copy); its gradient is a ``scatter_add``.

>>> import lucid
>>> x = lucid.tensor([[0, 1, 2, 3], [4, 5, 6, 7]])
>>> x[1], x[:, ::2].tolist(), x[..., None].shape, x[-1, 1:3].tolist()
(Tensor([4, 5, 6, 7], grad=None), [[0, 2], [4, 6]], (2, 4, 1), [5, 6])
>>> x[[1, 0, 1], -1].tolist(), x[x % 3 == 0].tolist()
([7, 3, 7], [0, 3, 6])
"""
from __future__ import annotations

from . import dispatch, index_plan


def getitem(t, index):
    """``t[index]`` (see the module docstring); IndexError for indices out of range, too
    many indices, masks of the wrong shape and non-integer index tensors."""
    plan, indices = index_plan.prepare(t, index)
    if not indices:
        return dispatch.call1(plan.chain, t)
    plan.check(indices)
    # the general path: the gather's gradient reads the combined index, an inner result
    # that only ``call`` keeps (the unrolled call1/call2 paths skip ``Entry.saved``)
    return dispatch.call(plan.chain, [t, *indices])
