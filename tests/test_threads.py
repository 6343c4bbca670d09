"""Several Python threads using lucid at once: compiled functions, eager ops and
backward passes give correct results; a function compiled from two threads is traced once."""
from __future__ import annotations

import threading

import numpy as np
import pytest

import lucid
import lucid.nn.functional as F
from lucid import Tensor
from lucid_codegen.runtime import threads as pool


def _run_threads(n, target):
    barrier = threading.Barrier(n)
    errors = []

    def wrapped(i):
        try:
            barrier.wait()
            target(i)
        except BaseException as e:  # noqa: BLE001 - reported below
            errors.append((i, e))

    ts = [threading.Thread(target=wrapped, args=(i,)) for i in range(n)]
    for t in ts:
        t.start()
    for t in ts:
        t.join(timeout=120)
    assert not any(t.is_alive() for t in ts), "a thread hung"
    assert not errors, errors


def _mlp(x, w1, b1, w2):
    return F.linear(F.relu(F.linear(x, w1, b1)), w2).sum(axis=1)


def _numpy_mlp(x, w1, b1, w2):
    return (np.maximum(x @ w1.T + b1, 0) @ w2.T).sum(axis=1)


def test_threads_call_compiled_and_eager_at_once():
    rng = np.random.default_rng(0)
    # sizes big enough that kernels also split across the worker pool
    w1 = rng.standard_normal((96, 64)).astype(np.float32)
    b1 = rng.standard_normal(96).astype(np.float32)
    w2 = rng.standard_normal((8, 96)).astype(np.float32)
    f = lucid.compile(_mlp)
    inputs = [rng.standard_normal((200 + 7 * i, 64)).astype(np.float32) for i in range(6)]
    big = rng.standard_normal((600, 1100)).astype(np.float32)

    def work(i):
        x = inputs[i]
        want = _numpy_mlp(x, w1, b1, w2)
        for _ in range(15):
            got = f(Tensor(x), Tensor(w1), Tensor(b1), Tensor(w2)).numpy()
            np.testing.assert_allclose(got, want, rtol=2e-4, atol=2e-3)
            e = _mlp(Tensor(x), Tensor(w1), Tensor(b1), Tensor(w2)).numpy()
            np.testing.assert_allclose(e, want, rtol=2e-4, atol=2e-3)
            s = (Tensor(big) * float(i)).exp().sum(axis=0).numpy() if i % 2 else \
                F.softmax(Tensor(big), axis=1).sum(axis=1).numpy()
            if i % 2:
                np.testing.assert_allclose(s, np.exp(big * float(i)).sum(axis=0, dtype=np.float64),
                                           rtol=1e-4)
            else:
                np.testing.assert_allclose(s, np.ones(600), rtol=1e-5)

    _run_threads(6, work)


def test_threads_backward_at_once():
    rng = np.random.default_rng(1)
    w = rng.standard_normal((5, 7))
    xs = [rng.standard_normal((9 + i, 7)) for i in range(6)]
    step = lucid.compile(lambda x, w: F.tanh(F.linear(x, w)).sum())

    def work(i):
        for _ in range(10):
            for fn in (step, lambda x, w: F.tanh(F.linear(x, w)).sum()):
                wt = Tensor(w, requires_grad=True)
                x = Tensor(xs[i], requires_grad=True)
                fn(x, wt).backward()
                d = 1 - np.tanh(xs[i] @ w.T) ** 2
                np.testing.assert_allclose(wt.grad, d.T @ xs[i], rtol=1e-10)
                np.testing.assert_allclose(x.grad, d @ w, rtol=1e-10)

    _run_threads(6, work)


def test_no_grad_is_per_thread():
    seen = {}
    inside = threading.Event()
    release = threading.Event()

    def holder():
        with lucid.no_grad():
            inside.set()
            release.wait(10)

    t = threading.Thread(target=holder)
    t.start()
    inside.wait(10)
    try:
        x = Tensor([1.0, 2.0], requires_grad=True)
        seen["grad"] = (x * x).requires_grad
    finally:
        release.set()
        t.join()
    assert seen["grad"] is True


