"""LLVM IR of a row kernel: one loop over rows; inside it, the passes over the row.

``build_module(rs, pattern, lanes, stash)`` emits
``void lucid_rows(i64 *args, i64 r0, i64 r1, i64, i64)`` running rows [r0, r1) (the
last two arguments are unused: the loop kernels' signature, so native programs and
eager trampolines call it like them). For each row it computes the per-row values
known before any pass, then for each pass (``RowStructure``) a vector loop of ``lanes``
and one masked vector for the rest of the row: the pass's ``r`` values (the loop's
inputs loaded, the per-row values splat, stashed values loaded), its reductions
accumulated in registers, its outputs and stashes stored; after the loops the
accumulators are folded (``accumulate.Accumulator``) and the next per-row values
computed as scalars.

Rows go ``ROW_GROUP`` at a time, their passes side by side in the same loops: a short
row's passes are chains of dependent reductions (max, then the sum of exponentials,
then the log), and independent rows give the processor other chains to run meanwhile
(``F.log_softmax`` of 256x10: 1.7x faster than one row at a time). The group's pass body
is emitted once, on vectors of ``ROW_GROUP * lanes`` (``group_body``: row g's lanes
from ``g * lanes``), which LLVM splits into the rows' vector operations side by side.
A slot past the last row repeats it and stores nothing. A row's result never depends on its slot or on which
rows a call runs, so threads may take any whole rows.

Argument block (int64 words)::

    [0] D (outer dimensions)   [1] R (row length)
    [2 .. 2+n)        input addresses        [2+n .. 2+n+m)   output addresses
    [2+n+m .. 2+2n+m) inputs' strides along the row (elements)
    then D blocks (size, stride of input 0 .. n-1), outermost first

Outputs are C-contiguous: an ``r`` output at ``row * R + j``, an ``s`` output at ``row``.
``pattern`` has one letter per input: ``c`` (unit stride along the row), ``s`` (another
stride), ``b`` (the same value along the row: loaded once per row).
"""
from __future__ import annotations

import contextlib

import llvmlite.ir as ir

from lucid_codegen.kernels.accumulate import Accumulator, splat
from lucid_codegen.kernels.loops import I64, Loop, concat, const64, decode_loop, lanes_of, load_arg, one_dim_or_many
from lucid_codegen.kernels.lowering import emit_op
from lucid_codegen.kernels.row_structure import RowStructure
from lucid_codegen.kernels.tail import Tail
from lucid_codegen.kernels.vector_math import F64, LLVM_MEMORY, LLVM_TYPE, const, mem_align, to_compute, to_memory

_I32 = ir.IntType(32)
#: rows emitted side by side in the row loop (see the module docstring)
ROW_GROUP = 4


