"""Native kernels for chains of elementwise ops (one fused loop per graph).

``ElementwiseKernel.for_graph(graph)`` takes a graph whose nodes are all
elementwise ops (group ``elementwise`` of ``lucid_ir.ops``) or fill ``constant`` nodes, and
returns a callable kernel, cached per *structure* (ops, attrs, dtypes, wiring),
never per size: sizes and strides are run-time arguments.

>>> import numpy as np
>>> from lucid_ir.builder import GraphBuilder
>>> b = GraphBuilder()
>>> x = b.input((3, 1), "float32"); y = b.input((4,), "float32")
>>> g = b.build([b.emit("sigmoid", b.emit("mul", x, y))])
>>> k = ElementwiseKernel.for_graph(g)
>>> k([np.ones((3, 1), np.float32), np.zeros(4, np.float32)])[0].shape
(3, 4)

Dtypes
    Any of the five (float32, float64, int32, int64, bool) as inputs, outputs and
    intermediates; values are computed in their LLVM types (bool as i1) and stored as
    numpy stores them (bool as a 0/1 byte). The vector width is set by the widest dtype
    in the structure. The op table is ``lucid_codegen.kernels.lowering``.

How a call runs
    Python broadcasts every operand's strides to the output shape, drops size-1
    dimensions and merges dimensions that are contiguous together for all
    operands (:func:`lucid_codegen.kernels.loops.collapse`). The innermost remaining
    dimension becomes the kernel's inner loop; each operand is classified there
    as ``c`` (stride 1: vector loads/stores), ``b`` (stride 0: one load, splat)
    or ``s`` (any other stride: lane-by-lane loads). The kernel is compiled once
    per (structure, that pattern, vector width); the outer dimensions are walked
    by decomposing a linear outer index at run time, so rank is not compiled in.
    The plan for a given set of shapes/strides is memoised, so a repeated call
    costs a dict lookup, the pointer fetches and one ctypes call.

Kernel ABI (``void lucid_ew(i64 *args, i64 o0, i64 o1, i64 i0, i64 i1)``)
    ``args = [D, inner, ptr_0..ptr_{P-1}, istride_0..istride_{P-1},
    (shape_d, stride_d_0..stride_d_{P-1}) for d in 0..D-1]`` with P = inputs +
    outputs, strides in elements. It runs outer indices [o0, o1) and, for each,
    inner indices [i0, i1); disjoint ranges can run on different threads.
"""
from __future__ import annotations

import ctypes
import math

import llvmlite.ir as ir
import numpy as np

from lucid_ir.graph import Graph
from lucid_ir.ops import get_op
from lucid_ir.types import broadcast_shapes

from lucid_codegen.kernels import loops
from lucid_codegen.jit.cache import load_or_compile, source_stamp
from lucid_codegen.jit.llvm import loop_pipeline
from lucid_codegen.runtime.pyarray import data_ptr
from lucid_codegen.kernels.loops import I64, Loop, RowWalk, const64, dim_words, load_arg
from lucid_codegen.jit.target import host_target
from lucid_codegen.kernels.lowering import SUPPORTED, emit_op
from lucid_codegen.kernels.tail import Tail
from lucid_codegen.kernels.vector_math import ITEMSIZE, LLVM_MEMORY, LLVM_TYPE, const, mem_align, to_compute, to_memory

__all__ = ["ElementwiseKernel", "Structure", "structure_of", "emit_structure"]

KERNEL_ABI = ctypes.CFUNCTYPE(None, ctypes.POINTER(ctypes.c_int64), ctypes.c_int64,
                              ctypes.c_int64, ctypes.c_int64, ctypes.c_int64)
#: The modules whose source decides the generated code (their stamp is in every key).
GENERATOR = ("kernels.elementwise", "kernels.loops", "kernels.tail", "kernels.lowering", "kernels.vector_math",
             "kernels.vector_explog", "kernels.vector_trig", "kernels.vector_erf",
             "kernels.erf_coefficients", "kernels.vector_random", "runtime.pyarray")


