"""Collectives on tensors, with PyTorch's signatures, zero-copy on the tensors' numpy
buffers (a non-contiguous tensor goes through one contiguous copy and back).

Every collective is non-blocking underneath (MPI's ``I*`` calls): ``async_op=True``
returns a ``Work`` whose ``wait()`` finishes it; otherwise it is waited for before
returning. Waiting polls, so a failed rank or the group's timeout ends the wait with an
error instead of a hang (see ``process_group``).
"""
from __future__ import annotations

import enum

import numpy as np

from ._mpi import mpi
from .process_group import _group_arg


class ReduceOp(enum.Enum):
    """How ``all_reduce`` and ``reduce_scatter`` combine the ranks' values."""
    SUM = "sum"
    AVG = "avg"
    PRODUCT = "product"
    MAX = "max"
    MIN = "min"
    BAND = "band"
    BOR = "bor"
    BXOR = "bxor"


def _mpi_op(op: ReduceOp, arr: np.ndarray, name: str):
    MPI = mpi()
    if not isinstance(op, ReduceOp):
        raise TypeError(f"{name}: op must be a lucid.distributed.ReduceOp, got {op!r}")
    if op is ReduceOp.AVG and arr.dtype.kind != "f":
        raise TypeError(f"{name}: ReduceOp.AVG needs a floating-point tensor, got {arr.dtype}")
    if op in (ReduceOp.BAND, ReduceOp.BOR, ReduceOp.BXOR) and arr.dtype.kind not in "iub":
        raise TypeError(f"{name}: {op.name} needs an integer or bool tensor, got {arr.dtype}")
    return {ReduceOp.SUM: MPI.SUM, ReduceOp.AVG: MPI.SUM, ReduceOp.PRODUCT: MPI.PROD,
            ReduceOp.MAX: MPI.MAX, ReduceOp.MIN: MPI.MIN, ReduceOp.BAND: MPI.BAND,
            ReduceOp.BOR: MPI.BOR, ReduceOp.BXOR: MPI.BXOR}[op]


class Work:
    """A collective in flight: ``wait()`` finishes it (and writes results back)."""

    def __init__(self, group, request, what: str, finish=None):
        self._group, self._request, self._what, self._finish = group, request, what, finish
        self._done = False

    def wait(self, timeout=None) -> bool:
        if not self._done:
            self._group.wait(self._request, self._what)
            self._done = True
            if self._finish is not None:
                self._finish()
        return True

    def is_completed(self) -> bool:
        if not self._done and self._request.Test():
            self.wait()
        return self._done

    def is_success(self) -> bool:
        return self.is_completed()


def _buffer(t, name: str) -> np.ndarray:
    """The tensor's array, for MPI to read and write in place."""
    arr = getattr(t, "_data", None)
    if arr is None:
        if hasattr(t, "_data"):
            from ..tracing import TracingError
            raise TracingError(f"{name}: collectives on traced tensors are not supported inside "
                               f"lucid.compile; call it outside the compiled function")
        raise TypeError(f"{name}: expected a lucid.Tensor, got {type(t).__name__}")
    return arr


def _contiguous(arr: np.ndarray):
    """``arr`` itself when MPI can use it in place, else a contiguous copy and a function
    that copies results back."""
    if arr.flags.c_contiguous and arr.flags.writeable:
        return arr, None
    work = np.ascontiguousarray(arr)

    def back():
        arr[...] = work
    return work, back


def _run(group, request, what, finish, async_op):
    work = Work(group, request, what, finish)
    if async_op:
        return work
    work.wait()
    return None


def _chain(*steps):
    steps = [s for s in steps if s is not None]
    if not steps:
        return None

    def run():
        for s in steps:
            s()
    return run


def all_reduce(tensor, op: ReduceOp = ReduceOp.SUM, group=None, async_op: bool = False):
    """Combine ``tensor`` across ranks with ``op``, in place on every rank.

    >>> import lucid, lucid.distributed as dist   # under: mpiexec -n 2 python script.py
    >>> # t = lucid.tensor([float(dist.get_rank())]); dist.all_reduce(t)   -> tensor([1.]) everywhere
    """
    g = _group_arg(group)
    arr = _buffer(tensor, "all_reduce")
    mop = _mpi_op(op, arr, "all_reduce")
    buf, back = _contiguous(arr)
    request = g.comm.Iallreduce(mpi().IN_PLACE, buf, op=mop)
    scale = None
    if op is ReduceOp.AVG:
        def scale():
            np.divide(buf, g.size, out=buf)
    return _run(g, request, "all_reduce", _chain(scale, back), async_op)


def broadcast(tensor, src: int, group=None, async_op: bool = False):
    """Copy rank ``src``'s ``tensor`` into every rank's ``tensor`` (same shape and dtype)."""
    g = _group_arg(group)
    _check_rank(src, g, "broadcast")
    buf, back = _contiguous(_buffer(tensor, "broadcast"))
    return _run(g, g.comm.Ibcast(buf, root=src), "broadcast", back, async_op)


