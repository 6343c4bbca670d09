"""Where graphs run. ``LUCID_BACKEND=interpret`` runs them with the numpy reference
interpreter; the default, ``compiled``, runs them as native kernels (see
``lucid_codegen``). Eager ops and backward graphs both come through here, so the two
paths always agree on how a graph is executed.
"""
from __future__ import annotations

import os

import numpy as np

from lucid_ir.graph import Graph, Node
from lucid_ir.interpreter import evaluate_node, interpret

BACKENDS = ("interpret", "compiled")


def backend_name() -> str:
    name = os.environ.get("LUCID_BACKEND", "compiled")
    if name not in BACKENDS:
        raise ValueError(f"LUCID_BACKEND={name!r}: expected one of {', '.join(BACKENDS)}")
    return name


def _compiled():
    try:
        from lucid_codegen import runtime
    except ImportError:
        return None
    return runtime


def run_node(node: Node, arrays: list[np.ndarray]) -> np.ndarray:
    """Execute one eager op."""
    if backend_name() == "compiled":
        runtime = _compiled()
        if runtime is not None:
            return runtime.run_node(node, arrays)
    return evaluate_node(node, arrays)


def run_graph(graph: Graph, arrays: list[np.ndarray]) -> list[np.ndarray]:
    """Execute a whole graph (a backward graph, or a compiled function's graph)."""
    if backend_name() == "compiled":
        runtime = _compiled()
        if runtime is not None:
            return runtime.run_graph(graph, arrays)
    return interpret(graph, arrays)
