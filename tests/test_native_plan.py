"""Plans run from native code (lucid_codegen.runtime.native_plan): the same results as the
step-by-step path, new addresses followed, outputs a caller keeps never overwritten."""
from __future__ import annotations

import time

import numpy as np
import pytest

import lucid
import lucid.nn as nn
import lucid.nn.functional as F
from lucid.compiler import compile_graph
from lucid_codegen.runtime import plan as runtime
from lucid_codegen.runtime import threads
from lucid_ir.builder import GraphBuilder
from lucid_ir.interpreter import interpret


def _programs(plan):
    return [p for p in getattr(plan._local, "programs", {}).values() if p]


def _mlp_graph():
    b = GraphBuilder()
    x, w1, b1, w2 = b.input((37, 29)), b.input((61, 29)), b.input((61,)), b.input((5, 61))
    h = b.emit("maximum", b.emit("add", b.emit("matmul", x, w1, trans_b=True), b1), b.constant(0.0))
    z = b.emit("matmul", h, w2, trans_b=True)
    m = b.emit("max", z, axes=(1,), keepdims=True)
    e = b.emit("exp", b.emit("sub", z, m))
    s = b.emit("sum", e, axes=(1,), keepdims=True)
    out = b.emit("div", e, s)
    flat = b.emit("reshape", out, shape=(37 * 5,))
    return b.build([flat, h, s, x])  # a view of a result, an internal value, an input


def _feeds(rng, graph):
    return [rng.standard_normal(v.shape).astype(np.float32) for v in graph.inputs]


def test_native_program_matches_the_reference_and_follows_new_addresses():
    graph = _mlp_graph()
    plan = compile_graph(graph).executable
    rng = np.random.default_rng(0)
    for k in range(6):
        feeds = _feeds(rng, graph)
        got = plan(feeds)
        for g, w in zip(got, interpret(graph, feeds)):
            np.testing.assert_allclose(g, w, rtol=2e-5, atol=2e-6)
        if k >= 2:
            assert _programs(plan), "the plan should run natively from its second call on"
    assert got[3] is not feeds[0] and np.array_equal(got[3], feeds[0])  # an input output is a copy


def test_outputs_the_caller_keeps_are_not_overwritten():
    graph = _mlp_graph()
    plan = compile_graph(graph).executable
    rng = np.random.default_rng(1)
    feeds = [_feeds(rng, graph) for _ in range(4)]
    plan(feeds[0]), plan(feeds[0])
    kept = [plan(f) for f in feeds]             # every call's outputs held at once
    for f, outs in zip(feeds, kept):
        for g, w in zip(outs, interpret(graph, f)):
            np.testing.assert_allclose(g, w, rtol=2e-5, atol=2e-6)
    # dropped outputs: their buffers are reused, results still right
    for f in feeds:
        outs = plan(f)
        np.testing.assert_allclose(outs[0], interpret(graph, f)[0], rtol=2e-5, atol=2e-6)
        del outs


def test_native_program_with_split_gemms_and_other_layouts():
    b = GraphBuilder()
    x, w, r = b.input((256, 300)), b.input((200, 300)), b.input((256, 200))
    y = b.emit("matmul", x, w, trans_b=True)
    out = b.emit("select", b.emit("gt", r, b.constant(0.0)), y, b.constant(0.0))
    graph = b.build([b.emit("tanh", out), out])
    plan = compile_graph(graph).executable
    rng = np.random.default_rng(2)
    old = threads.get_num_threads()
    try:
        for n in (1, 2, 2, 1, 2, 3):
            threads.set_num_threads(n)
            feeds = _feeds(rng, graph)
            if n == 3:  # a transposed view: another layout, another program
                feeds[1] = np.ascontiguousarray(feeds[1].T).T
            for g, want in zip(plan(feeds), interpret(graph, feeds)):
                np.testing.assert_allclose(g, want, rtol=1e-4, atol=1e-4)
    finally:
        threads.set_num_threads(old)
    assert len(_programs(plan)) == 3  # one per thread count (and layout): 1, 2, 3 transposed
    assert {p.num_threads: p.splits for p in _programs(plan)} == {1: False, 2: True, 3: True}


