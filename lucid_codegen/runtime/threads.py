"""A persistent worker pool for native kernels (which release the GIL via ctypes).

>>> from lucid_codegen.runtime import threads
>>> out = [0] * 4
>>> threads.parallel_for(4, lambda i: out.__setitem__(i, i * i))
>>> out
[0, 1, 4, 9]

Size: ``LUCID_NUM_THREADS`` (read at first use), default ``os.cpu_count()``;
``set_num_threads(n)`` changes it at run time. ``parallel_for(n, fn)`` runs
``fn(0) .. fn(n-1)``: chunk i goes to participant i % P, the calling thread being
participant 0, and returns when all are done; the first exception raised by any
chunk is re-raised in the caller. A call made from inside a chunk, or while
another thread is using the pool, runs its chunks serially on the calling thread
(no deadlock, same results).
"""
from __future__ import annotations

import os
import queue
import threading
from typing import Callable

import numpy as np

__all__ = ["get_num_threads", "set_num_threads", "parallel_for"]


def env_positive_int(name: str) -> int | None:
    """The environment variable ``name`` as a positive integer, or None when unset or
    empty; ValueError naming it for anything else."""
    raw = os.environ.get(name, "").strip()
    if not raw:
        return None
    try:
        n = int(raw)
    except ValueError:
        raise ValueError(f"{name} must be a positive integer, got {raw!r}") from None
    if n < 1:
        raise ValueError(f"{name} must be a positive integer, got {raw!r}")
    return n


def _env_threads() -> int:
    n = env_positive_int("LUCID_NUM_THREADS")
    return n if n is not None else os.cpu_count() or 1


class _Batch:
    """A Python job: ``fn(i)`` for chunks ``start, start + stride, ...`` per participant."""

    __slots__ = ("fn", "n", "stride", "error")

    def __init__(self, fn, n, stride):
        self.fn, self.n, self.stride = fn, n, stride
        self.error: BaseException | None = None


#: How long an idle worker keeps polling (natively, without the GIL) before it sleeps;
#: a sleeping worker costs ~50-80 µs to wake on this VM, a polling one < 1 µs.
SPIN_SECONDS = float(os.environ.get("LUCID_SPIN_US", "1000")) * 1e-6
_POLL_SECONDS = 25e-9  # one poll of lucid_codegen.runtime.spin, measured
MAX_WORKERS = 63
#: the caller's control word saying a native program holds the pool (``hold``): idle
#: workers keep polling instead of sleeping until it is released
HELD = 1


