"""Plan steps for the fused attention ops (``lucid_ir.opnames.ATTENTION``): each node is
one call of a native kernel (``attention_kernels``: the forward over work items of
``BLOCK`` queries of one (batch, head); ``attention_backward_kernel``: the backward
over (batch, head) indices).

q, k and v go in at any strides (a GPT's head split ``(B, T, H, D) -> (B, H, T, D)`` is a
transposed view: no copy): per-(batch, head) element offsets are tabled once per
layout, the rows and features are read at their strides. The results (and the
backward's ``packed`` and ``g``) are C-contiguous.

Threads: a call with at least ``SPLIT_FLOPS`` of work is cut into one contiguous
range of items per thread (``threads.parallel_for``), each with scratch of its own.
Every item is one sequential computation, so the results are the same bits at any
thread count.

>>> import numpy as np
>>> from lucid_ir.builder import GraphBuilder
>>> b = GraphBuilder()
>>> q = b.input((1, 3, 2), "float64")
>>> step = AttentionStep(b.build([b.emit("attention", q, q, q, is_causal=True)]).nodes[0])
>>> x = np.arange(6.0).reshape(1, 3, 2)
>>> step(x, x, x)[0][0, :2]                 # query 0 sees key 0 only: out = v[0]
array([0., 1.])
"""
from __future__ import annotations

import ctypes
import math

import numpy as np

from lucid_ir.graph import Node

from . import threads
from .attention_backward_kernel import BWD_WORDS, backward_layout
from .attention_kernels import FWD_WORDS, forward_scratch, kernel
from .attention_tiles import BLOCK
from .pyarray import data_ptr

SPLIT_FLOPS = 30e6   # below this, a call stays on the calling thread
MAX_LAYOUTS = 32     # prepared offset tables kept per step


def _element_strides(x: np.ndarray):
    return [s // x.itemsize for s in x.strides]


def _offset_table(x: np.ndarray) -> np.ndarray:
    """Element offsets of each leading (batch, head) index of x, in C order."""
    off = np.zeros((), np.int64)
    for n, s in zip(x.shape[:-2], _element_strides(x)[:-2]):
        off = (off[..., None] + np.arange(n, dtype=np.int64) * s)
    return np.ascontiguousarray(off.reshape(-1), np.int64)


class AttentionStep:
    """An ``attention`` or ``attention_backward`` node's native call."""

    #: every output element reads whole rows of the inputs: never written in place
    same_element_reads = frozenset()

    def __init__(self, node: Node):
        self.node, self.op = node, node.op
        self.backward = node.op == "attention_backward"
        self.dtype = np.dtype(node.out.dtype)
        self.out_shape = node.out.shape
        q, k, v = node.inputs[:3]
        self.lead = q.shape[:-2]
        self.bh = math.prod(self.lead)
        self.L, self.S, self.E, self.Ev = q.shape[-2], k.shape[-2], q.shape[-1], v.shape[-1]
        self.causal = bool(node.attr("is_causal"))
        self.scale = float(node.attr("scale"))
        self.nqb = -(-self.L // BLOCK)
        flops = 4.0 * self.bh * self.L * self.S * max(self.E, self.Ev, 1) * (0.5 if self.causal else 1.0)
        self.flops = flops * (2.5 if self.backward else 1.0)
        if self.backward:
            self.lp, self.ep, self.evp, self.scratch = backward_layout(self.L, self.S, self.E, self.Ev,
                                                                      node.out.dtype)
            self.n_items = self.bh
        else:
            self.scratch = forward_scratch(self.E, self.Ev)
            self.n_items = self.bh * self.nqb
        self._tables: dict = {}

    def __call__(self, *arrays):
        out = np.empty(self.out_shape, self.dtype)
        return self.call_into([out], *arrays)

    def can_write_into(self, array) -> bool:
        return array.flags.c_contiguous and array.dtype == self.dtype

    def call_into(self, outs, *arrays):
        (out,) = outs
        if not self.can_write_into(out):
            return (self(*arrays)[0],) if out is None else _copy_into(out, self(*arrays)[0])
        arrays = [self._operand(x) for x in arrays]
        if self.n_items == 0 or out.size == 0:
            if out.size:
                out.fill(0)
            return (out,)
        block, tables = self._block(arrays, out)   # (tables: alive until the call ends)
        fn = kernel("bwd" if self.backward else "fwd", self.node.out.dtype)
        n_threads = threads.get_num_threads() if self.flops >= SPLIT_FLOPS else 1
        n_chunks = max(1, min(n_threads, self.n_items))
        words = block.ctypes.data_as(ctypes.POINTER(ctypes.c_int64))
        bounds = [self.n_items * c // n_chunks for c in range(n_chunks + 1)]

        def run(c):
            scratch = np.empty(max(self.scratch, 1), self.dtype)
            fn(words, data_ptr(scratch), bounds[c], bounds[c + 1])

        if n_chunks == 1:
            run(0)
        else:
            threads.parallel_for(n_chunks, run)
        return (out,)

    def _operand(self, x):
        x = np.asarray(x)
        if x.dtype != self.dtype:
            raise TypeError(f"{self.op} kernel: expected {self.dtype} operands, got {x.dtype}")
        if any(s % x.itemsize for s in x.strides):
            x = np.ascontiguousarray(x)
        return x

    def _block(self, arrays, out):
        """The kernel's block words for these operands, and the offset tables they point to."""
        q, k, v = arrays[:3]
        key = tuple((x.shape, x.strides) for x in (q, k, v))
        tables = self._tables.get(key)
        if tables is None:
            if len(self._tables) >= MAX_LAYOUTS:
                self._tables.clear()
            tables = self._tables[key] = [_offset_table(x) for x in (q, k, v)]
        (_, qs, qc), (_, ks, kc), (_, vs, vc) = ([0, *_element_strides(x)[-2:]] for x in (q, k, v))
        scale_bits = int(np.array(self.scale, np.float64).view(np.int64))
        words = {"L": self.L, "S": self.S, "E": self.E, "Ev": self.Ev, "causal": int(self.causal),
                 "scale": scale_bits, "nqb": self.nqb, "q": data_ptr(q), "k": data_ptr(k),
                 "v": data_ptr(v), "out": data_ptr(out),
                 "q_off": data_ptr(tables[0]), "k_off": data_ptr(tables[1]), "v_off": data_ptr(tables[2]),
                 "q_rs": qs, "q_cs": qc, "k_rs": ks, "k_cs": kc, "v_rs": vs, "v_cs": vc}
        names = FWD_WORDS
        if self.backward:
            packed, g = (np.ascontiguousarray(x) for x in arrays[3:5])
            arrays[3:5] = packed, g        # (kept alive by the caller's list)
            words.update(packed=data_ptr(packed), g=data_ptr(g), Lp=self.lp, Ep=self.ep, Evp=self.evp)
            names = BWD_WORDS
        return np.array([words[n] for n in names], np.int64), tables


def _copy_into(out, result):
    np.copyto(out, result)
    return (out,)


def attention_step(node: Node) -> AttentionStep:
    return AttentionStep(node)
