"""Running a whole plan from native code: one ctypes call instead of a Python loop.

A plan's kernels all have native entries with their arguments in int64 words: the
elementwise and reduction kernels take a prepared argument block
(``fn(block, lo, hi, lo2, hi2)``) and a GEMM entry takes 17 words
(``spin.GEMM_ARGS``). Once a plan has run on a thread, the layouts of its arrays are
known and its internal buffers are fixed, so every call after that is the same list
of native calls with only a few addresses changed: those of the inputs and of the
outputs handed to the caller. ``NativeProgram`` keeps that list as *jobs* in one
int64 array; a call writes the new addresses into it (one numpy scatter) and runs the
jobs with ``lucid_run_program`` (GIL released), which also does the patching: it
reads each operand's data pointer from its array object (see ``pyarray``). A GEMM big enough to split across
threads is handed back to Python between native runs, where it goes to the native
worker pool as before.

What makes a plan eligible (else it keeps the step-by-step path): every step is a
view (same data address as its input) or a kernel with kept or reused output buffers
whose call could be prepared (not split across threads, element-aligned strides).
A kernel output the plan writes straight into a donated input (``Plan(in_place=...)``)
takes that input's address, patched in per call like the input's own.

Job record (``JOB_WORDS`` int64 words):
  kind 0, a loop kernel: [0, fn, block address, lo, hi, lo2, hi2]
  kind 1, a GEMM:        [1, entry address, its 17 argument words]
"""
from __future__ import annotations

import ctypes
import threading
from dataclasses import dataclass
from sys import getrefcount

import llvmlite.ir as ir
import numpy as np

from .cache import load_or_compile
from .pyarray import LAYOUT_OK, PYARRAY_OFFSETS, data_ptr
from .gemm_microkernel import counted_loop
from .spin import JOB_WORDS as GEMM_JOB_WORDS, build_gemm_call

I64 = ir.IntType(64)
JOB_WORDS = GEMM_JOB_WORDS + 1  # kind, then a GEMM's 18 words (a loop kernel uses 7)


@dataclass
class LoopJob:
    """An elementwise or reduction kernel call: ``fn(block, *args)``; ``in_words`` /
    ``out_words``: where each operand's address goes in ``block``."""

    fn: object                  # the ctypes function (its address is called)
    block: list
    args: tuple
    in_words: list
    out_words: list
    keep: tuple = ()            # objects the block points into (scratch rows)


@dataclass
class GemmJob:
    """A GEMM entry call: ``words`` are its 18 job words (``spin.GEMM_ARGS`` after the
    address); the workspace word is filled by the program."""

    gemm: object
    words: list
    in_words: list
    out_words: list
    ws_elems: int
    flop: float
    alpha: float


def _build() -> ir.Module:
    """``void lucid_run_program(i64* words, i64 first, i64 n, i64* objs, i64* fix,
    i64 n_fix, i64 data_off)``: first the fixups, ``words[fix[2k]] = address of operand
    fix[2k+1]`` (``objs[j]`` is an array object whose data pointer is at byte
    ``data_off``, or, with ``data_off < 0``, the address itself); then jobs
    ``first .. first + n - 1``."""
    module = ir.Module("lucid_jobs")
    pool_call = build_gemm_call(module)
    loop_ty = ir.FunctionType(ir.VoidType(), [I64.as_pointer(), I64, I64, I64, I64])
    P = I64.as_pointer()
    fn = ir.Function(module, ir.FunctionType(ir.VoidType(), [P, I64, I64, P, P, I64, I64]),
                     "lucid_run_program")
    words, first, n, objs, fix, n_fix, data_off = fn.args
    b = ir.IRBuilder(fn.append_basic_block("entry"))

    def patch(k):
        pos = b.load(b.gep(fix, [b.mul(k, I64(2))]))
        src = b.load(b.gep(fix, [b.add(b.mul(k, I64(2)), I64(1))]))
        obj = b.load(b.gep(objs, [src]))
        field = b.inttoptr(b.add(obj, data_off), P)
        with b.if_else(b.icmp_signed(">=", data_off, I64(0))) as (from_object, direct):
            with from_object:
                b.store(b.load(field), b.gep(words, [pos]))
            with direct:
                b.store(obj, b.gep(words, [pos]))
    counted_loop(b, I64(0), n_fix, 1, patch, "fix")

    def run(i):
        rec = b.gep(words, [b.mul(i, I64(JOB_WORDS))])
        w = [b.load(b.gep(rec, [I64(k)])) for k in range(7)]
        with b.if_else(b.icmp_signed("==", w[0], I64(0))) as (loop_job, gemm_job):
            with loop_job:
                target = b.inttoptr(w[1], loop_ty.as_pointer())
                b.call(target, [b.inttoptr(w[2], P)] + w[3:7])
            with gemm_job:
                b.call(pool_call, [b.gep(rec, [I64(1)])])
    counted_loop(b, first, b.add(first, n), 1, run, "jobs")
    b.ret_void()
    return module


