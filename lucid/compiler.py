"""The compiler pipeline, in order, in one place:

    traced graph → simplify → fuse → verify → lower each kernel → an executable plan

(the passes are ``lucid_ir.pipeline``'s, with its ``COMPILE`` options)

``compile_graph`` runs it on any graph (a function traced by ``lucid.compile``, or a
backward graph derived by the autodiff pass) and keeps every stage for inspection.
``LUCID_FUSION=0`` skips fusion (every compute op becomes its own kernel), for
comparison. ``LUCID_DEBUG=1`` logs each stage's graph and where the time went (see
``lucid_ir.debug`` and ``lucid_ir.compile_times``).
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field

from lucid_ir import compile_times, debug, pipeline
from lucid_ir.compile_times import phase
from lucid_ir.executable import Executable
from lucid_ir.graph import Graph
from lucid_ir.printer import Namer, format_graph

from . import backend


def fusion_enabled() -> bool:
    return os.environ.get("LUCID_FUSION", "1").strip().lower() not in ("0", "false", "off", "no")


@dataclass(frozen=True)
class KernelInfo:
    """One kernel of a compiled graph: its kind and the primitive ops it runs."""

    kind: str
    ops: tuple[str, ...]

    def __repr__(self) -> str:
        return f"Kernel({self.kind}: {' + '.join(self.ops)})"


@dataclass
class CompiledGraph:
    traced: Graph
    simplified: Graph
    fused: Graph
    executable: Executable = field(repr=False)

    def __call__(self, arrays):
        return self.executable(arrays)

    @property
    def kernels(self) -> list[KernelInfo]:
        return [KernelInfo(n.kind, tuple(op for op in n.ops if op != "constant"))
                for n in self.fused.nodes if n.op == "kernel"]

    def fused_text(self) -> str:
        """The fused graph as text, then which outputs the plan writes into input arrays
        (a training step's updated parameters): by the kernel that computes them, or
        copied after the kernels."""
        name = Namer()
        text = format_graph(self.fused, name)
        pairs = self.executable.donations
        if not pairs:
            return text
        direct = self.executable.in_place_direct
        g = self.fused
        lines = [f"#   {name(g.outputs[j])} -> {name(g.inputs[i])} "
                 f"({'written by its kernel' if j in direct else 'copied after the kernels'})"
                 for j, i in pairs]
        return text + "\n# outputs written into input arrays:\n" + "\n".join(lines)

    def llvm_text(self) -> str:
        return self.executable.llvm_text()

    def asm_text(self) -> str:
        return self.executable.asm_text()


# Callables told about every graph compiled in this process: ``observer(name, compiled)``
# (``lucid-ir dump`` listens here).
observers: list = []


def compile_graph(graph: Graph, name: str = "graph", in_place=None) -> CompiledGraph:
    """``graph`` through the pipeline above; ``in_place={output: input}`` donates inputs
    to outputs (see ``backend.executable``). With ``LUCID_DEBUG`` set, each pass is timed
    (``lucid_ir.compile_times``): as part of the compilation being recorded (a function
    compiled by ``lucid.compile``), else as a compilation of its own, reported here."""
    with compile_times.compilation(name):
        debug.log_stage(name, "traced", graph)
        stages = pipeline.run(graph, pipeline.Options(fusion=fusion_enabled()), name)
        with phase(f"{name}: lower to kernels"):
            compiled = CompiledGraph(graph, stages.simplified, stages.fused,
                                     backend.executable(stages.fused, in_place))
        debug.log_code(name, compiled)
    for observe in observers:
        observe(name, compiled)
    return compiled
