"""Graph files: a complete, versioned JSON form of a graph (fused kernels included).

A saved graph replays anywhere (``lucid-ir run GRAPH.json``), so it is a
self-contained bug report.

>>> from lucid_ir.builder import GraphBuilder
>>> b = GraphBuilder(); x = b.input((2, 3))
>>> g = b.build([b.emit("sum", x, axes=(1,))])
>>> str(loads(dumps(g))) == str(g)
True
"""
from __future__ import annotations

import hashlib
import json
import os
import tempfile

from .builder import make_node
from .graph import Graph, Node, Value
from .kernel import KernelNode
from .types import TensorType

FORMAT = "lucid-graph"
VERSION = 1


class GraphFileError(ValueError):
    """A graph file that is malformed, of another format, or from a newer version."""


def _attr_to_json(v):
    return list(v) if isinstance(v, tuple) else v


def _attr_from_json(v):
    return tuple(v) if isinstance(v, list) else v


def to_dict(graph: Graph) -> dict:
    ids: dict[Value, int] = {}

    def vid(v: Value) -> int:
        return ids.setdefault(v, len(ids))

    def typed(v: Value) -> dict:
        return {"id": vid(v), "type": str(v.type)}

    def graph_dict(g: Graph) -> dict:
        nodes = []
        for n in g.nodes:
            if n.op == "kernel":
                nodes.append({"op": "kernel", "kind": n.kind, "body": graph_dict(n.body)})
            else:
                nodes.append({"op": n.op, "inputs": [vid(v) for v in n.inputs],
                              "attrs": {k: _attr_to_json(a) for k, a in n.attrs}, "out": typed(n.out)})
        return {"inputs": [typed(v) for v in g.inputs], "nodes": nodes,
                "outputs": [vid(v) for v in g.outputs]}

    return {"format": FORMAT, "version": VERSION, **graph_dict(graph)}


def from_dict(data: dict) -> Graph:
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise GraphFileError(f"not a lucid graph file (expected \"format\": \"{FORMAT}\")")
    version = data.get("version")
    if not isinstance(version, int) or version > VERSION:
        raise GraphFileError(f"graph file version {version!r} is newer than this lucid "
                             f"understands ({VERSION}); upgrade lucid")
    values: dict[int, Value] = {}

    def value(entry) -> Value:
        v = Value(TensorType.parse(entry["type"]))
        if entry["id"] in values:
            return values[entry["id"]]
        values[entry["id"]] = v
        return v

    def ref(i) -> Value:
        if i not in values:
            raise GraphFileError(f"value {i} is used before it is defined")
        return values[i]

    def graph_from(d, outer_inputs=None) -> Graph:
        inputs = tuple(value(e) for e in d["inputs"])
        nodes = []
        for nd in d["nodes"]:
            if nd["op"] == "kernel":
                nodes.append(KernelNode(nd["kind"], graph_from(nd["body"])))
                continue
            attrs = {k: _attr_from_json(a) for k, a in nd.get("attrs", {}).items()}
            node = make_node(nd["op"], [ref(i) for i in nd["inputs"]], attrs)
            declared = TensorType.parse(nd["out"]["type"])
            if node.out.type != declared:
                raise GraphFileError(f"node {nd['op']}: the file says {declared}, the op's "
                                     f"shape rule gives {node.out.type}")
            values[nd["out"]["id"]] = node.out
            nodes.append(node)
        return Graph(inputs, tuple(nodes), tuple(ref(i) for i in d["outputs"]))

    try:
        return graph_from(data)
    except GraphFileError:
        raise
    except (KeyError, TypeError, IndexError, AttributeError) as exc:
        raise GraphFileError(f"malformed graph file: {type(exc).__name__}: {exc}") from None


def dumps(graph: Graph) -> str:
    return json.dumps(to_dict(graph), indent=1)


def loads(text: str) -> Graph:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise GraphFileError(f"not valid JSON: {exc}") from None
    return from_dict(data)


def load_graph(path: str) -> Graph:
    with open(path, encoding="utf-8") as f:
        return loads(f.read())


def save_graph(graph: Graph, directory: str, name: str = "graph") -> str:
    """Write ``graph`` to ``directory/NAME-HASH.json`` atomically; return the path."""
    text = dumps(graph)
    os.makedirs(directory, exist_ok=True)
    digest = hashlib.sha256(text.encode()).hexdigest()[:10]
    path = os.path.join(directory, f"{name}-{digest}.json")
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=".tmp-", suffix=".json")
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(text)
    os.replace(tmp, path)
    return path