_run_program = None


def _runner():
    global _run_program
    if _run_program is None:
        lib = load_or_compile("jobs/v3", _build, ["lucid_run_program"], label="the native plan runner")
        i64, vp = ctypes.c_int64, ctypes.c_void_p
        _run_program = (ctypes.CFUNCTYPE(None, vp, i64, i64, vp, vp, i64, i64)(
            lib.address("lucid_run_program")), lib)
    return _run_program[0]


class NativeProgram:
    """One plan on one thread, for one set of input layouts (see the module docstring).

    ``run(arrays)`` returns the plan's outputs, exactly as ``Plan.__call__`` does.
    """

    def __init__(self, plan, env, kept: dict):
        """``env``: every slot's array from a step-by-step run on this thread (the
        layouts this program is for); ``kept``: slot -> True when that kernel output's buffer is kept by
        the plan (else it is handed to the caller and the program reuses it when the
        caller has dropped it). Raises ``NotEligible``."""
        from .gemm_call import THREAD_MIN_FLOP
        root = {}                          # slot -> the slot owning its memory
        per_call = {}                      # root slot -> index in self.objs
        for k, s in enumerate(plan.input_slots):
            root[s] = s
            per_call.setdefault(s, len(per_call))
        for s, _ in plan.constants:
            root[s] = s
        jobs, self.keep = [], []          # keep: the jobs (and the scratch rows they point into)
        written = {}                       # output slot -> the donated input slot it is written into
        self.escaping = []                 # (slot, shape, dtype) of buffers handed out
        self.split = []                    # (job index, GemmJob) of GEMMs to split
        for (fn, ins, outs), kind in zip(plan.exec_steps, plan.kinds):
            if kind == "view":
                (i,), (o,) = ins, outs
                if data_ptr(env[o]) != data_ptr(env[i]) and env[o].size:
                    raise NotEligible("a view that copies")
                root[o] = root[i]
                continue
            step = getattr(fn, "step", None)
            job_of = getattr(step, "native_job", None)
            if job_of is None:
                raise NotEligible(f"step {type(fn).__name__} has no native job")
            n = getattr(fn, "n_reads", len(ins))   # then the donated inputs it may write
            donated = dict(zip(getattr(fn, "positions", ()), ins[n:]))
            ins = ins[:n]
            job = job_of([env[i] for i in ins], [env[o] for o in outs])
            if job is None:
                raise NotEligible("a kernel call that cannot be prepared")
            for p, o in enumerate(outs):
                target = donated.get(p)
                if target is not None and env[o] is env[target]:  # written into the input
                    root[o] = root[target]
                    written[o] = target
                    continue
                root[o] = o
                if not kept[o]:
                    per_call.setdefault(o, len(per_call))
                    self.escaping.append((o, env[o].shape, env[o].dtype))
            jobs.append((job, [root[i] for i in ins], list(outs)))
            self.keep.append(job)
        # one int64 array: job records, then the loop kernels' argument blocks
        n = len(jobs)
        block_at, size = [], n * JOB_WORDS
        for job, _, _ in jobs:
            block_at.append(size)
            size += len(job.block) if isinstance(job, LoopJob) else 0
        # the GEMMs' scratch: this thread's workspace, patched in at every call like an
        # operand (it grows when some program needs more, so its address may change)
        self.ws_bytes = max([j.ws_elems * j.gemm.dtype.itemsize for j, _, _ in jobs
                             if isinstance(j, GemmJob)] or [0])
        WS = object()                      # the workspace's pseudo-slot
        root[WS] = WS
        per_call[WS] = len(per_call)
        words = self.words = np.zeros(size, np.int64)
        base = data_ptr(words)
        fix_pos, fix_src = [], []

        def address_of(slot, at):
            r = root[slot]
            if r in per_call:
                fix_pos.append(at)
                fix_src.append(per_call[r])
            else:
                words[at] = data_ptr(env[r])
        for k, ((job, ins, outs), at) in enumerate(zip(jobs, block_at)):
            rec = k * JOB_WORDS
            if isinstance(job, LoopJob):
                words[at:at + len(job.block)] = job.block
                words[rec:rec + 7] = [0, ctypes.cast(job.fn, ctypes.c_void_p).value, base + 8 * at, *job.args]
                for w, s in zip(job.in_words, ins):
                    address_of(s, at + w)
                for w, s in zip(job.out_words, outs):
                    address_of(s, at + w)
            else:
                words[rec] = 1
                words[rec + 1:rec + 1 + len(job.words)] = job.words
                address_of(WS, rec + 1 + 17)
                for w, s in zip(job.in_words, ins):
                    address_of(s, rec + 1 + w)
                for w, s in zip(job.out_words, outs):
                    address_of(s, rec + 1 + w)
                if job.flop >= THREAD_MIN_FLOP:
                    self.split.append((k, job))
        self.n_jobs = n
        self.fix = np.array([w for pair in zip(fix_pos, fix_src) for w in pair] or [0], np.int64)
        self.n_fix = len(fix_pos)
        self.n_per_call = len(per_call)
        self.objs = (ctypes.c_int64 * max(1, len(per_call)))()   # the operands of one call
        self.input_index = [per_call[s] for s in plan.input_slots]
        self.escaping_index = [per_call[s] for s, _, _ in self.escaping]
        self.ws_index = per_call[WS]
        self.kept_arrays = {s: env[s] for s in set(root.values())
                            if s not in per_call and env[s] is not None}
        # handed-out buffers, reused while nobody holds them (fresh ones: the step-by-step
        # path's buffers are its own, and sharing them would make both see them held)
        self.buffers = [np.empty(shape, dtype) for _, shape, dtype in self.escaping]
        self.input_pos = {s: k for k, s in enumerate(plan.input_slots)}
        self.input_pos.update((o, self.input_pos[t]) for o, t in written.items())
        # the outputs: a root slot's array and the view steps from it
        view_of = {}
        for (fn, ins, outs), kind in zip(plan.exec_steps, plan.kinds):
            if kind == "view":
                view_of[outs[0]] = (fn, ins[0])
        self.output_paths = []
        for s, copy in plan.outputs:
            path = []
            while s in view_of:
                fn, src = view_of[s]
                path.append(fn)
                s = src
            self.output_paths.append((s, path[::-1], copy))
        self.run_program = _runner()
        self.data_off = PYARRAY_OFFSETS[0] if LAYOUT_OK else -1

    def run(self, arrays, num_threads: int):
        """The plan's outputs for ``arrays`` (which have this program's layouts)."""
        objs, direct = self.objs, self.data_off < 0
        for k, a in zip(self.input_index, arrays):
            if type(a) is not np.ndarray:  # the native side reads numpy's own array struct
                raise NotEligible("an input is not a numpy array")
            objs[k] = data_ptr(a) if direct else id(a)
        bufs = self.buffers
        for j in range(len(bufs)):
            if getrefcount(bufs[j]) > 2:  # the caller still holds last call's buffer
                _, shape, dtype = self.escaping[j]
                bufs[j] = np.empty(shape, dtype)
            objs[self.escaping_index[j]] = data_ptr(bufs[j]) if direct else id(bufs[j])
        ws = _workspace(self.ws_bytes)
        objs[self.ws_index] = data_ptr(ws) if direct else id(ws)
        words, n_fix = self.words, self.n_fix
        args = (data_ptr(words), ctypes.addressof(objs), data_ptr(self.fix), self.data_off)
        start = 0
        if num_threads > 1:
            for k, job in self.split:  # native runs between the GEMMs that Python splits
                self.run_program(args[0], start, k - start, args[1], args[2], n_fix, args[3])
                n_fix = 0
                w = words[k * JOB_WORDS + 2:k * JOB_WORDS + 1 + 17].tolist()
                job.gemm.run_ptrs(w[0], w[1], w[2], w[4], w[5], w[6], w[7], w[8], w[9], w[10],
                                  w[11], w[12], w[13], w[14], w[15], job.alpha)
                start = k + 1
        self.run_program(args[0], start, self.n_jobs - start, args[1], args[2], n_fix, args[3])
        slot_array = dict(zip((s for s, _, _ in self.escaping), bufs))
        outs = []
        for s, path, copy in self.output_paths:
            a = slot_array.get(s)
            if a is None:
                a = self.kept_arrays.get(s)
                if a is None:
                    a = arrays[self.input_pos[s]]
            for fn in path:
                (a,) = fn(a)
            outs.append(np.array(a) if copy else a)
        return outs


_LOCAL = threading.local()


def _workspace(nbytes: int) -> np.ndarray:
    """This thread's GEMM scratch for native programs: a 64-byte aligned byte view of at
    least ``nbytes`` (grown, never shrunk; programs on one thread run one at a time)."""
    ws = getattr(_LOCAL, "ws", None)
    if ws is None or ws.nbytes < nbytes:
        raw = np.empty(max(nbytes, 1 << 16) + 64, np.uint8)
        skip = -data_ptr(raw) % 64
        ws = _LOCAL.ws = raw[skip:skip + max(nbytes, 1 << 16)]
    return ws


class NotEligible(Exception):
    """The plan has a step that the native program cannot run."""
