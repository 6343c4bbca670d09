"""Turning user data into the numpy arrays tensors hold.

Rule (documented in the README): Python numbers, lists and bool/integer arrays become
float32; float32 and float64 numpy arrays keep their dtype; float16 becomes float32;
complex, object and string data raise ``TypeError``.
"""
from __future__ import annotations

import numpy as np

from lucid_ir.types import check_dtype


def to_array(data, dtype=None, op: str = "tensor") -> np.ndarray:
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
            arr = arr.astype(np.float32)  # Python floats default to float32, as in PyTorch
    kind = arr.dtype.kind
    if kind in "biu":
        arr = arr.astype(dtype or np.float32)
    elif kind == "f":
        if dtype is not None:
            arr = arr.astype(dtype, copy=False)
        elif arr.dtype.name not in ("float32", "float64"):
            arr = arr.astype(np.float32)
    else:
        raise TypeError(f"{op}: expected numeric data, got an array of dtype {arr.dtype} "
                        f"(lucid tensors are float32 or float64)")
    return arr
