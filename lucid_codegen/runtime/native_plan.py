"""Running a whole plan from native code: one ctypes call instead of a Python loop.

A plan's kernels all have native entries with their arguments in int64 words: the
elementwise and reduction kernels take a prepared argument block
(``fn(block, lo, hi, lo2, hi2)``) and a GEMM entry takes 17 words
(``spin.GEMM_ARGS``). Once a plan has run on a thread, the layouts of its arrays are
known and its internal buffers are fixed, so every call after that is the same list
of native calls with only a few addresses changed: those of the inputs and of the
outputs handed to the caller. ``NativeProgram`` keeps that list as *jobs* in one
int64 array. A call is one builtin call (``program_call``): it checks the inputs'
layouts against the program's, patches the addresses in (reading each operand's data
pointer from its array object, see ``pyarray``) and runs the jobs with
``lucid_run_program`` (``native_runner``), all natively. A call's Python work is then
the reference-count check of the output buffers, that call, and the output list.

A GEMM big enough to split across threads (a program is built for one thread count),
or a loop kernel with work enough (``work_split.loop_splits``), is split natively too:
its parts are records of their own (a loop kernel's through ``lucid_loop_part``, the
GEMM-shaped entry the worker pool calls). A *fork* record copies
the workers' parts into the native worker pool's job slots and publishes a new
generation (``spin``); the program runs part 0 itself, then a *join* record takes each
worker's part back if that worker has not started it (a worker asleep, or slow to see
the generation: the claim word decides who runs it, exactly once) and waits for the
others. No Python between the parts, and the same partition whoever runs them, so the
results do not depend on who ran what. The calling thread holds the pool while the
program runs; when another thread has it, the parts run one after another.

What makes a plan eligible (else it keeps the step-by-step path): every step is a
view (same data address as its input; a ``reshape`` that had to copy becomes a strided
copy job, ``index_steps.reshape_copy_job``) or a kernel with kept or reused output buffers
whose call could be prepared (element-aligned strides).
A kernel output the plan writes straight into a donated input (``Plan(in_place=...)``)
takes that input's address, patched in per call like the input's own.

Job record (``JOB_WORDS`` int64 words):
  kind 0, a loop kernel: [0, fn, block address, lo, hi, lo2, hi2]
  kind 1, a GEMM:        [1, entry address, its 17 argument words]
  kind 2, fork:          [2, number of worker parts, record index of the first]
  kind 3, join:          [3, number of worker parts, record index of the first]
  kind 4, a host call:   [4, function address, n, n argument words] (``host_calls``)

A step's ``native_job`` gives one job, or a list of ``(job, reads, writes)`` whose
``reads`` / ``writes`` index the step's inputs followed by its outputs (a collective:
a copy, the host calls, a scaling kernel; ``collective_steps``). A step with a
``guard`` (a function) is run by the program only while ``guard()`` returns what it
returned when the program was built (a collective: the registered communicator); after
that the program is *stale* and the plan builds another.
"""
from __future__ import annotations

import ctypes
import threading
from dataclasses import dataclass
from sys import getrefcount

import numpy as np

from lucid_codegen.runtime import threads
from lucid_codegen.runtime import work_split
from lucid_codegen.runtime.host_calls import HOST_KIND, HostJob
from lucid_codegen.runtime.index_steps import reshape_copy_job
from lucid_codegen.runtime.native_runner import JOB_WORDS, loop_entry, program_entries
from lucid_codegen.runtime.program_call import ProgramCall
from lucid_codegen.runtime.pyarray import LAYOUT_OK, aligned_empty, data_ptr


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
    lanes: int = 0              # > 0: any outer or (aligned to this) inner range may run alone
    nbytes: int = 0             # bytes it reads and writes (whether splitting pays)


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
    units: int = 0              # a batched GEMM worth splitting: its units (gemm_batched)
    keep: tuple = ()            # objects its words point into (a batch descriptor)


