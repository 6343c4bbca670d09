"""How a ``GemmStep`` whose product is not plain 2-D (``torch.matmul``'s 1-D operands,
batch axes) runs: its operands as stacks of matrices, viewed without copies, through
the batched GEMM entry (``gemm_batched_call``).

>>> import numpy as np
>>> a, b, c = np.ones(3), np.ones((2, 3, 4)), np.empty((2, 4))
>>> [x.shape for x in matrix_views(a, b, c, False, False)]
[(1, 3), (2, 3, 4), (2, 1, 4)]
"""
from __future__ import annotations

import numpy as np

from lucid_codegen.runtime import threads
from lucid_codegen.gemm.batched_call import describe, run_batched
from lucid_codegen.gemm.call import _TLS, _thread_ws
from lucid_codegen.runtime.pyarray import data_ptr


def matrix_views(a, b, c, trans_a: bool, trans_b: bool, r=None):
    """``(A, B, C[, R])``: views of the operands as (..., M, K), (..., K, N), (..., M, N)
    (a 1-D a is a row, a 1-D b a column, C and R get the dropped axis back)."""
    a2 = a[None, :] if a.ndim == 1 else np.swapaxes(a, -1, -2) if trans_a else a
    b2 = b[:, None] if b.ndim == 1 else np.swapaxes(b, -1, -2) if trans_b else b

    def out_view(x):
        if a.ndim == 1:
            x = np.expand_dims(x, -2) if b.ndim > 1 else x.reshape(1, 1)
        elif b.ndim == 1:
            x = np.expand_dims(x, -1)
        return x
    views = [a2, b2, out_view(c)]
    if r is not None:
        views.append(out_view(r))
    return views


def _operands(step, a, b, c, extra):
    bias = extra[0].reshape(step.n) if step.has_bias else None
    r = extra[-1] if step.has_residual else None
    return matrix_views(a, b, c, step.trans_a, step.trans_b, r) + [None] * (r is None), bias


class BatchedRunner:
    """``run(c, a, b, *extra)``: a step's product written into ``c``. The batch
    descriptor of each layout (and thread count) is made once: a later call of that
    layout reads the operands' addresses (views share them) and makes one native call
    (on this thread's scratch buffer), or hands the units to the thread pool."""

    LIMIT = 64  # layouts kept per step

    def __init__(self, step):
        self.step, self.gemm, self.alpha = step, step.gemm, step.alpha
        self.has_bias, self.has_r = step.has_bias, step.has_residual
        self.plans: dict = {}

    def __call__(self, c, a, b, *extra) -> None:
        key = (a.shape, a.strides, b.shape, b.strides, c.strides, threads.get_num_threads(),
               *[(x.shape, x.strides) for x in extra])
        plan = self.plans.get(key)
        if plan is None:
            plan = self._plan(c, a, b, extra)
            if len(self.plans) >= self.LIMIT:
                self.plans.clear()
            self.plans[key] = plan
        if plan is False or c.size == 0:  # unaligned strides: the general path copies them
            (a2, b2, c2, r2), bias = _operands(self.step, a, b, c, extra)
            run_batched(self.gemm, a2, b2, c2, bias, r2, self.alpha)
            return
        gemm = self.gemm
        bias = data_ptr(extra[0]) if self.has_bias else 0
        r = data_ptr(extra[-1]) if self.has_r else 0
        if len(plan.ranges) == 1:
            try:
                ws, nbytes = _TLS.ws
            except AttributeError:
                ws, nbytes = _thread_ws()
            if plan.ws_elems * gemm._itemsize <= nbytes:
                st = gemm._batched_fn(0, plan.units, plan.desc_address, self.alpha, data_ptr(a), 0, 0,
                                      data_ptr(b), 0, 0, data_ptr(c), 0, bias or None, r or None, 0, 0, ws)
                assert st == 0, f"gemm: batched entry returned {st}"
                return
        (a2, b2, c2, r2), bias = _operands(self.step, a, b, c, extra)
        run_batched(gemm, a2, b2, c2, bias, r2, self.alpha, plan=plan)

    def _plan(self, c, a, b, extra):
        """The layout's ``BatchPlan``, or False when an operand needs a copy first."""
        (a2, b2, c2, r2), bias = _operands(self.step, a, b, c, extra)
        size = c.itemsize
        if any(st % size for x in (a2, b2, c2, r2) if x is not None for st in x.strides) or (
                bias is not None and bias.shape[0] > 1 and bias.strides[0] != size):
            return False
        plan = describe(self.gemm, a2, b2, c2, r2)
        plan.desc_address = data_ptr(plan.desc)
        return plan


def run_into(step, c, a, b, *extra) -> None:
    """The step's product (and epilogue) of ``a``, ``b`` written into ``c``."""
    step.batched_runner(c, a, b, *extra)


def native_job(step, arrays, outs):
    """The step as a ``native_plan.GemmJob`` running the batched entry over all its units
    (its ``units`` say how the program may split them), or None when an operand's
    strides are not whole elements or C's columns are not contiguous."""
    from lucid_codegen.runtime.native_plan import GemmJob
    (c,) = outs
    if c.size == 0:
        return None
    (a2, b2, c2, r2), bias = _operands(step, arrays[0], arrays[1], c, arrays[2:])
    size = c.itemsize
    operands = [x for x in (a2, b2, c2, r2, bias) if x is not None]
    if any(st % size for x in operands for st in x.strides):
        return None
    if (c2.shape[-1] > 1 and c2.strides[-1] != size) or (bias is not None and bias.shape[0] > 1
                                                         and bias.strides[0] != size):
        return None
    plan = describe(step.gemm, a2, b2, c2, r2)
    if plan.units == 0:
        return None
    gemm = step.gemm
    in_words = [5, 8] + [13] * (bias is not None) + [14] * (r2 is not None)
    alpha_bits = int(np.float64(step.alpha).view(np.int64))
    words = [gemm._batched_address, 0, plan.units, plan.desc.ctypes.data, alpha_bits,
             0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]
    return GemmJob(gemm, words, in_words, [11], plan.ws_elems, plan.flop, step.alpha,
                   units=plan.units if len(plan.ranges) > 1 else 0, keep=(plan,))
