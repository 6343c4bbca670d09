"""Turning user data into the numpy arrays tensors hold.

Rules (documented in the README), as PyTorch's:

- ``lucid.tensor(data)`` infers the dtype: Python floats give the default float dtype
  (float32 unless ``lucid.set_default_dtype`` changed it), Python ints int64, Python
  bools bool; numpy arrays keep float32, float64, int32, int64 and bool, other integer
  arrays become int64 and float16 becomes the default float dtype.
- ``lucid.Tensor(data)`` (like ``torch.Tensor``) always gives a floating tensor: the
  same, except that integer and boolean data become the default float dtype.
- ``dtype=`` converts to that dtype. Complex, object and string data raise ``TypeError``.
"""
from __future__ import annotations

import numpy as np

from lucid_ir.types import check_dtype, default_float

_KEPT = {np.dtype(n) for n in ("float32", "float64", "int32", "int64", "bool")}


def to_array(data, dtype=None, op: str = "tensor", infer: bool = False) -> np.ndarray:
    """The array a tensor holds for ``data``; ``infer``: ``lucid.tensor``'s dtype rules,
    else ``lucid.Tensor``'s (integers and booleans become float32)."""
    from .tensor import Tensor
    if isinstance(data, Tensor):
        data = data._data
    if dtype is not None:
        dtype = check_dtype(dtype)
    if isinstance(data, np.ndarray):
        arr = data
    else:
        if isinstance(data, (str, bytes)):
            raise TypeError(f"{op}: expected numeric data, got {type(data).__name__} {data!r}")
        try:
            arr = np.asarray(data)
        except (ValueError, TypeError) as exc:
            raise TypeError(f"{op}: cannot make a tensor from this data: {exc}") from None
        if arr.dtype.kind == "f" and dtype is None:
            arr = arr.astype(default_float())  # Python floats: the default dtype, as in PyTorch
    kind = arr.dtype.kind
    if kind not in "biuf":
        raise TypeError(f"{op}: expected numeric data, got an array of dtype {arr.dtype} "
                        f"(lucid tensors are float32, float64, int32, int64 or bool)")
    if dtype is not None:
        return arr if arr.dtype == dtype else arr.astype(dtype)
    if arr.dtype in _KEPT and (infer or kind == "f"):
        return arr
    if kind == "f":
        return arr.astype(default_float())  # float16
    if not infer:
        return arr.astype(default_float())  # Tensor(...) is floating, as torch.Tensor(...)
    return arr.astype(np.int64)        # other integer widths (and unsigned): int64