class _Row:
    """The code of one row of a group: its operands, and its loads and stores in a pass's
    loop body (the group's per-row values are ``_Group``'s)."""

    def __init__(self, b, rs: RowStructure, pattern, lanes, bases, istr, outs, scratch):
        self.b, self.rs, self.pattern, self.L = b, rs, pattern, lanes
        self.bases, self.istr, self.outs, self.scratch = bases, istr, outs, scratch
        self.valid = None       # an i1: whether the row's outputs are stored (None: always)
        self.row_const: dict = {}  # input k with pattern b -> its scalar this row

    # ``j``: the row index of the first lane (vectors of consecutive elements), or, for
    # the tail of a row, a ``Tail`` (tail.py): the lanes past the row's end hold zeros (masked
    # loads) or its last element (gathers), and whatever they compute is thrown away (the
    # reductions select them out, the stores skip them; no op traps on any value,
    # lowering.py)
    def _gather(self, base, idxs, stride=None):
        b = self.b
        v = ir.Constant(ir.VectorType(base.type.pointee, len(idxs)), ir.Undefined)
        for lane, i in enumerate(idxs):
            x = b.load(b.gep(base, [i if stride is None else b.mul(i, stride)]))
            v = b.insert_element(v, x, ir.Constant(_I32, lane))
        return v

    def _load_input(self, k, j, lanes):
        b, kind = self.b, self.pattern[k]
        base = self.bases[k]
        if kind == "b":
            if k not in self.row_const:
                raise AssertionError("row kernel: a row-constant input must be preloaded")
            x = self.row_const[k]
            return splat(b, x, lanes) if lanes else x
        if kind == "c":
            return self._load(base, j, lanes)
        if isinstance(j, Tail):
            return j.load(b, base, self.istr[k])
        if not lanes:
            return b.load(b.gep(base, [b.mul(j, self.istr[k])]))
        return self._gather(base, [b.add(j, const64(lane)) for lane in range(lanes)], self.istr[k])

    def _load(self, base, j, lanes):
        b = self.b
        if isinstance(j, Tail):
            return j.load(b, base)
        if not lanes:
            return b.load(b.gep(base, [j]))
        elem = base.type.pointee
        p = b.bitcast(b.gep(base, [j]), ir.VectorType(elem, lanes).as_pointer())
        return b.load(p, align=mem_align(elem))

    def store(self, base, j, value, lanes, dtype):
        b = self.b
        value = to_memory(b, value, dtype)
        if isinstance(j, Tail):
            j.store(b, base, value)
            return
        if not lanes:
            b.store(value, b.gep(base, [j]))
            return
        p = b.bitcast(b.gep(base, [j]), value.type.as_pointer())
        b.store(value, p, align=mem_align(value.type.element))

    def stores(self, p: int) -> tuple:
        """``(outputs, stashes)``: the ``(base, ref)`` pass ``p`` stores of each."""
        rs = self.rs
        outs = [(self.outs[i], ref) for i, ref in enumerate(rs.outputs)
                if rs.level(ref) == "r" and rs.ready(ref) == p]
        stashes = ([(self.scratch[ref], ref) for ref in rs.stash if rs.ready(ref) == p]
                   if self.scratch is not None else [])
        return outs, stashes

    def store_all(self, p: int, j, env: dict, slot: int) -> None:
        """Pass ``p``'s stores at ``j``: the stashes, and the outputs when the row is
        ``valid`` (a group's slot past the last row repeats it and stores nothing);
        ``env`` holds the group's values, this row's lanes from ``slot * L``."""
        outs, stashes = self.stores(p)
        L = self.L

        def mine(ref):
            return lanes_of(self.b, env[ref], slot * L, L)
        for base, ref in stashes:
            self.store(base, j, mine(ref), L, self.rs.dtype(ref))
        if not outs:
            return
        with _only_if(self.b, self.valid):
            for base, ref in outs:
                self.store(base, j, mine(ref), L, self.rs.dtype(ref))


def _only_if(b, cond):
    """``b.if_then(cond)``, or no condition when ``cond`` is None."""
    return b.if_then(cond) if cond is not None else contextlib.nullcontext()