class NativeProgram:
    """One plan on one thread, for one set of input layouts (see the module docstring).

    ``run(arrays)`` returns the plan's outputs, exactly as ``Plan.__call__`` does, or
    None (having run nothing) when ``arrays`` are not numpy arrays of its layouts.
    """

    def __init__(self, plan, env, kept: dict, num_threads: int = 1):
        """``env``: every slot's array from a step-by-step run on this thread (the
        layouts this program is for); ``kept``: slot -> True when that kernel output's buffer is kept by
        the plan (else it is handed to the caller and the program reuses it when the
        caller has dropped it). Raises ``NotEligible``."""
        if not LAYOUT_OK:  # the builtin entry reads numpy's array struct
            raise NotEligible("numpy's array layout is not the verified one")
        root = {}                          # slot -> the slot owning its memory
        per_call = {}                      # root slot -> its index among a call's operands
        for k, s in enumerate(plan.input_slots):
            root[s] = s
            per_call.setdefault(s, len(per_call))
        for s, _ in plan.constants:
            root[s] = s
        jobs, self.keep = [], []          # keep: the jobs (and the scratch rows they point into)
        self.guards = []                   # (guard, its value): the program runs while guard() is it
        self.stale = False                 # a guard changed: the program runs no more
        written = {}                       # output slot -> the donated input slot it is written into
        self.escaping = []                 # (slot, shape, dtype) of buffers handed out
        self.num_threads = num_threads
        # views that copied (a reshape of a layout no view can give): copy jobs, their
        # outputs roots of their own, handed out when an output is one or views one
        copied = {outs[0] for (fn, ins, outs), kind in zip(plan.exec_steps, plan.kinds)
                  if kind == "view" and env[outs[0]].size
                  and not np.may_share_memory(env[outs[0]], env[ins[0]])}
        view_offset = {}                   # slot -> its byte offset from its root's address
        escapes = {s for s, _ in plan.outputs}
        for (_, ins, outs), kind in reversed(list(zip(plan.exec_steps, plan.kinds))):
            if kind == "view" and outs[0] not in copied and escapes.intersection(outs):
                escapes.update(ins)
        self.copied_views = copied
        for (fn, ins, outs), kind in zip(plan.exec_steps, plan.kinds):
            if kind == "view":
                (i,), (o,) = ins, outs
                if o not in copied:  # a view, maybe at an offset (a slice)
                    root[o] = root[i]
                    if env[o].size:
                        view_offset[o] = view_offset.get(i, 0) + data_ptr(env[o]) - data_ptr(env[i])
                    continue
                job = reshape_copy_job(env[i], env[o])
                if job is None:
                    raise NotEligible("a view that copies from a layout the copy kernel cannot read")
                root[o] = o
                if o in escapes:
                    per_call.setdefault(o, len(per_call))
                    self.escaping.append((o, env[o].shape, env[o].dtype))
                jobs.append((job, [i], [o]))
                self.keep.append(job)
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
            guard = getattr(step, "guard", None)
            if guard is not None:
                self.guards.append((guard, guard()))
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
            if isinstance(job, list):  # several jobs: their operands among the step's
                operands = list(ins) + list(outs)
                jobs.extend((j, [operands[k] for k in reads], [operands[k] for k in writes])
                            for j, reads, writes in job)
                self.keep.extend(j for j, _, _ in job)
            else:
                jobs.append((job, list(ins), list(outs)))
                self.keep.append(job)
        # GEMMs big enough to split become parts: (GemmJob, [(word offsets, words)])
        parts_of = [_parts(job, num_threads) if isinstance(job, GemmJob) else
                    _ranges(job, num_threads) if isinstance(job, LoopJob) else None
                    for job, _, _ in jobs]
        # one int64 array: the job records run in order (a split GEMM: fork, part 0,
        # join), the workers' part records, then the loop kernels' argument blocks
        n_seq = sum(1 if p is None else 3 for p in parts_of)
        n_records = n_seq + sum(len(p) - 1 for p in parts_of if p is not None)
        block_at, size = [], n_records * JOB_WORDS
        for job, _, _ in jobs:
            block_at.append(size)
            size += len(job.block) if isinstance(job, LoopJob) else 0
        # the GEMMs' scratch: this thread's workspace, as big as it is now (at least what
        # this program needs), kept by the program (programs on one thread run one at a
        # time; a later, bigger workspace does not move this one); the parts of a split
        # GEMM each have their own stretch of it
        self.ws_bytes = 0
        for (job, _, _), parts in zip(jobs, parts_of):
            if isinstance(job, GemmJob):
                each = _round64(job.ws_elems * job.gemm.dtype.itemsize) if parts is None else parts[0][2]
                self.ws_bytes = max(self.ws_bytes, each * (1 if parts is None else len(parts)))
        self.workspace = _workspace(self.ws_bytes) if self.ws_bytes else None
        WS = object()                      # the workspace's pseudo-slot
        root[WS] = WS
        words = self.words = np.zeros(size, np.int64)
        base = data_ptr(words)
        fixes = []                         # (word, per-call operand index, byte offset)

        def address_of(slot, at, offset=0):
            r, offset = root[slot], offset + view_offset.get(slot, 0)
            if r in per_call:
                fixes.append((at, per_call[r], offset))
            else:
                words[at] = data_ptr(self.workspace if r is WS else env[r]) + offset

        def gemm_record(rec, job, ins, outs, gemm_words, offsets, ws_offset):
            words[rec] = 1
            words[rec + 1:rec + 1 + len(gemm_words)] = gemm_words
            address_of(WS, rec + 1 + 17, ws_offset)
            for w, s in zip(job.in_words, ins):
                address_of(s, rec + 1 + w, offsets.get(w, 0))
            for w, s in zip(job.out_words, outs):
                address_of(s, rec + 1 + w, offsets.get(w, 0))

        def write_piece(job, ins, outs, at, piece, k, where):
            """Record ``where`` runs piece ``k`` of a job (0: in order, on this thread)."""
            if isinstance(job, GemmJob):
                offsets, gemm_words, each = piece
                gemm_record(where, job, ins, outs, gemm_words, offsets, k * each)
                return
            fn_address, block = ctypes.cast(job.fn, ctypes.c_void_p).value, base + 8 * at
            if k == 0:
                words[where:where + 7] = [0, fn_address, block, *piece]
            else:  # a worker runs it through the pool's GEMM-shaped entry
                lo, hi, lo2, hi2 = piece
                words[where:where + 9] = [1, loop_entry(), fn_address, block, lo, 0, hi, lo2, hi2]

        seq, spare = 0, n_seq              # next in-order record, next worker-part record
        self.host_jobs = {}                # record index -> its HostJob (what its failure raises)
        for (job, ins, outs), at, parts in zip(jobs, block_at, parts_of):
            if isinstance(job, LoopJob):  # its argument block, with the operands' addresses
                words[at:at + len(job.block)] = job.block
                for w, s in zip(job.in_words, ins):
                    address_of(s, at + w)
                for w, s in zip(job.out_words, outs):
                    address_of(s, at + w)
                pieces = parts or [job.args]
            elif isinstance(job, HostJob):  # its arguments, with the operands' addresses
                rec = seq * JOB_WORDS
                words[rec:rec + 3 + len(job.args)] = [HOST_KIND, job.fn, len(job.args), *job.args]
                for w, s in zip(job.in_words, ins):
                    address_of(s, rec + 3 + w)
                for w, s in zip(job.out_words, outs):
                    address_of(s, rec + 3 + w)
                self.host_jobs[seq] = job
                seq += 1
                continue
            else:
                pieces = parts or [({}, job.words, 0)]
            rec = seq * JOB_WORDS
            if len(pieces) == 1:
                write_piece(job, ins, outs, at, pieces[0], 0, rec)
                seq += 1
                continue
            # fork, part 0, join in order; the workers' parts among the spare records
            words[rec:rec + 3] = [2, len(pieces) - 1, spare]
            write_piece(job, ins, outs, at, pieces[0], 0, rec + JOB_WORDS)
            for k in range(1, len(pieces)):
                write_piece(job, ins, outs, at, pieces[k], k, (spare + k - 1) * JOB_WORDS)
            words[rec + 2 * JOB_WORDS:rec + 2 * JOB_WORDS + 3] = [3, len(pieces) - 1, spare]
            spare += len(pieces) - 1
            seq += 3
        self.n_jobs = n_seq
        self.splits = any(p is not None for p in parts_of)
        # the builtin's arguments: the inputs, then the escaping buffers; a per-call
        # operand is the first argument holding it
        position = {}
        for k, s in enumerate(plan.input_slots):
            position.setdefault(per_call[s], k)
        for j, (s, _, _) in enumerate(self.escaping):
            position[per_call[s]] = len(plan.input_slots) + j
        fix = np.array([w for at, index, offset in fixes for w in (at, position[index], offset)] or [0],
                       np.int64)
        seconds = sum(work_split.kernel_seconds(nbytes=job.nbytes) if isinstance(job, LoopJob) else
                      work_split.kernel_seconds(flop=job.flop) if isinstance(job, GemmJob) else 0.0
                      for job, _, _ in jobs)
        # (a host call may wait for other processes: other Python threads run meanwhile)
        self.entry = ProgramCall(program_entries(), words, n_seq, fix, len(fixes),
                                 [env[s] for s in plan.input_slots], plan.donated_inputs, len(self.escaping),
                                 release_gil=self.splits or bool(self.host_jobs) or work_split.releases_gil(seconds))
        self.call, self.check, self.ran = self.entry.call, self.entry.check, self.entry.block
        self.failed = self.entry.failed
        self.kept_arrays = {s: env[s] for s in set(root.values())
                            if s not in per_call and s is not WS and env[s] is not None}
        # handed-out buffers, reused while nobody holds them (fresh ones: the step-by-step
        # path's buffers are its own, and sharing them would make both see them held)
        self.escaping_types = [(shape, dtype) for _, shape, dtype in self.escaping]
        self.buffers = [np.empty(shape, dtype) for shape, dtype in self.escaping_types]
        self.input_pos = {s: k for k, s in enumerate(plan.input_slots)}
        self.input_pos.update((o, self.input_pos[t]) for o, t in written.items())
        # the outputs: a root slot's array and the view steps from it
        view_of = {}
        for (fn, ins, outs), kind in zip(plan.exec_steps, plan.kinds):
            if kind == "view" and outs[0] not in copied:
                view_of[outs[0]] = (fn, ins[0])
        self.output_paths = []
        for s, copy in plan.outputs:
            path = []
            while s in view_of:
                fn, src = view_of[s]
                path.append(fn)
                s = src
            self.output_paths.append((s, path[::-1], copy))
        # where each output's root array is: buffer j, input k, or a kept array
        buffer_of = {s: j for j, (s, _, _) in enumerate(self.escaping)}
        self.output_sources = []
        for s, path, copy in self.output_paths:
            if s in buffer_of:
                self.output_sources.append((_BUFFER, buffer_of[s], path, copy))
            elif s in self.kept_arrays:
                self.output_sources.append((_KEPT, self.kept_arrays[s], path, copy))
            else:
                self.output_sources.append((_INPUT, self.input_pos[s], path, copy))
        # the outputs are the escaping buffers, in order, as they are: the output list is
        # a copy of the buffer list
        self.outputs_are_buffers = [(s, [], False) for s, _, _ in self.escaping] == self.output_paths
        self.buffer_range = range(len(self.buffers))
        #: the program's one output is its one handed-out buffer, and a call is the entry
        #: alone (no guards, no split parts, no host calls): ``plan.single_prepared``
        #: calls ``call`` itself
        self.one_buffer = (self.outputs_are_buffers and len(self.buffers) == 1 and not self.guards
                           and not self.splits and not self.host_jobs)

    def run(self, arrays):
        """The plan's outputs for ``arrays``; None when they are not numpy arrays of this
        program's layouts (nothing ran)."""
        if self.guards and not self._guards_hold():
            return None
        bufs = self.buffers
        for j in self.buffer_range:
            if getrefcount(bufs[j]) > 2:  # the caller still holds last call's buffer
                bufs[j] = np.empty(*self.escaping_types[j])
        if self.splits:
            ran = self._run_split(arrays, bufs)
        else:
            ran = self.call(*arrays, *bufs)
        if ran is not self.ran:
            if ran is self.failed:
                self._raise_failure()
            return None
        if self.outputs_are_buffers:
            return bufs[:]
        return self._outputs(arrays, bufs)

    def _guards_hold(self) -> bool:
        """Whether every guard still gives its value (else the program is stale)."""
        if not self.stale and all(guard() is value for guard, value in self.guards):
            return True
        self.stale = True
        return False

    def _raise_failure(self):
        """The error of the host call that stopped the last call (``HostJob.fail``)."""
        code, at = self.entry.failure()
        self.host_jobs[at].fail(code)
        raise RuntimeError(f"native program: host call {at} failed with code {code}")

    def _run_split(self, arrays, bufs):
        """The call, holding the worker pool for the split jobs' parts when it is free."""
        ctl = threads.hold_pool(self.num_threads)  # 0: the parts run here
        try:
            self.entry.set_pool(ctl)
            return self.call(*arrays, *bufs)
        finally:
            if ctl:
                threads.release_pool()

    def _outputs(self, arrays, bufs) -> list:
        """The outputs: handed-out buffers, kept arrays, donated inputs written in place,
        through their view steps; copies where the plan copies."""
        outs = []
        for kind, where, path, copy in self.output_sources:
            a = bufs[where] if kind is _BUFFER else arrays[where] if kind is _INPUT else where
            for fn in path:
                (a,) = fn(a)
            outs.append(np.array(a) if copy else a)
        return outs


