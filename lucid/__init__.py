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
from .creation import arange, as_tensor, empty, empty_like, eye, from_numpy, full, full_like, get_default_dtype, is_tensor, linspace, normal, numel, ones_like, rand_like, randint, randint_like, randn_like, set_default_dtype, zeros_like; from .random import Generator, default_generator, get_rng_state, initial_seed, manual_seed, seed, set_rng_state  # noqa: E402,E702
__all__ += ["arange", "as_tensor", "empty", "empty_like", "eye", "from_numpy", "full", "full_like", "get_default_dtype", "is_tensor", "linspace", "normal", "numel", "ones_like", "rand_like", "randint", "randint_like", "randn_like", "set_default_dtype", "zeros_like", "Generator", "default_generator", "get_rng_state", "initial_seed", "manual_seed", "seed", "set_rng_state"]
from .grad_mode import enable_grad, inference_mode, is_inference_mode_enabled, set_grad_enabled; from . import autograd; __all__ += ["enable_grad", "set_grad_enabled", "inference_mode", "is_inference_mode_enabled", "autograd"]  # noqa: E402,E702
from .reductions import all, amax, amin, any, argmax, argmin, cumsum, logsumexp, max, mean, min, prod, std, sum, var  # noqa: E402,A004
__all__ += ["sum", "mean", "prod", "max", "min", "amax", "amin", "argmax", "argmin", "var", "std", "logsumexp", "all", "any", "cumsum"]
