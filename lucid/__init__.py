"""Lucid: PyTorch-style deep learning in which every operation goes through a compiler.

>>> import lucid
>>> import lucid.nn.functional as F
>>> x = lucid.Tensor([[1.0, 2.0, 3.0]], requires_grad=True)
>>> w = lucid.Tensor([[4.0, 5.0, 6.0], [7.0, 8.0, 9.0]], requires_grad=True)
>>> F.linear(x, w)
Tensor([[32.0, 50.0]], grad=None)
"""
__version__ = "0.1.0"

from . import backend, random  # noqa: E402
from .creation import ones, rand, randn, tensor, zeros  # noqa: E402
from .grad_mode import is_grad_enabled, no_grad  # noqa: E402
from .functional_core import cat, matmul, maximum, stack, where  # noqa: E402
from .tensor import Tensor  # noqa: E402
from .compiled import compile  # noqa: E402
from .tracing import TracingError  # noqa: E402
from . import nn, optim  # noqa: E402

from .dtypes import bool, dtype, float32, float64, int32, int64  # noqa: E402,A004
float, double, int, long = float32, float64, int32, int64  # noqa: A001 - PyTorch's aliases

__all__ = ["Tensor", "tensor", "zeros", "ones", "randn", "rand", "no_grad", "is_grad_enabled",
           "matmul", "where", "cat", "stack", "maximum", "compile", "TracingError", "random", "nn", "optim", "float32", "float64",
           "int32", "int64", "bool", "dtype", "float", "double", "int", "long"]
from .tensor_ops import Size, clamp, clip, clone, device, diff, lerp, masked_fill, minimum, numel  # noqa: E402,I001
__all__ += ["Size", "device", "clamp", "clip", "clone", "diff", "lerp", "masked_fill", "minimum", "numel"]
