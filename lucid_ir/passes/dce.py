"""Dead-code elimination: drop nodes whose values no output needs.

>>> from lucid_ir.builder import GraphBuilder
>>> b = GraphBuilder(); x = b.input((2,))
>>> _unused = b.emit("exp", x)
>>> print(run(b.build([b.emit("neg", x)])))
{ lambda ; %0:f32[2]. let
    %1:f32[2] = neg %0
  in (%1) }
"""
from __future__ import annotations

from ..graph import Graph


def run(graph: Graph) -> Graph:
    live = set(graph.outputs)
    kept = []
    for node in reversed(graph.nodes):
        if any(v in live for v in node.outs):
            kept.append(node)
            live.update(node.inputs)
    return Graph(graph.inputs, tuple(reversed(kept)), graph.outputs)