class _Group:
    """The per-row values (``s`` refs) of a group's rows, computed for all of them at once:
    a vector of one lane per row (row g in lane g), so the work between passes (a
    maximum's subtraction, a sum's logarithm, a variance's reciprocal square root) is one
    short vector chain instead of one scalar chain per row."""

    def __init__(self, b, rs: RowStructure, rows: int, R, scale):
        self.b, self.rs, self.G, self.R, self.scale = b, rs, rows, R, scale
        self.values: dict = {}

    def get(self, ref):
        try:
            return self.values[ref]
        except KeyError:
            raise AssertionError(f"row kernel: per-row value {ref} used before it is computed") from None

    def set(self, ref, value) -> None:
        self.values[ref] = value

    def gather(self, ref, scalars) -> None:
        """``ref``'s value from one scalar per row."""
        v = ir.Constant(ir.VectorType(scalars[0].type, self.G), ir.Undefined)
        for g, x in enumerate(scalars):
            v = self.b.insert_element(v, x, ir.Constant(_I32, g))
        self.set(ref, v)

    def compute(self, p: int) -> None:
        """The per-row values that become known before pass ``p``."""
        rs, b = self.rs, self.b
        for k in rs.stats_ready(p):
            op, attrs, refs, dtype, _, _ = rs.nodes[k]
            if op == "constant":
                self.set(("n", k), const(ir.VectorType(LLVM_TYPE[dtype], self.G), dict(attrs)["value"]))
            else:
                self.set(("n", k), emit_op(b, op, [self.get(r) for r in refs], dict(attrs), None))

    def of_row(self, ref, g: int):
        return self.b.extract_element(self.get(ref), ir.Constant(_I32, g))

    def wide(self, ref, lanes: int):
        """``ref`` as ``group_body``'s vectors: row g's value in lanes ``g*lanes ..``."""
        v = self.get(ref)
        mask = [g for g in range(self.G) for _ in range(lanes)]
        return self.b.shuffle_vector(v, ir.Constant(v.type, ir.Undefined),
                                     ir.Constant(ir.VectorType(_I32, len(mask)), mask))


def group_body(rows: list, p: int, j, roots, stats: dict) -> dict:
    """Emit the ``r`` values ``roots`` of pass ``p`` at row index ``j`` for every row of
    ``rows`` at once: one vector of ``len(rows) * L`` lanes, row ``g``'s vector in lanes
    ``g*L ..`` (its loads, stashed values and per-row scalars concatenated), so the
    rows' chains are one chain of wide operations that LLVM splits into adjacent
    vector ones. ``stats``: the per-row scalars as such vectors (made before the loop);
    returns ``{ref: value}``."""
    first = rows[0]
    b, rs, L = first.b, first.rs, first.L
    wide = len(rows) * L
    env: dict = {}

    def get(ref):
        if ref in env:
            return env[ref]
        kind, k = ref
        if rs.level(ref) == "s":
            v = stats[ref]
        elif kind == "i":
            v = to_compute(b, concat(b, [row._load_input(k, j, L) for row in rows]), rs.dtype(ref))
        elif _stashed(rs, ref, p, first.scratch):
            v = to_compute(b, concat(b, [row._load(row.scratch[ref], j, L) for row in rows]), rs.dtype(ref))
        else:
            op, attrs, refs, dtype, _, _ = rs.nodes[k]
            if op == "constant":
                v = const(ir.VectorType(LLVM_TYPE[dtype], wide), dict(attrs)["value"])
            else:
                v = emit_op(b, op, [get(r) for r in refs], dict(attrs), None)
        env[ref] = v
        return v

    for r in roots:
        get(r)
    return env


def _stashed(rs: RowStructure, ref, p: int, scratch) -> bool:
    """Whether pass ``p`` loads ``ref`` from the stash an earlier pass stored it in."""
    return ref in rs.stash and scratch is not None and rs.ready(ref) < p


def _stat_refs(rs: RowStructure, roots, p: int, scratch) -> list:
    """The per-row scalars (``s`` refs) pass ``p``'s values ``roots`` read (as ``group_body``
    walks them), in a fixed order."""
    seen, out, todo = set(), [], list(roots)
    while todo:
        ref = todo.pop()
        if ref in seen:
            continue
        seen.add(ref)
        kind, k = ref
        if rs.level(ref) == "s":
            out.append(ref)
        elif kind == "n" and not _stashed(rs, ref, p, scratch):
            todo.extend(rs.nodes[k][2])
    return sorted(out)


