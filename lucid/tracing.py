"""Tracing: running a Python function on symbolic tensors to record one graph.

While a ``Tracer`` is active (``lucid.compile`` activates one), every op applied to
tensors appends a node to the tracer's graph instead of computing. Symbolic tensors
have a shape and a dtype but no data; asking for their data (``bool(t)``, ``t.item()``,
``t.numpy()``) raises ``TracingError`` naming the line, because the compiled function
could not depend on it. Concrete tensors the function reaches (parameters in closures,
globals, module attributes) become graph inputs, read again at every call.

A traced function may also run a whole training step: ``loss.backward()`` inside it
appends the backward graph (derived by the autodiff pass) to the same graph, and
``.grad`` reads and writes of concrete tensors are traced too (``Tensor.grad`` asks the
tracer). An optimiser's ``step()`` inside it adds its update and ``assign``s the new
values; the compiled call writes them into the parameters' arrays in place. What the
trace reads from outside the graph is re-read at every call: captured arrays,
gradients that existed before the call (guarded: a call whose ``.grad`` states differ
retraces), run-time scalars such as a learning rate (``scalars``), and a fresh key
for each random draw (``random_key``: dropout, ``lucid.rand`` inside the function),
drawn from lucid's generator at every call.
"""
from __future__ import annotations

import os
import threading
import traceback

import numpy as np

from lucid_ir.builder import GraphBuilder, make_node
from lucid_ir.graph import Graph, Node, Value
from lucid_ir.types import TensorType

class _State(threading.local):
    tracer = None   # per thread; a class default, so reading it costs no lookup miss


_state = _State()
#: how many traces are active in all threads (``[n]``): eager hot paths read this first
#: and look at their thread's tracer only when some thread traces
ACTIVE = [0]
_ACTIVE_LOCK = threading.Lock()
_PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__))


class TracingError(RuntimeError):
    """The traced function did something a compiled graph cannot express."""


def current() -> "Tracer | None":
    return _state.tracer


def user_location() -> str:
    """'file:line: code' of the innermost frame outside the lucid package."""
    for frame in reversed(traceback.extract_stack()):
        if not os.path.abspath(frame.filename).startswith(_PACKAGE_DIR):
            return f"{frame.filename}:{frame.lineno}: {(frame.line or '').strip()}"
    return "<unknown>"


def data_dependent(what: str) -> TracingError:
    return TracingError(
        f"{what} needs the value of a tensor, which is not known while lucid.compile traces "
        f"the function (at {user_location()}). Python control flow and conversions must not "
        f"depend on tensor values inside a compiled function: compute both branches and "
        f"choose with lucid.where(cond, a, b), move the decision outside the compiled "
        f"function, or pass the value as a non-tensor (static) argument.")