def test_training_is_identical_with_and_without_native_plans(monkeypatch):
    def train(native: bool):
        monkeypatch.setattr(runtime, "NATIVE_PLANS", native)
        lucid.random.seed(3)
        model = nn.Sequential(nn.Linear(13, 17), nn.ReLU(), nn.Linear(17, 4))
        opt = lucid.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
        step = lucid.compile(lambda x, y: F.cross_entropy(model(x), y))
        rng = np.random.default_rng(4)
        losses = []
        for _ in range(6):
            x = lucid.Tensor(rng.standard_normal((11, 13)).astype(np.float32))
            y = rng.integers(0, 4, 11)
            opt.zero_grad()
            loss = step(x, y)
            loss.backward()
            opt.step()
            losses.append(loss.item())
        return losses, [p.numpy().copy() for p in model.parameters()], step
    native, params, step = train(True)
    program = next(iter(step._programs.values()))
    assert _programs(program.compiled_forward.executable) and _programs(program.compiled_backward.executable)
    plain, params_plain, step = train(False)
    program = next(iter(step._programs.values()))
    assert not _programs(program.compiled_backward.executable)
    assert native == plain
    for a, b in zip(params, params_plain):
        assert np.array_equal(a, b)


def test_bounds_checked_plans_stay_step_by_step(monkeypatch):
    monkeypatch.setenv("LUCID_CHECK_BOUNDS", "1")
    graph = _mlp_graph()
    plan = compile_graph(graph).executable
    feeds = _feeds(np.random.default_rng(5), graph)
    for _ in range(3):
        plan(feeds)
    assert not _programs(plan)


def test_array_subclasses_run_step_by_step():
    class Sub(np.ndarray):
        pass
    graph = _mlp_graph()
    plan = compile_graph(graph).executable
    feeds = _feeds(np.random.default_rng(6), graph)
    plan(feeds), plan(feeds)
    subs = [f.view(Sub) for f in feeds]   # same layouts, not plain numpy arrays
    for g, w in zip(plan(subs), interpret(graph, feeds)):
        np.testing.assert_allclose(g, w, rtol=2e-5, atol=2e-6)


def test_gemm_scratch_follows_the_threads_workspace_as_it_grows():
    from lucid_codegen.runtime import native_plan

    def linear_graph(m, k, n):
        b = GraphBuilder()
        x, w = b.input((m, k)), b.input((n, k))
        y = b.emit("matmul", x, w, trans_b=True)
        return b.build([b.emit("exp", y)])   # a GEMM and a loop: a two-kernel plan
    small, big = linear_graph(9, 700, 300), linear_graph(40, 1500, 600)
    plans = [compile_graph(g).executable for g in (small, big)]
    rng = np.random.default_rng(7)
    native_plan._LOCAL.__dict__.pop("ws", None)    # start this thread with no workspace
    for graph, plan in ((small, plans[0]), (big, plans[1]), (small, plans[0])):
        for _ in range(3):
            feeds = [0.1 * f for f in _feeds(rng, graph)]   # sums of ~1
            np.testing.assert_allclose(plan(feeds)[0], interpret(graph, feeds)[0], rtol=1e-4, atol=1e-4)
        if graph is small:
            assert _programs(plan)[0].ws_bytes <= native_plan._LOCAL.ws.nbytes
    assert _programs(plans[1])[0].ws_bytes > _programs(plans[0])[0].ws_bytes


