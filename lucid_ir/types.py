"""Types of graph values: a shape and a dtype, printed the jaxpr way (``f32[64,784]``).

>>> t = TensorType((64, 784), "float32")
>>> str(t)
'f32[64,784]'
>>> broadcast_shapes((3, 1), (4,))
(3, 4)
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

DTYPES = ("float32", "float64")
SHORT_NAMES = {"float32": "f32", "float64": "f64"}
FROM_SHORT = {v: k for k, v in SHORT_NAMES.items()}


def check_dtype(dtype) -> str:
    """Normalise a dtype (numpy dtype, type or name) to 'float32' or 'float64'."""
    try:
        name = np.dtype(dtype).name
    except TypeError:
        raise TypeError(f"unsupported dtype {dtype!r}: lucid supports float32 and float64") from None
    if name not in DTYPES:
        raise TypeError(f"unsupported dtype {name}: lucid supports float32 and float64")
    return name


def promote(*dtypes: str) -> str:
    """The result dtype of mixing operands: float64 if any operand is float64."""
    return "float64" if "float64" in dtypes else "float32"


@dataclass(frozen=True)
class TensorType:
    shape: tuple[int, ...]
    dtype: str

    def __post_init__(self):
        object.__setattr__(self, "shape", tuple(int(d) for d in self.shape))
        if any(d < 0 for d in self.shape):
            raise ValueError(f"negative dimension in shape {self.shape}")
        if self.dtype not in DTYPES:
            raise TypeError(f"unsupported dtype {self.dtype!r}")

    @property
    def ndim(self) -> int:
        return len(self.shape)

    @property
    def size(self) -> int:
        n = 1
        for d in self.shape:
            n *= d
        return n

    def __str__(self) -> str:
        return f"{SHORT_NAMES[self.dtype]}[{','.join(map(str, self.shape))}]"

    @staticmethod
    def parse(text: str) -> "TensorType":
        """Inverse of ``str``: ``TensorType.parse('f32[2,3]')``."""
        short, _, rest = text.partition("[")
        dims = rest.rstrip("]")
        shape = tuple(int(d) for d in dims.split(",")) if dims else ()
        return TensorType(shape, FROM_SHORT[short])


def broadcast_shapes(*shapes: tuple[int, ...], op: str = "broadcast") -> tuple[int, ...]:
    """numpy's broadcasting rule; ValueError naming ``op`` and the shapes if they clash."""
    ndim = max((len(s) for s in shapes), default=0)
    out = []
    for axis in range(ndim):
        dims = {s[axis - ndim + len(s)] for s in shapes if axis - ndim + len(s) >= 0}
        dims.discard(1)
        if len(dims) > 1:
            listed = " and ".join(str(tuple(s)) for s in shapes)
            raise ValueError(f"{op}: shapes {listed} cannot be broadcast together")
        out.append(dims.pop() if dims else 1)
    return tuple(out)


def normalize_axes(axes, ndim: int, op: str) -> tuple[int, ...]:
    """Axes as a sorted tuple of non-negative ints (None means all axes)."""
    if axes is None:
        return tuple(range(ndim))
    if isinstance(axes, (int, np.integer)):
        axes = (axes,)
    out = []
    for a in axes:
        a = int(a)
        if not -ndim <= a < ndim:
            raise ValueError(f"{op}: axis {a} is out of range for a tensor of {ndim} dimensions")
        out.append(a % ndim)
    if len(set(out)) != len(out):
        raise ValueError(f"{op}: repeated axis in {tuple(axes)}")
    return tuple(sorted(out))
