"""Shared pieces of the elementwise and reduction kernels.

* :class:`Loop` -- a counted loop in LLVM IR with loop-carried values as phi nodes.
* :func:`collapse` -- merge dimensions that are contiguous together for every operand,
  in Python, before a kernel call (so a C-contiguous (64, 128, 3) walk is one loop).
* :func:`broadcast_strides` -- element strides of an operand seen at a bigger shape
  (0 where it is broadcast).
* :func:`parallel_hook` -- the single place that splits work across threads
  (``lucid_codegen.runtime.threads.parallel_for`` when that module exists).

>>> collapse((4, 5, 6), [(30, 6, 1), (0, 0, 1)])
((20, 6), [(6, 1), (0, 1)])
"""
from __future__ import annotations

import llvmlite.ir as ir

I64 = ir.IntType(64)


class Loop:
    """``for i in range(start, stop, step)`` with carried values.

    >>> # with Loop(b, zero, n, 1, [acc0]) as lp:
    >>> #     lp.next = [b.fadd(lp.vars[0], x)]
    >>> # total = lp.results[0]
    """

    def __init__(self, b: ir.IRBuilder, start, stop, step=1, carried=(), name="loop"):
        self.b, self.start, self.stop, self.name = b, start, stop, name
        self.step = step if isinstance(step, ir.Value) else ir.Constant(I64, step)
        self.init = list(carried)
        self.next = None

    def __enter__(self):
        b = self.b
        pre = b.block
        self.cond_bb = b.append_basic_block(self.name + ".cond")
        self.body_bb = b.append_basic_block(self.name + ".body")
        self.end_bb = b.append_basic_block(self.name + ".end")
        b.branch(self.cond_bb)
        b.position_at_end(self.cond_bb)
        self.i = b.phi(I64, name=self.name + ".i")
        self.i.add_incoming(self.start, pre)
        self.vars = []
        for v in self.init:
            phi = b.phi(v.type)
            phi.add_incoming(v, pre)
            self.vars.append(phi)
        b.cbranch(b.icmp_signed("<", self.i, self.stop), self.body_bb, self.end_bb)
        b.position_at_end(self.body_bb)
        return self

    def __exit__(self, exc_type, exc, tb):
        if exc_type is not None:
            return False
        b = self.b
        nxt = self.next if self.next is not None else self.vars
        latch = b.block
        self.i.add_incoming(b.add(self.i, self.step), latch)
        for phi, v in zip(self.vars, nxt):
            phi.add_incoming(v, latch)
        b.branch(self.cond_bb)
        b.position_at_end(self.end_bb)
        self.results = self.vars
        return False


_I32V = ir.IntType(32)


def const64(v: int):
    return ir.Constant(I64, v)


def splat(b: ir.IRBuilder, x, lanes: int):
    """``x`` in every lane of a vector of ``lanes``."""
    vty, i32 = ir.VectorType(x.type, lanes), ir.IntType(32)
    v = b.insert_element(ir.Constant(vty, ir.Undefined), x, ir.Constant(i32, 0))
    return b.shuffle_vector(v, ir.Constant(vty, ir.Undefined), ir.Constant(ir.VectorType(i32, lanes), [0] * lanes))


def concat(b: ir.IRBuilder, vectors: list):
    """One vector of the lanes of ``vectors`` (all of one type), in order."""
    lanes = sum(v.type.count for v in vectors)
    while len(vectors) > 1:
        if len(vectors) % 2:  # (an odd one out: paired with undefined lanes, cut off below)
            vectors = vectors + [ir.Constant(vectors[-1].type, ir.Undefined)]
        n = vectors[0].type.count
        vectors = [b.shuffle_vector(x, y, ir.Constant(ir.VectorType(_I32V, 2 * n), list(range(2 * n))))
                   for x, y in zip(vectors[::2], vectors[1::2])]
    return lanes_of(b, vectors[0], 0, lanes)


