"""The scan ops' native kernels (``lucid_codegen.kernels.scan``, ``scan_steps``):
``argmax``/``argmin``/``cumsum`` against PyTorch (exact: indices, and cumsum in every
dtype, float32 included, which both accumulate in float64), for every dtype, axis and
layout (transposed, flipped, sliced, broadcast), 0- and 1-sized axes, NaN and ties;
plans holding them run as native programs; threads split them without changing a bit;
bounds checking covers them; their kernels are cached."""
from __future__ import annotations

import numpy as np
import pytest
import torch

import lucid
from lucid.compiler import compile_graph
from lucid_codegen.runtime import bounds
from lucid_codegen.jit import cache
from lucid_codegen.runtime import plan as runtime
from lucid_codegen.kernels import scan as scan_kernels
from lucid_codegen.runtime import scan_steps
from lucid_codegen.runtime import threads
from lucid_codegen.runtime import work_split
from lucid_ir.builder import GraphBuilder
from lucid_ir.interpreter import interpret

DTYPES = ["float32", "float64", "int32", "int64", "bool"]


def _values(rng, shape, dtype):
    """Values with many ties (small integers), and NaNs in float tensors."""
    if dtype == "bool":
        return np.asarray(rng.random(shape) < 0.5)
    a = np.asarray(rng.integers(-4, 5, shape)).astype(dtype)
    if dtype.startswith("float") and a.size:
        a = np.asarray(a + rng.standard_normal(shape).astype(dtype) * (rng.random(shape) < 0.5))
        a[rng.random(shape) < 0.02] = np.nan
    return a


def _layouts(a):
    """``a``'s values in other memory layouts (same logical array)."""
    out = [("c", a)]
    if a.ndim:
        out.append(("negative strides", np.ascontiguousarray(np.flip(a, axis=-1))[..., ::-1]))
    if a.ndim >= 2:
        out.append(("transposed", np.ascontiguousarray(a.swapaxes(0, 1)).swapaxes(0, 1)))
        out.append(("fortran", np.asfortranarray(a)))
        wide = np.zeros(a.shape[:-1] + (2 * a.shape[-1],), a.dtype)
        wide[..., ::2] = a
        out.append(("strided", wide[..., ::2]))
    if a.ndim and a.shape[0] == 1:
        out.append(("broadcast", np.broadcast_to(a[:1], a.shape)))
    return out


def _graph(op, shape, dtype, **attrs):
    b = GraphBuilder()
    x = b.input(shape, dtype)
    return b.build([b.emit(op, x, **attrs)])


def _run(graph, x, calls=3):
    """The compiled plan's result, the same on every call (the later ones run the
    plan's prepared calls and its native program)."""
    plan = compile_graph(graph).executable
    first = plan([x])[0]
    for _ in range(calls - 1):
        again = plan([x])[0]
        assert again.dtype == first.dtype and np.array_equal(again, first, equal_nan=True)
    return first, plan


def _torch_arg(op, a, axis, keepdims):
    if a.dtype == np.bool_:  # PyTorch refuses bool: numpy has the same rule (first of the extreme)
        fn = np.argmax if op == "argmax" else np.argmin
        want = fn(a, axis=axis, keepdims=keepdims) if axis is not None else fn(a)
        if axis is None and keepdims:
            want = np.reshape(want, (1,) * a.ndim)
        return np.asarray(want, np.int64)
    return getattr(torch, op)(torch.from_numpy(np.array(a, order="C")), dim=axis, keepdim=keepdims).numpy()


ARG_SHAPES = [(5,), (1,), (), (4, 7), (7, 1), (1, 7), (0, 4), (3, 0, 2), (2, 3, 37), (3, 1500), (1100, 3),
              (2, 2500), (3, 4, 5, 6)]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("op", ["argmax", "argmin"])
def test_argmax_argmin_match_torch_for_every_axis_and_layout(op, dtype):
    rng = np.random.default_rng(1 + DTYPES.index(dtype))
    for shape in ARG_SHAPES:
        base = _values(rng, shape, dtype)
        for axis in [None] + list(range(len(shape))):
            if axis is None and base.size == 0 or axis is not None and shape[axis] == 0:
                continue
            keepdims = bool(rng.random() < 0.5)
            graph = _graph(op, shape, dtype, axis=axis, keepdims=keepdims)
            want = _torch_arg(op, base, axis, keepdims)
            for name, x in _layouts(base):
                got, _ = _run(graph, x, calls=2)
                assert got.dtype == np.int64 and got.shape == want.shape, (shape, axis, name)
                assert np.array_equal(got, want), (op, dtype, shape, axis, name, got, want)


