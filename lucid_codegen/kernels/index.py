"""Native kernels that move data by position: strided copies (``concat``, ``embed``),
``gather`` and ``scatter_add``, built with llvmlite.

Every kernel has the loop kernels' ABI, ``fn(block, lo, hi, lo2, hi2)`` (``KERNEL_ABI``),
and reads its sizes, strides (in elements, any sign) and operand addresses from the
int64 argument ``block``, so one compiled kernel serves every shape and layout; only
the element type changes the code. A walk over N dimensions is rows (the outer N-1
dimensions, walked as an odometer from the first row, ``loops.RowWalk``) times an inner loop over the last dimension.

Blocks (words; dims are ``(size, stride per operand)`` groups, outermost first):

``copy``  ``[n_parts, out, zero_count, part..., tables...]`` with each part
          ``[src, out offset, n_rows, ndim, table, (size, s_out, s_src) * ndim]``: the
          first ``zero_count`` elements of out are zeroed, then each part copied into
          ``out + offset``. A call copies the share ``lo / hi2 .. hi / hi2`` of every
          part's rows (``(0, 1, 0, 1)``: all of them; ``lo2`` is ignored), and zeroes
          when ``lo`` is 0: the parts of a ``concat`` (no zeroing) write disjoint rows,
          so calls with adjacent shares may run at once on several threads. A part whose
          ``table`` is not 0 moves its rows through a gather table: its last dimension
          is ``(n, 1, 0)``, and the block from word ``table`` on holds ``n`` int32 element
          offsets (two a word) of the source elements of a row's ``n`` adjacent output
          elements; a row is then ``n / L`` vector gathers and stores, where the strided
          walk would move rows of two or four elements one at a time (a max-pool's
          window transposes, an NCHW <-> NHWC permutation).
``copy_add`` the same block; each part is added to what is there (``embed_sum``: the
          output zeroed, then the parts added in order).
``gather`` ``[ndim, n, axis stride of x, out, index, x, 0, (size, s_out, s_index, s_x) * ndim]``
          (x's stride along the axis is 0 in its dims: the index supplies it);
          rows ``lo .. hi``, inner ``lo2 .. hi2``. ``out = x[.. j ..]`` with ``j`` the
          index; an index outside ``[0, n)`` gives 0 and reads nothing.
``scatter_add`` ``[ndim, n, axis stride of out, out, index, src, zero_count, (size, s_out, s_index, s_src) * ndim]``:
          out's first ``zero_count`` elements zeroed, then ``out[.. j ..] += src``; an
          index outside ``[0, n)`` is skipped. Call it whole (rows ``0 .. n_rows``):
          duplicates make its parts depend on each other.

Indices are checked in the kernel with one unsigned compare (negative indices are
huge unsigned numbers), so no index value can make a kernel leave its buffers.
"""
from __future__ import annotations

import ctypes

import llvmlite.ir as ir

from lucid_codegen.jit.cache import load_or_compile, source_stamp
from lucid_codegen.jit.llvm import loop_pipeline
from lucid_codegen.kernels.loops import I64, Loop, RowWalk, bit_width, const64, load_arg, masked_intrinsic, splat
from lucid_codegen.kernels.tail import Tail

KERNEL_ABI = ctypes.CFUNCTYPE(None, ctypes.POINTER(ctypes.c_int64), ctypes.c_int64,
                              ctypes.c_int64, ctypes.c_int64, ctypes.c_int64)
GENERATOR = ("kernels.index", "kernels.loops", "kernels.tail", "kernels.vector_math")  # stamped into keys
GATHER_HEAD = 7          # words before a gather/scatter_add block's dims
COPY_HEAD = 3            # words before a copy block's first part
PART_HEAD = 5            # words before a copy part's dims

#: the integer type that moves an element of each size (copies and gathers move bits)
_BITS = {1: ir.IntType(8), 4: ir.IntType(32), 8: ir.IntType(64)}
#: the arithmetic type of scatter_add per dtype
_ADD_TYPE = {"float32": ir.FloatType(), "float64": ir.DoubleType(),
             "int32": ir.IntType(32), "int64": ir.IntType(64)}


