"""Plan steps for the fused attention ops (``lucid_ir.opnames.ATTENTION``): each node is
one call of a native kernel (``attention_kernels``: the forward over work items of
``BLOCK`` queries of one (batch, head); ``attention_backward_kernel``: the backward
over (batch, head) indices).

q, k and v go in at any strides (a GPT's head split ``(B, T, H, D) -> (B, H, T, D)`` is a
transposed view: no copy): per-(batch, head) element offsets are tabled once per
layout, the rows and features are read at their strides, and so is the backward's ``g``
when it is the output's gradient alone (``(…, L, Ev)``: the gradient of a head merge
is a transposed view too). The results (and the backward's ``packed``, and a packed
``g``) are C-contiguous.

Threads: a call that ``work_split.attention_splits`` is cut into one contiguous
range of items per thread (``threads.parallel_for``; in a native program, the program's
split of a loop kernel's rows: ``native_job``); each call of the kernel allocates its
own scratch. Every item is one sequential computation, so the results are the same
bits at any thread count.

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

from lucid_codegen.runtime import threads
from lucid_codegen.runtime import work_split
from lucid_codegen.kernels.attention_backward import BWD_WORDS, backward_layout
from lucid_codegen.kernels.attention import FWD_WORDS, forward_scratch, kernel
from lucid_codegen.kernels.attention_tiles import BLOCK
from lucid_codegen.runtime.pyarray import data_ptr

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
            #: g packed as the forward's result (dO, then lse's gradient), or dO alone
            #: in the output's shape (…, L, Ev), read at its strides
            self.packed_g = node.inputs[4].shape != (*self.lead, self.L, self.Ev)
            self.lp, self.ep, self.evp, self.scratch = backward_layout(self.L, self.S, self.E, self.Ev,
                                                                      node.out.dtype)
            self.n_items = self.bh
        else:
            self.scratch = forward_scratch(self.E, self.Ev)
            self.n_items = self.bh * self.nqb
        self._prepared: dict = {}

    def llvm_module(self):
        """The kernel's LLVM module (for ``lower(...).as_text("llvm")`` and dumps)."""
        from lucid_codegen.kernels.attention_backward import build_backward
        from lucid_codegen.kernels.attention import build_forward
        return (build_backward if self.backward else build_forward)(self.node.out.dtype)

    def __call__(self, *arrays):
        out = np.empty(self.out_shape, self.dtype)
        return self.call_into([out], *arrays)

    def can_write_into(self, array) -> bool:
        return array.flags.c_contiguous and array.dtype == self.dtype

    def call_into(self, outs, *arrays):
        (out,) = outs
        if not self.can_write_into(out):
            return _copy_into(out, self(*arrays)[0])
        arrays = [self._operand(x) for x in arrays]
        if self.backward:   # (the list keeps the contiguous copies alive through the call)
            arrays[3] = np.ascontiguousarray(arrays[3])
            if self.packed_g:
                arrays[4] = np.ascontiguousarray(arrays[4])
        if self.n_items == 0:
            return (out,)
        words, tables = self._words(arrays)     # (tables: alive until the call ends)
        for w, x in zip(self._in_words, arrays):
            words[w] = data_ptr(x)
        words[self._out_word] = data_ptr(out)
        fn = kernel("bwd" if self.backward else "fwd", self.node.out.dtype)
        n_chunks = threads.get_num_threads() if work_split.attention_splits(self.flops) else 1
        n_chunks = max(1, min(n_chunks, self.n_items))
        block = words.ctypes.data_as(ctypes.POINTER(ctypes.c_int64))
        bounds = [self.n_items * c // n_chunks for c in range(n_chunks + 1)]
        if n_chunks == 1:
            fn(block, 0, self.n_items, 0, 0)
        else:
            threads.parallel_for(n_chunks, lambda c: fn(block, bounds[c], bounds[c + 1], 0, 0))
        return (out,)

    def native_job(self, arrays, outs):
        """This call as a ``native_plan.LoopJob`` (its items are its rows: a program may
        split them across threads like a loop kernel's), or None."""
        from lucid_codegen.runtime.native_plan import LoopJob
        (out,) = outs
        if (not self.can_write_into(out) or any(_odd(x) or x.dtype != self.dtype for x in arrays)
                or self.backward and not all(x.flags.c_contiguous for x in arrays[3:5 if self.packed_g else 4])):
            return None
        words, tables = self._words(arrays)
        work = work_split.attention_work_bytes(self.flops)  # (in the loop kernels' measure)
        return LoopJob(kernel("bwd" if self.backward else "fwd", self.node.out.dtype), list(words),
                       (0, self.n_items, 0, 1), list(self._in_words), [self._out_word], keep=tuple(tables),
                       lanes=1, nbytes=work)

    @property
    def _in_words(self):
        names = ("q", "k", "v", "packed", "g") if self.backward else ("q", "k", "v")
        order = BWD_WORDS if self.backward else FWD_WORDS
        return [order.index(n) for n in names]

    @property
    def _out_word(self):
        return (BWD_WORDS if self.backward else FWD_WORDS).index("out")

    def _operand(self, x):
        x = np.asarray(x)
        if x.dtype != self.dtype:
            raise TypeError(f"{self.op} kernel: expected {self.dtype} operands, got {x.dtype}")
        return np.ascontiguousarray(x) if _odd(x) else x

    def _words(self, arrays):
        """The kernel's block words for q, k, v (and the backward's g) of these layouts
        (operand addresses left 0), and the offset tables they point to: prepared once
        per layout."""
        qkv = arrays[:3]
        key = tuple((x.shape, x.strides) for x in list(arrays[:3]) + list(arrays[4:5]))
        got = self._prepared.get(key)
        if got is None:
            if len(self._prepared) >= MAX_LAYOUTS:
                self._prepared.clear()
            tables = [_offset_table(x) for x in qkv]
            (qs, qc), (ks, kc), (vs, vc) = (_element_strides(x)[-2:] for x in qkv)
            words = {"scratch": self.scratch, "L": self.L, "S": self.S, "E": self.E, "Ev": self.Ev,
                     "causal": int(self.causal), "scale": int(np.array(self.scale, np.float64).view(np.int64)),
                     "nqb": self.nqb, "q_off": data_ptr(tables[0]), "k_off": data_ptr(tables[1]),
                     "v_off": data_ptr(tables[2]), "q_rs": qs, "q_cs": qc, "k_rs": ks, "k_cs": kc,
                     "v_rs": vs, "v_cs": vc}
            names = FWD_WORDS
            if self.backward:
                g = arrays[4]
                if self.packed_g:   # (…, L·Ev + L): dO's rows, then lse's gradient
                    g_table, g_rs, g_cs = np.arange(self.bh, dtype=np.int64) * g.shape[-1], self.Ev, 1
                else:               # dO (…, L, Ev) at any strides; no lse gradient
                    g_table, (g_rs, g_cs) = _offset_table(g), _element_strides(g)[-2:]
                tables.append(g_table)
                words.update(Lp=self.lp, Ep=self.ep, Evp=self.evp, g_off=data_ptr(g_table), g_rs=g_rs,
                             g_cs=g_cs, g_lse=int(self.packed_g))
                names = BWD_WORDS
            got = self._prepared[key] = (np.array([words.get(n, 0) for n in names], np.int64), tables)
        return got[0].copy(), got[1]


def _odd(a) -> bool:
    """Strides that are not whole elements (the kernels index by element)."""
    return any(s % a.itemsize for s in a.strides)


def _copy_into(out, result):
    np.copyto(out, result)
    return (out,)


def attention_step(node: Node) -> AttentionStep:
    return AttentionStep(node)