def lanes_of(b: ir.IRBuilder, v, start: int, n: int):
    """Lanes ``start .. start + n`` of ``v`` as a vector of ``n``."""
    if start == 0 and n == v.type.count:
        return v
    return b.shuffle_vector(v, ir.Constant(v.type, ir.Undefined),
                            ir.Constant(ir.VectorType(_I32V, n), list(range(start, start + n))))


def masked_intrinsic(m: ir.Module, what: str, vty):
    """``llvm.masked.load`` / ``llvm.masked.store`` / ``llvm.masked.gather`` (``what``)
    for vectors ``vty``, declared once in ``m``: lanes off read the pass-through value
    and touch no memory (a gather takes a vector of pointers, one a lane)."""
    el = vty.element
    sfx = f"v{vty.count}{'i' if isinstance(el, ir.IntType) else 'f'}{bit_width(el)}"
    name = f"llvm.masked.{what}.{sfx}.{'v%dp0' % vty.count if what == 'gather' else 'p0'}"
    if name in m.globals:
        return m.globals[name]
    mty, i32 = ir.VectorType(ir.IntType(1), vty.count), ir.IntType(32)
    if what == "gather":
        ptrs = ir.VectorType(el.as_pointer(), vty.count)
        return ir.Function(m, ir.FunctionType(vty, [ptrs, i32, mty, vty]), name)
    if what == "load":
        return ir.Function(m, ir.FunctionType(vty, [vty.as_pointer(), i32, mty, vty]), name)
    return ir.Function(m, ir.FunctionType(ir.VoidType(), [vty, vty.as_pointer(), i32, mty]), name)


def bit_width(ty) -> int:
    """Bits of an element type."""
    return ty.width if isinstance(ty, ir.IntType) else 32 if isinstance(ty, ir.FloatType) else 64


def load_arg(b: ir.IRBuilder, args_ptr, index):
    """``args[index]`` from the kernel's int64 argument block (index: int or i64 value)."""
    idx = const64(index) if isinstance(index, int) else index
    return b.load(b.gep(args_ptr, [idx]))


def decode_offsets(b: ir.IRBuilder, args, ndims, n_ops: int, linear, base):
    """Element offsets of ``n_ops`` operands at a linear index over ``ndims`` dimensions.

    The dimensions are described in ``args`` from ``base`` (int or i64 value) as
    blocks ``(size, stride_0, .., stride_{n_ops-1})``, outermost first; the linear
    index is decoded innermost first (mixed radix), so ndims is a run-time value.
    """
    base = const64(base) if isinstance(base, int) else base
    return one_dim_or_many(
        b, ndims, lambda: [b.mul(linear, load_arg(b, args, b.add(base, const64(1 + j)))) for j in range(n_ops)],
        lambda: decode_loop(b, args, ndims, n_ops, linear, base))


def one_dim_or_many(b: ir.IRBuilder, ndims, one, many) -> list:
    """The i64 values ``one()`` emits when ``ndims`` is 1 (the common case: an offset is
    a product, no division) or those ``many()`` emits otherwise, as phis after both."""
    one_bb = b.append_basic_block("decode.one")
    many_bb = b.append_basic_block("decode.many")
    join_bb = b.append_basic_block("decode.join")
    b.cbranch(b.icmp_signed("==", ndims, const64(1)), one_bb, many_bb)
    b.position_at_end(one_bb)
    fast = one()
    one_end = b.block
    b.branch(join_bb)
    b.position_at_end(many_bb)
    slow = many()
    slow_end = b.block
    b.branch(join_bb)
    b.position_at_end(join_bb)
    out = []
    for f, s in zip(fast, slow):
        phi = b.phi(I64)
        phi.add_incoming(f, one_end)
        phi.add_incoming(s, slow_end)
        out.append(phi)
    return out


