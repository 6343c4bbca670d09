"""Running a GEMM whose operand is gathered (an im2col patch matrix never written).

A gemm kernel whose body starts with a gather prologue (``lucid_ir.passes.
gather_operand``: the slices, concat and reshape making operand ``k`` from a tensor X)
is called on X itself: the two offset tables of that operand are computed from X's
element strides (once per strides, kept), and their addresses go where the operand's
strides would (``gemm.gather``'s ABI). ``GatherCall`` makes those calls for
``runtime.steps.GemmStep``: a fresh output, an output given, or a native program's job.

>>> import numpy as np, lucid
>>> import lucid.nn.functional as F
>>> x, w = lucid.randn(2, 3, 5, 5, dtype="float64"), lucid.randn(4, 3, 3, 3, dtype="float64")
>>> y = F.conv2d(x, w, padding=1)                      # one GEMM packing from x
>>> import torch
>>> ref = torch.nn.functional.conv2d(torch.tensor(x.numpy()), torch.tensor(w.numpy()), padding=1)
>>> bool(np.allclose(y.numpy(), ref.numpy()))
True
"""
from __future__ import annotations

import numpy as np

from lucid_codegen.runtime.pyarray import data_ptr

__all__ = ["GatherCall", "extra_words"]


def extra_words(extra, has_bias: bool, has_residual: bool, N: int, size: int, r_transposed=False):
    """``(in_words, (rsr, csr))`` of a GEMM job (``native_plan.GemmJob``) whose operands
    after A and B are ``extra`` (the bias, then R): where each operand's address goes
    among the job's words (``spin.GEMM_ARGS`` after the address), and R's strides; None
    when the bias has no unit stride."""
    in_words, r_strides, extra = [5, 8], (0, 0), list(extra)
    if has_bias:
        bias = extra.pop(0)
        if N > 1 and bias.strides[-1] != size:
            return None
        in_words.append(13)
    if has_residual:
        r = extra.pop(0)
        r = r.T if r_transposed else r
        r_strides = (r.strides[0] // size, r.strides[1] // size)
        in_words.append(14)
    return in_words, r_strides


class GatherCall:
    """The calls of a gathered GEMM: ``gathered`` = ``(k, GatherOperand)``, the operand
    ``k`` (0: A, 1: B) read from its source tensor; ``trans``: the other operand's
    transpose flag; ``has_bias`` / ``has_residual``: the extra operands' presence."""

    def __init__(self, gemm, gathered, out_shape, trans: bool, has_bias: bool, has_residual: bool, alpha=1.0):
        self.gemm, (self.k, self.operand) = gemm, gathered
        self.out_shape, self.trans = tuple(out_shape), trans
        self.has_bias, self.has_residual, self.alpha = has_bias, has_residual, alpha
        self.size = gemm.dtype.itemsize
        rows, cols = self.operand.shape
        self.inner = cols if (self.k == 0) != self.operand.flipped else rows  # K
        self._tables: dict = {}   # x's element strides -> (the two tables)

    def tables(self, x) -> tuple:
        """(first, second) int64 tables for source ``x``: (M, K) for a gathered A, (K, N)
        for a gathered B."""
        strides = tuple(s // self.size for s in x.strides)
        t = self._tables.get(strides)
        if t is None:
            rows, cols = self.operand.tables(strides)
            t = self._tables[strides] = (cols, rows) if self.operand.flipped else (rows, cols)
        return t

    def _source(self, x):
        return x if all(s % self.size == 0 for s in x.strides) else np.ascontiguousarray(x)

    def _other(self, y):
        y = y.T if self.trans else y
        return y if all(s % self.size == 0 for s in y.strides) else np.ascontiguousarray(y)

    def into(self, c, a, b, *extra) -> None:
        """C (M, N), unit column stride, overlapping no operand) = the product of the
        gathered operand and the other one, its epilogue applied."""
        M, N = self.out_shape
        size, K = self.size, self.inner
        x = self._source(a if self.k == 0 else b)
        y = self._other(b if self.k == 0 else a)
        first, second = self.tables(x)
        xw = (data_ptr(x), first.ctypes.data, second.ctypes.data)
        yw = (data_ptr(y), y.strides[0] // size, y.strides[1] // size)
        aw, bw = (xw, yw) if self.k == 0 else (yw, xw)
        bias = extra[0] if self.has_bias else None
        if bias is not None and N > 1 and bias.strides[-1] != size:
            bias = np.ascontiguousarray(bias)
        r = extra[-1] if self.has_residual else None
        if r is not None and any(s % size for s in r.strides):
            r = np.ascontiguousarray(r)
        rsr, csr = (r.strides[0] // size, r.strides[1] // size) if r is not None else (0, 0)
        self.gemm.run_ptrs(M, N, K, *aw, *bw, data_ptr(c), c.strides[0] // size,
                           0 if bias is None else data_ptr(bias), 0 if r is None else data_ptr(r),
                           rsr, csr, self.alpha)

    def direct(self, a, b, *extra):
        """A fresh C."""
        c = np.empty(self.out_shape, self.gemm.dtype)
        self.into(c, a, b, *extra)
        return c

    def native_job(self, arrays, c):
        """This call as a ``native_plan.GemmJob`` (C a matrix with unit column stride),
        else None."""
        from lucid_codegen.gemm.kernel import workspace_elems
        from lucid_codegen.runtime.native_plan import GemmJob
        size = self.size
        x, y = (arrays[0], arrays[1]) if self.k == 0 else (arrays[1], arrays[0])
        y = y.T if self.trans else y
        operands = [x, y, c] + list(arrays[2:])
        if any(st % size for v in operands for st in v.strides):
            return None
        M, N = self.out_shape
        K = self.inner
        if N > 1 and c.strides[1] != size:
            return None
        first, second = self.tables(x)
        ys = (y.strides[0] // size, y.strides[1] // size)
        xs = (first.ctypes.data, second.ctypes.data)
        a_s, b_s = (xs, ys) if self.k == 0 else (ys, xs)
        words_of = extra_words(arrays[2:], self.has_bias, self.has_residual, N, size)
        if words_of is None:
            return None
        in_words, r_strides = words_of
        alpha_bits = int(np.float64(self.alpha).view(np.int64))
        words = [self.gemm._address, M, N, K, alpha_bits, 0, *a_s, 0, *b_s, 0, c.strides[0] // size, 0, 0,
                 *r_strides, 0]
        return GemmJob(self.gemm, words, in_words, [11], workspace_elems(self.gemm.spec, M, N, K),
                       2.0 * M * N * K, self.alpha, keep=(first, second))
