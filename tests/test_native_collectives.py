"""Collective nodes (``all_reduce``, ``broadcast``) inside native programs, in one
process: with no communicator (a world of one rank) they are copies; with a registered
communicator they are host calls (``lucid_codegen.runtime.host_calls``), into Python or into the
calls its ``native_collective`` gives. Every case matches the reference interpreter
exactly. (The real MPI calls run under ``mpiexec``: tests/test_distributed.py.)"""
from __future__ import annotations

import ctypes

import numpy as np
import pytest

from lucid.compiler import compile_graph
from lucid_codegen.runtime import host_calls
from lucid_codegen.runtime import native_runner
from lucid_codegen.runtime.host_calls import HostJob, python_host_call
from lucid_ir.builder import GraphBuilder
from lucid_ir.interpreter import interpret
from lucid_ir.ops import collective


def _programs(plan):
    return [p for p in getattr(plan._local, "programs", {}).values() if p]


@pytest.fixture(autouse=True)
def _no_communicator():
    collective.set_communicator(None)
    yield
    collective.set_communicator(None)


def _graph(dtype: str):
    """Collectives of a plan input (contiguous and transposed), one feeding a kernel, and
    a broadcast; outputs straight from collectives and from a kernel after one."""
    b = GraphBuilder()
    x, w = b.input((6, 5), dtype), b.input((5, 4), dtype)
    y = b.emit("matmul", x, w) if dtype != "int64" else b.emit("mul", x, x)
    ops = ["sum", "max", "min"] + (["avg"] if dtype != "int64" else [])
    outs = [b.emit("all_reduce", x, reduce=op) for op in ops]
    outs += [b.emit("all_reduce", b.emit("transpose", y, perm=(1, 0)), reduce=op) for op in ops]
    outs.append(b.emit("mul", b.emit("all_reduce", y, reduce=ops[-1]), y))
    outs.append(b.emit("broadcast", w, src=0))
    return b.build(outs), len(ops) * 2 + 2


def _feeds(rng, dtype):
    return [(rng.standard_normal(s) * 4).astype(dtype) for s in ((6, 5), (5, 4))]


def _run(graph, dtype, calls=4, seed=0):
    plan = compile_graph(graph).executable
    rng = np.random.default_rng(seed)
    for _ in range(calls):
        feeds = _feeds(rng, dtype)
        for got, want in zip(plan(feeds), interpret(graph, feeds)):
            assert got.dtype == want.dtype and np.array_equal(got, want)
    return plan


@pytest.mark.parametrize("dtype", ["float64", "float32", "int64"])
def test_one_rank_collectives_are_copies_in_the_native_program(dtype):
    graph, _ = _graph(dtype)
    plan = _run(graph, dtype)
    (program,) = _programs(plan)
    assert not program.host_jobs                      # no communicator: nothing to call


class PythonComm:
    """Three ranks as seen by rank 0: the others hold x + 1 and 2x; broadcast adds 5."""

    def __init__(self, size=3):
        self.size = size
        self.calls = 0
        self.fail_with = None

    def all_reduce(self, a, op):
        self.calls += 1
        if self.fail_with is not None:
            raise self.fail_with
        others = np.stack([a, a + 1, a * 2][:self.size])
        if op == "avg":
            a[...] = np.divide(others.sum(axis=0), self.size)
        else:
            a[...] = {"sum": np.sum, "max": np.max, "min": np.min}[op](others, axis=0)

    def broadcast(self, a, src):
        self.calls += 1
        a += 5


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_a_python_communicator_is_called_from_the_native_program(dtype):
    graph, n_collectives = _graph(dtype)
    comm = PythonComm()
    collective.set_communicator(comm)
    plan = _run(graph, dtype)
    (program,) = _programs(plan)
    assert len(program.host_jobs) == n_collectives    # one call into Python each
    before = comm.calls
    plan(_feeds(np.random.default_rng(9), dtype))
    assert comm.calls - before == n_collectives


def test_a_new_communicator_rebuilds_the_program():
    graph, n = _graph("float64")
    collective.set_communicator(PythonComm(3))
    plan = _run(graph, "float64")
    first = _programs(plan)[0]
    collective.set_communicator(PythonComm(2))        # another world: the old program is stale
    rng = np.random.default_rng(5)
    for _ in range(3):
        feeds = _feeds(rng, "float64")
        for got, want in zip(plan(feeds), interpret(graph, feeds)):
            assert np.array_equal(got, want)
    assert first.stale
    (second,) = _programs(plan)
    assert second is not first and len(second.host_jobs) == n
    collective.set_communicator(None)                 # back to one rank: copies again
    for _ in range(3):
        feeds = _feeds(rng, "float64")
        for got, want in zip(plan(feeds), interpret(graph, feeds)):
            assert np.array_equal(got, want)
    (third,) = _programs(plan)
    assert not third.host_jobs


def test_an_error_in_a_collective_stops_the_program_and_is_raised():
    b = GraphBuilder()
    x = b.input((3,), "float64")
    r = b.emit("all_reduce", x, reduce="sum")
    graph = b.build([b.emit("add", r, b.constant(1.0, dtype="float64"))])
    comm = PythonComm()
    collective.set_communicator(comm)
    plan = compile_graph(graph).executable
    for _ in range(3):
        plan([np.ones(3)])
    assert _programs(plan)
    comm.fail_with = KeyError("rank 2 is gone")
    with pytest.raises(KeyError, match="rank 2 is gone"):
        plan([np.ones(3)])
    comm.fail_with = None
    (got,) = plan([np.arange(3.0)])                   # and the program runs again
    assert np.array_equal(got, interpret(graph, [np.arange(3.0)])[0]) and _programs(plan)


