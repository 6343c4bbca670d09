"""``Embedding``: a lookup table of ``num_embeddings`` vectors of ``embedding_dim``.

>>> import lucid
>>> import lucid.nn as nn
>>> emb = nn.Embedding(10, 3, padding_idx=-1)
>>> emb, emb.weight.shape, emb.weight[9].tolist()
(Embedding(10, 3, padding_idx=9), (10, 3), [0.0, 0.0, 0.0])
>>> emb(lucid.tensor([[1, 2], [9, 0]])).shape
(2, 2, 3)
"""
from __future__ import annotations

from .. import random
from ..dispatch import as_tensor
from . import functional as F
from .module import Module
from .normalization import _dtype
from .parameter import Parameter


def _padding_index(padding_idx, num_embeddings: int):
    if padding_idx is None:
        return None
    if not -num_embeddings <= padding_idx < num_embeddings:
        raise AssertionError(f"Embedding: padding_idx must be within num_embeddings ({num_embeddings}), "
                             f"got {padding_idx}")
    return padding_idx % num_embeddings


class Embedding(Module):
    """Rows of ``weight`` ``(num_embeddings, embedding_dim)``, initialised from N(0, 1)
    (lucid's seeded generator) with the ``padding_idx`` row zero."""

    def __init__(self, num_embeddings: int, embedding_dim: int, padding_idx=None, max_norm=None,
                 norm_type: float = 2.0, scale_grad_by_freq: bool = False, sparse: bool = False,
                 _weight=None, _freeze: bool = False, device=None, dtype=None):
        super().__init__()
        self.num_embeddings, self.embedding_dim = num_embeddings, embedding_dim
        self.padding_idx = _padding_index(padding_idx, num_embeddings)
        self.max_norm, self.norm_type = max_norm, norm_type
        self.scale_grad_by_freq, self.sparse = scale_grad_by_freq, sparse
        if _weight is None:
            data = random.generator().standard_normal((num_embeddings, embedding_dim)).astype(_dtype(dtype))
            if self.padding_idx is not None:
                data[self.padding_idx] = 0.0
            self.weight = Parameter(data, requires_grad=not _freeze)
        else:
            w = as_tensor(_weight)
            if tuple(w.shape) != (num_embeddings, embedding_dim):
                raise AssertionError(f"Embedding: shape of weight {tuple(w.shape)} does not match "
                                     f"num_embeddings and embedding_dim ({num_embeddings}, {embedding_dim})")
            self.weight = Parameter(w.numpy().copy(), requires_grad=not _freeze)

    @classmethod
    def from_pretrained(cls, embeddings, freeze: bool = True, padding_idx=None, max_norm=None,
                        norm_type: float = 2.0, scale_grad_by_freq: bool = False, sparse: bool = False):
        """An ``Embedding`` whose weight is a copy of the 2-D ``embeddings`` (not trained
        when ``freeze``)."""
        w = as_tensor(embeddings)
        if w.ndim != 2:
            raise AssertionError("Embeddings parameter is expected to be 2-dimensional, "
                                 f"got shape {tuple(w.shape)}")
        rows, cols = w.shape
        return cls(rows, cols, padding_idx, max_norm, norm_type, scale_grad_by_freq, sparse,
                   _weight=w, _freeze=freeze)

    def forward(self, input):  # noqa: A002
        return F.embedding(input, self.weight, self.padding_idx, self.max_norm, self.norm_type,
                           self.scale_grad_by_freq, self.sparse)

    def extra_repr(self) -> str:
        s = f"{self.num_embeddings}, {self.embedding_dim}"
        if self.padding_idx is not None:
            s += f", padding_idx={self.padding_idx}"
        if self.max_norm is not None:
            s += f", max_norm={self.max_norm}"
        if self.norm_type != 2:
            s += f", norm_type={self.norm_type}"
        if self.scale_grad_by_freq is not False:
            s += f", scale_grad_by_freq={self.scale_grad_by_freq}"
        if self.sparse is not False:
            s += ", sparse=True"
        return s
