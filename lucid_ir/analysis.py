"""Graph analyses with networkx, and DOT export.

>>> from lucid_ir.builder import GraphBuilder
>>> b = GraphBuilder(); x = b.input((2,)); y = b.emit("exp", x); z = b.emit("neg", y)
>>> g = b.build([z])
>>> [n.op for n in topological_nodes(g)]
['exp', 'neg']
>>> reaches(g, x, z)
True
"""
from __future__ import annotations

import networkx as nx

from .graph import Graph, Value
from .printer import Namer, format_attrs


def to_networkx(graph: Graph) -> nx.DiGraph:
    """A DiGraph over values: an edge u → v when a node reading u defines v."""
    g = nx.DiGraph()
    for v in graph.inputs:
        g.add_node(v, kind="input")
    for n in graph.nodes:
        for out in n.outs:
            g.add_node(out, kind="node", node=n)
            for v in n.inputs:
                g.add_edge(v, out)
    return g


def topological_nodes(graph: Graph):
    """The graph's nodes in a topological order computed by networkx."""
    g = to_networkx(graph)
    nodes = [g.nodes[v]["node"] for v in nx.topological_sort(g) if g.nodes[v]["kind"] == "node"]
    return list(dict.fromkeys(nodes))  # a multi-output kernel appears once


def reaches(graph: Graph, src: Value, dst: Value) -> bool:
    """Whether ``dst`` depends on ``src``."""
    return src is dst or nx.has_path(to_networkx(graph), src, dst)


def _quote(text: str) -> str:
    return '"' + text.replace('"', '\\"') + '"'


def _dot_node(n, names, indent: str) -> list[str]:
    label = f"{names(n.out)} = {n.op}{format_attrs(n)}\\n{n.out.type}"
    lines = [f"{indent}{_quote(names(n.out))} [shape=box, label={_quote(label)}];"]
    lines += [f"{indent}{_quote(names(v))} -> {_quote(names(n.out))};" for v in n.inputs]
    return lines


def to_dot(graph: Graph, name: str = "lucid") -> str:
    """Graphviz DOT text: one box per node, labelled with op, attributes and type; each
    fused kernel is a cluster around the nodes it runs."""
    names = Namer()
    lines = [f"digraph {name} {{", "  rankdir=TB;", "  node [fontname=monospace];"]
    for v in graph.inputs:
        lines.append(f"  {_quote(names(v))} [shape=ellipse, label={_quote(names(v) + ':' + str(v.type))}];")
    kernels = 0
    for n in graph.nodes:
        if n.op == "kernel":
            lines.append(f"  subgraph cluster_{kernels} {{")
            lines.append(f"    label={_quote(f'kernel {kernels} [{n.kind}]')}; style=rounded;")
            for inner in n.body.nodes:
                lines += _dot_node(inner, names, "    ")
            lines.append("  }")
            kernels += 1
        else:
            lines += _dot_node(n, names, "  ")
    for i, v in enumerate(graph.outputs):
        lines.append(f"  {_quote('out' + str(i))} [shape=plaintext];")
        lines.append(f"  {_quote(names(v))} -> {_quote('out' + str(i))};")
    lines.append("}")
    return "\n".join(lines)
