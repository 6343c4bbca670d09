"""Plan steps for the indexing ops (``lucid_ir.opnames.INDEXING``): each node is one
call of a kernel of ``index_kernels``, with its argument block prepared once per
layout of its operands.

A step is called like the other kernel steps of ``steps.py``: ``step(*arrays) ->
(out,)`` into a new C-contiguous array, ``step.call_into([out], *arrays)`` into a
given C-contiguous one (plans' reused buffers, bounds checking's guarded ones), and
``step.native_job(arrays, outs)`` for native programs. Operands may have any strides
(negative ones too: a flipped view goes in without a copy); strides that are not
whole elements are copied first. Plans check shapes and dtypes when they are built,
so the calls trust them.

>>> import numpy as np
>>> from lucid_ir.builder import GraphBuilder
>>> b = GraphBuilder()
>>> x, i = b.input((2, 3), "float32"), b.input((2, 2), "int64")
>>> y = b.emit("gather", x, i, axis=1)
>>> step = index_step(b.build([y]).nodes[0])
>>> step(np.arange(6, dtype=np.float32).reshape(2, 3), np.array([[2, 0], [1, 9]]))[0]
array([[2., 0.],
       [4., 0.]], dtype=float32)
"""
from __future__ import annotations

import ctypes

import numpy as np

from lucid_ir.graph import Node

from lucid_codegen.kernels import index as index_kernels
from lucid_codegen.kernels.loops import collapse
from lucid_codegen.runtime.pyarray import data_ptr

MAX_LAYOUTS = 64  # prepared blocks kept per step (one per set of operand layouts)


