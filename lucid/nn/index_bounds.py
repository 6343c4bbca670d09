"""``indices_below(a, n)``: whether every value of an integer array lies in ``[0, n)``,
with one reduction: the values read as unsigned, so a negative one wraps past every
bound. (``a.max()`` would add a Python frame and miss negatives; embedding indices and
class targets are checked this way on every call.)

>>> import numpy as np
>>> indices_below(np.array([0, 4, 2]), 5), indices_below(np.array([0, -1]), 5)
(True, False)
>>> indices_below(np.zeros((2, 0), np.int32), 0)
True
"""
from __future__ import annotations

import numpy as np

_UNSIGNED = {n: np.dtype(f"u{n}") for n in (1, 2, 4, 8)}
_largest = np.maximum.reduce  # (the ufunc itself, over every axis)


def indices_below(a: np.ndarray, n: int) -> bool:
    """Whether every value of the integer array ``a`` is in ``[0, n)`` (True when empty)."""
    return not a.size or bool(_largest(a.view(_UNSIGNED[a.itemsize]), axis=None) < n)
