"""Compiling a plan's kernels ahead, in parallel: before a plan builds its steps one by
one (each loading its kernel), the object files of its GEMM kernels and of their shared
cores are compiled on the compile pool (compile_pool.py) at the same time; building the
steps then only links them. Kernels already loaded or on disk cost nothing here.

>>> from lucid_ir.builder import GraphBuilder
>>> from lucid_ir.passes.fuse import run as fuse
>>> b = GraphBuilder()
>>> x, w = b.input((4, 8)), b.input((3, 8))
>>> graph = fuse(b.build([b.emit("matmul", x, w, trans_b=True)]))
>>> precompile_plan(graph)          # the GEMM's object compiled (or found): no error
"""
from __future__ import annotations

from lucid_ir.graph import Graph

from . import compile_pool
from .gemm_call import precompile_tasks
from .steps import GemmStep

__all__ = ["precompile_plan"]


def precompile_plan(fused: Graph) -> None:
    """The object files of the fused graph's GEMM kernels, compiled in parallel."""
    nodes = [n for n in fused.nodes if n.op == "kernel" and n.kind == "gemm"]
    if not nodes or compile_pool.threads() <= 1:
        return
    compile_pool.run_all(precompile_tasks([GemmStep.spec_of(n) for n in nodes]))
