"""Every int/bool-aware elementwise op and reduction, from one table x dtypes x shapes,
through the numpy interpreter and the compiled native path, compared with PyTorch
(exact for ints and bools)."""
from __future__ import annotations

import itertools
import zlib

import numpy as np
import pytest
import torch

from lucid.compiler import compile_graph
from lucid_ir.builder import GraphBuilder
from lucid_ir.interpreter import interpret
from lucid_ir.types import DTYPES

FLOAT, INT = ("float32", "float64"), ("int32", "int64")
NUMERIC, INT_BOOL, BOOL = INT + FLOAT, INT + ("bool",), ("bool",)
TORCH_DTYPE = {"float32": torch.float32, "float64": torch.float64, "int32": torch.int32,
               "int64": torch.int64, "bool": torch.bool}

# op: (arity, dtypes it accepts, the PyTorch function)
OPS = {
    "neg": (1, NUMERIC, torch.neg),
    "abs": (1, NUMERIC, torch.abs),
    "sign": (1, DTYPES, torch.sign),
    "logical_not": (1, BOOL, torch.logical_not),
    "bitwise_not": (1, INT_BOOL, torch.bitwise_not),
    "add": (2, DTYPES, torch.add),
    "sub": (2, NUMERIC, torch.sub),
    "mul": (2, DTYPES, torch.mul),
    "div": (2, FLOAT, torch.div),
    "maximum": (2, DTYPES, torch.maximum),
    "minimum": (2, DTYPES, torch.minimum),
    "floor_divide": (2, NUMERIC, torch.floor_divide),
    "remainder": (2, NUMERIC, torch.remainder),
    "logical_and": (2, BOOL, torch.logical_and),
    "logical_or": (2, BOOL, torch.logical_or),
    "logical_xor": (2, BOOL, torch.logical_xor),
    "bitwise_and": (2, INT_BOOL, torch.bitwise_and),
    "bitwise_or": (2, INT_BOOL, torch.bitwise_or),
    "bitwise_xor": (2, INT_BOOL, torch.bitwise_xor),
    **{op: (2, DTYPES, getattr(torch, op)) for op in ("gt", "ge", "lt", "le", "eq", "ne")},
    **{op: (1, FLOAT, getattr(torch, op)) for op in ("log2", "log1p", "expm1", "rsqrt", "sin", "cos", "erf", "erfc")},
    **{op: (1, NUMERIC, getattr(torch, op)) for op in ("floor", "ceil", "round")},
    "isnan": (1, DTYPES, torch.isnan),
    "isfinite": (1, DTYPES, torch.isfinite),
    "pow": (2, NUMERIC, torch.pow),
}
# float results that are not exactly PyTorch's (rounding of transcendentals)
INEXACT = ("div", "log2", "log1p", "expm1", "rsqrt", "sin", "cos", "erf", "erfc", "pow")
DIVISIONS = ("floor_divide", "remainder", "div")
# (shape of each operand, how the array is laid out)
SHAPES = [(((), ()), "plain"), (((0, 3), (0, 3)), "plain"), (((3, 1), (4,)), "plain"),
          (((5, 4), (5, 4)), "transposed"), (((3, 6), (6,)), "strided"), (((37,), (37,)), "plain")]


def values(rng, shape, dtype, layout="plain", nonzero=False):
    """Random data of ``dtype`` in the requested memory layout (views, not copies)."""
    full = {"transposed": shape[::-1], "strided": shape[:-1] + (2 * shape[-1],) if shape else ()}.get(layout, shape)
    if dtype == "bool":
        a = rng.random(full) < 0.5
    elif dtype in INT:
        info = np.iinfo(dtype)
        a = rng.integers(-30, 30, full).astype(dtype)
        flat = a.reshape(-1)
        if flat.size > 4:  # the extremes, where wrapping and overflow live
            flat[:2] = [info.min, info.max]
    else:
        a = (rng.standard_normal(full) * 8).astype(dtype)
        flat = a.reshape(-1)
        if flat.size > 6:
            flat[:3] = [0.0, -0.0, 2.0]
    a = np.asarray(a)
    if nonzero:
        a = np.where(a == 0, np.ones((), a.dtype), a) if dtype != "bool" else a
    if layout == "transposed":
        a = a.T
    elif layout == "strided":
        a = a[..., ::2]
    assert a.shape == shape
    return a


