"""Outputs written in place into donated inputs (``compile_graph(g, in_place={j: i})``):
output j's values end up in ``arrays[i]``, which is returned as output j, and every
output is what it would be if no input had changed. Written straight by the kernel when
that is safe (``plan.in_place_direct``), else copied at the end of the call."""
from __future__ import annotations

import numpy as np
import pytest

from lucid.compiler import compile_graph
from lucid_codegen.runtime import plan as runtime
from lucid_codegen.runtime import threads
from lucid_codegen.gemm.kernel import GemmSpec
from gemm_specs import chain_spec
from lucid_codegen.gemm.call import get_gemm
from lucid_ir.builder import GraphBuilder

KC32 = GemmSpec("float32").blocking.KC
KC64 = GemmSpec("float64").blocking.KC


@pytest.fixture(params=[1, 2], ids=["1thread", "2threads"])
def n_threads(request):
    before = threads.get_num_threads()
    threads.set_num_threads(request.param)
    yield request.param
    threads.set_num_threads(before)


def _programs(plan):
    return [p for p in getattr(plan._local, "programs", {}).values() if p]


@pytest.fixture
def copies(monkeypatch):
    """How many times ``np.copyto`` (the plan's fallback copy) has run."""
    calls = []
    real = np.copyto

    def counting(*args, **kwargs):
        calls.append(1)
        return real(*args, **kwargs)
    monkeypatch.setattr(np, "copyto", counting)
    return calls


def _sgd_graph(m, k, n, dtype="float32", form="add"):
    """``W - 0.1 * A^T @ B``; ``form="add"``: written ``W + (-0.1) * (A^T @ B)`` (one
    GEMM with a residual), ``"sub"``: a GEMM then an elementwise ``W - G``."""
    b = GraphBuilder()
    A, B, W = b.input((k, m), dtype), b.input((k, n), dtype), b.input((m, n), dtype)
    g = b.emit("matmul", A, B, trans_a=True)
    if form == "add":
        w_new = b.emit("add", W, b.emit("mul", b.constant(-0.1, (), dtype), g))
    else:
        w_new = b.emit("sub", W, b.emit("mul", b.constant(0.1, (), dtype), g))
    return b.build([w_new])


def _sgd_reference(A, B, W):
    return W.astype(np.float64) - 0.1 * (A.astype(np.float64).T @ B.astype(np.float64))


def _tol(dtype, k):
    return dict(rtol=1e-12, atol=1e-12 * max(k, 1)) if dtype == "float64" else dict(rtol=2e-5, atol=2e-5 * max(k, 1) ** 0.5)


SGD_SHAPES = [(256, 64, 784), (40, KC32 + 100, 33), (2, 1, 1), (1, 1, 1), (7, 13, 11),
              (31, 2 * KC32 + 3, 17), (0, 5, 3), (4, 0, 6), (5, 3, 0)]


@pytest.mark.parametrize("m,k,n", SGD_SHAPES)
def test_sgd_gemm_update_writes_straight_into_the_parameter(m, k, n, n_threads, copies):
    graph = _sgd_graph(m, k, n)
    plan = compile_graph(graph, in_place={0: 2}).executable
    assert [n.kind for n in plan.step_nodes] == ["gemm"]
    # a (1, N) W is the GEMM's (M, N) operand too (read once, in place); an empty W: nothing to write
    direct = m * n != 0
    assert plan.in_place_direct == ({0} if direct else set())
    rng = np.random.default_rng(m * 1000 + k + n)
    W = rng.standard_normal((m, n)).astype(np.float32)
    for call in range(5):
        A = rng.standard_normal((k, m)).astype(np.float32)
        B = rng.standard_normal((k, n)).astype(np.float32)
        if call == 3:  # a new parameter array: the program follows the address
            W = rng.standard_normal((m, n)).astype(np.float32)
        want = _sgd_reference(A, B, W)
        A0, B0 = A.copy(), B.copy()
        (got,) = plan([A, B, W])
        assert got is W
        np.testing.assert_allclose(W, want, **_tol("float32", k))
        assert np.array_equal(A, A0) and np.array_equal(B, B0)
    if m and n and k:
        assert _programs(plan), "from the second call on the plan runs natively"
    assert not copies if direct else len(copies) == 5