def _split_plan():
    """Two GEMMs above the split threshold (one split by rows, one by columns, one with a
    residual) and a loop kernel between them."""
    b = GraphBuilder()
    x, w, r, v = b.input((263, 131)), b.input((97, 131)), b.input((263, 97)), b.input((97, 301))
    y = b.emit("add", b.emit("matmul", x, w, trans_b=True), r)            # 263 x 97: rows
    z = b.emit("matmul", b.emit("tanh", y), v)
    graph = b.build([y, b.emit("transpose", z)])                          # 263 x 301
    return graph, compile_graph(graph).executable


def _run_at(plan, feeds, n, times=3):
    old = threads.get_num_threads()
    try:
        threads.set_num_threads(n)
        for _ in range(times):
            outs = [np.array(o) for o in plan(feeds)]
        return outs
    finally:
        threads.set_num_threads(old)


def test_split_gemms_give_the_same_bits_at_every_thread_count():
    graph, plan = _split_plan()
    feeds = _feeds(np.random.default_rng(5), graph)
    ref = _run_at(plan, feeds, 1)
    for want, got in zip(interpret(graph, feeds), ref):
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4)
    for n in (2, 3, 2):
        for a, b in zip(ref, _run_at(plan, feeds, n)):
            assert np.array_equal(a, b)
    assert {p.num_threads: p.splits for p in _programs(plan)} == {1: False, 2: True, 3: True}


def test_the_caller_runs_the_parts_of_workers_that_sleep(monkeypatch):
    """A worker asleep when the program posts its part is never woken by native code:
    the join claims the part and runs it on the calling thread."""
    graph, plan = _split_plan()
    feeds = _feeds(np.random.default_rng(6), graph)
    ref = _run_at(plan, feeds, 1)

    def hold_without_waking(pool, P):
        if not pool._busy.acquire(False):
            return 0
        pool._ensure_workers(P - 1)
        return pool._ctl.ctypes.data
    old = threads.get_num_threads()
    try:
        threads.set_num_threads(2)
        plan(feeds), plan(feeds)  # the 2-thread program exists, workers started
        monkeypatch.setattr(threads._Pool, "hold", hold_without_waking)
        pool = threads._POOL
        deadline = time.monotonic() + 30.0  # a hang guard: it sleeps within ~1 ms
        while time.monotonic() < deadline:  # an idle worker sleeps after polling for threads.SPIN_SECONDS
            threads.quiesce()
            time.sleep(0.01)
            if pool._ctl[pool._slot(1, 1)] == 1:
                break
        assert pool._ctl[pool._slot(1, 1)] == 1  # worker 1 sleeps
        for _ in range(3):
            for a, b in zip(ref, plan(feeds)):
                assert np.array_equal(a, b)
        assert pool._ctl[pool._slot(1, 1)] == 1  # it slept through: the caller ran its parts
        monkeypatch.undo()
        for a, b in zip(ref, plan(feeds)):  # woken again: it takes its parts and finds them all
            assert np.array_equal(a, b)
        threads.run_native([])  # the Python side of the pool still works
    finally:
        threads.set_num_threads(old)


def test_threads_sharing_split_programs():
    """Threads running split programs at once: one holds the pool, the others run their
    parts one after another; all of them get the right bits."""
    import threading as th
    graph, plan = _split_plan()
    rng = np.random.default_rng(7)
    cases = [_feeds(rng, graph) for _ in range(3)]
    refs = [_run_at(plan, f, 1, times=1) for f in cases]
    errors = []

    def work(k):
        try:
            for i in range(25):
                f = cases[(k + i) % 3]
                for a, b in zip(refs[(k + i) % 3], plan(f)):
                    if not np.array_equal(a, b):
                        errors.append((k, i))
        except Exception as e:  # noqa: BLE001
            errors.append(e)
    old = threads.get_num_threads()
    try:
        threads.set_num_threads(2)
        workers = [th.Thread(target=work, args=(k,)) for k in range(3)]
        for t in workers:
            t.start()
        for t in workers:
            t.join(60)
        assert not any(t.is_alive() for t in workers), "a thread hangs"
    finally:
        threads.set_num_threads(old)
    assert errors == []