_BUFFER, _INPUT, _KEPT = "buffer", "input", "kept"   # where an output's root array is

def _ranges(job: LoopJob, num_threads: int):
    """An elementwise kernel's (lo, hi, lo2, hi2) per part for ``num_threads``: whole
    outer rows, or, for one outer row, inner ranges aligned to its vector lanes. None
    when it does not split."""
    if num_threads <= 1 or not job.lanes or not work_split.loop_splits(job.nbytes):
        return None
    _, n_outer, _, inner = job.args
    if n_outer >= num_threads:
        bounds = [n_outer * c // num_threads for c in range(num_threads + 1)]
        return [(bounds[c], bounds[c + 1], 0, inner) for c in range(num_threads)]
    if n_outer != 1:
        return None
    step = -(-(-(-inner // num_threads)) // job.lanes) * job.lanes
    parts = [(0, 1, s, min(s + step, inner)) for s in range(0, inner, step)]
    return parts if len(parts) > 1 else None


def _round64(nbytes: int) -> int:
    return -(-nbytes // 64) * 64


def _parts(job: GemmJob, num_threads: int):
    """A GEMM split for ``num_threads`` as ``run_ptrs`` splits it (``work_split.gemm_splits``
    and ``split_spans``: rows when M >= N, else columns, in whole micro-tiles): per part, the byte offsets of its operands'
    addresses (by word), its words, and the workspace bytes each part gets. None when
    it does not split."""
    from lucid_codegen.gemm.kernel import workspace_elems
    from lucid_codegen.gemm.call import split_spans
    if num_threads <= 1:
        return None
    gemm, w = job.gemm, list(job.words)
    if job.units:  # the batched entry: contiguous ranges of its units (any split, same bits)
        each = _round64(job.ws_elems * gemm.dtype.itemsize)
        n = min(num_threads, job.units)
        bounds = [job.units * k // n for k in range(n + 1)]
        return [({}, [w[0], lo, hi] + w[3:], each) for lo, hi in zip(bounds, bounds[1:])]
    if w[0] != gemm._address:  # the batched entry, not worth splitting
        return None
    M, N, K = w[1], w[2], w[3]
    size = gemm.dtype.itemsize
    split = split_spans(M, N, num_threads, gemm._mr, gemm._nr) if work_split.gemm_splits(M, N, K, size) else None
    if split is None:
        return None
    split_m, spans = split
    has_bias, has_r = 13 in job.in_words, 14 in job.in_words
    each = max(_round64(workspace_elems(gemm.spec, n if split_m else M, N if split_m else n, K) * size)
               for _, n in spans)
    parts = []
    for o, n in spans:  # word indices: spin.GEMM_ARGS after the entry address
        pw = list(w)
        gather = gemm.spec.gather  # a gathered operand's table advances, not its tensor (gemm.gather)
        if split_m:
            pw[1] = n
            offsets = {5: o * w[6] * size, 11: o * w[12] * size}
            if gather == "a":
                del offsets[5]
                pw[6] = w[6] + 8 * o
            if has_r:
                offsets[14] = o * w[15] * size
        else:
            pw[2] = n
            offsets = {8: o * w[10] * size, 11: o * size}
            if gather == "b":
                del offsets[8]
                pw[10] = w[10] + 8 * o
            if has_bias:
                offsets[13] = o * size
            if has_r and not gemm.spec.gate_a:
                offsets[14] = o * w[16] * size
        parts.append((offsets, pw, each))
    return parts


_LOCAL = threading.local()


def _workspace(nbytes: int) -> np.ndarray:
    """This thread's GEMM scratch for native programs: a 64-byte aligned byte view of at
    least ``nbytes`` (grown, never shrunk; programs on one thread run one at a time)."""
    ws = getattr(_LOCAL, "ws", None)
    if ws is None or ws.nbytes < nbytes:
        ws = _LOCAL.ws = aligned_empty(max(nbytes, 1 << 16), np.uint8)
    return ws


class NotEligible(Exception):
    """The plan has a step that the native program cannot run."""
