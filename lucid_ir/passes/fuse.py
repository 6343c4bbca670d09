"""Fusion: partition the graph into kernels, then outline each group into a KernelNode.

Partition rules, applied in one walk over the nodes in order:

- ``matmul`` starts a **gemm** group. Its A operand's relu mask ``select(gt(r, 0), g, 0)``
  comes in as a prologue when the mask is a kernel of its own that only GEMMs (as A)
  and reductions read (see ``_place_matmul``). The elementwise ops planned as its
  **epilogue** (``fuse_epilogue.plan``, on the whole graph: ops of the product's shape
  reading it, with at most a row operand, an operand of the product's shape and
  scalars, values recomputed in the tile from those, one value leaving) join it as the
  walk reaches them (``_join_epilogue``), unless an operand would then need the group's
  own kernel; the GEMM kernel applies them while C is in registers. An epilogue whose
  values other kernels still read is then cut back to its longest prefix that only
  its last value leaves (``_trim_epilogues``); the rest becomes an elementwise kernel.
- an elementwise op joins the **elementwise** group of one of its inputs when its
  output has that group's shape and joining creates no cycle between kernels;
  otherwise it starts a new group. Scalar constants are copied into each group that
  uses them. A small producer of a smaller, broadcast shape that nothing else uses
  moves into its consumer's loop (recomputed per element when that is cheap).
- a reduction takes its input's elementwise producers as a prologue (a **reduction**
  group): moved when nothing else uses them, recomputed (cloned) when something does,
  so that later ops can still fuse with the original group (softmax: ``exp(x - m)``
  and ``Σ exp(x - m)`` do not wait for each other). A value its prologue reads from a
  rows kernel, made there by one cheap exact op from values that kernel writes anyway
  or from per-row statistics, is computed again in the prologue instead of written and
  read back (``_recompute_row_values``: a layer norm's normalised rows, for its weight's
  gradient).
- the random ops (the ``random`` trait) compute each value from the element's position
  in their own shape, so they stay in elementwise groups of exactly their shape: never
  moved into a bigger loop nor into a reduction's prologue (a dropout mask fuses with
  the multiply by it; a channel mask of shape (N, C, 1, 1) is a small kernel of its own).
- before the walk, **rows** groups are formed (``fuse_rows``): a reduction over the last
  axis with the elementwise work before and after it that is indexed by the same rows
  (softmax, log-softmax, layer norm, RMS norm, and their gradients), one kernel that
  keeps each row in cache while it makes its passes over it. The walk leaves their
  nodes where they are.
- movement ops (reshape, transpose, broadcast_to, slice) and constants stay outside
  kernels: the runtime runs them as views. The indexing ops (group ``indexing``:
  concat, embed, gather, scatter_add) read across positions, so they are not
  elementwise either: each stays a node of its own, run by a kernel of its own.

A grouping that would create a cycle is rejected (``_depends_on``). ``run(graph,
enabled=False)`` makes every compute node its own kernel (``LUCID_FUSION=0``).

>>> from lucid_ir.builder import GraphBuilder
>>> b = GraphBuilder()
>>> x, w, bias = b.input((8, 4)), b.input((3, 4)), b.input((3,))
>>> y = b.emit("add", b.emit("matmul", x, w, trans_b=True), bias)
>>> print(run(b.build([b.emit("maximum", y, b.constant(0.0))])))
{ lambda ; %0:f32[8,4] %1:f32[3,4] %2:f32[3]. let
    (%3:f32[8,3]) = kernel[gemm](%0, %1, %2) {
      %4:f32[8,3] = matmul[trans_b=True] %0 %1
      %5:f32[8,3] = add %4 %2
      %6:f32[] = constant[value=0.0]
      %3:f32[8,3] = maximum %5 %6
    }
  in (%3) }
"""
from __future__ import annotations

from ..graph import Graph, Node, Value
from ..kernel import KernelNode
from ..ops import get_op
from ..types import broadcast_shapes
from . import dce, fuse_epilogue, fuse_rows, gather_operand
from .autodiff import SMALL_FRACTION   # (a per-row value: its rows' size divided by this at most)

MAX_CLONED_PROLOGUE = 8
SMALL_RECOMPUTE = 1 << 16  # extra elementwise evaluations worth one kernel launch fewer


