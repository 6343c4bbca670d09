"""The process group: who this process is among the ranks that ``mpiexec`` started, how
long a collective may wait, and what happens when a rank fails.

Every collective waits by polling its MPI request; while it polls it also listens on a
second communicator for *fault notices*. A rank whose program raises sends a notice
naming itself and the error to every other rank, so the others stop with an error naming
the failing rank instead of hanging in their next collective; it then waits (a bounded
grace) for each of them to acknowledge, having printed its own error, before it exits:
the launcher kills every rank as soon as one exits with an error, and a rank slow to
wake (a loaded machine) would otherwise die before saying why it stopped. A
collective that waits longer than the group's ``timeout`` raises ``DistributedTimeout``.
The collectives of compiled graphs wait the same way from native code (``native_mpi``).
"""
from __future__ import annotations

import datetime
import os
import sys
import time

import numpy as np

from lucid_ir.ops import collective

from ._mpi import mpi

_NOTICE_BYTES = 2048
_FAULT_TAG = 7311
_ACK_TAG = 7312
_GRACE_SECONDS = 10.0    # how long a failing rank waits for the others' acknowledgements
_DEFAULT_TIMEOUT = datetime.timedelta(minutes=30)   # PyTorch's default for CPU backends


class DistributedError(RuntimeError):
    """Another rank failed: this rank stops too (the message names the failing rank)."""


class DistributedTimeout(RuntimeError):
    """A collective waited longer than the process group's timeout."""


class ProcessGroup:
    """The world of ranks (MPI's COMM_WORLD, duplicated so lucid's traffic is its own)."""

    def __init__(self, timeout: datetime.timedelta):
        MPI = mpi()
        self.comm = MPI.COMM_WORLD.Dup()
        self.faults = MPI.COMM_WORLD.Dup()
        self.rank = self.comm.Get_rank()
        self.size = self.comm.Get_size()
        self.timeout = timeout.total_seconds()
        self._notice = np.zeros(_NOTICE_BYTES, np.uint8)
        self._listen = self.faults.Irecv(self._notice, source=MPI.ANY_SOURCE, tag=_FAULT_TAG)
        self.failed: str | None = None
        self.failed_rank: int | None = None   # the rank whose notice this one received
        self._native = None                # NativeMPI, False: none (made when first needed)

    # -- waiting ------------------------------------------------------------------
    def wait(self, request, what: str) -> None:
        """Wait for ``request``, raising ``DistributedError`` if another rank failed and
        ``DistributedTimeout`` after the group's timeout."""
        if request.Test():
            return
        start = time.monotonic()
        spins = 0
        while not request.Test():
            self.check_faults()
            spins += 1
            if spins > 2000:   # past the first ~ms: yield the core while waiting
                time.sleep(min(1e-3, 1e-6 * (spins - 2000)))
                if time.monotonic() - start > self.timeout:
                    raise self.timeout_error(what)

    def timeout_error(self, what: str) -> DistributedTimeout:
        return DistributedTimeout(
            f"lucid.distributed: {what} on rank {self.rank} waited more than {self.timeout:g} s "
            f"(a rank is stuck, or the ranks called different collectives)")

    def check_faults(self) -> None:
        if self.failed is None:
            status = mpi().Status()
            if self._listen.Test(status):
                self.failed = bytes(self._notice).rstrip(b"\0").decode("utf-8", "replace")
                self.failed_rank = status.Get_source()
        if self.failed is not None:
            raise DistributedError(f"lucid.distributed: rank {self.rank} stops because {self.failed}")

    # -- failing ------------------------------------------------------------------
    def announce_failure(self, exc: BaseException) -> None:
        """Tell every other rank that this one failed, then wait (at most
        ``_GRACE_SECONDS``) until each has acknowledged (``acknowledge``) or sent a
        notice of its own. A ``DistributedError`` is a consequence of another rank's
        failure: it is acknowledged instead of announced."""
        if isinstance(exc, DistributedError):
            self.acknowledge()
            return
        text = f"rank {self.rank} failed: {type(exc).__name__}: {exc}".encode()[:_NOTICE_BYTES - 1]
        notice = np.zeros(_NOTICE_BYTES, np.uint8)
        notice[:len(text)] = np.frombuffer(text, np.uint8)
        others = [r for r in range(self.size) if r != self.rank]
        sends = [self.faults.Isend(notice, dest=r, tag=_FAULT_TAG) for r in others]
        acks = {r: self.faults.Irecv(np.zeros(1, np.uint8), source=r, tag=_ACK_TAG) for r in others}
        deadline = time.monotonic() + _GRACE_SECONDS
        while (sends or acks) and time.monotonic() < deadline:
            sends = [r for r in sends if not r.Test()]
            acks = {r: q for r, q in acks.items() if not q.Test()}
            status = mpi().Status()
            if self.failed is None and self._listen.Test(status):   # failing too: no ack comes
                self.failed, self.failed_rank = "", status.Get_source()
                acks.pop(self.failed_rank, None)
            time.sleep(1e-3)

    def acknowledge(self) -> None:
        """Tell the rank whose failure stopped this one that this rank has reported it
        (bounded wait), so it may exit."""
        if self.failed_rank is None:
            return
        send = self.faults.Isend(np.ones(1, np.uint8), dest=self.failed_rank, tag=_ACK_TAG)
        deadline = time.monotonic() + 1.0
        while not send.Test() and time.monotonic() < deadline:
            time.sleep(1e-3)

    # -- what compiled graphs' collective nodes call (lucid_ir.ops.collective) -----------
    def all_reduce(self, array: np.ndarray, op: str) -> None:
        MPI = mpi()
        mop = {"sum": MPI.SUM, "avg": MPI.SUM, "max": MPI.MAX, "min": MPI.MIN}[op]
        self.wait(self.comm.Iallreduce(MPI.IN_PLACE, array, op=mop), "all_reduce (compiled)")
        if op == "avg":
            np.divide(array, self.size, out=array)

    def broadcast(self, array: np.ndarray, src: int) -> None:
        self.wait(self.comm.Ibcast(array, root=src), "broadcast (compiled)")

    def native_collective(self, name: str, value, dtype, count: int, in_place: bool):
        """The host calls running this collective from a native program (``native_mpi``),
        or None (the program then calls ``all_reduce`` / ``broadcast`` above)."""
        if self._native is None:
            from .native_mpi import NativeMPI
            self._native = NativeMPI.create(self) or False
        return self._native.collective(name, value, dtype, count, in_place) if self._native else None

    def close(self) -> None:
        self._listen.Cancel()
        self.comm.Free()
        self.faults.Free()


