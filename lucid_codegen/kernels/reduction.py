"""Native kernels for an elementwise prologue feeding one reduction (sum, prod, mean, max, min).

``ReductionKernel.for_graph(graph)``: the graph's nodes are elementwise ops and
constants (possibly none) followed by ONE ``sum``/``prod``/``mean``/``max``/``min`` node, whose value
is the graph's only output. Cached per structure; sizes, strides and even the
axes are run-time data (axes only change how Python lays out the iteration).

>>> import numpy as np
>>> from lucid_ir.builder import GraphBuilder
>>> b = GraphBuilder()
>>> x = b.input((4, 3), "float32")
>>> g = b.build([b.emit("sum", b.emit("exp", x), axes=(0,))])
>>> ReductionKernel.for_graph(g)([np.zeros((4, 3), np.float32)])[0]
array([4., 4., 4.], dtype=float32)

Iteration layout (Python, per shapes/strides, memoised)
    The reduction input's dimensions are split into kept axes (in order, these
    index the C-contiguous output) and reduced axes; each group is collapsed on
    its own. Then one of two kernels runs:

    * ``row`` -- the innermost reduced dimension is the inner loop (softmax
      denominators, full reductions): a vector accumulator of lanes runs along it,
      a scalar accumulator takes the remainder, and they are combined by a fixed
      halving tree at the end of each output element.
    * ``col`` -- when the innermost kept dimension is unit-stride for the inputs
      and the innermost reduced one is not (``db = sum(dY, axis=0)``): every
      reduced row is streamed contiguously and added, vector by vector, into a
      block of up to 2048 per-column accumulators (a float64 scratch row that
      stays in L1), which is rounded into the output at the end.

Accuracy and determinism
    float32 sums, products and means accumulate in float64 (then round once); float64 in
    float64; int32/int64/bool sums and products in int64 (wrapping, the int64 result PyTorch gives);
    max/min in the value's own type (bool: as bytes, max = any, min = all). The order of additions for an output element depends only on the
    shapes, never on the thread split: threads take whole output elements (row)
    or whole output columns (col). ``mean`` = sum * (1/count), NaN for count 0;
    ``max`` propagates NaN like numpy.

Kernel ABI (``void lucid_red(i64 *args, i64 o0, i64 o1, i64 c0, i64 c1)``)
    ``args = [Dk, Dr, inner, out_ptr, bits(double scale), in_ptr_0.., istride_0..,
    kept blocks.., reduced blocks..]`` (blocks = ``(size, stride per input)``);
    ``row`` runs kept outputs [o0, o1); ``col`` runs kept-outer [o0, o1) x inner
    columns [c0, c1).
"""
from __future__ import annotations

import ctypes
import math
import struct

import llvmlite.ir as ir
import numpy as np

from lucid_ir.graph import Graph
from lucid_ir.ops import get_op
from lucid_ir.types import broadcast_shapes

from lucid_codegen.kernels import loops
from lucid_codegen.jit.cache import load_or_compile, source_stamp
from lucid_codegen.jit.llvm import loop_pipeline
from lucid_codegen.runtime.pyarray import aligned_empty, data_ptr
from lucid_codegen.kernels.elementwise import Structure, checked_plan, emit_structure, needed_nodes, planned, structure_of
from lucid_codegen.kernels.loops import I64, Loop, RowWalk, const64, dim_words, load_arg
from lucid_codegen.jit.target import host_target
from lucid_codegen.kernels.accumulate import Accumulator, accumulator_type, reduced_dtype, splat
from lucid_codegen.kernels.vector_math import F64, I8, I64, ITEMSIZE, LLVM_MEMORY, mem_align, to_compute

__all__ = ["ReductionKernel"]

#: The modules whose source decides the generated code (their stamp is in every key).
GENERATOR = ("kernels.reduction", "kernels.accumulate", "kernels.elementwise", "kernels.loops", "kernels.tail",
             "kernels.lowering", "kernels.vector_math", "kernels.vector_explog", "kernels.vector_trig",
             "kernels.vector_erf", "kernels.erf_coefficients", "kernels.vector_random", "runtime.pyarray")
KERNEL_ABI = ctypes.CFUNCTYPE(None, ctypes.POINTER(ctypes.c_int64), ctypes.c_int64,
                              ctypes.c_int64, ctypes.c_int64, ctypes.c_int64)
COL_BLOCK = 2048  # output columns whose accumulators (in scratch) stay in L1
_I32 = ir.IntType(32)


