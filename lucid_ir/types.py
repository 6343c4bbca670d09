"""Types of graph values: a shape and a dtype, printed the jaxpr way (``f32[64,784]``).

Five dtypes: ``float32`` (f32), ``float64`` (f64), ``int32`` (i32), ``int64`` (i64) and
``bool`` (stored as one byte per element, as numpy stores it).

>>> t = TensorType((64, 784), "float32")
>>> str(t), str(TensorType((3,), "bool")), TensorType.parse("i64[2,3]").dtype
('f32[64,784]', 'bool[3]', 'int64')
>>> broadcast_shapes((3, 1), (4,))
(3, 4)
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

DTYPES = ("float32", "float64", "int32", "int64", "bool")
FLOAT_DTYPES = ("float32", "float64")
INT_DTYPES = ("int32", "int64")
SHORT_NAMES = {"float32": "f32", "float64": "f64", "int32": "i32", "int64": "i64", "bool": "bool"}
FROM_SHORT = {v: k for k, v in SHORT_NAMES.items()}
DEFAULT_INT = "int64"       # what an int scalar turns a bool tensor into

# PyTorch's categories, lowest first; within one, the wider dtype wins.
_CATEGORY = {"bool": 0, "int32": 1, "int64": 1, "float32": 2, "float64": 2}
_WIDTH = {"bool": 1, "int32": 4, "int64": 8, "float32": 4, "float64": 8}
# PyTorch's default (float) dtype: what Python floats become, and what a float scalar turns
# an int tensor into. One setting, changed by ``lucid.set_default_dtype`` and read at each use.
_DEFAULT = {"float": "float32"}


def default_float() -> str:
    """The default floating dtype (``"float32"`` unless ``set_default_float`` changed it)."""
    return _DEFAULT["float"]


def set_default_float(dtype) -> None:
    """Make ``dtype`` (float32 or float64) the default floating dtype."""
    name = check_dtype(dtype)
    if name not in FLOAT_DTYPES:
        raise TypeError(f"set_default_dtype: only floating-point types are supported as the "
                        f"default type, got {name}")
    _DEFAULT["float"] = name


def _category_default(category: int) -> str:
    return ("bool", DEFAULT_INT, _DEFAULT["float"])[category]


def check_dtype(dtype) -> str:
    """Normalise a dtype (numpy dtype, type or name) to one of ``DTYPES``.

    >>> check_dtype(np.int32), check_dtype("f8"), check_dtype(bool)
    ('int32', 'float64', 'bool')
    """
    supported = ", ".join(DTYPES)
    try:
        name = np.dtype(dtype).name
    except TypeError:
        raise TypeError(f"unsupported dtype {dtype!r}: lucid supports {supported}") from None
    if name not in DTYPES:
        raise TypeError(f"unsupported dtype {name}: lucid supports {supported}")
    return name


def is_float(dtype: str) -> bool:
    return dtype in FLOAT_DTYPES


def is_int(dtype: str) -> bool:
    """int32 or int64 (bool is not an integer dtype here, as in PyTorch)."""
    return dtype in INT_DTYPES


def promote(*dtypes: str) -> str:
    """The result dtype of mixing tensor operands, by PyTorch's rule: the highest
    category wins (bool < integer < floating), and within it the widest dtype.

    >>> promote("float32", "float64"), promote("int32", "float32"), promote("bool", "int32")
    ('float64', 'float32', 'int32')
    >>> promote("int64", "float32"), promote("bool", "bool"), promote("int32", "int64")
    ('float32', 'bool', 'int64')
    """
    if not dtypes:
        raise ValueError("promote: needs at least one dtype")
    for d in dtypes:
        if d not in _CATEGORY:
            raise TypeError(f"promote: unsupported dtype {d!r}")
    return max(dtypes, key=lambda d: (_CATEGORY[d], _WIDTH[d]))


def scalar_dtype(value) -> str:
    """The category's default dtype of a Python scalar: bool, int64 or the default
    float dtype (float32 unless changed)."""
    if isinstance(value, (bool, np.bool_)):
        return "bool"
    if isinstance(value, (int, np.integer)):
        return DEFAULT_INT
    if isinstance(value, (float, np.floating)):
        return _DEFAULT["float"]
    raise TypeError(f"not a Python scalar: {type(value).__name__}")


def result_type(*operands) -> str:
    """PyTorch's ``torch.result_type`` for tensor dtypes (strings) mixed with Python
    scalars, which are *weak*: a scalar only changes the result when its category is
    higher than every tensor's, and then gives that category's default dtype.

    >>> result_type("float32", 2)          # an int scalar keeps a float tensor's dtype
    'float32'
    >>> result_type("int32", 2.5)          # a float scalar turns an int tensor into float32
    'float32'
    >>> result_type("bool", 3), result_type("int32", True), result_type("float64", 0.5)
    ('int64', 'int32', 'float64')
    >>> result_type("int32", "int64", 1.0), result_type(1, 2.0)
    ('float32', 'float32')
    """
    tensors = [d for d in operands if isinstance(d, str)]
    scalars = [scalar_dtype(s) for s in operands if not isinstance(s, str)]
    weak = promote(*scalars) if scalars else None
    if not tensors:
        if weak is None:
            raise ValueError("result_type: needs at least one operand")
        return weak
    strong = promote(*tensors)
    if weak is not None and _CATEGORY[weak] > _CATEGORY[strong]:
        return _category_default(_CATEGORY[weak])
    return strong


def fill_value(value, dtype: str):
    """A constant's value as the Python type of ``dtype`` (float, int or bool). Integer
    dtypes take only whole numbers, so a constant never rounds silently.

    >>> fill_value(2, "float32"), fill_value(3.0, "int64"), fill_value(1, "bool")
    (2.0, 3, True)
    """
    if is_float(dtype):
        return float(value)
    if dtype == "bool":
        return bool(value)
    if isinstance(value, (float, np.floating)) and not float(value).is_integer():
        raise ValueError(f"constant: {value!r} is not a whole number, so not a {dtype} value")
    v = int(value)
    info = np.iinfo(dtype)
    if not info.min <= v <= info.max:
        raise ValueError(f"constant: {v} is out of range for {dtype}")
    return v


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