def graph_of(op, shapes, in_dtype, **attrs):
    b = GraphBuilder()
    xs = [b.input(s, in_dtype) for s in shapes]
    return b.build([b.emit(op, *xs, **attrs)])


def check_against_torch(graph, arrays, torch_out, exact):
    want = interpret(graph, arrays)[0]
    native = compile_graph(graph, "dtypes")(arrays)[0]
    ref = torch_out.numpy()
    assert want.dtype == ref.dtype, (want.dtype, ref.dtype)
    assert native.dtype == want.dtype and native.shape == want.shape == ref.shape
    if exact:
        np.testing.assert_array_equal(want, ref)
        np.testing.assert_array_equal(native, want)
    else:
        # (a result below the normal range has an ulp of the least subnormal: erfc(9.82) in
        # float32 is 7.3e-44, 52 of them, and one ulp is 2% of it)
        tiny = float(np.finfo(want.dtype).smallest_subnormal) if want.dtype.kind == "f" else 0.0
        np.testing.assert_allclose(want, ref, rtol=1e-6, atol=4 * tiny, equal_nan=True)
        np.testing.assert_allclose(native, want, rtol=1e-6, atol=4 * tiny, equal_nan=True)


CASES = [(op, dt, k) for op, (_, dts, _) in OPS.items() for dt in dts for k in range(len(SHAPES))]


@pytest.mark.parametrize("op,dtype,k", CASES, ids=[f"{o}-{d}-{k}" for o, d, k in CASES])
def test_op_matches_torch(op, dtype, k):
    arity, _, fn = OPS[op]
    shapes, layout = SHAPES[k]
    shapes = shapes[:arity]
    rng = np.random.default_rng(zlib.crc32(repr((op, dtype, k)).encode()))   # (not hash(): salted per process)
    # PyTorch raises on integer division by zero: the zero divisor has its own test
    arrays = [values(rng, s, dtype, layout, nonzero=(op in DIVISIONS and i == 1))
              for i, s in enumerate(shapes)]
    if op in ("floor_divide", "remainder") and dtype in INT:  # MIN // -1 has its own test too
        arrays[0] = np.asarray(np.maximum(arrays[0], np.iinfo(dtype).min + 1))
    with np.errstate(all="ignore"):
        expected = fn(*[torch.from_numpy(a.copy()) for a in arrays])
        check_against_torch(graph_of(op, shapes, dtype), arrays, expected,
                            exact=dtype not in FLOAT or op not in INEXACT)


@pytest.mark.parametrize("op,dtype", [(op, dt) for op, (_, dts, _) in OPS.items()
                                      for dt in DTYPES if dt not in dts])
def test_op_rejects_other_dtypes_naming_them(op, dtype):
    arity = OPS[op][0]
    b = GraphBuilder()
    xs = [b.input((2, 3), dtype) for _ in range(arity)]
    with pytest.raises(TypeError, match=rf"{op}: .*{'i32' if dtype == 'int32' else ''}"):
        b.emit(op, *xs)


@pytest.mark.parametrize("src,dst", list(itertools.product(DTYPES, DTYPES)))
def test_cast_matches_torch(src, dst):
    rng = np.random.default_rng(7)
    a = values(rng, (41,), src)
    if src in FLOAT:  # truncation toward zero, and the x86 result for NaN/out of range
        a[:12] = [2.7, -2.7, 0.5, -0.5, np.nan, np.inf, -np.inf, 3e9, -3e9, 1e20, 2**31 - 128, -2**31]
    with np.errstate(all="ignore"):
        expected = torch.from_numpy(a).to(TORCH_DTYPE[dst])
    check_against_torch(graph_of("cast", [(41,)], src, dtype=dst), [a], expected,
                        exact=True)


REDUCTIONS = [("sum", DTYPES, torch.sum), ("max", DTYPES, torch.amax), ("min", DTYPES, torch.amin),
              ("mean", FLOAT, torch.mean)]
RED_CASES = [(op, dt, shape, axes) for op, dts, _ in REDUCTIONS for dt in dts
             for shape, axes in [((7, 33), (1,)), ((7, 33), (0,)), ((4, 3, 5), (0, 2)), ((37,), None),
                                 ((0, 3), (1,))]]


