"""Plan steps for the collective ops (``lucid_ir.opnames.COLLECTIVE``: ``all_reduce``,
``broadcast``), run on the communicator that the runtime registered
(``lucid_ir.ops.collective.set_communicator``; ``lucid.distributed`` registers its
process group), and their native jobs, so a plan holding them (a compiled
data-parallel training step) still runs as one native program (``native_plan``).

A collective's jobs, in order (``CollectiveStep.native_job``):

1. a copy of the input into the step's output buffer (``index_steps.reshape_copy_job``),
   unless the communicator reads the input itself (an ``all_reduce`` of a contiguous
   input, sent from where it is);
2. the communicator's *host calls* (``host_calls``), when it has
   ``native_collective(name, value, dtype, count, in_place)`` (the MPI process group: a
   non-blocking MPI call and a wait that can end with an error; ``lucid.distributed``);
   else one host call into Python running the communicator's own ``all_reduce`` /
   ``broadcast`` on the output buffer (still one native program, with a Python call
   inside it);
3. for ``reduce="avg"`` on the native calls (which sum), a division of the sum by the
   number of ranks, in place (an elementwise kernel: ``x / size``, the same division as
   the reference's).

With no communicator, or one of a single rank, a collective is the identity: a copy.
The program is built for the communicator registered when it was built (the step's
``guard``); when another is registered, it is rebuilt.

>>> import numpy as np
>>> from lucid_ir.builder import GraphBuilder
>>> b = GraphBuilder()
>>> x = b.input((4,), "float64")
>>> step = CollectiveStep(b.build([b.emit("all_reduce", x, reduce="avg")]).nodes[0])
>>> out = np.empty(4)
>>> [type(job).__name__ for job, _, _ in step.native_job([np.ones(4)], [out])]   # one rank: a copy
['LoopJob']
"""
from __future__ import annotations

import ctypes

import numpy as np

from lucid_ir.builder import GraphBuilder
from lucid_ir.ops.collective import communicator

from lucid_codegen.kernels.elementwise import ElementwiseKernel
from lucid_codegen.runtime.host_calls import python_host_call
from lucid_codegen.runtime.index_steps import reshape_copy_job
from lucid_codegen.runtime.reference_step import ReferenceStep

class CollectiveStep(ReferenceStep):
    """``step(x) -> (out,)`` and ``step.call_into([out], x)`` on the registered
    communicator; ``native_job`` its jobs for a native program."""

    #: the program runs this step only while the same communicator is registered
    guard = staticmethod(communicator)

    def __init__(self, node):
        super().__init__(node)
        self.name = node.op
        self.value = self.attrs["reduce"] if self.name == "all_reduce" else self.attrs["src"]

    def call_into(self, outs, x):
        (out,) = outs
        np.copyto(out, x)
        comm = communicator()
        if comm is not None and comm.size > 1 and out.size:
            if self.name == "all_reduce":
                comm.all_reduce(out, self.value)
            else:
                comm.broadcast(out, self.value)
        return (out,)

    def native_job(self, arrays, outs):
        """This collective as ``[(job, reads, writes)]`` (operand 0 the input, 1 the
        output), or None when it cannot run from a native program."""
        (x,), (out,) = arrays, outs
        if out.size == 0:
            return []
        if not out.flags.c_contiguous:
            return None
        comm = communicator()
        if comm is None or comm.size <= 1:
            copy = reshape_copy_job(x, out)
            return None if copy is None else [(copy, [0], [1])]
        avg = self.value == "avg"
        in_place = not (self.name == "all_reduce" and x.flags.c_contiguous)
        native = getattr(comm, "native_collective", None)
        calls = None
        if native is not None:
            calls = native(self.name, "sum" if avg else self.value, out.dtype, out.size, in_place)
        scale = None
        if calls is None:   # the communicator's Python call, from the program
            calls, in_place = [self._python_call(comm, out)], True
        elif avg:
            scale = _scale_job(out, comm.size)
            if scale is None:
                return None
        jobs = []
        if in_place:
            copy = reshape_copy_job(x, out)
            if copy is None:
                return None
            jobs.append((copy, [0], [1]))
        jobs += [(c, [0] * len(c.in_words), [1] * len(c.out_words)) for c in calls]
        if scale is not None:
            jobs.append((scale, [1], [1]))
        return jobs

    def _python_call(self, comm, out):
        """A host call running ``comm.all_reduce`` / ``comm.broadcast`` on the output
        buffer, whose address is its one argument."""
        shape, dtype, nbytes = out.shape, out.dtype, out.nbytes
        name, value = self.name, self.value

        def run(address):
            buf = np.frombuffer((ctypes.c_char * nbytes).from_address(address), dtype).reshape(shape)
            if name == "all_reduce":
                comm.all_reduce(buf, value)
            else:
                comm.broadcast(buf, value)
            return 0
        job = python_host_call(run, 1)
        job.out_words = [0]
        return job


def _scale_job(out: np.ndarray, size: int):
    """A loop job dividing the contiguous ``out`` by ``size`` in place, or None."""
    dtype = out.dtype
    if dtype.kind != "f":
        return None
    b = GraphBuilder()
    x = b.input((out.size,), dtype.name)
    kernel = ElementwiseKernel.for_graph(b.build([b.emit("div", x, b.constant(size, dtype=dtype.name))]))
    probe = np.empty(out.size, dtype)   # the kernel's plan for this layout, made by one call
    kernel([probe], outs=[probe])
    return kernel.native_job([probe], [probe])