def _new_function(name: str):
    m = ir.Module(name=f"lucid_{name}")
    fnty = ir.FunctionType(ir.VoidType(), [I64.as_pointer(), I64, I64, I64, I64])
    f = ir.Function(m, fnty, f"lucid_{name}")
    b = ir.IRBuilder(f.append_basic_block("entry"))
    return m, f, b


def _pointer(b, args, word: int, ty):
    return b.inttoptr(load_arg(b, args, word), ty.as_pointer())


def _zero(b, ptr, count, ty):
    """``ptr[0 .. count) = 0`` (LLVM turns the loop into a memset)."""
    zero = ir.Constant(ty, 0 if isinstance(ty, ir.IntType) else 0.0)
    with Loop(b, const64(0), count, name="zero") as lp:
        b.store(zero, b.gep(ptr, [lp.i]))


def _walk(b, args, dims_at, ndim, n_ops: int, rows, inner, body):
    """For each row in ``rows`` and inner position in ``inner``, call
    ``body(offsets)`` with the element offsets of the ``n_ops`` operands; the dims
    are ``(size, stride * n_ops)`` groups at word ``dims_at`` (a value)."""
    group = n_ops + 1
    last = b.add(dims_at, b.mul(b.sub(ndim, const64(1)), const64(group)))
    strides = [load_arg(b, args, b.add(last, const64(1 + j))) for j in range(n_ops)]
    with RowWalk(b, args, b.sub(ndim, const64(1)), n_ops, dims_at, rows[0], rows[1]) as row:
        with Loop(b, inner[0], inner[1], name="inner") as lp:
            body([b.add(o, b.mul(lp.i, s)) for o, s in zip(row.offsets, strides)])


def _copy_rows(b, args, dims_at, ndim, n_rows, inner, src, dst, table, add=False, share=None):
    """``dst[row, i] = src[row, i]`` (``add``: ``+=``) over a part's rows (``share``:
    ``(numerator lo, hi, denominator)``, those rows ``n_rows·lo/den .. n_rows·hi/den``):
    a loop of unit stride (which LLVM vectorises) when both last-dimension strides are
    1, gathers through the part's table when it has one (``table``: its first word, or
    0), else the strided walk."""
    last = b.add(dims_at, b.mul(b.sub(ndim, const64(1)), const64(3)))
    s_dst, s_src = (load_arg(b, args, b.add(last, const64(1 + j))) for j in range(2))
    unit = b.and_(b.icmp_signed("==", s_dst, const64(1)), b.icmp_signed("==", s_src, const64(1)))

    def move(d, s):
        v = b.load(s)
        b.store(_plus(b, b.load(d), v) if add else v, d)

    def walk(o_dst, o_src):
        with b.if_else(unit) as (contiguous, strided):
            with contiguous:
                _move_unit(b, b.gep(src, [o_src]), b.gep(dst, [o_dst]), inner, add)
            with strided:
                with Loop(b, const64(0), inner, name="inner") as lp:
                    move(b.gep(dst, [b.add(o_dst, b.mul(lp.i, s_dst))]),
                         b.gep(src, [b.add(o_src, b.mul(lp.i, s_src))]))

    def row(o_dst, o_src):
        if Tail.maskable(src.type.pointee):
            offsets = b.bitcast(b.gep(args, [table]), ir.IntType(32).as_pointer())
            with b.if_else(b.icmp_signed("!=", table, const64(0))) as (gathered, walked):
                with gathered:
                    _move_table(b, b.gep(src, [o_src]), b.gep(dst, [o_dst]), offsets, inner, add)
                with walked:
                    walk(o_dst, o_src)
        else:  # bytes: no gathers (and no part of theirs has a table)
            walk(o_dst, o_src)

    # the rows: the walk's odometer over every dimension but the last two, and the
    # second-to-last one as a plain loop (a concat of a head split's transposed views
    # moves rows of one head dim, 4096 of them per part: the odometer's loads and
    # stores per row cost more than the row's two vectors)
    lo_num, hi_num, den = share or (const64(0), const64(1), const64(1))
    r0 = b.sdiv(b.mul(n_rows, lo_num), den)   # this call's rows of the part: r0 .. r1
    r1 = b.sdiv(b.mul(n_rows, hi_num), den)
    with b.if_else(b.icmp_signed(">=", ndim, const64(2))) as (nested, flat):
        with nested:
            pen = b.add(dims_at, b.mul(b.sub(ndim, const64(2)), const64(3)))
            size, s_dst2, s_src2 = (load_arg(b, args, b.add(pen, const64(j))) for j in range(3))
            some = b.icmp_signed(">", size, const64(0))   # (a division by 0 is undefined: never made)
            div = b.select(some, size, const64(1))
            o0 = b.select(some, b.sdiv(r0, div), const64(0))
            o1 = b.select(some, b.sdiv(b.add(r1, b.sub(div, const64(1))), div), const64(0))
            with RowWalk(b, args, b.sub(ndim, const64(2)), 2, dims_at, o0, o1) as walk_rows:
                o_dst, o_src = walk_rows.offsets
                first = b.mul(walk_rows.i, size)   # the walk row's first row of the part
                j0 = b.sub(r0, first)
                j0 = b.select(b.icmp_signed(">", j0, const64(0)), j0, const64(0))
                j1 = b.sub(r1, first)
                j1 = b.select(b.icmp_signed("<", j1, size), j1, size)
                with Loop(b, j0, j1, name="row") as lp:
                    row(b.add(o_dst, b.mul(lp.i, s_dst2)), b.add(o_src, b.mul(lp.i, s_src2)))
        with flat:
            with RowWalk(b, args, b.sub(ndim, const64(1)), 2, dims_at, r0, r1) as walk_rows:
                row(*walk_rows.offsets)


