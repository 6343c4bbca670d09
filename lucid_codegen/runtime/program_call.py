"""A native program's call as one CPython builtin: ``lucid_program_call``.

A ``NativeProgram`` (``native_plan``) runs a plan's kernels from one list of job
records, patching in the addresses of the call's inputs and of the output buffers it
hands back. Called through ctypes, that call costs ~1.5 µs before any kernel runs, and
the Python side first has to build a key of every input's layout to be sure the program
fits. ``lucid_program_call`` is a ``METH_FASTCALL`` builtin (made as ``eager_call`` makes
its trampolines) whose ``self`` is the program's *header block*; it receives the input
arrays and then the output buffers as objects and does all of that natively:

1. the layout check: the argument count, and for every input its type (exactly
   ``numpy.ndarray``), dtype (the very descriptor object the program was built with),
   number of dimensions, shape and strides, compared with the block's records; a
   donated input (written in place) must be writeable and passed for no other input;
2. the fixups and the jobs: ``lucid_run_program`` (``native_runner``) with the
   argument vector as its operand array, reading each operand's data pointer from the
   array object (``pyarray.PYARRAY_OFFSETS``);
3. optionally around 2., the GIL released (``PyEval_SaveThread``), for programs with
   enough work that other Python threads should run meanwhile.

It returns the block itself when the program ran, and the block's *mismatch* object
(the program runs nothing) when a check fails: the caller then takes the general path.
When a host call stopped the program (``host_calls``), it returns the block's *failed*
object, with the call's result and record index in the header (``STATUS``,
``FAILED_AT``): the caller raises the error.
``lucid_program_check`` makes step 1 alone over the first arguments it is given, for a
caller that must know the program will run before it computes its last inputs.

Header block (int64 words, a numpy array kept by the program)::

    [0] job words' address   [1] number of in-order job records
    [2] fixups' address      [3] number of fixups
    [4] the worker pool's control words' address, 0: no pool (written per call)
    [5] argument count       [6] inputs checked (the first arguments)
    [7] PyEval_SaveThread, [8] PyEval_RestoreThread (0: keep the GIL)
    [9] numpy.ndarray's address   [10] the mismatch object's address
    [11] number of donated inputs  [12] where their positions start
    [13] the failed object's address   [14] a failed host call's result, 0: none
    [15] that call's record index
    [16 .. 16 + inputs)  where input k's record starts (a word index into the block)
    the donated inputs' positions
    records: [descriptor address, flags it must have, ndim, shape..., strides...]

>>> import numpy as np
>>> x = np.zeros((2, 3), np.float32)
>>> layout_record(x, donated=False)[1:]   # flags required, ndim, shape, strides (bytes)
[0, 2, 2, 3, 12, 4]
"""
from __future__ import annotations

import ctypes

import llvmlite.ir as ir
import numpy as np

from lucid_codegen.runtime.pyarray import DESCR_OFFSET, FLAGS_OFFSET, ND_OFFSET, PYARRAY_OFFSETS, TYPE_OFFSET, WRITEABLE_FLAG

I64 = ir.IntType(64)
I32 = ir.IntType(32)
I8P = ir.IntType(8).as_pointer()
P = I64.as_pointer()

(WORDS, N_JOBS, FIX, N_FIX, CTL, NARGS, N_INPUTS, SAVE_THREAD, RESTORE_THREAD,
 NDARRAY, MISMATCH, N_DONATED, DONATED_AT, FAILED, STATUS, FAILED_AT) = range(16)
HEADER = 16


def build_entries(module: ir.Module, run_program: ir.Function) -> None:
    """Add ``PyObject* lucid_program_call(PyObject* block, PyObject** args, i64 nargs)``
    (see the module docstring; ``run_program`` is ``lucid_run_program``) and
    ``lucid_program_check``, the same checks over the first ``nargs`` inputs only,
    running nothing (a caller that must know the program will run before it computes
    its last inputs: run-time scalars whose source counts steps)."""
    e = _Entry(module, "lucid_program_call")
    b, hdr = e.b, e.hdr
    e.check(b.icmp_signed("==", e.nargs, e.word(hdr, NARGS)))
    e.check_inputs(e.word(hdr, N_INPUTS))
    ctl = e.word(hdr, CTL)
    operands = b.bitcast(e.args, P)
    status = b.gep(hdr, [I64(STATUS)])
    b.store(I64(0), status)

    def run():
        b.call(run_program, [b.inttoptr(e.word(hdr, WORDS), P), I64(0), e.word(hdr, N_JOBS), operands,
                             b.inttoptr(e.word(hdr, FIX), P), e.word(hdr, N_FIX), I64(PYARRAY_OFFSETS[0]),
                             b.inttoptr(ctl, P), b.zext(b.icmp_signed("!=", ctl, I64(0)), I64), status])
    save = e.word(hdr, SAVE_THREAD)
    with b.if_else(b.icmp_signed("!=", save, I64(0))) as (released, held):
        with released:
            state = b.call(b.inttoptr(save, ir.FunctionType(I8P, []).as_pointer()), [])
            run()
            restore = ir.FunctionType(ir.VoidType(), [I8P]).as_pointer()
            b.call(b.inttoptr(e.word(hdr, RESTORE_THREAD), restore), [state])
        with held:
            run()
    with b.if_then(b.icmp_signed("!=", b.load(status), I64(0))):  # a host call stopped it
        _return_new_reference(b, b.inttoptr(e.word(hdr, FAILED), I8P))
    e.finish()

    e = _Entry(module, "lucid_program_check")
    e.check(e.b.icmp_signed("<=", e.nargs, e.word(e.hdr, N_INPUTS)))
    e.check_inputs(e.nargs)
    e.finish()


