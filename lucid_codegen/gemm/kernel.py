"""GEMM kernel generator: C = E(alpha * A.B, bias, R) [+ C_old], float32/float64, E the
spec's epilogue: any elementwise subgraph of the product, a row operand (bias), an
(M, N) operand R and scalar constants (``gemm_epilogue``: bias + GELU, a residual after
an activation, relu's backward mask, GELU's backward multiply, ...).

>>> from lucid_codegen.gemm.epilogue import Epilogue
>>> spec = GemmSpec("float32", Epilogue.chain("float32", bias=True, activation="relu"))
>>> module = build_gemm_module(spec)        # llvmlite.ir.Module
>>> gemm_symbol(spec) in module.globals
True

Exported functions (C ABI) of the module, ``S = gemm_symbol(spec)``:

``i32 S(i64 M, i64 N, i64 K, double alpha, T* A, i64 rsa, i64 csa, T* B, i64 rsb,
i64 csb, T* C, i64 ldc, T* bias, T* R, i64 rsr, i64 csr, T* ws)``
    A is MxK with row/column strides (rsa, csa) in elements, B is KxN with
    (rsb, csb); any value is allowed (negative, 0 to broadcast), so transposes and
    numpy views need no copies. C has row stride ldc and column stride 1. bias has
    N contiguous elements (ignored unless ``spec.bias``), R is MxN with strides
    (rsr, csr) (ignored unless the epilogue reads them). ``ws`` is a scratch buffer of
    ``workspace_elems(spec, M, N, K)`` elements (64-byte aligned), or NULL to use
    a stack buffer when that is at most ``STACK_ELEMS``. Returns 0, or 2 if
    ws is NULL and the stack buffer is too small (nothing is written then).
    To split work across threads, call it on disjoint row or column blocks
    (offset the pointers); the result is bit-identical to one call.

``i32 S_py(PyArrayObject* a, PyArrayObject* b, PyArrayObject* c, PyArrayObject* bias,
PyArrayObject* r, double alpha, T* ws, i64 ws_elems)``
    Single-thread fast path: reads data pointers, sizes and byte strides from numpy
    array objects (the caller has validated shapes and dtypes). Uses ``ws`` if the
    problem needs at most ``ws_elems`` scratch elements, else the stack workspace.
    Returns 1 if a stride is not a multiple of the element size, 2 if neither
    workspace is big enough, 3 if c overlaps a, b, bias or r; nothing is written then.

``i32 S_batched(...)``
    A stack of products (broadcast batch axes, any strides) in one call: see
    gemm_batched.py.

Loop order is BLIS's (jc -> pc -> ic -> jr -> ir) with packed A and B panels and
an MR x NR register-tiled micro-kernel (see gemm_microkernel.py). Few rows or columns
with A's rows and B's columns contiguous (the batch-1 ``x @ W.T``, a matrix-vector
product) take the small-shape path instead: dot products streaming both operands in
place, nothing packed, the same epilogue (see gemm_small.py).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import llvmlite.ir as ir

from lucid_codegen.jit.cache import source_stamp
from lucid_codegen.gemm.epilogue import Epilogue
from lucid_codegen.gemm.core import declare_core
from lucid_codegen.gemm.driver import STACK_BYTES, build_driver, driver_args, one_block
from lucid_codegen.gemm.microkernel import I1, I8, I32, I64, Blocking, Ctx, build_tile_epilogue, default_blocking
from lucid_codegen.gemm.batched import batched_symbol, build_batched_entry
from lucid_codegen.gemm.pack import build_pack_a, build_store_tile
from lucid_codegen.gemm.gather import build_pack_a_gather, build_pack_b_gather
from lucid_codegen.gemm import rows as gemm_rows
from lucid_codegen.gemm import small as gemm_small
from lucid_codegen.runtime.pyarray import PYARRAY_OFFSETS
from lucid_codegen.jit.target import host_target

#: stamped into keys (the GEMM's: with its epilogue's emitters, the elementwise kernels')
GENERATOR = ("gemm.kernel", "gemm.core", "gemm.driver", "gemm.microkernel", "gemm.pack", "gemm.small", "gemm.rows",
             "gemm.batched", "gemm.gather", "gemm.epilogue", "runtime.pyarray", "kernels.elementwise", "kernels.loops",
             "kernels.tail", "kernels.lowering", "kernels.vector_math", "kernels.vector_explog", "kernels.vector_trig",
             "kernels.vector_erf", "kernels.erf_coefficients", "kernels.vector_random")
DTYPES = ("float32", "float64")


@dataclass(frozen=True)
class GemmSpec:
    """What a GEMM kernel is specialised on: the dtype, the epilogue subgraph applied to
    each tile of C (``gemm_epilogue.Epilogue``; None: C = P), whether C's old value is
    added, ``gate_a`` (A's relu mask applied while packing A, R being (M, K)) and
    ``gather`` ("a" or "b": that operand is gathered through two offset tables while
    it is packed, ``gemm.gather``). ``alpha`` and all sizes/strides are runtime."""

    dtype: str = "float32"
    epilogue: Epilogue | None = None
    accumulate: bool = False
    gate_a: bool = False
    blocking: Blocking | None = field(default=None, compare=True)
    gather: str = ""

    def __post_init__(self):
        if self.dtype not in DTYPES:
            raise ValueError(f"gemm: dtype must be one of {DTYPES}, got {self.dtype!r}")
        if self.epilogue is None:
            object.__setattr__(self, "epilogue", Epilogue(self.dtype))
        if not isinstance(self.epilogue, Epilogue) or self.epilogue.dtype != self.dtype:
            raise ValueError(f"gemm: epilogue must be a {self.dtype} gemm_epilogue.Epilogue, got {self.epilogue!r}")
        if self.epilogue.reads_r and self.gate_a:
            raise ValueError("gemm: an epilogue reading R and gate_a both use R; choose one")
        if self.gather not in ("", "a", "b") or (self.gather and self.gate_a):
            raise ValueError(f"gemm: gather must be '', 'a' or 'b' (not with gate_a), got {self.gather!r}")
        if self.blocking is None:
            object.__setattr__(self, "blocking",
                               default_blocking(self.dtype, host_target().vector_bytes))

    @property
    def bias(self) -> bool:
        """Whether the kernel reads a row operand (N,) through its bias pointer."""
        return self.epilogue.bias

    @property
    def reads_r(self) -> bool:
        """Whether the epilogue reads the (M, N) operand R."""
        return self.epilogue.reads_r

    @property
    def uses_r(self) -> bool:
        """Whether the R pointer is an operand: (M, N) for the epilogue, (M, K) for
        ``gate_a``."""
        return self.reads_r or self.gate_a

    @property
    def linear(self) -> bool:
        """Whether C is linear in the partial sums (so K blocks can accumulate into C)."""
        return self.epilogue.linear

    @property
    def itemsize(self) -> int:
        return 4 if self.dtype == "float32" else 8

    def key(self) -> str:
        """Names everything the generated code depends on (a cache key)."""
        return (f"gemm:{self.dtype}:epi[{self.epilogue.text}]"
                f":acc{int(self.accumulate)}:gate_a{int(self.gate_a)}:gather{self.gather or '-'}"
                f":{self.blocking.tag()}"
                f":stack{STACK_BYTES}:{_path_thresholds()}:pyabi{'-'.join(map(str, PYARRAY_OFFSETS))}"
                f":src{source_stamp(*GENERATOR)}")


def _path_thresholds() -> str:
    """The small-shape thresholds, read when a key is made: the IR builders read the same
    module attributes, so a benchmark or test that changes them (to time or check the
    general path on a shape that would take another) gets a kernel of its own."""
    return f"small{gemm_small.SMALL_M}x{gemm_small.SMALL_N}:rows{gemm_rows.ROWS_M}"


def gemm_symbol(spec: GemmSpec) -> str:
    return (f"lucid_gemm_{spec.dtype[-2:]}_{spec.epilogue.tag()}"
            f"_a{int(spec.accumulate)}{'_ga' if spec.gate_a else ''}{'_gather' + spec.gather if spec.gather else ''}")


def _round_up(x: int, m: int) -> int:
    return (x + m - 1) // m * m


def k_block(spec: GemmSpec, K: int) -> int:
    kd = max(K, 1)
    if one_block(spec):
        return kd          # C_old must survive until the activation: one K block
    return min(spec.blocking.KC, kd)


def workspace_elems(spec: GemmSpec, M: int, N: int, K: int) -> int:
    """Scratch elements the kernel needs (mirrors the IR in ``driver.build_driver``)."""
    blk = spec.blocking
    kcb = k_block(spec, K)
    align = 64 // spec.itemsize
    a = _round_up(_round_up(min(blk.MC, M), blk.MR) * kcb, align)
    return a + _round_up(min(blk.NC, N), blk.NR) * kcb


def _build_passing(c: Ctx, spec: GemmSpec, name: str, args: list, callee, store,
                   linkage: str = "") -> ir.Function:
    """``name(args)``: ``callee`` (the core's generic driver or batched entry) given the
    same arguments, then the variant's ``store`` and whether K runs in one block."""
    fn = ir.Function(c.m, ir.FunctionType(I32, args), name)
    fn.linkage = linkage
    b = ir.IRBuilder(fn.append_basic_block("entry"))
    b.ret(b.call(callee, list(fn.args) + [store, ir.Constant(I1, int(one_block(spec)))]))
    return fn


def _build_py_entry(c: Ctx, spec: GemmSpec, driver: ir.Function, name: str) -> ir.Function:
    P8 = I8.as_pointer()
    D = ir.DoubleType()
    fn = ir.Function(c.m, ir.FunctionType(I32, [P8, P8, P8, P8, P8, D, c.P, I64]), name)
    # Straight-line argument checks, once per call: code generation at level 0 (FastISel)
    # costs no measurable time per call (F.linear 8x8: 1.73 us either way) and saved
    # about a fifth of a variant module's code generation.
    fn.attributes.add("optnone")
    fn.attributes.add("noinline")
    a, bb, cc, bias, r, alpha, ws, ws_elems = fn.args
    b = ir.IRBuilder(fn.append_basic_block("entry"))
    off_data, off_dims, off_strides = PYARRAY_OFFSETS
    shift = I64(2 if c.size == 4 else 3)

    def field_ptr(obj, off, ty):
        return b.load(b.bitcast(b.gep(obj, [I64(off)]), ty.as_pointer()))

    def data(obj):
        return field_ptr(obj, off_data, P8)

    def dims(obj, n):
        p = field_ptr(obj, off_dims, I64.as_pointer())
        return [b.load(b.gep(p, [I64(k)])) for k in range(n)]

    bad = ir.Constant(I64, 0)

    def strides(obj, n):
        nonlocal bad
        p = field_ptr(obj, off_strides, I64.as_pointer())
        out = []
        for k in range(n):
            s = b.load(b.gep(p, [I64(k)]))
            bad = b.or_(bad, b.and_(s, I64(c.size - 1)))
            out.append(s)
        return out

    def extent(ptr, ns, ss):
        """[lo, hi) byte addresses of an array (empty: lo == hi)."""
        lo = hi = b.ptrtoint(ptr, I64)
        empty = ir.Constant(I1, 0)
        for n, s in zip(ns, ss):
            span = b.mul(b.sub(n, I64(1)), s)
            neg = b.icmp_signed("<", span, I64(0))
            lo = b.add(lo, b.select(neg, span, I64(0)))
            hi = b.add(hi, b.select(neg, I64(0), span))
            empty = b.or_(empty, b.icmp_signed("<=", n, I64(0)))
        hi = b.add(hi, I64(c.size))
        return b.select(empty, hi, lo), hi

    def overlaps(x, y):
        return b.and_(b.icmp_unsigned("<", x[0], y[1]), b.icmp_unsigned("<", y[0], x[1]))

    M, K = dims(a, 2)
    N = dims(bb, 2)[1]
    rsa, csa = strides(a, 2)
    rsb, csb = strides(bb, 2)
    ldc, csc = strides(cc, 2)
    pa, pb, pc = data(a), data(bb), data(cc)
    ec = extent(pc, (M, N), (ldc, csc))
    clash = b.or_(overlaps(extent(pa, (M, K), (rsa, csa)), ec),
                  overlaps(extent(pb, (K, N), (rsb, csb)), ec))
    null = ir.Constant(c.P, None)
    if spec.bias:
        pbias = data(bias)
        (sbias,) = strides(bias, 1)
        clash = b.or_(clash, overlaps(extent(pbias, (N,), (sbias,)), ec))
        bias_p = b.bitcast(pbias, c.P)
    else:
        bias_p = null
    if spec.uses_r:
        pr = data(r)
        rsr, csr = strides(r, 2)
        clash = b.or_(clash, overlaps(extent(pr, (M, K) if spec.gate_a else (M, N), (rsr, csr)), ec))
        r_p, rsr, csr = b.bitcast(pr, c.P), b.ashr(rsr, shift), b.ashr(csr, shift)
    else:
        r_p, rsr, csr = null, I64(0), I64(0)
    with b.if_then(b.icmp_unsigned("!=", bad, I64(0)), likely=False):
        b.ret(I32(1))
    with b.if_then(clash, likely=False):
        b.ret(I32(3))
    st = b.call(driver, [M, N, K, alpha, b.bitcast(pa, c.P), b.ashr(rsa, shift),
                         b.ashr(csa, shift), b.bitcast(pb, c.P), b.ashr(rsb, shift),
                         b.ashr(csb, shift), b.bitcast(pc, c.P), b.ashr(ldc, shift),
                         bias_p, r_p, rsr, csr, ws, ws_elems])
    b.ret(st)
    return fn


def _build_full_entry(c: Ctx, driver: ir.Function, name: str) -> ir.Function:
    D = ir.DoubleType()
    P = c.P
    args = [I64, I64, I64, D, P, I64, I64, P, I64, I64, P, I64, P, P, I64, I64, P]
    fn = ir.Function(c.m, ir.FunctionType(I32, args), name)
    b = ir.IRBuilder(fn.append_basic_block("entry"))
    ws = fn.args[-1]
    cap = b.select(b.icmp_unsigned("==", ws, ir.Constant(P, None)), I64(0), I64(2 ** 62))
    b.ret(b.call(driver, list(fn.args) + [cap]))
    return fn


def build_gemm_module(spec: GemmSpec) -> ir.Module:
    """An LLVM module exporting ``gemm_symbol(spec)``, ``gemm_symbol(spec) + '_py'`` and
    the batched entry ``gemm_symbol(spec) + '_batched'`` (gemm_batched.py). The packing
    routines and micro-kernels are the shared core's (gemm_core.py), declared here: load
    the object only after ``gemm_core.ensure_core(spec.dtype, spec.blocking)``."""
    m = ir.Module(name=gemm_symbol(spec))
    c = Ctx(m, spec.dtype, spec.blocking)
    sym = gemm_symbol(spec)
    core = declare_core(c, spec.dtype)
    epi = build_tile_epilogue(c, spec, f"{sym}.epi")
    if spec.gather:   # an operand gathered while it is packed (gemm.gather): a driver of its own,
        # the general path only, no numpy-array entries (its operand has tables, not strides)
        pack_a, pack_b = core.pack_a, core.pack_b
        if spec.gather == "a":
            pack_a = build_pack_a_gather(c, f"{sym}.pack_a")
        else:
            pack_b = build_pack_b_gather(c, f"{sym}.pack_b")
        store = build_store_tile(c, spec, epi, f"{sym}.store") if spec.reads_r else epi
        driver = build_driver(c, spec, sym + ".impl", pack_a, pack_b, core.ukrs, store, None, None)
        _build_full_entry(c, driver, sym)
        return m
    if spec.gate_a:   # A's gate is applied while packing A: a driver of its own
        pack_a = build_pack_a(c, f"{sym}.pack_a", gated=True)
        driver = build_driver(c, spec, sym + ".impl", pack_a, core.pack_b, core.ukrs, epi, None, None)
        build_batched_entry(c, spec, driver, batched_symbol(sym))
    else:             # the core's driver and batched entry, given this variant's store
        store = build_store_tile(c, spec, epi, f"{sym}.store")
        driver = _build_passing(c, spec, sym + ".impl", driver_args(c), core.driver, store, "internal")
        _build_passing(c, spec, batched_symbol(sym), driver_args(c)[:17], core.batched, store)
    _build_full_entry(c, driver, sym)
    _build_py_entry(c, spec, driver, sym + "_py")
    return m