def _move_table(b, src, dst, offsets, n, add):
    """``dst[i] = src[offsets[i]]`` (``add``: ``+=``) for ``i < n``: vector gathers of
    the int32 ``offsets``, adjacent stores, the last vector masked (``Tail``)."""
    ty = src.type.pointee
    lanes = 512 // bit_width(ty)
    vty, ity = ir.VectorType(ty, lanes), ir.VectorType(ir.IntType(32), lanes)
    gather = masked_intrinsic(b.module, "gather", vty)
    base = splat(b, b.ptrtoint(src, I64), lanes)
    size = ir.Constant(ir.VectorType(I64, lanes), [bit_width(ty) // 8] * lanes)

    def gathered(idx, mask):
        ptrs = b.inttoptr(b.add(base, b.mul(b.sext(idx, base.type), size)), ir.VectorType(ty.as_pointer(), lanes))
        return b.call(gather, [ptrs, ir.IntType(32)(bit_width(ty) // 8), mask, ir.Constant(vty, None)])

    everything = ir.Constant(ir.VectorType(ir.IntType(1), lanes), [1] * lanes)
    full = b.mul(b.sdiv(n, const64(lanes)), const64(lanes))
    with Loop(b, const64(0), full, lanes, name="gathered") as lp:
        v = gathered(b.load(b.bitcast(b.gep(offsets, [lp.i]), ity.as_pointer()), align=4), everything)
        at = b.bitcast(b.gep(dst, [lp.i]), vty.as_pointer())
        b.store(_plus(b, b.load(at, align=1), v) if add else v, at, align=1)
    with b.if_then(b.icmp_signed("<", full, n)):
        tail = Tail(b, full, n, lanes)
        v = gathered(tail.load(b, offsets), tail.live)
        tail.store(b, dst, _plus(b, tail.load(b, dst), v) if add else v)


def _move_unit(b, src, dst, n, add):
    """``dst[0 .. n) = src[0 .. n)`` (``add``: ``+=``) in 64-byte vectors, the last one
    masked: a row of 16 floats is one vector (LLVM's own vector loop, several vectors a
    turn, would leave such short rows to its scalar remainder loop)."""
    ty = src.type.pointee
    lanes = 512 // bit_width(ty)
    vty = ir.VectorType(ty, lanes)
    vp = vty.as_pointer()

    def move(at, mask=None):
        s, d = b.bitcast(b.gep(src, [at]), vp), b.bitcast(b.gep(dst, [at]), vp)
        if mask is None:
            v = b.load(s, align=1)
            b.store(_plus(b, b.load(d, align=1), v) if add else v, d, align=1)
            return
        v = b.call(masked_intrinsic(b.module, "load", vty), [s, ir.IntType(32)(1), mask, ir.Constant(vty, None)])
        if add:
            v = _plus(b, b.call(masked_intrinsic(b.module, "load", vty), [d, ir.IntType(32)(1), mask,
                                                                ir.Constant(vty, None)]), v)
        b.call(masked_intrinsic(b.module, "store", vty), [v, d, ir.IntType(32)(1), mask])

    full = b.mul(b.sdiv(n, const64(lanes)), const64(lanes))
    with Loop(b, const64(0), full, lanes, name="unit") as lp:
        move(lp.i)
    rest = b.sub(n, full)
    with b.if_then(b.icmp_signed(">", rest, const64(0))):
        lane = ir.Constant(ir.VectorType(I64, lanes), list(range(lanes)))
        move(full, b.icmp_signed("<", lane, splat(b, rest, lanes)))


def _plus(b, x, y):
    el = x.type.element if isinstance(x.type, ir.VectorType) else x.type
    return b.add(x, y) if isinstance(el, ir.IntType) else b.fadd(x, y)


def build_copy(itemsize: int, add_dtype: str | None = None) -> ir.Module:
    """The ``copy`` kernel moving elements of ``itemsize`` bytes; with ``add_dtype``, the
    ``copy_add`` kernel adding each part into the (zeroed) output instead (``embed_sum``)."""
    m, f, b = _new_function("copy_add" if add_dtype else "copy")
    args, lo, hi, _, den = f.args
    ty = _ADD_TYPE[add_dtype] if add_dtype else _BITS[itemsize]
    n_parts = load_arg(b, args, 0)
    out = _pointer(b, args, 1, ty)
    with b.if_then(b.icmp_signed("==", lo, const64(0))):
        _zero(b, out, load_arg(b, args, 2), ty)
    with Loop(b, const64(0), n_parts, carried=[const64(COPY_HEAD)], name="part") as part:
        at = part.vars[0]
        src = b.inttoptr(load_arg(b, args, at), ty.as_pointer())
        dst = b.gep(out, [load_arg(b, args, b.add(at, const64(1)))])
        n_rows = load_arg(b, args, b.add(at, const64(2)))
        ndim = load_arg(b, args, b.add(at, const64(3)))
        table = load_arg(b, args, b.add(at, const64(4)))
        dims_at = b.add(at, const64(PART_HEAD))
        inner = load_arg(b, args, b.add(dims_at, b.mul(b.sub(ndim, const64(1)), const64(3))))

        _copy_rows(b, args, dims_at, ndim, n_rows, inner, src, dst, table, add=add_dtype is not None,
                   share=(lo, hi, den))
        part.next = [b.add(dims_at, b.mul(ndim, const64(3)))]
    b.ret_void()
    return m


def _index_in_range(b, args, offs_index, index_ptr):
    """(j, valid): the index at this position and whether it is in ``[0, n)``."""
    j = b.load(b.gep(index_ptr, [offs_index]))
    return j, b.icmp_unsigned("<", j, load_arg(b, args, 1))


def build_gather(itemsize: int) -> ir.Module:
    m, f, b = _new_function("gather")
    args, lo, hi, lo2, hi2 = f.args
    ty = _BITS[itemsize]
    ndim, axis_stride = load_arg(b, args, 0), load_arg(b, args, 2)
    out, index, x = _pointer(b, args, 3, ty), _pointer(b, args, 4, I64), _pointer(b, args, 5, ty)

    def element(offs):
        j, valid = _index_in_range(b, args, offs[1], index)
        at = b.add(offs[2], b.mul(b.select(valid, j, const64(0)), axis_stride))
        with b.if_else(valid) as (then, otherwise):
            with then:
                v_in = b.load(b.gep(x, [at]))
                then_bb = b.block
            with otherwise:
                else_bb = b.block
        v = b.phi(ty)
        v.add_incoming(v_in, then_bb)
        v.add_incoming(ir.Constant(ty, 0), else_bb)
        b.store(v, b.gep(out, [offs[0]]))

    dims_at = const64(GATHER_HEAD)
    last = b.add(dims_at, b.mul(b.sub(ndim, const64(1)), const64(4)))
    s_out, s_index, s_x = (load_arg(b, args, b.add(last, const64(1 + k))) for k in range(3))
    # a row gather (embedding, x[idx] over rows): one index per row of unit-stride
    # elements, moved in vectors
    rows_of_x = b.and_(b.icmp_signed("==", s_index, const64(0)),
                       b.and_(b.icmp_signed("==", s_out, const64(1)), b.icmp_signed("==", s_x, const64(1))))
    with RowWalk(b, args, b.sub(ndim, const64(1)), 3, dims_at, lo, hi) as row:
        o_out, o_index, o_x = row.offsets
        with b.if_else(rows_of_x) as (whole_rows, strided):
            with whole_rows:
                j, valid = _index_in_range(b, args, o_index, index)
                dst, count = b.gep(out, [b.add(o_out, lo2)]), b.sub(hi2, lo2)
                with b.if_else(valid) as (then, otherwise):
                    with then:
                        src = b.gep(x, [b.add(b.add(o_x, lo2), b.mul(j, axis_stride))])
                        _move_unit(b, src, dst, count, add=False)
                    with otherwise:
                        _zero(b, dst, count, ty)
            with strided:
                with Loop(b, lo2, hi2, name="inner") as lp:
                    element([b.add(o, b.mul(lp.i, st)) for o, st in zip(row.offsets, (s_out, s_index, s_x))])
    b.ret_void()
    return m


def build_scatter_add(dtype: str) -> ir.Module:
    m, f, b = _new_function("scatter_add")
    args, lo, hi, lo2, hi2 = f.args
    ty = _ADD_TYPE[dtype]
    ndim, axis_stride = load_arg(b, args, 0), load_arg(b, args, 2)
    out, index, src = _pointer(b, args, 3, ty), _pointer(b, args, 4, I64), _pointer(b, args, 5, ty)
    _zero(b, out, load_arg(b, args, 6), ty)

    def body(offs):
        j, valid = _index_in_range(b, args, offs[1], index)
        with b.if_then(valid):
            p = b.gep(out, [b.add(offs[0], b.mul(j, axis_stride))])
            v = b.load(b.gep(src, [offs[2]]))
            old = b.load(p)
            b.store(b.fadd(old, v) if isinstance(ty, (ir.FloatType, ir.DoubleType)) else b.add(old, v), p)
    _walk(b, args, const64(GATHER_HEAD), ndim, 3, (lo, hi), (lo2, hi2), body)
    b.ret_void()
    return m


_FUNCTIONS: dict[tuple, object] = {}


def kernel(kind: str, variant) -> KERNEL_ABI:
    """The compiled kernel ``kind`` ("copy", "gather": ``variant`` is the itemsize;
    "copy_add", "scatter_add": the dtype), from memory, the disk cache or LLVM."""
    fn = _FUNCTIONS.get((kind, variant))
    if fn is None:
        build = {"copy": build_copy, "copy_add": lambda dtype: build_copy(0, dtype),
                 "gather": build_gather, "scatter_add": build_scatter_add}[kind]
        name = f"lucid_{kind}"
        lib = load_or_compile(f"index/{source_stamp(*GENERATOR)}|{kind}|{variant}", lambda: build(variant),
                              [name], label=f"{kind} {variant}", pipeline=loop_pipeline())
        fn = _FUNCTIONS.setdefault((kind, variant), KERNEL_ABI(lib.address(name)))
    return fn
