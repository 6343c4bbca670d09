"""IR building blocks of the fused attention kernels (``attention_kernels``,
``attention_backward_kernel``): typed loads and stores at element offsets, splats, the
argument block, and the *tile product* every matrix product of the kernels is.

The tile product is one internal function of the module::

    tile_product(mode, M, N, K, A, a_rs, a_ks, B, ldb, C, ldc, colscale)

    C[r, c] = init(r, c) + Σ_k A[r·a_rs + k·a_ks] · B[k·ldb + c]     (r < M, c < N)
    init: 0 (mode 0), C[r, c] (mode 1), C[r, c] · colscale[c] (mode 2)

``N`` is a multiple of the vector width ``W`` (the callers pad their buffers); B and C
are row-major with vectors along ``c``; A is read one scalar at a time, broadcast, at
any strides (so a transposed operand, or a strided view of the user's q, k, v, goes in
without a copy). Register blocking: ``R`` rows × ``CV`` vectors of accumulators (6 × 4
with 32 vector registers, 2 × 4 with 16) carried through the k loop as phi nodes;
columns left over in blocks of 2 vectors and of 1 (with more rows, ``block_rows``),
rows left over one at a time. Every C element is one
sequential sum over k in order, whatever M and N are, so results never depend on how
work is split.
"""
from __future__ import annotations

import llvmlite.ir as ir

from lucid_codegen.kernels.loops import I64, Loop, const64
from lucid_codegen.jit.target import host_target
from lucid_codegen.kernels.vector_math import LLVM_FLOAT, call_intrinsic, const, fma

CV = 4  # vectors per accumulator row
BLOCK = 64  # queries per block (Br) and keys per block (Bc)


def vector_width(dtype: str) -> int:
    """Lanes of the host's widest float vector for ``dtype``."""
    return host_target().vector_bytes // (4 if dtype == "float32" else 8)


