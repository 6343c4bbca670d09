"""Differential fuzzer: random graphs, compiled (fused and unfused, 1 and 2 threads, with
bounds checking) against the reference interpreter; gradients against float64 central
finite differences.

    python tests/fuzz.py --seconds 300 --out fuzz-failures [--seed 0]

Each failing case is written to ``--out`` as a graph file (``lucid-ir run FILE`` replays
it on seeded random inputs), plus ``FILE.npz`` (the exact inputs) and ``FILE.txt`` (what
disagreed). As a library: ``run_case(seed)`` returns a list of failure descriptions,
``fuzz(seconds, out, seed)`` loops.

Tolerances: a float32 graph is also built in float64 from the same seed (and a float64
graph in float32), so the interpreter's own rounding noise |ref32 - ref64| measures how
ill-conditioned each output is; the allowed error is ``rtol·|ref| + atol·scale + C·noise``
with rtol 1e-4 (float32) or 1e-9 (float64). NaN positions and infinities must match;
integer and bool outputs (argmax indices, integer sums and cumsums, masks) exactly.

Graphs hold float32/float64 values and, unless ``Gen.integers`` is off (the gradient
graphs), int32/int64/bool inputs and values too: the twin keeps those as they are.
"""
from __future__ import annotations

import argparse
import contextlib
import os
import sys
import time
import traceback

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))

from lucid_ir.builder import GraphBuilder  # noqa: E402
from lucid_ir.graph import Graph  # noqa: E402
from lucid_ir.interpreter import interpret  # noqa: E402
from random_graphs import gemm_epilogue, row_chain  # noqa: E402  (this folder: the script's, or pytest's)

DIMS = [0, 1, 1, 1, 2, 2, 3, 3, 4, 5, 7, 8, 9, 13, 16, 17, 31, 33]
BIG_DIMS = [64, 97, 130, 145, 257]
UNARY = ["neg", "exp", "tanh", "sigmoid", "log"]
BINARY = ["add", "sub", "mul", "div", "maximum"]
COMPARISON = ["gt", "ge", "lt", "le", "eq"]
INTEGER = ["int32", "int64", "bool"]   # kept as they are in the precision twin
MAX_ELEMS = 6000


