"""Which elementwise ops each GEMM applies as its epilogue (planned on the whole graph).

For each matmul whose operands are matrices (no 1-D operand), ``plan`` walks the nodes
after it in order and takes an elementwise op of the product's shape (its dtype or
bool; no random op) that reads the product or an op taken before, when each of its
other inputs is available in the GEMM's tile:

- a scalar constant;
- an **operand** the kernel reads: at most one row ((N,), (1, N), ...: a bias) and one
  value of the product's shape (a residual, a saved activation, a mask's input), both
  of the product's dtype and not computed from it;
- the product or an op taken before seen through a ``reshape`` that only splits or
  merges its rows (``same_rows``: a linear layer on (batch, tokens, features) is a 2-D
  product reshaped back): the epilogue's ops and operands then have that shape;
- a value **recomputed** in the tile from those (at most ``MAX_RECOMPUTED`` ops for
  one input): the comparison of a relu mask ``select(gt(r, 0), g, 0)``, and GELU's
  derivative (one value: ``factor``) in an eager backward, recomputed from the one
  saved x instead of being computed by a loop of its own and read back. Where the
  values such a recomputation starts from are computed anyway for other readers (a
  compiled training step's forward loop computes GELU's erfc and x/2 for GELU itself),
  the tile reads the value instead: that loop computes it beside them (``_made_for``).

The kernel stores one array, so the plan is then cut back to its longest prefix that
only its last value leaves (read by an op outside it, or a graph output), of the
product's dtype. ``fuse`` places the planned ops in the GEMM's group as it walks
(``Partition._join_epilogue``), cloning the recomputed values into it.

>>> from lucid_ir.builder import GraphBuilder
>>> b = GraphBuilder()
>>> x, w, r = b.input((8, 4)), b.input((3, 4)), b.input((8, 3))
>>> y = b.emit("matmul", x, w, trans_b=True)
>>> out = b.emit("select", b.emit("gt", r, b.constant(0.0)), y, b.constant(0.0))
>>> p = plan(b.build([out]))[y]
>>> [n.op for n in p.nodes], [v is r for v in p.operands], len(p.recomputed)
(['select'], [True], 1)
"""
from __future__ import annotations

import heapq
from dataclasses import dataclass, field

from ..graph import Graph, Node, Value
from ..ops import get_op

MAX_RECOMPUTED = 12  # ops recomputed in the tile for one input of one epilogue op
MAX_CANDIDATES = 3  # other operands of the product's shape tried (see ``_sources``)


def same_rows(shape, product) -> bool:
    """Whether a value of ``shape`` holds a 2-D ``product``'s elements in its order:
    the same last axis, the rows split or merged (``(16, 64, 512)`` for ``(1024,
    512)``: a linear layer's output seen with its batch axes)."""
    if shape == product:
        return True
    if len(product) != 2 or len(shape) < 2 or shape[-1] != product[-1]:
        return False
    rows = 1
    for d in shape[:-1]:
        rows *= d
    return rows == product[0]


def is_row(shape, n: int, ndim: int) -> bool:
    """Whether an operand of ``shape`` is a bias row for an ``ndim``-D product with ``n``
    columns: (n,), (1, n), (1, 1, n), ... (the same row for every matrix)."""
    return 1 <= len(shape) <= ndim and shape[-1] == n and all(d == 1 for d in shape[:-1])


@dataclass
class Plan:
    """A GEMM's planned epilogue: its ops in order, the operands it reads (value ->
    "row" or "full") and the values it recomputes from them."""

    nodes: list = field(default_factory=list)
    operands: dict = field(default_factory=dict)
    recomputed: set = field(default_factory=set)


