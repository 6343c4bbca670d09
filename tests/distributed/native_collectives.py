"""Run under ``mpiexec -n 2``: compiled graphs' collectives run as MPI calls inside one
native program (``lucid_codegen.runtime.collective_steps``, ``lucid.distributed.native_mpi``).

``check``: graphs of ``all_reduce`` (sum, avg, max, min; contiguous and transposed
inputs; float64, float32, int64) and ``broadcast`` give what numpy computes from every
rank's inputs, exactly, on every call, and from the third call on as native programs
calling MPI directly. Prints ``OK <rank>``.

``raise`` / ``timeout``: a compiled ``DistributedDataParallel`` step runs natively on
both ranks (``NATIVE <rank>``); then rank 1 raises (or sleeps past the group's 2 s
timeout) instead of calling it, and rank 0, waiting inside the native program, stops
with ``DistributedError`` naming rank 1 (or ``DistributedTimeout``) instead of hanging.
"""
import sys
import time

import numpy as np

import lucid
import lucid.distributed as dist
from lucid.compiler import compile_graph
from lucid_ir.builder import GraphBuilder

scenario = sys.argv[1] if len(sys.argv) > 1 else "check"
dist.init_process_group("mpi")
rank, world = dist.get_rank(), dist.get_world_size()
group = dist.process_group.group()


def programs(plan):
    return [p for p in getattr(plan._local, "programs", {}).values() if p]


def data(r, call, shape, dtype):
    n = int(np.prod(shape))
    values = (np.arange(n) * (r + 1) + 3 * r + call) % 7 - 3.0 + 0.1 * (r + 1) / 3
    return values.reshape(shape).astype(dtype)


def check_graph(dtype, shape=(5, 3)):
    b = GraphBuilder()
    x = b.input(shape, dtype)
    t = b.emit("transpose", x, perm=(1, 0))
    reduces = ["sum", "max", "min"] + (["avg"] if dtype != "int64" else [])
    outs = [b.emit("all_reduce", x, reduce=op) for op in reduces]
    outs += [b.emit("all_reduce", t, reduce=op) for op in reduces]    # a copy, then in place
    outs.append(b.emit("broadcast", x, src=world - 1))
    plan = compile_graph(b.build(outs)).executable
    combine = {"sum": np.sum, "max": np.max, "min": np.min, "avg": None}
    for call in range(4):
        got = plan([data(rank, call, shape, dtype)])
        everyone = np.stack([data(r, call, shape, dtype) for r in range(world)])
        wants = []
        for view in (lambda a: a, lambda a: a.T):
            for op in reduces:
                if op == "avg":
                    wants.append(np.divide(np.sum(everyone, axis=0), world))
                else:
                    wants.append(combine[op](everyone, axis=0))
                wants[-1] = view(wants[-1])
        wants.append(data(world - 1, call, shape, dtype))
        for k, (g, w) in enumerate(zip(got, wants)):
            assert g.dtype == w.dtype and np.array_equal(g, w), (dtype, call, k, g, w)
        if call >= 2:
            (program,) = programs(plan)
            assert len(program.host_jobs) == 2 * len(outs), program.host_jobs
    assert group._native, "the MPI library's entry points were not found"


def ddp_step():
    import lucid.nn as nn
    from lucid.nn.parallel import DistributedDataParallel as DDP
    lucid.manual_seed(0)
    net = nn.Linear(4, 2)
    model = DDP(net)
    opt = lucid.optim.SGD(net.parameters(), lr=0.1)

    @lucid.compile
    def step(x):
        opt.zero_grad()
        loss = (model(x) ** 2).sum()
        loss.backward()
        opt.step()
        return loss
    return step


if scenario == "check":
    for dtype in ("float64", "float32", "int64"):
        check_graph(dtype)
    print(f"OK {rank}")
else:
    step = ddp_step()
    x = lucid.ones(3, 4)
    step(x)                                # compiles; the collectives run from Python
    dist.barrier()
    if scenario == "timeout":
        group.timeout = 2.0                # (the program built by the next call waits this long)
    step(x)                                # step by step again; builds the native program
    plan = next(iter(step._programs.values())).compiled_forward.executable
    assert programs(plan) and programs(plan)[0].host_jobs
    step(x)                                # natively, on both ranks
    print(f"NATIVE {rank}", flush=True)
    if rank == 1:
        if scenario == "raise":
            raise ValueError("a bug on rank 1")
        time.sleep(6)
    else:
        step(x)                            # rank 1 never joins: the wait must end
        raise AssertionError("rank 0's step returned without rank 1")
dist.destroy_process_group()