# ------------------------------------------------------------------ structure
class Structure:
    """A graph reduced to what the generated code depends on.

    ``inputs``: dtypes of the graph inputs; ``nodes``: (op, attrs, arg refs, dtype)
    where a ref is ``("i", k)`` (graph input k) or ``("n", k)`` (node k);
    ``outputs``: refs. ``text`` is the canonical cache key. ``const_shapes``: the shapes
    of the nodes that make values of their own shape (constants, random numbers): they
    take part in the loop's shape, which is not compiled in (nor in ``text``).
    """

    def __init__(self, inputs, nodes, outputs, const_shapes):
        self.inputs = tuple(inputs)
        self.nodes = tuple(nodes)
        self.outputs = tuple(outputs)
        self.const_shapes = tuple(const_shapes)
        parts = ["in:" + ",".join(self.inputs)]
        for op, attrs, refs, dtype in self.nodes:
            parts.append(node_text(op, attrs, refs, dtype))
        parts.append("out:" + ",".join(f"{t}{i}" for t, i in self.outputs))
        self.text = ";".join(parts)

    def out_dtype(self, ref) -> str:
        kind, k = ref
        return self.inputs[k] if kind == "i" else self.nodes[k][3]

    def dtypes(self):
        return set(self.inputs) | {n[3] for n in self.nodes}


def node_text(op, attrs, refs, dtype) -> str:
    """One node of a structure's cache key (a float constant exactly, in hex)."""
    a = ",".join(f"{k}={float(v).hex() if k == 'value' and type(v) is float else v}" for k, v in attrs)
    return f"{op}[{a}]({','.join(f'{t}{i}' for t, i in refs)}):{dtype}"


def checked_plan(kernel, name: str, arrays, key):
    """A reduction's or row kernel's first call with these layouts: the arrays checked
    against ``kernel.in_dtypes`` (errors name the kernel), odd strides copied, and
    ``kernel._plan`` of them, memoised in ``kernel._plans`` under ``key`` when no array
    was copied. Returns (the arrays to use, the plan)."""
    arrays = [np.asarray(a) for a in arrays]
    if len(arrays) != len(kernel.in_dtypes):
        raise ValueError(f"{name} kernel takes {len(kernel.in_dtypes)} inputs, got {len(arrays)}")
    for k, (a, dt) in enumerate(zip(arrays, kernel.in_dtypes)):
        if a.dtype != dt:
            raise TypeError(f"{name} kernel input {k}: expected {dt}, got {a.dtype}")
    fixed = [_fix_strides(a) for a in arrays]
    plan = kernel._plan(fixed)
    if all(f is a for f, a in zip(fixed, arrays)):
        if len(kernel._plans) >= kernel.MAX_PLANS:
            kernel._plans.clear()
        kernel._plans[key] = plan
    return fixed, plan


def planned(kernel, arrays):
    """``(arrays, plan)`` of a reduction's or row kernel's call: the memoised plan of
    these layouts, else ``kernel._checked_plan`` (the first call with them)."""
    try:
        key = tuple([(a.shape, a.strides, a.dtype) for a in arrays])
    except AttributeError:
        arrays = [np.asarray(a) for a in arrays]
        key = tuple([(a.shape, a.strides, a.dtype) for a in arrays])
    plan = kernel._plans.get(key)
    if plan is None:
        arrays, plan = kernel._checked_plan(arrays, key)
    return arrays, plan


def structure_of(graph: Graph, outputs=None) -> Structure:
    """The :class:`Structure` of ``graph`` (checking every node is elementwise/constant)."""
    refs = {v: ("i", k) for k, v in enumerate(graph.inputs)}
    nodes, const_shapes = [], []
    for k, n in enumerate(graph.nodes):
        if n.op == "constant" or get_op(n.op).random:
            const_shapes.append(n.attr("shape"))
        if n.op != "constant" and (not get_op(n.op).elementwise or n.op not in SUPPORTED):
            raise ValueError(f"elementwise kernel: op {n.op!r} is not elementwise")
        try:
            args = tuple(refs[v] for v in n.inputs)
        except KeyError:
            raise ValueError(f"elementwise kernel: {n.op} reads a value defined outside the graph") from None
        attrs = tuple((a, v) for a, v in n.attrs if a != "shape")
        nodes.append((n.op, attrs, args, n.out.dtype))
        refs[n.out] = ("n", k)
    outs = graph.outputs if outputs is None else outputs
    return Structure([v.dtype for v in graph.inputs], nodes, [refs[v] for v in outs], const_shapes)


