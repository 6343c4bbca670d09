"""A persistent worker pool for native kernels (which release the GIL via ctypes).

>>> from lucid_codegen import threads
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

__all__ = ["get_num_threads", "set_num_threads", "parallel_for"]


def _env_threads() -> int:
    raw = os.environ.get("LUCID_NUM_THREADS", "").strip()
    if raw:
        try:
            n = int(raw)
        except ValueError:
            raise ValueError(f"LUCID_NUM_THREADS must be a positive integer, got {raw!r}") from None
        if n < 1:
            raise ValueError(f"LUCID_NUM_THREADS must be a positive integer, got {raw!r}")
        return n
    return os.cpu_count() or 1


class _Batch:
    __slots__ = ("fn", "n", "stride", "pending", "error", "done")

    def __init__(self, fn, n, stride, pending):
        self.fn, self.n, self.stride = fn, n, stride
        self.pending = pending
        self.error: BaseException | None = None
        # held until the last participant finishes: a bare lock is a cheaper
        # wake-up than Event (whose wait builds a Condition and a waiter lock)
        self.done = threading.Lock()
        self.done.acquire()


class _Pool:
    def __init__(self):
        self._size: int | None = None
        self._workers: list[queue.SimpleQueue] = []
        self._busy = threading.Lock()
        self._count_lock = threading.Lock()
        self._local = threading.local()

    def size(self) -> int:
        if self._size is None:
            self._size = _env_threads()
        return self._size

    def set_size(self, n: int) -> None:
        if int(n) < 1:
            raise ValueError(f"number of threads must be >= 1, got {n}")
        with self._busy:
            self._size = int(n)

    def _ensure_workers(self, n: int) -> None:
        while len(self._workers) < n:
            q: queue.SimpleQueue = queue.SimpleQueue()
            t = threading.Thread(target=self._work, args=(q,), daemon=True,
                                 name=f"lucid-worker-{len(self._workers) + 1}")
            t.start()
            self._workers.append(q)

    def _work(self, q: queue.SimpleQueue) -> None:
        self._local.inside = True
        while True:
            batch, start = q.get()
            self._run(batch, start)

    def _run(self, batch: _Batch, start: int) -> None:
        try:
            for i in range(start, batch.n, batch.stride):
                batch.fn(i)
        except BaseException as e:  # noqa: BLE001 - handed to the caller
            if batch.error is None:
                batch.error = e
        with self._count_lock:
            batch.pending -= 1
            last = batch.pending == 0
        if last:
            batch.done.release()

    def parallel_for(self, n_chunks: int, fn: Callable[[int], object]) -> None:
        P = min(self.size(), n_chunks)
        if P <= 1 or getattr(self._local, "inside", False) or not self._busy.acquire(False):
            for i in range(n_chunks):
                fn(i)
            return
        try:
            self._ensure_workers(P - 1)
            batch = _Batch(fn, n_chunks, P, P)
            for w in range(1, P):
                self._workers[w - 1].put((batch, w))
            self._local.inside = True
            try:
                self._run(batch, 0)
            finally:
                self._local.inside = False
            batch.done.acquire()
        finally:
            self._busy.release()
        if batch.error is not None:
            raise batch.error


_POOL = _Pool()


def get_num_threads() -> int:
    return _POOL.size()


def set_num_threads(n: int) -> None:
    _POOL.set_size(n)


def parallel_for(n_chunks: int, fn: Callable[[int], object]) -> None:
    _POOL.parallel_for(n_chunks, fn)