class _Downstream:
    """``x in down``: whether value ``x`` is computed from product ``p`` (``p`` itself, or
    made by a node of ``later``, whose positions ``pos`` gives, reading such a value),
    found by walking up from ``x`` and remembered."""

    def __init__(self, p: Value, made_by: dict, pos: dict):
        self.made_by, self.pos = made_by, pos
        self.known: dict = {p: True}

    def __contains__(self, x: Value) -> bool:
        known, made_by, pos = self.known, self.made_by, self.pos
        stack = [x]
        while stack:
            v = stack[-1]
            if v in known:
                stack.pop()
                continue
            q = made_by.get(v)
            if q is None or q not in pos:   # an input, or made before the product
                known[v] = False
                stack.pop()
                continue
            todo = [y for y in q.inputs if y not in known]
            if todo:
                stack.extend(todo)
                continue
            known[v] = any(known[y] for y in q.inputs)
            stack.pop()
        return known[x]


class _Planner:
    def __init__(self, graph: Graph):
        self.made_by = {n.out: n for n in graph.nodes}
        self.readers: dict[Value, list[Node]] = {}
        for n in graph.nodes:
            for x in n.inputs:
                self.readers.setdefault(x, []).append(n)
        self.outputs = set(graph.outputs)
        self._later, self._pos = None, {}

    def _scalar_constant(self, v: Value) -> bool:
        p = self.made_by.get(v)
        return p is not None and p.op == "constant" and v.shape == ()

    def _available(self, x: Value, p: Value, members, down, plan: Plan, budget: list, full=None) -> bool:
        """Whether ``x`` can be had in the tile of product ``p`` (recording an operand or
        a recomputation in ``plan``); ``full``: the only operand of ``p``'s shape allowed."""
        if x in members or x in plan.recomputed or x in plan.operands or self._scalar_constant(x):
            return True
        if x not in down and x.dtype == p.dtype:
            kind = ("full" if same_rows(x.shape, p.shape) else
                    "row" if is_row(x.shape, p.shape[-1], max(p.ndim, len(x.shape))) else None)
            if kind == "full" and full is not None and x is not full:
                kind = None
            if kind is not None and kind not in plan.operands.values():
                plan.operands[x] = kind
                return True
        q = self.made_by.get(x)
        if (q is None or not get_op(q.op).fusible or budget[0] == 0
                or not (x.shape == () or same_rows(x.shape, p.shape)
                        or is_row(x.shape, p.shape[-1], max(p.ndim, len(x.shape))))):
            return False
        budget[0] -= 1
        if not all(self._available(y, p, members, down, plan, budget, full) for y in q.inputs):
            return False
        plan.recomputed.add(x)
        return True

    def _positions(self, later) -> dict:
        """Node -> its index in ``later`` (kept for the last list asked about: one
        product's ``plan`` asks about the same list many times)."""
        if self._later is not later:
            self._later, self._pos = later, {n: i for i, n in enumerate(later)}
        return self._pos

    def _select(self, p: Value, later, stop=None, full=None) -> Plan:
        """The ops of ``later`` the tile of ``p`` can apply, in order (the first
        ``stop`` taken, when given; ``full``: the only operand of ``p``'s shape).
        Only nodes reading ``p`` or an op taken can join: they are visited in
        ``later``'s order, found through the readers, not the whole rest of the graph
        (a transformer's products each have most of it after them); which values are
        computed from ``p`` is asked only of the values those nodes read
        (:class:`_Downstream`)."""
        plan, members = Plan(), {p}
        pos, queued, heap = self._positions(later), set(), []
        down = _Downstream(p, self.made_by, pos)

        def watch(v):
            for r in self.readers.get(v, ()):
                i = pos.get(r)
                if i is not None and i not in queued:
                    queued.add(i)
                    heapq.heappush(heap, i)
        watch(p)
        while heap:
            if stop is not None and len(plan.nodes) == stop:
                break
            n = later[heapq.heappop(heap)]
            if n.op == "reshape" and same_rows(n.out.shape, p.shape):
                plan.nodes.append(n)  # a view of the tile's rows (the layer's batch axes)
                members.add(n.out)
                watch(n.out)
            elif get_op(n.op).fusible and same_rows(n.out.shape, p.shape) and n.out.dtype in (p.dtype, "bool"):
                trial = Plan(plan.nodes, dict(plan.operands), set(plan.recomputed))
                if all(self._available(x, p, members, down, trial, [MAX_RECOMPUTED], full) for x in n.inputs):
                    plan = trial
                    plan.nodes.append(n)
                    members.add(n.out)
                    watch(n.out)
        return plan

    def _sources(self, x: Value, p: Value) -> list:
        """Values of ``p``'s shape and dtype that ``x`` is computed from by elementwise
        ops: those it starts from (made by no such op: GELU's saved x, from which its
        derivative is remade, not one of its halves), then the nearest others (at most
        ``MAX_CANDIDATES`` of each): an operand every value the epilogue reads may be
        recomputed from."""
        found, roots, frontier = [], [], [x]
        for _ in range(MAX_RECOMPUTED):
            step = []
            for v in frontier:
                n = self.made_by.get(v)
                ins = ([y for y in n.inputs if same_rows(y.shape, p.shape) and y.dtype == p.dtype]
                       if n is not None and get_op(n.op).fusible else [])
                if not ins and v is not x and v not in roots:
                    roots.append(v)
                step += [y for y in ins if y not in step]
            found += [v for v in step if v not in found]
            frontier = step
            if not frontier:
                break
        return roots[:MAX_CANDIDATES] + [v for v in found if v not in roots][:MAX_CANDIDATES]

    def _cut(self, p: Value, later, full=None) -> Plan | None:
        """The longest prefix of the ops ``_select`` takes that only its last value
        leaves, or None."""
        chosen = self._select(p, later, full=full).nodes
        for k in range(len(chosen), 0, -1):
            inside = set(chosen[:k])
            values = [p] + [n.out for n in chosen[:k]]
            leaving = [v for v in values if v in self.outputs
                       or any(r not in inside for r in self.readers.get(v, ()))]
            if (leaving == [values[-1]] and values[-1].dtype == p.dtype
                    and any(n.op != "reshape" for n in chosen[:k])):
                return self._select(p, later, stop=k, full=full)  # its operands, without the ops cut off
        return None

    def plan(self, mm: Node, later) -> Plan | None:
        """The longest epilogue of ``mm``: the operands taken first come, or the operand
        of the product's shape one of those is computed from."""
        p, later = mm.out, list(later)
        best = self._cut(p, later)
        taken = [v for v, kind in self._select(p, later).operands.items() if kind == "full"]
        for full in (self._sources(taken[0], p) if taken else ()):
            other = self._cut(p, later, full)
            if other is not None and (best is None or len(other.nodes) > len(best.nodes)
                                      or len(other.nodes) == len(best.nodes)
                                      and len(other.operands) <= len(best.operands) and self._made_for(other)):
                best = other
        return best

    def _made_for(self, plan: Plan) -> bool:
        """Whether the values ``plan`` recomputes in the tile are read by nothing but
        each other and its ops: made for this epilogue alone, they would otherwise be a
        loop of their own writing what the tile reads back (an eager backward's GELU
        derivative, remade from the saved x), so such a plan is preferred to one of as
        many ops reading as many operands or more; computed anyway for other readers (a
        compiled step's forward loop computes GELU's erfc for GELU itself), reading
        their result costs less than computing them again in every tile."""
        inside = set(plan.nodes) | {self.made_by[v] for v in plan.recomputed}
        return all(r in inside for v in plan.recomputed for r in self.readers.get(v, ()))


def plan(graph: Graph) -> dict[Value, Plan]:
    """The planned epilogue of each matrix product of ``graph``, by the product's value
    (products with no epilogue are left out)."""
    planner, plans = _Planner(graph), {}
    for i, mm in enumerate(graph.nodes):
        if get_op(mm.op).group == "matmul" and all(v.ndim >= 2 for v in (mm.out, *mm.inputs)):
            found = planner.plan(mm, graph.nodes[i + 1:])
            if found is not None:
                plans[mm.out] = found
    return plans