@pytest.mark.parametrize("k", [3, KC64 + 5])
def test_sgd_gemm_update_float64(k):
    graph = _sgd_graph(9, k, 14, "float64")
    plan = compile_graph(graph, in_place={0: 2}).executable
    assert plan.in_place_direct == {0}
    rng = np.random.default_rng(k)
    W = rng.standard_normal((9, 14))
    for _ in range(3):
        A, B = rng.standard_normal((k, 9)), rng.standard_normal((k, 14))
        want = _sgd_reference(A, B, W)
        assert plan([A, B, W])[0] is W
        np.testing.assert_allclose(W, want, **_tol("float64", k))


def test_sub_form_writes_through_its_gemm_kernel(n_threads, copies):
    """``W - 0.1 * (A^T @ B)``: the scale and the subtraction are the GEMM's epilogue, a
    linear one (``-0.1 * P + W``), which reads W once: written straight into W."""
    graph = _sgd_graph(64, 32, 48, form="sub")
    plan = compile_graph(graph, in_place={0: 2}).executable
    assert [n.kind for n in plan.step_nodes] == ["gemm"]
    assert plan.in_place_direct == {0}
    rng = np.random.default_rng(3)
    W = rng.standard_normal((64, 48)).astype(np.float32)
    for _ in range(4):
        A, B = rng.standard_normal((32, 64)).astype(np.float32), rng.standard_normal((32, 48)).astype(np.float32)
        want = _sgd_reference(A, B, W)
        assert plan([A, B, W])[0] is W
        np.testing.assert_allclose(W, want, **_tol("float32", 32))
    assert _programs(plan) and not copies


def _elementwise_graph(shape, dtype="float32"):
    b = GraphBuilder()
    p, g, lr = b.input(shape, dtype), b.input(shape, dtype), b.input((), dtype)
    return b.build([b.emit("sub", p, b.emit("mul", lr, g))])


@pytest.mark.parametrize("shape", [(300, 517), (7,), (3, 1, 5), (0, 4), ()])
def test_elementwise_update_with_a_learning_rate_input(shape, n_threads, copies):
    graph = _elementwise_graph(shape)
    plan = compile_graph(graph, in_place={0: 0}).executable
    assert plan.in_place_direct == ({0} if 0 not in shape else set())
    assert plan.single is None  # the one-kernel shortcut must not bypass the donation
    rng = np.random.default_rng(len(shape))
    p = rng.standard_normal(shape).astype(np.float32)
    for call in range(5):
        g = rng.standard_normal(shape).astype(np.float32)
        lr = np.array(0.01 * (call + 1), np.float32)
        want = p.astype(np.float64) - lr.astype(np.float64) * g
        assert plan([p, g, lr])[0] is p
        np.testing.assert_allclose(p, want, rtol=1e-6, atol=1e-6)
    if 0 not in shape:
        assert _programs(plan)
        assert not copies


def _reader_graph(w_new_first: bool):
    """``y = x @ W^T`` and ``W_new = W + (-0.1) * (A^T @ B)``: y must see the old W."""
    b = GraphBuilder()
    x, W, A, B = b.input((5, 24)), b.input((40, 24)), b.input((16, 40)), b.input((16, 24))

    def update():
        return b.emit("add", W, b.emit("mul", b.constant(-0.1), b.emit("matmul", A, B, trans_a=True)))

    def forward():
        return b.emit("matmul", x, W, trans_b=True)
    if w_new_first:
        w_new = update()
        y = forward()
    else:
        y = forward()
        w_new = update()
    return b.build([y, w_new])


