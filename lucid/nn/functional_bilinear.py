"""``F.bilinear``: ``y = x1ᵀ · A · x2 + b`` for every output feature, as PyTorch's.

input1 ``(*, in1)``, input2 ``(*, in2)`` (the same leading shape), weight
``(out, in1, in2)``, bias ``(out,)`` or None; the result is ``(*, out)``. It is one
matmul (input1 against the weight laid out as ``(in1, out * in2)``), a product with
input2 and a sum: every step an IR op, so autodiff and fusion see them.

>>> import lucid
>>> import lucid.nn.functional as F
>>> x1, x2 = lucid.tensor([[1.0, 2.0]]), lucid.tensor([[3.0, 4.0, 5.0]])
>>> F.bilinear(x1, x2, lucid.ones(1, 2, 3), lucid.tensor([0.5])).tolist()
[[36.5]]
"""
from __future__ import annotations

from ..dispatch import as_tensor
from ..functional_core import matmul


def _check(x1, x2, weight, bias) -> None:
    if weight.ndim != 3:
        raise RuntimeError(f"bilinear(): weight must be 3-D (out, in1, in2), got shape {tuple(weight.shape)}")
    if x1.ndim != x2.ndim:
        raise RuntimeError(f"bilinear(): input dimensions do not match: got {x1.ndim} and {x2.ndim}")
    if x1.ndim < 1:
        raise RuntimeError("bilinear(): inputs must have at least 1 dimension, got 0-d tensors")
    for d, (a, b) in enumerate(zip(x1.shape[:-1], x2.shape[:-1])):
        if a != b:
            raise RuntimeError(f"bilinear(): input batch dimensions do not match at dim {d}: got {a} and {b}")
    if x1.shape[-1] != weight.shape[1]:
        raise RuntimeError(f"bilinear(): input1 size does not match weight size: got "
                           f"{x1.shape[-1]} but expected {weight.shape[1]}")
    if x2.shape[-1] != weight.shape[2]:
        raise RuntimeError(f"bilinear(): input2 size does not match weight size: got "
                           f"{x2.shape[-1]} but expected {weight.shape[2]}")
    if bias is not None and (bias.ndim != 1 or bias.shape[0] != weight.shape[0]):
        got = bias.shape[0] if bias.ndim == 1 else tuple(bias.shape)
        raise RuntimeError(f"bilinear(): bias size does not match weight size: got {got} but "
                           f"expected {weight.shape[0]}")


def bilinear(input1, input2, weight, bias=None):
    """``out[..., o] = Σ_ij input1[..., i] · weight[o, i, j] · input2[..., j] + bias[o]``."""
    x1, x2, w = as_tensor(input1), as_tensor(input2), as_tensor(weight)
    b = None if bias is None else as_tensor(bias)
    _check(x1, x2, w, b)
    out_features, in1, in2 = w.shape
    lead = tuple(x1.shape[:-1])
    n = 1
    for d in lead:
        n *= d
    mixed = matmul(x1.reshape(n, in1), w.permute(1, 0, 2).reshape(in1, out_features * in2))
    out = (mixed.reshape(n, out_features, in2) * x2.reshape(n, 1, in2)).sum(2)
    if b is not None:
        out = out + b
    return out.reshape(*lead, out_features)
