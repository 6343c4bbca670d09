"""A short seeded run of the differential fuzzer (tests/fuzz.py), and regressions it found."""
from __future__ import annotations

import numpy as np
import pytest

import fuzz
from lucid.compiler import compile_graph
from lucid_ir.builder import GraphBuilder
from lucid_ir.interpreter import interpret


CI_SEEDS = range(20240, 20240 + 50)  # a fixed list: the same graphs on every machine


def test_short_seeded_fuzz_run(tmp_path):
    ran, found = fuzz.run_seeds(CI_SEEDS, out_dir=str(tmp_path), log=lambda *a: None)
    report = "\n".join(f"seed {s}: {f[0]}" for s, fs in found for f in fs[:1])
    assert not found, report
    assert ran == len(CI_SEEDS)


def test_time_budget_runs_consecutive_seeds_and_stops():
    seen = []

    def case(seed):
        seen.append(seed)
        return None, [], []
    assert fuzz.fuzz(60, seed=5, log=lambda *a: None, max_cases=4, case=case) == []
    assert seen == [5, 6, 7, 8]
    seen.clear()
    assert fuzz.fuzz(0, seed=5, log=lambda *a: None, case=case) == [] and seen == []


def test_fuzz_failures_are_saved_for_replay(tmp_path):
    from lucid_ir.serialize import load_graph
    g, graph, arrays = fuzz.make_case(7)
    path = fuzz.save_failure(str(tmp_path), 7, graph, arrays, ["a made-up failure"])
    assert str(load_graph(path)) == str(graph)
    saved = np.load(path + ".npz")
    assert all(np.array_equal(saved[f"arr_{i}"], a, equal_nan=True) for i, a in enumerate(arrays))


def test_generator_is_deterministic_and_precision_twin_matches():
    _, g1, a1 = fuzz.make_case(123)
    _, g2, a2 = fuzz.make_case(123)
    _, g3, _ = fuzz.make_case(123, force="float64")
    assert str(g1) == str(g2)
    assert all(np.array_equal(x, y, equal_nan=True) for x, y in zip(a1, a2))
    assert [v.shape for v in g1.outputs] == [v.shape for v in g3.outputs]


def test_compare_rules():
    w = np.array([1.0, np.nan, np.inf, 0.0])
    assert fuzz.compare(w.copy(), w, 0.0, "float64", "x") is None
    assert "NaN" in fuzz.compare(np.array([1.0, 2.0, np.inf, 0.0]), w, 0.0, "float64", "x")
    assert "infinities" in fuzz.compare(np.array([1.0, np.nan, -np.inf, 0.0]), w, 0.0, "float64", "x")
    assert "error" in fuzz.compare(np.array([1.001, np.nan, np.inf, 0.0]), w, 0.0, "float64", "x")


def test_twin_overflow_widens_only_its_own_element():
    """float32 exp(100) overflows where the float64 twin does not: that element has no
    error estimate, but its neighbours keep theirs, so a wrong neighbour is caught."""
    with np.errstate(over="ignore"):
        want = np.exp(np.array([100.0, 1.0, 2.0], np.float32))
    noise = fuzz.twin_noise(want, np.exp(np.array([100.0, 1.0, 2.0])), "float32")
    assert np.isinf(noise[0]) and np.isfinite(noise[1:]).all()
    wrong = want.copy()
    wrong[2] *= 1.01
    msg = fuzz.compare(wrong, want, noise, "float32", "x")
    assert msg and "at (2,)" in msg
    assert fuzz.compare(want.copy(), want, noise, "float32", "x") is None


def test_one_ill_conditioned_element_does_not_widen_the_others():
    want = np.linspace(1.0, 2.0, 20)
    twin = want.copy()
    twin[3] += 1.0  # one element moves a lot with the precision
    noise = fuzz.twin_noise(want, twin, "float32")
    assert noise[3] == 8.0 and (noise[np.arange(20) != 3] == 0.0).all()
    wrong = want.copy()
    wrong[7] += 1e-2
    assert "at (7,)" in fuzz.compare(wrong, want, noise, "float64", "x")


