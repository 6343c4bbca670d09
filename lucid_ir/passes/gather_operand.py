"""Gathered GEMM operands: a matmul operand that is an im2col gather of one tensor.

A convolution's patch matrix is built from one (padded, channels-last) tensor ``x``:
each kernel tap is a strided ``slice`` of it, the taps are ``concat``enated along the
last axis, and the leading axes are merged by a ``reshape`` into the matrix's rows
(positions) — ``(N·out positions, taps·C)``. Every element of such a matrix lies at
``x``'s offset ``row_offset[i] + col_offset[j]``: the rows' offsets depend only on the
position, the columns' only on the tap and channel. ``find`` recognises the pattern on
the graph (whoever built it); fusion then clones the chain into the GEMM's group as
its *gather prologue* (``fuse._place_matmul``) and the GEMM packs the operand straight
from ``x`` through the two offset tables (``GatherOperand.tables``): the patch matrix
is never written.

Recognised (``v`` a 2-D operand of a 2-D matmul): ``[transpose] [reshape] (concat of
slices | slice)``, the slices of one tensor, all steps positive, equal steps on the
leading axes, the concat along the last axis, the reshape merging the leading axes
and keeping the last one.

>>> from lucid_ir.builder import GraphBuilder
>>> b = GraphBuilder()
>>> x, w = b.input((1, 4, 4, 2)), b.input((3, 8))            # channels-last, 2 channels
>>> taps = [b.emit("slice", x, starts=(0, i, j, 0), stops=(1, i + 3, j + 3, 2), steps=(1, 1, 1, 1))
...         for i in (0, 1) for j in (0, 1)]                  # a 2x2 kernel, 3x3 positions
>>> a = b.emit("reshape", b.emit("concat", *taps, axis=3), shape=(9, 8))
>>> y = b.emit("matmul", a, w, trans_b=True)
>>> g = find(b.build([y]).nodes[-1], 0, {n.out: n for n in b.build([y]).nodes})
>>> [n.op for n in g.nodes], g.flipped
(['slice', 'slice', 'slice', 'slice', 'concat', 'reshape'], False)
>>> rows, cols = g.tables((32, 8, 2, 1))                     # x's element strides
>>> rows.tolist(), cols.tolist()
([0, 2, 4, 8, 10, 12, 16, 18, 20], [0, 1, 2, 3, 8, 9, 10, 11])
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..graph import Node, Value

__all__ = ["GatherOperand", "find", "MIN_TAPS"]

MIN_TAPS = 2  # slices concatenated; one slice only when its rows are strided (a strided
             # 1x1 convolution: its reshape would copy), else the plain GEMM reads it in place


@dataclass(frozen=True)
class GatherOperand:
    """Operand ``k`` of a matmul as a gather of ``source``: the chain ``nodes`` (slices,
    concat, reshape, transpose; in order) makes the matrix; ``flipped``: the GEMM sees
    the transpose of the (positions, columns) matrix (a transpose in the chain XOR the
    matmul's transpose flag). ``lead``: the leading axes' sizes (the rows, merged),
    ``lead_steps`` their slice steps; ``taps``: per slice ``(starts, width, step)``
    (its start on every axis, its width and step on the last)."""

    source: Value
    nodes: tuple
    flipped: bool
    lead: tuple
    lead_steps: tuple
    taps: tuple

    @property
    def shape(self) -> tuple:
        """The (positions, columns) matrix's shape."""
        return (int(np.prod(self.lead, dtype=np.int64)), sum(w for _, w, _ in self.taps))

    def tables(self, strides) -> tuple[np.ndarray, np.ndarray]:
        """``(rows, cols)``: int64 offsets in elements of ``source``'s buffer with element
        ``strides``; element ``(i, j)`` of the (positions, columns) matrix is
        ``source[rows[i] + cols[j]]`` (see the module's example)."""
        strides = [int(s) for s in strides]
        rows = np.zeros((), np.int64)
        for size, step, st in zip(self.lead, self.lead_steps, strides):
            rows = (rows[..., None] + np.arange(size, dtype=np.int64) * (step * st))
        cols = [sum(a * st for a, st in zip(starts, strides)) + np.arange(width, dtype=np.int64) * (step * strides[-1])
                for starts, width, step in self.taps]
        return (np.ascontiguousarray(rows.reshape(-1)),
                np.ascontiguousarray(np.concatenate(cols) if cols else np.zeros(0, np.int64)))


def _slice_of(node, source):
    """``(starts, steps)`` of ``node`` when it is a slice of ``source`` with positive
    steps, else None."""
    if node is None or node.op != "slice" or (source is not None and node.inputs[0] is not source):
        return None
    steps = node.attr("steps")
    if any(s is None or s <= 0 for s in steps):
        return None
    return node.attr("starts"), steps


def find(mm: Node, k: int, producer: dict) -> GatherOperand | None:
    """Operand ``k`` of matmul ``mm`` as a ``GatherOperand``, or None when it is not one
    (see the module docstring); ``producer`` maps a value to the node making it."""
    if any(v.ndim != 2 for v in (mm.out, *mm.inputs)):
        return None
    v, chain, flipped = mm.inputs[k], [], bool(mm.attr("trans_a" if k == 0 else "trans_b"))
    p = producer.get(v)
    if p is not None and p.op == "transpose" and tuple(p.attr("perm")) == (1, 0):
        chain.append(p)
        flipped, v = not flipped, p.inputs[0]
        p = producer.get(v)
    if p is not None and p.op == "reshape":
        u = p.inputs[0]
        if u.ndim < 2 or u.shape[-1] != v.shape[1]:
            return None
        chain.append(p)
        v = u
        p = producer.get(v)
    concat = p is not None and p.op == "concat"
    if concat and p.attr("axis") != v.ndim - 1:
        return None
    if concat:
        chain.append(p)
    parts = list(p.inputs) if concat else [v]
    slices = [producer.get(x) for x in parts]
    if any(s is None for s in slices):
        return None
    source = slices[0].inputs[0] if slices[0].op == "slice" else None
    found = [_slice_of(s, source) for s in slices]
    if source is None or any(f is None for f in found) or source.ndim != v.ndim:
        return None
    lead_steps = found[0][1][:-1]
    if any(steps[:-1] != lead_steps for _, steps in found):
        return None
    if len(parts) < MIN_TAPS and not (v.ndim > 2 and any(s != 1 for s in lead_steps)):
        return None
    taps = tuple((tuple(starts), x.shape[-1], steps[-1]) for (starts, steps), x in zip(found, parts))
    nodes = tuple(dict.fromkeys(slices)) + tuple(reversed(chain))
    return GatherOperand(source, nodes, flipped, tuple(v.shape[:-1]), tuple(lead_steps), taps)
