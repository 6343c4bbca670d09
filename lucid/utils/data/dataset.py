"""Datasets, as ``torch.utils.data``: ``Dataset`` (indexable), ``IterableDataset``
(a stream), ``TensorDataset``, ``Subset``, ``ConcatDataset`` and ``random_split``.

>>> import lucid
>>> from lucid.utils.data import TensorDataset, random_split
>>> ds = TensorDataset(lucid.arange(10.0), lucid.arange(10))
>>> len(ds), ds[3]
(10, (Tensor(3.0, grad=None), Tensor(3, grad=None)))
>>> a, b = random_split(ds, [0.7, 0.3], generator=lucid.Generator().manual_seed(0))
>>> len(a), len(b), sorted(a.indices + b.indices) == list(range(10))
(7, 3, True)
"""
from __future__ import annotations

import bisect
import math

import numpy as np

from ... import random
from ...tensor import Tensor


class Dataset:
    """A map-style dataset: ``__getitem__(index)`` and, usually, ``__len__``."""

    def __getitem__(self, index):
        raise NotImplementedError(f"{type(self).__name__} must define __getitem__")

    def __add__(self, other: "Dataset") -> "ConcatDataset":
        return ConcatDataset([self, other])


class IterableDataset(Dataset):
    """A dataset that is a stream of samples: ``__iter__``."""

    def __iter__(self):
        raise NotImplementedError(f"{type(self).__name__} must define __iter__")

    def __add__(self, other):
        raise TypeError("IterableDataset does not support + (ConcatDataset needs indexable datasets)")


class TensorDataset(Dataset):
    """Samples are the rows of tensors of one length: ``ds[i] = (t[i] for t in tensors)``.
    A ``DataLoader`` indexes a whole batch of rows at once."""

    def __init__(self, *tensors: Tensor) -> None:
        for i, t in enumerate(tensors):
            if not isinstance(t, Tensor):
                raise TypeError(f"TensorDataset: argument {i} is a {type(t).__name__}, not a Tensor")
            if t.ndim == 0 or t.shape[0] != tensors[0].shape[0]:
                raise ValueError(f"TensorDataset: size mismatch between tensors: shapes "
                                 f"{[tuple(x.shape) for x in tensors]} do not share a first dimension")
        self.tensors = tensors

    def __getitem__(self, index):
        return tuple(t[index] for t in self.tensors)

    def __len__(self) -> int:
        return self.tensors[0].shape[0] if self.tensors else 0

    def batch(self, indices) -> list:
        """The rows ``indices`` of every tensor, stacked (one gather per tensor):
        what ``default_collate`` makes of ``[self[i] for i in indices]``."""
        idx = np.asarray(indices, dtype=np.int64)
        n = len(self)
        if idx.size and (idx.min() < -n or idx.max() >= n):
            raise IndexError(f"TensorDataset: index out of range for {n} samples")
        return [Tensor._wrap(t.numpy()[idx]) for t in self.tensors]


class Subset(Dataset):
    """The samples of ``dataset`` at ``indices``, in that order."""

    def __init__(self, dataset, indices) -> None:
        self.dataset, self.indices = dataset, indices

    def __getitem__(self, index):
        if isinstance(index, list):
            return self.dataset[[self.indices[i] for i in index]]
        return self.dataset[self.indices[index]]

    def __getitems__(self, indices) -> list:
        inner = [self.indices[i] for i in indices]
        getitems = getattr(self.dataset, "__getitems__", None)
        return getitems(inner) if getitems else [self.dataset[i] for i in inner]

    def __len__(self) -> int:
        return len(self.indices)


class ConcatDataset(Dataset):
    """Several map-style datasets one after another."""

    def __init__(self, datasets) -> None:
        self.datasets = list(datasets)
        if not self.datasets:
            raise ValueError("ConcatDataset: datasets should not be an empty iterable")
        for d in self.datasets:
            if isinstance(d, IterableDataset):
                raise TypeError("ConcatDataset does not support IterableDataset")
        self.cumulative_sizes, total = [], 0
        for d in self.datasets:
            total += len(d)
            self.cumulative_sizes.append(total)

    def __len__(self) -> int:
        return self.cumulative_sizes[-1]

    def __getitem__(self, index):
        if index < 0:
            if -index > len(self):
                raise ValueError("ConcatDataset: absolute value of index should not exceed dataset length")
            index += len(self)
        which = bisect.bisect_right(self.cumulative_sizes, index)
        if which == len(self.datasets):
            raise IndexError(f"ConcatDataset: index {index} out of range for {len(self)} samples")
        start = self.cumulative_sizes[which - 1] if which else 0
        return self.datasets[which][index - start]


def random_split(dataset, lengths, generator=None) -> list:
    """Split ``dataset`` into non-overlapping random ``Subset``s of the given lengths
    (or fractions of its length, summing to 1; the remainder goes round-robin to the
    first ones, as in PyTorch)."""
    n = len(dataset)
    lengths = list(lengths)
    if math.isclose(sum(lengths), 1) and sum(lengths) <= 1:
        sizes = [int(math.floor(n * frac)) for frac in lengths]
        for frac in lengths:
            if not 0 <= frac <= 1:
                raise ValueError(f"random_split: fraction {frac} is not between 0 and 1")
        for i in range(n - sum(sizes)):
            sizes[i % len(sizes)] += 1
        lengths = sizes
    if sum(lengths) != n:
        raise ValueError("random_split: sum of input lengths does not equal the length of the input dataset!")
    order = random.resolve(generator, "random_split").permutation(n).tolist()
    out, start = [], 0
    for length in lengths:
        out.append(Subset(dataset, order[start:start + length]))
        start += length
    return out