class _Entry:
    """A ``METH_FASTCALL`` function being emitted: its checks branch out to a block
    returning the mismatch object; ``finish()`` returns the block object."""

    def __init__(self, module: ir.Module, name: str):
        self.fn = ir.Function(module, ir.FunctionType(I8P, [I8P, I8P.as_pointer(), I64]), name)
        self.block_obj, self.args, self.nargs = self.fn.args
        self.b = ir.IRBuilder(self.fn.append_basic_block("entry"))
        self.mismatch = self.fn.append_basic_block("mismatch")
        self.hdr = self.b.inttoptr(self.field(self.block_obj, PYARRAY_OFFSETS[0]), P)

    def field(self, obj, offset, ty=I64):
        """The field at byte ``offset`` of an object."""
        b = self.b
        return b.load(b.bitcast(b.gep(obj, [I64(offset)]), ty.as_pointer()))

    def word(self, base, k):
        return self.b.load(self.b.gep(base, [k if isinstance(k, ir.Value) else I64(k)]))

    def check(self, ok) -> None:
        """On to the next check, or out to ``mismatch``."""
        cont = self.fn.append_basic_block("ok")
        self.b.cbranch(ok, cont, self.mismatch)
        self.b.position_at_end(cont)

    def count(self, lo, hi, body, name) -> None:
        """for (i = lo; i < hi; i++) body(i); body may branch out."""
        b = self.b
        pre = b.block
        hdr_bb, body_bb, end = (self.fn.append_basic_block(f"{name}.{s}") for s in ("hdr", "body", "end"))
        b.branch(hdr_bb)
        b.position_at_end(hdr_bb)
        i = b.phi(I64)
        i.add_incoming(lo, pre)
        b.cbranch(b.icmp_signed("<", i, hi), body_bb, end)
        b.position_at_end(body_bb)
        body(i)
        i.add_incoming(b.add(i, I64(1)), b.block)
        b.branch(hdr_bb)
        b.position_at_end(end)

    def check_inputs(self, n) -> None:
        """Arguments 0 .. n-1 against the records of inputs 0 .. n-1; a donated input
        among them passed for no other of them."""
        b, hdr, args, word, field = self.b, self.hdr, self.args, self.word, self.field

        def check_input(k):
            obj = b.load(b.gep(args, [k]))
            self.check(b.icmp_signed("==", field(obj, TYPE_OFFSET), word(hdr, NDARRAY)))
            rec = b.gep(hdr, [word(hdr, b.add(k, I64(HEADER)))])
            nd = b.sext(field(obj, ND_OFFSET, I32), I64)
            flags = b.sext(field(obj, FLAGS_OFFSET, I32), I64)
            self.check(b.and_(b.and_(b.icmp_signed("==", field(obj, DESCR_OFFSET), word(rec, 0)),
                                     b.icmp_signed("==", b.and_(flags, word(rec, 1)), word(rec, 1))),
                              b.icmp_signed("==", nd, word(rec, 2))))
            dims = b.inttoptr(field(obj, PYARRAY_OFFSETS[1]), P)
            strides = b.inttoptr(field(obj, PYARRAY_OFFSETS[2]), P)

            def check_dim(d):
                same_dim = b.icmp_signed("==", word(dims, d), word(rec, b.add(d, I64(3))))
                same_stride = b.icmp_signed("==", word(strides, d), word(rec, b.add(d, b.add(nd, I64(3)))))
                self.check(b.and_(same_dim, same_stride))
            self.count(I64(0), nd, check_dim, "dim")
        self.count(I64(0), n, check_input, "input")

        def check_donated(j):  # a donated input is no other input's array too
            i = word(hdr, b.add(word(hdr, DONATED_AT), j))
            with b.if_then(b.icmp_signed("<", i, n)):
                donated = b.ptrtoint(b.load(b.gep(args, [i])), I64)

                def differs(k):
                    other = b.ptrtoint(b.load(b.gep(args, [k])), I64)
                    self.check(b.or_(b.icmp_signed("==", k, i), b.icmp_signed("!=", other, donated)))
                self.count(I64(0), n, differs, "other")
        self.count(I64(0), word(hdr, N_DONATED), check_donated, "donated")

    def finish(self) -> None:
        _return_new_reference(self.b, self.block_obj)
        self.b.position_at_end(self.mismatch)
        _return_new_reference(self.b, self.b.inttoptr(self.word(self.hdr, MISMATCH), I8P))


