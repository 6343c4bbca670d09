"""Native kernels for the scan ops (``argmax``, ``argmin``, ``cumsum``), built with llvmlite.

Every kernel has the loop kernels' ABI, ``fn(block, o0, o1, c0, c1)``, and reads sizes,
strides (in elements, any sign) and the two operand addresses from the int64 argument
``block``, so one compiled kernel serves every shape and layout: only the op, the
dtype and the iteration *mode* change the code. ``scan_steps`` lays a call out.

Block (int64 words): a head of ``HEAD`` words, then dimension groups (outermost first)
decoded from the output row number as the elementwise kernels do
(``loops.decode_offsets``)::

    arg,    row: [Dk, Dr, inner, out, x, x stride of inner, 0, (size, s_x) * Dk, (size, s_x) * Dr]
    arg,    col: [Dk, n, cols, out, x, x stride of the axis, 0, (size, s_x) * Dk]
    cumsum, row: [Dk, n, 0, out, x, x stride of the axis, out stride of the axis, (size, s_x, s_out) * Dk]
    cumsum, col: [Dk, n, cols, out, x, x stride of the axis, out stride of the axis, (size, s_x, s_out) * Dk]

Modes
    * ``row``: each output row scans its own stretch of x. argmax/argmin walk the
      reduced dimensions (``Dr`` outer ones, then ``inner``; all of them for the
      flattened ``axis=None``) in C order; a contiguous inner dimension (pattern
      ``c``) goes ``CHUNK`` elements at a time: the chunk's extreme value by
      independent vector lanes (and whether it holds a NaN), then, only when that
      beats the best so far, the first index of it in the chunk (still in L1), so
      x is read from memory once; the first NaN ends the row. Any other stride
      (pattern ``s``) goes element by element. cumsum adds sequentially along the axis,
      four rows at a time (four independent chains of additions: the latency of one
      addition is what bounds a single row). Rows ``o0 .. o1``; ``c0, c1`` unused.
    * ``col``: the axis is not the unit-stride dimension, the innermost output
      dimension is (``x.argmax(dim=0)`` of a (N, C) tensor, the channel axis of
      (N, C, H, W)): a vector of adjacent columns at a time walks down the axis, its
      best values and their indices (arg) or its running sums (cumsum) in registers.
      Rows ``o0 .. o1`` times columns ``c0 .. c1``.

Either range may be split anywhere (threads take whole rows or column ranges); each
output element is computed by one sequential pass, so the results are the same bits
however a call is split.

Semantics (PyTorch's): argmax/argmin give the first index of the extreme value; a NaN
counts as the extreme for both (the first NaN wins); bool inputs compare as 0/1.
cumsum accumulates float32 in float64 (PyTorch's CPU accumulation type, rounded once
per element), float64 in float64, and int32/int64/bool in int64 (wrapping).
"""
from __future__ import annotations

import ctypes

import llvmlite.ir as ir

from lucid_codegen.jit.cache import load_or_compile, source_stamp
from lucid_codegen.kernels.loops import I64, Loop, RowWalk, const64, decode_offsets, load_arg, splat
from lucid_codegen.jit.target import host_target
from lucid_codegen.kernels.vector_math import F64, I8, ITEMSIZE, LLVM_MEMORY, const, mem_align

__all__ = ["KERNEL_ABI", "HEAD", "CHUNK", "OUT_WORD", "IN_WORD", "kernel", "lanes_for", "build"]

KERNEL_ABI = ctypes.CFUNCTYPE(None, ctypes.POINTER(ctypes.c_int64), ctypes.c_int64,
                              ctypes.c_int64, ctypes.c_int64, ctypes.c_int64)
