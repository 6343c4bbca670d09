"""The graph IR: immutable typed values and nodes, and a graph = inputs + nodes + outputs.

A ``Value`` is identified by the object itself (two values of the same type are
different values). A ``Node`` applies one primitive op to input values and defines
exactly one output value. A ``Graph`` lists its nodes in an order where every input is
defined before use, so printing, interpreting and lowering are each a single walk.

>>> from lucid_ir.builder import GraphBuilder
>>> b = GraphBuilder()
>>> x = b.input((2, 3), "float32")
>>> y = b.emit("exp", x)
>>> g = b.build([y])
>>> print(g)
{ lambda ; %0:f32[2,3]. let
    %1:f32[2,3] = exp %0
  in (%1) }
"""
from __future__ import annotations

import itertools
from dataclasses import dataclass, field

from .types import TensorType

_ids = itertools.count()


@dataclass(frozen=True, eq=False)
class Value:
    """One typed value of a graph. ``uid`` only orders creation; printing renumbers."""

    type: TensorType
    uid: int = field(default_factory=lambda: next(_ids))

    @property
    def shape(self) -> tuple[int, ...]:
        return self.type.shape

    @property
    def ndim(self) -> int:
        return len(self.type.shape)

    @property
    def dtype(self) -> str:
        return self.type.dtype

    def __repr__(self) -> str:
        return f"Value#{self.uid}:{self.type}"


@dataclass(frozen=True, eq=False)
class Node:
    """``out = op[attrs](*inputs)``. ``attrs`` is a sorted tuple of (name, value) pairs."""

    op: str
    inputs: tuple[Value, ...]
    attrs: tuple[tuple[str, object], ...]
    out: Value

    @property
    def outs(self) -> tuple[Value, ...]:
        """The values this node defines (one; a fused KernelNode may define several)."""
        return (self.out,)

    def attr(self, name: str, default=None):
        for k, v in self.attrs:
            if k == name:
                return v
        return default

    @property
    def attr_dict(self) -> dict:
        return dict(self.attrs)


@dataclass(frozen=True, eq=False)
class Graph:
    inputs: tuple[Value, ...]
    nodes: tuple[Node, ...]
    outputs: tuple[Value, ...]

    def __str__(self) -> str:
        from .printer import format_graph
        return format_graph(self)

    def structure_key(self) -> tuple:
        """A hashable key, equal for graphs with the same input types, ops, attributes
        and wiring (what the printed graph shows, without printing it). Float
        attributes compare by their bits, so constants 0.0 and -0.0 differ.

        >>> from lucid_ir.builder import GraphBuilder
        >>> def scaled(c):
        ...     b = GraphBuilder()
        ...     x = b.input((3,))
        ...     return b.build([b.emit("mul", x, b.constant(c))]).structure_key()
        >>> scaled(2.0) == scaled(2.0), scaled(0.0) == scaled(-0.0)
        (True, False)
        """
        index = {v: i for i, v in enumerate(self.inputs)}
        parts = [tuple(v.type for v in self.inputs)]
        for n in self.nodes:
            attrs = tuple((k, v.hex() if type(v) is float else v) for k, v in n.attrs)
            parts.append((n.op, attrs, tuple([index[v] for v in n.inputs])))
            for v in n.outs:
                index[v] = len(index)
        parts.append(tuple([index[v] for v in self.outputs]))
        return tuple(parts)

    def producers(self) -> dict[Value, Node]:
        """Map each node-defined value to its node."""
        return {v: n for n in self.nodes for v in n.outs}

    def users(self) -> dict[Value, list[Node]]:
        """Map each value to the nodes that read it, in graph order."""
        out: dict[Value, list[Node]] = {}
        for n in self.nodes:
            for v in n.inputs:
                out.setdefault(v, []).append(n)
        return out