class Tracer:
    def __init__(self, grad_enabled: bool):
        self.builder = GraphBuilder()
        self.grad_enabled = grad_enabled
        self.captured: dict[int, tuple] = {}   # id(tensor) -> (tensor, value)
        self.arg_values: list = []
        self.arg_real: list = []               # the tensors passed for the arguments
        self.arg_tensors: list = []            # their symbolic stand-ins
        self.arg_index: dict[int, int] = {}    # id(symbolic argument) -> its position
        self.arg_of_real: dict[int, int] = {}  # id(tensor passed as an argument) -> its position
        # what ``t.grad`` is at this point of the trace: key -> [t, owner, value, written];
        # an owner is ("tensor", t) for a concrete tensor, ("arg", i) for argument i (and
        # for the concrete tensor passed as argument i: one .grad, however it is reached,
        # e.g. an optimiser holding the parameters that are also passed in); the key is
        # the owner, or id(t) for a tensor computed inside
        self.grads: dict[int, list] = {}
        self.grad_inputs: list = []    # (owner, value): gradients that existed before the call
        self.grad_guards: list = []    # (owner, None or (shape, dtype)): .grad states a call needs
        self.grads_overwritten: list = []  # owners whose .grad the function writes before reading
        self.scalar_sources: list = []  # (fn, dtype, values): fn() -> numbers, once per call
        self.static_guards: list = []   # (fn, value): fn() must still equal value at a call
        self.assigned: dict[int, tuple] = {}   # id(tensor) -> (tensor, its new value)
        self.did_backward = False
        #: ``fn(tracer)`` called after each traced ``backward()`` has written the gradients
        #: (what ``DistributedDataParallel`` uses to average them across ranks in the graph)
        self.after_backward: list = []

    def __enter__(self):
        if current() is not None:
            raise TracingError("lucid.compile: a compiled function cannot be traced inside "
                               "another one's trace")
        with _ACTIVE_LOCK:
            ACTIVE[0] += 1
        _state.tracer = self
        return self

    def __exit__(self, *exc):
        _state.tracer = None
        with _ACTIVE_LOCK:
            ACTIVE[0] -= 1
        return False

    def symbolic(self, value, requires_grad: bool):
        from .tensor import Tensor
        return Tensor._symbolic(value, requires_grad)

    def argument(self, shape, dtype: str, requires_grad: bool, real=None):
        v = self.builder.input(shape, dtype)
        self.arg_values.append(v)
        t = self.symbolic(v, requires_grad)
        self.arg_index[id(t)] = len(self.arg_real)
        if real is not None:
            self.arg_of_real.setdefault(id(real), len(self.arg_real))
        self.arg_real.append(real)
        self.arg_tensors.append(t)
        return t

    def value_of(self, t):
        if t._data is None:
            return t._value
        hit = self.assigned.get(id(t))
        return self.input_of(t) if hit is None else hit[1]

    def input_of(self, t):
        """The graph input holding concrete tensor ``t``'s value at a call: its argument's,
        when ``t`` is also passed as an argument (one array, one input), else a captured
        input of its own."""
        i = self.arg_of_real.get(id(t))
        if i is not None:
            return self.arg_values[i]
        hit = self.captured.get(id(t))
        if hit is None:
            hit = self.captured[id(t)] = (t, self.builder.input(t.shape, t.dtype))
        return hit[1]

    def apply(self, op: str, inputs, attrs):
        from .grad_mode import is_grad_enabled
        node = make_node(op, [self.value_of(t) for t in inputs], attrs)
        self.builder.append(node)
        requires = (self.grad_enabled and node.out.dtype in ("float32", "float64")  # (as PyTorch:
                    and any(t.requires_grad for t in inputs))                       # no int grads)
        if requires and not is_grad_enabled():
            # no_grad inside the traced function: the compiled backward, derived from the
            # whole graph, must see that no gradient flows through this result
            node = make_node("stop_gradient", [node.out], {})
            self.builder.append(node)
            requires = False
        return self.symbolic(node.out, requires)

    # -- state outside the graph: gradients, assignments, run-time scalars -------------
    def _owner(self, t):
        if t._data is not None:
            i = self.arg_of_real.get(id(t))
            return ("tensor", t) if i is None else ("arg", i)
        i = self.arg_index.get(id(t))
        return None if i is None else ("arg", i)

    def _grad_key(self, t, owner):
        if owner is None:
            return id(t)
        return ("tensor", id(t)) if owner[0] == "tensor" else owner

    def real_grad(self, owner):
        """The ``.grad`` array of an owner outside the trace (None if it has none)."""
        kind, what = owner
        return (what if kind == "tensor" else self.arg_real[what])._grad

    def read_grad(self, t):
        """``t.grad`` inside the trace: a traced gradient, None, or (for a gradient that
        existed before the call) a graph input read at every call."""
        owner = self._owner(t)
        entry = self.grads.get(self._grad_key(t, owner))
        if entry is not None:
            return entry[2]
        value = t._grad if owner is None else None
        if owner is not None:
            real = self.real_grad(owner)
            if real is None:
                self.grad_guards.append((owner, None))
            else:
                real = np.asarray(real)
                self.grad_guards.append((owner, (real.shape, real.dtype)))
                v = Value(TensorType(real.shape, real.dtype.name))
                self.grad_inputs.append((owner, v))
                value = self.symbolic(v, False)
        self.grads[self._grad_key(t, owner)] = [t, owner, value, False]
        return value

    def write_grad(self, t, value) -> None:
        from .tensor import Tensor
        if value is not None:
            if not isinstance(value, Tensor) or value._data is not None:
                raise TracingError(
                    f"only None or a tensor computed inside the function can be assigned to "
                    f".grad inside a compiled function (at {user_location()})")
            if value.shape != t.shape:
                raise ValueError(f"grad: a gradient of shape {value.shape} cannot belong to a "
                                 f"tensor of shape {t.shape}")
        owner = self._owner(t)
        key = self._grad_key(t, owner)
        if key not in self.grads and owner is not None:
            self.grads_overwritten.append(owner)  # its old gradient is never read
        self.grads[key] = [t, owner, value, True]

    def grad_writes(self):
        """(owner, final traced value or None) for every ``.grad`` the function wrote."""
        return [(owner, value) for _, owner, value, written in self.grads.values()
                if written and owner is not None]

    def assign(self, t, new) -> None:
        """Give the concrete tensor ``t`` the traced value ``new`` from here on; every call
        writes it into ``t``'s array in place (optimisers' updates)."""
        if t._data is None:
            raise TracingError("assign: only a tensor from outside the function can be updated in place")
        if new.shape != t.shape or new.dtype != t.dtype:
            raise ValueError(f"assign: a value of shape {new.shape} and dtype {new.dtype} cannot "
                             f"replace a tensor of shape {t.shape} and dtype {t.dtype}")
        self.value_of(t)  # its old value is a graph input: the array the call writes into
        self.assigned[id(t)] = (t, self.value_of(new))

    def scalars(self, fn, n: int, dtype: str) -> list:
        """``n`` 0-d tensors whose values ``fn()`` returns at every call (before the
        graph runs; once per call, so ``fn`` may advance a step counter)."""
        values = [Value(TensorType((), dtype)) for _ in range(n)]
        self.scalar_sources.append((fn, dtype, values))
        return [self.symbolic(v, False) for v in values]

    def random_key(self, generator):
        """A 0-d int64 tensor of the graph holding a fresh key drawn from ``generator``
        (a ``lucid.Generator``) at every call, before the graph runs: what the graph's
        random ops (``random_uniform``, ``random_normal``) compute their numbers from.
        Each draw in the function gets a key of its own; a call draws them in trace order."""
        from .random import KeySource
        (key,) = self.scalars(KeySource(generator), 1, "int64")
        return key

    def static(self, fn):
        """``fn()`` now; a call at which ``fn()`` gives another value retraces."""
        value = fn()
        self.static_guards.append((fn, value))
        return value

    # -- backward inside the trace ------------------------------------------------------
    def inputs(self) -> tuple:
        """The graph's inputs, in the order a call passes them: arguments, captured
        tensors, gradients from before the call, run-time scalars."""
        return (tuple(self.arg_values) + tuple(v for _, v in self.captured.values())
                + tuple(v for _, v in self.grad_inputs)
                + tuple(v for _, _, vs in self.scalar_sources for v in vs))

    def backward(self, root, gradient=None) -> None:
        """``root.backward()`` inside the trace: append the backward graph and accumulate
        the gradients of the leaves ``root`` depends on into their traced ``.grad``."""
        from lucid_ir import pipeline
        from .tensor import Tensor
        if not root.requires_grad:
            raise RuntimeError("backward: this tensor does not require grad (no input of the "
                               "computation that made it has requires_grad=True)")
        rv = self.value_of(root)
        needed = {rv}  # what root depends on differentiably: not through an index, a mask or a
        for node in reversed(self.builder.nodes):  # detach (then a leaf's .grad stays None)
            if node.out in needed and node.out.dtype in ("float32", "float64") and node.op != "stop_gradient":
                needed.update(node.inputs)
        leaves = [(t, t._value) for t in self.arg_tensors if t.requires_grad]
        leaves += [(t, v) for t, v in self.captured.values() if t.requires_grad]
        for t, _ in leaves:
            updated = self.assigned.get(id(t))
            if updated is not None and updated[1] in needed:
                raise TracingError(f"backward() after a tensor that requires grad was updated in "
                                   f"place in the same compiled function is not supported (at "
                                   f"{user_location()})")
        leaves = [(t, v) for t, v in leaves if v in needed]
        inputs = self.inputs()
        position = {v: i for i, v in enumerate(inputs)}
        forward = Graph(inputs, tuple(self.builder.nodes), (rv,))
        bwd = pipeline.run(forward, pipeline.differentiate([position[v] for _, v in leaves]),
                           "backward").backward
        cotangent = bwd.graph.inputs[0]
        if gradient is None:
            seed = make_node("constant", (), dict(value=1.0, shape=root.shape, dtype=root.dtype))
        else:
            g = gradient if isinstance(gradient, Tensor) else Tensor(gradient, dtype=root.dtype)
            if g.shape != root.shape:
                raise ValueError(f"backward: gradient of shape {g.shape} does not match the "
                                 f"tensor's shape {root.shape}")
            seed = make_node("stop_gradient", (self.value_of(g),), {})
        self.builder.append(Node(seed.op, seed.inputs, seed.attrs, cotangent))
        defined = {n.out for n in self.builder.nodes}
        for node in bwd.graph.nodes:
            if node.out not in defined:  # forward constants the backward reads are shared
                self.builder.append(node)
        for (t, _), g in zip(leaves, bwd.graph.outputs):
            grad = self.symbolic(g, False)
            current_grad = self.read_grad(t)
            self.write_grad(t, grad if current_grad is None else current_grad + grad)
        self.did_backward = True
        for fn in self.after_backward:
            fn(self)