GENERATOR = ("kernels.scan", "kernels.loops", "kernels.vector_math")  # stamped into keys
HEAD = 7                 # words before the dimension groups
OUT_WORD, IN_WORD = 3, 4
CHUNK = 1024             # argmax/argmin row elements looked at twice while in L1
ROWS_AT_ONCE = 4         # cumsum rows added side by side in row mode
_I32 = ir.IntType(32)
_FLOATS = ("float32", "float64")


def lanes_for(dtype: str | None = None) -> int:
    """Vector lanes of a kernel: two machine vectors of ``dtype`` values (argmax/argmin
    rows, at most 64), else of 8-byte indices (argmax/argmin columns) or sums (cumsum)."""
    size = ITEMSIZE[dtype] if dtype else 8
    return max(2, min(64, 2 * host_target().vector_bytes // size))


# ------------------------------------------------------------------ IR helpers
def _vec(ty, lanes):
    return ir.VectorType(ty, lanes) if lanes else ty


def _splat(b, x, lanes):
    return splat(b, x, lanes) if lanes else x


def _load(b, base, j, lanes, stride=None):
    """``base[j]`` (``base[j * stride]``), or the vector ``base[j .. j + lanes)``."""
    elem = base.type.pointee
    if not lanes:
        return b.load(b.gep(base, [j if stride is None else b.mul(j, stride)]))
    p = b.bitcast(b.gep(base, [j]), ir.VectorType(elem, lanes).as_pointer())
    return b.load(p, align=mem_align(elem))


def _store(b, value, base, j, lanes):
    """``base[j] = value``, or the vector ``base[j .. j + lanes)``."""
    if not lanes:
        b.store(value, b.gep(base, [j]))
        return
    p = b.bitcast(b.gep(base, [j]), value.type.as_pointer())
    b.store(value, p, align=mem_align(base.type.pointee))


def _as_bool(b, v):
    """A stored bool byte as 0/1 (any non-zero byte is true)."""
    return b.zext(b.icmp_unsigned("!=", v, const(v.type, 0)), v.type)


def _new_function(name: str):
    m = ir.Module(name=f"lucid_{name}")
    fnty = ir.FunctionType(ir.VoidType(), [I64.as_pointer(), I64, I64, I64, I64])
    f = ir.Function(m, fnty, "lucid_scan")
    b = ir.IRBuilder(f.append_basic_block("entry"))
    return m, f, b


def _count(b, args, ndims, base, group):
    """Product of the sizes of ``ndims`` dimension groups of ``group`` words at ``base``."""
    with Loop(b, const64(0), ndims, 1, [const64(1)], name="count") as lp:
        size = load_arg(b, args, b.add(base, b.mul(lp.i, const64(group))))
        lp.next = [b.mul(lp.vars[0], size)]
    return lp.results[0]


# ------------------------------------------------------------------ argmax / argmin
class _Order:
    """How argmax (``larger``) or argmin ranks values: a NaN first, then by value; of
    equal values (NaNs included) the one at the smaller index."""

    def __init__(self, dtype: str, larger: bool):
        self.is_float, self.larger = dtype in _FLOATS, larger

    def takes(self, b, v, best):
        """``v`` (at a later index) replaces ``best``: strictly better, or a NaN where
        ``best`` is not one."""
        op = ">" if self.larger else "<"
        if not self.is_float:
            return b.icmp_signed(op, v, best)
        # unordered compare: true when v beats best or either is NaN; then not if best is NaN
        return b.and_(b.fcmp_unordered(op, v, best), b.fcmp_ordered("ord", best, best))

    def extreme(self, b, v, acc):
        """The larger (argmax) or smaller of ``v`` and ``acc``; a NaN ``v`` is not taken
        (callers track NaNs on their own)."""
        op = ">" if self.larger else "<"
        take = b.fcmp_ordered(op, v, acc) if self.is_float else b.icmp_signed(op, v, acc)
        return b.select(take, v, acc)

    def equal(self, b, v, w):
        return b.fcmp_ordered("==", v, w) if self.is_float else b.icmp_signed("==", v, w)

    def fold(self, b, v):
        """``extreme`` over the lanes of ``v``: a halving tree."""
        n = v.type.count
        while n > 1:
            h = n // 2
            lo, hi = (ir.Constant(ir.VectorType(_I32, h), list(range(k, k + h))) for k in (0, h))
            v, n = self.extreme(b, b.shuffle_vector(v, v, hi), b.shuffle_vector(v, v, lo)), h
        return b.extract_element(v, ir.Constant(_I32, 0))


def build_arg(op: str, dtype: str, mode: str, pattern: str, lanes: int) -> ir.Module:
    """``argmax``/``argmin`` of ``dtype`` values in ``mode`` ("row"/"col"); ``pattern``
    "c": a unit-stride inner dimension (row mode: vectorised, chunk by chunk), "s":
    any stride (element by element)."""
    m, f, b = _new_function(f"{op}_{dtype}_{mode}_{pattern}")
    args, o0, o1, c0, c1 = f.args
    ty = LLVM_MEMORY[dtype]
    order = _Order(dtype, op == "argmax")
    out = b.inttoptr(load_arg(b, args, OUT_WORD), I64.as_pointer())
    x = b.inttoptr(load_arg(b, args, IN_WORD), ty.as_pointer())

    def load(base, j, L, stride=None):
        v = _load(b, base, j, L, stride)
        return _as_bool(b, v) if ty == I8 else v

    if mode == "col":
        _arg_columns(b, args, order, x, out, (o0, o1, c0, c1), lanes, load)
    elif pattern == "c":
        _arg_rows_chunked(b, args, order, ty, x, out, (o0, o1), lanes, load)
    else:
        _arg_rows_one_pass(b, args, order, x, out, (o0, o1), load)
    b.ret_void()
    return m


def _arg_columns(b, args, order, x, out, ranges, lanes, load):
    """Col mode: a vector of columns at a time walks down the axis, its best values and
    their indices in registers."""
    o0, o1, c0, c1 = ranges
    Dk, n, cols, s_axis = (load_arg(b, args, k) for k in (0, 1, 2, 5))
    with RowWalk(b, args, Dk, 1, HEAD, o0, o1) as kl:
        (koff,) = kl.offsets
        base = b.gep(x, [koff])
        orow = b.gep(out, [b.mul(kl.i, cols)])

        def columns(j, L):
            with Loop(b, const64(1), n, 1, [load(base, j, L), _splat(b, const64(0), L)], name="axis") as rl:
                v = load(b.gep(base, [b.mul(rl.i, s_axis)]), j, L)
                best, best_i = rl.vars
                t = order.takes(b, v, best)
                rl.next = [b.select(t, v, best), b.select(t, _splat(b, rl.i, L), best_i)]
            _store(b, rl.results[1], orow, j, L)
        _columns(b, c0, c1, lanes, columns)


def _columns(b, c0, c1, lanes, body):
    """``body(j, L)`` for the columns ``[c0, c1)``: vectors of ``lanes``, of a quarter
    of that, then one by one."""
    widths = [L for L in (lanes, lanes // 4) if L >= 2] + [0]
    bounds = _stages(b, c0, c1, widths)
    for k, L in enumerate(widths):
        with Loop(b, bounds[k], bounds[k + 1], max(L, 1), name="cols") as cl:
            body(cl.i, L)


def _row_heads(b, args):
    """``(Dk, Dr, inner, stride of inner, word of the reduced groups, reduced count)``."""
    Dk, Dr, inner, istride = (load_arg(b, args, k) for k in (0, 1, 2, 5))
    rbase = b.add(const64(HEAD), b.mul(Dk, const64(2)))
    return Dk, Dr, inner, istride, rbase, _count(b, args, Dr, rbase, 2)


def _arg_rows_one_pass(b, args, order, x, out, ranges, load):
    """Row mode, any stride: each element once, against the best so far."""
    Dk, Dr, inner, istride, rbase, n_red = _row_heads(b, args)
    with RowWalk(b, args, Dk, 1, HEAD, ranges[0], ranges[1]) as kl:
        (koff,) = kl.offsets
        base = b.gep(x, [koff])
        x0 = load(base, const64(0), 0)   # element 0 seeds the search
        with RowWalk(b, args, Dr, 1, rbase, const64(0), n_red, [x0, const64(0)], name="red") as rl:
            (roff,) = rl.offsets
            p, first = b.gep(base, [roff]), b.mul(rl.i, inner)
            with Loop(b, const64(0), inner, 1, rl.vars, name="inner") as sl:
                v = load(p, sl.i, 0, istride)
                t = order.takes(b, v, sl.vars[0])
                sl.next = [b.select(t, v, sl.vars[0]), b.select(t, b.add(first, sl.i), sl.vars[1])]
            rl.next = sl.results
        b.store(rl.results[1], b.gep(out, [kl.i]))


def _stages(b, lo, hi, widths):
    """Where each width's stretch of ``[lo, hi)`` ends: vectors of ``widths[0]`` lanes,
    then of ``widths[1]``, ..., the last (0) one by one."""
    bounds, at = [lo], lo
    for L in widths[:-1]:
        at = b.add(at, b.mul(b.sdiv(b.sub(hi, at), const64(L)), const64(L)))
        bounds.append(at)
    return bounds + [hi]


def _arg_rows_chunked(b, args, order, ty, x, out, ranges, lanes, load):
    """Row mode, unit-stride inner dimension, ``CHUNK`` elements at a time: the chunk's
    extreme value (and whether it holds a NaN) with independent vector lanes; only
    when that beats the best so far, a second look at the chunk (still in L1) finds
    its first index. The first NaN ends the row."""
    Dk, Dr, inner, _, rbase, n_red = _row_heads(b, args)
    widths = [L for L in (lanes, lanes // 4) if L >= 2] + [0]
    flag_ty = ir.IntType(32 if ty == ir.FloatType() else 64)   # NaN masks (floats)
    with Loop(b, ranges[0], ranges[1], 1, name="row") as kl:
        done = b.append_basic_block("row.done")
        (koff,) = decode_offsets(b, args, Dk, 1, kl.i, HEAD)
        base = b.gep(x, [koff])
        x0 = load(base, const64(0), 0)   # element 0: the best so far
        with Loop(b, const64(0), n_red, 1, [x0, const64(0)], name="red") as rl:
            (roff,) = decode_offsets(b, args, Dr, 1, rl.i, rbase)
            p, first = b.gep(base, [roff]), b.mul(rl.i, inner)
            with Loop(b, const64(0), inner, CHUNK, rl.vars, name="chunk") as cl:
                lo, hi = cl.i, b.add(cl.i, const64(CHUNK))
                hi = b.select(b.icmp_signed("<", hi, inner), hi, inner)
                top, nan = _chunk_extreme(b, order, p, lo, hi, widths, flag_ty, load)
                if order.is_float:
                    with b.if_then(nan):   # the first NaN: the answer
                        at = _seek(b, p, lo, hi, widths, lambda v, L: b.fcmp_unordered("uno", v, v), load)
                        b.store(b.add(first, at), b.gep(out, [kl.i]))
                        b.branch(done)
                        b.position_at_end(b.append_basic_block("unreachable"))
                best, best_i = cl.vars
                before = b.block
                with b.if_then(order.takes(b, top, best)):
                    at = _seek(b, p, lo, hi, widths,
                               lambda v, L: order.equal(b, v, _splat(b, top, L)), load)
                    found_i, found_bb = b.add(first, at), b.block
                new_best, new_i = b.phi(ty), b.phi(I64)
                new_best.add_incoming(best, before)
                new_best.add_incoming(top, found_bb)
                new_i.add_incoming(best_i, before)
                new_i.add_incoming(found_i, found_bb)
                cl.next = [new_best, new_i]
            rl.next = cl.results
        b.store(rl.results[1], b.gep(out, [kl.i]))
        b.branch(done)
        b.position_at_end(done)


def _chunk_extreme(b, order, p, lo, hi, widths, flag_ty, load):
    """The extreme value of ``p[lo:hi]`` (NaNs aside) and whether it holds a NaN."""
    bounds = _stages(b, lo, hi, widths)
    seed = load(p, lo, 0)
    top, nan = None, const(ir.IntType(1), 0)
    for k, L in enumerate(widths):
        with Loop(b, bounds[k], bounds[k + 1], max(L, 1),
                  [_splat(b, seed, L), const(_vec(flag_ty, L), 0)], name="max") as sl:
            v = load(p, sl.i, L)
            acc, flags = sl.vars
            if order.is_float:
                flags = b.or_(flags, b.sext(b.fcmp_unordered("uno", v, v), flags.type))
            sl.next = [order.extreme(b, v, acc), flags]
        acc, flags = sl.results
        if L:
            acc, flags = order.fold(b, acc), b.bitcast(flags, ir.IntType(L * flag_ty.width))
        top = acc if top is None else order.extreme(b, acc, top)
        nan = b.or_(nan, b.icmp_unsigned("!=", flags, const(flags.type, 0)))
    return top, nan


def _seek(b, p, lo, hi, widths, matches, load):
    """The position of the first ``v`` of ``p[lo:hi]`` with ``matches(v, lanes)``,
    leaving the loops at the match (``hi`` if there is none)."""
    bounds = _stages(b, lo, hi, widths)
    found = b.append_basic_block("found")
    exits = []
    for k, L in enumerate(widths):
        with Loop(b, bounds[k], bounds[k + 1], max(L, 1), name="seek") as sl:
            match = matches(load(p, sl.i, L), L)
            bits = b.bitcast(match, ir.IntType(L)) if L else match
            hit_bb, go_on = b.append_basic_block("hit"), b.append_basic_block("go_on")
            b.cbranch(b.icmp_unsigned("!=", bits, const(bits.type, 0)), hit_bb, go_on)
            b.position_at_end(hit_bb)
            at = sl.i
            if L:
                at = b.add(at, b.zext(b.cttz(bits, const(ir.IntType(1), 1)), I64))
            exits.append((at, hit_bb))
            b.branch(found)
            b.position_at_end(go_on)
    exits.append((hi, b.block))
    b.branch(found)
    b.position_at_end(found)
    at = b.phi(I64)
    for value, block in exits:
        at.add_incoming(value, block)
    return at


# ------------------------------------------------------------------ cumsum
def _acc_type(dtype: str):
    return F64 if dtype in _FLOATS else I64


def _widen(b, v, dtype):
    acc = _acc_type(dtype)
    ty = ir.VectorType(acc, v.type.count) if isinstance(v.type, ir.VectorType) else acc
    if dtype == "float32":
        return b.fpext(v, ty)
    if dtype == "bool":
        return b.zext(_as_bool(b, v), ty)
    if dtype == "int32":
        return b.sext(v, ty)
    return v


def _narrow(b, acc, dtype):
    if dtype != "float32":
        return acc
    ty = ir.VectorType(ir.FloatType(), acc.type.count) if isinstance(acc.type, ir.VectorType) else ir.FloatType()
    return b.fptrunc(acc, ty)


def _add(b, a, v):
    return b.fadd(a, v) if isinstance(getattr(a.type, "element", a.type), ir.DoubleType) else b.add(a, v)


def build_cumsum(dtype: str, mode: str, lanes: int) -> ir.Module:
    """``cumsum`` of ``dtype`` values (the output: float32 for float32, float64 for
    float64, int64 otherwise) in ``mode`` ("row"/"col")."""
    m, f, b = _new_function(f"cumsum_{dtype}_{mode}")
    args, o0, o1, c0, c1 = f.args
    ty, acc_ty = LLVM_MEMORY[dtype], _acc_type(dtype)
    out_ty = ir.FloatType() if dtype == "float32" else acc_ty
    Dk, n = load_arg(b, args, 0), load_arg(b, args, 1)
    out = b.inttoptr(load_arg(b, args, OUT_WORD), out_ty.as_pointer())
    x = b.inttoptr(load_arg(b, args, IN_WORD), ty.as_pointer())
    s_in, s_out = load_arg(b, args, 5), load_arg(b, args, 6)
    zero = ir.Constant(acc_ty, 0.0 if acc_ty == F64 else 0)

    if mode == "col":  # a vector of columns at a time down the axis, the sums in registers
        cols = load_arg(b, args, 2)
        with Loop(b, o0, o1, 1, name="row") as kl:
            ioff, ooff = decode_offsets(b, args, Dk, 2, kl.i, HEAD)
            bin_, bout = b.gep(x, [ioff]), b.gep(out, [ooff])

            def columns(j, L):
                with Loop(b, const64(0), n, 1, [_splat(b, zero, L)], name="axis") as rl:
                    v = _load(b, b.gep(bin_, [b.mul(rl.i, s_in)]), j, L)
                    acc = _add(b, rl.vars[0], _widen(b, v, dtype))
                    _store(b, _narrow(b, acc, dtype), b.gep(bout, [b.mul(rl.i, s_out)]), j, L)
                    rl.next = [acc]
            _columns(b, c0, c1, lanes, columns)
        b.ret_void()
        return m

    def rows(first, count):
        """Rows ``first .. first + count - 1`` side by side: ``count`` chains of additions."""
        ptrs = []
        for g in range(count):
            ioff, ooff = decode_offsets(b, args, Dk, 2, b.add(first, const64(g)), HEAD)
            ptrs.append((b.gep(x, [ioff]), b.gep(out, [ooff])))
        with Loop(b, const64(0), n, 1, [zero] * count, name="axis") as lp:
            at_in, at_out = b.mul(lp.i, s_in), b.mul(lp.i, s_out)
            nxt = []
            for (pin, pout), a in zip(ptrs, lp.vars):
                a = _add(b, a, _widen(b, b.load(b.gep(pin, [at_in])), dtype))
                b.store(_narrow(b, a, dtype), b.gep(pout, [at_out]))
                nxt.append(a)
            lp.next = nxt

    G = ROWS_AT_ONCE
    gend = b.add(o0, b.mul(b.sdiv(b.sub(o1, o0), const64(G)), const64(G)))
    with Loop(b, o0, gend, G, name="rows") as gl:
        rows(gl.i, G)
    with Loop(b, gend, o1, 1, name="row") as kl:
        rows(kl.i, 1)
    b.ret_void()
    return m


# ------------------------------------------------------------------ compiled kernels
def build(spec: tuple) -> ir.Module:
    """The module of ``spec``: ``("arg", op, dtype, mode, pattern, lanes)`` or
    ``("cumsum", dtype, mode, lanes)``."""
    if spec[0] == "arg":
        return build_arg(*spec[1:])
    return build_cumsum(*spec[1:])


_FUNCTIONS: dict[tuple, object] = {}


def kernel(spec: tuple):
    """The compiled kernel of ``spec`` (see ``build``), from memory, the disk cache or LLVM."""
    fn = _FUNCTIONS.get(spec)
    if fn is None:
        text = "|".join(map(str, spec))
        lib = load_or_compile(f"scan/{source_stamp(*GENERATOR)}|{text}", lambda: build(spec),
                              ["lucid_scan"], label=f"scan {text}")
        fn = _FUNCTIONS.setdefault(spec, KERNEL_ABI(lib.address("lucid_scan")))
    return fn