def emit_structure(b: ir.IRBuilder, st: Structure, input_values, lanes: int, needed=None, index=None):
    """Emit every node of ``st``; returns ``{ref: llvm value}`` (vectors if lanes > 0).

    ``input_values[k]`` is a callable returning graph input k's value (loaded lazily,
    so unused inputs are never touched). ``needed`` limits emission to those node indices.
    ``index()`` gives the elements' linear indices in the loop (the random ops read
    them; computed once, when first asked).
    """
    cached = []

    def index_once():
        if not cached:
            cached.append(index())
        return cached[0]

    def ty(dtype):
        s = LLVM_TYPE[dtype]
        return ir.VectorType(s, lanes) if lanes else s

    env = {}

    def get(ref):
        if ref not in env:
            env[ref] = input_values[ref[1]]()
        return env[ref]

    for k, (op, attrs, refs, dtype) in enumerate(st.nodes):
        if needed is not None and k not in needed:
            continue
        if op == "constant":
            env[("n", k)] = const(ty(dtype), dict(attrs)["value"])
        else:
            env[("n", k)] = emit_op(b, op, [get(r) for r in refs], dict(attrs),
                                    index_once if index is not None else None)
    return env, get


def needed_nodes(st: Structure, roots) -> set[int]:
    need, stack = set(), [r for r in roots if r[0] == "n"]
    while stack:
        _, k = stack.pop()
        if k in need:
            continue
        need.add(k)
        stack.extend(r for r in st.nodes[k][2] if r[0] == "n")
    return need


