"""Row groups: a reduction over the last axis and the elementwise work around it, over the
same rows, as one kernel (``kind="rows"``).

A *row reduction* is ``sum``/``mean``/``max``/``min`` of a float value ``x`` of shape X
over its last axis, keeping it (``X[:-1] + (1,)``, the *row statistics* shape S), with
``X[-1] != 1``. A row group starts at one and grows through the graph, both ways, over

- elementwise ops (not random numbers) whose result has shape X (one value per element
  of a row), S (one value per row) or one element (a number cast to the rows' dtype),
  and ``stop_gradient`` of those shapes,
- other row reductions of the same X,
- *final* row reductions: the same reductions over the last axis of X without keeping it
  (shape ``X[:-1]``: a cross-entropy's per-sample loss ``sum(onehot * logp, -1)``). They
  are results only: nothing in the group reads them (a value of shape ``X[:-1]``
  broadcasts along the last axis of X, not along its rows), and they never seed a group,

as long as the group stays convex (no path leaves it and comes back: one kernel must be
able to run it without waiting for another). It does not grow up into work on a matrix
product's result (a bias, a scale, a mask): the GEMM's epilogue applies that. Nothing is matched by op names: softmax
(``max, sub, exp, sum, div``), log-softmax, layer norm (``mean, sub, mul, mean, add,
rsqrt, mul`` and the affine), RMS norm and their gradients all come out of the same
growth. An X-shaped member that no reduction of the group needs and whose readers outside
are all reductions is left out (a reduction takes it as its prologue instead of reading
it from memory). A group with one reduction and no X-shaped work after it stays a plain
reduction.

>>> from lucid_ir.builder import GraphBuilder
>>> b = GraphBuilder()
>>> x = b.input((4, 8))
>>> e = b.emit("exp", b.emit("sub", x, b.emit("max", x, axes=(1,), keepdims=True)))
>>> y = b.emit("div", e, b.emit("sum", e, axes=(1,), keepdims=True))
>>> g = b.build([y])
>>> [[n.op for n in group] for group in find(g)]
[['max', 'sub', 'exp', 'sum', 'div']]
"""
from __future__ import annotations

from ..graph import Graph, Node
from ..ops import get_op

FLOATS = ("float32", "float64")


def row_shape(node: Node, keepdims: bool = True):
    """X when ``node`` is a row reduction of a value of shape X (``keepdims=False``: a
    final one, not keeping the reduced axis), else None.

    >>> from lucid_ir.builder import GraphBuilder
    >>> b = GraphBuilder()
    >>> x = b.input((4, 8))
    >>> kept, final = b.emit("sum", x, axes=(1,), keepdims=True), b.emit("sum", x, axes=(-1,))
    >>> g = b.build([kept, final])
    >>> row_shape(g.nodes[0]), row_shape(g.nodes[1]), row_shape(g.nodes[1], keepdims=False)
    ((4, 8), None, (4, 8))
    """
    if not get_op(node.op).row_reduction:
        return None
    x = node.inputs[0]
    if x.ndim == 0 or x.dtype not in FLOATS or x.shape[-1] == 1 or bool(node.attr("keepdims")) != keepdims:
        return None
    axes = node.attr("axes")
    axes = tuple(range(x.ndim)) if axes is None else tuple(sorted(a % x.ndim for a in axes))
    return x.shape if axes == (x.ndim - 1,) else None


def stats_shape(x_shape) -> tuple:
    return tuple(x_shape[:-1]) + (1,)


def _one_value(shape, x_shape) -> bool:
    """A single value (``()``, ``(1, 1)``) of rank at most X's: computed once per row."""
    return len(shape) <= len(x_shape) and all(d == 1 for d in shape)


