"""``Module.state_dict`` and ``Module.load_state_dict``, as PyTorch's.

``state_dict()`` maps dotted names to the parameters and persistent buffers, detached
(sharing memory with the module, as in PyTorch: copy them to keep a snapshot).
``load_state_dict`` copies values into the existing arrays in place, so compiled
functions that hold them see the new values; it accepts lucid tensors, numpy arrays and
other frameworks' tensors (anything with ``.numpy()`` or ``__array__``).

>>> import lucid, lucid.nn as nn
>>> a, b = nn.Linear(2, 1), nn.Linear(2, 1)
>>> list(a.state_dict())
['weight', 'bias']
>>> b.load_state_dict(a.state_dict())
<All keys matched successfully>
>>> bool((a.weight == b.weight).all())
True
"""
from __future__ import annotations

from collections import OrderedDict, namedtuple
from collections.abc import Mapping

import numpy as np

from ..grad_mode import no_grad
from ..tensor import Tensor
from ..tensor_ops import Size

_EXTRA_STATE_KEY_SUFFIX = "_extra_state"


class _IncompatibleKeys(namedtuple("IncompatibleKeys", ["missing_keys", "unexpected_keys"])):
    """What ``load_state_dict`` did not match: ``missing_keys`` and ``unexpected_keys``."""

    __slots__ = ()

    def __repr__(self) -> str:
        if not self.missing_keys and not self.unexpected_keys:
            return "<All keys matched successfully>"
        return super().__repr__()

    __str__ = __repr__


def _as_array(value):
    """The numpy array behind a checkpoint entry, or None when it is not tensor-like."""
    if isinstance(value, Tensor):
        return value._concrete("load_state_dict")
    if isinstance(value, np.ndarray):
        return value
    if hasattr(value, "detach") and hasattr(value, "numpy"):  # another framework's tensor
        return np.asarray(value.detach().cpu().numpy() if hasattr(value, "cpu") else value.detach().numpy())
    if hasattr(value, "numpy"):
        return np.asarray(value.numpy())
    if hasattr(value, "__array__") and hasattr(value, "shape"):
        return np.asarray(value)
    return None


def _overridden(module, name: str) -> bool:
    return getattr(type(module), name) is not getattr(StateMixin, name)