@pytest.mark.parametrize("shapes, attrs", [
    (((4, 5), (5, 3)), {}), (((5, 4), (3, 5)), {"trans_a": True, "trans_b": True}),
    (((2, 4, 5), (5, 3)), {}), (((5,), (5, 3)), {}), (((4, 5), (5,)), {}), (((5,), (5,)), {})])
def test_reversed_products_sum_the_same_terms(shapes, attrs):
    """The fuzzer's second float32 estimate (fuzz.reversed_products) changes only the
    order of each product's terms: integer sums are exact either way; the interpreter's
    own evaluation is back afterwards."""
    from lucid_ir.ops import get_op
    rng = np.random.default_rng(0)
    a, b = (rng.integers(-9, 9, s).astype(np.float32) for s in shapes)
    attrs = {"trans_a": False, "trans_b": False, **attrs}
    forward = get_op("matmul").evaluate([a, b], attrs)
    with fuzz.reversed_products():
        backward = get_op("matmul").evaluate([a, b], attrs)
    np.testing.assert_array_equal(backward, forward)
    assert "evaluate" not in vars(get_op("matmul"))


def test_a_cancelling_product_chain_is_judged_with_both_summation_orders():
    """Seed 645940101: three chained products cancel to values near 0.3 whose log and
    ratio the graph then takes; at one of 21025 elements the interpreter's float32 order
    happened to round 8x closer to float64 than the compiled GEMM's order did (the
    estimate from one order alone failed it: error 8.7e-4 against 7.4e-4 allowed)."""
    _, _, failures = fuzz.run_case(645940101, grad=False)
    assert failures == []


def test_a_nan_at_an_element_without_an_estimate_is_allowed_and_only_there():
    """An element with an infinite allowance (its twin disagrees on finiteness) may be NaN
    on one side only; a NaN or an infinity anywhere else is still caught. Seed
    653060523: relu of a product that cancels to about 0, times a scale, then x / x: 1.0
    in the interpreter's float32, NaN (0 / 0) in float64 and in the compiled GEMM's
    summation order."""
    w = np.array([1.0, 1.0, 2.0])
    noise = np.array([np.inf, 0.0, 0.0])
    assert fuzz.compare(np.array([np.nan, 1.0, 2.0]), w, noise, "float32", "x") is None
    assert "NaN" in fuzz.compare(np.array([1.0, np.nan, 2.0]), w, noise, "float32", "x")
    assert "infinities" in fuzz.compare(np.array([np.inf, 1.0, np.inf]), w, noise, "float32", "x")
    _, _, failures = fuzz.run_case(653060523, grad=False)
    assert failures == []


def test_a_sum_cancelling_to_zero_then_divided_by_is_judged_with_both_roundings():
    """Seed 655965458 (float64): a row sum of layer-normed values is exactly 0 in one
    summation order and about +-1e-17 in another, and a later division by it gives NaN,
    +inf, -inf or 0 depending on which: the interpreter run again with every sum within
    its rounding error of 0 set to 0, to +error and to -error gives those elements an
    infinite allowance (and only those); the compiled kernels pass."""
    w = np.array([1.0, np.inf, 2.0, np.nan])
    assert fuzz._finiteness_noise(w, np.array([np.nan, -np.inf, 2.5, np.nan])).tolist() == [np.inf, np.inf, 0, 0]
    _, _, failures = fuzz.run_case(655965458, grad=False)
    assert failures == []


def test_a_sum_of_huge_cancelling_terms_is_judged_by_its_rounding_bound():
    """Seed 695789490 (float64): int64 values, the extremes -2^63 and 2^63 - 1 among small
    ones, cast to float64 and summed: each summation order loses different small terms to
    the huge partial sums (numpy's pairwise 11, the compiled kernel's 15). A sum within
    its rounding error of 0 is allowed the spread that error gives its output; an error
    far outside it is still reported."""
    w = np.array([11.0, 2.0, np.nan])
    assert fuzz._cancellation_noise(w, np.array([1e5, 2.0, 1.0])).tolist() == [99989.0, 0.0, 0.0]
    _, _, failures = fuzz.run_case(695789490, grad=False)
    assert failures == []
    b = GraphBuilder()
    x = b.input((4,), "float64")
    graph = b.build([b.emit("sum", x, axes=(0,))])
    noise = fuzz.precision_noise(0, "float64", graph, [np.array([1.0, 2.0, 3.0, 4.0])], [np.array(10.0)],
                                 make=lambda seed, force: (None, graph, None))
    assert float(noise[0]) < 1e-9   # no cancellation: no allowance beyond the twin's


