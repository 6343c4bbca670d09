"""Plan steps for the scan ops (``lucid_ir.opnames.SCAN``: ``argmax``, ``argmin``,
``cumsum``; the others, ``cumprod``, ``cumargmax``, ``cumargmin`` and ``argsort``, run
their numpy reference: ``reference_step``): each node is one call of a native kernel of ``scan_kernels``, with its
argument block laid out once per layout of its input.

A step is called like the other kernel steps of ``steps.py``: ``step(x) -> (out,)``
into a new C-contiguous array, ``step.call_into([out], x)`` into a given one (plans'
reused buffers, bounds checking's guarded ones), ``step.native_job(arrays, outs)`` for
native programs, ``step.bind`` for a plan's prepared calls, and ``step.call_block``
for eager calls (``eager_call.fast_call``: the step is its own ``kernel``). The input
may have any strides (negative ones too: a flipped view goes in without a copy);
strides that are not whole elements are copied first.

Layout (Python, memoised per input layout): the dimensions other than the axis are
the output rows (collapsed where they are contiguous together); then

* ``col`` mode when the innermost of them is unit-stride in x and the axis is not
  (``x.argmax(dim=0)``, a channel axis): the kernel streams x row by row, vectorised
  across that innermost dimension;
* ``row`` mode otherwise: each output row scans its own stretch of x (vectorised
  when the axis is unit-stride, for argmax/argmin; argmax/argmin with ``axis=None``
  scan every dimension, in C order, as one row).

Work that ``work_split.pool_splits`` is split across threads (whole rows, or
column ranges of a single row); in a native program the split is the program's
(``work_split.loop_splits``). Every output element is computed by one sequential
pass, so the results are the same bits at any thread count.

>>> import numpy as np
>>> from lucid_ir.builder import GraphBuilder
>>> b = GraphBuilder()
>>> x = b.input((2, 4), "float32")
>>> step = scan_step(b.build([b.emit("argmax", x, axis=1)]).nodes[0])
>>> step(np.array([[3, 1, 3, np.nan], [0, 2, -1, 2]], np.float32))[0]   # first NaN, first of ties
array([3, 1])
"""
from __future__ import annotations

import ctypes
import math

import numpy as np

from lucid_ir.graph import Node

from lucid_codegen.kernels import loops
from lucid_codegen.kernels import scan as scan_kernels
from lucid_codegen.runtime import work_split
from lucid_codegen.kernels.loops import collapse
from lucid_codegen.runtime.index_steps import _c_strides
from lucid_codegen.runtime.pyarray import data_ptr
from lucid_codegen.runtime.reference_step import ReferenceStep
from lucid_codegen.kernels.scan import IN_WORD, OUT_WORD

MAX_LAYOUTS = 64  # prepared blocks kept per step (one per input layout)




def _groups(dims, strides) -> list[int]:
    """Dimension groups ``(size, stride per operand)`` as block words."""
    return [w for d, size in enumerate(dims) for w in (size, *(s[d] for s in strides))]


class _Prepared:
    """One input layout's call: the kernel, its block words (operand words 0), its range
    arguments, how finely it may split (``lanes``: column alignment; 1: whole rows) and
    the bytes it moves."""

    __slots__ = ("fn", "words", "args", "lanes", "nbytes")

    def __init__(self, fn, words, args, lanes, nbytes):
        self.fn, self.words, self.args, self.lanes, self.nbytes = fn, words, args, lanes, nbytes

    @property
    def splits(self) -> bool:
        return work_split.pool_splits(self.nbytes)


