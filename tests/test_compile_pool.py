"""Parallel compilation: the compile pool (lucid_codegen/jit/compile_pool.py), LLVM's long
calls outside llvmlite's lock (jit.py) giving the same object files as the locked
route, ``cache.precompile``, and one GEMM build per spec however many threads ask."""
import contextvars
import threading
import time

import llvmlite.ir as ir
import numpy as np
import pytest

from lucid_codegen.jit import cache
from lucid_codegen.jit import compile_pool
from lucid_codegen.jit import llvm as jit
from lucid_codegen.gemm.kernel import GemmSpec
from lucid_codegen.gemm import call as gemm_call
from lucid_codegen.gemm.microkernel import Blocking
from gemm_specs import activation, chain_spec, gated


def _module(name: str, k: int) -> ir.Module:
    m = ir.Module(name)
    i64 = ir.IntType(64)
    f = ir.Function(m, ir.FunctionType(i64, [i64]), name)
    b = ir.IRBuilder(f.append_basic_block())
    acc = f.args[0]
    for j in range(k):
        acc = b.add(b.mul(acc, i64(3 + j)), i64(j))
    b.ret(acc)
    return m


@pytest.fixture
def two_threads(monkeypatch):
    monkeypatch.setenv("LUCID_COMPILE_THREADS", "2")


def test_run_all_keeps_order_and_runs_on_the_pool(two_threads):
    names = compile_pool.run_all([lambda i=i: (i, threading.current_thread().name) for i in range(6)])
    assert [i for i, _ in names] == list(range(6))
    assert all(name.startswith("lucid-compile") for _, name in names)


def test_run_all_raises_the_first_error_after_every_task_finished(two_threads):
    finished = []

    def slow():
        time.sleep(0.05)
        finished.append(1)

    def bad():
        raise KeyError("boom")
    with pytest.raises(KeyError, match="boom"):
        compile_pool.run_all([bad, slow, slow])
    assert finished == [1, 1]


def test_a_task_calling_run_all_does_not_wait_for_the_pool(two_threads):
    inner = lambda: compile_pool.run_all([lambda: 1, lambda: 2, lambda: 3])
    # more nested callers than threads: would deadlock if they waited for pool threads
    assert compile_pool.run_all([inner] * 4) == [[1, 2, 3]] * 4


def test_tasks_run_in_the_callers_context(two_threads):
    var = contextvars.ContextVar("v", default="unset")
    var.set("caller")
    assert compile_pool.run_all([var.get, var.get]) == ["caller", "caller"]


@pytest.mark.parametrize("value", ["0", "-1", "two"])
def test_a_bad_thread_count_is_a_clear_error(monkeypatch, value):
    monkeypatch.setenv("LUCID_COMPILE_THREADS", value)
    with pytest.raises(ValueError, match="LUCID_COMPILE_THREADS"):
        compile_pool.threads()


def test_one_thread_runs_on_the_caller(monkeypatch):
    monkeypatch.setenv("LUCID_COMPILE_THREADS", "1")
    assert compile_pool.run_all([lambda: threading.current_thread().name] * 2) == [threading.current_thread().name] * 2


def test_unlocked_parallel_compiles_give_the_locked_routes_objects(two_threads, monkeypatch):
    modules = [_module(f"f{i}", 20 + i) for i in range(6)]
    parallel = compile_pool.run_all([lambda m=m: jit.compile_to_object(m) for m in modules])
    assert jit.unlocked_calls()
    monkeypatch.setattr(jit, "_RAW", None)   # the public, locked route
    assert parallel == [jit.compile_to_object(m) for m in modules]


def test_the_unlocked_route_can_be_switched_off(monkeypatch):
    monkeypatch.setenv("LUCID_COMPILE_UNLOCKED", "0")
    assert jit._raw_calls() is None
    monkeypatch.delenv("LUCID_COMPILE_UNLOCKED")
    assert jit._raw_calls() is not None


def test_a_parse_error_is_raised_from_the_unlocked_route():
    with pytest.raises(RuntimeError, match="parsing error"):
        jit.compile_to_object("define i64 @f( {")


def test_precompile_compiles_once_and_load_only_links(tmp_path, monkeypatch):
    monkeypatch.setenv("LUCID_CACHE_DIR", str(tmp_path))
    key = f"test_pool:{time.time_ns()}"
    build = lambda: _module("g", 5)
    before = cache.stats()["compiles"]
    cache.precompile(key, build, ["g"])
    cache.precompile(key, build, ["g"])   # already compiled: nothing
    assert cache.stats()["compiles"] == before + 1
    lib = cache.load_or_compile(key, build, ["g"])
    assert cache.stats()["compiles"] == before + 1
    import ctypes
    f = ctypes.CFUNCTYPE(ctypes.c_int64, ctypes.c_int64)(lib.address("g"))
    x = 7
    for j in range(5):
        x = x * (3 + j) + j
    assert f(7) == x