def test_big_elementwise_kernels_split_in_native_programs():
    """An elementwise kernel moving >= LOOP_SPLIT_BYTES splits into whole outer rows (a
    strided operand keeps two dimensions) or lane-aligned inner ranges (contiguous
    operands collapse to one row); the same bits at every thread count."""
    from lucid_codegen.runtime import native_plan
    b = GraphBuilder()
    x, y, s = b.input((301, 517)), b.input((301, 517)), b.input(())
    out = b.emit("sub", x, b.emit("mul", s, b.emit("tanh", y)))
    graph = b.build([out, b.emit("sum", out, axes=(1,))])
    plan = compile_graph(graph).executable
    rng = np.random.default_rng(8)
    for strided in (False, True):
        feeds = _feeds(rng, graph)
        if strided:  # x read through a transposed view: rows stay rows
            feeds[0] = np.ascontiguousarray(feeds[0].T).T
        ref = _run_at(plan, feeds, 1)
        for want, got in zip(interpret(graph, feeds), ref):
            np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)
        for n in (2, 3):
            for a, c in zip(ref, _run_at(plan, feeds, n)):
                assert np.array_equal(a, c)
    split = [p for p in _programs(plan) if p.num_threads > 1]
    assert split and all(p.splits for p in split)
    assert native_plan._ranges(native_plan.LoopJob(None, [], (0, 1, 0, 1000), [], [], lanes=16,
                                                   nbytes=1 << 20), 3) == [
        (0, 1, 0, 336), (0, 1, 336, 672), (0, 1, 672, 1000)]
    assert native_plan._ranges(native_plan.LoopJob(None, [], (0, 7, 0, 9), [], [], lanes=16,
                                                   nbytes=1 << 20), 2) == [(0, 3, 0, 9), (3, 7, 0, 9)]


def test_reductions_split_in_native_programs():
    """Row reductions split into whole kept rows, column sums kept per batch into whole
    batches; one kept row does not split (a full sum; a matrix's column sums, which
    would read rows other threads wrote), unless it is a matrix too big for the caches
    with long rows (column ranges then). Every output element is one sequential
    reduction: the same bits at every thread count, and the reference's values. Also
    reductions big enough for the Python pool (they used to keep their plan from
    running natively)."""
    from lucid_codegen.runtime import native_plan
    b = GraphBuilder()
    x, y, z = b.input((1031, 517)), b.input((1031, 517)), b.input((6, 1500, 2000))
    big = b.input((700, 4100))
    prod = b.emit("mul", x, b.emit("tanh", y))
    outs = [b.emit("sum", prod, axes=(0,)),                 # column sums: one row, 517 columns
            b.emit("sum", b.emit("exp", y), axes=(1,)),     # row sums: 1031 kept rows
            b.emit("max", prod, axes=()),                   # a full reduction
            b.emit("sum", z, axes=(1,)),                    # column sums per batch: 6 rows
            b.emit("sum", b.emit("mul", x, y), axes=()),
            b.emit("sum", big, axes=(0,))]                 # 11.5 MB of column sums, long rows
    graph = b.build(outs)
    plan = compile_graph(graph).executable
    seen = []
    real = native_plan._ranges
    feeds = _feeds(np.random.default_rng(12), graph)
    ref = _run_at(plan, feeds, 1)
    for want, got in zip(interpret(graph, feeds), ref):
        np.testing.assert_allclose(got, want, rtol=2e-4, atol=2e-3)
    try:
        native_plan._ranges = lambda job, nt: seen.append((job.args, real(job, nt))) or seen[-1][1]
        for n in (2, 3):
            for a, c in zip(ref, _run_at(plan, feeds, n)):
                assert np.array_equal(a, c)
    finally:
        native_plan._ranges = real
    split = {args: len(parts) for args, parts in seen if parts is not None}
    assert (0, 1, 0, 517) not in split                # a matrix's column sums stay whole
    assert split.get((0, 1, 0, 4100)) in (2, 3)       # but a big one's split into column ranges
    assert split.get((0, 1031, 0, 0)) in (2, 3)       # the row sums' rows
    assert split.get((0, 6, 0, 2000)) in (2, 3)       # the batches of column sums
    assert (0, 1, 0, 0) not in split                  # full reductions stay whole
    programs = [p for p in _programs(plan) if p.num_threads > 1]
    assert programs and all(p.splits for p in programs)