def test_same_function_compiled_from_two_threads_traces_once():
    calls = []

    def fn(x, y):
        calls.append(1)
        return (x * y + 1.0).exp().sum(axis=0)

    f = lucid.compile(fn)
    x = np.linspace(-1, 1, 12, dtype=np.float32).reshape(3, 4)
    y = np.full((3, 4), 0.5, np.float32)
    results = [None] * 4

    def work(i):
        results[i] = f(Tensor(x), Tensor(y)).numpy()

    _run_threads(4, work)
    assert f.traces == 1
    assert len(calls) == 1
    for r in results:
        np.testing.assert_allclose(r, np.exp(x * y + 1).sum(axis=0), rtol=1e-6)
    f(Tensor(x), Tensor(y))
    assert f.traces == 1


def test_pool_thread_counts_agree_under_concurrency():
    rng = np.random.default_rng(2)
    a = rng.standard_normal((300, 3000))
    want = np.exp(a).sum(axis=1)
    old = pool.get_num_threads()
    results = {}
    try:
        for n in (1, 2):
            pool.set_num_threads(n)
            out = [None] * 3

            def work(i):
                out[i] = Tensor(a).exp().sum(axis=1).numpy()

            _run_threads(3, work)
            results[n] = out
    finally:
        pool.set_num_threads(old)
    for n, outs in results.items():
        for o in outs:
            np.testing.assert_allclose(o, want, rtol=1e-12)
    # deterministic split: bit-identical whatever the thread count
    assert all(np.array_equal(o, results[1][0]) for o in results[2])


def test_native_pool_wakes_sleeping_workers_and_mixes_job_kinds():
    """Workers poll for ~1 ms after a job, then sleep; either way the next job runs,
    native (GEMM parts) or Python (elementwise chunks), with the same results."""
    import time

    import numpy as np

    from lucid_codegen.runtime import threads
    from lucid_codegen.gemm.kernel import GemmSpec
    from lucid_codegen.gemm.epilogue import Epilogue
    from lucid_codegen.gemm.call import get_gemm
    old = threads.get_num_threads()
    threads.set_num_threads(2)
    try:
        g = get_gemm(GemmSpec("float64", Epilogue.chain("float64", bias=True)))
        rng = np.random.default_rng(0)
        a, b, bias = rng.standard_normal((96, 300)), rng.standard_normal((300, 200)), rng.standard_normal(200)
        want = a @ b + bias
        for pause in (0.0, 0.02, 0.0, 0.05):  # 20-50 ms: the workers are asleep by then
            time.sleep(pause)
            out = np.empty((96, 200))
            g(a, b, out, bias=bias)  # 11.5 MFLOP: split into two native parts
            np.testing.assert_allclose(out, want, rtol=1e-10, atol=1e-10)
            seen = [0] * 6
            threads.parallel_for(6, lambda i: seen.__setitem__(i, i + 1))
            assert seen == [1, 2, 3, 4, 5, 6]
    finally:
        threads.set_num_threads(old)


def test_a_forked_child_gets_its_own_workers():
    import os

    import numpy as np

    from lucid_codegen.runtime import threads
    from lucid_codegen.gemm.kernel import GemmSpec
    from lucid_codegen.gemm.call import get_gemm
    threads.set_num_threads(2)
    g = get_gemm(GemmSpec("float64"))
    a, b = np.ones((128, 256)), np.ones((256, 128))
    out = np.empty((128, 128))
    g(a, b, out)  # the parent's workers exist now
    pid = os.fork()
    if pid == 0:  # child: must not wait for the parent's workers
        try:
            g(a, b, out)
            os._exit(0 if (out == 256).all() else 1)
        except BaseException:
            os._exit(2)
    _, status = os.waitpid(pid, 0)
    assert os.WEXITSTATUS(status) == 0