def test_one_gemm_build_per_spec_however_many_threads_ask(two_threads, monkeypatch):
    built = []
    real = gemm_call.Gemm

    class Counting(real):
        def __init__(self, spec, *shape):
            built.append(spec)
            time.sleep(0.05)   # widen the window two threads could both build in
            super().__init__(spec, *shape)
    monkeypatch.setattr(gemm_call, "Gemm", Counting)
    blocking = Blocking(W=4, NV=1, MR=4, MC=16, KC=32, NC=64, UNROLL=1)   # specs no other test built
    specs = [GemmSpec("float64", blocking=blocking), chain_spec("float64", bias=True, blocking=blocking)]
    got = []
    workers = [threading.Thread(target=lambda s=s: got.append(gemm_call.get_gemm(s)))
               for s in specs * 3]
    for w in workers:
        w.start()
    for w in workers:
        w.join(timeout=120)
    assert not any(w.is_alive() for w in workers), "get_gemm deadlocked"
    assert sorted(map(str, built)) == sorted(map(str, specs))
    assert len({id(g) for g in got}) == 2
    a = np.arange(12.0).reshape(3, 4)
    out = np.empty((3, 3))
    gemm_call.get_gemm(specs[1])(a, a.T[:, :3].copy(), out, bias=np.ones(3))
    np.testing.assert_allclose(out, a @ a.T[:, :3] + 1)


def _compiles_after(monkeypatch, tmp_path, name: str) -> list:
    """A list that receives the cache's compile count each time the plan's
    ``plan_kernels.<name>`` returns (the cache directory: ``tmp_path``)."""
    from lucid_codegen.runtime import plan_kernels
    from lucid_codegen.runtime import plan as runtime
    monkeypatch.setenv("LUCID_CACHE_DIR", str(tmp_path))
    after, real = [], getattr(plan_kernels, name)

    def recording(arg):
        real(arg)
        after.append(cache.stats()["compiles"])
    monkeypatch.setattr(runtime, name, recording)
    return after


def test_a_plans_first_run_finds_its_loop_kernels_compiled(two_threads, monkeypatch, tmp_path):
    """plan_kernels.precompile_loops predicts the first run's layouts (views included)
    and compiles its loop kernels in parallel: the run itself compiles none, and
    computes what it did."""
    import lucid
    import lucid.nn.functional as F
    after = _compiles_after(monkeypatch, tmp_path, "precompile_loops")
    c = 1.0 + time.time_ns() % 1000003 / 1e7   # kernels no other test compiled
    f = lucid.compile(lambda x, w: (F.softmax(F.relu(x @ w.T) * c, -1).T.reshape(-1) + c).sum())
    rng = np.random.default_rng(0)
    x, w = rng.standard_normal((6, 5)).astype(np.float32), rng.standard_normal((7, 5)).astype(np.float32)
    got = f(lucid.tensor(x), lucid.tensor(w)).item()
    assert after and cache.stats()["compiles"] == after[-1]
    z = np.maximum(x.astype(np.float64) @ w.T, 0) * c
    e = np.exp(z - z.max(-1, keepdims=True))
    np.testing.assert_allclose(got, (e / e.sum(-1, keepdims=True) + c).sum(), rtol=1e-5)


