"""The op table: for every primitive, its attribute check, shape/dtype rule, numpy
reference semantics and gradient rule stand together in one class.

Adding an op is one edit: subclass ``OpDef`` in the module of its group, decorate with
``@register``, and add its name to ``lucid_ir.opnames``.
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