class RowWalk:
    """Consecutive rows ``lo .. hi`` of a walk over ``ndims`` run-time dimensions (blocks
    ``(size, stride_0, .., stride_{n_ops-1})`` in ``args`` from ``base``, outermost first,
    as ``decode_offsets``): the first row's offsets are decoded once (divisions), every
    next row's come from an odometer step (an add, a carry now and then), so a walk of
    many short rows (a transposed copy: 16384 rows of 4) pays no division per row.

    >>> # with RowWalk(b, args, ndims, 2, base, lo, hi) as walk:
    >>> #     o_dst, o_src = walk.offsets        # this row's element offsets
    >>> #     walk.next = [...]                  # carried values, as ``Loop``'s
    """

    #: most dimensions a walk may have (the stack space of its counters)
    MAX_DIMS = 64

    def __init__(self, b: ir.IRBuilder, args, ndims, n_ops: int, base, lo, hi, carried=(), name="row"):
        self.b, self.args, self.ndims, self.n_ops = b, args, ndims, n_ops
        self.base = const64(base) if isinstance(base, int) else base
        self.lo, self.hi, self.name = lo, hi, name
        self.carried, self.next = list(carried), None

    def _dim(self, d):
        """(size, [stride per operand]) of dimension ``d`` (an i64 value)."""
        b, blk = self.b, self.b.add(self.base, self.b.mul(d, const64(self.n_ops + 1)))
        return (load_arg(b, self.args, blk),
                [load_arg(b, self.args, b.add(blk, const64(1 + j))) for j in range(self.n_ops)])

    def __enter__(self):
        b, zero = self.b, const64(0)
        with b.goto_entry_block():
            self.idx = b.alloca(I64, self.MAX_DIMS, name=self.name + ".idx")
            self.offs = [b.alloca(I64, name=f"{self.name}.off{j}") for j in range(self.n_ops)]
        if isinstance(self.lo, ir.Constant) and self.lo.constant == 0:  # no division at all
            for ptr in self.offs:
                b.store(zero, ptr)
            with Loop(b, zero, self.ndims, 1, name=self.name + ".digits") as lp:
                b.store(zero, b.gep(self.idx, [lp.i]))
        else:
            with b.if_then(b.icmp_signed("<", self.lo, self.hi)):  # (no rows: sizes may be 0)
                for ptr, v in zip(self.offs, decode_offsets(b, self.args, self.ndims, self.n_ops, self.lo,
                                                            self.base)):
                    b.store(v, ptr)
                with Loop(b, zero, self.ndims, 1, [self.lo], name=self.name + ".digits") as lp:
                    d = b.sub(b.sub(self.ndims, const64(1)), lp.i)
                    size, _ = self._dim(d)
                    b.store(b.urem(lp.vars[0], size), b.gep(self.idx, [d]))
                    lp.next = [b.udiv(lp.vars[0], size)]
        self.loop = Loop(b, self.lo, self.hi, 1, self.carried, name=self.name)
        self.loop.__enter__()
        self.i, self.vars = self.loop.i, self.loop.vars
        self.offsets = [b.load(ptr) for ptr in self.offs]
        return self

    def __exit__(self, exc_type, exc, tb):
        if exc_type is not None:
            return False
        b, name = self.b, self.name
        # the odometer: the innermost digit that does not wrap steps up; those inside wrap
        last = b.sub(self.ndims, const64(1))
        pre = b.block
        hdr, body, bump, wrap, done = (b.append_basic_block(f"{name}.{t}")
                                       for t in ("carry", "digit", "bump", "wrap", "next"))
        b.branch(hdr)
        b.position_at_end(hdr)
        d = b.phi(I64)
        d.add_incoming(last, pre)
        b.cbranch(b.icmp_signed(">=", d, const64(0)), body, done)
        b.position_at_end(body)
        size, strides = self._dim(d)
        at = b.gep(self.idx, [d])
        k = b.add(b.load(at), const64(1))
        b.cbranch(b.icmp_signed("<", k, size), bump, wrap)
        b.position_at_end(bump)
        b.store(k, at)
        for ptr, s in zip(self.offs, strides):
            b.store(b.add(b.load(ptr), s), ptr)
        b.branch(done)
        b.position_at_end(wrap)
        b.store(const64(0), at)
        for ptr, s in zip(self.offs, strides):
            b.store(b.sub(b.load(ptr), b.mul(b.sub(size, const64(1)), s)), ptr)
        d.add_incoming(b.sub(d, const64(1)), wrap)
        b.branch(hdr)
        b.position_at_end(done)
        self.loop.next = self.next
        self.loop.__exit__(None, None, None)
        self.results = self.loop.results
        return False


