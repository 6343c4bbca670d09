"""The native side of ``native_plan``: ``lucid_run_program``, which runs a program's
job records (see the record layout in ``native_plan``); ``lucid_program_call``, the
builtin entries a program is called through (``program_call``); ``lucid_loop_part``,
which lets the worker pool run part of a loop kernel; and ``lucid_poll_wait``, a host
function waiting for a request (``host_calls``).

A split job is three records: a *fork* copies the workers' parts into the pool's job
slots (``spin``: one block of words per worker) and publishes a new generation; the
part after it runs here; the *join* then claims, for each worker, the part that worker
has not started (the claim word holds the generation until someone swaps it for 0), and
runs it here, or waits for the worker to finish it. Without the pool (another thread
has it) the join runs every part here, in order.
"""
from __future__ import annotations

import threading

import llvmlite.ir as ir

from lucid_codegen.runtime import program_call
from lucid_codegen.jit import llvm
from lucid_codegen.jit.cache import available, load_or_compile, precompile, source_stamp
from lucid_codegen.gemm.microkernel import counted_loop
from lucid_codegen.runtime.host_calls import HOST_KIND, build_poll_wait, emit_host_call
from lucid_codegen.runtime.spin import BLOCK, CLAIM_AT, JOB_AT, JOB_WORDS as GEMM_JOB_WORDS, build_gemm_call, relax

I64 = ir.IntType(64)
#: The modules whose source decides the generated code (their stamp is in the key).
GENERATOR = ("runtime.native_runner", "runtime.program_call", "gemm.microkernel", "runtime.spin",
             "runtime.pyarray", "runtime.host_calls", "kernels.loops", "kernels.vector_math")
JOB_WORDS = GEMM_JOB_WORDS + 1  # kind, then a GEMM's 18 words (a loop kernel uses 7)


def _build() -> ir.Module:
    """``void lucid_run_program(i64* words, i64 first, i64 n, i64* objs, i64* fix,
    i64 n_fix, i64 data_off, i64* ctl, i64 use_pool, i64* status)``: first the fixups,
    ``words[fix[3k]] = address of operand fix[3k+1] + fix[3k+2]`` (``objs[j]`` is an
    array object whose data pointer is at byte ``data_off``: ``lucid_program_call``
    passes its argument vector); then jobs ``first .. first + n - 1``, up to the first
    host call returning nonzero: ``status`` is then [its result, its record index]
    (else left as it is). ``ctl``: the worker pool's control words (``spin``), used by
    forks and joins when ``use_pool``."""
    module = ir.Module("lucid_jobs")
    pool_call = build_gemm_call(module)
    loop_ty = ir.FunctionType(ir.VoidType(), [I64.as_pointer(), I64, I64, I64, I64])
    P = I64.as_pointer()
    fn = ir.Function(module, ir.FunctionType(ir.VoidType(), [P, I64, I64, P, P, I64, I64, P, I64, P]),
                     "lucid_run_program")
    words, first, n, objs, fix, n_fix, data_off, ctl, use_pool, status = fn.args
    b = ir.IRBuilder(fn.append_basic_block("entry"))
    stopped = b.alloca(ir.IntType(1))
    b.store(ir.Constant(ir.IntType(1), 0), stopped)

    def patch(k):
        at = b.mul(k, I64(3))
        pos = b.load(b.gep(fix, [at]))
        src = b.load(b.gep(fix, [b.add(at, I64(1))]))
        off = b.load(b.gep(fix, [b.add(at, I64(2))]))
        obj = b.load(b.gep(objs, [src]))
        field = b.inttoptr(b.add(obj, data_off), P)
        b.store(b.add(b.load(field), off), b.gep(words, [pos]))
    counted_loop(b, I64(0), n_fix, 1, patch, "fix")

    def part(index):  # the GEMM words of record ``index``
        return b.gep(words, [b.add(b.mul(index, I64(JOB_WORDS)), I64(1))])

    def worker(w, k):
        return b.gep(ctl, [b.add(b.mul(w, I64(BLOCK)), I64(k))])

    def fork(count, at):
        g = b.add(b.load_atomic(ctl, "acquire", 8), I64(1))

        def post(w):  # worker w (1..count) gets record at + w - 1
            src = part(b.add(at, b.sub(w, I64(1))))
            for k in range(GEMM_JOB_WORDS):
                b.store(b.load(b.gep(src, [I64(k)])), worker(w, JOB_AT + k))
            b.store_atomic(g, worker(w, CLAIM_AT), "release", 8)
        counted_loop(b, I64(1), b.add(count, I64(1)), 1, post, "post")
        b.store_atomic(g, ctl, "release", 8)  # publish

    def join(count, at):
        g = b.load_atomic(ctl, "acquire", 8)

        def take_or_wait(w):
            src = part(b.add(at, b.sub(w, I64(1))))
            claim = b.cmpxchg(worker(w, CLAIM_AT), g, I64(0), "acq_rel", "acquire")
            with b.if_else(b.extract_value(claim, 1)) as (mine, theirs):
                with mine:  # the worker has not started it: run it here
                    b.call(pool_call, [src])
                with theirs:
                    start = b.block
                    wait = b.append_basic_block("wait")
                    spin = b.append_basic_block("spin")
                    done = b.append_basic_block("done")
                    b.branch(wait)
                    b.position_at_end(wait)
                    polls = b.phi(I64)
                    polls.add_incoming(I64(0), start)
                    finished = b.icmp_signed(">=", b.load_atomic(worker(w, 0), "acquire", 8), g)
                    b.cbranch(finished, done, spin)
                    b.position_at_end(spin)
                    relax(b, polls)
                    polls.add_incoming(b.add(polls, I64(1)), b.block)
                    b.branch(wait)
                    b.position_at_end(done)
        counted_loop(b, I64(1), b.add(count, I64(1)), 1, take_or_wait, "join")

    def run(i):
        rec = b.gep(words, [b.mul(i, I64(JOB_WORDS))])
        w = [b.load(b.gep(rec, [I64(k)])) for k in range(7)]
        with b.if_else(b.icmp_signed("==", w[0], I64(0))) as (loop_job, other):
            with loop_job:
                target = b.inttoptr(w[1], loop_ty.as_pointer())
                b.call(target, [b.inttoptr(w[2], P)] + w[3:7])
            with other:
                with b.if_else(b.icmp_signed("==", w[0], I64(1))) as (gemm_job, not_gemm):
                    with gemm_job:
                        b.call(pool_call, [b.gep(rec, [I64(1)])])
                    with not_gemm:
                        with b.if_else(b.icmp_signed("==", w[0], I64(HOST_KIND))) as (host, split):
                            with host:
                                host_call(rec, i)
                            with split:
                                fork_or_join(w)

    def host_call(rec, i):
        result = emit_host_call(b, rec)
        with b.if_then(b.icmp_signed("!=", result, I64(0))):
            b.store(result, status)
            b.store(i, b.gep(status, [I64(1)]))
            b.store(ir.Constant(ir.IntType(1), 1), stopped)

    def fork_or_join(w):
        pooled = b.icmp_signed("!=", use_pool, I64(0))
        with b.if_else(b.icmp_signed("==", w[0], I64(2))) as (is_fork, is_join):
            with is_fork:
                with b.if_then(pooled):
                    fork(w[1], w[2])
            with is_join:
                with b.if_else(pooled) as (with_pool, alone):
                    with with_pool:
                        join(w[1], w[2])
                    with alone:  # the workers' parts, here, in order
                        counted_loop(b, I64(0), w[1], 1,
                                     lambda k: b.call(pool_call, [part(b.add(w[2], k))]),
                                     "serial")

    def run_unless_stopped(i):  # a host call that failed stops the program
        with b.if_then(b.not_(b.load(stopped))):
            run(i)
    counted_loop(b, first, b.add(first, n), 1, run_unless_stopped, "jobs")
    b.ret_void()
    _build_loop_entry(module, loop_ty)
    build_poll_wait(module)
    program_call.build_entries(module, fn)
    return module


