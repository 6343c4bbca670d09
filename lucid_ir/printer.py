"""The one way a graph becomes text: jaxpr style, deterministic names.

Values are numbered ``%0, %1, ...`` in order of appearance (inputs first, then node
outputs), so the same graph always prints the same. Attributes that the output type
already shows (a constant's shape and dtype, a reshape's target shape) are omitted.

>>> from lucid_ir.builder import GraphBuilder
>>> b = GraphBuilder()
>>> x, w = b.input((2, 3)), b.input((4, 3))
>>> print(b.build([b.emit("matmul", x, w, trans_b=True)]))
{ lambda ; %0:f32[2,3] %1:f32[4,3]. let
    %2:f32[2,4] = matmul[trans_b=True] %0 %1
  in (%2) }
"""
from __future__ import annotations

from .graph import Graph, Node, Value

# Attributes shown by the output type, or at their default value, are not printed.
_IMPLIED = {"constant": ("shape", "dtype"), "iota": ("shape", "dtype"), "random_uniform": ("shape", "dtype"),
            "random_normal": ("shape", "dtype"), "cast": (), "reshape": ("shape",), "broadcast_to": ("shape",)}
_DEFAULTS = {"trans_a": False, "trans_b": False, "keepdims": False}


class Namer:
    """Assigns ``%n`` names in first-seen order."""

    def __init__(self):
        self.names: dict[Value, str] = {}

    def __call__(self, v: Value) -> str:
        if v not in self.names:
            self.names[v] = f"%{len(self.names)}"
        return self.names[v]


def format_attr_value(v) -> str:
    if isinstance(v, tuple):
        return "(" + ",".join(map(str, v)) + ("," if len(v) == 1 else "") + ")"
    return repr(v) if isinstance(v, str) else str(v)


def format_attrs(node: Node) -> str:
    implied = _IMPLIED.get(node.op, ())
    shown = [(k, v) for k, v in node.attrs if k not in implied and _DEFAULTS.get(k, object()) != v]
    if not shown:
        return ""
    return "[" + ",".join(f"{k}={format_attr_value(v)}" for k, v in shown) + "]"


def format_node(node: Node, name: Namer, indent: str = "    ") -> str:
    args = " ".join(name(v) for v in node.inputs)
    out = f"{name(node.out)}:{node.out.type}"
    return f"{indent}{out} = {node.op}{format_attrs(node)}{' ' + args if args else ''}"


def format_graph(graph: Graph, name: Namer | None = None) -> str:
    name = name or Namer()
    params = " ".join(f"{name(v)}:{v.type}" for v in graph.inputs)
    lines = [f"{{ lambda ; {params}. let"]
    for node in graph.nodes:
        body = getattr(node, "format_body", None)
        lines.append(body(name) if body else format_node(node, name))
    lines.append(f"  in ({', '.join(name(v) for v in graph.outputs)}) }}")
    return "\n".join(lines)