def _remade(op: str) -> bool:
    """Whether a reduction's prologue computes a value of ``op`` again from a rows
    kernel's values rather than read it: an elementwise op that costs nothing beyond
    moving its operands (``cost`` 0) and computes (``kind`` unary or binary: ``mul``,
    ``sub``, ``neg``, ...), exact, so the same operands give the same value in any
    kernel."""
    d = get_op(op)
    return d.fusible and not d.cost and d.kind in ("unary", "binary")


def _size(shape) -> int:
    n = 1
    for d in shape:
        n *= d
    return n


def _feeding(group: "Group", v: Value) -> list[Node]:
    """The members of ``group`` that ``v`` depends on, in group order."""
    members = {n.out: n for n in group.nodes}
    needed, stack = set(), [v]
    while stack:
        x = stack.pop()
        if x in members and x not in needed:
            needed.add(x)
            stack.extend(members[x].inputs)
    return [n for n in group.nodes if n.out in needed]


class Group:
    def __init__(self, kind: str, node: Node):
        self.kind = kind
        self.nodes = [node]
        self.gated_a = False  # gemm: A's relu mask taken in as a prologue (uses R)
        self.product = node.out if get_op(node.op).group == "matmul" else None  # gemm: the matmul's value
        self.tile = {self.product}  # gemm: the values in C's registers (product, epilogue)
        self.clones: dict[Value, Value] = {}  # gemm: values recomputed in the tile

    @property
    def shape(self):
        return self.nodes[-1].out.shape


def _cloned(nodes) -> tuple[list, dict]:
    """Copies of ``nodes`` (in order, reading each other's copies) and the map from each
    original value to its copy's."""
    made: dict[Value, Value] = {}
    copies = []
    for n in nodes:
        made[n.out] = Value(n.out.type)
        copies.append(Node(n.op, tuple(made.get(x, x) for x in n.inputs), n.attrs, made[n.out]))
    return copies, made


def _draws(nodes) -> bool:
    """Whether any of ``nodes`` is a random op (its values depend on its loop's shape)."""
    return any(get_op(n.op).random for n in nodes)


def _is_scalar_constant(v: Value, producer) -> bool:
    p = producer.get(v)
    return p is not None and p.op == "constant" and v.shape == ()