def _warm(plan, feeds, times=3):
    for _ in range(times):
        plan(feeds)
    assert _programs(plan) and plan._local.last is not None


def test_after_the_program_exists_calls_do_not_run_step_by_step(monkeypatch):
    graph = _mlp_graph()
    plan = compile_graph(graph).executable
    rng = np.random.default_rng(9)
    _warm(plan, _feeds(rng, graph))

    def step_by_step(arrays):
        raise AssertionError("a call with the program's layouts ran step by step")
    monkeypatch.setattr(plan, "execute", step_by_step)
    for _ in range(3):
        feeds = _feeds(rng, graph)
        for g, w in zip(plan(feeds), interpret(graph, feeds)):
            np.testing.assert_allclose(g, w, rtol=2e-5, atol=2e-6)


def test_the_native_check_refuses_other_layouts_before_running():
    """Same shapes read through other strides, the same strides with another dtype, a
    0-d array for a vector, too few arrays: the program runs none of them (the general
    call does what it always did: right results, or the plan's errors)."""
    b = GraphBuilder()
    x, y, s = b.input((6, 5)), b.input((6, 5)), b.input(())
    graph = b.build([b.emit("exp", b.emit("add", x, b.emit("mul", s, y))), b.emit("sum", y, axes=(0,))])
    plan = compile_graph(graph).executable
    rng = np.random.default_rng(10)
    _warm(plan, _feeds(rng, graph))
    same_strides = _feeds(rng, graph)
    same_strides[0] = np.ones((6, 5), np.int32)           # strides (20, 4), like float32
    with pytest.raises(TypeError, match="expected float32, got int32"):
        plan(same_strides)
    feeds = _feeds(rng, graph)
    feeds[1] = np.ascontiguousarray(feeds[1].T).T         # (6, 5) with strides (4, 24)
    for g, w in zip(plan(feeds), interpret(graph, feeds)):
        np.testing.assert_allclose(g, w, rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match="takes 3 inputs, got 2"):
        plan(_feeds(rng, graph)[:2])
    feeds = _feeds(rng, graph)                            # and the program still runs
    for g, w in zip(plan(feeds), interpret(graph, feeds)):
        np.testing.assert_allclose(g, w, rtol=1e-5, atol=1e-6)


def test_dropped_outputs_reuse_their_buffers_held_ones_are_kept():
    graph = _mlp_graph()
    plan = compile_graph(graph).executable
    rng = np.random.default_rng(11)
    feeds = _feeds(rng, graph)
    _warm(plan, feeds)
    address = plan(feeds)[0].__array_interface__["data"][0]
    assert plan(feeds)[0].__array_interface__["data"][0] == address   # dropped: reused
    held = plan(feeds)
    again = plan(_feeds(rng, graph))
    assert again[0].__array_interface__["data"][0] != held[0].__array_interface__["data"][0]
    np.testing.assert_allclose(held[0], interpret(graph, feeds)[0], rtol=2e-5, atol=2e-6)


