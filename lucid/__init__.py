"""Lucid: PyTorch-style deep learning in which every operation goes through a compiler.

>>> import lucid
>>> import lucid.nn.functional as F
>>> x = lucid.Tensor([[1.0, 2.0, 3.0]], requires_grad=True)
>>> w = lucid.Tensor([[4.0, 5.0, 6.0], [7.0, 8.0, 9.0]], requires_grad=True)
>>> F.linear(x, w)
Tensor([[32.0, 50.0]], grad=None)
"""
__version__ = "0.1.0"

# the order matters: tensor before the modules that build on it
from . import backend, random  # noqa: E402
from .creation import (arange, as_tensor, bernoulli, empty, empty_like, eye, from_numpy, full,  # noqa: E402
                       full_like, get_default_dtype, is_tensor, linspace, normal, numel, ones,
                       ones_like, rand, rand_like, randint, randint_like, randn, randn_like,
                       set_default_dtype, tensor, zeros, zeros_like)
from .random import (Generator, default_generator, get_rng_state, initial_seed,  # noqa: E402
                     manual_seed, seed, set_rng_state)
from .grad_mode import (enable_grad, inference_mode, is_grad_enabled,  # noqa: E402
                        is_inference_mode_enabled, no_grad, set_grad_enabled)
from .functional_core import cat, maximum, stack, where  # noqa: E402
from .products import addmm, baddbmm, bmm, matmul, mm  # noqa: E402
from .tensor import Tensor  # noqa: E402
from .compiled import compile  # noqa: E402
from .threading_api import get_num_threads, set_num_threads  # noqa: E402
from .tracing import TracingError  # noqa: E402
from .reductions import (all, amax, amin, any, argmax, argmin, cumsum, logsumexp, max,  # noqa: E402,A004
                         mean, min, prod, std, sum, var)
from .tensor_ops import Size, clamp, clip, clone, device, diff, lerp, masked_fill, minimum  # noqa: E402
from . import autograd, nn, optim, utils  # noqa: E402
from . import linalg; linalg._install(Tensor)  # noqa: E402,E702  (after nn: its chains are nn's Steps)
from .linalg import tensor_norm as norm  # noqa: E402
from .einsum import einsum  # noqa: E402
from . import sampling_discrete as _discrete; _discrete._install(Tensor)  # noqa: E402,E702  x.multinomial
from .sampling_discrete import multinomial, randperm  # noqa: E402
from .serialization import load, save  # noqa: E402
from . import functions as _functions, index_ops as _index_ops, shape_ops as _shape_ops  # noqa: E402
from .index_ops import gather, index_select, masked_select, nonzero, scatter_add, take  # noqa: E402
from .sorting import argsort, msort, sort, topk  # noqa: E402
from .cumulative import cummax, cummin, cumprod  # noqa: E402
from .index_fill import index_fill  # noqa: E402
from .shape_ops import (broadcast_to, chunk, flatten, flip, moveaxis, movedim, narrow, permute,  # noqa: E402
                        reshape, roll, split, squeeze, swapaxes, swapdims, t, transpose, tril,
                        triu, unbind, unflatten, unsqueeze)
from .functions import (abs, add, ceil, cos, div, eq, erf, erfc, exp, expm1, floor, floor_divide,  # noqa: E402,A004
                        fmod, ge, gt, isfinite, isinf, isnan, le, log, log1p, log2, logical_and,
                        logical_not, logical_or, logical_xor, lt, mul, ne, neg, pow, reciprocal,
                        remainder, round, rsqrt, sigmoid, sign, sin, sqrt, square, sub, tanh,
                        true_divide, trunc)
from .nn.functional import log_softmax, relu, softmax  # noqa: E402  (torch.softmax ...)
from .nn import functional_activation as _activation; _activation._install(Tensor)  # noqa: E402,E702
from .dtypes import bool, dtype, float32, float64, int32, int64  # noqa: E402,A004
float, double, int, long = float32, float64, int32, int64  # noqa: A001 - PyTorch's aliases

__all__ = [
    "Tensor", "tensor", "as_tensor", "from_numpy", "is_tensor", "numel",
    "zeros", "ones", "empty", "full", "arange", "linspace", "eye",
    "zeros_like", "ones_like", "empty_like", "full_like",
    "rand", "randn", "randint", "normal", "bernoulli", "rand_like", "randn_like", "randint_like",
    "multinomial", "randperm",
    "Generator", "default_generator", "manual_seed", "seed", "initial_seed", "get_rng_state", "set_rng_state",
    "get_default_dtype", "set_default_dtype",
    "no_grad", "enable_grad", "set_grad_enabled", "inference_mode", "is_grad_enabled",
    "is_inference_mode_enabled", "autograd",
    "matmul", "mm", "bmm", "addmm", "baddbmm", "where", "cat", "stack", "maximum", "minimum", "clamp", "clip", "clone", "diff", "lerp",
    "masked_fill", "index_fill", "sum", "mean", "prod", "max", "min", "amax", "amin", "argmax", "argmin", "var",
    "std", "logsumexp", "all", "any", "cumsum", "cumprod", "cummax", "cummin", "sort", "argsort", "msort",
    "topk", *_functions.__all__, *_shape_ops.__all__, *_index_ops.__all__,
    "norm", "linalg", "einsum", "compile", "get_num_threads", "set_num_threads", "TracingError", "random", "nn", "optim", "utils", "distributed", "Size", "device", "save", "load", "softmax", "log_softmax", "relu",
    "float32", "float64", "int32", "int64", "bool", "dtype", "float", "double", "int", "long",
]


def __getattr__(name):
    """``lucid.distributed`` is imported on first use (it is rarely needed and keeps
    ``import lucid`` light)."""
    if name == "distributed":
        import importlib
        return importlib.import_module(".distributed", __name__)
    raise AttributeError(f"module 'lucid' has no attribute {name!r}")