@pytest.mark.parametrize("w_new_first", [True, False])
def test_another_kernel_reading_the_parameter_sees_the_old_values(w_new_first, n_threads, copies):
    graph = _reader_graph(w_new_first)
    plan = compile_graph(graph, in_place={1: 1}).executable
    assert plan.in_place_direct == {1}
    # the reader runs first (moved there when the update came first)
    fns = [fn for fn, _, _ in plan.steps]
    w_slot = plan.input_slots[1]
    writer = next(k for k, (fn, ins, _) in enumerate(plan.steps) if ins[-1] == w_slot and len(ins) == 3)
    reader = next(k for k, (fn, ins, _) in enumerate(plan.steps) if k != writer and w_slot in ins)
    assert reader < writer, fns
    rng = np.random.default_rng(4)
    W = rng.standard_normal((40, 24)).astype(np.float32)
    for _ in range(4):
        x, A, B = (rng.standard_normal(s).astype(np.float32) for s in ((5, 24), (16, 40), (16, 24)))
        want_y = x.astype(np.float64) @ W.astype(np.float64).T
        want_w = _sgd_reference(A, B, W)
        y, w = plan([x, W, A, B])
        assert w is W
        np.testing.assert_allclose(y, want_y, rtol=2e-5, atol=2e-5)
        np.testing.assert_allclose(W, want_w, rtol=2e-5, atol=2e-5)
    assert _programs(plan) and not copies


def _check(plan, feeds, in_place, want):
    got = plan(feeds)
    for j, i in in_place.items():
        assert got[j] is feeds[i]
    for g, w in zip(got, want):
        np.testing.assert_allclose(g, w, rtol=2e-5, atol=2e-5)


def test_fallback_copy_when_a_reader_needs_the_new_value_too(n_threads):
    """``y = W_new @ W^T`` reads W and W_new: it can run neither before nor after the
    kernel making W_new if that kernel overwrote W, so W_new is copied at the end."""
    b = GraphBuilder()
    W, A, B = b.input((20, 12)), b.input((8, 20)), b.input((8, 12))
    w_new = b.emit("add", W, b.emit("mul", b.constant(-0.1), b.emit("matmul", A, B, trans_a=True)))
    graph = b.build([w_new, b.emit("matmul", w_new, W, trans_b=True)])
    plan = compile_graph(graph, in_place={0: 0}).executable
    assert plan.in_place_direct == set()
    rng = np.random.default_rng(5)
    W = rng.standard_normal((20, 12)).astype(np.float32)
    for _ in range(4):
        A, B = rng.standard_normal((8, 20)).astype(np.float32), rng.standard_normal((8, 12)).astype(np.float32)
        w2 = _sgd_reference(A, B, W)
        _check(plan, [W, A, B], {0: 0}, [w2, w2 @ W.astype(np.float64).T])


def test_fallback_copy_for_swapped_values(n_threads):
    """``(a, b) <- (2b, a + 1)`` in two kernels that each read the other's input."""
    b = GraphBuilder()
    a, c, x = b.input((6, 9)), b.input((6, 9)), b.input((9, 9))
    new_a = b.emit("matmul", c, x)             # reads c
    new_c = b.emit("add", b.emit("matmul", a, x), c)  # reads a (and c)
    graph = b.build([new_a, new_c])
    plan = compile_graph(graph, in_place={0: 0, 1: 1}).executable
    assert len(plan.in_place_direct) == 1  # one of the two can be written directly, not both
    rng = np.random.default_rng(6)
    arrays = [rng.standard_normal(s).astype(np.float32) for s in ((6, 9), (6, 9), (9, 9))]
    for _ in range(4):
        a64, c64, x64 = (v.astype(np.float64) for v in arrays)
        _check(plan, arrays, {0: 0, 1: 1}, [c64 @ x64, a64 @ x64 + c64])


def test_fallback_copy_when_the_kernel_reads_a_view_of_the_parameter(n_threads):
    """``W - 0.1 * W^T`` reads element (j, i) while writing (i, j): copied."""
    b = GraphBuilder()
    w = b.input((33, 33))
    graph = b.build([b.emit("sub", w, b.emit("mul", b.constant(0.1), b.emit("transpose", w, perm=(1, 0))))])
    plan = compile_graph(graph, in_place={0: 0}).executable
    assert plan.in_place_direct == set()
    W = np.random.default_rng(14).standard_normal((33, 33)).astype(np.float32)
    for _ in range(4):
        want = W.astype(np.float64) - 0.1 * W.T
        _check(plan, [W], {0: 0}, [want])


