"""Gradient buckets: parameters grouped (in reverse registration order, roughly the
order backward produces their gradients) into flat buffers of up to ``cap`` bytes, each
all-reduced as one message as soon as all its gradients are ready."""
from __future__ import annotations

import numpy as np


class Bucket:
    """Parameters of one dtype whose gradients travel as one flat array."""

    def __init__(self, params):
        self.params = params
        self.dtype = params[0]._data.dtype
        self.ready: set = set()
        self.unused: set = set()
        self.flat: np.ndarray | None = None
        self.work = None

    @property
    def complete(self) -> bool:
        return len(self.ready) + len(self.unused) == len(self.params)

    def reset(self) -> None:
        self.ready.clear()
        self.unused.clear()
        self.flat = self.work = None

    def pack(self) -> np.ndarray:
        """The gradients as one new flat array (zeros for parameters unused here)."""
        parts = [np.zeros(p._data.size, self.dtype) if id(p) in self.unused else
                 np.ravel(p._grad).astype(self.dtype, copy=False) for p in self.params]
        self.flat = np.concatenate(parts) if parts else np.empty(0, self.dtype)
        return self.flat

    def unpack(self, world_size: int) -> None:
        """Average the reduced sums and hand each parameter its slice (a view)."""
        flat = self.flat
        np.divide(flat, world_size, out=flat)
        at = 0
        for p in self.params:
            n = p._data.size
            part = flat[at:at + n].reshape(p._data.shape)
            at += n
            if id(p) in self.unused and p._grad is None and not part.any():
                continue  # no rank used it: its grad stays None, as in PyTorch
            p._grad = part


def make_buckets(params, cap_bytes: int) -> list:
    """Consecutive parameters (last registered first) of one dtype, up to ``cap_bytes``."""
    buckets, current, size = [], [], 0
    for p in reversed(params):
        nbytes = p._data.nbytes
        if current and (size + nbytes > cap_bytes or p._data.dtype != current[0]._data.dtype):
            buckets.append(Bucket(current))
            current, size = [], 0
        current.append(p)
        size += nbytes
    if current:
        buckets.append(Bucket(current))
    return buckets
