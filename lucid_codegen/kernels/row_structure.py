"""What a row kernel computes, per row, and in which pass over the row (``RowStructure``).

A rows group (``lucid_ir.passes.fuse_rows``) works on values of two *levels*:

- ``r``: one value per element of a row (the shape X of the reduced values);
- ``s``: one value per row (the reductions' results, of shape ``X[:-1] + (1,)``, the
  elementwise work on them, and single numbers). A *final* reduction (not keeping the
  reduced axis: shape ``X[:-1]``, the same values in the same order) is an ``s`` value
  that only the kernel's outputs read.

A row kernel makes *passes* over each row. A value's ``ready`` number says from which
pass on it can be had: inputs and constants 0; a reduction of an ``r`` value ready in
pass q is ready from pass q + 1 (it is known once pass q has been over the whole row);
anything else is ready when its inputs are. Pass q computes the ``r`` values of ready q
that a reduction of pass q reads or the kernel outputs, accumulating the reductions in
registers. Between passes, the new per-row values are computed once, as scalars.

An ``r`` value that a later pass reads again is recomputed there from its inputs (the row
is in L1: a load costs what a subtraction costs), unless it is *expensive* (a
transcendental or a division on the way from the last pass's values): then pass q
*stashes* it in a row-sized scratch on the stack, and later passes load it. Softmax:
pass 0 finds the max; pass 1 sums ``exp(x - max)`` and stashes the exponentials; pass
2 divides them by the sum. Rows too long for the scratch (``STASH_BYTES``) recompute
instead (a variant of the kernel).

>>> from lucid_ir.builder import GraphBuilder
>>> b = GraphBuilder()
>>> x = b.input((4, 8))
>>> e = b.emit("exp", b.emit("sub", x, b.emit("max", x, axes=(1,), keepdims=True)))
>>> y = b.emit("div", e, b.emit("sum", e, axes=(1,), keepdims=True))
>>> rs = RowStructure.of(b.build([y]))
>>> rs.passes, [(op, level, ready) for op, _, _, _, level, ready in rs.nodes]
(3, [('max', 's', 1), ('sub', 'r', 1), ('exp', 'r', 1), ('sum', 's', 2), ('div', 'r', 2)])
>>> rs.stash
(('n', 2),)
"""
from __future__ import annotations

from lucid_ir.graph import Graph
from lucid_ir.ops import get_op

from lucid_codegen.kernels.elementwise import node_text
from lucid_codegen.kernels.lowering import SUPPORTED

#: the most bytes of stashed values per row a kernel keeps on its stack (else: recompute)
STASH_BYTES = 64 << 10


