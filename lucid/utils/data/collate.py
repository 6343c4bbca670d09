"""Merging samples into a batch, as ``torch.utils.data.default_collate``: tensors and
numpy arrays are stacked into one lucid tensor, Python floats become a float64 tensor
and ints an int64 one, strings stay a list, and dicts, lists, tuples and namedtuples
are collated field by field (a tuple of fields comes back as a list, as in PyTorch).

>>> import lucid
>>> batch = default_collate([{"x": lucid.Tensor([1.0, 2.0]), "y": 0}, {"x": lucid.Tensor([3.0, 4.0]), "y": 1}])
>>> batch["x"]
Tensor([[1.0, 2.0],
 [3.0, 4.0]], grad=None)
>>> batch["y"], batch["y"].dtype
(Tensor([0, 1], grad=None), lucid.int64)
"""
from __future__ import annotations

import collections.abc as abc

import numpy as np

from ...creation import tensor
from ...functional_core import stack
from ...tensor import Tensor


def _is_namedtuple(x) -> bool:
    return isinstance(x, tuple) and hasattr(x, "_fields")


def default_collate(batch):
    """One batch from a list of samples (see the module's docstring)."""
    elem = batch[0]
    if isinstance(elem, Tensor):
        return stack(list(batch), 0)
    if isinstance(elem, (np.ndarray, np.generic)) and elem.dtype.kind not in "USO":
        return tensor(np.stack([np.asarray(b) for b in batch]))
    if isinstance(elem, bool):
        return tensor(list(batch))
    if isinstance(elem, float):
        return tensor(list(batch), dtype="float64")
    if isinstance(elem, int):
        return tensor(list(batch), dtype="int64")
    if isinstance(elem, (str, bytes)):
        return list(batch)
    if isinstance(elem, abc.Mapping):
        fields = {key: default_collate([d[key] for d in batch]) for key in elem}
        try:
            return type(elem)(fields)
        except TypeError:  # a mapping type that cannot be built from a dict
            return fields
    if _is_namedtuple(elem):
        return type(elem)(*(default_collate(list(s)) for s in zip(*batch)))
    if isinstance(elem, abc.Sequence):
        if any(len(b) != len(elem) for b in batch):
            raise RuntimeError("default_collate: each element in list of batch should be of equal size")
        fields = [default_collate(list(s)) for s in zip(*batch)]
        if isinstance(elem, tuple):
            return fields
        try:
            return type(elem)(fields)
        except TypeError:
            return fields
    raise TypeError(f"default_collate: batch must contain tensors, numpy arrays, numbers, dicts or lists; "
                    f"found {type(elem).__name__}")


def default_convert(data):
    """Numpy arrays (inside any nesting) as lucid tensors, nothing stacked: what a
    ``DataLoader`` with ``batch_size=None`` gives."""
    if isinstance(data, (np.ndarray, np.generic)) and data.dtype.kind not in "USO":
        return tensor(data)
    if isinstance(data, abc.Mapping):
        try:
            return type(data)({k: default_convert(v) for k, v in data.items()})
        except TypeError:
            return {k: default_convert(v) for k, v in data.items()}
    if _is_namedtuple(data):
        return type(data)(*(default_convert(d) for d in data))
    if isinstance(data, tuple):
        return [default_convert(d) for d in data]
    if isinstance(data, abc.Sequence) and not isinstance(data, (str, bytes)):
        try:
            return type(data)([default_convert(d) for d in data])
        except TypeError:
            return [default_convert(d) for d in data]
    return data