def _elem_strides(a: np.ndarray) -> list[int]:
    return [s // a.itemsize for s in a.strides]


#: a copy call takes the share ``lo / COPY_SHARES .. hi / COPY_SHARES`` of each part's
#: rows (``index_kernels``' ``copy`` block): a concat's parts, or a copying reshape's one
#: part, write disjoint rows and zero nothing, so a native program splits them across
#: threads as it splits a loop kernel's rows (``LoopJob.lanes``); an embed zeroes its
#: output first and an embed_sum adds overlapping parts: one call does all
COPY_SHARES = 64


def _aligned(a: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(a) if any(s % a.itemsize for s in a.strides) else a


def _walk_dims(shape, strides_list):
    """Collapsed ``(dims, n_rows, inner)``: dims as ``[(size, stride per operand)]``."""
    sizes, strides = collapse(tuple(shape), strides_list)
    if not sizes:
        sizes, strides = (1,), [(0,) for _ in strides_list]
    dims = [(n, *(s[d] for s in strides)) for d, n in enumerate(sizes)]
    n_rows = 1
    for n in sizes[:-1]:
        n_rows *= n
    if 0 in sizes:
        n_rows = 0
    return dims, n_rows, sizes[-1]


class _IndexStep:
    """Shared plumbing: prepared blocks per layout, the three ways to call."""

    #: elementwise reads of the output's own positions: none (no in-place outputs)
    same_element_reads = frozenset()
    in_words: list = []   # block words of the operands' addresses (a copy's vary)
    out_word: int = 0

    def __init__(self, node: Node):
        self.node = node
        self.out_shape, self.dtype = node.out.shape, np.dtype(node.out.dtype)
        self._blocks: dict = {}

    def __call__(self, *arrays):
        return self.call_into([np.empty(self.out_shape, self.dtype)], *arrays)

    def call_into(self, outs, *arrays):
        (out,) = outs
        if not out.flags.c_contiguous:  # the zeroing and offsets assume C order
            tmp = self(*arrays)[0]
            np.copyto(out, tmp)
            return (out,)
        arrays = [_aligned(a) for a in arrays]
        prepared = self._prepare(arrays)
        if prepared is not None:
            fn, words, args, in_words = prepared
            block = (ctypes.c_int64 * len(words))(*words)
            for w, a in zip(in_words, arrays):
                block[w] = data_ptr(a)
            block[self.out_word] = data_ptr(out)
            fn(block, *args)
        return (out,)

    def _prepare(self, arrays):
        """``(kernel, block words, (lo, hi, lo2, hi2), input words)`` for these layouts
        (the operand words left 0), or None when there is nothing to do."""
        key = tuple([(a.shape, a.strides) for a in arrays])
        got = self._blocks.get(key, False)
        if got is False:
            got = self._plan(arrays)
            if len(self._blocks) >= MAX_LAYOUTS:
                self._blocks.clear()
            self._blocks[key] = got
        return got

    def native_job(self, arrays, outs):
        """This call as a ``native_plan.LoopJob``, or None."""
        from lucid_codegen.runtime.native_plan import LoopJob
        (out,) = outs
        if not out.flags.c_contiguous or any(s % a.itemsize for a in arrays for s in a.strides):
            return None
        prepared = self._prepare(list(arrays))
        if prepared is None:  # nothing to compute: a job that does nothing
            return None
        fn, words, args, in_words = prepared
        return LoopJob(fn, list(words), args, list(in_words), [self.out_word],
                       lanes=self.lanes, nbytes=self.work_bytes(arrays))

    def work_bytes(self, arrays) -> int:
        """The bytes a call moves: its operands' and its output's."""
        return int(np.prod(self.out_shape)) * self.dtype.itemsize + sum(a.nbytes for a in arrays)

    def can_write_into(self, array) -> bool:
        return array.flags.c_contiguous

    lanes = 0  # > 0: a native program may split its rows across threads

    @property
    def kernel(self):
        """Eager calls ask the step itself for its call block (``call_block``)."""
        return self

    #: ``call_block`` decides itself whether the call splits across threads
    decides_splits = True

    def call_block(self, arrays):
        """``(kernel address, range arguments, block template, [operand words..., output
        word], output shape, dtype)`` for ``eager_call.fast_call``; None when these
        layouts take the general path (strides that are not whole elements, nothing to
        compute, or rows enough to split across threads)."""
        from lucid_codegen.runtime import work_split
        if any(not isinstance(a, np.ndarray) or any(s % a.itemsize for s in a.strides) for a in arrays):
            return None
        prepared = self._prepare(list(arrays))
        if prepared is None or (self.lanes and work_split.loop_splits(self.work_bytes(arrays))):
            return None
        fn, words, args, in_words = prepared
        address = ctypes.cast(fn, ctypes.c_void_p).value
        return address, args, list(words), list(in_words) + [self.out_word], self.out_shape, self.dtype

    def _plan(self, arrays):
        raise NotImplementedError


class CopyStep(_IndexStep):
    """``concat`` (each input copied into its stretch of the output), ``embed`` (the
    output zeroed, the input copied into its slice) and ``embed_sum`` (the output
    zeroed, each input added into its slice): one ``copy`` (``copy_add``) kernel call."""

    def __init__(self, node: Node):
        super().__init__(node)
        if node.op == "embed_sum":
            self.fn = index_kernels.kernel("copy_add", node.out.dtype)
        else:
            self.fn = index_kernels.kernel("copy", self.dtype.itemsize)
        self.out_word = 1
        if node.op == "concat":  # (see COPY_SHARES)
            self.lanes = 1

    def _slices(self):
        """Each input's ``(starts, steps)`` in the output (embed, embed_sum)."""
        n, attrs = len(self.out_shape), self.node.attr_dict
        k = len(self.node.inputs)
        return [(attrs["starts"][i * n:(i + 1) * n], attrs["steps"][i * n:(i + 1) * n]) for i in range(k)]

    def _plan(self, arrays):
        out_strides = _c_strides(self.out_shape)
        words = [len(arrays), 0, 0]
        in_words, parts = [], []
        if self.node.op == "concat":
            axis, at = self.node.attr("axis"), 0
            for a in arrays:
                parts.append((a, at * out_strides[axis], out_strides))
                at += a.shape[axis]
        else:  # embed, embed_sum: each slice's positions in the output
            words[2] = int(np.prod(self.out_shape, dtype=np.int64))
            for a, (starts, steps) in zip(arrays, self._slices()):
                offset = sum(st * s for st, s in zip(starts, out_strides))
                parts.append((a, offset, [s * step for s, step in zip(out_strides, steps)]))
        tables = []
        for a, offset, ostr in parts:
            in_words.append(len(words))
            tables.append(_copy_part(words, a.shape, ostr, _elem_strides(a), offset, a.itemsize))
        if words[2] == 0 and all(words[at + 2] == 0 for at in in_words):
            return None
        _append_tables(words, in_words, tables)
        shares = COPY_SHARES if self.lanes else 1
        return self.fn, words, (0, shares, 0, shares), in_words


class GatherStep(_IndexStep):
    """``gather[axis](x, index)``: rows of the index's walk may be split across threads."""

    in_words, out_word, lanes = [5, 4], 3, 1

    def __init__(self, node: Node):
        super().__init__(node)
        self.axis = node.attr("axis")
        self.fn = index_kernels.kernel("gather", self.dtype.itemsize)

    def work_bytes(self, arrays) -> int:
        """The index read, and one element of x read and one written per index (not
        all of x: an embedding table is mostly not touched)."""
        index = arrays[1]
        return index.nbytes + 2 * index.size * self.dtype.itemsize

    def _plan(self, arrays):
        x, index = arrays
        axis = self.axis
        if index.size == 0:
            return None
        xs = _elem_strides(x)
        walk_x = [0 if d == axis else s for d, s in enumerate(xs)]
        out_strides = _c_strides(self.out_shape)
        dims, n_rows, inner = _walk_dims(index.shape, [out_strides, _elem_strides(index), walk_x])
        words = [len(dims), x.shape[axis], xs[axis], 0, 0, 0, 0] + [w for d in dims for w in d]
        return self.fn, words, (0, n_rows, 0, inner), self.in_words


class ScatterAddStep(_IndexStep):
    """``scatter_add[axis, shape](index, src)``: one call, the output zeroed first."""

    in_words, out_word = [4, 5], 3

    def __init__(self, node: Node):
        super().__init__(node)
        self.axis = node.attr("axis")
        self.fn = index_kernels.kernel("scatter_add", node.out.dtype)

    def _plan(self, arrays):
        index, src = arrays
        axis = self.axis
        total = int(np.prod(self.out_shape, dtype=np.int64))
        if total == 0:
            return None
        out_strides = _c_strides(self.out_shape)
        walk_out = [0 if d == axis else s for d, s in enumerate(out_strides)]
        dims, n_rows, inner = _walk_dims(index.shape, [walk_out, _elem_strides(index), _elem_strides(src)])
        words = [len(dims), self.out_shape[axis], out_strides[axis], 0, 0, 0, total]
        words += [w for d in dims for w in d]
        return self.fn, words, (0, n_rows, 0, inner), self.in_words


#: most entries of a copy part's gather table (``index_kernels``' ``copy`` block)
TABLE_MAX = 4096


def _copy_part(words: list, shape, out_strides, src_strides, offset: int, itemsize: int):
    """Append a ``copy`` part moving an array of ``shape`` (element strides
    ``src_strides``) to ``out + offset`` at ``out_strides``, its ``table`` word left 0;
    return its gather table (int32 offsets), or None.

    The table serves the part's trailing dimensions over which the output is
    C-contiguous (as many as make at most ``TABLE_MAX`` elements) when their last one
    does not move unit rows (source stride 1 as well): each row of the walk is then the
    table's source offsets gathered into adjacent output elements.

    A transposed ``x`` of shape (2, 3, 2), strides (6, 1, 3), concatenated with another
    along its second dimension (output rows of 12 elements): rows of 6 elements, each
    gathered through one table.

    >>> w = []
    >>> _copy_part(w, (2, 3, 2), [12, 2, 1], [6, 1, 3], 0, 4)
    array([0, 3, 1, 4, 2, 5], dtype=int32)
    >>> w   # [src, offset, rows, ndim, table, (size, s_out, s_src) of each dim]
    [0, 0, 2, 2, 0, 2, 12, 6, 6, 1, 0]
    """
    dims, n_rows, _ = _walk_dims(shape, [out_strides, src_strides])
    if len(dims) > 2 and dims[-1][1:] == (1, 1):
        # unit rows: walked in the source's order (its largest strides outermost), so
        # the rows are read one after the other; each still lands in its place
        dims = sorted(dims[:-1], key=lambda d: -abs(d[2])) + dims[-1:]
    table = _gather_table(dims, itemsize)
    if table is not None:
        k, table = table
        dims = dims[:len(dims) - k] + [(len(table), 1, 0)]
        n_rows = int(np.prod([d[0] for d in dims[:-1]], dtype=np.int64))
    words += [0, offset, n_rows, len(dims), 0] + [w for d in dims for w in d]
    return table


def _gather_table(dims, itemsize: int):
    """``(k, int32 source offsets)`` for a copy walk's last ``k`` dims (see
    ``_copy_part``), or None."""
    if itemsize not in (4, 8) or any(d[0] == 0 for d in dims):
        return None
    if dims[-1][1] != 1 or dims[-1][2] == 1:  # strided output rows, or unit rows
        return None
    k, n = 0, 1
    while k < len(dims) and dims[-1 - k][1] == n and n * dims[-1 - k][0] <= TABLE_MAX:
        n *= dims[-1 - k][0]
        k += 1
    if k == 0:
        return None
    offsets = np.zeros(1, np.int64)
    for size, _, s_src in dims[len(dims) - k:]:
        offsets = (offsets[:, None] + np.arange(size, dtype=np.int64) * s_src).reshape(-1)
    if np.abs(offsets).max() >= 2 ** 31:
        return None
    return k, offsets.astype(np.int32)


def _append_tables(words: list, part_words, tables) -> None:
    """Each part's gather table at the end of the block, two int32 offsets a word, its
    position in the part's ``table`` word."""
    for at, table in zip(part_words, tables):
        if table is None:
            continue
        words[at + 4] = len(words)
        packed = np.zeros(2 * ((len(table) + 1) // 2), np.int32)
        packed[:len(table)] = table
        words += packed.view(np.int64).tolist()


def _c_strides(shape) -> list[int]:
    out, acc = [], 1
    for d in reversed(shape):
        out.insert(0, acc)
        acc *= max(d, 1)
    return out


_STEPS = {"concat": CopyStep, "embed": CopyStep, "embed_sum": CopyStep, "gather": GatherStep,
          "scatter_add": ScatterAddStep}


def index_step(node: Node) -> _IndexStep:
    """The plan step of one ``concat``, ``embed``, ``embed_sum``, ``gather`` or ``scatter_add`` node."""
    return _STEPS[node.op](node)


def reshape_copy_job(src: np.ndarray, out: np.ndarray):
    """A ``native_plan.LoopJob`` copying ``src`` (any element-aligned strides) into the
    C-contiguous ``out`` in ``src``'s C order: a ``reshape`` that cannot be a view (the
    ``transpose(1, 2).reshape(B, T, C)`` of attention heads). None when the layouts do
    not allow it (then the program is not built).

    >>> import numpy as np
    >>> from lucid_codegen.runtime.native_plan import LoopJob
    >>> x = np.arange(6, dtype=np.float32).reshape(2, 3).T
    >>> job = reshape_copy_job(x, np.empty(6, np.float32))
    >>> isinstance(job, LoopJob), job.in_words, job.out_words
    (True, [3], [1])
    """
    from lucid_codegen.runtime.native_plan import LoopJob
    if (src.size != out.size or src.dtype != out.dtype or not out.flags.c_contiguous
            or any(s % src.itemsize for s in src.strides)):
        return None
    words = [1, 0, 0]
    table = _copy_part(words, src.shape, _c_strides(src.shape), _elem_strides(src), 0, src.itemsize)
    _append_tables(words, [index_kernels.COPY_HEAD], [table])
    fn = index_kernels.kernel("copy", src.itemsize)
    return LoopJob(fn, words, (0, COPY_SHARES, 0, COPY_SHARES), [index_kernels.COPY_HEAD], [1],
                   lanes=1, nbytes=2 * out.nbytes)
