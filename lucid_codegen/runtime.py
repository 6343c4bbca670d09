"""Running fused graphs as native code.

A ``Plan`` is a compiled graph made concrete: a list of steps over numbered slots.
Kernels were compiled (or loaded from the cache) when the plan was built; calling the
plan only moves arrays between slots and calls kernels, back to back.

``run_node`` is the eager path: one op, planned once per signature (op, attributes,
input types) and then looked up in a dict.
"""
from __future__ import annotations

import threading
from collections import OrderedDict

import numpy as np

from lucid_ir.graph import Graph, Node
from lucid_ir.interpreter import check_inputs
from lucid_ir.passes import fuse

from .steps import make_step


class Plan:
    def __init__(self, fused: Graph):
        self.graph = fused
        slot: dict = {}
        for v in fused.inputs:
            slot.setdefault(v, len(slot))
        self.n_inputs = len(fused.inputs)
        self.input_slots = [slot[v] for v in fused.inputs]
        self.steps = []
        self.kinds = []
        constants = {}
        for node in fused.nodes:
            fn, kind = make_step(node)
            for v in node.outs:
                slot[v] = len(slot)
            if kind == "constant":
                constants[slot[node.out]] = fn
                continue
            self.kinds.append(kind)
            reads = getattr(fn, "inputs", node.inputs)  # a gemm names its operands' order
            self.steps.append((fn, tuple(slot[v] for v in reads), tuple(slot[v] for v in node.outs)))
        self.n_slots = len(slot)
        self.constants = list(constants.items())
        inputs_or_consts = set(self.input_slots) | set(constants)
        # outputs that are inputs or constants are copied: callers own what they get
        self.outputs = [(slot[v], slot[v] in inputs_or_consts) for v in fused.outputs]

    def __call__(self, arrays):
        if len(arrays) != self.n_inputs:
            check_inputs(self.graph, arrays)
        env = [None] * self.n_slots
        for s, a in zip(self.input_slots, arrays):
            env[s] = a
        for s, value in self.constants:
            env[s] = value
        for fn, ins, outs in self.steps:
            results = fn(*[env[i] for i in ins])
            for s, r in zip(outs, results):
                env[s] = r
        return [np.array(env[s]) if copy else env[s] for s, copy in self.outputs]

    def llvm_text(self) -> str:
        from .introspect import plan_llvm_text
        return plan_llvm_text(self)

    def asm_text(self) -> str:
        from .introspect import plan_asm_text
        return plan_asm_text(self)


_EAGER: "OrderedDict[tuple, Plan]" = OrderedDict()
_EAGER_LOCK = threading.Lock()
_EAGER_SIZE = 4096


def _single_node_plan(node: Node) -> Plan:
    inputs = tuple(dict.fromkeys(node.inputs))
    return Plan(fuse.run(Graph(inputs, (node,), (node.out,)), enabled=False))


def run_node(node: Node, arrays) -> np.ndarray:
    """Execute one eager op through a native kernel (planned once per signature)."""
    ins = node.inputs
    repeated = len(set(ins)) != len(ins)
    key = (node.op, node.attrs, tuple(v.type for v in ins),
           tuple(ins.index(v) for v in ins) if repeated else None)  # x*x differs from x*y
    plan = _EAGER.get(key)
    if plan is None:
        plan = _single_node_plan(node)
        with _EAGER_LOCK:
            _EAGER[key] = plan
            if len(_EAGER) > _EAGER_SIZE:
                _EAGER.popitem(last=False)
    if repeated:
        arrays = list({id(v): a for v, a in zip(ins, arrays)}.values())
    return plan(arrays)[0]
