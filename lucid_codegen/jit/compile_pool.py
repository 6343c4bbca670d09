"""A small pool of threads compiling independent LLVM modules at the same time.

LLVM's long calls (parse, optimise, emit) run outside llvmlite's lock and the GIL in
every thread (jit.py), so modules compiled on ``threads()`` threads take about the time
of the longest chain instead of the sum. ``LUCID_COMPILE_THREADS`` sets the number of
threads (default: the CPUs this process may use; 1 compiles on the calling thread).

>>> run_all([lambda: 1 + 1, lambda: 2 * 3])
[2, 6]

``submit(task)`` starts one task in the background (a future), after those queued.

Tasks run in a copy of the caller's context (``contextvars``), so what they compile
joins the caller's ``LUCID_DEBUG`` record; a task that itself calls ``run_all`` runs
its tasks on its own thread (a pool thread never waits for the pool). The first
exception of a task is raised once every task has finished.
"""
from __future__ import annotations

import contextvars
import os
import threading
from concurrent.futures import ThreadPoolExecutor

from lucid_codegen.runtime.threads import env_positive_int

__all__ = ["threads", "run_all", "submit"]

_POOL: list = []
_LOCK = threading.Lock()
_IN_POOL = threading.local()


def threads() -> int:
    """Threads compiling at once (``LUCID_COMPILE_THREADS``, else the usable CPUs)."""
    n = env_positive_int("LUCID_COMPILE_THREADS")
    if n is not None:
        return n
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


def _pool(n: int) -> ThreadPoolExecutor:
    with _LOCK:
        if not _POOL or _POOL[0][0] != n:
            if _POOL:
                _POOL[0][1].shutdown(wait=False)
                _POOL.clear()
            _POOL.append((n, ThreadPoolExecutor(n, thread_name_prefix="lucid-compile",
                                                initializer=_mark)))
        return _POOL[0][1]


def _mark() -> None:
    _IN_POOL.active = True


def run_all(tasks) -> list:
    """Each task's result, in order; the tasks run on the pool when there is more than
    one and more than one thread (else one after another on this thread)."""
    tasks = list(tasks)
    n = threads()
    if n <= 1 or len(tasks) <= 1 or getattr(_IN_POOL, "active", False):
        return [task() for task in tasks]
    pool = _pool(n)
    futures = [pool.submit(contextvars.copy_context().run, task) for task in tasks]
    results, error = [], None
    for f in futures:
        try:
            results.append(f.result())
        except BaseException as exc:  # noqa: BLE001 - re-raised below, after all finished
            results.append(None)
            error = error or exc
    if error is not None:
        raise error
    return results


def _after_fork_in_child() -> None:
    """A forked child has none of the parent's compile threads: its first compilation
    starts a pool of its own (the parent's executor would queue tasks no thread runs)."""
    global _LOCK
    _LOCK = threading.Lock()
    _POOL.clear()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


def submit(task):
    """``task`` started on the pool in the background (in the pool thread's own context,
    not the caller's: it may outlive the caller's compilation record): its future, or
    None with one compile thread (the caller then does the work itself when it needs it).
    """
    n = threads()
    if n <= 1:
        return None
    return _pool(n).submit(task)