class Gen:
    """One random graph. Every choice comes from ``rng`` and none depends on the dtype,
    so the same seed with ``force`` set to another dtype gives the same graph in that
    dtype (the precision reference)."""

    def __init__(self, seed: int, force: str | None = None):
        self.rng = np.random.default_rng(seed)
        rng = self.rng
        self.dtype = "float32" if rng.random() < 0.5 else "float64"
        self.force = force
        self.hostile = rng.random() < 0.15   # inputs hold inf/nan/0; raw log, exp and div
        self.big = rng.random() < 0.1        # larger matmuls (GEMM blocking paths)
        self.b = GraphBuilder()
        self.arrays: list[np.ndarray] = []
        self.exact: set = set()              # values computed without rounding
        self.broadcast_inputs = True         # some inputs are 0-stride views
        self.integers = True                 # int32/int64/bool inputs and values (argmax...)

    # -- helpers
    def dt(self, dtype: str) -> str:
        return dtype if dtype in INTEGER else self.force or dtype

    def pick(self, seq):
        return seq[int(self.rng.integers(len(seq)))]

    def shape(self, rank=None):
        rng = self.rng
        rank = int(rng.integers(0, 5)) if rank is None else rank
        for _ in range(20):
            s = tuple(self.pick(DIMS) for _ in range(rank))
            if int(np.prod(s)) <= MAX_ELEMS:
                return s
        return (1,) * rank

    def new_input(self, shape, dtype):
        rng = self.rng
        if dtype in INTEGER:  # small values (many ties); hostile: the type's limits too
            a = np.asarray(rng.integers(-3, 4, shape))
            if dtype != "bool" and self.hostile and a.size:
                info = np.iinfo(dtype)
                a = np.where(rng.random(shape) < 0.05, np.where(a > 0, info.max, info.min), a)
            a = np.asarray(a > 0) if dtype == "bool" else a.astype(dtype)
        else:
            a = rng.standard_normal(shape)
            if self.hostile and a.size:
                special = np.array([np.inf, -np.inf, np.nan, 0.0, -0.0])
                mask = rng.random(shape) < 0.15
                a = np.where(mask, special[rng.integers(0, 5, size=shape)], a)
            a = a.astype(self.dt(dtype))
        if shape and rng.random() < 0.1 and self.broadcast_inputs:  # a 0-stride (broadcast, read-only) input
            small = tuple(1 if rng.random() < 0.5 else d for d in shape)
            a = np.broadcast_to(a[tuple(slice(0, d) for d in small)], shape)
        self.arrays.append(a)
        v = self.b.input(shape, self.dt(dtype))
        self.exact.add(v)
        return v

    def emit(self, op, *args, exact=False, **attrs):
        v = self.b.emit(op, *args, **attrs)
        if exact:
            self.exact.add(v)
        return v

    def const(self, value, shape, dtype):
        v = self.b.constant(value, shape, self.dt(dtype))
        self.exact.add(v)
        return v

    def broadcast_partner_shape(self, shape):
        rng = self.rng
        s = [1 if rng.random() < 0.3 else d for d in shape]
        drop = int(rng.integers(0, len(s) + 1)) if rng.random() < 0.4 else 0
        s = s[drop:]
        if rng.random() < 0.1 and len(s) < 4 and int(np.prod(shape)) * 3 <= MAX_ELEMS:
            s = [int(self.pick([2, 3]))] + s  # the partner widens the result
        return tuple(s)

    def same_dtype(self, v, dtype):
        return v if v.dtype == self.dt(dtype) else self.emit("cast", v, dtype=self.dt(dtype),
                                                             exact=v in self.exact)

    # -- ops
    def step(self, pool, dtypes):
        rng, b = self.rng, self.b
        k = int(rng.integers(len(pool)))
        x, xdt = pool[k], dtypes[k]
        r = rng.random()
        if self.integers and x.dtype in INTEGER:
            return self.integer_step(x, r)
        if r < 0.18:
            op = self.pick(UNARY)
            if op in ("exp", "log") and not self.hostile:
                x = self.emit("tanh", x) if op == "exp" else self.emit(
                    "add", self.emit("mul", x, x), self.const(1.0, (), xdt))
            return self.emit(op, x, exact=op == "neg" and x in self.exact), xdt
        if r < 0.45:
            op = self.pick(BINARY)
            c = rng.random()
            if c < 0.25:
                other = self.new_input(self.broadcast_partner_shape(x.shape), xdt)
            elif c < 0.4:
                other = self.const(float(np.round(rng.standard_normal(), 3)), (), xdt)
            else:
                same = [(v, d) for v, d in zip(pool, dtypes) if v.shape == x.shape]
                other, odt = same[int(rng.integers(len(same)))]
                other = self.same_dtype(other, xdt)
            if op == "div" and not self.hostile:
                other = self.emit("add", self.emit("mul", other, other), self.const(0.5, (), xdt))
            a, c2 = (x, other) if rng.random() < 0.5 else (other, x)
            if op == "div" and not self.hostile:
                a, c2 = x, other  # the positive value is the denominator
            ex = op == "maximum" and a in self.exact and c2 in self.exact
            return self.emit(op, a, c2, exact=ex), xdt
        if r < 0.52:
            if x not in self.exact:  # comparisons only of exact values: no rounding flips
                return None
            op = self.pick(COMPARISON)
            other = self.const(0.0, (), xdt) if rng.random() < 0.5 else x
            if other is x:
                same = [v for v in pool if v.shape == x.shape and v in self.exact]
                other = self.same_dtype(self.pick(same), xdt)
            mask = self.emit(op, x, other, exact=True)
            if rng.random() < 0.5:
                return mask, xdt
            alt = self.emit("neg", x, exact=x in self.exact)
            return self.emit("select", mask, x, alt, exact=x in self.exact), xdt
        if r < 0.64 and x.shape and x.shape[-1] != 1 and rng.random() < 0.3:
            return self.row_chain(x, xdt), xdt
        if r < 0.64 and x.shape:
            op = self.pick(["sum", "mean", "max"])
            nd = len(x.shape)
            axes = tuple(int(a) for a in np.flatnonzero(rng.random(nd) < 0.5))
            if rng.random() < 0.15:
                axes = None
            keep = bool(rng.random() < 0.5)
            red_axes = range(nd) if axes is None else axes
            if op == "max" and any(x.shape[a] == 0 for a in red_axes):
                op = "sum"
            if op == "mean" and any(x.shape[a] == 0 for a in red_axes):
                op = "sum"  # mean of nothing: NaN on both sides, but a division by zero
            y = self.emit(op, x, axes=axes, keepdims=keep, exact=op == "max" and x in self.exact)
            if rng.random() < 0.5 and keep:
                y = self.emit("add", x, y)  # broadcast back
            return y, xdt
        if r < 0.76:
            return self.movement(x), xdt
        if r < 0.9:
            y = self.attention(x, xdt) if r >= 0.88 else self.matmul(x, xdt)
            return None if y is None else (y, xdt)
        if r < 0.93:
            to = self.pick(["float32", "float64"])
            return self.emit("cast", x, dtype=self.dt(to), exact=x in self.exact and to == "float64"), to
        if r < 0.95 and x.shape:
            ax = int(rng.integers(len(x.shape)))
            io = self.emit("iota", shape=x.shape, axis=ax, dtype=self.dt(xdt))
            self.exact.add(io)
            return self.emit(self.pick(["add", "mul"]), x, io), xdt
        if r < 0.975:
            return self.random(x, xdt), xdt
        return self.scan(x, xdt)

    def row_chain(self, x, xdt):
        """A reduction over the last axis with elementwise work before and after it (the
        fusion's rows groups): ``random_graphs.row_chain``."""
        return row_chain(self.rng, x, self.emit, lambda v: self.const(v, (), xdt),
                         lambda shape: self.new_input(shape, xdt))

    def axis_of(self, x, allow_none=True):
        """A random axis of x (None: every element), or False when x has no such axis
        with elements."""
        rng = self.rng
        if allow_none and (not x.shape or rng.random() < 0.2):
            return None if int(np.prod(x.shape)) else False
        if not x.shape:
            return 0
        ax = int(rng.integers(-len(x.shape), len(x.shape)))
        return ax

    def scan(self, x, xdt):
        """cumsum of a float value; argmax/argmin of an exact one (no rounding flips)."""
        rng = self.rng
        op = self.pick(["cumsum", "argmax", "argmin"])
        if op == "cumsum":
            return self.emit("cumsum", x, axis=self.axis_of(x, allow_none=False)), xdt
        if not self.integers or x not in self.exact:
            return None
        return self.arg(op, x)

    def arg(self, op, x):
        ax = self.axis_of(x)
        if ax is False or ax is not None and x.shape and x.shape[ax] == 0:
            return None
        return self.emit(op, x, axis=ax, keepdims=bool(self.rng.random() < 0.5), exact=True), "int64"

    def integer_step(self, x, r):
        """An op on an int32/int64/bool value (all exact: integer arithmetic wraps the
        same way in numpy and in the kernels)."""
        rng, d = self.rng, x.dtype
        if r < 0.25:
            return self.arg(self.pick(["argmax", "argmin"]), x)
        if r < 0.45:
            return self.emit("cumsum", x, axis=self.axis_of(x, allow_none=False), exact=True), "int64"
        if r < 0.6 and d != "bool":
            other = (self.new_input(self.broadcast_partner_shape(x.shape), d) if rng.random() < 0.6
                     else self.const(int(rng.integers(-3, 4)), (), d))
            op = self.pick(["add", "sub", "mul", "maximum"])
            a, c = (x, other) if rng.random() < 0.5 else (other, x)
            return self.emit(op, a, c, exact=True), d
        if r < 0.7:
            return self.movement(x), d
        if r < 0.8 and x.shape:
            axes = tuple(int(a) for a in np.flatnonzero(rng.random(len(x.shape)) < 0.5))
            return self.emit("sum", x, axes=axes, keepdims=bool(rng.random() < 0.5), exact=True), "int64"
        if r < 0.9:
            return self.emit(self.pick(COMPARISON), x, self.const(0, (), d), exact=True), "bool"
        to = self.dtype  # back into the graph's float dtype (large ints round: not exact)
        return self.emit("cast", x, dtype=self.dt(to), exact=d == "bool"), to

    def random(self, x, xdt):
        """Counter-based random numbers of x's shape from a key that is a graph input
        (so the case stays a function of the seed): a dropout-style mask (uniform numbers
        are the reference's bit for bit, so the comparison is exact), or normal ones added."""
        rng = self.rng
        key = self.b.input((), "int64")
        self.arrays.append(np.array(int(rng.integers(-2 ** 63, 2 ** 63 - 1, dtype=np.int64)), np.int64))
        if rng.random() < 0.6:
            u = self.emit("random_uniform", key, shape=x.shape, dtype=self.dt(xdt), exact=True)
            p = self.const(float(self.pick([0.1, 0.5, 0.9])), (), xdt)
            keep = self.emit("cast", self.emit("ge", u, p, exact=True), dtype=self.dt(xdt), exact=True)
            return self.emit("mul", x, keep, exact=x in self.exact)
        z = self.emit("random_normal", key, shape=x.shape, dtype=self.dt(xdt))
        return self.emit("add", x, z)

    def movement(self, x):
        rng = self.rng
        ex = x in self.exact
        c = rng.random()
        if c < 0.35 and x.shape:
            perm = tuple(int(p) for p in rng.permutation(len(x.shape)))
            return self.emit("transpose", x, perm=perm, exact=ex)
        if c < 0.7:
            size = int(np.prod(x.shape))
            if size == 0:
                shape = tuple(self.pick([0, 1, 2]) if i else 0 for i in range(int(rng.integers(1, 4))))
            else:
                shape, rest = [], size
                for p in (2, 3, 5, 7, 11, 13):
                    while rest % p == 0 and rng.random() < 0.6:
                        shape.append(p)
                        rest //= p
                shape.append(rest)
                rng.shuffle(shape)
                if rng.random() < 0.3:
                    shape.insert(int(rng.integers(len(shape) + 1)), 1)
                if len(shape) > 4:
                    shape = [int(np.prod(shape[:-3]))] + shape[-3:]
                if rng.random() < 0.3:
                    shape[int(rng.integers(len(shape)))] = -1
            return self.emit("reshape", x, shape=tuple(shape), exact=ex)
        shape = tuple(x.shape)
        if len(shape) < 4 and (int(np.prod(shape)) * 3 <= MAX_ELEMS) and rng.random() < 0.5:
            shape = (int(self.pick([0, 1, 2, 3])),) + shape
        shape = tuple(self.pick([2, 3]) if d == 1 and rng.random() < 0.5
                      and int(np.prod(shape)) * 3 <= MAX_ELEMS else d for d in shape)
        return self.emit("broadcast_to", x, shape=shape, exact=ex)

    def matmul(self, x, xdt):
        rng = self.rng
        if len(x.shape) in (3, 4) and int(np.prod(x.shape)) and rng.random() < 0.3:
            return self.im2col_matmul(x, xdt)
        if len(x.shape) in (1, 3, 4) and int(np.prod(x.shape)) and rng.random() < 0.6:
            return self.batched_matmul(x, xdt)
        if len(x.shape) != 2:
            if int(np.prod(x.shape)) == 0 and len(x.shape) != 2:
                return None
            x = self.emit("reshape", x, shape=(-1, x.shape[-1]) if x.shape and x.shape[-1] else (1, -1))
        if self.big and rng.random() < 0.5:
            x = self.new_input((self.pick(BIG_DIMS), self.pick(BIG_DIMS)), xdt)
        ta, tb = bool(rng.random() < 0.4), bool(rng.random() < 0.5)
        m, k = x.shape
        if ta:  # op(A) = A.T = x: A is x's transpose (a view)
            x = self.emit("transpose", x, exact=x in self.exact)
        n = self.pick(BIG_DIMS) if self.big else self.pick(DIMS)
        if m * n > MAX_ELEMS * (8 if self.big else 1):
            n = 1
        w = self.new_input((n, k) if tb else (k, n), xdt)
        y = self.emit("matmul", x, w, trans_a=ta, trans_b=tb)
        return self.epilogue(y, xdt) if rng.random() < 0.5 else y

    def im2col_matmul(self, x, xdt):
        """A convolution's GEMM on x seen channels-last (batch, *spatial, channels): each
        tap of a random kernel (stride, dilation) a strided slice, the taps concatenated
        along the channels and the leading axes merged (an im2col gather, which the GEMM
        packs straight from x), A against a weight (with an epilogue), or B of a weight
        gradient ``g^T · patches``."""
        rng = self.rng
        n, *spatial, c = x.shape
        kernel, stride, dilation = [], [], []
        for size in spatial:
            k, st, dl = int(self.pick([1, 2, 3])), int(self.pick([1, 2])), int(self.pick([1, 2]))
            while (k - 1) * dl + 1 > size:
                k, dl = max(k - 1, 1), 1
            kernel.append(k), stride.append(st), dilation.append(dl)
        out = [(size - (k - 1) * dl - 1) // st + 1 for size, k, st, dl in zip(spatial, kernel, stride, dilation)]
        taps = []
        for offset in np.ndindex(*kernel):
            starts = tuple(o * dl for o, dl in zip(offset, dilation))
            stops = tuple(a + (m - 1) * st + 1 for a, m, st in zip(starts, out, stride))
            taps.append(self.emit("slice", x, starts=(0, *starts, 0), stops=(n, *stops, c),
                                  steps=(1, *stride, 1)))
        cat = self.emit("concat", *taps, axis=len(x.shape) - 1) if len(taps) > 1 else taps[0]
        rows, cols = n * int(np.prod(out)), len(taps) * c
        a = self.emit("reshape", cat, shape=(rows, cols))
        k_out = self.pick(DIMS[1:])
        if rows * k_out > MAX_ELEMS or cols * k_out > MAX_ELEMS:
            k_out = 1
        if rng.random() < 0.3:  # the weight gradient: g^T (k_out, rows) . patches (rows, cols)
            return self.emit("matmul", self.new_input((rows, k_out), xdt), a, trans_a=True)
        # the input gradient: col2im of g (rows, k_out) . w (k_out, cols); finite inputs only:
        # its rewrite (lucid_ir.passes.col2im) multiplies the spread gradient's zeros by w,
        # so an inf in w is NaN where no tap reaches (documented there)
        if rng.random() < 0.3 and not self.hostile:
            q = self.emit("reshape", self.emit("matmul", self.new_input((rows, k_out), xdt),
                                               self.new_input((k_out, cols), xdt)), shape=(n, *out, cols))
            blocks = [self.emit("slice", q, starts=(0,) * (len(out) + 1) + (t * c,), stops=(n, *out, (t + 1) * c),
                                steps=(1,) * (len(out) + 2)) for t in range(len(taps))]
            at = [((0, *[o * dl for o, dl in zip(offset, dilation)], 0)) for offset in np.ndindex(*kernel)]
            return self.emit("embed_sum", *blocks, shape=x.shape, starts=sum(at, ()),
                             stops=sum(((n, *[a + (m - 1) * st + 1 for a, m, st in zip(s[1:-1], out, stride)], c)
                                        for s in at), ()), steps=(1, *stride, 1) * len(at))
        tb = bool(rng.random() < 0.5)
        y = self.emit("matmul", a, self.new_input((k_out, cols) if tb else (cols, k_out), xdt), trans_b=tb)
        return self.epilogue(y, xdt) if rng.random() < 0.5 else y

    def epilogue(self, y, xdt):
        """Random elementwise work on a product, the GEMM's epilogue: bias rows,
        activations, residuals, masks, activations' derivatives
        (``random_graphs.gemm_epilogue``)."""
        return gemm_epilogue(self.rng, y, self.emit, lambda v: self.const(v, (), xdt),
                             lambda shape: self.new_input(shape, xdt))

    def attention(self, x, xdt):
        """The fused ``attention`` op with x as q (..., L, E): keys and values of a random
        length (longer ones cross the kernels' 64-blocks), causal or not; the output part
        (a view of the packed result) or the packed result itself (so gradients reach
        the log-sum-exp part too)."""
        from lucid_ir.ops.attention import attention_parts
        rng = self.rng
        if len(x.shape) < 2 or x.dtype in INTEGER:
            return None
        lead, e = x.shape[:-2], x.shape[-1]
        s = int(self.pick(BIG_DIMS[:3] if self.big else [d for d in DIMS if d]))
        ev = int(self.pick([1, 2, 3, 8, 17]))
        if int(np.prod(lead)) * s * max(e, ev) > MAX_ELEMS * (8 if self.big else 1):
            s = 1
        attrs = {"is_causal": bool(rng.random() < 0.6)}
        # causal: an inf or NaN in a masked key's k or v leaves the result unspecified
        # (lucid_ir.ops.attention: it depends on the kernels' blocking, as PyTorch's), so
        # those stay finite; q, and everything when not causal, may be hostile
        hostile, self.hostile = self.hostile, self.hostile and not attrs["is_causal"]
        k, v = self.new_input((*lead, s, e), xdt), self.new_input((*lead, s, ev), xdt)
        self.hostile = hostile
        if rng.random() < 0.3:
            attrs["scale"] = float(self.pick([0.5, 1.0, 2.0]))
        packed = self.emit("attention", x, k, v, **attrs)
        if rng.random() < 0.3:
            return packed
        return attention_parts(self.b, packed, (*lead, x.shape[-2], ev))[0]

    def batched_matmul(self, x, xdt):
        """``torch.matmul`` beyond 2-D (the batched GEMM entry): x as a stack of matrices
        (or a vector) against B with broadcast, 1-sized or missing batch axes, either side
        transposed, with elementwise work the kernel may absorb (``epilogue``)."""
        rng = self.rng
        ex = x in self.exact
        if len(x.shape) == 1:
            k = x.shape[0]
            batch, m, ta = (self.pick([2, 3]),) if rng.random() < 0.5 else (), 1, False
        else:
            batch, (m, k) = x.shape[:-2], x.shape[-2:]
            ta = bool(rng.random() < 0.4)
            if ta:  # op(A) = x: A is x with its last two axes swapped (a view)
                nd = len(x.shape)
                x = self.emit("transpose", x, perm=tuple(range(nd - 2)) + (nd - 1, nd - 2), exact=ex)
            batch = tuple(1 if rng.random() < 0.3 else d for d in batch)
            if batch and rng.random() < 0.3:
                batch = batch[1:]
        tb = bool(rng.random() < 0.5) and len(x.shape) > 1
        vector_b = len(x.shape) > 1 and rng.random() < 0.15
        n = self.pick(DIMS)
        out_rows = int(np.prod(np.broadcast_shapes(x.shape[:-2], batch))) * (m or 1)
        if max(out_rows, int(np.prod(batch)) * k) * n > MAX_ELEMS:
            n = 1
        if vector_b:
            w = self.new_input((k,), xdt)
            return self.emit("matmul", x, w, trans_a=ta)
        w = self.new_input(batch + ((n, k) if tb else (k, n)), xdt)
        y = self.emit("matmul", x, w, trans_a=ta, trans_b=tb)
        if len(x.shape) == 1:
            return y
        return self.epilogue(y, xdt) if rng.random() < 0.5 else y

    def build(self, n_ops=None):
        rng = self.rng
        n_ops = int(rng.integers(1, 12)) if n_ops is None else n_ops
        pool, dtypes = [], []
        for _ in range(int(rng.integers(1, 3))):
            d = self.dtype
            if rng.random() < 0.25 and self.integers:
                d = self.pick(INTEGER)
            v = self.new_input(self.shape(), d)
            pool.append(v)
            dtypes.append(d)
        made = []
        tries = 0
        while len(made) < n_ops and tries < 4 * n_ops + 8:
            tries += 1
            try:
                out = self.step(pool, dtypes)
            except (ValueError, TypeError):
                out = None  # an invalid combination: skip it (its rng draws are consumed)
            if out is None:
                continue
            v, d = out
            pool.append(v)
            dtypes.append(d)
            made.append(v)
        candidates = made or pool
        n_out = min(len(candidates), int(rng.integers(1, 4)))
        idx = sorted(set(int(i) for i in rng.choice(len(candidates), size=n_out, replace=False)))
        outs = [candidates[-1]] + [candidates[i] for i in idx if candidates[i] is not candidates[-1]]
        return self.b.build(outs), self.arrays


def make_case(seed: int, force: str | None = None):
    g = Gen(seed, force)
    graph, arrays = g.build()
    return g, graph, arrays


def layouts(arrays, rng):
    """The same values in other memory layouts: transposed, negative-stride, padded."""
    out = []
    for a in arrays:
        c = rng.random()
        if a.ndim == 0 or c < 0.4:
            out.append(a)
        elif c < 0.6:
            out.append(np.asfortranarray(a))
        elif c < 0.8:  # negative strides along one axis
            ax = int(rng.integers(a.ndim))
            out.append(np.flip(np.ascontiguousarray(np.flip(a, axis=ax)), axis=ax))
        else:
            pad = np.empty(a.shape[:-1] + (a.shape[-1] * 2 + 1,), a.dtype)
            view = pad[..., 1::2][..., :a.shape[-1]]
            view[...] = a
            out.append(view)
    for v in out:
        if rng.random() < 0.3:
            v.setflags(write=False)
    return out


# --------------------------------------------------------------------- checking
def tolerance(dtype: str):
    return (1e-4, 1e-5) if dtype == "float32" else (1e-9, 1e-11)


def compare(got, want, noise, dtype, what):
    """None if ``got`` matches ``want`` (see module doc), else a description. ``noise``:
    the extra error allowed, one number or one per element (``twin_noise``)."""
    if got.shape != want.shape:
        return f"{what}: shape {got.shape} != reference {want.shape}"
    if got.dtype != want.dtype:
        return f"{what}: dtype {got.dtype} != reference {want.dtype}"
    if want.dtype.kind in "biu":  # indices, integer sums, masks: exactly
        if not np.array_equal(got, want):
            idx = tuple(int(i) for i in np.argwhere(got != want)[0])
            return f"{what}: got {got[idx]!r}, reference {want[idx]!r} at {idx} (integers differ)"
        return None
    g, w = got.astype(np.float64), want.astype(np.float64)
    noise = np.broadcast_to(np.asarray(noise, np.float64), w.shape)
    # an element with an infinite allowance (its twin is finite where it is not, or the
    # reverse: ``twin_noise``) may be NaN or infinite on one side only: a value at a
    # discontinuity (relu of a sum that cancels to about 0, then x / x) is NaN or 1
    # depending on the last bit of the sum
    free = np.isinf(noise)
    gn, wn = np.isnan(g) & ~free, np.isnan(w) & ~free
    if not np.array_equal(gn, wn):
        idx = np.argwhere(gn != wn)[0]
        return (f"{what}: NaN positions differ (first at {tuple(idx)}: got {g[tuple(idx)]}, "
                f"reference {w[tuple(idx)]})")
    gi, wi = np.isinf(g) & ~wn & ~free, np.isinf(w) & ~free
    if not np.array_equal(np.where(gi, g, 0), np.where(wi, w, 0)):
        idx = np.argwhere((gi != wi) | (np.where(gi, g, 0) != np.where(wi, w, 0)))[0]
        return f"{what}: infinities differ at {tuple(idx)}: got {g[tuple(idx)]}, reference {w[tuple(idx)]}"
    fin = ~(wn | wi | free | np.isnan(w) | np.isinf(w))
    if not fin.any():
        return None
    rtol, atol = tolerance(dtype)
    scale = float(np.abs(w[fin]).max()) + 1.0
    noise = noise[fin]
    allowed = rtol * np.abs(w[fin]) + atol * scale + noise
    with np.errstate(invalid="ignore"):
        err = np.abs(g[fin] - w[fin])
        bad = err > allowed
    if bad.any():
        k = int(np.flatnonzero(bad)[np.argmax((err - allowed)[bad])])
        idx = tuple(int(i) for i in np.argwhere(fin)[k])
        return (f"{what}: error {err[k]:.3g} > allowed {allowed[k]:.3g} at {idx} "
                f"(got {g[fin][k]!r}, reference {w[fin][k]!r}, scale {scale:.3g}, noise {noise[k]:.3g}; "
                f"{int(bad.sum())} element(s) out of tolerance)")
    return None


def precision_noise(seed, dtype, graph, arrays, want, make=None):
    """Per output, an array of allowed extra error per element: how much the interpreter's
    answer moves with the precision (see the module doc and ``twin_noise``). ``make(seed,
    force)`` builds the twin (default ``make_case``).

    A float32 graph with matrix products is also interpreted with each product's terms
    summed in the reverse order (:func:`reversed_products`): a product that cancels
    rounds differently in each order (the compiled GEMM has an order of its own), and one
    order's error can happen to be small at an element where another's is not, so each
    element keeps the larger of the two estimates."""
    other = "float64" if dtype == "float32" else "float32"
    try:
        _, g2, a2 = (make or make_case)(seed, force=other)
        with np.errstate(all="ignore"):  # (integer inputs, random keys, stay as they are)
            ref2 = interpret(g2, [a.astype(other) if a.dtype.kind == "f" else a for a in arrays])
    except Exception:  # noqa: BLE001 - the other precision could not be built: no estimate
        ref2 = [None] * len(want)
    noise = [twin_noise(w, r, dtype) for w, r in zip(want, ref2)]
    if dtype == "float32" and any(n.op == "matmul" for n in graph.nodes):
        with reversed_products(), np.errstate(all="ignore"):
            again = interpret(graph, arrays)
        noise = [np.maximum(n, twin_noise(w, r, dtype)) for n, w, r in zip(noise, again, ref2)]
    if any(n.op in ZEROED for n in graph.nodes):
        for nudge in (0, 1, -1):
            with zeroed_cancellations(nudge), np.errstate(all="ignore"):
                again = interpret(graph, arrays)
            noise = [np.maximum(n, _finiteness_noise(w, z)) for n, w, z in zip(noise, want, again)]
            if nudge:
                noise = [np.maximum(n, _cancellation_noise(w, z)) for n, w, z in zip(noise, want, again)]
    return noise


def _cancellation_noise(want, other):
    """How far each finite element of ``want`` moves when its sums that cancel within
    their rounding error are that error instead (``zeroed_cancellations``' nudged run):
    another summation order may leave any value in that range. (int64 extremes cast to
    float64 and summed with small numbers: each order loses other small terms to the
    huge partial sums, seed 695789490.) Elsewhere none."""
    w, o = np.asarray(want, np.float64), np.asarray(other, np.float64)
    if w.shape != o.shape:
        return np.zeros(w.shape)
    with np.errstate(all="ignore"):
        return np.where(np.isfinite(w) & np.isfinite(o), np.abs(w - o), 0.0)


#: the ops whose results ``zeroed_cancellations`` sets to 0 where they cancel
ZEROED = ("sum", "mean", "matmul")


def _finiteness_noise(want, other):
    """An infinite allowance where ``want`` and ``other`` are not the same kind of value
    (finite, NaN, +inf, -inf); none elsewhere."""
    w, o = np.asarray(want, np.float64), np.asarray(other, np.float64)
    if w.shape != o.shape:
        return np.zeros(w.shape)

    def kind(x):
        return np.where(np.isnan(x), 3, np.where(np.isinf(x), np.sign(x), 0))
    return np.where(kind(w) != kind(o), np.inf, 0.0)


@contextlib.contextmanager
def zeroed_cancellations(nudge: int = 0):
    """While active, the interpreter's sums, means and matrix products are exactly 0
    wherever their value is within their rounding error of 0 (``n · eps · Σ|terms|``),
    or with ``nudge`` 1 or -1, that error itself with that sign: one summation order
    gives 0 there, another a tiny number of either sign, and a division or log by it
    later is NaN, +inf or -inf in one and finite in the other (a row sum of layer-normed
    values, 0 in the compiled order, ~1e-17 in numpy's, then x / that). Every other
    element keeps numpy's value.

    >>> from lucid_ir.ops import get_op
    >>> x = np.array([[0.1, 0.2, -0.3], [1.0, 2.0, 3.0]])
    >>> with zeroed_cancellations():
    ...     s = get_op("sum").evaluate([x], {"axes": (1,), "keepdims": False})
    >>> s.tolist(), "evaluate" in vars(get_op("sum"))
    ([0.0, 6.0], False)
    """
    from lucid_ir.ops import get_op
    real = {name: get_op(name).evaluate for name in ZEROED}

    def zeroed(name):
        def evaluate(arrays, attrs):
            out = np.asarray(real[name](arrays, attrs))
            if out.dtype.kind != "f":
                return out
            if name == "matmul":
                a, b = (np.abs(np.asarray(x, np.float64)) for x in arrays)
                bound_sum = np.asarray(real[name]([a, b], attrs), np.float64)
                k = np.shape(arrays[0])[-2 if attrs["trans_a"] else -1] if np.ndim(arrays[0]) else 1
            else:
                x = np.abs(np.asarray(arrays[0], np.float64))
                axes = attrs["axes"]
                bound_sum = np.sum(x, axis=axes, keepdims=attrs["keepdims"])
                k = int(np.prod([x.shape[i] for i in axes]))
                if name == "mean":
                    bound_sum = bound_sum / max(k, 1)
            bound = max(k, 1) * np.finfo(out.dtype).eps * bound_sum
            with np.errstate(invalid="ignore"):
                near = np.abs(out) <= bound
                return np.where(near, (nudge * bound).astype(out.dtype), out)
        return evaluate
    with _evaluating({name: zeroed(name) for name in ZEROED}):
        yield


@contextlib.contextmanager
def _evaluating(replacements: dict):
    """The interpreter evaluates op ``name`` with ``replacements[name]`` while active
    (an instance attribute over the op's own method, removed afterwards)."""
    from lucid_ir.ops import get_op
    ops = [get_op(name) for name in replacements]
    for op, fn in zip(ops, replacements.values()):
        op.evaluate = fn
    try:
        yield
    finally:
        for op in ops:
            del op.evaluate


@contextlib.contextmanager
def reversed_products():
    """The interpreter's ``matmul`` sums each product's terms in the reverse order of the
    contracted axis while this is active (the same terms: another rounding of them).

    >>> from lucid_ir.ops import get_op
    >>> a, b = np.arange(6.0).reshape(2, 3), np.arange(12.0).reshape(3, 4)   # exact sums
    >>> with reversed_products():
    ...     same = get_op("matmul").evaluate([a, b], {"trans_a": False, "trans_b": False})
    >>> bool(np.array_equal(same, a @ b)), "evaluate" in vars(get_op("matmul"))
    (True, False)
    """
    def evaluate(arrays, attrs):
        a, b = arrays
        a = np.swapaxes(a, -1, -2) if attrs["trans_a"] else a
        b = np.swapaxes(b, -1, -2) if attrs["trans_b"] else b
        return np.asarray(np.matmul(a[..., ::-1], b[..., ::-1, :] if b.ndim > 1 else b[::-1]))
    with _evaluating({"matmul": evaluate}):
        yield


NOISE_FLOOR_QUANTILE = 0.9


def twin_noise(want, twin, dtype):
    """Allowed extra error of each element of ``want`` (computed in ``dtype``), from its
    ``twin`` (the same graph computed in the other precision, or None if there is none).

    Element by element: 8·|want - twin| (in float64 units, scaled to float64's epsilon for
    a float64 graph), at least the output's 90th percentile of those (rounding noise is
    spread unevenly, but one ill-conditioned element in ten cannot widen the rest).
    An element whose twin is finite where it is not (or the reverse: float32 overflows
    where float64 does not) has no estimate and an infinite allowance, alone: it cannot
    hide an error anywhere else. Without a twin, every element gets no allowance at all
    (only ``rtol`` and ``atol``) rather than an infinite one.

    >>> x = np.array([100.0, 1.0])
    >>> with np.errstate(over="ignore"):
    ...     w = np.exp(x.astype(np.float32))            # inf in float32...
    >>> noise = twin_noise(w, np.exp(x), "float32")     # ...finite in float64
    >>> bool(np.isinf(noise[0])), bool(noise[1] < 1e-5)  # the second element keeps its own
    (True, True)
    """
    if twin is None or np.shape(twin) != np.shape(want):
        return np.zeros(np.shape(want))
    with np.errstate(all="ignore"):
        w, t = np.asarray(want, np.float64), np.asarray(twin, np.float64)
        d = np.abs(w - t)
        both = np.isfinite(w) & np.isfinite(t)
        d = np.where(both, d, 0.0)
        if dtype == "float64":
            d = d * 2.0 ** -29  # float32 noise, scaled to float64's epsilon
        noise = 8.0 * d
        if noise.size:
            noise = np.maximum(noise, float(np.quantile(noise, NOISE_FLOOR_QUANTILE)))
    return np.where(np.isfinite(w) != np.isfinite(t), np.inf, noise)


@contextlib.contextmanager
def env(name, value):
    old = os.environ.get(name)
    os.environ[name] = value
    try:
        yield
    finally:
        if old is None:
            del os.environ[name]
        else:
            os.environ[name] = old


@contextlib.contextmanager
def low_thread_thresholds(native: bool):
    """Make small work split across threads, so 2-thread runs exercise the split paths
    (restored afterwards; kernels' memoised plans keep the split they were planned with).
    ``native``: the splits native programs make (GEMM parts and elementwise ranges posted
    by fork/join records); else the step-by-step path's (elementwise kernels this big
    keep plans off native programs)."""
    from lucid_codegen.runtime import work_split as w
    saved = w.PARALLEL_BYTES, w.GEMM_SPLIT_SECONDS, w.LOOP_SPLIT_BYTES
    if native:
        w.GEMM_SPLIT_SECONDS, w.LOOP_SPLIT_BYTES = 2.5e-7, 256
    else:
        w.PARALLEL_BYTES, w.GEMM_SPLIT_SECONDS = 4096, 2.5e-7
    try:
        yield
    finally:
        w.PARALLEL_BYTES, w.GEMM_SPLIT_SECONDS, w.LOOP_SPLIT_BYTES = saved


def run_case(seed: int, grad: bool | None = None):
    """Fuzz one seed; return ``(graph, arrays, failures)``."""
    with low_thread_thresholds(native=seed % 2 == 0):
        return _run_case(seed, grad)


def _run_case(seed, grad):
    from lucid.compiler import compile_graph
    from lucid_codegen.runtime import threads
    g, graph, arrays = make_case(seed)
    failures = []
    with np.errstate(all="ignore"):
        want = interpret(graph, arrays)
    # the least precise dtype anywhere in the graph sets the tolerance
    dtypes = {v.dtype for v in graph.inputs} | {n.out.dtype for n in graph.nodes}
    dtype = "float32" if "float32" in dtypes else "float64"
    noise = precision_noise(seed, dtype, graph, arrays, want)
    rng = np.random.default_rng(seed + 1)
    feeds = layouts(arrays, rng)
    old_threads = threads.get_num_threads()
    try:
        # bounds-checked plans (guards around every output), then a plain plan run four
        # times: its later calls take the prepared paths (kept buffers, bound calls, then
        # the native program of the whole plan, on 1 and on 2 threads)
        got = None
        for fusion, checked, runs in (("1", "1", (1, 2)), ("0", "1", (1, 2)), ("1", "0", (1, 2, 1, 2))):
            try:
                with env("LUCID_FUSION", fusion), env("LUCID_CHECK_BOUNDS", checked):
                    compiled = compile_graph(graph, f"fuzz{seed}")
            except Exception as e:  # noqa: BLE001
                failures.append(f"compile (fusion={fusion}) raised {type(e).__name__}: {e}\n"
                                + traceback.format_exc(limit=6))
                continue
            for k, n in enumerate(runs):
                threads.set_num_threads(n)
                what = f"fusion={fusion} checked={checked} threads={n} run {k}"
                # a later run reads copies at other addresses (same memory order where
                # numpy keeps it): prepared calls must follow the new pointers
                run_feeds = feeds if k < 2 else [np.copy(f, order="K") for f in feeds]
                held = got if k == 3 else None  # the caller keeps run 2's outputs...
                got = None                      # ...or has dropped them (buffers reused)
                try:
                    with np.errstate(all="ignore"):
                        got = compiled(run_feeds)
                except Exception as e:  # noqa: BLE001
                    failures.append(f"{what}: run raised {type(e).__name__}: {e}\n"
                                    + traceback.format_exc(limit=6))
                    continue
                for i, (o, w) in enumerate(zip(got, want)):
                    msg = compare(np.asarray(o), w, noise[i], dtype, f"{what} output {i}")
                    if msg:
                        failures.append(msg)
                for i, (o, w) in enumerate(zip(held or (), want)):
                    msg = compare(np.asarray(o), w, noise[i], dtype, f"{what}: run 2's output {i} (kept)")
                    if msg:
                        failures.append(msg)
                if any(a.tobytes() != b.tobytes() for a, b in zip(feeds, arrays)):
                    failures.append(f"{what}: an input array was modified")
    finally:
        threads.set_num_threads(old_threads)
    if grad is None:
        grad = seed % 3 == 0
    if grad:
        failures += check_gradients(seed)
    return graph, arrays, failures


# -------------------------------------------------------------------- gradients
def check_gradients(seed: int):
    """Small float64 graphs: the compiled backward graph vs central differences."""
    from lucid.compiler import compile_graph
    from lucid_ir.passes import autodiff
    global DIMS, MAX_ELEMS
    saved = DIMS, MAX_ELEMS
    DIMS, MAX_ELEMS = [1, 2, 3, 4], 24
    try:
        g = Gen(seed * 7 + 3, force="float64")
        g.hostile, g.big = False, False
        g.integers = False  # float inputs and values only: each has a gradient
        g.broadcast_inputs = False  # equal elements: ties make max() non-differentiable
        graph, arrays = g.build(n_ops=int(g.rng.integers(1, 7)))
    finally:
        DIMS, MAX_ELEMS = saved
    if sum(a.size for a in arrays) > 60:
        return []
    rng = np.random.default_rng(seed)
    weights = [rng.standard_normal(v.shape).astype(v.dtype) for v in graph.outputs]  # a cotangent has its output's dtype

    def f(xs):
        with np.errstate(all="ignore"):
            return sum(float(np.sum(o * w)) for o, w in zip(interpret(graph, xs), weights))

    try:
        bwd = autodiff.run(graph, range(len(graph.inputs)))
        full = Graph(graph.inputs, graph.nodes, tuple(n.out for n in graph.nodes))
        env_ = dict(zip(full.outputs, interpret(full, arrays)))
        env_.update(zip(graph.inputs, arrays))
        feeds = weights + [env_[v] for v in bwd.residuals]
        with env("LUCID_CHECK_BOUNDS", "1"):
            got = compile_graph(bwd.graph, f"fuzz{seed}-backward")(feeds)
        ref = interpret(bwd.graph, feeds)
    except Exception as e:  # noqa: BLE001
        return [f"gradient: backward raised {type(e).__name__}: {e}\n" + traceback.format_exc(limit=6)]
    out = []
    for i, (gc, gr) in enumerate(zip(got, ref)):
        msg = compare(np.asarray(gc), gr, 0.0, "float64", f"backward (compiled vs interpreted) grad {i}")
        if msg:
            out.append(msg)
    if not np.isfinite(f(arrays)):
        return out
    fd = [numeric(f, arrays, i, 1e-6) for i in range(len(arrays))]
    for i, (gc, want) in enumerate(zip(got, fd)):
        gc = np.asarray(gc)
        if np.allclose(gc, want, rtol=1e-5, atol=1e-6):
            continue
        # a kink (max/maximum/select at a tie) makes differences disagree with each other
        coarse = numeric(f, arrays, i, 1e-4)
        if not np.allclose(coarse, want, rtol=1e-3, atol=1e-5):
            continue
        k = int(np.argmax(np.abs(gc - want)))
        out.append(f"gradient of input {i}: compiled {gc.ravel()[k]!r} vs finite differences "
                   f"{want.ravel()[k]!r} at flat index {k}")
    return out


def numeric(f, arrays, i, eps):
    a = arrays[i]
    g = np.zeros(a.shape)
    if a.dtype.kind != "f":  # an integer input (a random key): no gradient
        return g
    for idx in np.ndindex(*a.shape):
        plus = [x.copy() for x in arrays]
        minus = [x.copy() for x in arrays]
        plus[i][idx] += eps
        minus[i][idx] -= eps
        g[idx] = (f(plus) - f(minus)) / (2 * eps)
    return g


# ------------------------------------------------------------------------- driver
def save_failure(out_dir, seed, graph, arrays, failures) -> str:
    from lucid_ir.serialize import save_graph
    path = save_graph(graph, out_dir, name=f"fuzz-seed{seed}")
    np.savez(path + ".npz", *arrays)
    with open(path + ".txt", "w", encoding="utf-8") as f:
        f.write(f"seed {seed}\n{graph}\n\n" + "\n".join(failures) + "\n")
    return path


def run_seeds(seeds, out_dir: str | None = None, log=print, case=None, deadline=None):
    """Fuzz each seed of ``seeds`` with ``case(seed) -> (graph, arrays, failures)``
    (default ``run_case``); stop early only at ``deadline`` (a ``time.monotonic()``
    value). Returns ``(seeds run, [(seed, failures)])``."""
    case = case or run_case
    found, n = [], 0
    for s in seeds:
        if deadline is not None and time.monotonic() >= deadline:
            break
        graph, arrays, failures = case(s)
        n += 1
        if failures:
            found.append((s, failures))
            where = save_failure(out_dir, s, graph, arrays, failures) if out_dir and graph is not None else ""
            log(f"seed {s}: {len(failures)} failure(s) {where}\n  " + "\n  ".join(
                f.splitlines()[0] for f in failures[:5]))
    log(f"{n} graphs, {len(found)} failing")
    return n, found


def fuzz(seconds: float, out_dir: str | None = None, seed: int = 0, log=print, max_cases=None, case=None):
    """Fuzz seeds ``seed, seed+1, ...`` for ``seconds`` (at most ``max_cases`` of them);
    return [(seed, failures)]. For a run whose size does not depend on the machine's
    speed, use ``run_seeds`` with a fixed list of seeds."""
    import itertools
    seeds = itertools.count(seed) if max_cases is None else range(seed, seed + max_cases)
    _, found = run_seeds(seeds, out_dir, log, case, deadline=time.monotonic() + seconds)
    return found


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seconds", type=float, default=60)
    p.add_argument("--out", default="fuzz-failures")
    p.add_argument("--seed", type=int, default=None, help="first seed (default: from the clock)")
    p.add_argument("--case", type=int, help="run one seed and print its graph and failures")
    args = p.parse_args(argv)
    if args.case is not None:
        graph, arrays, failures = run_case(args.case, grad=True)
        print(graph)
        print("\n".join(failures) or "ok")
        return 1 if failures else 0
    seed = args.seed if args.seed is not None else int(time.time()) % 1_000_000 * 1000
    print(f"fuzzing from seed {seed} for {args.seconds:g} s, failures to {args.out}")
    found = fuzz(args.seconds, args.out, seed)
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
