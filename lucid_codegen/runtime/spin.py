"""Native spin-waits and the native worker loop of the thread pool.

Spin-waits wait for a shared 64-bit word to change, with the GIL released.

Handing work to a thread that sleeps in the kernel costs ~50-80 µs on this VM (futex
wake-up of an idle vCPU, then the GIL). A worker that spins natively for a short while
after its last job sees new work within a microsecond, and spinning in native code
(through ctypes) leaves the GIL to the thread that posts the work.

>>> import numpy as np
>>> word = np.zeros(1, np.int64)
>>> changed(word, 0, 1000)   # nothing changed: returns the old value after 1000 polls
0
>>> word[0] = 7
>>> changed(word, 0, 1000), reached(word, 7, 10)
(7, True)
"""
from __future__ import annotations

import ctypes

import llvmlite.ir as ir
import numpy as np

from lucid_codegen.jit import llvm
from lucid_codegen.jit.cache import load_or_compile, source_stamp
from lucid_codegen.runtime.pyarray import data_ptr
from lucid_codegen.jit.target import host_target

I64 = ir.IntType(64)
I1 = ir.IntType(1)


#: a spinning thread gives its core away (``sched_yield``) once every this many polls:
#: free when nothing else wants the core, and when something does (another process's
#: threads, more threads than cores) the thread it waits for gets to run
YIELD_EVERY = 64


def relax(b: ir.IRBuilder, i) -> None:
    """One poll's pause in a spin loop (``i``: the poll count), yielding the core every
    ``YIELD_EVERY`` polls."""
    module = b.module
    if "x86" in host_target().triple:
        pause = module.globals.get("llvm.x86.sse2.pause") or ir.Function(
            module, ir.FunctionType(ir.VoidType(), []), "llvm.x86.sse2.pause")
        b.call(pause, [])
    sched_yield = module.globals.get("sched_yield") or ir.Function(
        module, ir.FunctionType(ir.IntType(32), []), "sched_yield")
    with b.if_then(b.icmp_signed("==", b.and_(i, I64(YIELD_EVERY - 1)), I64(YIELD_EVERY - 1))):
        b.call(sched_yield, [])


def _poll_loop(fn, test):
    """Body: poll *addr up to ``iters`` times; return early when ``test(b, value)``."""
    addr, arg, iters = fn.args
    entry = fn.append_basic_block("entry")
    loop = fn.append_basic_block("loop")
    check = fn.append_basic_block("check")
    found = fn.append_basic_block("found")
    done = fn.append_basic_block("done")
    b = ir.IRBuilder(entry)
    b.branch(loop)
    b.position_at_end(loop)
    i = b.phi(I64)
    i.add_incoming(I64(0), entry)
    value = b.load_atomic(addr, "acquire", 8)
    b.cbranch(test(b, value, arg), found, check)
    b.position_at_end(check)
    relax(b, i)
    nxt = b.add(i, I64(1))
    i.add_incoming(nxt, b.block)
    b.cbranch(b.icmp_signed("<", nxt, iters), loop, done)
    b.position_at_end(found)
    b.ret(value)
    b.position_at_end(done)
    return b


#: A native job: slot 0 the function's address (0: a Python job, 1: nothing to do this
#: round), then the 17 arguments of a GEMM entry (sizes, alpha's bits, pointers, strides).
JOB_WORDS = 18
#: Per worker, a block of this many int64 words: [0] last generation done, [1] asleep,
#: [2] the claim: the generation whose native job nobody has started yet (a worker, or
#: a native program that posted the job and then runs it itself if the worker has not
#: started, takes it by swapping it for 0), [8 ...] its job. Block 0 belongs to the
#: caller: [0] is the generation it posts.
BLOCK = 32
CLAIM_AT = 2
JOB_AT = 8
GEMM_ARGS = ("i", "i", "i", "d", "p", "i", "i", "p", "i", "i", "p", "i", "p", "p", "i", "i", "p")


def build_gemm_call(module):
    """``void lucid_pool_call(i64* job)``: call job[0] as a GEMM entry with job[1:]."""
    ptr = ir.IntType(8).as_pointer()
    kinds = {"i": I64, "d": ir.DoubleType(), "p": ptr}
    target_ty = ir.FunctionType(ir.IntType(32), [kinds[k] for k in GEMM_ARGS])
    fn = ir.Function(module, ir.FunctionType(ir.VoidType(), [I64.as_pointer()]), "lucid_pool_call")
    b = ir.IRBuilder(fn.append_basic_block("entry"))
    job = fn.args[0]
    words = [b.load(b.gep(job, [I64(k)])) for k in range(JOB_WORDS)]
    args = []
    for kind, word in zip(GEMM_ARGS, words[1:]):
        if kind == "d":
            args.append(b.bitcast(word, ir.DoubleType()))
        elif kind == "p":
            args.append(b.inttoptr(word, ptr))
        else:
            args.append(word)
    b.call(b.inttoptr(words[0], target_ty.as_pointer()), args)
    b.ret_void()
    return fn


