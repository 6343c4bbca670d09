"""MPI called from native programs: the collectives of compiled graphs.

A compiled data-parallel step (``lucid.compile`` over ``DistributedDataParallel``) holds
``all_reduce`` and ``broadcast`` nodes. Its plan runs as one native program
(``lucid_codegen.runtime.native_plan``) in which each collective is two *host calls*
(``lucid_codegen.runtime.host_calls``) straight into the MPI library that mpi4py loaded:

1. ``MPI_Iallreduce(send, recv, count, datatype, op, comm, &request)`` (``send`` is
   ``MPI_IN_PLACE`` when the program first copied the input into the output) or
   ``MPI_Ibcast(buffer, count, datatype, root, comm, &request)``, on the process group's
   communicator: the same non-blocking collectives as the Python path, so ranks running
   the step natively and ranks running it step by step (its first calls) match;
2. ``lucid_poll_wait``: ``MPI_Test`` until the request completes, watching the group's
   fault listener (``MPI_Request_get_status``, which leaves it to the Python side) and
   the group's timeout (``MPI_Wtime``), with the Python wait's spin-then-sleep.

So faults behave as on the Python path: when another rank fails, its notice ends the
wait and this rank raises ``DistributedError`` naming it; a wait longer than the group's
timeout raises ``DistributedTimeout``. (A blocking ``MPI_Allreduce`` could do neither.)
The program is stopped at that call, and the error raised from the plan's call. (Unlike
the Python wait, the native one does not see signals: Ctrl-C takes effect when the
collective completes, fails or times out.)

The handles come from mpi4py (``comm.handle``, the datatype mpi4py picks for the
buffer's format, ``MPI.SUM.handle``, ``int(MPI.IN_PLACE)``, the address of the fault
listener's handle) and the entry points from the already loaded library mpi4py uses.
Both are checked once: ``MPI_Comm_rank`` / ``MPI_Comm_size`` called through these entry
points with mpi4py's communicator handle must give mpi4py's rank and size, and
``MPI_Type_size`` of each datatype its item size. Where that fails (another loader,
handles that are not integers), ``NativeMPI.create`` gives None and a collective's step
calls the group's Python methods from the program instead (one native program still,
with a call into Python inside it).
"""
from __future__ import annotations

import ctypes
import os

import numpy as np

from lucid_codegen.runtime.host_calls import WAIT_PROBED, WAIT_TIMED_OUT, HostJob
from lucid_codegen.runtime.native_runner import poll_wait_entry

from ._mpi import mpi

_LIBRARY_NAMES = ("libmpi.so", "libmpi.so.12", "libmpi.so.40", "libmpi.dylib", "libmpi.12.dylib",
                  "libmpi.40.dylib")
_MAX_COUNT = 2**31 - 1   # counts are C ints (beyond: mpi4py's large-count calls, from Python)
_ENTRIES = ("MPI_Iallreduce", "MPI_Ibcast", "MPI_Test", "MPI_Request_get_status", "MPI_Wtime",
            "MPI_Comm_rank", "MPI_Comm_size", "MPI_Type_size", "MPI_Error_string")


def _word(handle: int) -> int:
    """An MPI handle as a signed 64-bit word (mpi4py shows some as unsigned)."""
    handle = int(handle)
    return handle - (1 << 64) if handle >= 1 << 63 else handle


def _loaded_library():
    """The MPI library already in this process (the one mpi4py loaded), or None: the
    process's global symbols, ``MPI4PY_LIBMPI``, then the usual names, never loading a
    library that is not loaded yet."""
    names = [os.environ.get("MPI4PY_LIBMPI")] if os.environ.get("MPI4PY_LIBMPI") else []
    for name in [None, *names, *_LIBRARY_NAMES]:
        try:
            lib = ctypes.CDLL(name) if name is None else ctypes.CDLL(name, os.RTLD_NOLOAD | os.RTLD_LAZY)
            for entry in _ENTRIES:
                getattr(lib, entry)
            return lib
        except (OSError, AttributeError):
            continue
    return None