def all_gather(tensor_list, tensor, group=None, async_op: bool = False):
    """Fill ``tensor_list[r]`` with rank r's ``tensor``, on every rank."""
    g = _group_arg(group)
    arr = _buffer(tensor, "all_gather")
    if len(tensor_list) != g.size:
        raise ValueError(f"all_gather: tensor_list has {len(tensor_list)} tensors for a world of {g.size}")
    outs = [_buffer(t, "all_gather") for t in tensor_list]
    for o in outs:
        if o.shape != arr.shape or o.dtype != arr.dtype:
            raise ValueError(f"all_gather: every output must match the input {arr.shape} {arr.dtype}, "
                             f"got {o.shape} {o.dtype}")
    gathered = np.empty((g.size,) + arr.shape, arr.dtype)
    request = g.comm.Iallgather(np.ascontiguousarray(arr), gathered)

    def finish():
        for o, part in zip(outs, gathered):
            o[...] = part
    return _run(g, request, "all_gather", finish, async_op)


def all_gather_into_tensor(output_tensor, input_tensor, group=None, async_op: bool = False):
    """Ranks' inputs concatenated along dim 0 (or stacked: output ``(world, *input.shape)``)."""
    g = _group_arg(group)
    arr = _buffer(input_tensor, "all_gather_into_tensor")
    out = _buffer(output_tensor, "all_gather_into_tensor")
    if out.size != arr.size * g.size or out.dtype != arr.dtype:
        raise ValueError(f"all_gather_into_tensor: output {out.shape} {out.dtype} must hold world_size "
                         f"({g.size}) x input {arr.shape} {arr.dtype}")
    buf, back = _contiguous(out)
    request = g.comm.Iallgather(np.ascontiguousarray(arr), buf)
    return _run(g, request, "all_gather_into_tensor", back, async_op)


def reduce_scatter(output, input_list, op: ReduceOp = ReduceOp.SUM, group=None, async_op: bool = False):
    """Reduce ``input_list`` across ranks; rank r receives the reduction of the inputs' r-th entries."""
    g = _group_arg(group)
    out = _buffer(output, "reduce_scatter")
    if len(input_list) != g.size:
        raise ValueError(f"reduce_scatter: input_list has {len(input_list)} tensors for a world of {g.size}")
    parts = [_buffer(t, "reduce_scatter") for t in input_list]
    for p in parts:
        if p.shape != out.shape or p.dtype != out.dtype:
            raise ValueError(f"reduce_scatter: every input must match the output {out.shape} {out.dtype}, "
                             f"got {p.shape} {p.dtype}")
    send = np.stack(parts) if parts else np.empty((0,) + out.shape, out.dtype)
    return _reduce_scatter(g, send, out, op, "reduce_scatter", async_op)


def reduce_scatter_tensor(output, input, op: ReduceOp = ReduceOp.SUM, group=None,  # noqa: A002
                          async_op: bool = False):
    """``reduce_scatter`` with the inputs as one tensor of world_size × output's size."""
    g = _group_arg(group)
    out = _buffer(output, "reduce_scatter_tensor")
    arr = _buffer(input, "reduce_scatter_tensor")
    if arr.size != out.size * g.size or arr.dtype != out.dtype:
        raise ValueError(f"reduce_scatter_tensor: input {arr.shape} {arr.dtype} must hold world_size "
                         f"({g.size}) x output {out.shape} {out.dtype}")
    return _reduce_scatter(g, np.ascontiguousarray(arr), out, op, "reduce_scatter_tensor", async_op)


def _reduce_scatter(g, send, out, op, name, async_op):
    mop = _mpi_op(op, out, name)
    buf, back = _contiguous(out)
    request = g.comm.Ireduce_scatter_block(send, buf, op=mop)
    scale = None
    if op is ReduceOp.AVG:
        def scale():
            np.divide(buf, g.size, out=buf)
    return _run(g, request, name, _chain(scale, back), async_op)


def barrier(group=None, async_op: bool = False, device_ids=None):
    """Wait until every rank has reached the barrier."""
    g = _group_arg(group)
    return _run(g, g.comm.Ibarrier(), "barrier", None, async_op)


def broadcast_object_list(object_list: list, src: int = 0, group=None) -> None:
    """Replace ``object_list``'s entries with rank ``src``'s (pickled Python objects)."""
    g = _group_arg(group)
    _check_rank(src, g, "broadcast_object_list")
    g.check_faults()
    object_list[:] = g.comm.bcast(list(object_list) if g.rank == src else None, root=src)


def all_gather_object(object_list: list, obj, group=None) -> None:
    """``object_list[r]`` = rank r's ``obj`` (pickled), on every rank."""
    g = _group_arg(group)
    if len(object_list) != g.size:
        raise ValueError(f"all_gather_object: object_list has {len(object_list)} entries for a world of {g.size}")
    g.check_faults()
    object_list[:] = g.comm.allgather(obj)


def _check_rank(r, g, name):
    if not isinstance(r, int) or not 0 <= r < g.size:
        raise ValueError(f"{name}: rank {r!r} is not in the world of {g.size} ranks")