_NUMPY_OF = {ir.FloatType(): "float32", F64: "float64", ir.IntType(32): "int32", I64: "int64", I8: "bool"}


# ------------------------------------------------------------------ IR helpers
class _In:
    """Loads of one reduction-prologue input at a base pointer with a given inner kind."""

    def __init__(self, b, base, kind, istride):
        self.b, self.base, self.kind, self.istride = b, base, kind, istride

    def load(self, i, lanes):
        b = self.b
        if self.kind == "b":
            x = b.load(self.base)
            return splat(b, x, lanes) if lanes else x
        if not lanes:
            idx = i if self.kind == "c" else b.mul(i, self.istride)
            return b.load(b.gep(self.base, [idx]))
        elem = self.base.type.pointee
        vty = ir.VectorType(elem, lanes)
        if self.kind == "c":
            p = b.bitcast(b.gep(self.base, [i]), vty.as_pointer())
            return b.load(p, align=mem_align(elem))
        v = ir.Constant(vty, ir.Undefined)
        for lane in range(lanes):
            x = b.load(b.gep(self.base, [b.mul(b.add(i, const64(lane)), self.istride)]))
            v = b.insert_element(v, x, ir.Constant(_I32, lane))
        return v


class _Codegen(Accumulator):
    def __init__(self, st: Structure, red_op: str, pattern: str, lanes: int):
        self.root = st.outputs[0]
        super().__init__(red_op, st.out_dtype(self.root))  # the prologue's value
        self.st, self.pattern, self.lanes = st, pattern, lanes
        self.needed = needed_nodes(st, [self.root])

    def value(self, b, ins, i, lanes):
        """The prologue's value at inner index ``i`` widened to the accumulator type."""
        loaders = [(lambda j=j: to_compute(b, ins[j].load(i, lanes), self.st.inputs[j]))
                   for j in range(len(ins))]
        _env, get = emit_structure(b, self.st, loaders, lanes, self.needed)
        return self.widen(b, get(self.root), lanes)

    # -------------------------------------------------------------- module
    def build(self, mode: str) -> ir.Module:
        st = self.st
        n = len(st.inputs)
        m = ir.Module(name="lucid_reduction")
        f = ir.Function(m, ir.FunctionType(ir.VoidType(), [I64.as_pointer(), I64, I64, I64, I64]),
                        "lucid_red")
        args, o0, o1, c0, c1 = f.args
        b = ir.IRBuilder(f.append_basic_block("entry"))
        self.b, self.args = b, args
        Dk, Dr, inner = (load_arg(b, args, k) for k in range(3))
        out = b.inttoptr(load_arg(b, args, 3), self.vty.as_pointer())
        scale = b.bitcast(load_arg(b, args, 4), F64)
        ptrs = [b.inttoptr(load_arg(b, args, 6 + j), LLVM_MEMORY[dt].as_pointer())
                for j, dt in enumerate(st.inputs)]
        istr = [load_arg(b, args, 6 + n + j) if self.pattern[j] == "s" else None for j in range(n)]
        kbase = 6 + 2 * n
        rbase = b.add(const64(kbase), b.mul(Dk, const64(n + 1)))
        self.ctx = (Dk, Dr, inner, out, scale, ptrs, istr, kbase, rbase, n)
        if mode == "row":
            self._row(o0, o1)
        else:
            self._col(o0, o1, c0, c1)
        b.ret_void()
        return m

    def _inputs_at(self, offsets):
        b = self.b
        Dk, Dr, inner, out, scale, ptrs, istr, kbase, rbase, n = self.ctx
        return [_In(b, b.gep(ptrs[j], [offsets[j]]), self.pattern[j], istr[j]) for j in range(n)]

    def _row(self, o0, o1):
        b, L = self.b, self.lanes
        Dk, Dr, inner, out, scale, ptrs, istr, kbase, rbase, n = self.ctx
        nvec = b.mul(b.sdiv(inner, const64(L)), const64(L))
        with RowWalk(b, self.args, Dk, n, kbase, o0, o1, name="kept") as kl:
            koff = kl.offsets
            n_red = self._count(Dr, rbase)
            with RowWalk(b, self.args, Dr, n, rbase, const64(0), n_red,
                         [self.identity(L), self.identity(0)], name="red") as rl:
                roff = rl.offsets
                ins = self._inputs_at([b.add(k, r) for k, r in zip(koff, roff)])
                with Loop(b, const64(0), nvec, L, [rl.vars[0]], name="vec") as vl:
                    vl.next = [self.combine(b, vl.vars[0], self.value(b, ins, vl.i, L))]
                with Loop(b, nvec, inner, 1, [rl.vars[1]], name="rem") as sl:
                    sl.next = [self.combine(b, sl.vars[0], self.value(b, ins, sl.i, 0))]
                rl.next = [vl.results[0], sl.results[0]]
            total = self.combine(b, self.hreduce(b, rl.results[0]), rl.results[1])
            b.store(self.finish(b, total, scale), b.gep(out, [kl.i]))

    def _count(self, D, base):
        """Product of the sizes of D dimension blocks starting at ``base``."""
        b = self.b
        n = len(self.st.inputs)
        with Loop(b, const64(0), D, 1, [const64(1)], name="count") as lp:
            size = load_arg(b, self.args, b.add(base, b.mul(lp.i, const64(n + 1))))
            lp.next = [b.mul(lp.vars[0], size)]
        return lp.results[0]

    def _col(self, o0, o1, c0, c1):
        b, L = self.b, self.lanes
        Dk, Dr, inner, out, scale, ptrs, istr, kbase, rbase, n = self.ctx
        scratch = b.inttoptr(load_arg(b, self.args, 5), self.aty.as_pointer())
        align, oalign = mem_align(self.aty), mem_align(self.vty)

        def vec_ptr(base, j, ty):
            return b.bitcast(b.gep(base, [j]), ty.as_pointer())

        def sweep(lo, hi, body):
            """body(j, lanes) over [lo, hi): vectors of L, then single elements."""
            vend = b.add(lo, b.mul(b.sdiv(b.sub(hi, lo), const64(L)), const64(L)))
            with Loop(b, lo, vend, L, name="cv") as vl:
                body(vl.i, L)
            with Loop(b, vend, hi, 1, name="cs") as sl:
                body(sl.i, 0)

        with RowWalk(b, self.args, Dk, n, kbase, o0, o1, name="kept") as kl:
            koff = kl.offsets
            n_red = self._count(Dr, rbase)
            row_out = b.gep(out, [b.mul(kl.i, inner)])
            row_acc = b.gep(scratch, [b.mul(kl.i, inner)])
            with Loop(b, c0, c1, COL_BLOCK, name="cblock") as cb:
                cend = b.add(cb.i, const64(COL_BLOCK))
                cend = b.select(b.icmp_signed("<", cend, c1), cend, c1)

                def init(j, lanes):
                    v = self.identity(lanes)
                    b.store(v, vec_ptr(row_acc, j, v.type) if lanes else b.gep(row_acc, [j]),
                            align=align)
                sweep(cb.i, cend, init)
                with RowWalk(b, self.args, Dr, n, rbase, const64(0), n_red, name="red") as rl:
                    roff = rl.offsets
                    ins = self._inputs_at([b.add(k, r) for k, r in zip(koff, roff)])

                    def accumulate(j, lanes):
                        ty = self.acc_type(lanes)
                        p = vec_ptr(row_acc, j, ty) if lanes else b.gep(row_acc, [j])
                        acc = b.load(p, align=align)
                        b.store(self.combine(b, acc, self.value(b, ins, j, lanes)), p, align=align)
                    sweep(cb.i, cend, accumulate)

                def store(j, lanes):
                    ty = self.acc_type(lanes)
                    acc = b.load(vec_ptr(row_acc, j, ty) if lanes else b.gep(row_acc, [j]), align=align)
                    res = self.finish(b, acc, scale)
                    b.store(res, vec_ptr(row_out, j, res.type) if lanes else b.gep(row_out, [j]),
                            align=oalign)
                sweep(cb.i, cend, store)


