"""``lucid.autograd.Function``: operations with a forward and a backward written by hand,
as PyTorch's ``torch.autograd.Function``.

Subclass it with static ``forward(ctx, *args)`` and ``backward(ctx, *grad_outputs)``
and call ``Function.apply(*args)``. ``forward`` runs with grad mode off and returns a
tensor or a tuple of tensors; ``ctx.save_for_backward(*tensors)`` keeps tensors for
``backward``, which reads them from ``ctx.saved_tensors`` (a RuntimeError, as
PyTorch's, if one was written in place since) and returns one gradient per argument of
``forward`` (a tensor, or None for arguments that need none). ``ctx.needs_input_grad``
says which arguments require grad; ``ctx.mark_non_differentiable(*outputs)`` makes
outputs constants (their gradients reach ``backward`` as zeros);
``ctx.set_materialize_grads(False)`` passes None instead of zeros for outputs the loss
does not use. The new style, a ``forward(*args)`` without ``ctx`` and a static
``setup_context(ctx, inputs, output)``, works too.

The outputs join lucid's autograd like the outputs of a compiled function: the backward
pass walks to them, calls ``backward`` with the gradients as tensors, and goes on with
the gradients it returns (summed down to an input's shape when they broadcast to it,
cast to its dtype).

Eager only: inside ``lucid.compile`` a Function whose inputs require grad raises
``TracingError`` (its backward is Python that the compiled graph cannot call); with no
gradient wanted (``no_grad``, inputs that do not require grad) its forward is traced as
any other code.

>>> import lucid
>>> class Exp(lucid.autograd.Function):
...     @staticmethod
...     def forward(ctx, x):
...         y = x.exp()
...         ctx.save_for_backward(y)
...         return y
...     @staticmethod
...     def backward(ctx, grad):
...         (y,) = ctx.saved_tensors
...         return grad * y
>>> x = lucid.tensor([0.0, 1.0], requires_grad=True)
>>> y = Exp.apply(x)
>>> y.grad_fn.name()
'ExpBackward'
>>> (y * 2.0).sum().backward()
>>> [round(v, 4) for v in x.grad.tolist()]
[2.0, 5.4366]
"""
from __future__ import annotations

import functools

import numpy as np

from . import grad_mode, tracing, versions
from .autograd import CallOutput


class FunctionCtx:
    """What ``forward`` hands to ``backward`` (PyTorch's ``ctx``): saved tensors, which
    inputs need gradients, and any attributes ``forward`` sets on it."""

    def __init__(self, needs_input_grad: tuple):
        self.needs_input_grad = needs_input_grad
        self.materialize_grads = True
        self._saved = None
        self._non_differentiable = set()
        self._freed = False

    def save_for_backward(self, *tensors) -> None:
        """Keep ``tensors`` (or None) for ``backward``; their versions are checked when it
        reads them."""
        from .tensor import Tensor
        for i, t in enumerate(tensors):
            if t is not None and not isinstance(t, Tensor):
                raise TypeError(f"save_for_backward can only save variables, but argument {i} "
                                f"is not a Tensor or None (it is a {type(t).__name__})")
        self._saved = tuple((t, None if t is None else versions.version(t)) for t in tensors)

    @property
    def saved_tensors(self) -> tuple:
        """The tensors ``save_for_backward`` kept (RuntimeError if one of them was written
        in place since, or once the graph was freed by a backward pass)."""
        if self._freed:
            from .autograd import FREED_MESSAGE
            raise RuntimeError(FREED_MESSAGE)
        if self._saved is None:
            return ()
        for t, saved_version in self._saved:
            if t is not None and t._data is not None and versions.version(t) != saved_version:
                counter = versions.of(t)
                raise RuntimeError(
                    f"one of the variables needed for gradient computation has been modified by "
                    f"an inplace operation: {versions.describe(t)} is at version {counter.version}; "
                    f"expected version {saved_version} instead. Hint: it was saved by "
                    f"ctx.save_for_backward; clone() it before writing it in place")
        return tuple(t for t, _ in self._saved)

    def mark_non_differentiable(self, *outputs) -> None:
        """These outputs do not require grad (indices, masks); ``backward`` still gets a
        gradient argument for each, zeros."""
        self._non_differentiable.update(id(o) for o in outputs)

    def set_materialize_grads(self, value: bool) -> None:
        """Whether the gradients of unused outputs reach ``backward`` as zeros (the
        default) or as None."""
        self.materialize_grads = bool(value)

    def mark_dirty(self, *tensors) -> None:
        raise RuntimeError("mark_dirty: a custom Function that modifies its inputs in place is "
                           "not supported by lucid; return new tensors from forward")


