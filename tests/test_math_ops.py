"""The elementwise math ops log2 log1p expm1 rsqrt sin cos erf pow floor ceil round
isnan isfinite: forward against PyTorch in float64 and float32, special values bit for
bit, accuracy in ulps against a float64/long-double truth, gradients against PyTorch's
autograd in float64, the three execution modes (interpreter, eager native,
``lucid.compile``), bounds mode, and fusion into one kernel."""
from __future__ import annotations

import numpy as np
import pytest
import torch

import lucid
from lucid import dispatch
from lucid.compiler import compile_graph
from lucid_codegen.kernels.elementwise import ElementwiseKernel
from lucid_ir.builder import GraphBuilder
from lucid_ir.interpreter import interpret
from lucid_ir.passes import autodiff

UNARY = {"log2": torch.log2, "log1p": torch.log1p, "expm1": torch.expm1, "rsqrt": torch.rsqrt,
         "sin": torch.sin, "cos": torch.cos, "erf": torch.erf, "erfc": torch.erfc, "floor": torch.floor,
         "ceil": torch.ceil, "round": torch.round, "isnan": torch.isnan, "isfinite": torch.isfinite}
SMOOTH = ("log2", "log1p", "expm1", "rsqrt", "sin", "cos", "erf", "erfc")
# max error allowed against PyTorch, in ulps of the result (float32, float64)
ULPS = {"float32": 4, "float64": 4}
# erfc's one formula (t e^{-z^2} S(2t - 1)) rounds t, its polynomial, e^{-z^2} and two
# products: a few ulps more than PyTorch's (see test_erfc_keeps_its_relative_accuracy_in_the_tail)
ERFC_ULPS = {"float32": 5, "float64": 8}
SPECIAL = [0.0, -0.0, np.inf, -np.inf, np.nan, 1.0, -1.0, 0.5, -0.5, 1.5, 2.5, -2.5, 1e-30, -1e-30,
           1e-300, 5e-324, 1e-8, -1e-8, 0.7, -0.999, 88.0, 89.0, 100.0, 709.0, 710.0, -745.0,
           3.0e4, 1e6, 2.0 ** 30, 2.0 ** 30 + 3, -3e9, 1e22, 1e300, -1e300, 3.4e38, np.pi, -np.pi / 2,
           5.9, 6.0, -6.1, 2.4, 2.6]


def graph_of(op, shapes, dtype):
    b = GraphBuilder()
    xs = [b.input(s, dtype) for s in shapes]
    return b.build([b.emit(op, *xs)])


def run_both(op, arrays, dtype):
    g = graph_of(op, [a.shape for a in arrays], dtype)
    with np.errstate(all="ignore"):
        want = interpret(g, arrays)[0]
    return compile_graph(g, "math")(arrays)[0], want


def assert_ulps(got, ref, dtype, ulps, what=""):
    """Same NaNs, same infinities and zeros (with signs), finite values within ``ulps``.
    A subnormal where ``ref`` has 0 passes: PyTorch's vectorised log1p/expm1/sin flush
    subnormal results to zero (numpy and lucid keep them)."""
    assert got.dtype == ref.dtype and got.shape == ref.shape
    np.testing.assert_array_equal(np.isnan(got), np.isnan(ref), err_msg=what)
    tiny = np.finfo(dtype).tiny
    exact = ~np.isfinite(ref) | (ref == 0)
    exact &= ~np.isnan(ref) & ~((ref == 0) & (np.abs(got) < tiny) & (got != 0))
    np.testing.assert_array_equal(got[exact], ref[exact], err_msg=what)
    np.testing.assert_array_equal(np.signbit(got[exact]), np.signbit(ref[exact]), err_msg=what)
    fin = np.isfinite(ref) & (ref != 0)
    err = np.abs(got[fin].astype(np.float64) - ref[fin].astype(np.float64))
    scale = np.maximum(np.spacing(np.abs(ref[fin])).astype(np.float64), np.spacing(np.asarray(tiny, dtype)))
    worst = (err / scale).max(initial=0)
    assert worst <= ulps, f"{what}: {worst:.2f} ulps"