def test_fallback_copy_when_the_input_is_also_an_output(n_threads):
    b = GraphBuilder()
    p, g, lr = b.input((4, 5)), b.input((4, 5)), b.input(())
    graph = b.build([p, b.emit("sub", p, b.emit("mul", lr, g)), b.emit("transpose", p, perm=(1, 0))])
    plan = compile_graph(graph, in_place={1: 0}).executable
    assert plan.in_place_direct == set()
    rng = np.random.default_rng(7)
    p = rng.standard_normal((4, 5)).astype(np.float32)
    for _ in range(4):
        g, lr = rng.standard_normal((4, 5)).astype(np.float32), np.array(0.5, np.float32)
        old = p.copy()
        got = plan([p, g, lr])
        assert got[0] is not p and np.array_equal(got[0], old)
        assert np.array_equal(got[2], old.T)
        assert got[1] is p
        np.testing.assert_allclose(p, old - 0.5 * g, rtol=1e-6)


@pytest.mark.parametrize("k,epilogue_direct", [(8, True), (KC32 + 40, False)])
def test_nonlinear_gemm_epilogue_over_its_residual_only_with_one_k_block(k, epilogue_direct):
    """``relu(A^T @ B) + W``: the kernel adds R after the activation, at the last K
    block, when earlier blocks have left partial sums in C: writing C over R is safe only
    when there is one K block."""
    b = GraphBuilder()
    A, B, W = b.input((k, 10)), b.input((k, 12)), b.input((10, 12))
    h = b.emit("maximum", b.emit("matmul", A, B, trans_a=True), b.constant(0.0))
    graph = b.build([b.emit("add", h, W)])
    plan = compile_graph(graph, in_place={0: 2}).executable
    assert [n.kind for n in plan.step_nodes] == ["gemm"]
    assert plan.in_place_direct == ({0} if epilogue_direct else set())
    rng = np.random.default_rng(k)
    W = rng.standard_normal((10, 12)).astype(np.float32)
    for _ in range(4):
        A, B = rng.standard_normal((k, 10)).astype(np.float32), rng.standard_normal((k, 12)).astype(np.float32)
        want = np.maximum(A.astype(np.float64).T @ B, 0) + W
        assert plan([A, B, W])[0] is W
        np.testing.assert_allclose(W, want, **_tol("float32", k))


@pytest.mark.parametrize("epilogue", ["none", "relu"])
def test_gemm_kernel_reads_its_residual_once_only_when_linear(epilogue, n_threads):
    """The kernel-level fact the plan relies on: with C and R the same array and K over
    several K blocks, a linear epilogue (R folded in at the first block) gives
    ``A @ B + R``; a nonlinear one (R added at the last block, C holding partial sums
    before) does not. ``GemmStep.same_element_reads`` follows this."""
    g = get_gemm(chain_spec("float32", epilogue=epilogue, residual=True))
    M, N, K = 96, 80, 3 * KC32 + 7
    rng = np.random.default_rng(8)
    a, b = rng.standard_normal((M, K)).astype(np.float32), rng.standard_normal((K, N)).astype(np.float32)
    c = rng.standard_normal((M, N)).astype(np.float32)
    s = a.astype(np.float64) @ b
    want = (s if epilogue == "none" else np.maximum(s, 0)) + c
    g._run_arrays(a, b, c, None, c, 1.0, M, N, K)  # C written over R = C
    if epilogue == "none":
        np.testing.assert_allclose(c, want, rtol=1e-4, atol=1e-3)
    else:
        assert not np.allclose(c, want, rtol=1e-3, atol=1e-2)


