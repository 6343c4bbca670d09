"""The op table: for every primitive, its attribute check, shape/dtype rule, numpy
reference semantics and gradient rule stand together in one class.

Adding an op is one edit: subclass ``OpDef`` in the module of its group (the base
classes there set its traits) and decorate with ``@register``; ``lucid_ir.opnames``
lists it from its traits.

**Traits** are what the passes ask instead of comparing op names (class attributes,
set on the group's base class and overridden per op where one differs):

- ``group``: elementwise, reduction, scan, movement, indexing, matmul, source,
  collective or attention (a movement op has one input and only places its elements:
  every output element is one input element, no new values, so a unary elementwise op
  of it may run before it, on its source, ``simplify``); ``kind`` refines it: elementwise into unary, binary,
  comparison, select and random; indexing's ``embed`` and ``embed_sum`` (zeros with
  their inputs added into strided ranges, attributes ``shape starts stops steps``) are
  of kind embed;
- ``random``: values drawn per position of the op's own shape (so it runs only in a
  loop over exactly that shape: never moved into a bigger loop or a prologue);
- ``fusible``: an elementwise op that may join a loop over another op's elements (a
  GEMM epilogue, a reduction's prologue, a rows kernel): elementwise and not random;
- ``row_reduction``: a reduction a rows kernel runs (softmax's max and sum, ...);
- ``cost``: the work it adds per element beyond moving its operands, in bytes that
  take as long to move (exp ~12: a vectorised exp takes what 12 bytes take at cache
  speed, measured by ``benchmarks/calibrate_splits.py``); the splitting cost model
  (``lucid_codegen.runtime.work_split``) and the rows kernels' stash decision read it;
- ``units``: ``(left, right)`` identity operands (``x * 1``, ``0 + x``: ``mul`` has
  ``(1.0, 1.0)``, ``sub`` ``(None, 0.0)``), for simplify;
- ``involution``: ``op(op(x)) == x`` (``neg``, ``logical_not``, ``bitwise_not``);
- ``forwards(node)``: whether this node's output is its first input unchanged (a
  reshape to the same shape, an identity transpose, ``stop_gradient``), for simplify.

>>> get_op("exp").group, get_op("exp").fusible, get_op("exp").cost > 0
('elementwise', True, True)
>>> get_op("random_normal").fusible, get_op("sum").row_reduction, get_op("prod").row_reduction
(False, True, False)
>>> get_op("sub").units, get_op("reshape").group
((None, 0.0), 'movement')
"""
from __future__ import annotations

import numpy as np

from ..types import TensorType

_REGISTRY: dict[str, "OpDef"] = {}


class OpDef:
    """Base of every op definition. Subclasses set ``name`` and ``arity``."""

    name: str = ""
    arity: int | None = None  # None: any number of inputs
    attr_names: tuple[str, ...] = ()

    # -- traits (see the module docstring)
    group: str = ""
    kind: str = ""
    random: bool = False
    row_reduction: bool = False
    cost: int = 0
    units: tuple = (None, None)
    involution: bool = False

    @property
    def elementwise(self) -> bool:
        return self.group == "elementwise"

    @property
    def fusible(self) -> bool:
        return self.group == "elementwise" and not self.random

    def forwards(self, node) -> bool:
        """Whether ``node`` (an application of this op) returns its first input unchanged."""
        return False

    def normalize_attrs(self, inputs, attrs: dict) -> dict:
        """Validate attributes (and the input count); return them in canonical form."""
        if self.arity is not None and len(inputs) != self.arity:
            raise ValueError(f"{self.name}: expects {self.arity} inputs, got {len(inputs)}")
        unknown = set(attrs) - set(self.attr_names)
        if unknown:
            raise ValueError(f"{self.name}: unknown attributes {sorted(unknown)}")
        return attrs

    def infer(self, types: tuple[TensorType, ...], attrs: dict) -> TensorType:
        raise NotImplementedError

    def evaluate(self, arrays: list[np.ndarray], attrs: dict) -> np.ndarray:
        raise NotImplementedError

    def grad(self, b, node, g):
        """Return one gradient value (or None: no gradient) per input of ``node``.

        ``b`` is the GraphBuilder of the backward graph, ``g`` the gradient of ``node.out``.
        """
        raise NotImplementedError


def register(cls):
    inst = cls()
    _REGISTRY[inst.name] = inst
    return cls


def all_ops() -> tuple[OpDef, ...]:
    """Every registered op, in registration order."""
    return tuple(_REGISTRY.values())


def get_op(name: str) -> OpDef:
    try:
        return _REGISTRY[name]
    except KeyError:
        raise ValueError(f"unknown op {name!r}") from None


def same_dtype(op: str, types) -> str:
    dtypes = {t.dtype for t in types}
    if len(dtypes) > 1:
        listed = " and ".join(str(t) for t in types)
        raise TypeError(f"{op}: operands {listed} have different dtypes; cast one first")
    return dtypes.pop()


from . import (attention, collective, elementwise, indexing, matmul, movement, random, reduction, scan,  # noqa: E402,F401
               slicing, sorting, source)  # (registers)