def torch_of(fn, arrays):
    return fn(*[torch.from_numpy(a.copy(order="C")) for a in arrays]).numpy()


def sample(dtype, n=4000, seed=0):
    rng = np.random.default_rng(seed)
    big = 80.0 if dtype == "float32" else 700.0
    x = np.concatenate([rng.standard_normal(n) * 4, rng.uniform(-big, big, n // 4),
                        np.exp(rng.uniform(-big, big, n // 4)) * rng.choice([-1, 1], n // 4),
                        rng.uniform(-1e-3, 1e-3, n // 8), np.array(SPECIAL)])
    with np.errstate(over="ignore"):
        return x.astype(dtype)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("op", list(UNARY))
def test_unary_matches_torch_including_special_values(op, dtype):
    x = sample(dtype)
    got, want = run_both(op, [x], dtype)
    with np.errstate(all="ignore"):
        ref = torch_of(UNARY[op], [x])
    if op in SMOOTH:
        ulps = (ERFC_ULPS if op == "erfc" else ULPS)[dtype]
        assert_ulps(want, ref, dtype, ULPS[dtype], f"{op} reference vs torch")
        assert_ulps(got, ref, dtype, ulps, f"{op} native vs torch")
    else:  # rounding and classification: bit for bit
        np.testing.assert_array_equal(got, ref)
        np.testing.assert_array_equal(want, ref)
        np.testing.assert_array_equal(np.signbit(got), np.signbit(ref))


@pytest.mark.parametrize("dtype,tol", [("float32", 1.0), ("float64", 1.5)])
def test_accuracy_in_ulps_against_a_wider_truth(dtype, tol):
    """Native results within ~1 ulp of the exact value (float64 rounded from long double,
    or float32 from float64), on arguments spread over each function's range."""
    rng = np.random.default_rng(11)
    x = np.concatenate([rng.standard_normal(20000) * 3, rng.uniform(-1e4, 1e4, 5000),
                        np.exp(rng.uniform(-40, 40, 5000))]).astype(dtype)
    wide = np.longdouble if dtype == "float64" else np.float64
    for op, fn, arg in [("log2", np.log2, np.abs(x)), ("log1p", np.log1p, np.abs(x) - 0.5),
                        ("expm1", np.expm1, np.clip(x, -60, 60)), ("sin", np.sin, x), ("cos", np.cos, x),
                        ("rsqrt", lambda a: 1 / np.sqrt(a), np.abs(x))]:
        arg = arg.astype(dtype)
        got, _ = run_both(op, [arg], dtype)
        with np.errstate(all="ignore"):
            truth = fn(arg.astype(wide)).astype(dtype)
        assert_ulps(got, truth, dtype, tol + 1, op)
    import math
    arg = np.clip(x, -7, 7)
    got, _ = run_both("erf", [arg], dtype)
    truth = np.array([math.erf(v) for v in arg.astype(np.float64)], dtype)
    assert_ulps(got, truth, dtype, tol + 1, "erf")


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_erfc_keeps_its_relative_accuracy_in_the_tail(dtype):
    """erfc where erf is 1 to the last bit: relative accuracy down to the underflow
    (erfc(10) = 2e-45 in float32, erfc(26) = 6e-296 in float64), 2 - erfc(|x|) below 0,
    the limits and NaN exactly."""
    import math
    rng = np.random.default_rng(12)
    top = 10.0 if dtype == "float32" else 26.5
    x = np.concatenate([rng.uniform(-top, top, 20000), rng.standard_normal(5000) * 1e-3,
                        np.linspace(0, top, 3000)]).astype(dtype)
    got, _ = run_both("erfc", [x], dtype)
    truth = np.array([math.erfc(v) for v in x.astype(np.float64)], np.float64)
    normal = truth >= np.finfo(dtype).tiny   # (subnormal results: absolute, as PyTorch's)
    assert_ulps(got[normal], truth[normal].astype(dtype), dtype, ERFC_ULPS[dtype], "erfc")
    np.testing.assert_allclose(got[~normal], truth[~normal], rtol=0, atol=2 * np.finfo(dtype).smallest_subnormal)
    special = np.array([0.0, -0.0, np.inf, -np.inf, np.nan, 1e4, -1e4], dtype)
    got, _ = run_both("erfc", [special], dtype)
    np.testing.assert_array_equal(got, np.array([1, 1, 0, 2, np.nan, 0, 2], dtype))


POW_SPECIAL = [0.0, -0.0, 1.0, -1.0, 2.0, -2.0, 0.5, -0.5, 3.0, -3.0, np.inf, -np.inf, np.nan, 1e-300,
               1e300, 2.5, -2.5, 1e-40, 1024.0, -1075.0]


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_float_pow_special_cases_bit_for_bit_and_random_values_close(dtype):
    with np.errstate(over="ignore"):
        x, y = (a.ravel().astype(dtype) for a in np.meshgrid(POW_SPECIAL, POW_SPECIAL))
    got, want = run_both("pow", [x, y], dtype)
    ref = torch_of(torch.pow, [x, y])
    assert_ulps(got, ref, dtype, 2, "pow specials native")
    assert_ulps(want, ref, dtype, 1, "pow specials reference")
    rng = np.random.default_rng(4)
    big = 80.0 if dtype == "float32" else 700.0
    x = np.concatenate([np.abs(rng.standard_normal(5000)) * 3, np.exp(rng.uniform(-big, big, 2000)),
                        rng.uniform(1.5, 2.0, 2000), -rng.integers(1, 9, 1000).astype(float)]).astype(dtype)
    y = np.concatenate([rng.standard_normal(5000) * 20, rng.uniform(-1, 1, 2000),
                        rng.uniform(big / 2.1, big / 0.75, 2000), rng.integers(-20, 20, 1000)]).astype(dtype)
    got, want = run_both("pow", [x, y], dtype)
    assert_ulps(got, torch_of(torch.pow, [x, y]), dtype, 2, "pow random native")
    assert_ulps(got, want, dtype, 2, "pow random vs reference")


@pytest.mark.parametrize("dtype", ["int32", "int64"])
def test_int_pow_wraps_and_takes_torch_values_for_negative_exponents(dtype):
    rng = np.random.default_rng(5)
    info = np.iinfo(dtype)
    x = np.concatenate([rng.integers(-6, 7, 3000), [info.min, info.max, 0, 1, -1, 2, -2]]).astype(dtype)
    y = np.concatenate([rng.integers(-5, 70, 3000), [2, 3, 0, -7, -7, 63, 63]]).astype(dtype)
    got, want = run_both("pow", [x, y], dtype)
    ref = torch_of(torch.pow, [x, y])
    np.testing.assert_array_equal(want, ref)
    np.testing.assert_array_equal(got, ref)


# ------------------------------------------------------------------ gradients vs torch
GRAD_CASES = [  # op, input makers (float64), shapes
    ("log2", [lambda r, s: r.uniform(0.2, 5, s)], [(3, 4)]),
    ("log1p", [lambda r, s: r.uniform(-0.9, 5, s)], [(7,)]),
    ("expm1", [lambda r, s: r.standard_normal(s) * 3], [(2, 3)]),
    ("rsqrt", [lambda r, s: r.uniform(0.1, 4, s)], [(5,)]),
    ("sin", [lambda r, s: r.standard_normal(s) * 4], [(3, 5)]),
    ("cos", [lambda r, s: r.standard_normal(s) * 4], [(3, 5)]),
    ("erf", [lambda r, s: r.standard_normal(s) * 2], [(4, 2)]),
    ("erfc", [lambda r, s: r.standard_normal(s) * 3], [(5, 3)]),
    ("floor", [lambda r, s: r.standard_normal(s) * 3], [(6,)]),
    ("ceil", [lambda r, s: r.standard_normal(s) * 3], [(6,)]),
    ("round", [lambda r, s: r.standard_normal(s) * 3], [(6,)]),
    ("pow", [lambda r, s: r.uniform(0.1, 3, s), lambda r, s: r.standard_normal(s) * 2], [(3, 4), (4,)]),
    ("pow", [lambda r, s: r.uniform(0.1, 3, s), lambda r, s: r.standard_normal(s) * 2], [(3, 1), (1, 5)]),
    # PyTorch's conventions at zero: x = 0 with y >= 0 (dy = 0), y = 0 (dx = 0), negative x
    ("pow", [lambda r, s: np.array([0.0, 0.0, 0.0, 2.0, -2.0, -1.5]),
             lambda r, s: np.array([0.0, 2.0, 3.5, 0.0, 3.0, 2.0])], [(6,), (6,)]),
]
TORCH_GRAD = {**UNARY, "pow": torch.pow}


@pytest.mark.parametrize("op,makers,shapes", GRAD_CASES, ids=[f"{c[0]}-{i}" for i, c in enumerate(GRAD_CASES)])
def test_gradient_matches_torch_float64(op, makers, shapes):
    rng = np.random.default_rng(len(op))
    arrays = [m(rng, s) for m, s in zip(makers, shapes)]
    g = graph_of(op, [a.shape for a in arrays], "float64")
    out_shape = g.outputs[0].shape
    w = rng.standard_normal(out_shape)
    ts = [torch.tensor(a, requires_grad=True) for a in arrays]
    with np.errstate(all="ignore"):
        (TORCH_GRAD[op](*ts) * torch.from_numpy(w)).sum().backward()
    want = [t.grad.numpy() if t.grad is not None else np.zeros(t.shape) for t in ts]
    bwd = autodiff.run(g, range(len(arrays)))
    env = dict(zip(g.inputs, arrays))
    with np.errstate(all="ignore"):
        env[g.outputs[0]] = interpret(g, arrays)[0]
        feeds = [w] + [env[v] for v in bwd.residuals]
        for run in (interpret, lambda gr, xs: compile_graph(gr, "grad")(xs)):
            got = run(bwd.graph, feeds)
            for gi, wi in zip(got, want):
                np.testing.assert_allclose(gi, wi, rtol=1e-13, atol=1e-300, equal_nan=True, err_msg=op)


# ------------------------------------------------------------------ execution modes
@pytest.mark.parametrize("backend", ["interpret", "compiled"])
@pytest.mark.parametrize("op", ["log2", "log1p", "expm1", "rsqrt", "sin", "cos", "erf", "erfc", "round", "pow"])
def test_eager_and_compiled_values_and_gradients(op, backend, monkeypatch):
    """The same op through lucid's eager dispatch and lucid.compile, on either backend:
    values and gradients against PyTorch in float64, on broadcast operands."""
    monkeypatch.setenv("LUCID_BACKEND", backend)
    rng = np.random.default_rng(9)
    arrays = [rng.uniform(0.2, 3.0, (3, 4))] + ([rng.standard_normal((4,))] if op == "pow" else [])
    fn = TORCH_GRAD[op]
    ts = [torch.tensor(a, requires_grad=True) for a in arrays]
    fn(*ts).sum().backward()
    want_val = fn(*[torch.from_numpy(a) for a in arrays]).numpy()

    def f(*xs):
        return dispatch.apply(op, *xs).sum()

    for mode in ("eager", "compile"):
        xs = [lucid.tensor(a, requires_grad=True) for a in arrays]
        run = f if mode == "eager" else lucid.compile(f)
        out = run(*xs)
        np.testing.assert_allclose(out.numpy(), want_val.sum(), rtol=1e-13, err_msg=mode)
        out.backward()
        for x, t in zip(xs, ts):
            np.testing.assert_allclose(x.grad, t.grad.numpy(), rtol=1e-13, atol=1e-300, err_msg=mode)


# ------------------------------------------------------------------ layouts, bounds, fusion
@pytest.mark.parametrize("op", ["sin", "erf", "log1p", "pow", "round", "isnan"])
def test_shapes_broadcast_and_non_contiguous_operands(op):
    rng = np.random.default_rng(2)
    arity = 2 if op == "pow" else 1
    base = rng.uniform(0.1, 4.0, (6, 10))
    for shapes, make in [(((),) * 2, lambda s: np.asarray(rng.uniform(0.1, 4.0, s))),
                         (((0, 3),) * 2, lambda s: rng.uniform(0.1, 4.0, s)),
                         (((3, 1), (4,)), lambda s: rng.uniform(0.1, 4.0, s)),
                         (((5, 6), (5, 6)), lambda s: base[:5, ::-1][:, :6].T.T),
                         (((10, 6), (10, 6)), lambda s: base.T),
                         (((6, 5), (6, 5)), lambda s: base[:, ::2])]:
        arrays = [make(s) for s in shapes[:arity]]
        for dtype in ("float32", "float64"):
            arrs = [a.astype(dtype)[...] if a.flags.c_contiguous else a.astype(dtype, order="K") for a in arrays]
            arrs = [a if a.shape == s else a for a, s in zip(arrs, shapes)]
            got, want = run_both(op, arrs, dtype)
            ref = torch_of(TORCH_GRAD[op], arrs)
            assert got.shape == ref.shape
            if ref.dtype == bool:
                np.testing.assert_array_equal(got, ref)
            else:
                assert_ulps(got, ref, dtype, 4, f"{op} {shapes}")


def test_strided_views_are_read_through_their_strides():
    rng = np.random.default_rng(3)
    full = rng.uniform(-5, 5, (8, 12))
    for view in (full[:, ::3], full.T, full[::2, 1::2]):
        got, _ = run_both("sin", [view], "float64")
        assert_ulps(got, np.sin(view), "float64", 1, "sin view")


@pytest.mark.parametrize("op,dtype", [("sin", "float32"), ("cos", "float64"), ("erf", "float32"),
                                      ("expm1", "float64"), ("pow", "float32"), ("pow", "int64"),
                                      ("log1p", "float64"), ("isfinite", "float32")])
def test_bounds_mode(op, dtype, monkeypatch):
    monkeypatch.setenv("LUCID_CHECK_BOUNDS", "1")
    rng = np.random.default_rng(5)
    arity = 2 if op == "pow" else 1
    for shapes in [((1, 3), (5, 3)), ((67,), (67,)), ((0, 2), (0, 2)), ((7, 9), (9,)), ((33,), ())]:
        if dtype.startswith("int"):
            arrays = [rng.integers(-4, 9, s).astype(dtype) for s in shapes[:arity]]
        else:  # huge values included: the slow path of sin/cos runs too
            arrays = [np.asarray((rng.standard_normal(s) * 10 ** rng.integers(0, 12, s))).astype(dtype)
                      for s in shapes[:arity]]
        g = graph_of(op, shapes[:arity], dtype)
        with np.errstate(all="ignore"):
            want = interpret(g, arrays)[0]
            got = compile_graph(g, "bounds")(arrays)[0]
        if want.dtype.kind == "f":
            assert_ulps(got, want, dtype, 4, op)
        else:
            np.testing.assert_array_equal(got, want)


def test_chain_fuses_into_one_kernel():
    """sin(x) * erf(y) + log1p(z), with pow, rounding and a NaN test on top: one kernel."""
    b = GraphBuilder()
    x, y, z = b.input((7, 33), "float32"), b.input((33,), "float32"), b.input((7, 1), "float32")
    s = b.emit("add", b.emit("mul", b.emit("sin", x), b.emit("erf", y)), b.emit("log1p", z))
    p = b.emit("pow", b.emit("round", s), b.emit("cos", z))
    out = b.emit("select", b.emit("isnan", p), b.emit("rsqrt", b.emit("expm1", z)), b.emit("log2", p))
    g = b.build([out])
    compiled = compile_graph(g, "fused")
    assert len(compiled.kernels) == 1, compiled.kernels
    assert {"sin", "erf", "log1p", "pow", "round", "cos", "isnan", "rsqrt", "expm1", "log2"} <= set(
        compiled.kernels[0].ops)
    rng = np.random.default_rng(0)
    arrays = [rng.uniform(-3, 3, (7, 33)).astype(np.float32), rng.uniform(-2, 2, 33).astype(np.float32),
              rng.uniform(0.1, 2, (7, 1)).astype(np.float32)]
    with np.errstate(all="ignore"):
        want = interpret(g, arrays)[0]
    got = compiled(arrays)[0]
    assert_ulps(got, want, "float32", 8, "fused chain")


def test_sin_huge_arguments_take_the_slow_path_only_for_their_lanes():
    """A vector mixing ordinary and huge arguments: every lane is right."""
    x = np.array([0.5, 1e10, -2.0, 1e300, 3.0, -7e15, 0.25, np.inf] * 5 + [1e22, 2.0])
    for dtype in ("float64", "float32"):
        with np.errstate(over="ignore"):  # 1e300 is inf in float32
            a = x.astype(dtype)
        for op, fn in (("sin", np.sin), ("cos", np.cos)):
            got, _ = run_both(op, [a], dtype)
            with np.errstate(invalid="ignore"):
                assert_ulps(got, fn(a.astype(np.float64)).astype(dtype), dtype, 1, op)


def test_kernels_accept_the_ops_directly():
    b = GraphBuilder()
    v = b.input((5,), "float64")
    k = ElementwiseKernel.for_graph(b.build([b.emit("erf", b.emit("sin", v))]))
    xs = np.linspace(-3, 3, 5)
    np.testing.assert_allclose(k([xs])[0], [__import__("math").erf(np.sin(t)) for t in xs], rtol=1e-15)


def test_float32_gelu_keeps_its_relative_accuracy_where_phi_is_small():
    """GELU = x/2 · erfc(-x/√2): for negative x, Φ(x) is small and ``1 + erf(x/√2)``
    would cancel (at x = -5, float32's erf is -1 to within 3 ulps of its spacing there,
    so the old form was off by percents); with erfc the float32 result stays within
    what rounding z = x/√2 costs (√½ and the product each round: z off by 2 · 2^-24
    relative, erfc(z) by 2z times that) plus a few ulps, eager and compiled."""
    import math
    x = np.concatenate([np.linspace(-12.0, 4.0, 4001), [-0.0, 0.0, 1e-30, -1e-30]]).astype(np.float32)
    truth = np.array([v / 2 * math.erfc(-v / math.sqrt(2)) for v in x.astype(np.float64)])
    z2 = x.astype(np.float64) ** 2 / 2
    bound = 4 * z2 * 2.0 ** -24 + 8 * 2.0 ** -24
    for got in (lucid.nn.functional.gelu(lucid.tensor(x)).numpy(),
                lucid.compile(lambda t: lucid.nn.functional.gelu(t))(lucid.tensor(x)).numpy()):
        normal = np.abs(truth) >= np.finfo(np.float32).tiny
        rel = np.abs(got[normal].astype(np.float64) - truth[normal]) / np.abs(truth[normal])
        assert (rel <= bound[normal]).all(), (x[normal][rel > bound[normal]][:5], rel.max())
        np.testing.assert_allclose(got[~normal], truth[~normal], rtol=0, atol=1e-44)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_erfc_and_its_gradient_exponential_in_one_kernel_match_each_alone(dtype):
    """erfc's e^{-x^2} is emitted as the graph's ``exp(neg(mul(x, x)))`` (its gradient,
    GELU's backward) emits it, so one kernel computing ``erfc(x) · e^{-x^2}`` computes
    the exponential once: the same bits as each in a kernel of its own, multiplied."""
    rng = np.random.default_rng(21)
    x = np.concatenate([rng.standard_normal(3001) * 4, [0.0, -0.0, np.inf, -np.inf, np.nan, 1e30, 27.0]]).astype(dtype)

    def gauss(b, a):
        return b.emit("exp", b.emit("neg", b.emit("mul", a, a)))

    b = GraphBuilder()
    a = b.input(x.shape, dtype)
    both = compile_graph(b.build([b.emit("mul", b.emit("erfc", a), gauss(b, a))]), "both")
    assert len(both.kernels) == 1
    b = GraphBuilder()
    a = b.input(x.shape, dtype)
    alone = compile_graph(b.build([gauss(b, a)]), "gauss")
    with np.errstate(all="ignore"):
        want = run_both("erfc", [x], dtype)[0] * alone([x])[0]
        np.testing.assert_array_equal(both([x])[0], want)