def _worker_loop(module, call_fn):
    """``i64 lucid_pool_worker(i64* ctl, i64 w, i64 polls)``: run native jobs as they are
    posted; return a generation whose job is Python's (job[0] == 0), or 0 after ``polls``
    polls without work (the Python side then sleeps)."""
    fn = ir.Function(module, ir.FunctionType(I64, [I64.as_pointer(), I64, I64]), "lucid_pool_worker")
    ctl, w, polls = fn.args
    entry, outer, poll, wait, got, native, done, idle = (
        fn.append_basic_block(n) for n in ("entry", "outer", "poll", "wait", "got", "native", "done", "idle"))
    b = ir.IRBuilder(entry)
    block = b.gep(ctl, [b.mul(w, I64(BLOCK))])
    job = b.gep(block, [I64(JOB_AT)])
    first = b.load_atomic(block, "acquire", 8)
    b.branch(outer)
    b.position_at_end(outer)
    last = b.phi(I64)
    last.add_incoming(first, entry)
    b.branch(poll)
    b.position_at_end(poll)
    i = b.phi(I64)
    i.add_incoming(I64(0), outer)
    g = b.load_atomic(ctl, "acquire", 8)
    b.cbranch(b.icmp_signed("!=", g, last), got, wait)
    b.position_at_end(wait)
    relax(b, i)
    nxt = b.add(i, I64(1))
    i.add_incoming(nxt, b.block)
    b.cbranch(b.icmp_signed("<", nxt, polls), poll, idle)
    b.position_at_end(idle)
    b.ret(I64(0))
    b.position_at_end(got)
    target = b.load_atomic(job, "acquire", 8)
    python_job = b.icmp_signed("==", target, I64(0))
    with b.if_then(python_job):
        b.ret(g)
    b.cbranch(b.icmp_signed("==", target, I64(1)), done, native)
    b.position_at_end(native)
    claim = b.cmpxchg(b.gep(block, [I64(CLAIM_AT)]), g, I64(0), "acq_rel", "acquire")
    with b.if_then(b.extract_value(claim, 1)):  # nobody started this generation's job
        b.call(call_fn, [job])
    b.branch(done)
    b.position_at_end(done)
    b.store_atomic(g, block, "release", 8)
    last.add_incoming(g, done)
    b.branch(outer)


def _build() -> ir.Module:
    module = ir.Module("lucid_spin")
    sig = ir.FunctionType(I64, [I64.as_pointer(), I64, I64])
    changed_fn = ir.Function(module, sig, "lucid_spin_changed")
    b = _poll_loop(changed_fn, lambda b, v, old: b.icmp_signed("!=", v, old))
    b.ret(changed_fn.args[1])
    reached_fn = ir.Function(module, sig, "lucid_spin_reached")
    b = _poll_loop(reached_fn, lambda b, v, want: b.icmp_signed(">=", v, want))
    b.ret(I64(-1))
    _worker_loop(module, build_gemm_call(module))
    return module


#: The modules whose source decides the generated code (their stamp is in the key).
GENERATOR = ("runtime.spin", "runtime.pyarray")
_SIG = ctypes.CFUNCTYPE(ctypes.c_int64, ctypes.c_void_p, ctypes.c_int64, ctypes.c_int64)
_NATIVE: dict = {}


def _native() -> dict:
    """The module's functions, compiled (or loaded) on first use: a process that never
    runs work on the pool (one thread) never compiles them (~25 ms of a cold start)."""
    if not _NATIVE:
        lib = load_or_compile(f"spin/{source_stamp(*GENERATOR)}", _build,
                              ["lucid_spin_changed", "lucid_spin_reached", "lucid_pool_worker", "lucid_pool_call"],
                              label="spin-waits and the native worker loop", pipeline=llvm.LOOPS)
        _NATIVE.update(
            lib=lib, changed=_SIG(lib.address("lucid_spin_changed")), reached=_SIG(lib.address("lucid_spin_reached")),
            #: ``pool_worker(ctl_address, w, polls) -> generation or 0`` (GIL released inside)
            pool_worker=_SIG(lib.address("lucid_pool_worker")),
            #: ``pool_call(job_address)``: run one native job on this thread (GIL released inside)
            pool_call=ctypes.CFUNCTYPE(None, ctypes.c_void_p)(lib.address("lucid_pool_call")))
    return _NATIVE


def __getattr__(name: str):
    """``pool_worker`` and ``pool_call`` (see ``_native``), once asked for."""
    if name in ("pool_worker", "pool_call"):
        fn = globals()[name] = _native()[name]
        return fn
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def changed_at(addr: int, old: int, polls: int) -> int:
    """Poll the int64 at ``addr`` until it differs from ``old`` (its new value) or
    ``polls`` polls have passed (returns ``old``). The GIL is released meanwhile."""
    return (_NATIVE or _native())["changed"](addr, old, polls)


def reached_at(addr: int, want: int, polls: int) -> bool:
    """Poll the int64 at ``addr`` until it is >= ``want`` (True) or time runs out (False)."""
    return (_NATIVE or _native())["reached"](addr, want, polls) != -1


def changed(word: np.ndarray, old: int, polls: int) -> int:
    return changed_at(data_ptr(word), old, polls)


def reached(word: np.ndarray, want: int, polls: int) -> bool:
    return reached_at(data_ptr(word), want, polls)