def block_rows(nv: int = CV) -> int:
    """Accumulator rows of the tile product's blocks of ``nv`` vectors on this host:
    R·nv accumulators, nv vectors of B and one broadcast of A must fit the vector
    registers (32 with AVX-512, 16 with AVX2), and at most 8 rows (a block of 64 rows
    divides into them). Blocks of 4 vectors: 6 rows with AVX-512, 2 with AVX2 (3 rows,
    17 registers, spilled two accumulators to the stack and the k loop ran at the
    store-to-load latency: ``benchmarks/bench_attention.py --quick`` at sequence 1024,
    Zen 3, one thread, went from 456-471 to 325 ms, 1.26x torch's time to 0.86x);
    of 2 vectors (a head dim of 32 floats with AVX-512): 8 rows, 6 with AVX2; of one: 8."""
    registers = 32 if host_target().has_avx512 else 16
    return min(8, (registers - nv - 1) // nv)


class Emitter:
    """An IRBuilder with the element type ``ft`` and its vector type ``vt`` at hand."""

    def __init__(self, b: ir.IRBuilder, dtype: str):
        self.b, self.dtype = b, dtype
        self.ft = LLVM_FLOAT[dtype]
        self.w = vector_width(dtype)
        self.vt = ir.VectorType(self.ft, self.w)
        self.ptr = self.ft.as_pointer()
        self.itemsize = 4 if dtype == "float32" else 8

    # ---- scalars and vectors at element offsets
    def at(self, ptr, off):
        return self.b.gep(ptr, [off])

    def load(self, ptr, off):
        return self.b.load(self.at(ptr, off), align=self.itemsize)

    def store(self, value, ptr, off):
        self.b.store(value, self.at(ptr, off), align=self.itemsize)

    def vload(self, ptr, off):
        p = self.b.bitcast(self.at(ptr, off), self.vt.as_pointer())
        return self.b.load(p, align=self.itemsize)

    def vstore(self, value, ptr, off):
        p = self.b.bitcast(self.at(ptr, off), self.vt.as_pointer())
        self.b.store(value, p, align=self.itemsize)

    def splat(self, x, vt=None):
        vt = vt or self.vt
        b = self.b
        one = b.insert_element(ir.Constant(vt, ir.Undefined), x, ir.Constant(ir.IntType(32), 0))
        mask = ir.Constant(ir.VectorType(ir.IntType(32), vt.count), [0] * vt.count)
        return b.shuffle_vector(one, ir.Constant(vt, ir.Undefined), mask)

    def vconst(self, value):
        return const(self.vt, value)

    # ---- integers
    def mul(self, x, y):
        return self.b.mul(x, y)

    def add(self, *xs):
        out = xs[0]
        for x in xs[1:]:
            out = self.b.add(out, x)
        return out

    def imin(self, x, y):
        return self.b.select(self.b.icmp_signed("<", x, y), x, y)

    def pointer(self, word):
        return self.b.inttoptr(word, self.ptr)

    def zero_fill(self, ptr, n):
        """``ptr[0:n] = 0`` (n a multiple of W)."""
        with Loop(self.b, const64(0), n, self.w, name="zero") as lp:
            self.vstore(self.vconst(0.0), ptr, lp.i)

    def lane_indices(self, base):
        """``base + [0, 1, …, W-1]`` as a vector of i64."""
        vt = ir.VectorType(I64, self.w)
        return self.b.add(self.splat(base, vt), ir.Constant(vt, list(range(self.w))))

    def lanes_below(self, base, n):
        """The lanes ``i`` with ``base + i < n`` (a vector of i1)."""
        return self.b.icmp_signed("<", self.lane_indices(base), self.splat(n, ir.VectorType(I64, self.w)))

    # ---- packing: a vector from W scalars at any strides, and back
    def gather(self, ptr, offsets):
        """The vector ``[ptr[offsets[0]], …, ptr[offsets[W-1]]]`` (W scalar loads: the
        packs read the user's q, k, v at any strides, and read transposed)."""
        v = ir.Constant(self.vt, ir.Undefined)
        for i, off in enumerate(offsets):
            v = self.b.insert_element(v, self.load(ptr, off), ir.Constant(ir.IntType(32), i))
        return v

    def row_offsets(self, r0, n, stride):
        """``(offsets, valid)`` of rows ``r0 + i`` (i < W) at ``stride``: offset 0 (always
        readable) for rows at or past ``n``, and the lanes of the rows before it."""
        b = self.b
        offs = []
        for i in range(self.w):
            r = self.add(r0, const64(i))
            offs.append(b.select(b.icmp_signed("<", r, n), self.mul(r, stride), const64(0)))
        return offs, self.lanes_below(r0, n)

    def load_span(self, ptr, stride, d, n):
        """``[ptr[(d+i)·stride] if d+i < n else 0 for i < W]``: one vector load where the
        span is contiguous and whole, else W scalar loads."""
        b = self.b
        whole = b.and_(b.icmp_signed("==", stride, const64(1)), b.icmp_signed("<=", self.add(d, const64(self.w)), n))
        fast_bb, slow_bb, join_bb = (b.append_basic_block(x) for x in ("span.v", "span.s", "span.j"))
        b.cbranch(whole, fast_bb, slow_bb)
        b.position_at_end(fast_bb)
        fast = self.vload(ptr, d)
        b.branch(join_bb)
        b.position_at_end(slow_bb)
        offs = [b.select(b.icmp_signed("<", self.add(d, const64(i)), n), self.mul(self.add(d, const64(i)), stride),
                         const64(0)) for i in range(self.w)]
        slow = b.select(self.lanes_below(d, n), self.gather(ptr, offs), self.vconst(0.0))
        b.branch(join_bb)
        b.position_at_end(join_bb)
        phi = b.phi(self.vt)
        phi.add_incoming(fast, fast_bb)
        phi.add_incoming(slow, slow_bb)
        return phi

    def store_span(self, value, ptr, d, n):
        """``ptr[d+i] = value[i]`` for the lanes with ``d + i < n``: one vector store where
        the span is whole, else a scalar store per lane that is inside."""
        b = self.b
        fast_bb, slow_bb, join_bb = (b.append_basic_block(x) for x in ("put.v", "put.s", "put.j"))
        b.cbranch(b.icmp_signed("<=", self.add(d, const64(self.w)), n), fast_bb, slow_bb)
        b.position_at_end(fast_bb)
        self.vstore(value, ptr, d)
        b.branch(join_bb)
        b.position_at_end(slow_bb)
        for i in range(self.w):
            at = self.add(d, const64(i))
            lane_bb, next_bb = b.append_basic_block("put.lane"), b.append_basic_block("put.next")
            b.cbranch(b.icmp_signed("<", at, n), lane_bb, next_bb)
            b.position_at_end(lane_bb)
            self.store(b.extract_element(value, ir.Constant(ir.IntType(32), i)), ptr, at)
            b.branch(next_bb)
            b.position_at_end(next_bb)
        b.branch(join_bb)
        b.position_at_end(join_bb)


class Args:
    """Named int64 words of a kernel's argument block (``names``: their order)."""

    def __init__(self, b: ir.IRBuilder, block, names):
        self._words = {n: b.load(b.gep(block, [const64(k)])) for k, n in enumerate(names)}

    def __getattr__(self, name):
        try:
            return self._words[name]
        except KeyError:
            raise AttributeError(name) from None


def declare_tile_product(module: ir.Module, dtype: str) -> ir.Function:
    """Define ``tile_product`` (see the module docstring) in ``module``."""
    ft = LLVM_FLOAT[dtype]
    p = ft.as_pointer()
    fnty = ir.FunctionType(ir.VoidType(), [I64, I64, I64, I64, p, I64, I64, p, I64, p, I64, p])
    fn = ir.Function(module, fnty, "tile_product")
    fn.linkage = "internal"
    fn.attributes.add("noinline")
    b = ir.IRBuilder(fn.append_basic_block("entry"))
    e = Emitter(b, dtype)
    mode, M, N, K, A, a_rs, a_ks, B, ldb, C, ldc, colscale = fn.args
    W = e.w

    def rows(c0, nv):
        R = block_rows(nv)
        m_full = b.mul(b.sdiv(M, const64(R)), const64(R))
        with Loop(b, const64(0), m_full, R, name="rows") as lp:
            _tile(e, lp.i, c0, R, nv, mode, K, A, a_rs, a_ks, B, ldb, C, ldc, colscale)
        with Loop(b, m_full, M, 1, name="rowtail") as lp:
            _tile(e, lp.i, c0, 1, nv, mode, K, A, a_rs, a_ks, B, ldb, C, ldc, colscale)

    # columns in groups of CV vectors, then what is left in groups of 2 and of 1 (a
    # head dim of 2 vectors gets 8 rows × 2 accumulators, not 6 × 1 twice)
    start = const64(0)
    for nv in sorted({CV, 2, 1}, reverse=True):
        width = const64(nv * W)
        stop = b.add(start, b.mul(b.sdiv(b.sub(N, start), width), width))
        with Loop(b, start, stop, nv * W, name=f"cols{nv}") as lp:
            rows(lp.i, nv)
        start = stop
    b.ret_void()
    return fn


def _tile(e: Emitter, r0, c0, nr: int, nv: int, mode, K, A, a_rs, a_ks, B, ldb, C, ldc, colscale):
    """One ``nr`` × ``nv``-vector block of C at (r0, c0)."""
    b, W = e.b, e.w
    c_offs = [[e.add(e.mul(e.add(r0, const64(i)), ldc), c0, const64(j * W)) for j in range(nv)]
              for i in range(nr)]
    # the initial accumulators: 0, C, or C · colscale (the branch is once per block)
    zero_bb, load_bb, join_bb = (b.append_basic_block(n) for n in ("init0", "initc", "initj"))
    b.cbranch(b.icmp_signed("==", mode, const64(0)), zero_bb, load_bb)
    b.position_at_end(load_bb)
    scales = [b.select(b.icmp_signed("==", mode, const64(2)), e.vload(colscale, e.add(c0, const64(j * W))),
                       e.vconst(1.0)) for j in range(nv)]
    loaded = [[b.fmul(e.vload(C, c_offs[i][j]), scales[j]) for j in range(nv)] for i in range(nr)]
    load_end = b.block
    b.branch(join_bb)
    b.position_at_end(zero_bb)
    b.branch(join_bb)
    b.position_at_end(join_bb)
    init = []
    for i in range(nr):
        for j in range(nv):
            phi = b.phi(e.vt)
            phi.add_incoming(e.vconst(0.0), zero_bb)
            phi.add_incoming(loaded[i][j], load_end)
            init.append(phi)
    a_rows = [e.at(A, e.mul(e.add(r0, const64(i)), a_rs)) for i in range(nr)]
    with Loop(b, const64(0), K, 1, init, name="k") as lp:
        b_off = e.add(e.mul(lp.i, ldb), c0)
        bv = [e.vload(B, e.add(b_off, const64(j * W))) for j in range(nv)]
        a_off = e.mul(lp.i, a_ks)
        nxt = []
        for i in range(nr):
            a = e.splat(b.load(b.gep(a_rows[i], [a_off]), align=e.itemsize))
            for j in range(nv):
                nxt.append(fma(b, a, bv[j], lp.vars[i * nv + j]))
        lp.next = nxt
    for i in range(nr):
        for j in range(nv):
            e.vstore(lp.results[i * nv + j], C, c_offs[i][j])


def call_tile(e: Emitter, fn, mode: int, M, N, K, A, a_rs, a_ks, B, ldb, C, ldc, colscale=None):
    """Emit a call of ``tile_product`` (ints become i64 constants)."""
    def w(x):
        return const64(x) if isinstance(x, int) else x
    colscale = colscale if colscale is not None else C
    e.b.call(fn, [w(mode), w(M), w(N), w(K), A, w(a_rs), w(a_ks), B, w(ldb), C, w(ldc), colscale])


def maxnum(b, x, y):
    return call_intrinsic(b, "maxnum", [x, y])