def run_pass(rows: list, group: _Group, p: int) -> None:
    """Pass ``p`` over each of ``rows`` (``_Row``s of the same length), side by side in one
    loop (``group_body``): their reductions, outputs and stashes. Rows are independent,
    so a group of them gives the processor independent chains to overlap (a short row's
    passes are each a chain of dependent reductions)."""
    first = rows[0]
    b, rs, L, R = first.b, first.rs, first.L, group.R
    wide = len(rows) * L
    reds = rs.reductions(p)
    red_inputs = [rs.nodes[k][2][0] for k in reds]
    accs = [Accumulator(rs.nodes[k][0], rs.dtype(rs.nodes[k][2][0])) for k in reds]
    roots = red_inputs + [ref for part in first.stores(p) for _, ref in part]
    # the per-row scalars the pass reads, as wide vectors, once (not in the loops)
    stats = {ref: group.wide(ref, L) for ref in _stat_refs(rs, roots, p, first.scratch)}
    nvec = b.mul(b.sdiv(R, const64(L)), const64(L))
    with Loop(b, const64(0), nvec, L, [a.identity(wide) for a in accs], name=f"pass{p}.vec") as vl:
        env = group_body(rows, p, vl.i, roots, stats)
        vl.next = [a.combine(b, acc, a.widen(b, env[r], wide)) for a, acc, r in zip(accs, vl.vars, red_inputs)]
        for g, row in enumerate(rows):
            row.store_all(p, vl.i, env, g)
    # the tail (fewer than L elements): one vector a row, the lanes past the row's end
    # masked out of the reductions and the stores
    before = b.block
    tail_bb = b.append_basic_block(f"pass{p}.tail")
    done_bb = b.append_basic_block(f"pass{p}.done")
    b.cbranch(b.icmp_signed("<", nvec, R), tail_bb, done_bb)
    b.position_at_end(tail_bb)
    tail = Tail(b, nvec, R, L)
    env = group_body(rows, p, tail, roots, stats)
    live = concat(b, [tail.live] * len(rows))
    tail_accs = [a.combine(b, acc, b.select(live, a.widen(b, env[r], wide), a.identity(wide)))
                 for a, acc, r in zip(accs, vl.results, red_inputs)]
    for g, row in enumerate(rows):
        row.store_all(p, tail, env, g)
    tail_end = b.block
    b.branch(done_bb)
    b.position_at_end(done_bb)
    phis = []  # (all of them first: phis head their block)
    for vacc, tacc in zip(vl.results, tail_accs):
        phis.append(b.phi(vacc.type))
        phis[-1].add_incoming(vacc, before)
        phis[-1].add_incoming(tacc, tail_end)
    for k, a, acc in zip(reds, accs, phis):   # each row's lanes folded, all rows at once
        group.set(("n", k), a.finish(b, a.fold_runs(b, acc, L), group.scale))