def _return_new_reference(b: ir.IRBuilder, obj) -> None:
    refcount = b.bitcast(obj, P)  # ob_refcnt, the first field of every object
    b.store(b.add(b.load(refcount), I64(1)), refcount)
    b.ret(obj)


def layout_record(a: np.ndarray, donated: bool) -> list:
    """Input ``a``'s layout as the entry compares it: its dtype object's address, the
    flags it must have (writeable, when ``donated``), ndim, shape and strides."""
    return [id(a.dtype), WRITEABLE_FLAG if donated else 0, a.ndim, *a.shape, *a.strides]


def _address(fn) -> int:
    return ctypes.cast(fn, ctypes.c_void_p).value


class _MethodDef(ctypes.Structure):
    _fields_ = [("ml_name", ctypes.c_char_p), ("ml_meth", ctypes.c_void_p),
                ("ml_flags", ctypes.c_int), ("ml_doc", ctypes.c_char_p)]


_METH_FASTCALL = 0x0080
_new_builtin = ctypes.pythonapi.PyCFunction_NewEx
_new_builtin.restype = ctypes.py_object
_new_builtin.argtypes = [ctypes.c_void_p, ctypes.py_object, ctypes.c_void_p]
_DEFS: dict = {}  # entry address -> its PyMethodDef (it must outlive every builtin made from it)


def _builtin(name: bytes, entry: int, block: np.ndarray):
    """A builtin function object calling ``entry`` with ``block`` as its self."""
    method = _DEFS.get(entry)
    if method is None:
        method = _DEFS[entry] = _MethodDef(name, entry, _METH_FASTCALL, None)
    return _new_builtin(ctypes.addressof(method), block, None)


class ProgramCall:
    """``call(*inputs, *buffers)`` runs one program for inputs of exactly the layouts of
    ``inputs`` and returns ``block``; for anything else it runs nothing and returns
    another object. ``check(*first_inputs)`` returns ``block`` when the first inputs
    pass the same checks. ``donated``: the positions of inputs written in place.
    ``entries``: the addresses of ``lucid_program_call`` and ``lucid_program_check``;
    the job ``words`` and ``fix`` table are kept here as long as the calls read them."""

    def __init__(self, entries: tuple, words: np.ndarray, n_jobs: int, fix: np.ndarray, n_fix: int,
                 inputs: list, donated, n_buffers: int, release_gil: bool):
        donated = sorted(set(donated))
        records = [layout_record(a, k in donated) for k, a in enumerate(inputs)]
        starts, at = [], HEADER + len(inputs) + len(donated)
        for r in records:
            starts.append(at)
            at += len(r)
        self.words, self.fix = words, fix
        self.mismatch = np.zeros(0, np.int64)   # what a call that ran nothing returns
        self.failed = np.zeros(0, np.int64)     # what a call stopped by a host call returns
        header = [0] * HEADER
        header[WORDS], header[N_JOBS] = words.ctypes.data, n_jobs
        header[FIX], header[N_FIX] = fix.ctypes.data, n_fix
        header[NARGS], header[N_INPUTS] = len(inputs) + n_buffers, len(inputs)
        if release_gil:
            header[SAVE_THREAD] = _address(ctypes.pythonapi.PyEval_SaveThread)
            header[RESTORE_THREAD] = _address(ctypes.pythonapi.PyEval_RestoreThread)
        header[NDARRAY], header[MISMATCH] = id(np.ndarray), id(self.mismatch)
        header[FAILED] = id(self.failed)
        header[N_DONATED], header[DONATED_AT] = len(donated), HEADER + len(inputs)
        self.block = np.array(header + starts + donated + [w for r in records for w in r], np.int64)
        call_entry, check_entry = entries
        self.call = _builtin(b"lucid_program_call", call_entry, self.block)
        self.check = _builtin(b"lucid_program_check", check_entry, self.block)

    def failure(self) -> tuple:
        """(result, record index) of the host call that stopped the last call."""
        return int(self.block[STATUS]), int(self.block[FAILED_AT])

    def set_pool(self, ctl: int) -> None:
        """The worker pool's control words for the next call (0: run every part here)."""
        self.block[CTL] = ctl
