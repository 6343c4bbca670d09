"""Host calls: a native program calling a C function of the host between its kernels.

A plan step that is neither a kernel nor a view, such as a collective across the ranks
of a data-parallel job (``collective_steps``), runs inside a native program
(``native_plan``) as *host call* jobs: record kind 4,
``[4, function address, n, argument 0 .. argument n-1]`` with ``n <= HOST_MAX_ARGS``,
calls ``int fn(arg 0, ..., arg n-1)``, every argument an int64 word (addresses, counts
and integer handles all travel in integer registers under the C calling convention, so
a function declared with ``int`` or pointer parameters takes them as they are). An
argument that is an operand's address is patched in per call like any job's operand
word (``HostJob.in_words`` / ``out_words``). A nonzero result stops the program: the
jobs after it do not run, and the caller raises what ``HostJob.fail`` raises for that
code (``native_plan.NativeProgram.run``).

Two host functions come with it:

* ``lucid_poll_wait`` (built into the runner's library, ``native_runner``) waits for a
  non-blocking request of MPI's shape, ``int test(request*, int* flag, status*)``,
  while watching a second request (``int probe(handle, int* flag, status*)``, which
  does not free it) and a deadline: a wait that can end with an error instead of a hang
  (``build_poll_wait`` describes its block).
* ``python_host_call(fn)``: a Python function behind a C function pointer (ctypes),
  for hosts without C entry points; it takes the GIL while it runs, and an exception
  it raises is kept and re-raised by the program's caller.

>>> job = python_host_call(lambda a, b: 0 if a + b == 5 else 1, 2)
>>> ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_int64, ctypes.c_int64)(job.fn)(2, 3)
0
"""
from __future__ import annotations

import ctypes
from dataclasses import dataclass, field

import llvmlite.ir as ir

I64 = ir.IntType(64)
I32 = ir.IntType(32)
DOUBLE = ir.DoubleType()
I8P = ir.IntType(8).as_pointer()
HOST_KIND = 4
#: at most this many argument words (a job record has room for 16)
HOST_MAX_ARGS = 8

#: ``lucid_poll_wait`` results besides 0 (done) and the test's own nonzero error codes
WAIT_PROBED, WAIT_TIMED_OUT = -1, -2
#: polls before a waiting thread starts sleeping (1 µs more per poll, up to 1 ms), as
#: ``lucid.distributed``'s Python wait does
SPIN_POLLS = 2000


def _no_failure(code: int):
    raise RuntimeError(f"a host call of a native program failed (code {code})")


@dataclass
class HostJob:
    """A call ``fn(*args)`` in a native program; ``in_words`` / ``out_words``: the
    argument positions that take the addresses of the step's input / output operands.
    ``fail(code)`` raises the error for a nonzero result. ``keep``: what the arguments
    point into (request words, parameter blocks, the callback object)."""

    fn: int
    args: list
    in_words: list = field(default_factory=list)
    out_words: list = field(default_factory=list)
    keep: tuple = ()
    fail: object = _no_failure

    def __post_init__(self):
        if len(self.args) > HOST_MAX_ARGS:
            raise ValueError(f"a host call takes at most {HOST_MAX_ARGS} argument words, got {len(self.args)}")


def emit_host_call(b: ir.IRBuilder, record):
    """At ``b``: the call of a kind-4 record (``record``: an i64 pointer to it), by the
    number of arguments it holds; its result as an i64 (an unknown count: -3)."""
    fn_word, count = b.load(b.gep(record, [I64(1)])), b.load(b.gep(record, [I64(2)]))
    args = [b.load(b.gep(record, [I64(3 + k)])) for k in range(HOST_MAX_ARGS)]
    start = b.block
    done = b.append_basic_block("host.done")
    cases = []
    switch = b.switch(count, done)
    for n in range(HOST_MAX_ARGS + 1):
        block = b.append_basic_block(f"host.{n}")
        switch.add_case(I64(n), block)
        b.position_at_end(block)
        target = b.inttoptr(fn_word, ir.FunctionType(I32, [I64] * n).as_pointer())
        cases.append((b.sext(b.call(target, args[:n]), I64), b.block))
        b.branch(done)
    b.position_at_end(done)
    result = b.phi(I64)
    result.add_incoming(I64(-3), start)
    for value, block in cases:
        result.add_incoming(value, block)
    return result


