"""``tensor[index]``. Basic indices: integers (negative ones count from the end),
slices with positive steps (a negative step is a ValueError, as in PyTorch: use
``flip``), ``None`` (a new axis of size 1) and ``...``. Integer tensors, lists and
arrays and boolean masks (advanced indexing) go through ``lucid.index_plan``.

The result is one eager call: a ``slice`` of the tensor (a numpy view, no copy, as
PyTorch's indexing returns a view) and a ``reshape`` dropping integer-indexed axes and
inserting new ones; its gradient places the values back into zeros.

>>> import lucid
>>> x = lucid.tensor([[0, 1, 2, 3], [4, 5, 6, 7]])
>>> x[1], x[:, ::2].tolist(), x[..., None].shape, x[-1, 1:3].tolist()
(Tensor([4, 5, 6, 7], grad=None), [[0, 2], [4, 6]], (2, 4, 1), [5, 6])
"""
from __future__ import annotations

import numpy as np

from . import dispatch, index_plan

_CHAINS: dict = {}


def getitem(t, index):
    """``t[index]``: basic indices through the view path above, anything else (integer
    tensors, lists, arrays, masks) through ``lucid.index_plan``."""
    entries = list(index) if isinstance(index, tuple) else [index]
    for e in entries:
        if not (e is None or e is Ellipsis or isinstance(e, slice)
                or (isinstance(e, (int, np.integer)) and not isinstance(e, (bool, np.bool_)))):
            return _advanced(t, index)
    if sum(e is Ellipsis for e in entries) > 1:
        raise IndexError("an index can only have a single ellipsis ('...')")
    shape = t.shape
    used = sum(e is not None and e is not Ellipsis for e in entries)
    if used > len(shape):
        raise IndexError(f"too many indices for tensor of dimension {len(shape)}")
    if Ellipsis in entries:
        k = entries.index(Ellipsis)
        entries[k:k + 1] = [slice(None)] * (len(shape) - used)
    else:
        entries += [slice(None)] * (len(shape) - used)
    starts, stops, steps, out_shape = [], [], [], []
    axis = 0
    for e in entries:
        if e is None:
            out_shape.append(1)
            continue
        size = shape[axis]
        if isinstance(e, slice):
            if e.step is not None and e.step <= 0:
                raise ValueError("step must be greater than zero")
            start, stop, step = e.indices(size)
            starts.append(start)
            stops.append(stop)
            steps.append(step)
            out_shape.append(len(range(start, stop, step)))
        else:
            i = int(e)
            if not -size <= i < size:
                raise IndexError(f"index {i} is out of bounds for dimension {axis} with size {size}")
            i %= size
            starts.append(i)
            stops.append(i + 1)
            steps.append(1)
        axis += 1
    key = (tuple(starts), tuple(stops), tuple(steps), tuple(out_shape))
    chain = _CHAINS.get(key)
    if chain is None:
        if len(_CHAINS) >= 4096:
            _CHAINS.clear()
        chain = _CHAINS[key] = dispatch.Chain(
            [("slice", {"starts": key[0], "stops": key[1], "steps": key[2]}, (0,)),
             ("reshape", {"shape": key[3]}, (-1,))], name="getitem")
    return dispatch.call1(chain, t)


def _advanced(t, index):
    entries = index_plan.normalize(t.shape, index)
    plan = index_plan.plan_for(t.shape, entries)
    indices = index_plan.index_tensors(entries)
    if plan.basic_only:
        return dispatch.call1(plan.chain, t)
    plan.check(indices)
    return dispatch.call(plan.chain, [t, *indices])