class Partition:
    def __init__(self, graph: Graph):
        self.graph = graph
        self.producer: dict[Value, Node] = {}
        self.group_of: dict[Value, Group] = {}
        self.groups: list[Group] = []
        self.order: list[Node] = []   # every node, clones included, in a valid order
        self.users: dict[Value, int] = {}
        self.readers: dict[Value, list[Node]] = {}
        for n in graph.nodes:
            for v in n.inputs:
                self.users[v] = self.users.get(v, 0) + 1
                self.readers.setdefault(v, []).append(n)
        self.outputs = set(graph.outputs)
        self.made_by = {n.out: n for n in graph.nodes}  # the whole graph's, for looking ahead
        self.plans = {}  # the GEMMs' epilogues (fuse_epilogue.plan), by product
        for v in graph.outputs:
            self.users[v] = self.users.get(v, 0) + 1

    # -- dependencies -------------------------------------------------------------
    def _depends_on(self, values, group: Group) -> bool:
        """Whether computing any of ``values`` needs ``group``'s kernel to have run (at
        kernel level: a value of another group needs all of that group's inputs). One walk
        up from all of them: their producers are mostly shared (a transformer's backward
        values all reach back through its whole forward), each is visited once."""
        seen, stack = set(), list(values)
        while stack:
            v = stack.pop()
            g = self.group_of.get(v)
            if g is group:
                return True
            key = id(g) if g is not None else id(v)
            if key in seen:
                continue
            seen.add(key)
            if g is not None:
                stack.extend(x for n in g.nodes for x in n.inputs if self.group_of.get(x) is not g)
            else:  # (a node not walked yet: a rows group's inputs may come later)
                p = self.producer.get(v) or self.made_by.get(v)
                if p is not None:
                    stack.extend(p.inputs)
        return False

    def prune(self, outputs) -> None:
        """Drop nodes nothing uses any more (originals whose prologue was cloned)."""
        live = set(outputs)
        for n in reversed(self.order):
            if n.out in live:
                live.update(n.inputs)
        self.order = [n for n in self.order if n.out in live]
        for g in list(self.groups):
            g.nodes = [n for n in g.nodes if n.out in live]
            if not g.nodes:
                self.groups.remove(g)

    def _reads(self, nodes) -> None:
        """Count the reads of nodes the walk makes (clones, a node reading clones): a value
        they read is used once more, so that ``_only_used_by`` never moves a producer
        into one loop while a clone elsewhere still reads it. (The node a clone stands
        for keeps its count until ``prune``: too many, never too few.)"""
        for n in nodes:
            for v in n.inputs:
                self.users[v] = self.users.get(v, 0) + 1

    def _only_used_by(self, chain, consumers: list) -> bool:
        """Whether nothing but ``chain`` itself and ``consumers`` reads ``chain``'s values."""
        uses: dict = {}
        for n in chain + consumers:
            for x in n.inputs:
                uses[x] = uses.get(x, 0) + 1
        return all(self.users.get(n.out, 0) == uses.get(n.out, 0) for n in chain)

    def _add(self, group: Group, node: Node) -> None:
        group.nodes.append(node)
        self.group_of[node.out] = group

    def _new(self, kind: str, node: Node) -> Group:
        g = Group(kind, node)
        self.groups.append(g)
        self.group_of[node.out] = g
        return g

    # -- rules ----------------------------------------------------------------------
    def _join_epilogue(self, g: Group, node: Node) -> bool:
        """Add ``node``, planned as an op of gemm group ``g``'s epilogue
        (``fuse_epilogue.plan``), to ``g``, with clones of the values it recomputes in
        the tile; False (nothing changed) when it is not planned there or an operand
        would need ``g``'s kernel (a cycle between kernels) or the R operand that A's
        gate takes."""
        plan = self.plans.get(g.product)
        if plan is None or node not in plan.nodes:
            return False
        clones, made = [], {}

        def in_tile(x):
            if x in g.tile or _is_scalar_constant(x, self.producer):
                return x
            if x in g.clones or x in made:
                return g.clones.get(x) or made[x]
            kind = plan.operands.get(x)
            if kind is not None:
                return None if (kind == "full" and g.gated_a) or self._depends_on([x], g) else x
            if x not in plan.recomputed:  # a planned op before this one that did not join
                return None
            q = self.made_by[x]
            ins = [in_tile(y) for y in q.inputs]
            if any(v is None for v in ins):
                return None
            clones.append(Node(q.op, tuple(ins), q.attrs, Value(x.type)))
            made[x] = clones[-1].out
            return made[x]

        inputs = tuple(in_tile(x) for x in node.inputs)
        if any(v is None for v in inputs):
            return False
        if inputs != node.inputs:  # it reads clones: a node of its own, in the original's place
            assert self.order[-1] is node
            node = self.order[-1] = Node(node.op, inputs, node.attrs, node.out)
            self.producer[node.out] = node
            self._reads([node])
        self._reads(clones)
        self.order[-1:-1] = clones
        for c in clones:
            self._add(g, c)
        self._add(g, node)
        g.clones.update(made)
        g.tile.update([c.out for c in clones] + [node.out])
        return True

    def _join_view(self, node: Node) -> bool:
        """Add ``reshape`` ``node`` to the gemm group of its input when it is planned in
        that group's epilogue (a view of the tile's rows), else False."""
        g = self.group_of.get(node.inputs[0])
        plan = self.plans.get(g.product) if g is not None and g.kind == "gemm" else None
        if plan is None or node not in plan.nodes or node.inputs[0] not in g.tile:
            return False
        self._add(g, node)
        g.tile.add(node.out)
        return True

    def _trim_epilogues(self) -> None:
        """Cut each gemm group back to its longest prefix whose only value read outside
        it (or a graph output) is its last one, of the product's dtype: the kernel stores
        one array. The rest becomes an elementwise group (it reads only that value and
        outside ones). The plans (``fuse_epilogue``) are cut already; this is for an
        epilogue op the walk could not place (an operand needing the GEMM's kernel)."""
        readers: dict[Value, list[Node]] = {}
        for n in self.order:
            for x in n.inputs:
                readers.setdefault(x, []).append(n)
        for g in [g for g in self.groups if g.kind == "gemm"]:
            start = next(i for i, n in enumerate(g.nodes) if get_op(n.op).group == "matmul")
            for k in range(len(g.nodes), start, -1):
                inside = set(map(id, g.nodes[:k]))
                leaving = [n.out for n in g.nodes[:k] if n.out in self.outputs or any(
                    id(r) not in inside for r in readers.get(n.out, ()))]
                last = g.nodes[k - 1].out
                if (leaving == [last] and last.dtype == g.product.dtype) or k == start + 1:
                    break
            rest = g.nodes[k:]
            if rest:
                g.nodes = g.nodes[:k]
                h = self._new("elementwise", rest[0])
                for n in rest[1:]:
                    self._add(h, n)

    def _is_zero(self, v: Value) -> bool:
        return _is_scalar_constant(v, self.producer) and self.producer[v].attr("value") == 0.0

    def _relu_mask(self, sel: Node | None) -> Node | None:
        """The ``gt`` node when ``sel`` is relu's backward mask ``select(gt(r, 0), y, 0)``
        with r of the select's shape and dtype (the mask itself is bool) and the
        comparison read by nothing else, else None."""
        if sel is None or sel.op != "select" or not self._is_zero(sel.inputs[2]):
            return None
        cmp = self.made_by.get(sel.inputs[0])
        if (cmp is None or cmp.op != "gt" or self.users.get(cmp.out, 0) != 1
                or not self._is_zero(cmp.inputs[1]) or cmp.inputs[0].type != sel.out.type):
            return None  # the GEMM reads r as its R operand: r must have the output's type
        return cmp

    def _output_gated(self, mm: Node) -> bool:
        """Whether ``mm``'s only reader is a relu mask ``select(gt(r, 0), mm, 0)`` that its
        GEMM will apply in its epilogue (``_join_epilogue``): that takes the R operand."""
        readers = self.readers.get(mm.out, ())
        if len(readers) != 1 or mm.out in self.outputs:
            return False
        sel = readers[0]
        return (self._relu_mask(sel) is not None and sel.inputs[1] is mm.out
                and sel.out.shape == mm.out.shape)

    def _place_matmul(self, node: Node) -> None:
        """A gemm group; its A operand's relu mask ``select(gt(r, 0), g, 0)`` is cloned in
        as a prologue (the GEMM packs A gated by r) when the mask is a kernel of its own
        that every reader can do without: GEMMs reading it as A (none of which applies a
        mask to its own output, the better place for a mask), and reductions (which clone
        it too). The mask kernel is then gone (``prune``). An operand that is an im2col
        gather is packed from its tensor instead (``_place_gathered``)."""
        if self._place_gathered(node):
            return
        a = node.inputs[0]
        sel = self.producer.get(a)
        owner = self.group_of.get(a)
        cmp = self._relu_mask(sel)
        if (cmp is None or owner is None or owner.kind != "elementwise"
                or a.ndim != 2 or node.inputs[1].ndim != 2  # a batched GEMM has no A gate
                or {n.out for n in owner.nodes} != {a, cmp.out} or a in self.outputs
                or broadcast_shapes(sel.inputs[1].shape, a.shape) != a.shape or node.inputs[1] is a
                or not all((get_op(r.op).group == "matmul" and r.inputs[0] is a and r.inputs[1] is not a
                            and not self._output_gated(r))
                           or get_op(r.op).group == "reduction" for r in self.readers.get(a, ()))):
            self._new("gemm", node)
            return
        gt_out, mask_out = Value(cmp.out.type), Value(a.type)
        clones = [Node("gt", cmp.inputs, cmp.attrs, gt_out),
                  Node("select", (gt_out,) + sel.inputs[1:], sel.attrs, mask_out)]
        mm = Node(node.op, (mask_out,) + node.inputs[1:], node.attrs, node.out)
        self.order[-1:] = clones + [mm]
        g = self._new("gemm", clones[0])
        self._add(g, clones[1])
        self._add(g, mm)
        g.gated_a = True
        g.product = mm.out
        g.tile = {mm.out}
        self.producer[node.out] = mm

    def _place_gathered(self, node: Node) -> bool:
        """A gemm group packing an operand straight from the tensor it gathers (an
        im2col patch matrix: ``gather_operand.find``): the chain making the operand
        (slices, concat, reshape) is cloned in as the group's prologue, the matmul
        reading the clone; the patch matrix is then gone (``prune``) unless something
        else reads it. False (nothing changed) when neither operand is a gather."""
        found = [(k, gather_operand.find(node, k, self.producer)) for k in (0, 1)]
        found = [(k, g) for k, g in found if g is not None]
        if not found:
            return False
        k, g = found[0]
        clones, made = _cloned(g.nodes)
        ins = list(node.inputs)
        ins[k] = made[ins[k]]
        mm = Node(node.op, tuple(ins), node.attrs, node.out)
        self._reads(clones + [mm])
        self.order[-1:] = clones + [mm]
        grp = self._new("gemm", clones[0])
        for n in clones[1:] + [mm]:
            self._add(grp, n)
        grp.product, grp.tile = mm.out, {mm.out}
        self.producer[node.out] = mm
        return True

    def _place_elementwise(self, node: Node) -> None:
        for g in dict.fromkeys(self.group_of.get(v) for v in node.inputs):
            if g is not None and g.kind == "gemm" and self._join_epilogue(g, node):
                return
        for v in node.inputs:
            g = self.group_of.get(v)
            if g is None:
                continue
            if g.kind == "elementwise" and g.shape == node.out.shape:
                others = [x for x in node.inputs if self.group_of.get(x) is not g]
                if not self._depends_on(others, g):
                    self._add(g, node)
                    self._absorb_small_producers(node, g)
                    return
        self._absorb_small_producers(node, self._new("elementwise", node))

    def _absorb_small_producers(self, node: Node, k: Group) -> None:
        """Move an elementwise producer that nothing else uses into ``node``'s kernel: of
        the loop's own shape (GELU's ``erfc(-x/√2)``, a loop of its own because it and
        ``x/2`` both start from the input; a dropout mask multiplying a value another
        loop computes), so the value never reaches memory; or of a smaller shape
        (``log`` of a (64, 1) sum feeding a (64, 10) loop; a Python number cast to the
        tensor's dtype that ``clamp`` compares with and selects), recomputed per element
        when that is cheap: one kernel launch fewer. Readers already in the loop count as
        the loop's own: the producer moves in before the first of them. Random numbers
        of a smaller shape never move (their values depend on it)."""
        for v in node.inputs:
            g = self.group_of.get(v)
            if g is None or g is k or g.kind != "elementwise":
                continue
            if broadcast_shapes(g.shape, k.shape) != k.shape:
                continue
            chain = _feeding(g, v)
            needed = {n.out for n in chain}
            if (any(get_op(n.op).random and n.out.shape != k.shape for n in chain)
                    or not self._only_used_by(chain, k.nodes)):
                continue
            if _size(g.shape) > 1 and (_size(k.shape) - _size(g.shape)) * len(chain) > SMALL_RECOMPUTE:
                continue   # (a single value is loop-invariant: LLVM computes it once, before the loop)
            outside = [x for n in chain for x in n.inputs if x not in needed and self.group_of.get(x) is not k]
            if self._depends_on(outside, k):
                continue
            at = next(i for i, n in enumerate(k.nodes) if any(x in needed for x in n.inputs))
            ins = {x for n in chain for x in n.inputs}
            if any(n.out in ins for n in k.nodes[at:]):   # it reads what its first reader follows
                continue
            g.nodes = [n for n in g.nodes if n.out not in needed]
            if not g.nodes:
                self.groups.remove(g)
            k.nodes[at:at] = chain
            for n in chain:
                self.group_of[n.out] = k

    def absorb_after_walk(self, outputs) -> None:
        """``_absorb_small_producers`` once more for every elementwise loop, with the reads
        counted again over what will run: during the walk, a node that a GEMM epilogue
        replaced (by one reading clones) or a later reader that has not been walked yet
        still counted, so GELU's ``erfc(-x/√2)``, read by the backward GEMM's epilogue
        only through its clones, stayed a loop of its own beside ``x/2 · erfc``
        (one more kernel, and its values through memory)."""
        self.users, readers = {}, {}
        for n in self.order:
            for v in n.inputs:
                self.users[v] = self.users.get(v, 0) + 1
                readers.setdefault(v, []).append(n)
        for v in outputs:
            self.users[v] = self.users.get(v, 0) + 1
        for k in [g for g in self.groups if g.kind == "elementwise"]:
            for node in list(k.nodes):
                if k in self.groups:
                    self._absorb_small_producers(node, k)
        for a in [g for g in self.groups if g.kind == "elementwise"]:
            self._merge_into_reader(a, readers)

    def _merge_into_reader(self, a: Group, readers_of) -> None:
        """Move elementwise loop ``a`` whole to the front of the one other loop of its
        shape that reads it, when no other kernel does: one kernel writing ``a``'s values
        that are read elsewhere (graph outputs: the residuals a backward keeps) beside
        its own. GELU's forward keeping its residuals was ``erfc(-x/√2)`` in one loop
        and ``x/2 · erfc`` in another, both reading x. Nothing moves when either
        loop's other inputs need the other's kernel (a cycle between kernels).
        ``readers_of``: value -> the nodes that read it (nodes never change here, only
        the groups they are in)."""
        values = {n.out for n in a.nodes}
        readers = {self.group_of.get(r.out) for v in values for r in readers_of.get(v, ()) if r.out not in values}
        readers.discard(None)
        if len(readers) != 1:
            return
        (b,) = readers
        if b.kind != "elementwise" or b.shape != a.shape:
            return
        b_values = {n.out for n in b.nodes}
        a_in = {x for n in a.nodes for x in n.inputs if x not in values}
        b_in = {x for n in b.nodes for x in n.inputs if x not in b_values and x not in values}
        if self._depends_on(a_in, b) or self._depends_on(b_in, a):
            return
        b.nodes[:0] = a.nodes
        for n in a.nodes:
            self.group_of[n.out] = b
        self.groups.remove(a)

    def _place_reduction(self, node: Node) -> None:
        v = node.inputs[0]
        g = self.group_of.get(v)
        if g is None or g.kind != "elementwise" or g.shape != v.shape:
            self._new("reduction", node)
            return
        prologue = _feeding(g, v)
        if _draws(prologue):  # a reduction's loop does not see element positions
            self._new("reduction", node)
            return
        needed = {n.out for n in prologue}
        exclusive = self._only_used_by(prologue, [node])
        if exclusive:
            g.nodes = [n for n in g.nodes if n.out not in needed]
            if not g.nodes:
                self.groups.remove(g)
            red = self._new("reduction", prologue[0])
            for n in prologue[1:] + [node]:
                self._add(red, n)
        elif len(prologue) <= MAX_CLONED_PROLOGUE:
            copied, clones = _cloned(prologue)
            self.order.extend(copied)
            red = self._new("reduction", copied[0])
            for n in copied[1:]:
                self._add(red, n)
            node = Node(node.op, (clones[v],), node.attrs, node.out)
            self._reads(copied + [node])
            self.order[-len(copied) - 1:] = copied + [node]  # the reduction follows its clones
            self._add(red, node)
        else:
            self._new("reduction", node)
            return
        self._recompute_row_values(red)

    def _recompute_row_values(self, red: Group) -> None:
        """A value of the reduction's prologue that a rows kernel computes by one
        cheap exact op (``_remade``), that no other kernel reads, from values that
        kernel hands out anyway (read by other kernels too) or from per-row statistics
        (its rows' size divided by ``SMALL_FRACTION`` at most) is computed again here,
        from those, instead of being written by that kernel and read back: a layer
        norm's normalised rows ``(x - mean) · rstd``, whose only reader outside is its
        weight's gradient (the column sum of ``g · x̂``), while the backward kernel
        reads ``x - mean`` anyway. Same op, same operands: the same value."""
        shape = red.nodes[-1].inputs[0].shape
        members = {n.out for n in red.nodes}
        for n in list(red.nodes):
            remade = {}
            for x in n.inputs:
                p, rows = self.producer.get(x), self.group_of.get(x)
                if (x in members or rows is None or rows.kind != "rows" or p is None
                        or not _remade(p.op) or x.shape != shape or self._handed_out(x, rows, members)
                        or not all(self._handed_out(y, rows, members) or _size(y.shape) * SMALL_FRACTION <= _size(shape)
                                   or _is_scalar_constant(y, self.producer) for y in p.inputs)):
                    continue
                clone = Node(p.op, p.inputs, p.attrs, Value(x.type))
                remade[x] = clone.out
                self._reads([clone])
                self.order.insert(self.order.index(n), clone)
                red.nodes.insert(red.nodes.index(n), clone)
                self.group_of[clone.out] = red
            if remade:
                new = Node(n.op, tuple(remade.get(x, x) for x in n.inputs), n.attrs, n.out)
                self._reads([new])
                self.order[self.order.index(n)] = new
                red.nodes[red.nodes.index(n)] = new

    def _handed_out(self, y: Value, rows: Group, members) -> bool:
        """Whether ``y``, a member of ``rows``, is read by a node of neither ``rows`` nor
        the reduction group being formed (``members``): its kernel writes it anyway."""
        if self.group_of.get(y) is not rows:
            return False
        if y in self.outputs:
            return True
        own = {id(m) for m in rows.nodes}
        return any(id(r) not in own and r.out not in members for r in self.readers.get(y, ()))

    def run(self, enabled: bool) -> None:
        in_rows = set()
        if enabled:
            self.plans = fuse_epilogue.plan(self.graph)
            for members in fuse_rows.find(self.graph):
                g = self._new("rows", members[0])
                for n in members[1:]:
                    self._add(g, n)
                in_rows.update(members)
        for node in self.graph.nodes:
            self.producer[node.out] = node
            self.order.append(node)
            if node in in_rows or (enabled and node.op == "reshape" and self._join_view(node)):
                continue
            group = get_op(node.op).group
            if group == "matmul":
                if enabled:
                    self._place_matmul(node)
                else:
                    self._new("gemm", node)
            elif group == "elementwise":
                if enabled:
                    self._place_elementwise(node)
                else:
                    self._new("elementwise", node)
            elif group == "reduction":
                if enabled:
                    self._place_reduction(node)
                else:
                    self._new("reduction", node)


