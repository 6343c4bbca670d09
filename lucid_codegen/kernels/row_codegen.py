"""LLVM IR of a row kernel: one loop over rows; inside it, the passes over the row.

``build_module(rs, pattern, lanes, stash)`` emits
``void lucid_rows(i64 *args, i64 r0, i64 r1, i64, i64)`` running rows [r0, r1) (the
last two arguments are unused: the loop kernels' signature, so native programs and
eager trampolines call it like them). For each row it computes the per-row values
known before any pass, then for each pass (``RowStructure``) a vector loop of ``lanes``
and a scalar remainder over the row: the pass's ``r`` values (the loop's inputs loaded,
the per-row values splat, stashed values loaded), its reductions accumulated in
registers, its outputs and stashes stored; after the loops the accumulators are folded
(``accumulate.Accumulator``) and the next per-row values computed as scalars. A row's
result never depends on which rows a call runs, so threads may take any whole rows.

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

import llvmlite.ir as ir

from lucid_codegen.kernels.accumulate import Accumulator, splat
from lucid_codegen.kernels.loops import I64, Loop, const64, decode_offsets, load_arg
from lucid_codegen.kernels.lowering import emit_op
from lucid_codegen.kernels.row_structure import RowStructure
from lucid_codegen.kernels.vector_math import F64, LLVM_MEMORY, LLVM_TYPE, const, mem_align, to_compute, to_memory

_I32 = ir.IntType(32)


class _Row:
    """The code of one row: per-row scalars, and the emission of one pass's loop body."""

    def __init__(self, b, rs: RowStructure, pattern, lanes, bases, istr, outs, scratch, R, scale):
        self.b, self.rs, self.pattern, self.L = b, rs, pattern, lanes
        self.bases, self.istr, self.outs, self.scratch = bases, istr, outs, scratch
        self.R, self.scale = R, scale
        self.stats: dict = {}   # s-level ref -> scalar (compute type)
        self.row_const: dict = {}  # input k with pattern b -> its scalar this row

    # -------------------------------------------------------------- per-row scalars
    def stat(self, ref):
        try:
            return self.stats[ref]
        except KeyError:
            raise AssertionError(f"row kernel: per-row value {ref} used before it is computed") from None

    def set_stat(self, ref, value) -> None:
        self.stats[ref] = value

    def compute_stats(self, p: int) -> None:
        rs, b = self.rs, self.b
        for k in rs.stats_ready(p):
            op, attrs, refs, dtype, _, _ = rs.nodes[k]
            if op == "constant":
                self.set_stat(("n", k), const(LLVM_TYPE[dtype], dict(attrs)["value"]))
            else:
                self.set_stat(("n", k), emit_op(b, op, [self.stat(r) for r in refs], dict(attrs), None))

    # -------------------------------------------------------------- one pass
    def body(self, p: int, j, lanes: int, roots) -> dict:
        """Emit the ``r`` values ``roots`` at row index ``j`` (vectors of ``lanes``, 0:
        scalars) in pass ``p``; returns ``{ref: value}``."""
        b, rs = self.b, self.rs
        env: dict = {}

        def get(ref):
            if ref in env:
                return env[ref]
            kind, k = ref
            if rs.level(ref) == "s":
                v = self.stat(ref)
                v = splat(b, v, lanes) if lanes else v
            elif kind == "i":
                v = to_compute(b, self._load_input(k, j, lanes), rs.dtype(ref))
            elif ref in rs.stash and self.scratch is not None and rs.ready(ref) < p:
                v = to_compute(b, self._load(self.scratch[ref], j, lanes), rs.dtype(ref))
            else:
                op, attrs, refs, dtype, _, _ = rs.nodes[k]
                if op == "constant":
                    s = LLVM_TYPE[dtype]
                    v = const(ir.VectorType(s, lanes) if lanes else s, dict(attrs)["value"])
                else:
                    v = emit_op(b, op, [get(r) for r in refs], dict(attrs), None)
            env[ref] = v
            return v

        for r in roots:
            get(r)
        return env

    # ``j``: the row index of the first lane (vectors of consecutive elements), or, for
    # the tail of a row, a list of each lane's index (clamped to the row: the lanes past
    # its end repeat its last element, and store the same value there again)
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
        if isinstance(j, list):
            return self._gather(base, j, self.istr[k])
        if not lanes:
            return b.load(b.gep(base, [b.mul(j, self.istr[k])]))
        return self._gather(base, [b.add(j, const64(lane)) for lane in range(lanes)], self.istr[k])

    def _load(self, base, j, lanes):
        b = self.b
        if isinstance(j, list):
            return self._gather(base, j)
        if not lanes:
            return b.load(b.gep(base, [j]))
        elem = base.type.pointee
        p = b.bitcast(b.gep(base, [j]), ir.VectorType(elem, lanes).as_pointer())
        return b.load(p, align=mem_align(elem))

    def store(self, base, j, value, lanes, dtype):
        b = self.b
        value = to_memory(b, value, dtype)
        if isinstance(j, list):
            for lane, i in enumerate(j):
                b.store(b.extract_element(value, ir.Constant(_I32, lane)), b.gep(base, [i]))
            return
        if not lanes:
            b.store(value, b.gep(base, [j]))
            return
        p = b.bitcast(b.gep(base, [j]), value.type.as_pointer())
        b.store(value, p, align=mem_align(value.type.element))

    def run_pass(self, p: int) -> None:
        """Pass ``p`` over the row: its reductions, outputs and stashes."""
        b, rs, L = self.b, self.rs, self.L
        reds = rs.reductions(p)
        accs = [Accumulator(rs.nodes[k][0], rs.dtype(rs.nodes[k][2][0])) for k in reds]
        red_inputs = [rs.nodes[k][2][0] for k in reds]
        stores = [(self.outs[i], ref) for i, ref in enumerate(rs.outputs)
                  if rs.level(ref) == "r" and rs.ready(ref) == p]
        if self.scratch is not None:
            stores += [(self.scratch[ref], ref) for ref in rs.stash if rs.ready(ref) == p]
        roots = red_inputs + [ref for _, ref in stores]
        nvec = b.mul(b.sdiv(self.R, const64(L)), const64(L))
        with Loop(b, const64(0), nvec, L, [a.identity(L) for a in accs], name=f"pass{p}.vec") as vl:
            env = self.body(p, vl.i, L, roots)
            vl.next = [a.combine(b, acc, a.widen(b, env[r], L)) for a, acc, r in zip(accs, vl.vars, red_inputs)]
            for base, ref in stores:
                self.store(base, vl.i, env[ref], L, rs.dtype(ref))
        # the tail (fewer than L elements): one vector of clamped lanes, the lanes past
        # the row's end masked out of the reductions
        before = b.block
        tail_bb = b.append_basic_block(f"pass{p}.tail")
        done_bb = b.append_basic_block(f"pass{p}.done")
        b.cbranch(b.icmp_signed("<", nvec, self.R), tail_bb, done_bb)
        b.position_at_end(tail_bb)
        last = b.sub(self.R, const64(1))
        idxs = []
        for lane in range(L):
            i = b.add(nvec, const64(lane))
            idxs.append(b.select(b.icmp_signed("<", i, self.R), i, last))
        lane_ids = b.add(splat(b, nvec, L), ir.Constant(ir.VectorType(I64, L), list(range(L))))
        live = b.icmp_signed("<", lane_ids, splat(b, self.R, L))
        env = self.body(p, idxs, L, roots)
        tail_accs = [a.combine(b, acc, b.select(live, a.widen(b, env[r], L), a.identity(L)))
                     for a, acc, r in zip(accs, vl.results, red_inputs)]
        for base, ref in stores:
            self.store(base, idxs, env[ref], L, rs.dtype(ref))
        tail_end = b.block
        b.branch(done_bb)
        b.position_at_end(done_bb)
        phis = []
        for vacc, tacc in zip(vl.results, tail_accs):
            phis.append(b.phi(vacc.type))
            phis[-1].add_incoming(vacc, before)
            phis[-1].add_incoming(tacc, tail_end)
        for k, a, phi in zip(reds, accs, phis):
            self.set_stat(("n", k), a.finish(b, a.hreduce(b, phi), self.scale))


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
    scratch = None
    if stash and rs.stash:
        scratch = {ref: b.alloca(LLVM_MEMORY[rs.dtype(ref)], size=R, name="stash") for ref in rs.stash}
    base = 2 + 2 * n + m
    with Loop(b, r0, r1, 1, name="row") as rl:
        offs = decode_offsets(b, args, D, n, rl.i, base) if n else []
        bases = [b.gep(ptrs[k], [offs[k]]) for k in range(n)]
        row_outs = [b.gep(outs[i], [b.mul(rl.i, R)] if rs.level(ref) == "r" else [rl.i])
                    for i, ref in enumerate(rs.outputs)]
        row = _Row(b, rs, pattern, lanes, bases, istr, row_outs, scratch, R, scale)
        for k in range(n):  # what is the same along the row: loaded once per row
            if rs.inputs[k][1] == "s":
                row.set_stat(("i", k), to_compute(b, b.load(bases[k]), rs.inputs[k][0]))
            elif pattern[k] == "b":
                row.row_const[k] = b.load(bases[k])
        row.compute_stats(0)
        for p in range(rs.passes):
            row.run_pass(p)
            row.compute_stats(p + 1)
        for i, ref in enumerate(rs.outputs):
            if rs.level(ref) == "s":
                b.store(to_memory(b, row.stat(ref), rs.dtype(ref)), row_outs[i])
    b.ret_void()
    return mod


__all__ = ["build_module"]