@pytest.mark.parametrize("op,dtype,shape,axes", RED_CASES)
def test_reduction_matches_torch(op, dtype, shape, axes):
    fn = {name: f for name, _, f in REDUCTIONS}[op]
    a = values(np.random.default_rng(3), shape, dtype)
    if dtype in INT and op == "sum":
        a = np.clip(a, -1000, 1000)  # PyTorch's own int32 sums must not overflow either
    t = torch.from_numpy(a)
    dims = tuple(range(len(shape))) if axes is None else axes
    expected = fn(t, dim=dims) if op != "mean" else t.mean(dim=dims)
    check_against_torch(graph_of(op, [shape], dtype, axes=axes), [a], expected,
                        exact=dtype not in FLOAT or op in ("max", "min"))


def test_int_sums_accumulate_in_int64_and_wrap_like_torch():
    a = np.full((3, 1000), 2**31 - 1, np.int32)
    g = graph_of("sum", [(3, 1000)], "int32", axes=(1,))
    got = compile_graph(g, "isum")([a])[0]
    assert got.dtype == np.int64
    np.testing.assert_array_equal(got, torch.from_numpy(a).sum(dim=1).numpy())
    big = np.full(4, 2**62, np.int64)  # wraps in int64, as in numpy and PyTorch
    np.testing.assert_array_equal(compile_graph(graph_of("sum", [(4,)], "int64"), "wrap")([big])[0],
                                  torch.from_numpy(big).sum().numpy())


@pytest.mark.parametrize("dtype", INT)
def test_integer_division_by_zero_and_min_by_minus_one_are_defined(dtype):
    lo = np.iinfo(dtype).min
    x = np.array([7, -7, 0, lo, lo, 5], dtype)
    y = np.array([0, 0, 0, -1, 0, -1], dtype)
    for op, want in (("floor_divide", [0, 0, 0, lo, 0, -5]), ("remainder", [0, 0, 0, 0, 0, 0])):
        g = graph_of(op, [(6,), (6,)], dtype)
        with np.errstate(all="ignore"):
            ref = interpret(g, [x, y])[0]
        np.testing.assert_array_equal(ref, want)
        np.testing.assert_array_equal(compile_graph(g, "div0")([x, y])[0], want)


@pytest.mark.parametrize("dtype", FLOAT)
def test_float_floor_division_special_values_match_torch_bit_for_bit(dtype):
    v = np.array([0.0, -0.0, 1.0, -1.0, 2.5, -7.0, np.inf, -np.inf, np.nan, 1e-30, 3.0], dtype)
    x, y = (a.ravel() for a in np.meshgrid(v, v))
    for op in ("floor_divide", "remainder"):
        g = graph_of(op, [x.shape, y.shape], dtype)
        with np.errstate(all="ignore"):
            ref = getattr(torch, op)(torch.from_numpy(x), torch.from_numpy(y)).numpy()
            want = interpret(g, [x, y])[0]
        got = compile_graph(g, "fdiv")([x, y])[0]
        for out in (want, got):
            np.testing.assert_array_equal(out, ref)
            numbers = ~np.isnan(ref)  # a NaN's sign bit means nothing
            np.testing.assert_array_equal(np.signbit(out[numbers]), np.signbit(ref[numbers]))


def test_mixed_int_bool_float_chain_is_one_kernel():
    b = GraphBuilder()
    x, y = b.input((8, 33), "float32"), b.input((33,), "float32")
    n = b.input((8, 1), "int32")
    mask = b.emit("logical_and", b.emit("gt", x, b.constant(0.0)), b.emit("lt", y, b.constant(1.0)))
    picked = b.emit("select", mask, x, y)
    k = b.emit("remainder", b.emit("cast", picked, dtype="int32"), n)
    out = b.emit("select", b.emit("ne", k, b.constant(0, dtype="int32")), b.emit("cast", k, dtype="float32"),
                 picked)
    g = b.build([out])
    compiled = compile_graph(g, "mixed")
    assert len(compiled.kernels) == 1, compiled.kernels
    assert {"gt", "logical_and", "select", "cast", "remainder", "ne"} <= set(compiled.kernels[0].ops)
    rng = np.random.default_rng(0)
    arrays = [values(rng, (8, 33), "float32"), values(rng, (33,), "float32"),
              rng.integers(1, 9, (8, 1)).astype(np.int32)]
    np.testing.assert_array_equal(compiled(arrays)[0], interpret(g, arrays)[0])