def build_poll_wait(module: ir.Module) -> ir.Function:
    """``int lucid_poll_wait(i64* block)``: poll ``test(request, &flag, status)`` until
    it sets the flag (0) or returns an error (that code); between polls, when there is a
    probe, ``probe(handle, &flag, status)`` with the handle read anew from its address
    (a flag: ``WAIT_PROBED``), and past ``SPIN_POLLS`` polls a sleep of 1 µs more per
    poll (at most 1 ms) and a look at the clock (past the deadline: ``WAIT_TIMED_OUT``).
    The block's words::

        [0] test   [1] the request's address   [2] probe (0: none)
        [3] the address of the probe's handle   [4] that handle's width in bytes (4 or 8)
        [5] the timeout in seconds (a double's bits)   [6] double clock(void), in seconds
    """
    fn = ir.Function(module, ir.FunctionType(I32, [I64.as_pointer()]), "lucid_poll_wait")
    block = fn.args[0]
    b = ir.IRBuilder(fn.append_basic_block("entry"))
    word = [b.load(b.gep(block, [I64(k)])) for k in range(7)]
    call_ty = ir.FunctionType(I32, [I64, I32.as_pointer(), I8P])
    test, probe = (b.inttoptr(w, call_ty.as_pointer()) for w in (word[0], word[2]))
    clock = b.inttoptr(word[6], ir.FunctionType(DOUBLE, []).as_pointer())
    usleep = module.globals.get("usleep") or ir.Function(module, ir.FunctionType(I32, [I32]), "usleep")
    timeout = b.bitcast(word[5], DOUBLE)
    flag = b.alloca(I32)
    status = b.bitcast(b.alloca(I64, I64(16)), I8P)   # room for any MPI_Status

    def tested():   # test's error code (nonzero: out), else whether the flag is set
        code = b.call(test, [word[1], flag, status])
        failed = b.append_basic_block("failed")
        ok = b.append_basic_block("ok")
        b.cbranch(b.icmp_signed("!=", code, I32(0)), failed, ok)
        b.position_at_end(failed)
        b.ret(code)
        b.position_at_end(ok)
        return b.icmp_signed("!=", b.load(flag), I32(0))

    b.store(I32(0), flag)
    finished = b.append_basic_block("finished")
    first = b.append_basic_block("first")
    b.cbranch(tested(), finished, first)
    b.position_at_end(first)
    start = b.call(clock, [])
    loop = b.append_basic_block("poll")
    b.branch(loop)
    b.position_at_end(loop)
    polls = b.phi(I64)
    polls.add_incoming(I64(0), first)
    check = b.append_basic_block("probe")
    b.cbranch(tested(), finished, check)
    b.position_at_end(check)
    with b.if_then(b.icmp_signed("!=", word[2], I64(0))):
        handle_at = b.inttoptr(word[3], I64.as_pointer())
        narrow = b.zext(b.load(b.bitcast(handle_at, I32.as_pointer())), I64)
        handle = b.select(b.icmp_signed("==", word[4], I64(4)), narrow, b.load(handle_at))
        b.store(I32(0), flag)
        code = b.call(probe, [handle, flag, status])
        with b.if_then(b.icmp_signed("!=", code, I32(0))):
            b.ret(code)
        with b.if_then(b.icmp_signed("!=", b.load(flag), I32(0))):
            b.ret(I32(WAIT_PROBED))
    nxt = b.add(polls, I64(1))
    with b.if_then(b.icmp_signed(">", nxt, I64(SPIN_POLLS))):
        pause = b.sub(nxt, I64(SPIN_POLLS))
        pause = b.select(b.icmp_signed("<", pause, I64(1000)), pause, I64(1000))
        b.call(usleep, [b.trunc(pause, I32)])
        waited = b.fsub(b.call(clock, []), start)
        with b.if_then(b.fcmp_ordered(">", waited, timeout)):
            b.ret(I32(WAIT_TIMED_OUT))
    polls.add_incoming(nxt, b.block)
    b.branch(loop)
    b.position_at_end(finished)
    b.ret(I32(0))
    return fn


def python_host_call(fn, n_args: int, fail=None) -> HostJob:
    """A ``HostJob`` calling the Python function ``fn(*int64 words) -> int`` through a
    C function pointer (its argument words are left for the caller to fill: zeros). An
    exception ``fn`` raises is kept; the job's result is then 1 and its ``fail``
    re-raises that exception (else ``fail(code)``: ``fail``, default a RuntimeError)."""
    kept: list = []

    def trampoline(*words):
        try:
            return int(fn(*words))
        except BaseException as exc:  # noqa: BLE001  (re-raised by the program's caller)
            kept[:] = [exc]
            return 1

    def reraise(code: int):
        if kept:
            exc = kept.pop()
            raise exc
        (fail or _no_failure)(code)

    c_fn = ctypes.CFUNCTYPE(ctypes.c_int, *[ctypes.c_int64] * n_args)(trampoline)
    return HostJob(ctypes.cast(c_fn, ctypes.c_void_p).value, [0] * n_args, keep=(c_fn,), fail=reraise)
