"""Row kernels: building, caching and calling them (``RowKernel``).

``RowKernel.for_graph(graph)`` takes the body of a ``rows`` kernel (``fuse_rows``) and
returns a callable cached per structure (``RowStructure.text``), never per size: the
row length, the number of rows and the strides are run-time arguments. A call plans its
layout once (memoised per shapes and strides): the inputs' strides broadcast to the
rows' shape X, the outer dimensions collapsed, one letter per input for its stride
along the row, and whether the row's stash fits on the stack.

>>> import numpy as np
>>> from lucid_ir.builder import GraphBuilder
>>> b = GraphBuilder()
>>> x = b.input((2, 3))
>>> e = b.emit("exp", b.emit("sub", x, b.emit("max", x, axes=(1,), keepdims=True)))
>>> g = b.build([b.emit("div", e, b.emit("sum", e, axes=(1,), keepdims=True))])
>>> RowKernel.for_graph(g)([np.zeros((2, 3), np.float32)])[0] * 3
array([[1., 1., 1.],
       [1., 1., 1.]], dtype=float32)

Threads take whole rows (``native_job``'s parts, or ``loops.parallel_hook`` chunks), so
the results are the same bits at any thread count.
"""
from __future__ import annotations

import ctypes

import numpy as np

from lucid_ir.graph import Graph
from lucid_ir.ops import get_op
from lucid_ir.types import broadcast_shapes

from lucid_codegen.kernels import loops
from lucid_codegen.jit.cache import load_or_compile, source_stamp
from lucid_codegen.jit.llvm import loop_pipeline
from lucid_codegen.kernels.elementwise import bound_runner, checked_plan, planned
from lucid_codegen.runtime.pyarray import data_ptr
from lucid_codegen.kernels.row_codegen import build_module
from lucid_codegen.kernels.row_structure import STASH_BYTES, RowStructure
from lucid_codegen.jit.target import host_target
from lucid_codegen.kernels.vector_math import ITEMSIZE

__all__ = ["RowKernel"]

GENERATOR = ("kernels.row_kernel", "kernels.row_codegen", "kernels.row_structure", "kernels.accumulate",
             "kernels.elementwise", "kernels.loops", "kernels.tail", "kernels.lowering", "kernels.vector_math",
             "kernels.vector_explog", "kernels.vector_trig", "kernels.vector_erf",
             "kernels.erf_coefficients", "kernels.vector_random", "runtime.pyarray")
KERNEL_ABI = ctypes.CFUNCTYPE(None, ctypes.POINTER(ctypes.c_int64), ctypes.c_int64,
                              ctypes.c_int64, ctypes.c_int64, ctypes.c_int64)
_KERNELS: dict = {}