class ScanStep:
    """A scan node's native call (see the module docstring)."""

    #: it reads across the axis for each output: never written in place
    same_element_reads = frozenset()

    def __init__(self, node: Node):
        self.node, self.op = node, node.op
        x = node.inputs[0]
        self.in_dtype, self.in_np = x.dtype, np.dtype(x.dtype)
        self.out_shape, self.dtype = node.out.shape, np.dtype(node.out.dtype)
        self.axis = node.attr("axis")
        self.lanes = scan_kernels.lanes_for()     # columns (and cumsum): 8-byte lanes
        self.kernel = self            # eager calls ask the step for its call block
        self._prepared: dict = {}

    # -------------------------------------------------------------- layout
    def _spec(self, mode: str, pattern: str = "c") -> tuple:
        if self.op == "cumsum":
            return ("cumsum", self.in_dtype, mode, self.lanes)
        lanes = scan_kernels.lanes_for(self.in_dtype) if mode == "row" and pattern == "c" else self.lanes
        return ("arg", self.op, self.in_dtype, mode, pattern, lanes)

    def llvm_module(self):
        """The LLVM module of the common variant (row mode, unit-stride axis), for dumps."""
        return scan_kernels.build(self._spec("row"))

    def _prepare(self, x):
        """The ``_Prepared`` call for ``x``'s layout, or None when there is nothing to do."""
        key = (x.shape, x.strides, x.dtype)
        got = self._prepared.get(key, False)
        if got is False:
            if x.dtype != self.in_np:
                raise TypeError(f"{self.op} kernel: expected a {self.in_np} input, got {x.dtype}")
            got = self._plan_cumsum(x) if self.op == "cumsum" else self._plan_arg(x)
            if len(self._prepared) >= MAX_LAYOUTS:
                self._prepared.clear()
            self._prepared[key] = got
        return got

    def _plan_arg(self, x):
        shape, st = x.shape, [s // x.itemsize for s in x.strides]
        nd, axis = len(shape), self.axis
        kept = [] if axis is None or nd == 0 else [d for d in range(nd) if d != axis]
        red = list(range(nd)) if axis is None or nd == 0 else [axis]
        kept_shape = tuple(shape[d] for d in kept)
        n_out = math.prod(kept_shape)
        if n_out == 0:
            return None
        kd, (ks, _) = collapse(kept_shape, [[st[d] for d in kept], _c_strides(kept_shape)])
        rd, (rs,) = collapse(tuple(shape[d] for d in red), [[st[d] for d in red]])
        if not rd:
            rd, rs = (1,), (0,)
        nbytes = x.size * x.itemsize + n_out * 8
        if axis is not None and kd and ks[-1] == 1 and rs[-1] != 1:  # col: one axis, columns inner
            cols = kd[-1]
            words = [len(kd) - 1, rd[0], cols, 0, 0, rs[0], 0] + _groups(kd[:-1], [ks[:-1]])
            return _Prepared(scan_kernels.kernel(self._spec("col")), words,
                             (0, math.prod(kd[:-1]), 0, cols), self.lanes, nbytes)
        words = [len(kd), len(rd) - 1, rd[-1], 0, 0, rs[-1], 0]
        words += _groups(kd, [ks]) + _groups(rd[:-1], [rs[:-1]])
        pattern = "c" if rs[-1] == 1 else "s"
        return _Prepared(scan_kernels.kernel(self._spec("row", pattern)), words,
                         (0, math.prod(kd), 0, 1), 1, nbytes)

    def _plan_cumsum(self, x):
        shape, st = x.shape, [s // x.itemsize for s in x.strides]
        if not shape:  # a scalar: a sum of one element
            shape, st, axis = (1,), [0], 0
        else:
            axis = self.axis
        if 0 in shape:
            return None
        oc = _c_strides(shape)
        kept = [d for d in range(len(shape)) if d != axis]
        kd, (ks, ko) = collapse(tuple(shape[d] for d in kept), [[st[d] for d in kept], [oc[d] for d in kept]])
        n, s_in, s_out = shape[axis], st[axis], oc[axis]
        nbytes = x.size * x.itemsize + math.prod(shape) * self.dtype.itemsize
        if kd and ks[-1] == 1 and ko[-1] == 1 and s_in != 1 and n > 1:
            cols = kd[-1]
            words = [len(kd) - 1, n, cols, 0, 0, s_in, s_out] + _groups(kd[:-1], [ks[:-1], ko[:-1]])
            return _Prepared(scan_kernels.kernel(self._spec("col")), words,
                             (0, math.prod(kd[:-1]), 0, cols), self.lanes, nbytes)
        words = [len(kd), n, 0, 0, 0, s_in, s_out] + _groups(kd, [ks, ko])
        return _Prepared(scan_kernels.kernel(self._spec("row")), words, (0, math.prod(kd), 0, 1), 1, nbytes)

    # -------------------------------------------------------------- calls
    def __call__(self, x):
        return self.call_into([np.empty(self.out_shape, self.dtype)], x)

    def call_into(self, outs, x):
        """The call, writing into ``outs[0]`` (bounds checking: a guarded buffer)."""
        (out,) = outs
        if not out.flags.c_contiguous:  # the kernel writes C order
            np.copyto(out, self(x)[0])
            return (out,)
        x = _aligned(np.asarray(x))
        prep = self._prepare(x)
        if prep is not None:
            block = (ctypes.c_int64 * len(prep.words))(*prep.words)
            block[IN_WORD], block[OUT_WORD] = data_ptr(x), data_ptr(out)
            if prep.splits and loops.num_threads() > 1:
                _run_parallel(prep, block)
            else:
                prep.fn(block, *prep.args)
        return (out,)

    def bind(self, arrays, outs):
        """``runner(arrays, outs) -> outs`` for inputs of exactly this layout (a plan's
        prepared call), or None (work that splits, odd strides, a strided output)."""
        (x,), (out,) = arrays, outs
        if not isinstance(x, np.ndarray) or _odd(x) or not out.flags.c_contiguous:
            return None
        prep = self._prepare(x)
        if prep is None or prep.splits:
            return None
        fn, args = prep.fn, prep.args
        block = (ctypes.c_int64 * len(prep.words))(*prep.words)

        def runner(arrays, outs):
            block[IN_WORD], block[OUT_WORD] = data_ptr(arrays[0]), data_ptr(outs[0])
            fn(block, *args)
            return outs
        return runner

    def call_block(self, arrays):
        """``(kernel address, range arguments, block template, [input word, output
        word], output shape, dtype)`` for ``eager_call.fast_call``; None when this
        layout takes the general path (work that splits, odd strides, nothing to do)."""
        (x,) = arrays
        if not isinstance(x, np.ndarray) or _odd(x):
            return None
        prep = self._prepare(x)
        if prep is None or prep.splits:
            return None
        address = ctypes.cast(prep.fn, ctypes.c_void_p).value
        return address, prep.args, list(prep.words), [IN_WORD, OUT_WORD], self.out_shape, self.dtype

    def native_job(self, arrays, outs):
        """This call as a ``native_plan.LoopJob``, or None."""
        from lucid_codegen.runtime.native_plan import LoopJob
        (x,), (out,) = arrays, outs
        if _odd(x) or not out.flags.c_contiguous:
            return None
        prep = self._prepare(x)
        if prep is None:
            return None
        return LoopJob(prep.fn, list(prep.words), prep.args, [IN_WORD], [OUT_WORD],
                       lanes=prep.lanes, nbytes=prep.nbytes)

    def can_write_into(self, array) -> bool:
        return array.flags.c_contiguous


def _odd(a) -> bool:
    """Strides that are not whole elements (the kernels index by element)."""
    return any(s % a.itemsize for s in a.strides)


def _aligned(a: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(a) if _odd(a) else a


def _run_parallel(prep: _Prepared, block) -> None:
    """Whole rows per chunk, or (one row) column ranges aligned to the vector lanes."""
    _, n_rows, _, cols = prep.args
    threads = loops.num_threads()
    if n_rows >= 2 or prep.lanes == 1:
        chunks = max(1, min(threads * 4, n_rows))
        bounds = [n_rows * c // chunks for c in range(chunks + 1)]
        loops.parallel_hook(chunks, lambda c: prep.fn(block, bounds[c], bounds[c + 1], 0, cols))
        return
    step = -(-(-(-cols // threads)) // prep.lanes) * prep.lanes
    ranges = [(s, min(s + step, cols)) for s in range(0, cols, step)]
    loops.parallel_hook(len(ranges), lambda c: prep.fn(block, 0, 1, *ranges[c]))


#: the scan ops with native kernels; the others run their reference (``ReferenceStep``)
NATIVE_SCANS = ("argmax", "argmin", "cumsum")


def scan_step(node: Node):
    """The plan step of one scan node: a ``ScanStep`` for ``argmax``, ``argmin`` and
    ``cumsum``, else a ``ReferenceStep``."""
    return ScanStep(node) if node.op in NATIVE_SCANS else ReferenceStep(node)
