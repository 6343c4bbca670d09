"""Forward hooks of a ``Module`` and the handles that remove them, as PyTorch's.

A forward pre-hook runs before ``forward`` as ``hook(module, args)`` (or
``hook(module, args, kwargs)`` with ``with_kwargs=True``) and may return new arguments;
a forward hook runs after it as ``hook(module, args, output)`` (or
``hook(module, args, kwargs, output)``) and may return a new output.

>>> import lucid, lucid.nn as nn
>>> layer = nn.Identity()
>>> handle = layer.register_forward_hook(lambda module, args, out: out * 2)
>>> layer(lucid.tensor([1.0, 2.0])).tolist()
[2.0, 4.0]
>>> handle.remove(); layer(lucid.tensor([1.0, 2.0])).tolist()
[1.0, 2.0]
"""
from __future__ import annotations

import itertools
from collections import OrderedDict

from ..grad_mode import is_grad_enabled
from .backward_hooks import BackwardHookCall

_next_id = itertools.count()


class RemovableHandle:
    """Removes one registered hook: ``handle.remove()``, or use it as a context manager."""

    def __init__(self, *hooks_dicts: dict):
        self.id = next(_next_id)
        self.hooks_dicts = hooks_dicts

    def remove(self) -> None:
        for hooks in self.hooks_dicts:
            hooks.pop(self.id, None)

    def __enter__(self) -> "RemovableHandle":
        return self

    def __exit__(self, *exc) -> None:
        self.remove()


def _add(hooks: "OrderedDict", hook, prepend: bool, *extra: dict) -> RemovableHandle:
    if not callable(hook):
        raise TypeError(f"hook must be callable, got {type(hook).__name__}")
    handle = RemovableHandle(hooks, *extra)
    hooks[handle.id] = hook
    if prepend:
        hooks.move_to_end(handle.id, last=False)
    return handle


class HookMixin:
    """The hook-registration methods and ``__call__`` of ``Module``."""

    def register_forward_pre_hook(self, hook, *, prepend: bool = False,
                                  with_kwargs: bool = False) -> RemovableHandle:
        """Run ``hook(module, args)`` before every ``forward``; a non-None result
        replaces the positional arguments (a non-tuple becomes a 1-tuple)."""
        handle = _add(self._forward_pre_hooks, hook, prepend, self._forward_pre_hooks_with_kwargs)
        if with_kwargs:
            self._forward_pre_hooks_with_kwargs[handle.id] = True
        return handle

    def register_forward_hook(self, hook, *, prepend: bool = False, with_kwargs: bool = False,
                              always_call: bool = False) -> RemovableHandle:
        """Run ``hook(module, args, output)`` after every ``forward``; a non-None result
        replaces the output. ``always_call``: run it even when ``forward`` raised."""
        handle = _add(self._forward_hooks, hook, prepend, self._forward_hooks_with_kwargs,
                      self._forward_hooks_always_called)
        if with_kwargs:
            self._forward_hooks_with_kwargs[handle.id] = True
        if always_call:
            self._forward_hooks_always_called[handle.id] = True
        return handle

    def register_full_backward_pre_hook(self, hook, prepend: bool = False) -> RemovableHandle:
        """Run ``hook(module, grad_output)`` when the gradients of this module's outputs
        are computed; a non-None result replaces them (see ``backward_hooks``)."""
        return _add(self._backward_pre_hooks, hook, prepend)

    def register_full_backward_hook(self, hook, prepend: bool = False) -> RemovableHandle:
        """Run ``hook(module, grad_input, grad_output)`` when the gradients of this
        module's tensor inputs are computed; a non-None result replaces ``grad_input``."""
        return _add(self._backward_hooks, hook, prepend)

    def __call__(self, *args, **kwargs):
        if not (self._forward_pre_hooks or self._forward_hooks or self._backward_hooks
                or self._backward_pre_hooks):
            return self.forward(*args, **kwargs)
        return self._call_with_hooks(args, kwargs)

    def _call_with_hooks(self, args: tuple, kwargs: dict):
        for hook_id, hook in list(self._forward_pre_hooks.items()):
            if hook_id in self._forward_pre_hooks_with_kwargs:
                result = hook(self, args, kwargs)
                if result is not None:
                    if not (isinstance(result, tuple) and len(result) == 2):
                        raise RuntimeError(f"forward pre-hook must return None or a tuple of "
                                           f"(new_args, new_kwargs), but got {result}.")
                    args, kwargs = result
            else:
                result = hook(self, args)
                if result is not None:
                    args = result if isinstance(result, tuple) else (result,)
        backward = None
        if (self._backward_hooks or self._backward_pre_hooks) and is_grad_enabled():
            backward = BackwardHookCall(self)
            args = backward.setup_inputs(args)
        called = set()
        try:
            output = self.forward(*args, **kwargs)
            for hook_id, hook in list(self._forward_hooks.items()):
                called.add(hook_id)
                if hook_id in self._forward_hooks_with_kwargs:
                    result = hook(self, args, kwargs, output)
                else:
                    result = hook(self, args, output)
                if result is not None:
                    output = result
            return output if backward is None else backward.setup_output(output)
        except Exception:
            for hook_id, hook in list(self._forward_hooks.items()):
                if hook_id in self._forward_hooks_always_called and hook_id not in called:
                    try:
                        if hook_id in self._forward_hooks_with_kwargs:
                            hook(self, args, kwargs, None)
                        else:
                            hook(self, args, None)
                    except Exception:  # noqa: S110 - the original error is the one to report
                        pass
            raise


def new_hook_dicts() -> dict:
    """The hook dictionaries every ``Module`` starts with."""
    return {name: OrderedDict() for name in (
        "_forward_pre_hooks", "_forward_pre_hooks_with_kwargs", "_forward_hooks",
        "_forward_hooks_with_kwargs", "_forward_hooks_always_called", "_backward_pre_hooks",
        "_backward_hooks")}
