"""``lucid.no_grad()``: a context (and decorator) in which operations record no graph.

>>> import lucid
>>> w = lucid.tensor([1.0, 2.0], requires_grad=True)
>>> with lucid.no_grad():
...     y = w * 2
>>> y.requires_grad
False
"""
from __future__ import annotations

import functools
import threading

class _State(threading.local):
    enabled = True   # per thread; a class default, so reading it costs no lookup miss


_state = _State()


def is_grad_enabled() -> bool:
    return _state.enabled


class no_grad:
    def __enter__(self):
        self._prev = is_grad_enabled()
        _state.enabled = False
        return self

    def __exit__(self, *exc):
        _state.enabled = self._prev
        return False

    def __call__(self, fn):
        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            with no_grad():
                return fn(*args, **kwargs)
        return wrapper