def test_gemms_and_loop_kernels_compile_in_one_batch(two_threads, monkeypatch, tmp_path):
    """precompile_plan gives the pool the GEMM objects and the first run's loop kernels
    (a row kernel with two outputs among them) in one batch: no pool thread idles
    between a batch of GEMMs and one of loop kernels, and the run compiles nothing."""
    import lucid
    import lucid.nn.functional as F
    from lucid_codegen.jit import compile_pool
    from lucid_codegen.gemm import core as gemm_core
    after = _compiles_after(monkeypatch, tmp_path, "precompile_loops")
    # the GEMM and its core compiled afresh (not linked by an earlier test of this process)
    monkeypatch.setattr(gemm_call, "_GEMMS", {})
    monkeypatch.setattr(gemm_core, "_LOADED", type(gemm_core._LOADED)())
    cache.reset_memory_cache(clear_stats=False)
    batches = []
    real_run_all = compile_pool.run_all

    def recording_run_all(tasks):
        tasks = list(tasks)
        batches.append(len(tasks))
        return real_run_all(tasks)
    monkeypatch.setattr(compile_pool, "run_all", recording_run_all)
    c = 1.0 + time.time_ns() % 1000003 / 1e7   # kernels no other test compiled
    f = lucid.compile(lambda x, w: (F.softmax(x @ w.T * c, -1), F.log_softmax(x @ w.T * c, -1),
                                    (x * c).sum(0)))
    rng = np.random.default_rng(0)
    x, w = rng.standard_normal((6, 5)).astype(np.float32), rng.standard_normal((7, 5)).astype(np.float32)
    try:
        sm, lsm, s = (t.numpy() for t in f(lucid.tensor(x), lucid.tensor(w)))
        compiles = cache.stats()["compiles"]
    finally:  # the process's linker now names this core's driver: later variants link to it,
        for dtype, blk in list(gemm_core._LOADED):  # so it gets every lazy part before the old
            gemm_core.ensure_paths(dtype, blk, gemm_core.LAZY)  # core's record comes back
    assert batches and batches[0] >= 3, batches     # GEMM (+ core) and the loop kernels
    assert after and compiles == after[-1]
    z = (x.astype(np.float64) @ w.T) * c
    e = np.exp(z - z.max(-1, keepdims=True))
    np.testing.assert_allclose(sm, e / e.sum(-1, keepdims=True), rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(lsm, np.log(e / e.sum(-1, keepdims=True)), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(s, (x * c).sum(0), rtol=1e-5)


def test_the_batch_starts_with_its_longest_modules(two_threads, monkeypatch, tmp_path):
    """precompile_plan orders its batch longest first: the GEMM core's micro-kernels, then
    the row kernels, then the GEMM variants and the core's loop control, then the other
    loop kernels (the pool takes tasks in this order, so the longest modules do not
    start last)."""
    import lucid
    import lucid.nn.functional as F
    from lucid_codegen.gemm import core as gemm_core
    from lucid_codegen.kernels import elementwise, reduction, row_kernel
    monkeypatch.setenv("LUCID_CACHE_DIR", str(tmp_path))
    monkeypatch.setattr(gemm_call, "_GEMMS", {})
    monkeypatch.setattr(gemm_core, "_LOADED", type(gemm_core._LOADED)())
    for family in (elementwise, reduction, row_kernel):   # (kernels an earlier test made)
        monkeypatch.setattr(family, "_KERNELS", {})
    cache.reset_memory_cache(clear_stats=False)
    compiled, real_store, real_run_all = [], cache._compile_and_store, compile_pool.run_all

    def store(key, digest_hex, build, symbols, label, pipeline, kind, *args, **kwargs):
        compiled.append((kind or cache.kind_of(key), label or key))
        return real_store(key, digest_hex, build, symbols, label, pipeline, kind, *args, **kwargs)

    def in_order(tasks):   # the batch's tasks one after another, in the pool's order
        return [task() for task in tasks]
    monkeypatch.setattr(cache, "_compile_and_store", store)
    monkeypatch.setattr(compile_pool, "run_all", in_order)
    c = 1.0 + time.time_ns() % 1000003 / 1e7   # kernels no other test compiled
    f = lucid.compile(lambda x, w: ((F.log_softmax(x @ w.T, -1) * c).sum(), (x * c).sum(0)))
    rng = np.random.default_rng(0)
    x, w = rng.standard_normal((6, 5)).astype(np.float32), rng.standard_normal((7, 5)).astype(np.float32)
    try:
        f(lucid.tensor(x), lucid.tensor(w))
        during = compiled[:]   # (not what the cleanup below compiles)
    finally:  # (as above: later variants link to this core's driver)
        monkeypatch.setattr(compile_pool, "run_all", real_run_all)
        for dtype, blk in list(gemm_core._LOADED):
            gemm_core.ensure_paths(dtype, blk, gemm_core.LAZY)
    kinds = [kind for kind, _ in during]
    assert kinds[0] == "gemm" and " ukr" in during[0][1], during
    assert kinds[1] == "rows", during
    last_gemm = max(i for i, k in enumerate(kinds) if k == "gemm")
    assert all(k in ("elementwise", "reduction") for k in kinds[last_gemm + 1:]) and len(kinds) > last_gemm + 1, during
    assert [label.split()[4] for kind, label in during if "gemm core" in label][-2:] == ["pack_a", "driver"], during


def test_attention_index_scan_and_multi_output_kernels_compile_in_the_batch(two_threads, monkeypatch, tmp_path):
    """The attention kernels, the index and scan kernels (loaded when their steps are
    built) and elementwise kernels with several outputs compile in precompile_plan's
    batch too: building the plan and its first run compile nothing more."""
    import lucid
    import lucid.nn.functional as F
    after = _compiles_after(monkeypatch, tmp_path, "precompile_plan")
    c = 1.0 + time.time_ns() % 1000003 / 1e7   # kernels no other test compiled

    def f(q, table, idx):
        e = table[idx]                                                   # gather
        a = F.scaled_dot_product_attention(q, q * c, e, is_causal=True)  # attention
        return (a * c).sum(), (a * a + c).cumsum(-1), a + c               # several outputs, a scan
    rng = np.random.default_rng(0)
    q = rng.standard_normal((2, 5, 8)).astype(np.float32)
    table = rng.standard_normal((11, 8)).astype(np.float32)
    idx = rng.integers(0, 11, (2, 5))
    got = lucid.compile(f)(lucid.tensor(q), lucid.tensor(table), lucid.tensor(idx))
    assert after and cache.stats()["compiles"] == after[-1]
    want = f(lucid.tensor(q), lucid.tensor(table), lucid.tensor(idx))   # eager
    for g, w in zip(got, want):
        np.testing.assert_allclose(g.numpy(), w.numpy(), rtol=1e-5, atol=1e-5)


def test_a_lone_eager_loop_kernel_is_not_predicted(two_threads, monkeypatch, tmp_path):
    """An eager op's plan (one loop kernel, its inputs perhaps views) is not predicted:
    a transposed operand compiles its own layout's kernel once, not a contiguous one too."""
    import lucid
    monkeypatch.setenv("LUCID_CACHE_DIR", str(tmp_path))
    c = 1.0 + time.time_ns() % 1000003 / 1e7   # kernels no other test compiled
    x = lucid.tensor(np.random.default_rng(0).standard_normal((9, 7)).astype(np.float32))
    (x.T - c).numpy()   # (the eager call's own trampoline, compiled once, whichever tests ran before)
    before = cache.stats()["compiles"]
    got = (x.T * c).numpy()
    assert cache.stats()["compiles"] == before + 1
    np.testing.assert_allclose(got, x.numpy().T * np.float32(c), rtol=1e-6)


def test_a_lone_loop_kernel_beside_a_linked_gemm_is_predicted(two_threads, monkeypatch, tmp_path):
    """A plan of a GEMM and one loop kernel (a compiled backward) predicts its loop
    kernel even when the GEMM is linked already (nothing else left to compile): the
    first run compiles nothing."""
    import lucid
    import lucid.nn.functional as F
    after = _compiles_after(monkeypatch, tmp_path, "precompile_plan")
    x = lucid.tensor(np.random.default_rng(0).standard_normal((3, 5)).astype(np.float32))
    w = lucid.tensor(np.random.default_rng(1).standard_normal((7, 5)).astype(np.float32))
    lucid.compile(lambda x, w: F.linear(x, w))(x, w)        # the GEMM linked
    c = 1.0 + time.time_ns() % 1000003 / 1e7   # a loop kernel no other test compiled
    got = lucid.compile(lambda x, w: F.linear(x, w) * c)(x, w).numpy()
    assert after and cache.stats()["compiles"] == after[-1]
    np.testing.assert_allclose(got, (x.numpy() @ w.numpy().T) * np.float32(c), rtol=1e-5)


def test_a_loop_kernel_planned_again_is_planned_last(monkeypatch):
    """One structure at several places of a plan (the bias gradients' sums, the
    parameters' updates) compiles once: its second planning is queued after every other
    kernel's, so a compile thread does not wait for the module another one compiles."""
    from lucid_ir.builder import GraphBuilder
    from lucid_ir.passes.fuse import run as fuse
    from lucid_codegen.runtime import plan_kernels
    b = GraphBuilder()
    x, y = b.input((4, 8)), b.input((4, 8))
    fused = fuse(b.build([b.emit("tanh", x), b.emit("tanh", y), b.emit("sum", x, axes=(0,))]))
    planned = []
    monkeypatch.setattr(plan_kernels, "_plan_for", lambda step, arrays: planned.append(step.kernel))
    steps, _, _ = plan_kernels._predicted_steps(fused)
    for task, _ in plan_kernels._loop_tasks(steps, fused.inputs):
        task()
    kinds = [type(k).__name__ for k in planned]
    assert kinds == ["ElementwiseKernel", "ReductionKernel", "ElementwiseKernel"], kinds
    assert planned[0] is planned[2]