class NativeComm(PythonComm):
    """A communicator with ``native_collective``, its calls made with ``python_host_call``
    (standing in for MPI's): sums send the others' values (x + 1 and 2x) from the input
    when not in place; an average is left to the program's division."""

    def __init__(self):
        super().__init__(3)
        self.requests = []

    def native_collective(self, name, value, dtype, count, in_place):
        self.requests.append((name, value, in_place))

        def view(address):
            return np.frombuffer((ctypes.c_char * (count * dtype.itemsize)).from_address(address), dtype)

        def combine(src, dst):
            others = np.stack([src, src + 1, src * 2])
            dst[...] = {"sum": np.sum, "max": np.max, "min": np.min}[value](others, axis=0)
            return 0
        if name == "broadcast":
            job = python_host_call(lambda buf: self.broadcast(view(buf), value) or 0, 1)
            job.out_words = [0]
        elif in_place:
            job = python_host_call(lambda buf: combine(view(buf).copy(), view(buf)), 1)
            job.out_words = [0]
        else:
            job = python_host_call(lambda send, recv: combine(view(send), view(recv)), 2)
            job.in_words, job.out_words = [0], [1]
        return [job]


def test_native_collective_calls_read_the_input_and_average_by_division():
    graph, n = _graph("float64")
    comm = NativeComm()
    collective.set_communicator(comm)
    plan = _run(graph, "float64")
    (program,) = _programs(plan)
    assert len(program.host_jobs) == n
    asked = set(comm.requests)
    # contiguous inputs are sent from where they are; the transposed one is copied first;
    # the average is asked for as a sum (the program divides)
    assert ("all_reduce", "sum", False) in asked and ("all_reduce", "sum", True) in asked
    assert ("broadcast", 0, True) in asked and not any(v == "avg" for _, v, _ in asked)


def test_a_failing_host_call_stops_the_jobs_after_it():
    seen = []

    def record(*args):
        seen.append(args)
        return 0
    jobs = [python_host_call(record, n) for n in range(host_calls.HOST_MAX_ARGS + 1)]
    for n, job in enumerate(jobs):
        job.args = [100 * n + k for k in range(n)]
    jobs += [python_host_call(lambda: 7, 0), python_host_call(record, 1)]
    words = np.zeros(len(jobs) * native_runner.JOB_WORDS, np.int64)
    for i, job in enumerate(jobs):
        at = i * native_runner.JOB_WORDS
        words[at:at + 3 + len(job.args)] = [host_calls.HOST_KIND, job.fn, len(job.args), *job.args]
    status = np.zeros(2, np.int64)
    run = ctypes.CFUNCTYPE(None, *[ctypes.c_int64] * 10)(native_runner._library().address("lucid_run_program"))
    run(words.ctypes.data, 0, len(jobs), 0, 0, 0, 0, 0, 0, status.ctypes.data)
    assert seen == [tuple(100 * n + k for k in range(n)) for n in range(host_calls.HOST_MAX_ARGS + 1)]
    assert status.tolist() == [7, host_calls.HOST_MAX_ARGS + 1]      # the last job never ran


def test_a_host_call_has_at_most_eight_arguments():
    with pytest.raises(ValueError, match="at most 8"):
        HostJob(0, [0] * 9)


# -- lucid_poll_wait ---------------------------------------------------------------

CALL = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_int64, ctypes.POINTER(ctypes.c_int), ctypes.c_void_p)
CLOCK = ctypes.CFUNCTYPE(ctypes.c_double)


def _wait(test, probe=None, handle=None, width=8, timeout=1e9, clock=None):
    keep = [CALL(test), CALL(probe) if probe else None, CLOCK(clock or (lambda: 0.0))]
    request = np.array([42], np.int64)
    handle_word = np.array([handle or 0], np.int64)
    block = np.array([ctypes.cast(keep[0], ctypes.c_void_p).value, request.ctypes.data,
                      ctypes.cast(keep[1], ctypes.c_void_p).value if probe else 0, handle_word.ctypes.data,
                      width, np.float64(timeout).view(np.int64), ctypes.cast(keep[2], ctypes.c_void_p).value],
                     np.int64)
    wait = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_void_p)(native_runner.poll_wait_entry())
    return wait(block.ctypes.data)


def _done_after(n, code=0):
    polls = []

    def test(request, flag, status):
        polls.append(request)
        flag[0] = int(len(polls) >= n)
        return code if len(polls) >= n else 0
    return test, polls


def test_poll_wait_returns_when_the_request_completes():
    test, polls = _done_after(3000)                   # past the spinning polls: it sleeps too
    assert _wait(test) == 0 and len(polls) == 3000
    assert len(set(polls)) == 1                       # the request's address, every time


def test_poll_wait_returns_the_tests_error_code():
    test, _ = _done_after(5, code=13)
    assert _wait(test) == 13


@pytest.mark.parametrize("width", [4, 8])
def test_poll_wait_stops_when_the_probe_fires(width):
    handles = []

    def probe(handle, flag, status):
        handles.append(handle)
        flag[0] = int(len(handles) >= 10)
        return 0
    test, _ = _done_after(10**9)
    handle = 0x1_2345_6789 if width == 8 else 0x7654_3210
    assert _wait(test, probe, handle, width) == host_calls.WAIT_PROBED
    assert set(handles) == {handle}                   # read at the width given


def test_poll_wait_times_out():
    now = [0.0]

    def clock():
        now[0] += 0.5
        return now[0]
    test, polls = _done_after(10**9)
    assert _wait(test, timeout=3.0, clock=clock) == host_calls.WAIT_TIMED_OUT
    assert host_calls.SPIN_POLLS < len(polls) < host_calls.SPIN_POLLS + 20