# ------------------------------------------------------------------ the kernel
_KERNELS: dict[str, "ReductionKernel"] = {}


class ReductionKernel:
    """``kernel(arrays, outs=None) -> [result]`` for prologue + one reduction.

    ``arrays`` match the graph inputs (dtype; shapes broadcastable to the
    reduction input's shape, any strides). ``outs``, if given, is one array of the
    result's shape and dtype (any strides); else a new C-contiguous array.
    """

    MAX_PLANS = 256

    def __init__(self, st: Structure, red_op: str, axes, keepdims: bool, rank: int):
        self.structure, self.red_op = st, red_op
        self.axes, self.keepdims, self.rank = tuple(axes), keepdims, rank
        in_dtype = st.out_dtype(st.outputs[0])
        acc = accumulator_type(red_op, in_dtype)
        widest = max([ITEMSIZE[d] for d in st.dtypes()] + [mem_align(acc)])
        self.lanes = max(1, min(64, 2 * host_target().vector_bytes // widest))
        self.dtype = np.dtype(reduced_dtype(red_op, in_dtype))
        self.acc_dtype = np.dtype(_NUMPY_OF[acc])
        self.in_dtypes = [np.dtype(d) for d in st.inputs]
        self._fns: dict = {}
        self._plans: dict = {}

    @classmethod
    def for_graph(cls, graph: Graph) -> "ReductionKernel":
        reds = [k for k, n in enumerate(graph.nodes) if get_op(n.op).group == "reduction"]
        if len(reds) != 1 or len(graph.outputs) != 1 or graph.outputs[0] is not graph.nodes[reds[0]].out:
            raise ValueError("reduction kernel: the graph must end in one sum/prod/mean/max/min node, "
                             "whose value is the only output")
        red = graph.nodes[reds[0]]
        prologue = Graph(graph.inputs, tuple(n for n in graph.nodes if n is not red), (red.inputs[0],))
        st = structure_of(prologue)
        x = red.inputs[0]
        key = f"{st.text}|{red.op}|{red.attr('axes')}|{red.attr('keepdims')}|{len(x.shape)}"
        kern = _KERNELS.get(key)
        if kern is None:
            kern = _KERNELS.setdefault(key, cls(st, red.op, red.attr("axes"), red.attr("keepdims"),
                                                len(x.shape)))
        return kern

    def llvm_module(self, mode: str = "row", pattern: str | None = None):
        """The LLVM module of one variant (default: row mode, contiguous), for dumps."""
        return _Codegen(self.structure, self.red_op, pattern or "c" * len(self.in_dtypes),
                        self.lanes).build(mode)

    def function(self, mode: str, pattern: str):
        fn = self._fns.get((mode, pattern))
        if fn is None:
            st, lanes = self.structure, self.lanes
            cg = _Codegen(st, self.red_op, pattern, lanes)
            key = (f"reduction/{source_stamp(*GENERATOR)}|{st.text}|{self.red_op}|{mode}|pattern={pattern}"
                   f"|lanes={lanes}")
            lib = load_or_compile(key, lambda: cg.build(mode), ["lucid_red"],
                                  label=f"reduction {self.red_op} {mode} {pattern} {st.text[:120]}",
                                  pipeline=loop_pipeline())
            fn = self._fns[(mode, pattern)] = KERNEL_ABI(lib.address("lucid_red"))
        return fn

    # -------------------------------------------------------------- planning
    def _plan(self, arrays):
        st = self.structure
        xshape = broadcast_shapes(*(a.shape for a in arrays), *st.const_shapes, op=self.red_op)
        if len(xshape) != self.rank:
            raise ValueError(f"{self.red_op}: inputs broadcast to {xshape}, expected rank {self.rank}")
        axes = self.axes
        kept_axes = [d for d in range(self.rank) if d not in axes]
        kept_shape = tuple(xshape[d] for d in kept_axes)
        out_shape = (tuple(1 if d in axes else xshape[d] for d in range(self.rank)) if self.keepdims
                     else kept_shape)
        count = 1
        for d in axes:
            count *= xshape[d]
        if self.red_op in ("max", "min") and count == 0:
            raise ValueError(f"{self.red_op}: cannot reduce an empty axis of a tensor of shape {xshape}")
        n_out = 1
        for d in kept_shape:
            n_out *= d
        if n_out == 0:
            return out_shape, None
        strides = [loops.broadcast_strides(a.shape, a.strides, a.itemsize, xshape) for a in arrays]
        kd, ks = loops.collapse(kept_shape, [[s[d] for d in kept_axes] for s in strides]
                                + [_c_elem_strides(kept_shape)])
        rd, rs = loops.collapse(tuple(xshape[d] for d in axes), [[s[d] for d in axes] for s in strides])
        ks = ks[:-1]  # the output's own strides were only there to keep merges legal
        if count == 0:
            rd, rs = (0,), [(0,) for _ in arrays]
        n_in = len(arrays)
        col = (len(kd) > 0 and len(rd) > 0 and all(s[-1] in (0, 1) for s in ks)
               and any(s[-1] == 1 for s in ks) and not any(s[-1] == 1 for s in rs))
        if col:
            inner, istr = kd[-1], [s[-1] for s in ks]
            kdims, kstr = kd[:-1], [s[:-1] for s in ks]
            rdims, rstr = rd, rs
        else:
            if not rd:
                rd, rs = (1,), [(0,) for _ in arrays]
            inner, istr = rd[-1], [s[-1] for s in rs]
            kdims, kstr = kd, ks
            rdims, rstr = rd[:-1], [s[:-1] for s in rs]
        pattern = "".join("b" if s == 0 else "c" if s == 1 or inner == 1 else "s" for s in istr)
        scale = 1.0 / count if count else math.nan
        template = [len(kdims), len(rdims), inner, 0, struct.unpack("<q", struct.pack("<d", scale))[0], 0]
        template += [0] * n_in + istr
        template += dim_words(kdims, kstr) + dim_words(rdims, rstr)
        n_outer, total = math.prod(kdims), math.prod(xshape)
        nbytes = total * sum(a.itemsize for a in arrays)
        mode = "col" if col else "row"
        from lucid_codegen.runtime import work_split  # (run-time decisions, not generated code: not stamped)
        return out_shape, (self.function(mode, pattern), template, mode, n_outer, inner,
                           work_split.pool_splits(nbytes), ctypes.c_int64 * len(template))

    def bind(self, arrays, outs):
        """A prepared call for these layouts (see ``ElementwiseKernel.bind``), or None."""
        return _bind(self, arrays, outs)

    def call_block(self, arrays):
        """See ``ElementwiseKernel.call_block``; None as well for column reductions
        (they need a scratch row of their own per call)."""
        key = tuple([(a.shape, a.strides, a.dtype) for a in arrays])
        if key not in self._plans:
            self._checked_plan(arrays, key)  # validates and plans (a reusable layout)
        plan = self._plans.get(key)
        if plan is None or plan[1] is None or plan[1][5] or plan[1][2] == "col":
            return None
        fn, template, _, n_outer = plan[1][:4]
        address = ctypes.cast(fn, ctypes.c_void_p).value
        n = len(arrays)
        return (address, (0, n_outer, 0, 0), list(template), list(range(6, 6 + n)) + [3],
                plan[0], self.dtype)

    def native_job(self, arrays, outs):
        """This call as a ``native_plan.LoopJob`` (see ``ElementwiseKernel.native_job``).
        A program with work enough splits it into whole kept rows, as it splits an
        elementwise kernel; every output element is still one sequential reduction, so
        the bits do not depend on the split. One kept row does not split (a full sum),
        nor do the column sums of a matrix (a bias's gradient), whose column ranges would
        each read every row of a matrix that the kernels before it wrote split by rows,
        half of it from the other core's cache (Zen 3, the GPT step's (1024, 512) bias
        gradients: 0.13 ms whole, 0.17 ms in two column halves), unless the matrix is
        too big for the caches anyway (``work_split.pool_splits``) and its rows long
        enough that the column ranges are whole cache lines apart (as the Python pool
        splits a call outside a program, ``_run_parallel``)."""
        from lucid_codegen.runtime.native_plan import LoopJob
        plan = self._plans.get(tuple([(a.shape, a.strides, a.dtype) for a in arrays]))
        (target,) = outs
        if (plan is None or plan[1] is None or not target.flags.c_contiguous
                or target.shape != plan[0] or target.dtype != self.dtype):
            return None
        fn, template, mode, n_outer, inner = plan[1][:5]
        template = list(template)
        keep = ()
        if mode == "col":  # the per-output accumulators: kept alive by the job
            scratch = _scratch(n_outer * inner, self.acc_dtype)
            template[5] = data_ptr(scratch)
            keep = (scratch,)
        from lucid_codegen.runtime import work_split  # (run-time decisions, not generated code: not stamped)
        total = math.prod(broadcast_shapes(*(a.shape for a in arrays), *self.structure.const_shapes))
        read = total * sum(a.itemsize for a in arrays)
        moved = read + (2 * total * self.acc_dtype.itemsize if mode == "col" else 0)  # (its accumulator's)
        nbytes = work_split.work_bytes(moved, total, [node[0] for node in self.structure.nodes])
        splits = n_outer > 1 or (mode == "col" and inner >= 2 * COL_BLOCK and work_split.pool_splits(read))
        return LoopJob(fn, template, (0, n_outer, 0, inner if mode == "col" else 0),
                       list(range(6, 6 + len(arrays))), [3], keep,
                       lanes=self.lanes if splits else 0, nbytes=nbytes)

    def _checked_plan(self, arrays, key):
        """Validate a call seen for the first time; memoise its plan when reusable.
        Returns the arrays to use (odd strides copied) and the plan."""
        return checked_plan(self, self.red_op, arrays, key)

    def __call__(self, arrays, outs=None):
        arrays, plan = planned(self, arrays)
        out_shape, run = plan
        target = None
        if outs is not None:
            (target,) = outs
            if target.shape != out_shape or target.dtype != self.dtype:
                raise ValueError(f"{self.red_op} kernel: outs[0] must be a {self.dtype} array of "
                                 f"shape {out_shape}, got {target.dtype}{list(target.shape)}")
        out = target if target is not None and target.flags.c_contiguous else np.empty(out_shape, self.dtype)
        if run is not None:
            fn, template, mode, n_outer, inner, parallel, buf_type = run
            buf = buf_type(*template)
            buf[3] = data_ptr(out)
            if mode == "col":  # per-output accumulators (float64 for sums), disjoint per thread
                scratch = _scratch(n_outer * inner, self.acc_dtype)
                buf[5] = data_ptr(scratch)
            p = 6
            try:
                for a in arrays:
                    buf[p] = data_ptr(a)
                    p += 1
            except AttributeError:
                return self([np.asarray(a) for a in arrays], outs)
            if parallel and loops.num_threads() > 1:
                _run_parallel(fn, buf, mode, n_outer, inner, self.lanes)
            elif mode == "col":
                fn(buf, 0, n_outer, 0, inner)
            else:
                fn(buf, 0, n_outer, 0, 0)
        if target is not None and out is not target:
            target[...] = out
            out = target
        return [out]


def _bind(kernel: "ReductionKernel", arrays, outs):
    """``runner(arrays, outs) -> outs`` for calls with exactly these layouts and a
    C-contiguous output (see ``ElementwiseKernel.bind``); None when not worth it."""
    plan = kernel._plans.get(tuple([(a.shape, a.strides, a.dtype) for a in arrays]))
    (target,) = outs
    if plan is None or plan[1] is None or plan[1][5] or not target.flags.c_contiguous:
        return None
    fn, template, mode, n_outer, inner, _, buf_type = plan[1]
    buf = buf_type(*template)
    scratch = _scratch(n_outer * inner, kernel.acc_dtype) if mode == "col" else None
    if scratch is not None:
        buf[5] = data_ptr(scratch)
    last = inner if mode == "col" else 0

    def runner(arrays, outs, scratch=scratch):  # the default keeps the scratch row alive
        buf[3] = data_ptr(outs[0])
        p = 6
        for a in arrays:
            buf[p] = data_ptr(a)
            p += 1
        fn(buf, 0, n_outer, 0, last)
        return outs
    return runner


def _scratch(n: int, dtype) -> np.ndarray:
    """``n`` accumulators of ``dtype`` for the ``col`` kernel, on a 64-byte boundary
    (``aligned_empty``): its vector stores to them, and the next reduced row's loads of
    the same vectors, stay within cache lines (a store across two lines is not forwarded
    to a load that reads it back, which then waits for the store to reach the cache):
    the float32 (1024, 384) column sum took up to 1.5x as long, depending on where its
    scratch row landed (Sapphire Rapids)."""
    return aligned_empty(n, dtype)


def _run_parallel(fn, buf, mode, n_outer, inner, lanes):
    chunks = loops.num_threads() * 4
    if n_outer >= chunks or mode == "row":
        chunks = max(1, min(chunks, n_outer))
        bounds = [n_outer * c // chunks for c in range(chunks + 1)]
        c1 = inner if mode == "col" else 0
        loops.parallel_hook(chunks, lambda c: fn(buf, bounds[c], bounds[c + 1], 0, c1))
        return
    if inner < 2 * COL_BLOCK:  # splitting short rows makes both threads read strided
        fn(buf, 0, n_outer, 0, inner)
        return
    step = -(-inner // loops.num_threads())
    step = -(-step // COL_BLOCK) * COL_BLOCK
    ranges = [(s, min(s + step, inner)) for s in range(0, inner, step)]
    loops.parallel_hook(len(ranges) * n_outer, lambda c: fn(
        buf, c // len(ranges), c // len(ranges) + 1, *ranges[c % len(ranges)]))


def _c_elem_strides(shape):
    out, acc = [], 1
    for d in reversed(shape):
        out.append(acc)
        acc *= max(d, 1)
    return list(reversed(out))