def test_one_kernel_plans_run_from_their_program():
    """A plan of one GEMM (with bias and ReLU) runs natively from its third call on,
    with the same bits as the kernel's own call."""
    b = GraphBuilder()
    x, w, c = b.input((8, 8)), b.input((8, 8)), b.input((8,))
    y = b.emit("maximum", b.emit("add", b.emit("matmul", x, w, trans_b=True), c), b.constant(0.0))
    graph = b.build([y])
    plan = compile_graph(graph).executable
    rng = np.random.default_rng(12)
    feeds = _feeds(rng, graph)
    first = np.array(plan(feeds)[0])          # the kernel's own call
    _warm(plan, feeds)
    assert np.array_equal(plan(feeds)[0], first)
    assert plan.run_prepared(feeds) is not None
    np.testing.assert_allclose(first, interpret(graph, feeds)[0], rtol=1e-5, atol=1e-6)


def test_single_prepared_gives_the_one_output_of_the_last_program():
    """``Plan.single_prepared``: a one-output plan's prepared call returning the array. A
    program whose output is its one buffer is called directly (a new buffer when the
    caller still holds the last one); another goes through ``NativeProgram.run``; other
    layouts, or no program yet, give None; a plan of two outputs has no such call."""
    rng = np.random.default_rng(5)
    b = GraphBuilder()
    x, w = b.input((8, 8)), b.input((8, 8))
    y = b.emit("maximum", b.emit("matmul", x, w, trans_b=True), b.constant(0.0))
    direct = compile_graph(b.build([y])).executable
    b = GraphBuilder()
    x, w = b.input((8, 8)), b.input((8, 8))
    viewed = compile_graph(b.build([b.emit("reshape", b.emit("exp", b.emit("matmul", x, w)), shape=(64,))])).executable
    for plan, one_buffer in ((direct, True), (viewed, False)):
        run = plan.single_prepared()
        feeds = _feeds(rng, plan.graph)
        assert run(feeds) is None                       # no program yet: nothing ran
        _warm(plan, feeds)
        assert plan._local.last.one_buffer is one_buffer
        want = interpret(plan.graph, feeds)[0]
        held = run(feeds)
        np.testing.assert_allclose(held, want, rtol=1e-5, atol=1e-6)
        again = run(feeds)                              # ``held`` is not overwritten
        assert again is not held
        np.testing.assert_array_equal(again, held)
        kept = id(again)
        del again
        assert id(run(feeds)) == kept or not one_buffer  # a dropped output's buffer is reused
        assert run([f[:, ::-1] for f in feeds]) is None  # other layouts: the general call
    b = GraphBuilder()
    x = b.input((4,))
    assert compile_graph(b.build([b.emit("exp", x), b.emit("neg", x)])).executable.single_prepared() is None


def test_gil_released_only_around_programs_with_work():
    from lucid_codegen.runtime import program_call

    def linear_graph(m, k, n):
        b = GraphBuilder()
        x, w = b.input((m, k)), b.input((n, k))
        return b.build([b.emit("tanh", b.emit("matmul", x, w, trans_b=True))])
    rng = np.random.default_rng(13)
    released = {}
    for shape in ((4, 8, 4), (64, 512, 256)):      # 256 flop, 16.8 Mflop
        graph = linear_graph(*shape)
        plan = compile_graph(graph).executable
        feeds = _feeds(rng, graph)
        _warm(plan, feeds)
        released[shape] = bool(plan._local.last.entry.block[program_call.SAVE_THREAD])
        np.testing.assert_allclose(plan(feeds)[0], interpret(graph, feeds)[0], rtol=1e-4, atol=1e-4)
    assert released == {(4, 8, 4): False, (64, 512, 256): True}


