"""Index lookups of ``lucid.nn.functional``: ``embedding`` and ``one_hot``.

``embedding`` is one chain: the indices broadcast along the embedding dimension, then
``gather`` rows of the weight; ``gather``'s gradient scatter-adds into the weight's
rows (repeated indices accumulate). The ``padding_idx`` row reads as usual but gets no
gradient (its lookups read a ``stop_gradient`` copy of the weight).

>>> import lucid
>>> import lucid.nn.functional as F
>>> w = lucid.tensor([[0.0, 1.0], [2.0, 3.0], [4.0, 5.0]], requires_grad=True)
>>> F.embedding(lucid.tensor([[2, 0], [2, 2]]), w).tolist()[0]
[[4.0, 5.0], [0.0, 1.0]]
>>> F.embedding(lucid.tensor([2, 0, 2]), w, padding_idx=0).sum().backward()
>>> w.grad.tolist()
[[0.0, 0.0], [0.0, 0.0], [2.0, 2.0]]
>>> F.one_hot(lucid.tensor([0, 2])).tolist()
[[1, 0, 0], [0, 0, 1]]
"""
from __future__ import annotations

import math

import numpy as np

from .. import dispatch, grad_mode, tracing
from ..dispatch import as_tensor
from ..tensor import Tensor
from .chain_steps import cached_chain, make_chain
from .index_bounds import indices_below

_INDEX_DTYPES = ("int64", "int32")
_INDEX_NUMPY = (np.dtype(np.int64), np.dtype(np.int32))


def _index_input(op: str, input):
    t = input if type(input) is Tensor else as_tensor(input)
    data = t._data
    if data is not None and data.dtype in _INDEX_NUMPY:
        return t
    if t.dtype not in _INDEX_DTYPES:
        raise RuntimeError(f"{op}: Expected tensor for argument #1 'indices' to have one of the "
                           f"following scalar types: Long, Int; but got {t.dtype} instead "
                           f"(shape {tuple(t.shape)})")
    return t


def _concrete(t):
    """The values of ``t``, or None inside ``lucid.compile`` (not known until run time)."""
    return t._data if t._data is not None else None


def embedding(input, weight, padding_idx=None, max_norm=None, norm_type: float = 2.0,  # noqa: A002
              scale_grad_by_freq: bool = False, sparse: bool = False):
    """Rows of ``weight`` ``(num_embeddings, embedding_dim)`` at the integer indices
    ``input`` (any shape): the result has shape ``(*input.shape, embedding_dim)``.

    ``max_norm``: the rows looked up whose ``norm_type``-norm exceeds it are rescaled in
    place to that norm first (as PyTorch). ``scale_grad_by_freq`` and ``sparse`` are not
    supported (``NotImplementedError``).

    >>> import lucid
    >>> w = lucid.tensor([[0.0, 1.0], [2.0, 3.0]])
    >>> embedding(lucid.tensor([[1], [0]]), w).tolist()
    [[[2.0, 3.0]], [[0.0, 1.0]]]
    """
    if scale_grad_by_freq or sparse:
        raise NotImplementedError("embedding: scale_grad_by_freq and sparse gradients are not supported by lucid")
    idx = _index_input("embedding", input)
    w = weight if type(weight) is Tensor else as_tensor(weight)
    w_shape = w.shape
    if len(w_shape) != 2:
        raise RuntimeError(f"embedding: weight must be 2-D (num_embeddings, embedding_dim), "
                           f"got shape {tuple(w_shape)}")
    v, d = w_shape
    if padding_idx is not None:
        if not -v <= padding_idx < v:
            raise AssertionError(f"embedding: padding_idx {padding_idx} must be within num_embeddings {v}")
        padding_idx = padding_idx % v
    values = idx._data  # (None inside lucid.compile: not known until run time)
    if values is not None and not indices_below(values, v):
        raise IndexError(f"embedding: index out of range in self (indices from {values.min()} to "
                         f"{values.max()}, num_embeddings {v})")  # (a negative index wraps to huge)
    if max_norm is not None:
        _renorm_rows(w, values, float(max_norm), float(norm_type))
    if values is None or values.dtype != np.int64:
        idx = dispatch.cast(idx, "int64")
    key = (idx.shape, d, padding_idx, w.dtype)
    chain = _EMBEDDING.get(key)
    if chain is None:
        chain = _EMBEDDING[key] = _embedding_chain(*key)
    return dispatch.call2(chain[0], w, idx, chain[1])