class Function:
    """Base class of operations with a hand-written backward (see the module docstring)."""

    def __init__(self, *args, **kwargs):
        raise RuntimeError(f"{type(self).__name__}: custom Functions are used through their "
                           f"class, as {type(self).__name__}.apply(...), with static forward "
                           f"and backward methods (legacy instances are not supported)")

    @staticmethod
    def forward(ctx, *args, **kwargs):
        raise NotImplementedError("You must implement the forward function for custom "
                                  "autograd.Function.")

    @staticmethod
    def setup_context(ctx, inputs, output):
        raise NotImplementedError("setup_context is not overridden")

    @staticmethod
    def backward(ctx, *grad_outputs):
        raise NotImplementedError("You must implement either the backward or vjp method for "
                                  "your custom autograd.Function to use it with backward mode AD.")

    vjp = backward

    @classmethod
    def apply(cls, *args, **kwargs):
        """Run ``forward`` on the arguments and connect its outputs to autograd."""
        from .tensor import Tensor
        needs = tuple(isinstance(a, Tensor) and a.requires_grad for a in args)
        ctx = FunctionCtx(needs)
        recording = grad_mode._state.enabled and any(needs)
        if recording and tracing._state.tracer is not None:
            raise tracing.TracingError(
                f"{cls.__name__}.apply: a custom autograd.Function is eager-only when its inputs "
                f"require grad (its backward is Python the compiled graph cannot call; at "
                f"{tracing.user_location()}); call it outside lucid.compile, or write it with lucid "
                f"ops whose gradients lucid derives")
        new_style = cls.setup_context is not Function.setup_context
        with grad_mode.no_grad():
            output = cls.forward(*args, **kwargs) if new_style else cls.forward(ctx, *args, **kwargs)
            if new_style:
                cls.setup_context(ctx, args, output)
        if not recording:
            return output
        return _connect(cls, ctx, args, output)


def _connect(cls, ctx, args, output):
    """The outputs as tensors whose backward is ``cls.backward`` (one ``FunctionRecord``)."""
    from .tensor import Tensor
    single = not isinstance(output, tuple)
    outputs = (output,) if single else output
    inputs = [a for a in args if isinstance(a, Tensor)]
    seen = {id(a) for a in inputs}
    record = FunctionRecord(cls, ctx, args, outputs)
    connected = []
    for index, o in enumerate(outputs):
        if not isinstance(o, Tensor) or not o._data.dtype.kind == "f" or \
                id(o) in ctx._non_differentiable:
            connected.append(o)
            continue
        t = o
        if id(o) in seen or not o._is_leaf or o.requires_grad:  # an input, or a tensor with a
            t = Tensor._wrap(o._data)                           # history: a new view of it
        seen.add(id(t))
        t._node, t._parents = FunctionOutput(record, index), record.parents
        t.requires_grad, t._is_leaf = True, False
        connected.append(t)
    return connected[0] if single else tuple(connected)


class FunctionRecord:
    """One call of a custom Function, for the backward pass (the interface of a compiled
    function's call record: ``parents``, ``n_outputs``, ``backward(cotangents)``)."""

    def __init__(self, cls, ctx, args, outputs):
        from .tensor import Tensor
        self.cls, self.ctx, self.name = cls, ctx, cls.__name__ + "Backward"
        self.n_args = len(args)
        self.inputs = [a for a in args if isinstance(a, Tensor)]
        #: the arguments that require grad, and their positions among the arguments
        self.positions = tuple(i for i, a in enumerate(args) if isinstance(a, Tensor) and a.requires_grad)
        self.parents = tuple(args[i] for i in self.positions)
        self.n_outputs = len(outputs)
        self.out_types = [(o.shape, o._data.dtype) if isinstance(o, Tensor) else None for o in outputs]
        self.residuals = ()          # saved tensors are checked when backward reads them
        self.clock = versions.clock[0]

    def backward(self, cotangents):
        from .tensor import Tensor
        grads_in = []
        for g, meta in zip(cotangents, self.out_types):
            if g is None and meta is not None and self.ctx.materialize_grads:
                g = np.zeros(meta[0], meta[1])
            grads_in.append(None if g is None else Tensor._wrap(g))
        with grad_mode.no_grad():
            result = self.cls.backward(self.ctx, *grads_in)
        result = result if isinstance(result, tuple) else (result,)
        n = self.n_args
        if len(result) < n or any(r is not None for r in result[n:]):
            raise RuntimeError(f"function {self.name} returned an incorrect number of gradients "
                               f"(expected {n}, got {len(result)})")
        return [(p, _fit(self.name, i, p, result[i]))
                for i, p in zip(self.positions, self.parents) if result[i] is not None]

    def release(self) -> None:
        """The graph was freed: drop the saved tensors (reading them is then an error)."""
        self.ctx._freed = True
        self.ctx._saved = None


def _fit(name: str, i: int, a, g) -> np.ndarray:
    """The gradient ``g`` for input ``a``: summed down to its shape when it broadcasts to
    ``g``'s (PyTorch's ``sum_to``), in its dtype."""
    arr = np.asarray(getattr(g, "_data", g))
    shape = tuple(a.shape)
    if arr.shape != shape:
        try:
            fits = np.broadcast_shapes(shape, arr.shape) == arr.shape
        except ValueError:
            fits = False
        if not fits:
            raise RuntimeError(f"Function {name} returned an invalid gradient at index {i} - got "
                               f"{list(arr.shape)} but expected shape compatible with {list(shape)}")
        lead = arr.ndim - len(shape)
        axes = tuple(range(lead)) + tuple(lead + k for k, n in enumerate(shape) if n == 1
                                          and arr.shape[lead + k] != 1)
        arr = arr.sum(axis=axes, keepdims=True).reshape(shape)
    return arr.astype(a._data.dtype, copy=False)


class FunctionOutput(CallOutput):
    """Output ``index`` of one custom Function call (walked like a compiled call's)."""


def once_differentiable(fn):
    """PyTorch's decorator for a ``backward`` that is not itself differentiable; lucid's
    gradients never are (no ``create_graph``), so it only runs ``fn`` without recording.

    >>> once_differentiable(lambda ctx, g: g)(None, 3)
    3
    """
    @functools.wraps(fn)
    def wrapper(ctx, *args):
        with grad_mode.no_grad():
            return fn(ctx, *args)
    return wrapper
