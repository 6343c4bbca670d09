"""A GEMM's epilogue: the elementwise subgraph the kernel applies to each tile of C.

The fusion pass (``lucid_ir.passes.fuse``) puts a matmul's elementwise consumers into
its group; ``Epilogue.of_graph`` reduces that subgraph to an elementwise
:class:`~lucid_codegen.kernels.elementwise.Structure` whose inputs are the product
``P = alpha * A·B`` followed by at most one **row** operand (shape (N,), (1, N), ...: a
bias, read through the kernel's bias pointer) and at most one **full** operand (C's
shape: a residual, a saved activation, a gradient; read through the R pointer), and
whose one output is what the kernel stores in C. Scalar constants are nodes of the
structure. The tile store emits it on each vector of C with the elementwise kernels'
own op emitters (``elementwise.emit_structure``), so a fused GELU, SiLU, relu mask
``select(r > 0, g, 0)`` or GELU backward computes exactly what its unfused kernel
computes. The cache key is the structure's text (ops, constants' bits, wiring, operand
kinds), never a shape.

>>> e = Epilogue.chain("float32", bias=True, activation="relu")
>>> e.bias, e.reads_r, e.linear
(True, False, False)
>>> Epilogue.chain("float32", bias=True, residual=True).linear
True
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

from lucid_ir.builder import GraphBuilder
from lucid_ir.graph import Graph

from lucid_codegen.kernels.elementwise import Structure, emit_structure, structure_of

#: operand kinds, in the order they follow P among the structure's inputs
KINDS = ("row", "full")
ACTIVATIONS = ("none", "relu", "sigmoid", "tanh")


@dataclass(frozen=True)
class Epilogue:
    """What the tile store computes from P (see the module docstring). Compared and
    hashed by ``text`` (the structure's canonical text and the operand kinds)."""

    dtype: str
    kinds: tuple = ()
    text: str = ""
    structure: Structure | None = field(default=None, compare=False, repr=False)

    @classmethod
    def of_graph(cls, graph: Graph, kinds) -> "Epilogue":
        """The epilogue of ``graph``: inputs P then the operands of ``kinds`` (each of
        ``KINDS`` at most once, in that order), one output of P's dtype; every node
        elementwise or a scalar constant."""
        kinds = tuple(kinds)
        if kinds not in ((), ("row",), ("full",), ("row", "full")):
            raise ValueError(f"gemm epilogue: operand kinds must be a sub-sequence of {KINDS}, got {kinds}")
        if len(graph.inputs) != 1 + len(kinds) or len(graph.outputs) != 1:
            raise ValueError("gemm epilogue: needs inputs P and one per operand kind, and one output")
        dtype = graph.inputs[0].dtype
        if any(v.dtype != dtype for v in graph.inputs + graph.outputs):
            raise TypeError(f"gemm epilogue: operands and output must be {dtype}")
        if not graph.nodes and graph.outputs[0] is graph.inputs[0]:
            return cls(dtype, kinds)  # P stored as it is (operands unread)
        st = structure_of(graph)
        return cls(dtype, kinds, f"{'+'.join(kinds) or '-'}|{st.text}", st)

    @classmethod
    def chain(cls, dtype: str, bias: bool = False, activation: str = "none",
              residual: bool = False, gate: bool = False, scale: float | None = None) -> "Epilogue":
        """The epilogue ``act(scale * P + bias) + R`` (with ``gate``,
        ``select(R > 0, act(scale * P + bias), 0)``: relu's backward): a convenience
        for direct callers of the kernels (tests, benchmarks)."""
        if activation not in ACTIVATIONS:
            raise ValueError(f"gemm epilogue: activation must be one of {ACTIVATIONS}, got {activation!r}")
        if residual and gate:
            raise ValueError("gemm epilogue: residual and gate both read R; choose one")
        g = GraphBuilder()
        p = g.input((2, 3), dtype)
        row = g.input((3,), dtype) if bias else None
        r = g.input((2, 3), dtype) if residual or gate else None
        y = p if scale is None else g.emit("mul", p, g.constant(scale, dtype=dtype))
        if row is not None:
            y = g.emit("add", y, row)
        if activation == "relu":
            y = g.emit("maximum", y, g.constant(0.0, dtype=dtype))
        elif activation != "none":
            y = g.emit(activation, y)
        if gate:
            y = g.emit("select", g.emit("gt", r, g.constant(0.0, dtype=dtype)), y, g.constant(0.0, dtype=dtype))
        elif residual:
            y = g.emit("add", y, r)
        kinds = ("row",) * bias + ("full",) * (residual or gate)
        return cls.of_graph(g.build([y]), kinds)

    # -- what the kernel needs to know ------------------------------------------------
    @property
    def bias(self) -> bool:
        """Whether the kernel reads a row operand (through its bias pointer)."""
        return "row" in self.kinds

    @property
    def reads_r(self) -> bool:
        """Whether the kernel reads an (M, N) operand (through its R pointer)."""
        return "full" in self.kinds

    @property
    def linear(self) -> bool:
        """Whether C is ``scale * P`` plus or minus operands (``linear_form``): K blocks
        may then accumulate into C, the operands added on the first block (``init``)."""
        return self.linear_form() is not None

    def linear_form(self):
        """``(scale, terms)`` when the epilogue computes ``scale * P + Σ sign * operand``
        exactly as written (P scaled by constants before any operand comes in, negated,
        operands added or subtracted: ``W - 0.1 * P``), ``terms`` being (kind, sign)
        pairs in order; else None."""
        if self.structure is None:
            return 1.0, ()
        st, prev, scale, terms = self.structure, ("i", 0), 1.0, []
        consts = {("n", k): dict(attrs)["value"] for k, (op, attrs, _, _) in enumerate(st.nodes)
                  if op == "constant"}
        for k, (op, _, refs, _) in enumerate(st.nodes):
            if op == "constant":
                continue
            if prev not in refs or refs.count(prev) != 1:
                return None
            other = [r for r in refs if r != prev]
            if op == "neg":
                scale, terms = -scale, [(kind, -sign) for kind, sign in terms]
            elif op == "mul" and not terms and other[0] in consts:
                scale *= consts[other[0]]
            elif op in ("add", "sub") and other[0][0] == "i" and other[0][1] != 0:  # (P again: not an operand)
                kind = self.kinds[other[0][1] - 1]
                if op == "sub" and refs[0] == other[0]:  # operand - (...): negate what came before
                    scale, terms = -scale, [(t, -sign) for t, sign in terms]
                terms.append((kind, -1 if op == "sub" and refs[1] == other[0] else 1))
            else:
                return None
            prev = ("n", k)
        return (scale, tuple(terms)) if st.outputs == (prev,) else None

    def tag(self) -> str:
        """A short name for symbols: the kinds and a digest of the text."""
        digest = hashlib.sha1(self.text.encode()).hexdigest()[:10] if self.structure is not None else "none"
        return f"{''.join(k[0] for k in self.kinds) or 'p'}_{digest}"

    def emit(self, b, p, row=None, full=None):
        """The stored value of a vector ``p`` of P (``row``, ``full``: the operands'
        vectors at the same positions)."""
        if self.structure is None:
            return p
        values = {"row": row, "full": full}
        inputs = [lambda: p] + [lambda v=values[k]: v for k in self.kinds]
        _, get = emit_structure(b, self.structure, inputs, p.type.count)
        return get(self.structure.outputs[0])


def none(dtype: str) -> Epilogue:
    """The epilogue that stores P."""
    return Epilogue(dtype)