#: (index shape, embedding_dim, padding_idx, dtype) -> (chain, its general call)
_EMBEDDING: dict = dispatch.ChainCache()


def _embedding_chain(index_shape, d: int, padding_idx, dtype):
    """The chain of one embedding signature (the indices broadcast along the rows,
    ``gather`` of the weight's rows, reshaped to ``(*index_shape, d)``), and
    ``general(w, idx)``, its call through ``dispatch.call`` (a signature's first call)."""
    m = math.prod(index_shape)
    out_shape = tuple(index_shape) + (d,)

    def build(s):
        rows = s("broadcast_to", s("reshape", 1, shape=(m, 1)), shape=(m, d))
        gathered = s("gather", 0, rows, axis=0)
        if padding_idx is not None:
            frozen = s("gather", s("stop_gradient", 0), rows, axis=0)
            pad = s("constant", value=padding_idx, shape=(), dtype="int64")
            gathered = s("select", s("eq", rows, pad), frozen, gathered)
        return s("reshape", gathered, shape=out_shape)
    chain = make_chain("embedding", build, str(dtype))  # (kept in _EMBEDDING)
    return chain, lambda w, idx: dispatch.call(chain, (w, idx))


def _renorm_rows(w, values, max_norm: float, norm_type: float) -> None:
    """Rescale in place the looked-up rows of ``w`` whose norm exceeds ``max_norm`` to
    ``max_norm / (norm + 1e-7)`` times themselves (PyTorch's ``embedding_renorm_``)."""
    if values is None or w._data is None:
        raise tracing.TracingError("embedding: max_norm renormalises the weight in place from the "
                                   "index values, which are not known inside lucid.compile")
    rows = np.unique(values.reshape(-1))
    with grad_mode.no_grad():
        data = w._data
        sub = data[rows].astype(np.float64)
        norms = np.linalg.norm(sub, ord=norm_type, axis=1) if norm_type != 2.0 else np.sqrt((sub * sub).sum(1))
        scale = np.where(norms > max_norm, max_norm / (norms + 1e-7), 1.0)
        data[rows] = (sub * scale[:, None]).astype(data.dtype)


def one_hot(tensor, num_classes: int = -1):
    """int64 codes of shape ``(*tensor.shape, num_classes)`` with a 1 at each class index;
    ``num_classes=-1`` takes ``tensor.max() + 1`` (as PyTorch).

    >>> import lucid
    >>> one_hot(lucid.tensor([1, 0]), 3).tolist()
    [[0, 1, 0], [1, 0, 0]]
    """
    t = as_tensor(tensor)
    if str(t.dtype) != "int64":
        raise RuntimeError(f"one_hot: one_hot is only applicable to index tensor of type int64, "
                           f"got {t.dtype} (shape {tuple(t.shape)})")
    values = _concrete(t)
    if values is None and num_classes < 0:
        raise tracing.TracingError("one_hot: num_classes=-1 reads the data's maximum, which is not "
                                   "known inside lucid.compile; pass num_classes")
    if values is not None:
        if values.size and values.min() < 0:
            raise RuntimeError("one_hot: Class values must be non-negative.")
        if num_classes < 0:
            if values.size == 0:
                raise RuntimeError("one_hot: Can not infer total number of classes from empty tensor.")
            num_classes = int(values.max()) + 1
        elif values.size and values.max() >= num_classes:
            raise RuntimeError(f"one_hot: Class values must be smaller than num_classes "
                               f"(got {values.max()} with num_classes={num_classes}).")
    nd = t.ndim
    classes = (1,) * nd + (int(num_classes),)

    def build(s):
        hit = s("eq", s("reshape", 0, shape=tuple(t.shape) + (1,)),
                s("iota", shape=classes, axis=nd, dtype="int64"))
        return s("cast", hit, dtype="int64")
    return dispatch.call(cached_chain("one_hot", (tuple(t.shape), classes), build, "int64"), (t,))