def row_lanes(rs: RowStructure) -> int:
    """One vector register of the widest value of a row (an accumulator is wider: LLVM
    splits it). Per-row values are scalars and do not count: layer norm's ``eps``, a
    float64 number cast to float32 once per row, leaves float32 rows their full width.

    >>> from lucid_ir.builder import GraphBuilder
    >>> b = GraphBuilder()
    >>> x, eps = b.input((4, 8)), b.input((), "float64")
    >>> m = b.emit("mean", b.emit("mul", x, x), axes=(1,), keepdims=True)
    >>> y = b.emit("mul", x, b.emit("rsqrt", b.emit("add", m, b.emit("cast", eps, dtype="float32"))))
    >>> row_lanes(RowStructure.of(b.build([y]))) == host_target().vector_bytes // 4
    True
    """
    widest = max([ITEMSIZE[d] for d, level in rs.inputs if level == "r"]
                 + [ITEMSIZE[n[3]] for n in rs.nodes if n[4] == "r"], default=4)
    return max(1, host_target().vector_bytes // widest)


class RowKernel:
    """``kernel(arrays, outs=None) -> outputs`` for one rows group's structure.

    ``arrays`` match the body's inputs (dtypes; shapes broadcastable to the rows' shape
    X, any strides). The outputs are X-shaped (one value per element) or
    ``X[:-1] + (1,)``-shaped (one per row; ``X[:-1]`` for a final reduction), new
    C-contiguous arrays or ``outs``.
    """

    MAX_PLANS = 256

    def __init__(self, rs: RowStructure, rank: int):
        self.structure, self.rank = rs, rank
        self.lanes = row_lanes(rs)
        self.in_dtypes = [np.dtype(d) for d, _ in rs.inputs]
        self.out_dtypes = [np.dtype(rs.dtype(r)) for r in rs.outputs]
        self.out_kinds = ["r" if rs.level(r) == "r" else "f" if flat else "s"
                         for r, flat in zip(rs.outputs, rs.flat)]
        self.picky = [rs.nodes[k][0] for k in range(len(rs.nodes))
                      if rs.nodes[k][0] in ("max", "min")]  # no value for an empty row
        self.stash_per_element = rs.stash_bytes(lambda d: ITEMSIZE[d])
        self._fns: dict = {}
        self._plans: dict = {}

    @classmethod
    def for_graph(cls, graph: Graph) -> "RowKernel":
        rs = RowStructure.of(graph)
        rank = len(next(n for n in graph.nodes if get_op(n.op).row_reduction).inputs[0].shape)
        key = (rs.text, rank)
        kern = _KERNELS.get(key)
        if kern is None:
            kern = _KERNELS.setdefault(key, cls(rs, rank))
        return kern

    def llvm_module(self, pattern: str | None = None, stash: bool = True):
        """The LLVM module of one variant (default: contiguous inputs), for dumps."""
        return build_module(self.structure, pattern or "c" * len(self.in_dtypes), self.lanes, stash)

    def function(self, pattern: str, stash: bool):
        fn = self._fns.get((pattern, stash))
        if fn is None:
            rs, lanes = self.structure, self.lanes
            key = (f"rows/{source_stamp(*GENERATOR)}|{rs.text}|pattern={pattern}|lanes={lanes}"
                   f"|stash={stash}")
            lib = load_or_compile(key, lambda: build_module(rs, pattern, lanes, stash), ["lucid_rows"],
                                  label=f"rows {pattern} {rs.text[:150]}", pipeline=loop_pipeline())
            fn = self._fns[(pattern, stash)] = KERNEL_ABI(lib.address("lucid_rows"))
        return fn

    # -------------------------------------------------------------- planning
    def _plan(self, arrays):
        """(output shapes, run) for these arrays; run None when there is nothing to do."""
        rs = self.structure
        x_shape = broadcast_shapes(*(a.shape for a in arrays), op="row kernel")
        if len(x_shape) != self.rank:
            raise ValueError(f"row kernel: inputs broadcast to {x_shape}, expected rank {self.rank}")
        R = x_shape[-1]
        stats = x_shape[:-1] + (1,)
        for k, ((_, level), a) in enumerate(zip(rs.inputs, arrays)):
            last = a.shape[-1] if a.ndim else 1
            if (level == "s" and last != 1) or (level == "r" and last != R):
                raise ValueError(f"row kernel: input {k} of shape {a.shape} does not fit rows {x_shape}")
        shapes = [{"r": x_shape, "s": stats, "f": x_shape[:-1]}[r] for r in self.out_kinds]
        n_rows = 1
        for d in x_shape[:-1]:
            n_rows *= d
        if n_rows == 0:
            return shapes, None
        if R == 0 and self.picky:
            raise ValueError(f"{self.picky[0]}: cannot reduce an empty axis of a tensor of shape {x_shape}")
        strides = [loops.broadcast_strides(a.shape, a.strides, a.itemsize, x_shape) for a in arrays]
        dims, strs = loops.collapse(x_shape[:-1], [s[:-1] for s in strides])
        if not dims:
            dims, strs = (1,), [(0,) for _ in strides]
        istr = [s[-1] for s in strides]
        pattern = "".join("b" if s == 0 else "c" if s == 1 else "s" for s in istr)
        stash = R * self.stash_per_element <= STASH_BYTES
        n, m = len(arrays), len(self.out_dtypes)
        template = [len(dims), R] + [0] * (n + m) + istr + loops.dim_words(dims, strs)
        nbytes = n_rows * R * (sum(a.itemsize for a in arrays) + sum(dt.itemsize for dt in self.out_dtypes))
        from lucid_codegen.runtime import work_split  # (run-time decisions, not generated code: not stamped)
        return shapes, (self.function(pattern, stash), template, n_rows, work_split.pool_splits(nbytes),
                        ctypes.c_int64 * len(template), nbytes)

    def _checked_plan(self, arrays, key):
        return checked_plan(self, "row", arrays, key)

    def _planned(self, arrays):
        return planned(self, arrays)

    # -------------------------------------------------------------- calls
    def __call__(self, arrays, outs=None):
        arrays, (shapes, run) = self._planned(arrays)
        if outs is not None:
            for k, (o, shape, dt) in enumerate(zip(outs, shapes, self.out_dtypes)):
                if not isinstance(o, np.ndarray) or o.shape != shape or o.dtype != dt:
                    raise ValueError(f"row kernel: outs[{k}] must be a {dt} array of shape {shape}")
        results = [o if outs is not None and o.flags.c_contiguous else np.empty(shape, dt)
                   for o, shape, dt in zip(outs or [None] * len(shapes), shapes, self.out_dtypes)]
        if run is not None:
            fn, template, n_rows, parallel, buf_type, _ = run
            buf = buf_type(*template)
            p = 2
            for a in list(arrays) + results:
                buf[p] = data_ptr(a)
                p += 1
            if parallel and loops.num_threads() > 1:
                chunks = max(1, min(loops.num_threads() * 4, n_rows))
                bounds = [n_rows * c // chunks for c in range(chunks + 1)]
                loops.parallel_hook(chunks, lambda c: fn(buf, bounds[c], bounds[c + 1], 0, 0))
            else:
                fn(buf, 0, n_rows, 0, 0)
        if outs is not None:
            for o, r in zip(outs, results):
                if o is not r:
                    o[...] = r
            return list(outs)
        return results

    def bind(self, arrays, outs):
        """``runner(arrays, outs) -> outs`` for calls with exactly these layouts and
        C-contiguous outputs (see ``ElementwiseKernel.bind``); None when not worth it."""
        plan = self._plans.get(tuple([(a.shape, a.strides, a.dtype) for a in arrays]))
        if (plan is None or plan[1] is None or plan[1][3]
                or not all(o.flags.c_contiguous for o in outs)):
            return None
        fn, template, n_rows, _, buf_type, _ = plan[1]
        return bound_runner(fn, buf_type(*template), (0, n_rows, 0, 0))

    def call_block(self, arrays):
        """What ``eager_call.fast_call`` needs for one output (see
        ``ElementwiseKernel.call_block``), or None."""
        if len(self.out_dtypes) != 1:
            return None
        self._planned(list(arrays))
        plan = self._plans.get(tuple([(a.shape, a.strides, a.dtype) for a in arrays]))
        if plan is None:  # (a layout copied first: not callable as it is)
            return None
        shapes, run = plan
        if run is None or run[3]:
            return None
        fn, template, n_rows = run[:3]
        address = ctypes.cast(fn, ctypes.c_void_p).value
        n = len(arrays)
        return (address, (0, n_rows, 0, 0), list(template), list(range(2, 3 + n)), shapes[0],
                self.out_dtypes[0])

    def native_job(self, arrays, outs):
        """This call as a ``native_plan.LoopJob``: parts of whole rows only."""
        from lucid_codegen.runtime.native_plan import LoopJob
        plan = self._plans.get(tuple([(a.shape, a.strides, a.dtype) for a in arrays]))
        if (plan is None or plan[1] is None or not all(o.flags.c_contiguous for o in outs)):
            return None
        fn, template, n_rows, _, _, nbytes = plan[1]
        n = len(arrays)
        elements = max([a.size for a in arrays] + [o.size for o in outs], default=0)
        from lucid_codegen.runtime import work_split  # (run-time decisions, not generated code: not stamped)
        nbytes = work_split.work_bytes(nbytes, elements, [node[0] for node in self.structure.nodes])
        return LoopJob(fn, list(template), (0, n_rows, 0, 0), list(range(2, 2 + n)),
                       list(range(2 + n, 2 + n + len(outs))),
                       lanes=self.lanes if n_rows > 1 else 0, nbytes=nbytes)
