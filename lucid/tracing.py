"""Tracing: running a Python function on symbolic tensors to record one graph.

While a ``Tracer`` is active (``lucid.compile`` activates one), every op applied to
tensors appends a node to the tracer's graph instead of computing. Symbolic tensors
have a shape and a dtype but no data; asking for their data (``bool(t)``, ``t.item()``,
``t.numpy()``) raises ``TracingError`` naming the line, because the compiled function
could not depend on it. Concrete tensors the function reaches (parameters in closures,
globals, module attributes) become graph inputs, read again at every call.
"""
from __future__ import annotations

import os
import threading
import traceback

from lucid_ir.builder import GraphBuilder, make_node

_state = threading.local()
_PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__))


class TracingError(RuntimeError):
    """The traced function did something a compiled graph cannot express."""


def current() -> "Tracer | None":
    return getattr(_state, "tracer", None)


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

    def __enter__(self):
        if current() is not None:
            raise TracingError("lucid.compile: a compiled function cannot be traced inside "
                               "another one's trace")
        _state.tracer = self
        return self

    def __exit__(self, *exc):
        _state.tracer = None
        return False

    def symbolic(self, value, requires_grad: bool):
        from .tensor import Tensor
        return Tensor._symbolic(value, requires_grad)

    def argument(self, shape, dtype: str, requires_grad: bool):
        v = self.builder.input(shape, dtype)
        self.arg_values.append(v)
        return self.symbolic(v, requires_grad)

    def value_of(self, t):
        if t._data is None:
            return t._value
        hit = self.captured.get(id(t))
        if hit is None:
            hit = (t, self.builder.input(t.shape, t.dtype))
            self.captured[id(t)] = hit
        return hit[1]

    def apply(self, op: str, inputs, attrs):
        node = make_node(op, [self.value_of(t) for t in inputs], attrs)
        self.builder.append(node)
        requires = self.grad_enabled and any(t.requires_grad for t in inputs)
        return self.symbolic(node.out, requires)
