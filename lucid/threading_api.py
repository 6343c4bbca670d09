"""``lucid.set_num_threads`` / ``lucid.get_num_threads``, as PyTorch's: the worker
threads that large kernels split across (``LUCID_NUM_THREADS`` sets the start value;
the default is every core). One setting for the process: eager calls, compiled
functions and optimiser steps all read it when they run.

>>> import lucid
>>> before = lucid.get_num_threads()
>>> lucid.set_num_threads(1)
>>> lucid.get_num_threads()
1
>>> lucid.set_num_threads(0)
Traceback (most recent call last):
...
RuntimeError: set_num_threads expects a positive integer
>>> lucid.set_num_threads(before)
"""
from __future__ import annotations

import operator

__all__ = ["get_num_threads", "set_num_threads"]


def get_num_threads() -> int:
    """The number of threads large kernels split across."""
    from lucid_codegen.runtime import threads  # (on first use: it loads LLVM, import lucid does not)
    return threads.get_num_threads()


def set_num_threads(num: int) -> None:
    """Split large kernels across ``num`` threads from now on (PyTorch's errors: a
    RuntimeError for anything but a positive int)."""
    try:
        n = operator.index(num)
    except TypeError:
        raise RuntimeError(f"set_num_threads expects an int, but got {type(num).__name__}") from None
    if n < 1:
        raise RuntimeError("set_num_threads expects a positive integer")
    from lucid_codegen.runtime import threads
    threads.set_num_threads(n)
