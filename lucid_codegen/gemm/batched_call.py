"""Calling the batched GEMM entry (``gemm_batched``) on numpy arrays.

>>> import numpy as np
>>> from lucid_codegen.gemm.call import GemmSpec, get_gemm
>>> from lucid_codegen.gemm.epilogue import Epilogue
>>> g = get_gemm(GemmSpec("float64", Epilogue.chain("float64", bias=True)))
>>> a = np.arange(24.0).reshape(2, 3, 4); b = np.ones((4, 2))      # b broadcasts
>>> c = np.empty((2, 3, 2))
>>> run_batched(g, a, b, c, bias=np.array([0.0, 100.0]))
>>> bool(np.array_equal(c, a @ b + [0.0, 100.0]))
True

``run_batched(gemm, a, b, c, bias=None, r=None, alpha=1.0)``: ``c[i] = E(alpha *
a[i] @ b[i], bias, r[i])`` (E the kernel's epilogue) for every batch index ``i`` of
``c``; a is (..., M, K), b (..., K, N), their batch axes broadcast to c's, with any
strides (a transposed view is read in place, a broadcast axis has stride 0); r has c's
shape (A's for a ``gate_a`` kernel) or broadcasts to it; c has unit column stride and
overlaps no operand but r (``GemmStep.same_element_reads``). Operands whose strides are
not whole elements are copied. Shapes are the caller's to check (``GemmStep`` built them
from a checked graph).

Work that ``split_pays`` (the 2-D cost model on the whole stack) is split across the
thread pool: whole products when they share out evenly (or there are many), else each
product also into row (or column) parts as a 2-D GEMM is (``split_spans``); then the
units into one contiguous range per thread. A unit's bits do not depend on who runs it.
"""
from __future__ import annotations

import numpy as np

from lucid_codegen.runtime import threads
from lucid_codegen.gemm.kernel import workspace_elems
from lucid_codegen.gemm.batched import AXIS_WORDS, DESC_HEAD
from lucid_codegen.gemm.call import _aligned, _give_ws, _take_ws, split_pays, split_spans
from lucid_codegen.runtime.pyarray import data_ptr

__all__ = ["run_batched", "describe", "BatchPlan"]


class BatchPlan:
    """The descriptor of one layout and thread count (``describe``): ``desc`` (the int64
    words the entry reads), ``units``, ``ranges`` (one ``(lo, hi)`` per thread) and
    ``ws_elems`` (scratch elements each range needs)."""

    __slots__ = ("desc", "units", "ranges", "ws_elems", "flop", "desc_address")

    def __init__(self, desc, units, ranges, ws_elems, flop):
        self.desc, self.units, self.ranges, self.ws_elems, self.flop = desc, units, ranges, ws_elems, flop


def _elements(strides, size):
    return [s // size for s in strides]


def describe(gemm, a, b, c, r=None, num_threads: int | None = None) -> BatchPlan:
    """The batch descriptor for these arrays (strides in whole elements, c's batch shape
    the broadcast of a's and b's, r broadcast to c's or for ``gate_a`` to a's)."""
    spec, size = gemm.spec, gemm._itemsize
    batch = c.shape[:-2]
    M, N = c.shape[-2:]
    gemm.prepare(M, N, a.strides[-1] // size, *_elements(b.strides[-2:], size))
    K = a.shape[-1]
    nd = len(batch)
    sa = np.broadcast_to(a, batch + a.shape[-2:]).strides[:nd]
    sb = np.broadcast_to(b, batch + b.shape[-2:]).strides[:nd]
    sc = c.strides[:nd]
    if r is not None:
        r_full = np.broadcast_to(r, batch + (r.shape[-2:] if spec.gate_a else (M, N)))
        sr, (rsr, csr) = r_full.strides[:nd], _elements(r_full.strides[nd:], size)
    else:
        sr, rsr, csr = (0,) * nd, 0, 0
    axes = [k for k in range(nd) if batch[k] != 1]
    nb = 1
    for k in axes:
        nb *= batch[k]
    flop = 2.0 * nb * M * N * K
    nt = 1
    if nb and split_pays(nb * M, N, K, size):
        nt = threads.get_num_threads() if num_threads is None else max(1, int(num_threads))
    parts, split_m, step = 1, 1, max(M, 1)
    if 1 < nt and (nb < nt or (nb % nt and nb < 4 * nt)):  # else whole products balance
        split = split_spans(M, N, -(-nt // nb) if nb < nt else nt, gemm._mr, gemm._nr)
        if split is not None:
            split_m, spans = split
            parts, step = len(spans), spans[0][1]
    units = nb * parts
    n_ranges = max(1, min(nt, units))
    ranges = [(units * k // n_ranges, units * (k + 1) // n_ranges) for k in range(n_ranges)]
    rows = step if (parts > 1 and split_m) else M
    cols = step if (parts > 1 and not split_m) else N
    last = (M - step * (parts - 1)) if split_m else (N - step * (parts - 1))
    ws = workspace_elems(spec, max(rows, last) if split_m else M, N if split_m else max(cols, last), K)
    head = [M, N, K, *_elements(a.strides[-2:], size), *_elements(b.strides[-2:], size),
            c.strides[-2] // size, rsr, csr, len(axes), parts, int(bool(split_m)), step, ws]
    words = head + [w for k in axes for w in (batch[k], sa[k] // size, sb[k] // size, sc[k] // size,
                                               sr[k] // size)]
    assert len(head) == DESC_HEAD and len(words) == DESC_HEAD + AXIS_WORDS * len(axes)
    return BatchPlan(np.array(words, np.int64), units, ranges, ws, flop)


def _aligned_operand(x, size):
    if x is None or all(s % size == 0 for s in x.strides):
        return x
    return np.ascontiguousarray(x)


def run_batched(gemm, a, b, c, bias=None, r=None, alpha: float = 1.0, plan: BatchPlan | None = None) -> None:
    """Run the stack of products (see the module docstring); ``plan``: a ``describe`` of
    exactly these layouts, when the caller keeps one."""
    if c.size == 0:
        return
    size = gemm._itemsize
    a, b, r = _aligned_operand(a, size), _aligned_operand(b, size), _aligned_operand(r, size)
    if bias is not None and bias.shape[0] > 1 and bias.strides[0] != size:
        bias = np.ascontiguousarray(bias)
    if plan is None:
        plan = describe(gemm, a, b, c, r)
    if plan.units == 0:
        return
    desc = data_ptr(plan.desc)
    ptrs = [data_ptr(a), data_ptr(b), data_ptr(c), data_ptr(bias) if bias is not None else 0,
            data_ptr(r) if r is not None else 0]
    bufs = [_take_ws(plan.ws_elems * size) for _ in plan.ranges]
    try:
        if len(plan.ranges) == 1:
            st = gemm._batched_fn(0, plan.units, desc, alpha, ptrs[0], 0, 0, ptrs[1], 0, 0, ptrs[2], 0,
                                  ptrs[3] or None, ptrs[4] or None, 0, 0, _aligned(bufs[0]))
            assert st == 0, f"gemm: batched entry returned {st}"
            return
        alpha_bits = int(np.float64(alpha).view(np.int64))
        threads.run_native([(gemm._batched_address, lo, hi, desc, alpha_bits, ptrs[0], 0, 0, ptrs[1], 0, 0,
                             ptrs[2], 0, ptrs[3], ptrs[4], 0, 0, _aligned(buf))
                            for (lo, hi), buf in zip(plan.ranges, bufs)])
    finally:
        for buf in bufs:
            _give_ws(buf)