class RowStructure:
    """A rows group reduced to what its generated code depends on.

    ``inputs``: (dtype, level) per kernel input; ``nodes``: ``(op, attrs, refs, dtype,
    level, ready)`` with refs ``("i", k)`` / ``("n", k)`` (``stop_gradient`` is gone:
    its readers read its input); ``outputs``: refs; ``flat``: per output, whether it has
    the shape ``X[:-1]`` (a final reduction's) instead of ``X[:-1] + (1,)``; ``passes``:
    how many passes over a row; ``stash``: the refs stashed when the row fits. ``text``
    is the cache key.
    """

    def __init__(self, inputs, nodes, outputs, flat=None):
        self.inputs, self.nodes, self.outputs = tuple(inputs), tuple(nodes), tuple(outputs)
        self.flat = tuple(flat) if flat is not None else (False,) * len(self.outputs)
        self.passes = 1 + max([self.ready(n[2][0]) for n in self.nodes if get_op(n[0]).row_reduction]
                              + [self.ready(r) for r in self.outputs if self.level(r) == "r"])
        self.stash = self._stash()
        parts = ["in:" + ",".join(f"{d}/{lv}" for d, lv in self.inputs)]
        for op, attrs, refs, dtype, level, ready in self.nodes:
            parts.append(f"{node_text(op, attrs, refs, dtype)}/{level}{ready}")
        parts.append("out:" + ",".join(f"{t}{i}" + "f" * f for (t, i), f in zip(self.outputs, self.flat)))
        self.text = ";".join(parts)

    # -------------------------------------------------------------- queries
    def level(self, ref) -> str:
        kind, k = ref
        return self.inputs[k][1] if kind == "i" else self.nodes[k][4]

    def ready(self, ref) -> int:
        kind, k = ref
        return 0 if kind == "i" else self.nodes[k][5]

    def dtype(self, ref) -> str:
        kind, k = ref
        return self.inputs[k][0] if kind == "i" else self.nodes[k][3]

    def dtypes(self) -> set:
        return {d for d, _ in self.inputs} | {n[3] for n in self.nodes}

    def reductions(self, p: int) -> list[int]:
        """The nodes of the reductions made in pass ``p`` (their inputs are ready in it)."""
        return [k for k, n in enumerate(self.nodes) if get_op(n[0]).row_reduction and self.ready(n[2][0]) == p]

    def stats_ready(self, p: int) -> list[int]:
        """The per-row nodes (not reductions) computed once pass ``p`` - 1 is over (0:
        before the first pass)."""
        return [k for k, n in enumerate(self.nodes)
                if n[4] == "s" and not get_op(n[0]).row_reduction and n[5] == p]

    def stash_bytes(self, itemsize) -> int:
        """Stack bytes the stash takes for rows of ``itemsize`` (a function of a dtype)."""
        return sum(itemsize(self.dtype(r)) for r in self.stash)

    def _stash(self) -> tuple:
        later = set()
        for op, _, refs, _, level, ready in self.nodes:
            if level == "r" and not get_op(op).row_reduction:
                later.update(r for r in refs if r[0] == "n" and self.level(r) == "r" and self.ready(r) < ready)
        return tuple(sorted(r for r in later if self._expensive(r, self.ready(r))))

    def _expensive(self, ref, ready) -> bool:
        """Whether computing ``ref`` in its pass takes an expensive op (one with a ``cost``
        trait: worth a store and a load rather than computing it again), stopping at values
        of other passes and per-row values."""
        if ref[0] != "n" or self.level(ref) != "r" or self.ready(ref) != ready:
            return False
        op, _, refs, *_ = self.nodes[ref[1]]
        return get_op(op).cost > 0 or any(self._expensive(r, ready) for r in refs)

    # -------------------------------------------------------------- building
    @classmethod
    def of(cls, graph: Graph) -> "RowStructure":
        """The structure of a rows kernel's body; ValueError when it is not one."""
        reds = [n for n in graph.nodes if get_op(n.op).row_reduction]
        if not reds:
            raise ValueError("row kernel: the graph has no reduction")
        x_shape = reds[0].inputs[0].shape
        stats = tuple(x_shape[:-1]) + (1,)
        if not x_shape or x_shape[-1] == 1:
            raise ValueError(f"row kernel: rows of shape {x_shape} (the last axis must not be 1)")

        def level_of(shape):
            if tuple(shape) == tuple(x_shape):
                return "r"
            if len(shape) > len(x_shape) or any(d not in (1, e) for d, e in
                                                zip(shape[::-1], stats[::-1])):
                raise ValueError(f"row kernel: a value of shape {shape} is neither rows {x_shape} "
                                 f"nor one value per row {stats}")
            return "s"

        refs, finals = {}, set()
        inputs = []
        for k, v in enumerate(graph.inputs):
            refs[v] = ("i", k)
            padded = (1,) * (len(x_shape) - v.ndim) + tuple(v.shape)
            inputs.append((v.dtype, "r" if v.ndim and padded[-1] == x_shape[-1] else level_of(v.shape)))
        nodes = []
        for n in graph.nodes:
            try:
                args = tuple(refs[v] for v in n.inputs)
            except KeyError:
                raise ValueError(f"row kernel: {n.op} reads a value defined outside the graph") from None
            if finals.intersection(args):
                raise ValueError(f"row kernel: {n.op} reads a reduction that does not keep the row axis")
            d = get_op(n.op)
            if d.group == "movement" and d.forwards(n):  # (stop_gradient): the value itself
                refs[n.out] = args[0]
                continue
            ready = max([0] + [nodes[r[1]][5] if r[0] == "n" else 0 for r in args])
            if d.row_reduction:
                axes = n.attr("axes")
                x = n.inputs[0]
                if x.shape != x_shape or (axes is not None and tuple(a % x.ndim for a in axes) != (x.ndim - 1,)):
                    raise ValueError(f"row kernel: {n.op} must reduce the last axis of {x_shape}")
                level, ready = "s", ready + 1
                if not n.attr("keepdims"):
                    finals.add(("n", len(nodes)))
            elif n.op == "constant":
                level = level_of(n.out.shape)
            elif d.fusible and n.op in SUPPORTED:
                level = level_of(n.out.shape)
            else:
                raise ValueError(f"row kernel: op {n.op!r} is not elementwise")
            attrs = tuple((a, v) for a, v in n.attrs if a not in ("shape", "axes", "keepdims"))
            refs[n.out] = ("n", len(nodes))
            nodes.append((n.op, attrs, args, n.out.dtype, level, ready))
        outputs = [refs[v] for v in graph.outputs]
        return cls(inputs, nodes, outputs, [r in finals for r in outputs])