def _rows_with_nans_and_ties(dtype):
    """Rows whose answers depend on the first-index and NaN rules, some across the
    kernels' chunk boundary (``scan_kernels.CHUNK``)."""
    n = 3 * scan_kernels.CHUNK + 7
    rows = []
    base = np.zeros(n, dtype)
    for spots in ([5, 2000], [1023, 1024], [2000, 3000], [0, n - 1], [n - 1]):
        r = base.copy()
        r[spots] = 7
        rows.append(r)              # ties of the maximum
        r = base.copy()
        r[spots] = -7
        rows.append(r)              # ties of the minimum
    if dtype.startswith("float"):
        for nan_at, big_at in ([2500, 100], [100, 2500], [0, 5], [n - 1, 3], [1024, 1023]):
            r = base.copy()
            r[big_at] = np.inf
            r[nan_at] = np.nan
            rows.append(r)
            r = base.copy()
            r[big_at], r[nan_at + 1 if nan_at + 1 < n else 0] = -np.inf, np.nan
            r[nan_at] = np.nan      # two NaNs: the first wins
            rows.append(r)
        rows.append(np.full(n, np.nan, dtype))
        rows.append(np.full(n, -np.inf, dtype))
        rows.append(np.full(n, np.inf, dtype))
        r = np.zeros(n, dtype)
        r[::2] = -0.0               # -0.0 and 0.0 are equal: the first wins
        rows.append(r)
    else:
        info = np.iinfo(dtype)
        rows.append(np.full(n, info.min, dtype))
        rows.append(np.full(n, info.max, dtype))
        r = np.full(n, info.min, dtype)
        r[1500] = info.max
        rows.append(r)
    return np.stack(rows)