class StateMixin:
    """``state_dict``, ``load_state_dict`` and the extra-state protocol of ``Module``."""

    def get_extra_state(self):
        """Override (with ``set_extra_state``) to save non-tensor state in ``state_dict``."""
        raise RuntimeError("Reached a code path in Module.get_extra_state() that should never be "
                           "called; override get_extra_state and set_extra_state together")

    def set_extra_state(self, state) -> None:
        raise RuntimeError("Reached a code path in Module.set_extra_state() that should never be "
                           "called; override get_extra_state and set_extra_state together")

    def _save_to_state_dict(self, destination, prefix: str, keep_vars: bool) -> None:
        for name, param in self._parameters.items():
            if param is not None:
                destination[prefix + name] = param if keep_vars else param.detach()
        for name, buf in self._buffers.items():
            if buf is not None and name not in self._non_persistent_buffers_set:
                destination[prefix + name] = buf if keep_vars else buf.detach()
        if _overridden(self, "get_extra_state"):
            destination[prefix + _EXTRA_STATE_KEY_SUFFIX] = self.get_extra_state()

    def state_dict(self, *args, destination=None, prefix: str = "", keep_vars: bool = False):
        """An ``OrderedDict`` from dotted names to this module's parameters and persistent
        buffers (detached tensors sharing memory with them; ``keep_vars=True``: the
        parameters themselves), module by module, each module's parameters first.
        ``destination, prefix, keep_vars`` may also be given positionally (PyTorch's
        older form)."""
        if len(args) > 3:
            raise TypeError(f"state_dict() takes at most 3 positional arguments, got {len(args)}")
        if args:
            destination, prefix, keep_vars = (list(args) + [destination, prefix, keep_vars][len(args):])
        if destination is None:
            destination = OrderedDict()
            destination._metadata = OrderedDict()
        if hasattr(destination, "_metadata"):
            destination._metadata[prefix[:-1]] = {"version": self._version}
        self._save_to_state_dict(destination, prefix, keep_vars)
        for name, module in self._modules.items():
            if module is not None:
                module.state_dict(destination=destination, prefix=prefix + name + ".", keep_vars=keep_vars)
        return destination

    def _load_from_state_dict(self, state_dict, prefix: str, assign: bool, missing_keys: list,
                              unexpected_keys: list, error_msgs: list) -> None:
        persistent = {k: v for k, v in self._buffers.items() if k not in self._non_persistent_buffers_set}
        local_state = {k: v for k, v in [*self._parameters.items(), *persistent.items()] if v is not None}
        for name, param in local_state.items():
            key = prefix + name
            if key not in state_dict:
                missing_keys.append(key)
                continue
            value = _as_array(state_dict[key])
            if value is None:
                error_msgs.append(f'While copying the parameter named "{key}", expected lucid.Tensor '
                                  f"or Tensor-like object from checkpoint but received "
                                  f"{type(state_dict[key])}")
                continue
            if param.ndim == 0 and value.ndim == 1 and value.shape[0] == 1:
                value = value.reshape(())
            if tuple(value.shape) != tuple(param.shape):
                error_msgs.append(f"size mismatch for {key}: copying a param with shape "
                                  f"{Size(value.shape)!r} from checkpoint, the shape in current "
                                  f"model is {Size(param.shape)!r}.")
                continue
            with no_grad():
                if assign:
                    self._assign(name, param, value)
                else:
                    np.copyto(param._data, value, casting="unsafe")
        extra_key = prefix + _EXTRA_STATE_KEY_SUFFIX
        if _overridden(self, "set_extra_state"):
            if extra_key in state_dict:
                self.set_extra_state(state_dict[extra_key])
            else:
                missing_keys.append(extra_key)
        for key in state_dict:
            if key.startswith(prefix) and key != extra_key:
                head, *rest = key[len(prefix):].split(".", 1)
                if (rest and head not in self._modules) or (not rest and head not in local_state):
                    unexpected_keys.append(key)

    def _assign(self, name: str, old: Tensor, value: np.ndarray) -> None:
        """``assign=True``: the module holds the checkpoint's array itself, in ``old``'s dtype."""
        from .parameter import Parameter
        value = value if value.dtype == old._data.dtype else value.astype(old._data.dtype)
        if isinstance(old, Parameter):
            setattr(self, name, Parameter(Tensor._wrap(value), requires_grad=old.requires_grad))
        else:
            setattr(self, name, Tensor._wrap(value))

    def load_state_dict(self, state_dict, strict: bool = True, assign: bool = False):
        """Copy ``state_dict``'s values into this module's parameters and buffers, in place
        (``assign=True``: hold the checkpoint's arrays instead). Returns the
        ``missing_keys`` and ``unexpected_keys``; with ``strict`` either is an error."""
        if not isinstance(state_dict, Mapping):
            raise TypeError(f"Expected state_dict to be dict-like, got {type(state_dict)}.")
        missing_keys, unexpected_keys, error_msgs = [], [], []

        def load(module, local_state: dict, prefix: str = "") -> None:
            module._load_from_state_dict(local_state, prefix, assign, missing_keys, unexpected_keys,
                                         error_msgs)
            for name, child in module._modules.items():
                if child is not None:
                    child_prefix = prefix + name + "."
                    load(child, {k: v for k, v in local_state.items() if k.startswith(child_prefix)},
                         child_prefix)

        load(self, dict(state_dict))
        if strict:
            if unexpected_keys:
                error_msgs.insert(0, "Unexpected key(s) in state_dict: {}. ".format(
                    ", ".join(f'"{k}"' for k in unexpected_keys)))
            if missing_keys:
                error_msgs.insert(0, "Missing key(s) in state_dict: {}. ".format(
                    ", ".join(f'"{k}"' for k in missing_keys)))
        if error_msgs:
            raise RuntimeError("Error(s) in loading state_dict for {}:\n\t{}".format(
                type(self).__name__, "\n\t".join(error_msgs)))
        return _IncompatibleKeys(missing_keys, unexpected_keys)