def _planted_error(monkeypatch, output: int, index: tuple, factor: float):
    """Every compiled plan the fuzzer runs returns one wrong element in ``output``."""
    from lucid import compiler
    real = compiler.CompiledGraph.__call__

    def wrong(self, arrays):
        outs = [np.array(o) for o in real(self, arrays)]
        if outs[output].size:
            outs[output][index] = outs[output][index] * factor + 1e-3
        return outs
    monkeypatch.setattr(compiler.CompiledGraph, "__call__", wrong)


def test_fuzzer_reports_a_planted_wrong_element_next_to_a_float32_overflow(monkeypatch):
    """End to end: the output's first element overflows in float32 only (the twin
    disagrees there), and the compiled result is wrong in another element. Before the
    fix the twin disagreement made the whole output's tolerance infinite."""
    def make_case(seed, force=None):
        dt = force or "float32"
        b = GraphBuilder()
        x = b.input((5,), dt)
        graph = b.build([b.emit("mul", b.emit("exp", x), b.constant(0.5, (), dt))])
        return None, graph, [np.array([100.0, 0.5, 1.0, -2.0, 3.0], dt)]
    monkeypatch.setattr(fuzz, "make_case", make_case)
    _, _, clean = fuzz.run_case(1, grad=False)
    assert clean == []
    _planted_error(monkeypatch, 0, (3,), 1.001)
    _, _, failures = fuzz.run_case(1, grad=False)
    assert failures and all("output 0" in f and "at (3,)" in f for f in failures)


def test_fuzzer_reports_a_planted_wrong_element_in_a_random_graph(monkeypatch):
    """The first seed whose first output's last element is a finite number: that element,
    1% off in every compiled run, is reported."""
    for seed in range(100):
        _, graph, arrays = fuzz.make_case(seed)
        with np.errstate(all="ignore"):
            want = interpret(graph, arrays)[0]
        if want.size >= 6 and np.isfinite(want.flat[-1]):
            break
    index = tuple(d - 1 for d in want.shape)
    _planted_error(monkeypatch, 0, index, 1.01)
    _, _, failures = fuzz.run_case(seed, grad=False)
    assert len(failures) == 9, failures  # its eight compiled runs, and run 2's outputs kept past run 3
    assert all(f"at {index}" in f for f in failures), failures


def test_unary_through_broadcast_after_cse():
    """Found by the fuzzer (seed 179): tanh(broadcast_to(x)) next to tanh(x); simplify
    moved the tanh before the broadcast, CSE merged it with tanh(x), and the broadcast
    read a value that was never defined."""
    b = GraphBuilder()
    x = b.input((4, 1, 3), "float64")
    bx = b.emit("broadcast_to", x, shape=(4, 2, 3))
    t = b.emit("tanh", x)
    tb = b.emit("tanh", bx)
    graph = b.build([b.emit("add", tb, b.emit("exp", t)), bx])
    a = np.random.default_rng(0).standard_normal((4, 1, 3))
    got = compile_graph(graph)([a])
    for g, w in zip(got, interpret(graph, [a])):
        np.testing.assert_allclose(g, w, rtol=1e-12)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_gemm_sigmoid_epilogue_at_minus_inf(dtype):
    """Found by the fuzzer (seeds 1287, 1432, 52935): the GEMM epilogue's sigmoid clamped
    exp, so sigmoid(-inf) was ~1e-308 (float64) / ~1e-38 (float32) instead of 0 and
    x/x downstream gave 1 instead of NaN. The epilogue now uses the elementwise kernels'
    sigmoid and tanh."""
    b = GraphBuilder()
    x, w, bias = b.input((2, 1), dtype), b.input((3, 1), dtype), b.input((3,), dtype)
    y = b.emit("sigmoid", b.emit("add", b.emit("matmul", x, w, trans_b=True), bias))
    graph = b.build([y])
    args = [np.array([[-np.inf], [-1000.0]], dtype), np.ones((3, 1), dtype), np.zeros(3, dtype)]
    (got,) = compile_graph(graph)(args)
    (want,) = interpret(graph, args)
    np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_gemm_tanh_epilogue_matches_unfused_near_zero(dtype):
    b = GraphBuilder()
    x, w = b.input((64, 1), dtype), b.input((8, 1), dtype)
    graph = b.build([b.emit("tanh", b.emit("matmul", x, w, trans_b=True))])
    args = [np.logspace(-8, 1, 64).reshape(64, 1).astype(dtype), np.ones((8, 1), dtype)]
    (got,) = compile_graph(graph)(args)
    (want,) = interpret(graph, args)
    np.testing.assert_allclose(got, want, rtol=4e-7 if dtype == "float32" else 1e-15)