@pytest.mark.parametrize("dtype", ["float32", "float64", "int32", "int64"])
@pytest.mark.parametrize("op", ["argmax", "argmin"])
def test_nan_and_tie_rules_are_pytorchs(op, dtype):
    """First index among ties; a NaN is the extreme for both ops (the first NaN);
    -inf/inf and the integer limits are ordinary values."""
    m = _rows_with_nans_and_ties(dtype)
    want_rows = getattr(torch, op)(torch.from_numpy(m), dim=1).numpy()
    want_cols = getattr(torch, op)(torch.from_numpy(np.ascontiguousarray(m.T)), dim=0).numpy()
    got_rows, _ = _run(_graph(op, m.shape, dtype, axis=1, keepdims=False), m)
    got_cols, _ = _run(_graph(op, m.T.shape, dtype, axis=0, keepdims=False), np.ascontiguousarray(m.T))
    wide = np.zeros((m.shape[0], 2 * m.shape[1]), m.dtype)
    wide[:, ::2] = m     # no unit stride: the kernel that goes element by element
    got_strided, _ = _run(_graph(op, m.shape, dtype, axis=1, keepdims=False), wide[:, ::2])
    assert np.array_equal(got_rows, want_rows)
    assert np.array_equal(got_cols, want_cols)
    assert np.array_equal(got_strided, want_rows)
    for k, row in enumerate(m[:6]):  # the flattened index, of a (rows, n) reshaped view too
        flat, _ = _run(_graph(op, (3, row.size // 3), dtype, axis=None, keepdims=False),
                       row[:row.size // 3 * 3].reshape(3, -1))
        assert int(flat) == int(getattr(torch, op)(torch.from_numpy(row[:row.size // 3 * 3]))), k


def test_bool_argmax_through_max_dim():
    """``max(x, dim)`` of a bool tensor takes its indices from the bool kernel; the
    user-level ``argmax`` of bool stays PyTorch's error."""
    rng = np.random.default_rng(4)
    b = rng.random((6, 1300)) < 0.001
    v, i = lucid.tensor(b).max(dim=1)
    tv, ti = torch.from_numpy(b.astype(np.int32)).max(dim=1)
    assert np.array_equal(i.numpy(), ti.numpy()) and np.array_equal(v.numpy(), tv.numpy().astype(bool))
    with pytest.raises(RuntimeError, match="argmax"):
        lucid.tensor(b).argmax()


CUMSUM_SHAPES = [(5,), (1,), (), (4, 7), (7, 1), (1, 7), (0, 4), (4, 0), (2, 3, 37), (3, 1500), (1100, 3),
                 (2, 3, 4, 5)]


@pytest.mark.parametrize("dtype", DTYPES)
def test_cumsum_matches_torch_exactly(dtype):
    rng = np.random.default_rng(10 + DTYPES.index(dtype))
    for shape in CUMSUM_SHAPES:
        base = _values(rng, shape, dtype)
        if dtype.startswith("float"):
            base = np.where(np.isnan(base), 0, base) * 997.0  # (NaN positions: their own test)
            base = base.astype(dtype)
        for axis in range(max(len(shape), 1)):
            want = torch.cumsum(torch.from_numpy(np.array(base, order="C")), dim=axis if shape else 0).numpy()
            graph = _graph("cumsum", shape, dtype, axis=axis)
            for name, x in _layouts(base):
                got, _ = _run(graph, x, calls=2)
                assert got.dtype == want.dtype and got.shape == want.shape, (shape, axis, name)
                assert np.array_equal(got, want), (dtype, shape, axis, name)


def test_cumsum_nan_inf_and_int_wrapping():
    x = np.array([[1.0, np.nan, 2.0], [np.inf, -np.inf, 1.0]], np.float32)
    got, _ = _run(_graph("cumsum", x.shape, "float32", axis=1), x)
    assert np.array_equal(got, torch.cumsum(torch.from_numpy(x), 1).numpy(), equal_nan=True)
    big = np.array([np.iinfo(np.int64).max, 1, 1], np.int64)     # int64 wraps, as PyTorch's
    got, _ = _run(_graph("cumsum", big.shape, "int64", axis=0), big)
    assert np.array_equal(got, torch.cumsum(torch.from_numpy(big), 0).numpy())
    i32 = np.full(5, np.iinfo(np.int32).max, np.int32)             # int32 sums in int64
    got, _ = _run(_graph("cumsum", i32.shape, "int32", axis=0), i32)
    assert got.dtype == np.int64 and got[-1] == 5 * int(np.iinfo(np.int32).max)


# ------------------------------------------------------------------ plans
def _programs(plan):
    return [p for p in getattr(plan._local, "programs", {}).values() if p]


def _scan_graph():
    """Scan ops among other kernels: argmax of a computed value, cumsum of an input
    read transposed, cumsum of a bool mask, argmin of everything."""
    b = GraphBuilder()
    x, y = b.input((37, 300), "float32"), b.input((300, 37), "float32")
    z = b.emit("mul", x, b.constant(2.0))
    top = b.emit("argmax", z, axis=1, keepdims=True)
    run = b.emit("cumsum", b.emit("transpose", y), axis=0)
    count = b.emit("cumsum", b.emit("gt", x, b.constant(0.0)), axis=1)
    low = b.emit("argmin", y, axis=None)
    return b.build([top, b.emit("add", run, z), count, low])


def test_plan_with_scan_ops_runs_natively():
    graph = _scan_graph()
    plan = compile_graph(graph).executable
    assert plan.kinds.count("scan") == 4
    for fn, _, _ in plan.steps:
        assert not isinstance(fn, scan_steps.ScanStep) or fn.native_job is not None
    rng = np.random.default_rng(5)
    for call in range(4):
        feeds = [rng.standard_normal(v.shape).astype(np.float32) for v in graph.inputs]
        for g, w in zip(plan(feeds), interpret(graph, feeds)):
            assert g.dtype == w.dtype
            if g.dtype == np.int64:
                assert np.array_equal(g, w)
            else:  # the cumsum in float64, the reference's in float32
                np.testing.assert_allclose(g, w, rtol=1e-4, atol=1e-4)
        if call >= 1:
            (program,) = _programs(plan)
            assert program.n_jobs == plan.n_kernels    # every kernel, scans too, as a job
    assert "lucid_scan" in plan.llvm_text()


def test_eager_calls_take_the_trampoline():
    a = np.random.default_rng(6).standard_normal((64, 1000)).astype(np.float32)
    b = GraphBuilder()
    v = b.input(a.shape, "float32")
    fused = compile_graph(b.build([b.emit("argmax", v, axis=1, keepdims=False)])).fused
    run = runtime.eager_runner(fused, [a])
    assert hasattr(run, "block")  # eager_call.fast_call's builtin
    assert np.array_equal(run(a), a.argmax(axis=1))
    x = lucid.tensor(a)
    before = runtime.kernel_launches()
    assert np.array_equal(x.argmax(dim=-1).numpy(), a.argmax(axis=1))
    assert runtime.kernel_launches() == before + 1


@pytest.fixture
def low_thresholds(monkeypatch):
    """Small work splits across threads: on the step-by-step path and in native programs."""
    monkeypatch.setattr(work_split, "PARALLEL_BYTES", 2048)
    monkeypatch.setattr(work_split, "LOOP_SPLIT_BYTES", 2048)


SPLIT_CASES = [  # (op, shape, axis, layout): row mode with many rows, one row, col mode...
    ("argmax", (64, 1000), 1, "c"), ("argmin", (1, 5000), 1, "c"), ("argmax", (3000,), None, "c"),
    ("argmax", (40, 900), 0, "c"), ("argmin", (2, 3000), 0, "c"), ("argmax", (64, 300), 1, "fortran"),
    ("cumsum", (64, 1000), 1, "c"), ("cumsum", (500, 64), 0, "c"), ("cumsum", (3, 4000), 0, "c"),
    ("cumsum", (64, 300), 1, "fortran"),
]


@pytest.mark.parametrize("op,shape,axis,layout", SPLIT_CASES)
def test_threads_split_without_changing_a_bit(low_thresholds, op, shape, axis, layout):
    rng = np.random.default_rng(7)
    x = _values(rng, shape, "float32")
    if op == "cumsum":
        x = np.where(np.isnan(x), 0, x).astype(np.float32)
    if layout == "fortran":
        x = np.asfortranarray(x)
    attrs = {"axis": axis} if op == "cumsum" else {"axis": axis, "keepdims": False}
    graph = _graph(op, shape, "float32", **attrs)
    splits = (op, shape) not in {("argmin", (1, 5000)), ("argmax", (3000,))}  # one row along the axis
    results = {}
    for n in (1, 2):
        threads.set_num_threads(n)
        got, plan = _run(graph, x, calls=3)
        results[n] = got
        (program,) = _programs(plan)
        assert program.splits == (n == 2 and splits)
    assert np.array_equal(results[1], results[2], equal_nan=True)
    ref = interpret(graph, [x])[0]
    if op == "cumsum":
        np.testing.assert_allclose(results[1], ref, rtol=1e-4, atol=1e-3)
    else:
        assert np.array_equal(results[1], ref)


def test_native_programs_split_big_scans(low_thresholds):
    threads.set_num_threads(2)
    x = np.random.default_rng(8).standard_normal((64, 1000)).astype(np.float32)
    for op, attrs in (("argmax", {"axis": 1, "keepdims": False}), ("cumsum", {"axis": 0})):
        _, plan = _run(_graph(op, x.shape, "float32", **attrs), x)
        (program,) = _programs(plan)
        assert program.splits and program.num_threads == 2


# ------------------------------------------------------------------ bounds, cache
@pytest.mark.parametrize("op", ["argmax", "cumsum"])
def test_bounds_checking_runs_scan_kernels_in_guarded_buffers(monkeypatch, op):
    monkeypatch.setenv("LUCID_CHECK_BOUNDS", "1")
    rng = np.random.default_rng(9)
    for shape in [(1,), (7, 1), (3, 1500), (1100, 3), (2, 3, 37)]:
        base = rng.standard_normal(shape).astype(np.float64)
        for axis in range(len(shape)):
            attrs = {"axis": axis} if op == "cumsum" else {"axis": axis, "keepdims": True}
            graph = _graph(op, shape, "float64", **attrs)
            plan = compile_graph(graph).executable
            assert isinstance(plan, bounds.CheckedPlan)
            for _, x in _layouts(base):
                (got,) = plan([x])
                want = interpret(graph, [x])[0]
                np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)


def test_bounds_checking_catches_a_scan_kernel_writing_past_its_output(monkeypatch):
    """A call laid out for one row too many writes one index past the output: caught."""
    monkeypatch.setenv("LUCID_CHECK_BOUNDS", "1")
    graph = _graph("argmax", (4, 50), "float32", axis=1, keepdims=False)
    real = scan_steps.ScanStep._plan_arg

    def one_row_too_many(self, x):
        prep = real(self, x)
        prep.args = (0, prep.args[1] + 1, 0, 1)
        prep.words[-2] += 1      # the kept dimension's size: the extra row exists for the kernel
        return prep
    monkeypatch.setattr(scan_steps.ScanStep, "_plan_arg", one_row_too_many)
    plan = compile_graph(graph).executable
    x = np.zeros((5, 50), np.float32)[:4]   # the extra row reads real memory
    with pytest.raises(RuntimeError, match="bounds check.*argmax"):
        plan([x])


def test_scan_kernels_are_cached_on_disk(tmp_path, monkeypatch):
    monkeypatch.setenv("LUCID_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.delenv("LUCID_CACHE", raising=False)
    monkeypatch.setattr(scan_kernels, "_FUNCTIONS", {})
    cache.reset_memory_cache()
    try:
        spec = ("cumsum", "int32", "row", scan_kernels.lanes_for())
        scan_kernels.kernel(spec)
        assert cache.stats()["compiles"] == 1
        labels = [cache.entry_metadata(name)["label"] for name, _, _ in cache.list_entries()]
        assert labels == ["scan cumsum|int32|row|%d" % spec[3]]
        cache.reset_memory_cache()
        monkeypatch.setattr(scan_kernels, "_FUNCTIONS", {})
        scan_kernels.kernel(spec)
        assert (cache.stats()["compiles"], cache.stats()["hits_disk"]) == (0, 1)
    finally:
        cache.reset_memory_cache()