def _guarded(shape, layout, rng):
    """A view of ``shape`` with ``layout`` inside a bigger array of guard values."""
    m, n = shape
    big = np.full((m + 7, n + 9), 1234.5, np.float32)
    if layout == "slice":
        view = big[3:3 + m, 4:4 + n]
    elif layout == "transposed":
        big = np.full((n + 9, m + 7), 1234.5, np.float32)
        view = big[4:4 + n, 3:3 + m].T
    elif layout == "fortran":
        big = np.asfortranarray(big)
        view = big[3:3 + m, 4:4 + n]
    elif layout == "reversed":
        view = big[3:3 + m, 4:4 + n][::-1]
    else:  # every other column
        big = np.full((m + 7, 2 * n + 9), 1234.5, np.float32)
        view = big[3:3 + m, 4:4 + 2 * n:2]
    view[...] = rng.standard_normal(shape).astype(np.float32)
    outside = np.ones(big.shape, bool)
    outside[np.unravel_index(_offsets(big, view), big.shape, order="C" if big.flags.c_contiguous else "F")] = False
    return big, view, outside


def _offsets(big, view):
    """Indices (into ``big`` flattened in its memory order) of ``view``'s elements."""
    start = (view.__array_interface__["data"][0] - big.__array_interface__["data"][0]) // 4
    idx = np.indices(view.shape).reshape(view.ndim, -1)
    return start + sum(i * (s // 4) for i, s in zip(idx, view.strides))


LAYOUTS = ["slice", "transposed", "fortran", "reversed", "strided"]


@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("form", ["add", "sub"])
def test_donated_views_change_nothing_outside(layout, form, n_threads):
    m, k, n = 23, KC32 + 9, 19
    graph = _sgd_graph(m, k, n, form=form)
    plan = compile_graph(graph, in_place={0: 2}).executable
    assert plan.in_place_direct == {0}
    _sgd_updates_inside_guards(plan, (m, k, n), layout, np.random.default_rng(9))


def _sgd_updates_inside_guards(plan, mkn, layout, rng, calls=4):
    """Run an SGD-update plan donated into a view with ``layout`` inside guard values:
    right values, the view itself returned, nothing outside it written."""
    m, k, n = mkn
    big, W, outside = _guarded((m, n), layout, rng)
    guard = big[outside].copy()
    for _ in range(calls):
        A, B = rng.standard_normal((k, m)).astype(np.float32), rng.standard_normal((k, n)).astype(np.float32)
        want = _sgd_reference(A, B, W)
        assert plan([A, B, W])[0] is W
        np.testing.assert_allclose(W, want, **_tol("float32", k))
        assert np.array_equal(big[outside], guard)


@pytest.mark.parametrize("layout", LAYOUTS)
def test_donated_views_elementwise(layout, n_threads):
    graph = _elementwise_graph((23, 19))
    plan = compile_graph(graph, in_place={0: 0}).executable
    rng = np.random.default_rng(10)
    big, p, outside = _guarded((23, 19), layout, rng)
    guard = big[outside].copy()
    for _ in range(4):
        g, lr = rng.standard_normal((23, 19)).astype(np.float32), np.array(0.25, np.float32)
        want = p.astype(np.float64) - 0.25 * g
        assert plan([p, g, lr])[0] is p
        np.testing.assert_allclose(p, want, rtol=1e-6, atol=1e-6)
        assert np.array_equal(big[outside], guard)


def _adam_like_graph(shape):
    """Two donated outputs of one elementwise kernel (m2 and p2, which reads m2 and p)."""
    b = GraphBuilder()
    p, m, g = b.input(shape), b.input(shape), b.input(shape)
    m2 = b.emit("add", b.emit("mul", b.constant(0.9), m), b.emit("mul", b.constant(0.1), g))
    p2 = b.emit("sub", p, b.emit("mul", b.constant(0.01), b.emit("add", m2, p)))
    return b.build([p2, m2])


def test_two_outputs_of_one_kernel_into_two_inputs(n_threads, copies):
    graph = _adam_like_graph((33, 65))
    plan = compile_graph(graph, in_place={0: 0, 1: 1}).executable
    assert [n.kind for n in plan.step_nodes] == ["elementwise"]   # both products join the loop
    assert len(plan.step_nodes[0].outs) == 2
    assert plan.in_place_direct == {0, 1}
    rng = np.random.default_rng(11)
    p, m = (rng.standard_normal((33, 65)).astype(np.float32) for _ in range(2))
    for _ in range(4):
        g = rng.standard_normal((33, 65)).astype(np.float32)
        m2 = 0.9 * m.astype(np.float64) + 0.1 * g
        p2 = p - 0.01 * (m2 + p)
        got = plan([p, m, g])
        assert got[0] is p and got[1] is m
        np.testing.assert_allclose(p, p2, rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(m, m2, rtol=1e-5, atol=1e-6)
    assert _programs(plan) and not copies


def test_step_by_step_without_native_programs(monkeypatch):
    monkeypatch.setattr(runtime, "NATIVE_PLANS", False)
    graph = _reader_graph(True)
    plan = compile_graph(graph, in_place={1: 1}).executable
    assert plan.in_place_direct == {1}
    rng = np.random.default_rng(12)
    W = rng.standard_normal((40, 24)).astype(np.float32)
    for _ in range(4):
        x, A, B = (rng.standard_normal(s).astype(np.float32) for s in ((5, 24), (16, 40), (16, 24)))
        _check(plan, [x, W, A, B], {1: 1}, [x @ W.astype(np.float64).T, _sgd_reference(A, B, W)])
    assert not _programs(plan)


@pytest.mark.parametrize("env", [("LUCID_CHECK_BOUNDS", "1"), ("LUCID_BACKEND", "interpret")])
def test_checked_and_interpreted_plans_copy_into_the_input(env, monkeypatch):
    monkeypatch.setenv(*env)
    graph = _reader_graph(True)
    plan = compile_graph(graph, in_place={1: 1}).executable
    if env[0] == "LUCID_CHECK_BOUNDS":
        from lucid_codegen.runtime.bounds import CheckedPlan
        assert isinstance(plan, CheckedPlan)
    else:
        assert not isinstance(plan, runtime.Plan)
    assert plan.in_place_direct == set()
    rng = np.random.default_rng(13)
    W = rng.standard_normal((40, 24)).astype(np.float32)
    for _ in range(3):
        x, A, B = (rng.standard_normal(s).astype(np.float32) for s in ((5, 24), (16, 40), (16, 24)))
        _check(plan, [x, W, A, B], {1: 1}, [x @ W.astype(np.float64).T, _sgd_reference(A, B, W)])


@pytest.mark.parametrize("interpret", [False, True])
def test_an_output_of_the_interpreter_viewing_a_donated_input_is_a_copy(interpret, monkeypatch):
    if interpret:
        monkeypatch.setenv("LUCID_BACKEND", "interpret")
    b = GraphBuilder()
    p, q = b.input((3, 4)), b.input((3, 4))
    graph = b.build([b.emit("transpose", p, perm=(1, 0)), q, p])  # p <- q, p^T of the old p
    plan = compile_graph(graph, in_place={1: 0}).executable
    p, q = np.arange(12, dtype=np.float32).reshape(3, 4), np.ones((3, 4), np.float32)
    old = p.copy()
    t, new, same = plan([p, q])
    assert new is p and np.array_equal(p, q)
    assert np.array_equal(t, old.T) and np.array_equal(same, old)


@pytest.mark.parametrize("warm", [False, True], ids=["first_call", "after_native_program"])
def test_bad_donations_are_refused(warm):
    """Refused on the first call and also once a native program runs the plan (it checks
    donated inputs natively: a refused call falls back to the general call's errors)."""
    graph = _sgd_graph(6, 4, 5)
    with pytest.raises(ValueError, match=r"output 0 \(f32\[6,5\]\) cannot be written into input 0 \(f32\[4,6\]\)"):
        compile_graph(graph, in_place={0: 0})
    with pytest.raises(ValueError, match="no output 1"):
        compile_graph(graph, in_place={1: 2})
    with pytest.raises(ValueError, match="no input 3"):
        compile_graph(graph, in_place={0: 3})
    plan = compile_graph(graph, in_place={0: 2}).executable
    A, B = np.ones((4, 6), np.float32), np.ones((4, 5), np.float32)
    W = np.ones((6, 5), np.float32)
    for _ in range(3 if warm else 0):
        plan([A, B, W])
    assert bool(_programs(plan)) == warm
    with pytest.raises(ValueError, match=r"output 0 \(float32\[6, 5\]\) cannot be written into input 2: it is float64\[6, 5\]"):
        plan([A, B, np.ones((6, 5))])
    with pytest.raises(ValueError, match=r"into input 2: it is float32\[5, 6\]"):
        plan([A, B, np.ones((5, 6), np.float32)])
    ro = np.ones((6, 5), np.float32)
    ro.setflags(write=False)
    with pytest.raises(ValueError, match="read-only"):
        plan([A, B, ro])
    assert np.all(ro == 1)
    b = GraphBuilder()
    x, y = b.input((3,)), b.input((3,))
    two = b.build([b.emit("add", x, y)])
    plan = compile_graph(two, in_place={0: 0}).executable
    z, other = np.ones(3, np.float32), np.ones(3, np.float32)
    for _ in range(3 if warm else 0):
        np.testing.assert_array_equal(plan([z, other])[0], z)
    with pytest.raises(ValueError, match="also passed for another input"):
        plan([z, z])
    np.testing.assert_array_equal(z, 1.0 + (3 if warm else 0))   # not written by the refused call


def test_without_in_place_nothing_changes():
    b = GraphBuilder()
    x, y = b.input((4, 4)), b.input((4, 4))
    plan = compile_graph(b.build([b.emit("sub", x, y)])).executable
    assert plan.single is not None and plan.in_place_direct == set() and not plan.donations
    p = np.ones((4, 4), np.float32)
    out = plan([p, p])[0]
    assert out is not p and np.array_equal(p, np.ones((4, 4))) and not out.any()


@pytest.mark.parametrize("seed", range(120))
def test_random_graphs_with_random_donations(seed):
    """Any donation of inputs to outputs of the same type: the values of a plain call."""
    from random_graphs import random_graph
    from lucid_ir.interpreter import interpret
    rng = np.random.default_rng(seed)
    graph, arrays = random_graph(rng, n_ops=int(rng.integers(3, 12)))
    free = list(range(len(graph.inputs)))
    in_place = {}
    for j, v in enumerate(graph.outputs):
        fits = [i for i in free if graph.inputs[i].type == v.type]
        if fits and rng.random() < 0.8:
            in_place[j] = fits[int(rng.integers(len(fits)))]
            free.remove(in_place[j])
    plan = compile_graph(graph, in_place=in_place).executable
    for call in range(3):
        want = interpret(graph, [a.copy() for a in arrays])
        before = [a.copy() for a in arrays]
        got = plan(arrays)
        for j, (g, w) in enumerate(zip(got, want)):
            np.testing.assert_allclose(g, w, rtol=1e-10, atol=1e-10, err_msg=f"output {j}")
        for k, a in enumerate(arrays):
            donated = [j for j, i in in_place.items() if i == k]
            if donated:
                assert got[donated[0]] is a
            else:
                assert np.array_equal(a, before[k]), f"input {k} changed"


@pytest.mark.parametrize("form", ["add", "sub"])
@pytest.mark.parametrize("n", [2, 3])
def test_split_parts_write_only_inside_a_donated_view(form, n):
    """At 2 and 3 threads a native program splits the GEMM (25.7 MFLOP) and, in the
    "sub" form, the elementwise update (2.4 MB moved) into parts: each part writes its
    share of the donated view and nothing around it."""
    m, k, cols = 256, 64, 784
    plan = compile_graph(_sgd_graph(m, k, cols, form=form), in_place={0: 2}).executable
    before = threads.get_num_threads()
    try:
        threads.set_num_threads(n)
        _sgd_updates_inside_guards(plan, (m, k, cols), "slice", np.random.default_rng(11))
    finally:
        threads.set_num_threads(before)
    assert plan.in_place_direct == {0}
    assert any(p.splits for p in _programs(plan))