def test_max_gradient_with_ties_is_the_true_derivative():
    """Found by the fuzzer (seed 3003036): max over a broadcast axis sent the whole
    gradient to each of the tied copies, so d/dx max(broadcast(x)) was 3, not 1."""
    import lucid
    x = lucid.Tensor(np.array([[1.0, -2.0]]), requires_grad=True)
    big = x.reshape(1, 1, 2) + lucid.Tensor(np.zeros((3, 1, 1)))  # three tied copies
    big.max(axis=0).sum().backward()
    np.testing.assert_allclose(x.grad, [[1.0, 1.0]])
    y = lucid.Tensor(np.array([3.0, 3.0, 1.0]), requires_grad=True)
    y.max().backward()
    np.testing.assert_allclose(y.grad, [0.5, 0.5, 0.0])


def test_a_value_the_backward_compares_is_saved_not_recomputed():
    """Found by the fuzzer (seed 681148776): the gradient of ``maximum(b, log(x²+1))``
    asks whether the result exceeds ``log(x²+1)``; autodiff recomputed that operand in
    the backward (cheap elementwise work from x), whose log differed from the forward's
    in the last bit, so gt(result, operand) sent x's gradient to b. A value the
    backward compares is now the forward's own (a residual); the case passes."""
    from lucid_ir.passes import autodiff
    b = GraphBuilder()
    x, lo = b.input((3, 4), "float64"), b.input((4,), "float64")
    branch = b.emit("log", b.emit("add", b.emit("mul", x, x), b.constant(1.0, dtype="float64")))
    graph = b.build([b.emit("maximum", lo, branch)])
    bwd = autodiff.run(graph, [0, 1])
    assert branch in bwd.residuals
    assert not [n for n in bwd.graph.nodes if n.op == "log"]
    assert not fuzz.run_case(681148776, grad=True)[2]


def test_a_mask_made_from_recomputed_values_is_saved_not_recomputed():
    """The same rule for a comparison in the forward: a select's mask ``log(x²+1) > t``
    read by the backward is not made again from a recomputed log (the mask of another
    kernel's log could differ from the forward's at the boundary); relu's ``x > 0``
    still is (x is free: the same bits)."""
    from lucid_ir.passes import autodiff
    b = GraphBuilder()
    x, t = b.input((3, 4), "float64"), b.input((3, 4), "float64")
    branch = b.emit("log", b.emit("add", b.emit("mul", x, x), b.constant(1.0, dtype="float64")))
    zero = b.constant(0.0, dtype="float64")
    y = b.emit("select", b.emit("gt", branch, t), x, zero)
    relu = b.emit("select", b.emit("gt", x, zero), x, zero)
    graph = b.build([y, relu])
    bwd = autodiff.run(graph, [0])
    assert not [n for n in bwd.graph.nodes if n.op == "log"]
    assert [n.inputs for n in bwd.graph.nodes if n.op == "gt"] == [(x, zero)]
