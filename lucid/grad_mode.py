"""Grad modes: whether operations record a graph for autograd, as in PyTorch.

``no_grad``, ``enable_grad``, ``set_grad_enabled(mode)`` and ``inference_mode(mode=True)``
are each a context manager and a decorator (``@lucid.no_grad`` and ``@lucid.no_grad()``
both work; a decorated function enters a fresh context at every call, so recursion
and threads are safe). ``set_grad_enabled(False)`` called as a plain function switches
the mode at once, as ``torch.set_grad_enabled`` does. The mode is per thread, and a
function being traced by ``lucid.compile`` reads it too.

>>> import lucid
>>> w = lucid.tensor([1.0, 2.0], requires_grad=True)
>>> with lucid.no_grad():
...     y = w * 2
>>> y.requires_grad
False
>>> @lucid.no_grad
... def frozen(t):
...     return t * 2
>>> frozen(w).requires_grad, lucid.is_grad_enabled()
(False, True)
>>> with lucid.no_grad(), lucid.enable_grad():
...     (w * 2).requires_grad
True
"""
from __future__ import annotations

import functools
import inspect
import threading


class _State(threading.local):
    enabled = True     # per thread; class defaults, so reading them costs no lookup miss
    inference = False


_state = _State()


def is_grad_enabled() -> bool:
    """True when operations on tensors that require grad record a graph."""
    return _state.enabled


def is_inference_mode_enabled() -> bool:
    """True inside ``inference_mode()`` (and not inside a nested ``inference_mode(False)``)."""
    return _state.inference


class _GradModeContext:
    """A context manager that is also a decorator: ``__call__(fn)`` wraps ``fn`` so that
    each call runs inside a fresh copy of the context (``clone``)."""

    def clone(self):
        return self.__class__()

    def __call__(self, fn):
        if inspect.isclass(fn) or not callable(fn):
            raise TypeError(f"{type(self).__name__}: only functions can be decorated, not "
                            f"{type(fn).__name__}")
        if inspect.isgeneratorfunction(fn):
            @functools.wraps(fn)
            def generator(*args, **kwargs):
                # each step of the generator runs inside the context, the caller's code
                # between steps outside it (as PyTorch's decorated generators)
                gen = fn(*args, **kwargs)
                with self.clone():
                    item = next(gen)   # StopIteration ends this generator too
                while True:
                    try:
                        sent = yield item
                    except GeneratorExit:
                        with self.clone():
                            gen.close()
                        raise
                    except BaseException as e:  # thrown in by the caller
                        with self.clone():
                            item = gen.throw(e)
                        continue
                    with self.clone():
                        try:
                            item = gen.send(sent)
                        except StopIteration as stop:
                            return stop.value
            return generator

        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            with self.clone():
                return fn(*args, **kwargs)
        return wrapper


class _NoArgContext(_GradModeContext):
    """``@ctx`` as well as ``@ctx()`` (PyTorch allows both for no_grad/enable_grad)."""

    def __new__(cls, orig_func=None):
        if orig_func is None:
            return super().__new__(cls)
        return cls()(orig_func)


class no_grad(_NoArgContext):
    """Operations inside record no graph: their results do not require grad.

    >>> import lucid
    >>> x = lucid.tensor([1.0], requires_grad=True)
    >>> with lucid.no_grad():
    ...     (x + 1).requires_grad
    False
    """

    def __enter__(self):
        self._prev = _state.enabled
        _state.enabled = False
        return None

    def __exit__(self, *exc):
        _state.enabled = self._prev
        return False


class enable_grad(_NoArgContext):
    """Recording switched back on (inside ``no_grad`` or ``set_grad_enabled(False)``).

    >>> import lucid
    >>> x = lucid.tensor([1.0], requires_grad=True)
    >>> with lucid.no_grad():
    ...     with lucid.enable_grad():
    ...         (x + 1).requires_grad
    True
    """

    def __enter__(self):
        self._prev = _state.enabled
        _state.enabled = True
        return None

    def __exit__(self, *exc):
        _state.enabled = self._prev
        return False


class set_grad_enabled(_GradModeContext):
    """Switch recording on or off: at once when called, and back to the previous mode
    when used as a context that exits; as a decorator, around each call only.

    >>> import lucid
    >>> x = lucid.tensor([1.0], requires_grad=True)
    >>> with lucid.set_grad_enabled(False):
    ...     (x * 2).requires_grad
    False
    >>> _ = lucid.set_grad_enabled(False); lucid.is_grad_enabled()
    False
    >>> _ = lucid.set_grad_enabled(True); lucid.is_grad_enabled()
    True
    """

    def __init__(self, mode: bool):
        if type(mode) is not bool:
            raise TypeError(f"set_grad_enabled: mode must be a bool (got {type(mode).__name__})")
        self.mode = mode
        self._prev = _state.enabled
        _state.enabled = mode

    def __call__(self, fn):
        _state.enabled = self._prev   # a decorator changes the mode only around calls
        return super().__call__(fn)

    def __enter__(self):
        _state.enabled = self.mode
        return None

    def __exit__(self, *exc):
        _state.enabled = self._prev
        return False

    def clone(self):
        return self.__class__(self.mode)

    def __repr__(self) -> str:
        return f"lucid.set_grad_enabled(mode={self.mode})"


class inference_mode(_GradModeContext):
    """``no_grad`` for code that will never need gradients; ``inference_mode(False)``
    leaves inference mode (and does not change the grad mode). Lucid keeps no
    per-tensor inference flags, so it costs the same as ``no_grad``.

    >>> import lucid
    >>> x = lucid.tensor([1.0], requires_grad=True)
    >>> with lucid.inference_mode():
    ...     (x * 2).requires_grad, lucid.is_inference_mode_enabled()
    (False, True)
    """

    def __new__(cls, mode_or_fn=True):
        if mode_or_fn is True or mode_or_fn is False:
            return super().__new__(cls)
        if callable(mode_or_fn):       # @inference_mode without parentheses
            return cls()(mode_or_fn)
        raise TypeError(f"inference_mode: mode must be a bool (got {type(mode_or_fn).__name__})")

    def __init__(self, mode_or_fn=True):
        self.mode = mode_or_fn

    def __enter__(self):
        self._prev = (_state.enabled, _state.inference)
        _state.inference = self.mode
        if self.mode:
            _state.enabled = False
        return None

    def __exit__(self, *exc):
        _state.enabled, _state.inference = self._prev
        return False

    def clone(self):
        return self.__class__(self.mode)
