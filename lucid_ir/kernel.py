"""``KernelNode``: a fused group of nodes that becomes one native kernel.

The fusion pass outlines each group into a KernelNode. Its ``body`` is an ordinary graph
over the *same* Value objects as the enclosing graph: ``body.inputs`` are the kernel's
inputs, ``body.outputs`` its outputs (``outs``). So a printed fused graph shows every
kernel's boundary and what runs inside it, under one naming.

``kind`` says which code generator lowers it: ``gemm`` (a matmul with its epilogue),
``elementwise`` (one loop over a shape), ``reduction`` (a prologue and one reduction), ``rows`` (reductions over the last axis
and the elementwise work around them, row by row: ``passes.fuse_rows``).
"""
from __future__ import annotations

from dataclasses import dataclass

from .graph import Graph, Value

KINDS = ("gemm", "elementwise", "reduction", "rows")


@dataclass(frozen=True, eq=False)
class KernelNode:
    kind: str
    body: Graph
    op: str = "kernel"
    attrs: tuple = ()

    @property
    def inputs(self) -> tuple[Value, ...]:
        return self.body.inputs

    @property
    def outs(self) -> tuple[Value, ...]:
        return self.body.outputs

    @property
    def ops(self) -> list[str]:
        """The primitive ops inside, in order (constants included)."""
        return [n.op for n in self.body.nodes]

    @property
    def attr_dict(self) -> dict:
        return {}

    def format_body(self, name) -> str:
        from .printer import format_node
        outs = ", ".join(f"{name(v)}:{v.type}" for v in self.outs)
        args = ", ".join(name(v) for v in self.inputs)
        lines = [f"    ({outs}) = kernel[{self.kind}]({args}) {{"]
        lines += [format_node(n, name, indent="      ") for n in self.body.nodes]
        lines.append("    }")
        return "\n".join(lines)

    def verify(self) -> None:
        from .verify import VerificationError, verify
        if self.kind not in KINDS:
            raise VerificationError(f"kernel of unknown kind {self.kind!r}")
        if any(isinstance(n, KernelNode) for n in self.body.nodes):
            raise VerificationError("kernels do not nest")
        verify(self.body)