_GROUP: ProcessGroup | None = None
_PREVIOUS_HOOK = None


def group() -> ProcessGroup:
    """The initialised group, or the error PyTorch gives before ``init_process_group``."""
    if _GROUP is None:
        raise RuntimeError("Default process group has not been initialized, please make sure to "
                           "call lucid.distributed.init_process_group()")
    return _GROUP


def _excepthook(kind, exc, tb):
    """An uncaught error on this rank: print it, tell the other ranks, exit at once (an
    MPI program that unwinds normally would wait for ranks that are waiting for it)."""
    (_PREVIOUS_HOOK or sys.__excepthook__)(kind, exc, tb)
    g = _GROUP
    if g is not None:
        if not isinstance(exc, DistributedError):
            print(f"lucid.distributed: rank {g.rank} failed; telling the other {g.size - 1} rank(s)",
                  file=sys.stderr)
        sys.stderr.flush()
        sys.stdout.flush()
        g.announce_failure(exc)
    sys.stderr.flush()
    sys.stdout.flush()
    os._exit(1)


def init_process_group(backend: str = "mpi", init_method=None, timeout=None, world_size: int = -1,
                       rank: int = -1, store=None, group_name: str = "") -> None:
    """Join the ranks started by ``mpiexec -n N python script.py``.

    ``backend`` must be ``"mpi"`` (``"gloo"`` is accepted as an alias: both run on MPI
    here); ranks and world size come from the launcher, and ``world_size``/``rank``, if
    given, must agree with it. ``timeout`` (a ``datetime.timedelta``, default 30 min)
    bounds every collective's wait.
    """
    global _GROUP, _PREVIOUS_HOOK
    if _GROUP is not None:
        raise RuntimeError("trying to initialize the default process group twice!")
    if backend not in ("mpi", "gloo"):
        raise ValueError(f"init_process_group: backend {backend!r} is not available; lucid runs its "
                         f"collectives on MPI: backend='mpi'")
    if timeout is None:
        timeout = _DEFAULT_TIMEOUT
    if not isinstance(timeout, datetime.timedelta):
        raise TypeError(f"init_process_group: timeout must be a datetime.timedelta, got {type(timeout).__name__}")
    g = ProcessGroup(timeout)
    for name, given, actual in (("world_size", world_size, g.size), ("rank", rank, g.rank)):
        if given not in (-1, None) and given != actual:
            g.close()
            raise ValueError(f"init_process_group: {name}={given} but the MPI launcher started this "
                             f"process with {name} {actual}")
    _GROUP = g
    collective.set_communicator(g)
    if sys.excepthook is not _excepthook:
        _PREVIOUS_HOOK = sys.excepthook
        sys.excepthook = _excepthook


def destroy_process_group(group=None) -> None:
    """Leave the process group (after a final barrier, so no rank exits mid-collective)."""
    global _GROUP
    g = _GROUP
    if g is None:
        raise RuntimeError("destroy_process_group: the default process group has not been initialized")
    _GROUP = None
    collective.set_communicator(None)
    g.close()
    if sys.excepthook is _excepthook:
        sys.excepthook = _PREVIOUS_HOOK or sys.__excepthook__


def is_initialized() -> bool:
    return _GROUP is not None


def is_available() -> bool:
    from ._mpi import available
    return available()


def is_mpi_available() -> bool:
    return is_available()


def get_rank(group=None) -> int:
    """This process's rank (0 … world_size-1)."""
    return _group_arg(group).rank


def get_world_size(group=None) -> int:
    return _group_arg(group).size


def get_backend(group=None) -> str:
    _group_arg(group)
    return "mpi"


def _group_arg(g) -> ProcessGroup:
    if g is not None and g is not _GROUP:
        raise ValueError("lucid.distributed supports the default (world) process group only")
    return group()