def vector_lanes(st: Structure) -> int:
    """Lanes of the widest dtype the loop computes in. A random op's int64 key, read
    once and used by nothing else, does not count: float32 random numbers (their 64-bit
    hashing split over registers by LLVM) keep float32's width, twice as fast. Nor does
    a value only read by casts to a narrower dtype: a Python number reaches the kernel
    as a float64 and is cast to the float32 of the tensors it meets (``x.clamp(-1, 1)``),
    once, before the loop.

    >>> from lucid_ir.builder import GraphBuilder
    >>> b = GraphBuilder()
    >>> x, lo = b.input((8,)), b.input((), "float64")
    >>> st = structure_of(b.build([b.emit("maximum", x, b.emit("cast", lo, dtype="float32"))]))
    >>> vector_lanes(st) == host_target().vector_bytes // 4
    True
    """
    readers: dict = {}
    for op, attrs, refs, dtype in st.nodes:
        for r in refs:
            readers.setdefault(r, []).append((op, attrs, refs, dtype))
    keys = {r for r, rs in readers.items()
            if all(get_op(op).random or (op == "cast" and ITEMSIZE[dtype] < ITEMSIZE[st.out_dtype(r)])
                   for op, _, _, dtype in rs)}
    keys -= set(st.outputs)
    dtypes = {d for k, d in enumerate(st.inputs) if ("i", k) not in keys}
    dtypes |= {dtype for k, (_, _, _, dtype) in enumerate(st.nodes) if ("n", k) not in keys}
    widest = max((ITEMSIZE[d] for d in dtypes), default=4)
    return max(1, host_target().vector_bytes // widest)


# ------------------------------------------------------------------ LLVM module
class _Operand:
    """One pointer operand of the inner loop (an input or an output)."""

    def __init__(self, b, base_ptr, kind, istride, elem):
        self.b, self.base, self.kind, self.istride, self.elem = b, base_ptr, kind, istride, elem
        self.splat = {}

    def _ptr(self, i):
        b = self.b
        if self.kind == "c":
            return b.gep(self.base, [i])
        if self.kind == "b":
            return self.base
        return b.gep(self.base, [b.mul(i, self.istride)])

    def load(self, i, lanes):
        """Lanes ``i ..`` (``i`` an index, or a ``Tail``), or element ``i`` when ``lanes``
        is 0."""
        b = self.b
        if self.kind == "b":
            if lanes not in self.splat:
                raise AssertionError("broadcast operand must be preloaded")
            return self.splat[lanes]
        if isinstance(i, Tail):
            return i.load(b, self.base, self.istride)
        if not lanes:
            return b.load(self._ptr(i))
        vty = ir.VectorType(self.elem, lanes)
        if self.kind == "c":
            p = b.bitcast(b.gep(self.base, [i]), vty.as_pointer())
            return b.load(p, align=mem_align(self.elem))
        v = ir.Constant(vty, ir.Undefined)
        for lane in range(lanes):
            x = b.load(self._ptr(b.add(i, const64(lane))))
            v = b.insert_element(v, x, ir.Constant(ir.IntType(32), lane))
        return v

    def preload(self, widths):
        """For a stride-0 operand: load once (outside the loops) and splat to each of the
        vector ``widths``."""
        b = self.b
        x = b.load(self.base)
        self.splat[0] = x
        for lanes in widths:
            vty = ir.VectorType(self.elem, lanes)
            v = b.insert_element(ir.Constant(vty, ir.Undefined), x, ir.Constant(ir.IntType(32), 0))
            self.splat[lanes] = b.shuffle_vector(v, ir.Constant(vty, ir.Undefined),
                                                 ir.Constant(ir.VectorType(ir.IntType(32), lanes), [0] * lanes))

    def store(self, i, value, lanes):
        b = self.b
        if isinstance(i, Tail):
            i.store(b, self.base, value, self.istride)
            return
        if not lanes:
            b.store(value, self._ptr(i))
            return
        if self.kind == "c":
            p = b.bitcast(b.gep(self.base, [i]), value.type.as_pointer())
            b.store(value, p, align=mem_align(self.elem))
            return
        for lane in range(lanes):
            x = b.extract_element(value, ir.Constant(ir.IntType(32), lane))
            b.store(x, self._ptr(b.add(i, const64(lane))))


#: A loop body whose ops cost at least this much per element (``OpDef.cost``: erf 46,
#: log 28, sigmoid 20; exp 12 does not qualify) runs two vectors an iteration before the
#: one-vector loop: its transcendental functions are long chains of dependent
#: operations (a division, then a polynomial, then an exponential), and a second
#: independent chain in the same iteration lets the processor overlap them. Zen 3,
#: float32 512x1024, one thread: gelu 0.82x the time of one vector an iteration, erf
#: 0.85x, erfc 0.86x, log 0.88x, silu 0.87x, pow 0.88x, float64 erf 0.89x; tanh, sin
#: and sigmoid unchanged.
TWO_VECTORS_COST = 20


def vector_widths(st: Structure, lanes: int) -> tuple:
    """The vector widths of the body's loops, widest first (:data:`TWO_VECTORS_COST`).

    >>> from lucid_ir.builder import GraphBuilder
    >>> def body(op):
    ...     b = GraphBuilder()
    ...     return structure_of(b.build([b.emit(op, b.input((8,)))]))
    >>> vector_widths(body("erf"), 8), vector_widths(body("exp"), 8)
    ((16, 8), (8,))
    """
    heavy = sum(get_op(op).cost for op, _, _, _ in st.nodes) >= TWO_VECTORS_COST
    return (2 * lanes, lanes) if heavy and lanes > 1 else (lanes,)


def build_module(st: Structure, pattern: str, lanes: int) -> ir.Module:
    n_in, n_out = len(st.inputs), len(st.outputs)
    P = n_in + n_out
    dtypes = list(st.inputs) + [st.out_dtype(r) for r in st.outputs]
    m = ir.Module(name="lucid_elementwise")
    fnty = ir.FunctionType(ir.VoidType(), [I64.as_pointer(), I64, I64, I64, I64])
    f = ir.Function(m, fnty, "lucid_ew")
    args, o0, o1, i0, i1 = f.args
    b = ir.IRBuilder(f.append_basic_block("entry"))
    D = load_arg(b, args, 0)
    raw = [b.inttoptr(load_arg(b, args, 2 + j), LLVM_MEMORY[dt].as_pointer()) for j, dt in enumerate(dtypes)]
    istr = [load_arg(b, args, 2 + P + j) if pattern[j] == "s" else None for j in range(P)]
    arg_base = 2 + 2 * P

    inner_size = load_arg(b, args, 1)
    if set(pattern) == {"b"}:
        _single_element(b, st, raw, dtypes, o0, o1, i0, i1, inner_size)
        return m
    with RowWalk(b, args, D, P, arg_base, o0, o1, name="outer") as outer:
        offs = outer.offsets
        row = b.mul(outer.i, inner_size)  # the linear index of the row's first element
        ops = [_Operand(b, b.gep(raw[j], [offs[j]]), pattern[j], istr[j], LLVM_MEMORY[dtypes[j]])
               for j in range(P)]
        widths = vector_widths(st, lanes)
        for j in range(n_in):
            if pattern[j] == "b":
                ops[j].preload(widths)
        loops, lo = [], i0
        for ln in widths:   # each vector width's whole vectors, then the tail
            hi = b.add(lo, b.mul(b.sdiv(b.sub(i1, lo), const64(ln)), const64(ln)))
            loops.append((lo, hi, ln, ln, "vec" if ln == lanes else f"vec{ln}"))
            lo = hi
        if lanes == 1:  # (no vectors: one element at a time)
            loops.append((lo, i1, 1, 0, "rem"))

        def body(i, ln):   # lanes i .. (i: an index, or the Tail)
            first = i.start if isinstance(i, Tail) else i
            loaders = [(lambda j=j: to_compute(b, ops[j].load(i, ln), dtypes[j])) for j in range(n_in)]
            _env, get = emit_structure(b, st, loaders, ln, index=lambda: lane_indices(b, b.add(row, first), ln))
            for k, ref in enumerate(st.outputs):
                ops[n_in + k].store(i, to_memory(b, get(ref), dtypes[n_in + k]), ln)

        for lo_, hi, step, ln, name in loops:
            with Loop(b, lo_, hi, step, name=name) as inner:
                body(inner.i, ln)
        if lanes > 1:   # the fewer than ``lanes`` elements left: one masked vector
            with b.if_then(b.icmp_signed("<", lo, i1)):
                body(Tail(b, lo, i1, lanes), lanes)
    b.ret_void()
    return m


def _single_element(b, st: Structure, raw, dtypes, o0, o1, i0, i1, inner_size) -> None:
    """The body of a kernel whose every operand has stride 0 (pattern all ``b``): an
    output of stride 0 is one element (``collapse`` drops size-1 dimensions; no other
    dimension may repeat an output's elements), so the call computes that element, when
    its ranges are not empty, in straight-line code: a fifth of the general module's
    time to build and compile (outer walk, vector and remainder loops), for the scalar
    work of an optimiser's step (bias corrections, a learning-rate schedule) or a loss's
    mean."""
    n_in = len(st.inputs)
    ops = [_Operand(b, raw[j], "b", None, LLVM_MEMORY[dtypes[j]]) for j in range(len(dtypes))]
    with b.if_then(b.and_(b.icmp_signed("<", o0, o1), b.icmp_signed("<", i0, i1))):
        for j in range(n_in):
            ops[j].preload(())
        loaders = [(lambda j=j: to_compute(b, ops[j].load(None, 0), dtypes[j])) for j in range(n_in)]
        _env, get = emit_structure(b, st, loaders, 0, index=lambda: b.add(b.mul(o0, inner_size), i0))
        for k, ref in enumerate(st.outputs):
            ops[n_in + k].store(None, to_memory(b, get(ref), dtypes[n_in + k]), 0)
    b.ret_void()


def lane_indices(b, first, lanes: int):
    """The linear indices ``first, first + 1, ...`` of a vector's lanes (``first`` itself
    for a scalar): the outer index times the inner size plus the inner index, which is
    the element's C-order position in the loop's shape (``collapse`` keeps the order)."""
    if not lanes:
        return first
    vty = ir.VectorType(I64, lanes)
    v = b.insert_element(ir.Constant(vty, ir.Undefined), first, ir.Constant(ir.IntType(32), 0))
    v = b.shuffle_vector(v, ir.Constant(vty, ir.Undefined),
                         ir.Constant(ir.VectorType(ir.IntType(32), lanes), [0] * lanes))
    return b.add(v, ir.Constant(vty, list(range(lanes))))


# ------------------------------------------------------------------ the kernel
_KERNELS: dict = {}


class ElementwiseKernel:
    """A compiled-on-demand fused elementwise loop for one graph structure.

    ``kernel(arrays, outs=None) -> list[np.ndarray]``: ``arrays`` match the graph
    inputs (dtype; shapes broadcastable to a common output shape, any strides);
    the outputs are new C-contiguous arrays, or the given ``outs`` (any strides,
    exact output shape and dtype, not overlapping the inputs).
    """

    MAX_PLANS = 256

    def __init__(self, st: Structure):
        self.structure = st
        self.lanes = vector_lanes(st)
        self.n_in = len(st.inputs)
        self.out_dtypes = [np.dtype(st.out_dtype(r)) for r in st.outputs]
        self.in_dtypes = [np.dtype(d) for d in st.inputs]
        self._fns: dict[str, object] = {}
        self._plans: dict = {}

    @classmethod
    def for_graph(cls, graph: Graph) -> "ElementwiseKernel":
        st = structure_of(graph)
        out_shapes = {v.shape for v in graph.outputs}
        full = broadcast_shapes(*(v.shape for v in graph.inputs), *st.const_shapes,
                                *(v.shape for v in graph.outputs), op="elementwise kernel")
        if out_shapes and out_shapes != {full}:
            raise ValueError(f"elementwise kernel: every output must have the full shape {full}, "
                             f"got {sorted(out_shapes)}")
        for n in graph.nodes:
            if get_op(n.op).random and n.out.shape != full:
                raise ValueError(f"elementwise kernel: {n.op} of shape {n.out.shape} cannot run in a "
                                 f"loop over {full} (its values depend on the element positions)")
        # a shape that only a constant or random node gives is the kernel's own (not compiled
        # in: kernels of other such shapes share the code)
        key = st.text if all(s == () for s in st.const_shapes) else (st.text, st.const_shapes)
        kern = _KERNELS.get(key)
        if kern is None:
            kern = _KERNELS.setdefault(key, cls(st))
        return kern

    def llvm_module(self, pattern: str | None = None) -> ir.Module:
        """The LLVM module of one variant (default: every operand contiguous), for dumps."""
        return build_module(self.structure, pattern or "c" * (self.n_in + len(self.out_dtypes)), self.lanes)

    # -- compiled variants
    def function(self, pattern: str):
        fn = self._fns.get(pattern)
        if fn is None:
            st, lanes = self.structure, self.lanes
            key = f"elementwise/{source_stamp(*GENERATOR)}|{st.text}|pattern={pattern}|lanes={lanes}"
            lib = load_or_compile(key, lambda: build_module(st, pattern, lanes), ["lucid_ew"],
                                  label=f"elementwise {pattern} {st.text[:150]}", pipeline=loop_pipeline())
            fn = self._fns[pattern] = KERNEL_ABI(lib.address("lucid_ew"))
        return fn

    # -- planning (pure Python, memoised per shapes/strides)
    def _plan(self, arrays, out_strides):
        st = self.structure
        shape = broadcast_shapes(*(a.shape for a in arrays), *st.const_shapes, op="elementwise kernel")
        if out_strides is None:
            out_strides = [_c_strides(shape, dt.itemsize) for dt in self.out_dtypes]
        strides = [loops.broadcast_strides(a.shape, a.strides, a.itemsize, shape) for a in arrays]
        strides += [[s // dt.itemsize for s in os] for os, dt in zip(out_strides, self.out_dtypes)]
        size = 1
        for d in shape:
            size *= d
        if size == 0:
            return shape, None
        dims, strs = loops.collapse(shape, strides)
        if not dims:
            dims, strs = (1,), [(0,) for _ in strs]
        inner = dims[-1]
        pattern = "".join("b" if s[-1] == 0 else "c" if s[-1] == 1 or inner == 1 else "s" for s in strs)
        outer = dims[:-1]
        template = [len(outer), inner] + [0] * len(strs) + [s[-1] for s in strs] + dim_words(outer, strs)
        n_outer = math.prod(outer)
        nbytes = size * sum(a.itemsize for a in arrays) + size * sum(dt.itemsize for dt in self.out_dtypes)
        from lucid_codegen.runtime import work_split  # (run-time decisions, not generated code: not stamped)
        parallel = work_split.pool_splits(nbytes)
        return shape, (self.function(pattern), template, n_outer, inner, parallel,
                       ctypes.c_int64 * len(template))

    def __call__(self, arrays, outs=None):
        try:
            key = [(a.shape, a.strides, a.dtype) for a in arrays]
        except AttributeError:
            arrays = [np.asarray(a) for a in arrays]
            key = [(a.shape, a.strides, a.dtype) for a in arrays]
        if outs is not None:
            key += [(o.shape, o.strides, o.dtype, o.flags.writeable) for o in outs]
            key.append(None)
        plan = self._plans.get(tuple(key))
        if plan is None:
            arrays, outs, plan = self._checked_plan(arrays, outs, tuple(key))
        shape, run = plan
        if outs is None:
            outs = [np.empty(shape, dt) for dt in self.out_dtypes]
        if run is None:
            return list(outs)
        fn, template, n_outer, inner, parallel, buf_type = run
        buf = buf_type(*template)
        p = 2
        try:
            for a in arrays:
                buf[p] = data_ptr(a)
                p += 1
        except AttributeError:  # numpy scalars share a 0-d array's key
            return self([np.asarray(a) for a in arrays], outs)
        for o in outs:
            buf[p] = data_ptr(o)
            p += 1
        if parallel and loops.num_threads() > 1:
            _run_parallel(fn, buf, n_outer, inner, self.lanes)
        else:
            fn(buf, 0, n_outer, 0, inner)
        return list(outs)

    def bind(self, arrays, outs):
        """``runner(arrays, outs) -> outs`` for calls whose arrays have exactly the layouts
        of these (a plan's step with kept output buffers): the pointers are patched into a
        prepared argument block, nothing else is looked up. None when not worth it (not
        planned yet, empty, or big enough to split across threads)."""
        key = tuple([(a.shape, a.strides, a.dtype) for a in arrays]
                    + [(o.shape, o.strides, o.dtype, o.flags.writeable) for o in outs] + [None])
        plan = self._plans.get(key)
        if plan is None or plan[1] is None or plan[1][4]:
            return None
        fn, template, n_outer, inner, _, buf_type = plan[1]
        return bound_runner(fn, buf_type(*template), (0, n_outer, 0, inner))

    def call_block(self, arrays):
        """What ``eager_call.fast_call`` needs to call this kernel natively for inputs
        with exactly these layouts and one fresh C-contiguous output: ``(address,
        ranges, template, operand positions, output shape, output dtype)``; None for
        several outputs, an empty output, or work big enough to split across threads."""
        if len(self.out_dtypes) != 1:
            return None
        key = tuple([(a.shape, a.strides, a.dtype) for a in arrays])
        plan = self._plans.get(key)
        if plan is None:
            self._checked_plan(list(arrays), None, key)
            plan = self._plans.get(key)
        if plan is None or plan[1] is None or plan[1][4]:
            return None
        fn, template, n_outer, inner = plan[1][:4]
        address = ctypes.cast(fn, ctypes.c_void_p).value
        return (address, (0, n_outer, 0, inner), list(template), list(range(2, 3 + len(arrays))),
                plan[0], self.out_dtypes[0])

    def native_job(self, arrays, outs):
        """This call as a ``native_plan.LoopJob`` (for plans run from native code), or
        None when its layouts were not planned. A kernel big enough to split is split by
        the program (``native_plan._ranges``), one part per thread."""
        from lucid_codegen.runtime.native_plan import LoopJob
        key = tuple([(a.shape, a.strides, a.dtype) for a in arrays]
                    + [(o.shape, o.strides, o.dtype, o.flags.writeable) for o in outs] + [None])
        plan = self._plans.get(key)
        if plan is None or plan[1] is None:
            return None
        fn, template, n_outer, inner = plan[1][:4]
        n = len(arrays)
        from lucid_codegen.runtime import work_split  # (run-time decisions, not generated code: not stamped)
        nbytes = work_split.work_bytes(n_outer * inner * sum(x.itemsize for x in list(arrays) + list(outs)),
                                       n_outer * inner, [node[0] for node in self.structure.nodes])
        return LoopJob(fn, list(template), (0, n_outer, 0, inner), list(range(2, 2 + n)),
                       list(range(2 + n, 2 + n + len(outs))), lanes=max(self.lanes, 1), nbytes=nbytes)

    def _checked_plan(self, arrays, outs, key):
        """Validate a call seen for the first time; memoise its plan when reusable."""
        arrays = [np.asarray(a) for a in arrays]
        if len(arrays) != self.n_in:
            raise ValueError(f"elementwise kernel takes {self.n_in} inputs, got {len(arrays)}")
        for k, (a, dt) in enumerate(zip(arrays, self.in_dtypes)):
            if a.dtype != dt:
                raise TypeError(f"elementwise kernel input {k}: expected {dt}, got {a.dtype}")
        fixed = [_fix_strides(a) for a in arrays]
        reusable = all(f is a for f, a in zip(fixed, arrays))
        if outs is not None:
            outs = list(outs)
            _check_outs(outs, self.out_dtypes, fixed, self.structure)
        plan = self._plan(fixed, None if outs is None else [o.strides for o in outs])
        if reusable:
            if len(self._plans) >= self.MAX_PLANS:
                self._plans.clear()
            self._plans[key] = plan
        return fixed, outs, plan


def bound_runner(fn, buf, ranges):
    """``runner(arrays, outs) -> outs``: a loop kernel's call with its argument block
    ``buf`` prepared once; each call writes the operands' addresses (inputs, then
    outputs, from word 2) and runs ``fn(buf, *ranges)``."""
    def runner(arrays, outs):
        p = 2
        for a in arrays:
            buf[p] = data_ptr(a)
            p += 1
        for o in outs:
            buf[p] = data_ptr(o)
            p += 1
        fn(buf, *ranges)
        return outs
    return runner


def _run_parallel(fn, buf, n_outer, inner, lanes):
    chunks = min(loops.num_threads() * 4, max(n_outer, 1) if n_outer > 1 else 64)
    if n_outer >= chunks:
        bounds = [n_outer * c // chunks for c in range(chunks + 1)]
        loops.parallel_hook(chunks, lambda c: fn(buf, bounds[c], bounds[c + 1], 0, inner))
    else:
        step = -(-inner // chunks)
        step = -(-step // lanes) * lanes
        ranges = [(s, min(s + step, inner)) for s in range(0, inner, step)]
        loops.parallel_hook(len(ranges) * n_outer, lambda c: fn(
            buf, c // len(ranges), c // len(ranges) + 1, *ranges[c % len(ranges)]))


def _c_strides(shape, itemsize):
    out, acc = [], itemsize
    for d in reversed(shape):
        out.append(acc)
        acc *= max(d, 1)
    return list(reversed(out))


def _fix_strides(a):
    """Arrays whose strides are not whole elements (rare views) are copied."""
    if any(s % a.itemsize for s in a.strides):
        return np.ascontiguousarray(a)
    return a


def _check_outs(outs, dtypes, arrays, st):
    shape = broadcast_shapes(*(a.shape for a in arrays), *st.const_shapes, op="elementwise kernel")
    if len(outs) != len(dtypes):
        raise ValueError(f"elementwise kernel has {len(dtypes)} outputs, got {len(outs)} outs")
    for k, (o, dt) in enumerate(zip(outs, dtypes)):
        if not isinstance(o, np.ndarray) or o.shape != shape or o.dtype != dt:
            raise ValueError(f"elementwise kernel: outs[{k}] must be a {dt} array of shape {shape}, "
                             f"got {getattr(o, 'dtype', type(o))}{list(getattr(o, 'shape', ()))}")
        if not o.flags.writeable:
            raise ValueError(f"elementwise kernel: outs[{k}] is read-only")
        if o.size and (any(s % o.itemsize for s in o.strides) or any(
                s == 0 and d > 1 for s, d in zip(o.strides, o.shape))):  # (an empty one: written to nowhere)
            raise ValueError(f"elementwise kernel: outs[{k}] has broadcast or unaligned strides")
