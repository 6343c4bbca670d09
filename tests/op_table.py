"""The op table: every public op once, written against the API lucid and PyTorch share.

An entry's ``fn(lib, *xs)`` is called with ``lib`` = ``torch`` (the reference) and with
``lib`` = ``lucid``: the same source text runs on both, which is the promise that a
PyTorch model runs on lucid by changing the import. ``cases`` lists the inputs of each
call as ``In`` specs (shape, kind of data, layout); ``tests/test_op_table.py`` runs every
case in every mode (eager native, interpreter, ``lucid.compile``) and compares values and
gradients with PyTorch in float64, gradients also with finite differences.

>>> [e.name for e in TABLE if e.name.startswith("log")][:3]
['log', 'log2', 'log1p']
>>> make(In((2, 3), "index:4"), np.random.default_rng(0)).dtype
dtype('int64')
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import numpy as np


@dataclass(frozen=True)
class In:
    """One input: its shape, the kind of data and the layout it reaches the op in.

    kind: ``float`` (standard normal), ``positive`` (0.5…2), ``unit`` (-0.9…0.9),
    ``distinct`` (a permutation of spread values: no ties for max/sort), ``int``
    (-5…5, int64), ``int32``, ``bool``, ``index:N`` (0…N-1, int64), ``prob`` (rows that sum to 1
    along the last dim), or ``const:V`` (the value V everywhere, float).
    layout: ``c`` (contiguous) or ``T`` (a transposed view: same shape, reversed strides).
    grad: whether a float input requires grad.
    """
    shape: tuple
    kind: str = "float"
    layout: str = "c"
    grad: bool = True

    @property
    def is_float(self) -> bool:
        return self.kind in ("float", "positive", "unit", "distinct", "prob") or self.kind.startswith("const")


def T(*shape, kind="float"):
    """A non-contiguous (transposed) input of this shape."""
    return In(tuple(shape), kind, layout="T")


def make(spec: In, rng) -> np.ndarray:
    """The numpy data of ``spec`` (float64 for float kinds)."""
    shape = spec.shape[::-1] if spec.layout == "T" else spec.shape
    kind = spec.kind
    n = int(np.prod(shape))
    if kind == "float":
        a = rng.standard_normal(shape)
    elif kind == "positive":
        a = rng.uniform(0.5, 2.0, shape)
    elif kind == "unit":
        a = rng.uniform(-0.9, 0.9, shape)
    elif kind == "distinct":
        a = (rng.permutation(n) - n / 2).reshape(shape) * 0.37 + 0.01
    elif kind == "prob":
        a = rng.uniform(0.1, 1.0, shape)
        a = a / a.sum(axis=-1, keepdims=True)
    elif kind.startswith("const:"):
        a = np.full(shape, float(kind[6:]))
    elif kind == "int":
        a = rng.integers(-5, 6, shape).astype(np.int64)
    elif kind == "int32":
        a = rng.integers(-5, 6, shape).astype(np.int32)
    elif kind == "bool":
        a = rng.random(shape) < 0.5
    elif kind.startswith("index:"):
        a = rng.integers(0, int(kind[6:]), shape).astype(np.int64)
    else:
        raise ValueError(f"op table: unknown input kind {kind!r}")
    a = np.asarray(a)
    return a.T if spec.layout == "T" else a


@dataclass
class Op:
    """One op: ``fn(lib, *xs)`` on ``cases``; ``grad`` False for ops without a gradient
    (or whose float inputs get none); ``fd`` False where finite differences are not
    meaningful (kinks at the sampled points); ``rtol``/``atol`` for float64 values."""
    name: str
    fn: Callable
    cases: list
    grad: bool = True
    fd: bool = True
    modes: tuple = ("eager", "interpret", "compile")
    rtol: float = 1e-10
    atol: float = 1e-12
    notes: str = ""
    kw: dict = field(default_factory=dict)


def F(lib):
    """``lib.nn.functional`` (imported on first use on both sides)."""
    import importlib
    return importlib.import_module(lib.__name__ + ".nn.functional")


def _unary_cases(kind="float"):
    return [[In((7,), kind)], [In((3, 5), kind)], [In((), kind)], [In((0, 4), kind)],
            [In((1, 1), kind)], [T(5, 3, kind=kind)]]


def _binary_cases(a="float", b="float"):
    return [[In((3, 5), a), In((3, 5), b)], [In((3, 1), a), In((5,), b)], [In((), a), In((2, 3), b)],
            [In((0, 3), a), In((1, 3), b)], [T(4, 3, kind=a), In((4, 3), b)]]


def _reduce_cases(kind="float"):
    return [[In((4, 6), kind)], [In((2, 3, 5), kind)], [T(5, 3, kind=kind)], [In((7,), kind)]]


TABLE: list[Op] = []


def op(name, fn, cases, **kw) -> Op:
    entry = Op(name, fn, cases, **kw)
    TABLE.append(entry)
    return entry


# ------------------------------------------------------------------ elementwise, unary
for _name, _kind in [("exp", "float"), ("log", "positive"), ("log2", "positive"), ("log1p", "positive"),
                     ("expm1", "float"), ("sqrt", "positive"), ("rsqrt", "positive"), ("sin", "float"),
                     ("cos", "float"), ("tanh", "float"), ("sigmoid", "float"), ("erf", "float"), ("erfc", "float"),
                     ("neg", "float"), ("abs", "distinct")]:
    op(_name, (lambda n: lambda lib, x: getattr(x, n)())(_name), _unary_cases(_kind))
op("square_via_pow", lambda lib, x: x ** 2, _unary_cases())
op("pow_tensor", lambda lib, x, y: x.pow(y), _binary_cases("positive", "float"))
op("rpow_scalar", lambda lib, x: 2.0 ** x, _unary_cases())
op("sign", lambda lib, x: x.sign(), _unary_cases("distinct"), grad=False)
for _name in ("floor", "ceil", "round"):
    op(_name, (lambda n: lambda lib, x: getattr(x, n)())(_name), _unary_cases("distinct"), fd=False)
op("isnan", lambda lib, x: x.isnan(), _unary_cases(), grad=False)
op("isfinite", lambda lib, x: lib.isfinite(x / x), _unary_cases(), grad=False)
op("relu", lambda lib, x: x.relu(), _unary_cases("distinct"))
op("clamp_both", lambda lib, x: x.clamp(-0.5, 0.7), _unary_cases("distinct"))
op("clamp_min", lambda lib, x: x.clamp(min=0.1), _unary_cases("distinct"))
op("clip_max", lambda lib, x: x.clip(max=0.3), _unary_cases("distinct"))
op("logical_not", lambda lib, x: lib.logical_not(x), _unary_cases("bool"), grad=False)
op("bitwise_not_int", lambda lib, x: ~x, _unary_cases("int"), grad=False)

# ------------------------------------------------------------------ elementwise, binary
op("add", lambda lib, x, y: x + y, _binary_cases())
op("sub", lambda lib, x, y: x - y, _binary_cases())
op("mul", lambda lib, x, y: x * y, _binary_cases())
op("div", lambda lib, x, y: x / y, _binary_cases("float", "positive"))
op("radd_scalar", lambda lib, x: 1.5 + x, _unary_cases())
op("rsub_scalar", lambda lib, x: 2 - x, _unary_cases())
op("rdiv_scalar", lambda lib, x: 3.0 / x, _unary_cases("positive"))
op("mul_int_scalar", lambda lib, x: x * 3, _unary_cases())
op("minimum", lambda lib, x, y: lib.minimum(x, y), _binary_cases("distinct", "float"))
op("maximum", lambda lib, x, y: lib.maximum(x, y), _binary_cases("distinct", "float"))
op("where", lambda lib, c, x, y: lib.where(c, x, y),
   [[In((3, 5), "bool"), In((3, 5)), In((3, 5))], [In((3, 1), "bool"), In((5,)), In(())],
    [In((0, 2), "bool"), In((0, 2)), In((1, 2))]])
op("masked_fill", lambda lib, x, m: x.masked_fill(m, -2.5),
   [[In((3, 5)), In((3, 5), "bool")], [In((3, 5)), In((5,), "bool")], [T(4, 3), In((4, 3), "bool")]])
op("lerp", lambda lib, x, y: x.lerp(y, 0.3), _binary_cases())
op("lerp_tensor_weight", lambda lib, x, y, w: lib.lerp(x, y, w),
   [[In((3, 5)), In((3, 5)), In((3, 5), "unit")], [In((4, 1)), In((3,)), In((), "unit")]])
for _name, _sym in [("eq", "=="), ("ne", "!="), ("lt", "<"), ("le", "<="), ("gt", ">"), ("ge", ">=")]:
    op(_name, eval(f"lambda lib, x, y: x {_sym} y"), _binary_cases("int", "int"), grad=False)
op("logical_and", lambda lib, x, y: lib.logical_and(x, y), _binary_cases("bool", "bool"), grad=False)
op("logical_or", lambda lib, x, y: lib.logical_or(x, y), _binary_cases("bool", "bool"), grad=False)
op("and_bool", lambda lib, x, y: x & y, _binary_cases("bool", "bool"), grad=False)
op("xor_int", lambda lib, x, y: x ^ y, _binary_cases("int", "int"), grad=False)
op("floordiv_int", lambda lib, x, y: x // (y * y + 1), _binary_cases("int", "int"), grad=False)
op("remainder_int", lambda lib, x, y: x % (y * y + 1), _binary_cases("int", "int"), grad=False)
op("int_plus_float", lambda lib, i, x: i + x, _binary_cases("int", "float"))
op("int_true_div", lambda lib, i: i / 4, _unary_cases("int"), grad=False)
op("int_times_float_scalar", lambda lib, i: i * 0.5, _unary_cases("int"), grad=False)
op("bool_sum", lambda lib, b: b.sum(), _unary_cases("bool"), grad=False)
op("to_float", lambda lib, i: i.to(lib.float64) * 1.5, _unary_cases("int"), grad=False)
op("to_int", lambda lib, x: (x * 3).to(lib.int64), _unary_cases("distinct"), grad=False)

# ------------------------------------------------------------------ reductions
for _name in ("sum", "mean"):
    op(_name, (lambda n: lambda lib, x: getattr(x, n)())(_name), _unary_cases())
    op(_name + "_dim", (lambda n: lambda lib, x: getattr(x, n)(dim=-1))(_name), _reduce_cases())
    op(_name + "_dims_keepdim", (lambda n: lambda lib, x: getattr(x, n)(dim=(0, -1), keepdim=True))(_name),
       _reduce_cases()[:3])
op("prod", lambda lib, x: x.prod(dim=0), _reduce_cases("unit"))
op("prod_all", lambda lib, x: x.prod(), [[In((3, 4), "unit")], [In((0,))], [T(3, 2, kind="unit")]])
for _name in ("amax", "amin"):
    op(_name, (lambda n: lambda lib, x: getattr(x, n)(dim=1))(_name), _reduce_cases("distinct")[:3])
op("max_all", lambda lib, x: x.max(), _reduce_cases("distinct"))
op("max_dim", lambda lib, x: x.max(dim=-1), _reduce_cases("distinct"))
op("min_dim_keepdim", lambda lib, x: x.min(dim=0, keepdim=True), _reduce_cases("distinct"))
op("argmax", lambda lib, x: x.argmax(dim=-1), _reduce_cases("distinct"), grad=False)
op("argmin_all", lambda lib, x: x.argmin(), _reduce_cases("distinct"), grad=False)
op("var", lambda lib, x: x.var(dim=-1), _reduce_cases())
op("std_correction0", lambda lib, x: x.std(dim=0, correction=0), _reduce_cases())
op("var_all", lambda lib, x: x.var(), _reduce_cases())
op("logsumexp", lambda lib, x: x.logsumexp(dim=-1), _reduce_cases())
op("all", lambda lib, x: x.all(dim=-1), _reduce_cases("bool"), grad=False)
op("any", lambda lib, x: x.any(), _reduce_cases("bool"), grad=False)
op("cumsum", lambda lib, x: x.cumsum(dim=-1), _reduce_cases())
op("cumsum_dim0", lambda lib, x: x.cumsum(dim=0), _reduce_cases())
op("argmin_dim0_keepdim", lambda lib, x: x.argmin(dim=0, keepdim=True), _reduce_cases("distinct"), grad=False)
op("argmax_int", lambda lib, x: x.argmax(dim=-1), _reduce_cases("int"), grad=False)
op("cumsum_int", lambda lib, x: x.cumsum(dim=0), _reduce_cases("int"), grad=False)
op("cumsum_bool", lambda lib, x: x.cumsum(dim=-1), _reduce_cases("bool"), grad=False)
op("sum_int", lambda lib, x: x.sum(dim=0), _reduce_cases("int"), grad=False)

# ------------------------------------------------------------------ shape and movement
op("reshape", lambda lib, x: x.reshape(-1, 2), [[In((3, 4))], [T(4, 3)], [In((0, 2))]])
op("view", lambda lib, x: x.view(2, -1, 3), [[In((3, 4))], [In((2, 3, 2))]])
op("flatten", lambda lib, x: x.flatten(1), [[In((2, 3, 4))], [In((2, 0, 3))]])
op("permute", lambda lib, x: x.permute(2, 0, 1), [[In((2, 3, 4))]])
op("transpose", lambda lib, x: x.transpose(0, -1), [[In((2, 3, 4))], [T(3, 2)]])
op("T", lambda lib, x: x.T * 1.0, [[In((2, 3))], [T(3, 4)]])
op("mT", lambda lib, x: x.mT, [[In((2, 3, 4))]])
op("squeeze", lambda lib, x: x.squeeze(1), [[In((3, 1, 4))]])
op("unsqueeze", lambda lib, x: x.unsqueeze(-1), [[In((3, 4))], [In(())]])
op("expand", lambda lib, x: x.expand(3, -1, 4), [[In((2, 1))]])
op("expand_as", lambda lib, x, y: x.expand_as(y), [[In((1, 4)), In((3, 4), grad=False)]])
op("contiguous", lambda lib, x: x.contiguous(), [[T(3, 4)]])
op("cat", lambda lib, x, y: lib.cat([x, y], dim=1), [[In((2, 3)), In((2, 5))], [T(3, 2), In((3, 1))]])
op("stack", lambda lib, x, y: lib.stack([x, y], dim=-1), [[In((2, 3)), In((2, 3))], [In(()), In(())]])
op("stack_three", lambda lib, x, y, z: lib.stack([x, y, z], dim=1), [[In((2, 3)), T(2, 3), In((2, 3))], [In((0, 2)), In((0, 2)), In((0, 2))]])
op("index_basic", lambda lib, x: x[1:, -1], [[In((4, 5))], [T(4, 5)]])
op("index_step_none_ellipsis", lambda lib, x: x[..., ::2, None], [[In((3, 5))], [In((2, 3, 7))]])
op("diff", lambda lib, x: x.diff(dim=-1), [[In((3, 5))], [T(4, 3)]])

# ------------------------------------------------------------------ matmul and nn.functional
op("matmul", lambda lib, x, y: x @ y, [[In((3, 4)), In((4, 5))], [T(4, 3), In((3, 2))], [In((2, 0)), In((0, 3))]])
op("linear", lambda lib, x, w, b: F(lib).linear(x, w, b), [[In((3, 4)), In((5, 4)), In((5,))],
                                                             [In((1, 7)), In((2, 7)), In((2,))]])
op("linear_3d", lambda lib, x, w: F(lib).linear(x, w), [[In((2, 3, 4)), In((5, 4))]])
op("f_relu", lambda lib, x: F(lib).relu(x), _unary_cases("distinct"))
op("f_sigmoid", lambda lib, x: F(lib).sigmoid(x), _unary_cases())
op("softmax", lambda lib, x: F(lib).softmax(x, dim=-1), _reduce_cases())
op("log_softmax", lambda lib, x: F(lib).log_softmax(x, dim=1), [[In((4, 6))], [In((2, 3, 5))], [T(5, 3)]])
op("cross_entropy", lambda lib, x, t: F(lib).cross_entropy(x, t), [[In((4, 6)), In((4,), "index:6")],
                                                                    [In((1, 3)), In((1,), "index:3")]])
op("mse_loss", lambda lib, x, y: F(lib).mse_loss(x, y), [[In((4, 6)), In((4, 6))], [In((3,)), In((3,))]])

# ------------------------------------------------------------------ the other tables
# each ``tests/op_table_<area>.py`` registers its entries with ``op`` when imported
import importlib as _importlib  # noqa: E402
import pathlib as _pathlib  # noqa: E402

for _path in sorted(_pathlib.Path(__file__).parent.glob("op_table_*.py")):
    _importlib.import_module(_path.stem)