def build_module(rs: RowStructure, pattern: str, lanes: int, stash: bool) -> ir.Module:
    n, m = len(rs.inputs), len(rs.outputs)
    mod = ir.Module(name="lucid_rows")
    f = ir.Function(mod, ir.FunctionType(ir.VoidType(), [I64.as_pointer(), I64, I64, I64, I64]), "lucid_rows")
    args, r0, r1, _, _ = f.args
    b = ir.IRBuilder(f.append_basic_block("entry"))
    D, R = load_arg(b, args, 0), load_arg(b, args, 1)
    ptrs = [b.inttoptr(load_arg(b, args, 2 + k), LLVM_MEMORY[dt].as_pointer())
            for k, (dt, _) in enumerate(rs.inputs)]
    outs = [b.inttoptr(load_arg(b, args, 2 + n + i), LLVM_MEMORY[rs.dtype(ref)].as_pointer())
            for i, ref in enumerate(rs.outputs)]
    istr = [load_arg(b, args, 2 + n + m + k) if pattern[k] == "s" else None for k in range(n)]
    scale = b.fdiv(ir.Constant(F64, 1.0), b.sitofp(R, F64))  # a mean's 1/count (NaN for 0 * inf)
    # one stash per row of a group, allocated once (here, not in the loops)
    scratches = [{ref: b.alloca(LLVM_MEMORY[rs.dtype(ref)], size=R, name="stash") for ref in rs.stash}
                 if stash and rs.stash else None for _ in range(ROW_GROUP)]
    base = 2 + 2 * n + m

    # the group's operand offsets when the rows span several dimensions: decoded in a loop
    # over the group's rows (one copy of the decoding code, not one per row) into a stack
    # array (allocated here, not in the loops)
    offsets = b.alloca(I64, size=ROW_GROUP * n, name="offsets") if n else None

    def group_offsets(indices) -> list:
        """Per row of the group (``indices``: the first row's, then the next ones' or,
        past the last row, its), its operands' element offsets."""
        if not n:
            return [[] for _ in indices]

        def one():  # a product each
            strides = [load_arg(b, args, const64(base + 1 + k)) for k in range(n)]
            return [b.mul(i, st) for i in indices for st in strides]

        def many():
            with Loop(b, const64(0), const64(len(indices)), name="decode.rows") as dl:
                i = b.add(indices[0], dl.i)
                i = b.select(b.icmp_signed("<", i, r1), i, b.sub(r1, const64(1)))
                at = b.mul(dl.i, const64(n))
                for k, off in enumerate(decode_loop(b, args, D, n, i, const64(base))):
                    b.store(off, b.gep(offsets, [b.add(at, const64(k))]))
            return [b.load(b.gep(offsets, [const64(x)])) for x in range(len(indices) * n)]
        flat = one_dim_or_many(b, D, one, many)
        return [flat[g * n:(g + 1) * n] for g in range(len(indices))]

    def emit_rows(first, last) -> None:
        """Rows ``first .. first + ROW_GROUP`` side by side, those past ``last`` repeating
        it and storing nothing."""
        indices, valid = [first], [None]
        for g in range(1, ROW_GROUP):
            i = b.add(first, const64(g))
            ok = b.icmp_signed("<", i, r1)
            indices.append(b.select(ok, i, last))
            valid.append(ok)
        row_offsets = group_offsets(indices)
        rows = []
        group = _Group(b, rs, ROW_GROUP, R, scale)
        per_row_inputs: dict = {}
        for i, ok, scratch, offs in zip(indices, valid, scratches, row_offsets):
            bases = [b.gep(ptrs[k], [offs[k]]) for k in range(n)]
            row_outs = [b.gep(outs[o], [b.mul(i, R)] if rs.level(ref) == "r" else [i])
                        for o, ref in enumerate(rs.outputs)]
            row = _Row(b, rs, pattern, lanes, bases, istr, row_outs, scratch)
            row.valid = ok
            for k in range(n):  # what is the same along the row: loaded once per row
                if rs.inputs[k][1] == "s":
                    per_row_inputs.setdefault(k, []).append(to_compute(b, b.load(bases[k]), rs.inputs[k][0]))
                elif pattern[k] == "b":
                    row.row_const[k] = b.load(bases[k])
            rows.append(row)
        for k, scalars in per_row_inputs.items():
            group.gather(("i", k), scalars)
        group.compute(0)
        for p in range(rs.passes):
            run_pass(rows, group, p)
            group.compute(p + 1)
        per_row = [(o, ref) for o, ref in enumerate(rs.outputs) if rs.level(ref) == "s"]
        for g, row in enumerate(rows):
            if per_row:
                with _only_if(b, row.valid):
                    for o, ref in per_row:
                        b.store(to_memory(b, group.of_row(ref, g), rs.dtype(ref)), row.outs[o])

    # ROW_GROUP rows a turn; past the last row, a slot repeats it (reads in bounds) and
    # stores nothing, so one body serves every row count and each row gives the same bits
    with Loop(b, r0, r1, ROW_GROUP, name="rows") as rl:
        emit_rows(rl.i, b.sub(r1, const64(1)))
    b.ret_void()
    return mod


__all__ = ["build_module"]