def test_bool_mask_sum_fuses_into_one_reduction_kernel():
    b = GraphBuilder()
    x = b.input((6, 50), "float64")
    count = b.emit("sum", b.emit("ge", x, b.constant(0.5, dtype="float64")), axes=(1,))
    compiled = compile_graph(b.build([count]), "count")
    assert [k.kind for k in compiled.kernels] == ["reduction"]
    a = values(np.random.default_rng(1), (6, 50), "float64")
    np.testing.assert_array_equal(compiled([a])[0], (torch.from_numpy(a) >= 0.5).sum(dim=1).numpy())


@pytest.mark.parametrize("op,dtype", [("floor_divide", "int32"), ("remainder", "int64"),
                                      ("logical_xor", "bool"), ("bitwise_not", "int32"),
                                      ("lt", "int64"), ("maximum", "bool")])
def test_bounds_mode_on_int_and_bool_kernels(op, dtype, monkeypatch):
    monkeypatch.setenv("LUCID_CHECK_BOUNDS", "1")
    arity = OPS[op][0]
    rng = np.random.default_rng(5)
    for shapes in [((1, 3), (5, 3)), ((67,), (67,)), ((0, 2), (0, 2)), ((7, 9), (9,))]:
        arrays = [values(rng, s, dtype, nonzero=i == 1) for i, s in enumerate(shapes[:arity])]
        g = graph_of(op, shapes[:arity], dtype)
        with np.errstate(all="ignore"):
            np.testing.assert_array_equal(compile_graph(g, "bounds")(arrays)[0], interpret(g, arrays)[0])
    for shape, axes in [((9, 70), (1,)), ((70, 9), (0,)), ((3,), None)]:
        a = values(rng, shape, dtype)
        for red in ("sum", "max", "min"):
            g = graph_of(red, [shape], dtype, axes=axes)
            np.testing.assert_array_equal(compile_graph(g, "bounds")([a])[0], interpret(g, [a])[0])


def test_constant_folding_keeps_int_and_bool_values_exact():
    from lucid_ir.passes import simplify
    b = GraphBuilder()
    x = b.input((3,), "int64")
    big = b.emit("add", b.constant(2**62, (), "int64"), b.constant(3, (), "int64"))
    flag = b.emit("gt", b.constant(2, (), "int32"), b.constant(1, (), "int32"))
    g = simplify.run(b.build([b.emit("add", x, big), flag]))
    consts = {n.out.dtype: n.attr("value") for n in g.nodes if n.op == "constant"}
    assert consts == {"int64": 2**62 + 3, "bool": True}
    assert "value=4611686018427387907" in str(g)
    arrays = [np.array([1, -2, 3], np.int64)]
    np.testing.assert_array_equal(compile_graph(g, "fold")(arrays)[0], arrays[0] + 2**62 + 3)


@pytest.mark.parametrize("gate_dtype,gemm_kernels", [("float32", 1), ("int32", 2)])
def test_relu_mask_of_another_dtype_is_not_taken_into_a_gemm(gate_dtype, gemm_kernels):
    """select(gt(r, 0), g, 0) feeding a matmul becomes the GEMM's A prologue, which reads
    r as a float operand: an int32 r must stay in its own (elementwise) kernel."""
    b = GraphBuilder()
    r, g, w = b.input((6, 5), gate_dtype), b.input((6, 5), "float32"), b.input((5, 4), "float32")
    mask = b.emit("select", b.emit("gt", r, b.constant(0, (), gate_dtype)), g, b.constant(0.0))
    graph = b.build([b.emit("matmul", mask, w)])
    compiled = compile_graph(graph, "gate")
    assert len(compiled.kernels) == gemm_kernels, compiled.kernels
    rng = np.random.default_rng(2)
    arrays = [values(rng, (6, 5), gate_dtype), values(rng, (6, 5), "float32"), values(rng, (5, 4), "float32")]
    np.testing.assert_allclose(compiled(arrays)[0], interpret(graph, arrays)[0], rtol=1e-5, atol=1e-4)
