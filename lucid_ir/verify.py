"""The verifier: every value is defined once, before use; every node's output type is
what its op's shape rule says; the outputs exist. Passes are checked with it when
``LUCID_DEBUG`` is set, and tests check every pass's result.
"""
from __future__ import annotations

from .graph import Graph
from .ops import get_op


class VerificationError(ValueError):
    pass


def verify(graph: Graph) -> Graph:
    defined = set()
    for v in graph.inputs:
        if v in defined:
            raise VerificationError(f"input {v} is listed twice")
        defined.add(v)
    for i, node in enumerate(graph.nodes):
        for v in node.inputs:
            if v not in defined:
                raise VerificationError(f"node {i} ({node.op}) uses {v} before it is defined")
        for out in node.outs:
            if out in defined:
                raise VerificationError(f"node {i} ({node.op}) redefines {out}")
        check = getattr(node, "verify", None)
        if check is not None:
            check()
        else:
            expected = get_op(node.op).infer(tuple(v.type for v in node.inputs), node.attr_dict)
            if expected != node.out.type:
                raise VerificationError(f"node {i} ({node.op}) has type {node.out.type}, "
                                        f"its shape rule gives {expected}")
        defined.update(node.outs)
    for v in graph.outputs:
        if v not in defined:
            raise VerificationError(f"output {v} is not defined by the graph")
    return graph
