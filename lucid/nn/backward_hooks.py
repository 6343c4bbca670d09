"""Full backward hooks of a ``Module``, as PyTorch's ``register_full_backward_hook`` and
``register_full_backward_pre_hook``.

A call of a module with such hooks packs its tensor inputs that require grad into one
flat tensor (and its outputs into another), so that one tensor hook sees every
gradient at once: the output gradients (``grad_output``, which a pre-hook may replace)
and then the input gradients (``grad_input``, which a hook may replace). The packing
costs a copy; it happens only for modules with backward hooks.

>>> import lucid, lucid.nn as nn
>>> layer, seen = nn.Linear(3, 2), []
>>> _ = layer.register_full_backward_hook(lambda m, gi, go: seen.append((gi[0].shape, go[0].shape)))
>>> layer(lucid.ones(4, 3, requires_grad=True)).sum().backward()
>>> seen
[((4, 3), (4, 2))]
"""
from __future__ import annotations

import numpy as np

from ..tensor import Tensor


def _grad_tensors(values) -> list:
    return [i for i, v in enumerate(values) if isinstance(v, Tensor) and v.requires_grad]


def _pack(tensors: list, what: str):
    """One flat tensor holding ``tensors`` and the views of it that stand for them."""
    from .. import cat
    if len({str(t.dtype) for t in tensors}) > 1:
        raise NotImplementedError(f"full backward hooks: the module's {what} that require grad "
                                  f"have different dtypes ({', '.join(str(t.dtype) for t in tensors)})")
    packed = cat([t.reshape(-1) for t in tensors])
    parts, offset = [], 0
    for t in tensors:
        n = int(np.prod(t.shape))
        parts.append(packed[offset:offset + n].reshape(*t.shape))
        offset += n
    return packed, parts


def _split(grad, tensors: list) -> list:
    flat, parts, offset = np.asarray(getattr(grad, "_data", grad)), [], 0
    for t in tensors:
        n = int(np.prod(t.shape))
        parts.append(Tensor._wrap(flat[offset:offset + n].reshape(t.shape)))
        offset += n
    return parts


def _join(grads: list, tensors: list, dtype) -> np.ndarray:
    pieces = [np.zeros(int(np.prod(t.shape)), dtype) if g is None
              else np.asarray(getattr(g, "_data", g), dtype).reshape(-1) for g, t in zip(grads, tensors)]
    return np.concatenate(pieces) if pieces else np.zeros(0, dtype)


def _replace(old: tuple, new, kind: str) -> tuple:
    if not isinstance(new, (tuple, list)) or len(new) != len(old):
        raise RuntimeError(f"backward hook returned an invalid number of {kind}: expected "
                           f"{len(old)}, got {len(new) if isinstance(new, (tuple, list)) else new!r}")
    return tuple(new)


class BackwardHookCall:
    """The backward hooks of one call of ``module``."""

    def __init__(self, module):
        self.module = module
        self.grad_output: tuple = ()
        self.inputs: list = []
        self.n_args = 0

    def setup_inputs(self, args: tuple) -> tuple:
        self.n_args, self.input_index = len(args), _grad_tensors(args)
        if not self.input_index:
            return args
        self.inputs = [args[i] for i in self.input_index]
        packed, parts = _pack(self.inputs, "inputs")
        packed.register_hook(self._on_grad_input)
        args = list(args)
        for i, part in zip(self.input_index, parts):
            args[i] = part
        return tuple(args)

    def setup_output(self, output):
        single = not isinstance(output, tuple)
        values = (output,) if single else output
        self.n_outputs, self.output_index = len(values), _grad_tensors(values)
        if not self.output_index:
            return output
        self.outputs = [values[i] for i in self.output_index]
        packed, parts = _pack(self.outputs, "outputs")
        packed.register_hook(self._on_grad_output)
        values = list(values)
        for i, part in zip(self.output_index, parts):
            values[i] = part
        return values[0] if single else tuple(values)

    def _on_grad_output(self, grad):
        grads = [None] * self.n_outputs
        for i, g in zip(self.output_index, _split(grad, self.outputs)):
            grads[i] = g
        grads, changed = tuple(grads), False
        for hook in list(self.module._backward_pre_hooks.values()):
            result = hook(self.module, grads)
            if result is not None:
                grads, changed = _replace(grads, result, "gradients"), True
        self.grad_output = grads
        if not self.input_index:  # nothing to wait for: the hooks run now, as PyTorch's
            for hook in list(self.module._backward_hooks.values()):
                hook(self.module, (None,) * self.n_args, grads)
        if changed:
            return _join([grads[i] for i in self.output_index], self.outputs, np.asarray(grad).dtype)
        return None

    def _on_grad_input(self, grad):
        grads = [None] * self.n_args
        for i, g in zip(self.input_index, _split(grad, self.inputs)):
            grads[i] = g
        grads, changed = tuple(grads), False
        for hook in list(self.module._backward_hooks.values()):
            result = hook(self.module, grads, self.grad_output)
            if result is not None:
                grads, changed = _replace(grads, result, "gradients"), True
        if changed:
            return _join([grads[i] for i in self.input_index], self.inputs, np.asarray(grad).dtype)
        return None