class NativeMPI:
    """The entry points and handles of one process group, checked (see the module
    docstring); ``collective(...)`` builds the host calls of one collective."""

    @classmethod
    def create(cls, group):
        """The group's native MPI, or None when direct calls cannot be trusted."""
        lib = _loaded_library()
        if lib is None:
            return None
        try:
            native = cls(group, lib)
        except (AttributeError, TypeError, ValueError, OverflowError):
            return None
        return native if native.agrees() else None

    def __init__(self, group, lib):
        MPI = mpi()
        self.group, self.lib = group, lib
        self.address = {name: ctypes.cast(getattr(lib, name), ctypes.c_void_p).value for name in _ENTRIES}
        self.comm = _word(group.comm.handle)
        self.in_place = _word(int(MPI.IN_PLACE))
        self.ops = {"sum": _word(MPI.SUM.handle), "max": _word(MPI.MAX.handle), "min": _word(MPI.MIN.handle)}
        self.listen_at = MPI._addressof(group._listen)       # where mpi4py keeps its handle
        self.listen_width = MPI._sizeof(MPI.Request)
        if self.listen_width not in (4, 8):
            raise ValueError(f"MPI request handles of {self.listen_width} bytes")
        self.datatypes: dict = {}

    def agrees(self) -> bool:
        """Whether these entry points and mpi4py's handles mean what mpi4py means."""
        value = ctypes.c_int(-1)
        for entry, want in (("MPI_Comm_rank", self.group.rank), ("MPI_Comm_size", self.group.size)):
            fn = getattr(self.lib, entry)
            fn.restype, fn.argtypes = ctypes.c_int, [ctypes.c_int64, ctypes.POINTER(ctypes.c_int)]
            if fn(self.comm, ctypes.byref(value)) != 0 or value.value != want:
                return False
        return True

    def datatype(self, dtype: np.dtype):
        """The MPI datatype mpi4py sends ``dtype``'s buffers as (checked: its size is the
        item size), or None."""
        dtype = np.dtype(dtype)
        if dtype not in self.datatypes:
            self.datatypes[dtype] = None
            mpi_type = mpi()._typedict.get(memoryview(np.empty(0, dtype)).format.lstrip("<=@"))
            if mpi_type is not None:
                handle, size = _word(mpi_type.handle), ctypes.c_int(-1)
                fn = self.lib.MPI_Type_size
                fn.restype, fn.argtypes = ctypes.c_int, [ctypes.c_int64, ctypes.POINTER(ctypes.c_int)]
                if fn(handle, ctypes.byref(size)) == 0 and size.value == dtype.itemsize:
                    self.datatypes[dtype] = handle
        return self.datatypes[dtype]

    def collective(self, name: str, value, dtype, count: int, in_place: bool):
        """The host calls of ``all_reduce`` (``value``: "sum", "max" or "min") or
        ``broadcast`` (``value``: the root) of ``count`` elements: the start (operand
        words: the input unless ``in_place``, and the output) and the wait. None when
        the dtype or the operation has no MPI counterpart here."""
        datatype = self.datatype(dtype)
        if datatype is None or count > _MAX_COUNT or (name == "all_reduce" and value not in self.ops):
            return None
        request = np.zeros(1, np.int64)   # the request's handle (an int or a pointer)
        at = request.ctypes.data
        if name == "all_reduce":
            send, in_words = (self.in_place, []) if in_place else (0, [0])
            start = HostJob(self.address["MPI_Iallreduce"],
                            [send, 0, count, datatype, self.ops[value], self.comm, at],
                            in_words, [1], keep=(request,), fail=self._mpi_failed("MPI_Iallreduce"))
        elif name == "broadcast":
            if not in_place:
                return None
            start = HostJob(self.address["MPI_Ibcast"], [0, count, datatype, int(value), self.comm, at],
                            [], [0], keep=(request,), fail=self._mpi_failed("MPI_Ibcast"))
        else:
            return None
        block = np.array([self.address["MPI_Test"], at, self.address["MPI_Request_get_status"], self.listen_at,
                          self.listen_width, np.float64(self.group.timeout).view(np.int64),
                          self.address["MPI_Wtime"]], np.int64)
        what = f"{name} (compiled)"
        wait = HostJob(poll_wait_entry(), [block.ctypes.data], keep=(block, request),
                       fail=lambda code: self._wait_failed(what, code))
        return [start, wait]

    def _wait_failed(self, what: str, code: int):
        from .process_group import DistributedError
        if code == WAIT_PROBED:    # a fault notice came: it names the failing rank
            self.group.check_faults()
            raise DistributedError(f"lucid.distributed: rank {self.group.rank} stops because another rank failed")
        if code == WAIT_TIMED_OUT:
            raise self.group.timeout_error(what)
        self._mpi_failed("MPI_Test")(code)

    def _mpi_failed(self, entry: str):
        def fail(code: int):
            text = ctypes.create_string_buffer(1024)
            length = ctypes.c_int(0)
            self.lib.MPI_Error_string(ctypes.c_int(code), text, ctypes.byref(length))
            raise RuntimeError(f"lucid.distributed: {entry} failed on rank {self.group.rank}: "
                               f"{text.value.decode(errors='replace')} (code {code})")
        return fail