def test_quiesce_puts_workers_to_sleep_and_they_wake_again():
    import numpy as np

    from lucid_codegen.runtime import threads
    from lucid_codegen.gemm.kernel import GemmSpec
    from lucid_codegen.gemm.call import get_gemm
    threads.set_num_threads(2)
    g = get_gemm(GemmSpec("float32"))
    a, b = np.ones((64, 784), np.float32), np.ones((784, 256), np.float32)
    out = np.empty((64, 256), np.float32)
    for _ in range(3):
        g(a, b, out)
        threads.quiesce()
        pool = threads._POOL
        import time
        deadline = time.monotonic() + 30.0  # a hang guard: they sleep within ~1 ms
        while not all(pool._ctl[pool._slot(w, 1)] == 1 for w in range(1, len(pool._queues) + 1)):
            assert time.monotonic() < deadline, "workers did not go to sleep"
            time.sleep(0.001)
        assert (out == 784).all()


def test_gemms_from_several_threads_at_once_stay_correct():
    """Threads that find the pool busy run their GEMM parts on their own thread: each with
    its own job words (a shared block once mixed up their pointers)."""
    import random
    import threading
    import time

    import numpy as np

    from lucid_codegen.runtime import threads
    from lucid_codegen.gemm.kernel import GemmSpec
    from lucid_codegen.gemm.call import get_gemm
    threads.set_num_threads(2)
    g = get_gemm(GemmSpec("float32"))
    a = np.random.default_rng(0).random((64, 784), dtype=np.float32)
    b = np.random.default_rng(1).random((784, 256), dtype=np.float32)
    want = a.astype(np.float64) @ b
    errors = []

    def work(seed):
        r = random.Random(seed)
        out = np.empty((64, 256), np.float32)
        for _ in range(80):
            k = r.random()
            if k < 0.7:
                g(a, b, out)
                if not np.allclose(out, want, rtol=1e-4):
                    errors.append("wrong GEMM result")
            elif k < 0.85:
                threads.quiesce()
            else:
                time.sleep(r.random() * 0.002)

    ts = [threading.Thread(target=work, args=(s,)) for s in range(4)]
    for t in ts:
        t.start()
    for t in ts:
        t.join(60)
    assert not any(t.is_alive() for t in ts), "a thread hung"
    assert not errors


def test_workers_keep_polling_while_a_native_program_holds_the_pool():
    """A native program posts its parts without waking anyone, so a worker whose spin
    runs out while a program holds the pool must poll on, not sleep (else the program
    runs every part itself: the eager attention backward did, at 2 threads); once the
    pool is released, idle workers sleep again."""
    import time

    from lucid_codegen.runtime import threads
    threads.set_num_threads(2)
    threads.parallel_for(2, lambda i: None)  # the worker exists
    pool = threads._POOL
    asleep = pool._slot(1, 1)

    def share_asleep(seconds: float) -> float:
        samples = []
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            samples.append(int(pool._ctl[asleep]))
            time.sleep(0.0005)
        return sum(samples) / len(samples)

    assert threads.hold_pool(2)
    try:
        time.sleep(5 * threads.SPIN_SECONDS)  # its spin has run out many times
        assert share_asleep(0.02) < 0.5
    finally:
        threads.release_pool()
    deadline = time.monotonic() + 30.0
    while pool._ctl[asleep] != 1:  # released: it sleeps within about one spin
        assert time.monotonic() < deadline, "the idle worker did not go to sleep"
        time.sleep(0.001)
    threads.parallel_for(2, lambda i: None)  # and it wakes for the next job


def test_lucid_set_num_threads_is_pytorchs():
    """``lucid.set_num_threads`` / ``get_num_threads`` take what PyTorch's take and refuse
    what they refuse, with the same error type; the setting is the pool's."""
    import torch
    before = lucid.get_num_threads()
    try:
        lucid.set_num_threads(1)
        assert lucid.get_num_threads() == pool.get_num_threads() == 1
        lucid.set_num_threads(np.int64(2))
        assert lucid.get_num_threads() == 2
        for bad in (0, -1, 2.5, "2"):
            with pytest.raises(RuntimeError) as ours:
                lucid.set_num_threads(bad)
            with pytest.raises(RuntimeError) as theirs:
                torch.set_num_threads(bad)
            assert str(ours.value) == str(theirs.value)
        assert lucid.get_num_threads() == 2
    finally:
        lucid.set_num_threads(before)