def _build_loop_entry(module, loop_ty) -> None:
    """``lucid_loop_part``: a loop kernel's part behind a GEMM entry's signature, so the
    worker pool (which calls GEMM entries) runs it. Its words: the kernel's address,
    its block's address, lo, (alpha: unused), hi, lo2, hi2."""
    from lucid_codegen.runtime.spin import GEMM_ARGS
    ptr = ir.IntType(8).as_pointer()
    kinds = {"i": I64, "d": ir.DoubleType(), "p": ptr}
    fn = ir.Function(module, ir.FunctionType(ir.IntType(32), [kinds[k] for k in GEMM_ARGS]), "lucid_loop_part")
    target, block, lo, _, hi, lo2, hi2 = fn.args[:7]
    b = ir.IRBuilder(fn.append_basic_block("entry"))
    b.call(b.inttoptr(target, loop_ty.as_pointer()),
           [b.inttoptr(block, I64.as_pointer()), lo, b.ptrtoint(hi, I64), lo2, hi2])
    b.ret(ir.IntType(32)(0))


_LIB: list = []   # [the loaded library]
_LOCK = threading.Lock()
_LABEL = "the native plan runner"


def _entry() -> tuple:
    """``(key, build, symbols)`` of the library, as the cache takes them."""
    return (f"jobs:{source_stamp(*GENERATOR)}", _build,
            ["lucid_run_program", "lucid_program_call", "lucid_program_check", "lucid_loop_part",
             "lucid_poll_wait"])


def _library():
    with _LOCK:
        if not _LIB:
            _LIB.append(load_or_compile(*_entry(), label=_LABEL, pipeline=llvm.LOOPS))
    return _LIB[0]


def loaded() -> bool:
    """Whether the library is linked into the process."""
    return bool(_LIB)


def cached() -> bool:
    """Whether loading the library would only link it (``cache.available``)."""
    return available(_entry()[0], llvm.LOOPS)


def precompile_library() -> None:
    """The library's object compiled (and cached), not linked (``cache.precompile``)."""
    precompile(*_entry(), label=_LABEL, pipeline=llvm.LOOPS)


def program_entries() -> tuple:
    """The addresses of ``lucid_program_call`` and ``lucid_program_check`` (see
    ``program_call``)."""
    lib = _library()
    return lib.address("lucid_program_call"), lib.address("lucid_program_check")


def loop_entry() -> int:
    """The address of ``lucid_loop_part`` (see ``_build_loop_entry``)."""
    return _library().address("lucid_loop_part")


def poll_wait_entry() -> int:
    """The address of ``lucid_poll_wait`` (see ``host_calls.build_poll_wait``)."""
    return _library().address("lucid_poll_wait")