class _Finder:
    def __init__(self, graph: Graph):
        self.nodes = list(graph.nodes)
        self.index = {n: k for k, n in enumerate(self.nodes)}
        self.producer = {n.out: n for n in self.nodes}
        self.readers: dict = {}
        for n in self.nodes:
            for v in n.inputs:
                self.readers.setdefault(v, []).append(n)
        self.assigned: set = set()
        self.outputs = set(graph.outputs)

    def fits(self, n: Node, x_shape) -> bool:
        if n in self.assigned:
            return False
        d = get_op(n.op)
        if d.row_reduction:
            return x_shape in (row_shape(n), row_shape(n, keepdims=False))
        if n.out.shape not in (x_shape, stats_shape(x_shape)) and not _one_value(n.out.shape, x_shape):
            return False
        return d.fusible or d.group == "movement" and d.forwards(n)

    def _epilogue(self, n: Node) -> bool:
        """Whether ``n`` reads a matrix product's result: the GEMM applies it as its
        epilogue (a bias, a scale, a mask), for free, so the group does not grow up into it."""
        return any(p is not None and get_op(p.op).group == "matmul" for p in (self.producer.get(v) for v in n.inputs))

    def _reaches(self, starts, members, downward: bool) -> bool:
        """Whether a path of non-members from ``starts`` reaches a member (downward:
        through readers; upward: through producers). A path only goes one way in the
        graph's order, so it stops at nodes past the last member (downward) or before
        the first (upward): no member is there to reach."""
        index = self.index
        bound = (max if downward else min)(index[m] for m in members)
        seen, stack = set(), list(starts)
        while stack:
            n = stack.pop()
            if n in seen:
                continue
            seen.add(n)
            nxt = self.readers.get(n.out, ()) if downward else [
                self.producer[v] for v in n.inputs if v in self.producer]
            for m in nxt:
                if m in members:
                    return True
                if (index[m] < bound) if downward else (index[m] > bound):
                    stack.append(m)
        return False

    def _convex_with(self, c: Node, members) -> bool:
        """Whether adding ``c`` keeps the group convex."""
        ups = [self.producer[v] for v in c.inputs if v in self.producer and self.producer[v] not in members]
        downs = [r for r in self.readers.get(c.out, ()) if r not in members]
        return not self._reaches(ups, members, False) and not self._reaches(downs, members, True)

    def grow(self, seed: Node) -> list[Node] | None:
        x_shape = row_shape(seed)
        members = {seed}
        frontier = [seed]
        while frontier:
            n = frontier.pop()
            around = [p for p in (self.producer.get(v) for v in n.inputs)
                      if p is not None and not self._epilogue(p)]
            if not row_shape(n, keepdims=False):   # a final reduction: nothing in the group reads it
                around += self.readers.get(n.out, ())
            for c in sorted(set(around), key=self.index.get):
                if (c not in members and self.fits(c, x_shape) and not self._reads_final(c, members)
                        and self._convex_with(c, members)):
                    members.add(c)
                    frontier.append(c)
        members = self._trim(members, x_shape)
        members = self._shed_single_values(members, x_shape)
        seeds = [m for m in members if get_op(m.op).row_reduction]
        if len(seeds) < 2 and not any(m.out.shape == x_shape and self._after(m, seeds, members)
                                      for m in members):
            return None
        return sorted(members, key=self.index.get)

    def _reads_final(self, c: Node, members) -> bool:
        """Whether ``c`` reads a final row reduction of the group (``X[:-1]``-shaped)."""
        return any(p in members and row_shape(p, keepdims=False) for p in map(self.producer.get, c.inputs))

    def _after(self, m: Node, seeds, members) -> bool:
        """Whether member ``m`` depends on a reduction of the group (within the group)."""
        stack, seen = [m], set()
        while stack:
            n = stack.pop()
            for v in n.inputs:
                p = self.producer.get(v)
                if p in members and p not in seen:
                    if p in seeds:
                        return True
                    seen.add(p)
                    stack.append(p)
        return False

    def _trim(self, members, x_shape) -> set:
        """Drop X-shaped members that no reduction of the group needs and whose outside
        readers are all reductions (they are better as those reductions' prologues)."""
        needed = set()
        stack = [m for m in members if get_op(m.op).row_reduction]
        while stack:
            n = stack.pop()
            if n in needed:
                continue
            needed.add(n)
            stack.extend(self.producer[v] for v in n.inputs if self.producer.get(v) in members)
        changed = True
        while changed:
            changed = False
            for m in sorted(members - needed, key=self.index.get, reverse=True):
                readers = self.readers.get(m.out, ())
                outside = [r for r in readers if r not in members]
                if (m.out.shape == x_shape and outside and len(outside) == len(readers)
                        and all(get_op(r.op).group == "reduction" for r in outside)):
                    members.discard(m)
                    changed = True
        return members

    def _shed_single_values(self, members, x_shape) -> set:
        """A single value (``_one_value``) that is read outside the group leaves it, with
        the single values of the group it is computed from: a row kernel's outputs are
        rows or per-row values. (A single value is computed from single values and
        outside values only, so what leaves is upstream of the rest: still convex.)"""
        single = {m for m in members if not get_op(m.op).row_reduction
                  and m.out.shape not in (x_shape, stats_shape(x_shape))}
        leaving = [m for m in single if m.out in self.outputs
                   or any(r not in members for r in self.readers.get(m.out, ()))]
        while leaving:
            m = leaving.pop()
            if m in members:
                members.discard(m)
                leaving.extend(self.producer[v] for v in m.inputs if self.producer.get(v) in single)
        return members

    def run(self) -> list[list[Node]]:
        groups = []
        for n in self.nodes:
            if n in self.assigned or row_shape(n) is None:
                continue
            group = self.grow(n)
            if group is not None:
                self.assigned.update(group)
                groups.append(group)
        return groups


def find(graph: Graph) -> list[list[Node]]:
    """The row groups of ``graph``: lists of its nodes, each in graph order, disjoint."""
    return _Finder(graph).run()
