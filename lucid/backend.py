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


class Interpreted:
    """An executable that runs a (fused) graph with the reference interpreter."""

    def __init__(self, graph: Graph):
        self.graph = graph

    def __call__(self, arrays):
        return interpret(self.graph, arrays)


def executable(fused: Graph):
    """A callable ``arrays -> outputs`` for a graph that has been through fusion."""
    if backend_name() == "compiled":
        runtime = _compiled()
        if runtime is not None:
            return runtime.Plan(fused)
    return Interpreted(fused)
