"""Parameters as one flat vector and back, as ``torch.nn.utils``.

>>> import lucid
>>> a, b = lucid.Tensor([[1.0, 2.0]]), lucid.Tensor([3.0])
>>> v = parameters_to_vector([a, b])
>>> v.tolist()
[1.0, 2.0, 3.0]
>>> vector_to_parameters(v * 10, [a, b])
>>> a.tolist(), b.tolist()
([[10.0, 20.0]], [30.0])
"""
from __future__ import annotations

import numpy as np

from ...functional_core import cat
from ...tensor import Tensor


def parameters_to_vector(parameters) -> Tensor:
    """The parameters flattened and concatenated, in order (differentiable)."""
    params = [parameters] if isinstance(parameters, Tensor) else list(parameters)
    for i, p in enumerate(params):
        if not isinstance(p, Tensor):
            raise TypeError(f"parameters_to_vector: expected Tensors, item {i} is {type(p).__name__}")
    return cat([p.reshape(-1) for p in params])


def vector_to_parameters(vec: Tensor, parameters) -> None:
    """Copy consecutive slices of the 1-d ``vec`` into the parameters' values (in place:
    compiled functions that read the parameters see the new values)."""
    if not isinstance(vec, Tensor):
        raise TypeError(f"vector_to_parameters: expected vec to be a Tensor, but got {type(vec).__name__}")
    params = [parameters] if isinstance(parameters, Tensor) else list(parameters)
    total = sum(p.numel() for p in params)
    if vec.ndim != 1 or vec.shape[0] != total:
        raise ValueError(f"vector_to_parameters: vec of shape {tuple(vec.shape)} does not hold the "
                         f"{total} values of the parameters")
    data, start = vec.numpy(), 0
    for p in params:
        n = p.numel()
        np.copyto(p._data, data[start:start + n].reshape(p.shape), casting="same_kind")
        start += n