@pytest.mark.parametrize("escapes", [False, True])
def test_slices_at_offsets_and_copying_reshapes_run_natively(escapes):
    """The split of attention's q, k, v (slices of one buffer at byte offsets) feeding
    kernels, and a ``transpose(...).reshape(...)`` that must copy: a native program, the
    same values as the interpreter, also when the copy is itself an output."""
    b = GraphBuilder()
    x, w = b.input((4, 6, 9)), b.input((4, 3, 5))
    k = b.emit("slice", x, starts=(0, 0, 3), stops=(4, 6, 6), steps=(1, 1, 1))
    v = b.emit("slice", x, starts=(0, 0, 6), stops=(4, 6, 9), steps=(1, 1, 1))
    t = b.emit("transpose", b.emit("add", k, b.emit("tanh", v)), perm=(1, 0, 2))
    flat = b.emit("reshape", t, shape=(6, 12))           # a copy: t is not contiguous
    out = b.emit("mul", flat, b.constant(2.0))
    y = b.emit("matmul", v, w)                           # a GEMM reading a slice at an offset
    graph = b.build([out, y] + ([flat] if escapes else []))
    plan = compile_graph(graph).executable
    rng = np.random.default_rng(3)
    for _ in range(4):
        feeds = _feeds(rng, graph)
        for got, want in zip(plan(feeds), interpret(graph, feeds)):
            np.testing.assert_allclose(got, want, rtol=2e-5, atol=2e-6)
    programs = _programs(plan)
    assert programs and programs[0].copied_views


_BACKGROUND_SCRIPT = r"""
import os, sys, time
import numpy as np
from lucid.compiler import compile_graph
from lucid_codegen.runtime import native_runner, plan_kernels
sys.path.insert(0, sys.argv[1])
from test_native_plan import _mlp_graph, _feeds, _programs
graph = _mlp_graph()
plan = compile_graph(graph).executable
feeds = _feeds(np.random.default_rng(0), graph)
first = plan(feeds)
assert not native_runner._LIB and not _programs(plan), "the first call waited for the runner"
deadline = time.monotonic() + 120
while not plan_kernels.runner_ready():
    assert time.monotonic() < deadline
    time.sleep(0.01)
pid = os.fork()            # (the compilation may still run: the fork waits for it)
if pid == 0:               # the child compiles and runs plans of its own, with a pool of its own
    code = 1
    try:
        from lucid_ir.builder import GraphBuilder
        from lucid_ir.interpreter import interpret
        b = GraphBuilder()
        x, w = b.input((19, 23)), b.input((7, 23))
        t = b.emit("tanh", b.emit("matmul", x, w, trans_b=True))
        new = b.build([b.emit("sum", b.emit("exp", t), axes=(1,), keepdims=True), t])
        other = compile_graph(new).executable     # kernels the parent never compiled
        data = _feeds(np.random.default_rng(1), new)
        outs = [other(data) for _ in range(3)]
        want = interpret(new, data)
        ok = all(np.allclose(a, b, rtol=1e-5, atol=1e-6) for o in outs for a, b in zip(o, want))
        code = 0 if ok and _programs(other) else 3
    finally:
        os._exit(code)
deadline_child = time.monotonic() + 120
while True:
    done, status = os.waitpid(pid, os.WNOHANG)
    if done:
        break
    assert time.monotonic() < deadline_child, "the forked child hangs"
    time.sleep(0.05)
assert os.waitstatus_to_exitcode(status) == 0, status
again = plan(feeds)        # builds the program (the runner is compiled: linked now)
native = plan(feeds)       # runs it
assert _programs(plan) and plan._local.last is not None
for a, b, c in zip(first, again, native):
    assert a.tobytes() == b.tobytes() == c.tobytes()
print("ok")
"""


def test_runner_compiles_in_the_background_of_a_first_call(tmp_path):
    """In a process with an empty cache and two compile threads, a plan's first call
    returns without compiling the plan runner's library (it compiles in the background);
    a fork meanwhile leaves a child that compiles and runs plans of its own (natively,
    the same bits); once the library is there, a call builds the native program, which
    gives the same bits."""
    import os
    import subprocess
    import sys
    env = dict(os.environ, LUCID_CACHE_DIR=str(tmp_path), LUCID_COMPILE_THREADS="2")
    out = subprocess.run([sys.executable, "-c", _BACKGROUND_SCRIPT, os.path.dirname(__file__)],
                         env=env, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0 and out.stdout.strip() == "ok", out.stderr