def decode_loop(b, args, ndims, n_ops, linear, base):
    """``decode_offsets``' general path (any number of dimensions, no test for one);
    ``base`` an i64 value."""
    zero = const64(0)
    with Loop(b, zero, ndims, 1, [linear] + [zero] * n_ops, name="decode") as lp:
        d = b.sub(b.sub(ndims, const64(1)), lp.i)
        blk = b.add(base, b.mul(d, const64(n_ops + 1)))
        size = load_arg(b, args, blk)
        rem = lp.vars[0]
        idx = b.urem(rem, size)
        nxt = [b.udiv(rem, size)]
        for j in range(n_ops):
            stride = load_arg(b, args, b.add(blk, const64(1 + j)))
            nxt.append(b.add(lp.vars[1 + j], b.mul(idx, stride)))
        lp.next = nxt
    return lp.results[1:]


# ----------------------------------------------------------------- Python side
def broadcast_strides(shape, strides, itemsize, out_shape):
    """Element strides of an array of ``shape``/byte ``strides`` viewed at ``out_shape``."""
    pad = len(out_shape) - len(shape)
    out = [0] * pad
    for d, s in zip(shape, strides):
        out.append(0 if d == 1 else s // itemsize)
    return out


def dim_words(dims, strides_list) -> list:
    """A loop kernel's dimension groups as argument-block words: per dimension its size,
    then each operand's stride along it.

    >>> dim_words((3, 4), [(16, 4), (0, 1)])
    [3, 16, 0, 4, 4, 1]
    """
    words = []
    for d, size in enumerate(dims):
        words.append(size)
        words.extend(s[d] for s in strides_list)
    return words


def collapse(shape, strides_list):
    """Drop size-1 dimensions and merge neighbours that are contiguous for all operands.

    Returns the new shape and per-operand stride tuples (innermost last). A shape
    with no dimension left becomes ``()``.
    """
    keep = [i for i, d in enumerate(shape) if d != 1]
    dims = [shape[i] for i in keep]
    strs = [[s[i] for i in keep] for s in strides_list]
    if not dims:
        return (), [() for _ in strides_list]
    out_dims = [dims[-1]]
    out_strs = [[s[-1]] for s in strs]
    for k in range(len(dims) - 2, -1, -1):
        d = dims[k]
        inner = out_dims[0]
        if all(s[k] == os[0] * inner for s, os in zip(strs, out_strs)):
            out_dims[0] = d * inner
        else:
            out_dims.insert(0, d)
            for s, os in zip(strs, out_strs):
                os.insert(0, s[k])
    return tuple(out_dims), [tuple(os) for os in out_strs]


# ----------------------------------------------------------------- threading

_POOL: list = []


def thread_pool():
    """``lucid_codegen.runtime.threads`` if another part of the project provides it, else None."""
    if not _POOL:
        try:
            from lucid_codegen.runtime import threads  # optional module, written separately
        except Exception:
            threads = None
        _POOL.append(threads if hasattr(threads, "parallel_for") else None)
    return _POOL[0]


def num_threads() -> int:
    pool = thread_pool()
    if pool is None:
        return 1
    for name in ("num_threads", "get_num_threads"):
        fn = getattr(pool, name, None)
        if callable(fn):
            try:
                return max(1, int(fn()))
            except Exception:
                return 1
        if isinstance(fn, int):
            return max(1, fn)
    return 2


def parallel_hook(n_chunks: int, fn) -> None:
    """Run ``fn(i)`` for i in range(n_chunks): on the pool if there is one, else inline."""
    pool = thread_pool()
    if pool is None or n_chunks <= 1:
        for i in range(n_chunks):
            fn(i)
        return
    pool.parallel_for(n_chunks, fn)