class _Pool:
    """Workers live in native code (``spin.pool_worker``): they poll the generation word
    the caller posts and run native jobs (GEMM parts) without the GIL; a Python job
    sends them back to Python to run it; after ``SPIN_SECONDS`` idle they sleep on a
    queue until the caller wakes them."""

    def __init__(self):
        from lucid_codegen.runtime import spin
        self._spin = spin
        self._size: int | None = None
        self._queues: list[queue.SimpleQueue] = []
        self._busy = threading.Lock()
        self._local = threading.local()
        self._ctl = np.zeros(spin.BLOCK * (MAX_WORKERS + 1), np.int64)
        #: its address (``ndarray.ctypes.data`` costs ~1 µs: read once)
        self._ctl_addr = self._ctl.ctypes.data
        #: the control words as a memoryview: an element read or write costs a third of
        #: numpy's scalar indexing (``hold`` and ``release`` run on every split call)
        self._words = memoryview(self._ctl)
        self._batch: _Batch | None = None
        self._quiesce = False

    def size(self) -> int:
        if self._size is None:
            self._size = _env_threads()
        return self._size

    def set_size(self, n: int) -> None:
        if int(n) < 1:
            raise ValueError(f"number of threads must be >= 1, got {n}")
        with self._busy:
            self._size = int(n)

    def _slot(self, w: int, k: int) -> int:
        return self._spin.BLOCK * w + k

    def _ensure_workers(self, n: int) -> None:
        while len(self._queues) < min(n, MAX_WORKERS):
            w = len(self._queues) + 1
            q: queue.SimpleQueue = queue.SimpleQueue()
            self._queues.append(q)
            self._ctl[self._slot(w, 0)] = self._ctl[0]
            threading.Thread(target=self._work, args=(w, q), daemon=True,
                             name=f"lucid-worker-{w}").start()

    def _work(self, w: int, q: queue.SimpleQueue) -> None:
        self._local.inside = True
        ctl, done, asleep = self._ctl, self._slot(w, 0), self._slot(w, 1)
        polls = max(1, int(SPIN_SECONDS / _POLL_SECONDS))
        while True:
            g = self._spin.pool_worker(ctl.ctypes.data, w, polls)  # GIL released inside
            if g == 0:  # idle: sleep until woken, unless a native program holds the pool
                ctl[asleep] = 1
                # re-check after announcing (no lost wake-up): a program holding the pool
                # posts its parts natively, without waking anyone, so its workers poll on
                if int(ctl[0]) == int(ctl[done]) and not ctl[HELD]:
                    q.get()
                ctl[asleep] = 0
                continue
            batch = self._batch  # a Python job
            if batch is not None and w < batch.stride:
                self._run(batch, w)
            ctl[done] = g
            if self._quiesce:  # asked to sleep now rather than poll
                ctl[asleep] = 1
                if int(ctl[0]) == int(ctl[done]):
                    q.get()
                ctl[asleep] = 0

    def _run(self, batch: _Batch, start: int) -> None:
        try:
            for i in range(start, batch.n, batch.stride):
                batch.fn(i)
        except BaseException as e:  # noqa: BLE001 - handed to the caller
            if batch.error is None:
                batch.error = e

    def _post(self, P: int, job_of) -> int:
        """Write each worker's job (``job_of(w)``: its words), publish a new generation,
        wake sleepers; return the generation."""
        ctl = self._ctl
        self._ensure_workers(P - 1)
        g = int(ctl[0]) + 1
        for w in range(1, len(self._queues) + 1):
            at = self._slot(w, self._spin.JOB_AT)
            words = job_of(w)
            ctl[at:at + len(words)] = words
            ctl[self._slot(w, self._spin.CLAIM_AT)] = g  # the worker's to take
        ctl[0] = g  # publish: polling workers see it at once
        for w in range(1, len(self._queues) + 1):
            if ctl[self._slot(w, 1)]:
                self._queues[w - 1].put(None)
        return g

    def _wait(self, g: int) -> None:
        base = self._ctl_addr
        for w in range(1, len(self._queues) + 1):
            while not self._spin.reached_at(base + 8 * self._slot(w, 0), g, 40000):
                pass  # a worker still busy, or waking up: poll again

    def parallel_for(self, n_chunks: int, fn: Callable[[int], object]) -> None:
        P = min(self.size(), n_chunks, MAX_WORKERS + 1)
        if P <= 1 or getattr(self._local, "inside", False) or not self._busy.acquire(False):
            for i in range(n_chunks):
                fn(i)
            return
        try:
            batch = self._batch = _Batch(fn, n_chunks, P)
            g = self._post(P, lambda w: (0,))  # 0: a Python job
            self._local.inside = True
            try:
                self._run(batch, 0)
            finally:
                self._local.inside = False
            self._wait(g)
        finally:
            self._batch = None
            self._busy.release()
        if batch.error is not None:
            raise batch.error

    def quiesce(self) -> None:
        """Make polling workers sleep now (benchmarks call it between timed runs, so
        lucid's idle workers do not take a core from the library timed next)."""
        if not self._queues or not self._busy.acquire(False):
            return
        try:
            self._quiesce = True
            self._batch = None
            self._wait(self._post(1, lambda w: (0,)))
        finally:
            self._quiesce = False
            self._busy.release()

    def hold(self, P: int) -> int:
        """Take the pool for a native program that posts jobs to workers 1..P-1 itself
        (``native_plan``): the control words' address, or 0 when this thread cannot
        have it now (another thread has it, or this is a worker). Sleeping workers are
        woken, so they are polling when the program posts. ``release`` gives it back."""
        if getattr(self._local, "inside", False) or not self._busy.acquire(False):
            return 0
        queues = self._queues
        if len(queues) < P - 1:
            self._ensure_workers(P - 1)
        words = self._words
        words[HELD] = 1  # before looking who sleeps: a worker about to sleep sees it and polls on
        for w in range(1, min(P, len(queues) + 1)):
            if words[self._slot(w, 1)]:
                queues[w - 1].put(None)
        return self._ctl_addr

    def run_native(self, jobs) -> None:
        """Run native GEMM jobs (each ``[address, 17 argument words]``): job 0 on this
        thread, job w on worker w, none of them touching Python."""
        P = min(len(jobs), self.size(), MAX_WORKERS + 1)
        if P <= 1 or len(jobs) > P or getattr(self._local, "inside", False) or not self._busy.acquire(False):
            for job in jobs:  # serially, on this thread (its own job words: threads may race here)
                own = np.array(job, np.int64)
                self._spin.pool_call(own.ctypes.data)
            return
        try:
            g = self._post(P, lambda w: jobs[w] if w < P else (1,))  # 1: nothing this round
            own = np.array(jobs[0], np.int64)
            self._spin.pool_call(own.ctypes.data)
            self._wait(g)
        finally:
            self._busy.release()


_POOL = _Pool()


def _reset_after_fork() -> None:
    """A forked child has none of the parent's worker threads: start from a fresh pool."""
    global _POOL
    size = _POOL._size
    _POOL = _Pool()
    _POOL._size = size


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_reset_after_fork)


def get_num_threads() -> int:
    return _POOL.size()


def set_num_threads(n: int) -> None:
    _POOL.set_size(n)


def parallel_for(n_chunks: int, fn: Callable[[int], object]) -> None:
    _POOL.parallel_for(n_chunks, fn)


def quiesce() -> None:
    """Put idle workers to sleep at once (see ``_Pool.quiesce``)."""
    _POOL.quiesce()


def hold_pool(P: int) -> int:
    """See ``_Pool.hold``."""
    return _POOL.hold(P)


def release_pool() -> None:
    """Give back the pool ``hold_pool`` took (its idle workers may sleep again)."""
    _POOL._words[HELD] = 0
    _POOL._busy.release()


def run_native(jobs) -> None:
    """Run native GEMM jobs in parallel (see ``_Pool.run_native``)."""
    _POOL.run_native(jobs)