def _outline(part: Partition, graph_inputs, graph_outputs) -> Graph:
    """Replace each group by a KernelNode, then order everything topologically."""
    members_of = {id(g): {n.out for n in g.nodes} for g in part.groups}
    used_outside = set(graph_outputs)
    for n in part.order:
        g = part.group_of.get(n.out)
        for x in n.inputs:
            if g is None or x not in members_of[id(g)]:
                used_outside.add(x)
    items: list = [n for n in part.order if n.out not in part.group_of]
    for g in part.groups:
        members = members_of[id(g)]
        inputs, body, const_copies = [], [], {}
        for n in g.nodes:
            for x in n.inputs:
                if x in members or x in inputs or x in const_copies:
                    continue
                if _is_scalar_constant(x, part.producer):  # copy scalars into the kernel
                    c = part.producer[x]
                    const_copies[x] = Value(x.type)
                    body.append(Node("constant", (), c.attrs, const_copies[x]))
                else:
                    inputs.append(x)
            ins = tuple(const_copies.get(x, x) for x in n.inputs)
            body.append(n if ins == n.inputs else Node(n.op, ins, n.attrs, n.out))
        outs = tuple(n.out for n in g.nodes if n.out in used_outside)
        items.append(KernelNode(g.kind, Graph(tuple(inputs), tuple(body), outs)))
    return dce.run(Graph(tuple(graph_inputs), _topological(items, graph_inputs), tuple(graph_outputs)))


def _topological(items, inputs) -> tuple:
    """Order items so that each one's inputs are defined first (stable otherwise)."""
    defined = set(inputs)
    pending, ordered = list(items), []
    while pending:
        rest = []
        for item in pending:
            if all(x in defined for x in item.inputs):
                ordered.append(item)
                defined.update(item.outs)
            else:
                rest.append(item)
        if len(rest) == len(pending):
            raise AssertionError("fusion produced a cycle between kernels")
        pending = rest
    return tuple(ordered)


def run(graph: Graph, enabled: bool = True) -> Graph:
    graph = dce.run(graph)
    part = Partition(graph)
    part.run(enabled)
    part.prune(graph.outputs)
    part._trim_epilogues()
    if enabled:
        part.absorb_after_walk(graph.outputs)
    return _outline(part, graph.inputs, graph.outputs)
