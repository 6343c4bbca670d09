"""Run under ``mpiexec -n 2``: every collective against what numpy computes from all
ranks' inputs. Prints ``OK <rank>``; a failed check raises (the run exits non-zero).
With an argument, a fault scenario instead: ``raise`` (rank 1 raises before a
collective), ``raise-slow`` (the same, with rank 0's error report taking 3 s: rank 1
must not exit before it has been made), ``timeout`` (rank 1 skips a collective; rank 0 times out),
``mismatch`` (the ranks build different models for DistributedDataParallel)."""
import datetime
import sys
import time

import numpy as np

import lucid
import lucid.distributed as dist

scenario = sys.argv[1] if len(sys.argv) > 1 else "check"
timeout = datetime.timedelta(seconds=2) if scenario == "timeout" else None
if scenario == "raise-slow":
    def slow_report(kind, exc, tb, report=sys.excepthook):
        time.sleep(3)     # a loaded machine: the launcher would kill this rank meanwhile
        report(kind, exc, tb)
    sys.excepthook = slow_report
dist.init_process_group("mpi", timeout=timeout)
rank, world = dist.get_rank(), dist.get_world_size()


def data(r, dtype=np.float64, shape=(3, 4)):
    return (np.arange(np.prod(shape)).reshape(shape) * (r + 1) + r).astype(dtype)


def check(got, want):
    got = np.asarray(got)
    assert got.shape == np.shape(want) and np.array_equal(got, want), (got, want)


if scenario in ("raise", "raise-slow"):
    if rank == 1:
        raise ValueError("a bug on rank 1")
    dist.barrier()
    dist.all_reduce(lucid.ones(3))
elif scenario == "timeout":
    if rank == 0:
        dist.all_reduce(lucid.ones(3))
    else:
        import time
        time.sleep(6)
elif scenario == "mismatch":
    import lucid.nn as nn
    from lucid.nn.parallel import DistributedDataParallel
    DistributedDataParallel(nn.Linear(4, 3 if rank == 0 else 5))
else:
    everyone = [data(r) for r in range(world)]
    for op, ref in [(dist.ReduceOp.SUM, np.sum), (dist.ReduceOp.MAX, np.max), (dist.ReduceOp.MIN, np.min),
                    (dist.ReduceOp.PRODUCT, np.prod)]:
        t = lucid.tensor(data(rank))
        assert dist.all_reduce(t, op) is None
        check(t.numpy(), ref(everyone, axis=0))
    t = lucid.tensor(data(rank))
    dist.all_reduce(t, dist.ReduceOp.AVG)
    check(t.numpy(), np.mean(everyone, axis=0))
    t = lucid.tensor(data(rank, np.int64))                    # ints, and async
    work = dist.all_reduce(t, async_op=True)
    assert work.wait() and work.is_completed()
    check(t.numpy(), np.sum([data(r, np.int64) for r in range(world)], axis=0))
    t = lucid.tensor(data(rank, np.int32))
    dist.all_reduce(t, dist.ReduceOp.BXOR)
    check(t.numpy(), np.bitwise_xor.reduce([data(r, np.int32) for r in range(world)]))
    try:
        dist.all_reduce(lucid.tensor(data(rank, np.int64)), dist.ReduceOp.AVG)
        raise AssertionError("AVG on ints must raise")
    except TypeError as exc:
        assert "AVG" in str(exc)
    base = lucid.tensor(data(rank, np.float32, (4, 3)))       # a transposed (non-contiguous) view
    view = base.T
    dist.all_reduce(view)
    check(view.numpy(), np.sum([data(r, np.float32, (4, 3)).T for r in range(world)], axis=0))
    t = lucid.tensor(data(rank))
    dist.broadcast(t, src=world - 1)
    check(t.numpy(), data(world - 1))
    outs = [lucid.zeros(3, 4, dtype=lucid.float64) for _ in range(world)]
    dist.all_gather(outs, lucid.tensor(data(rank)))
    for r in range(world):
        check(outs[r].numpy(), data(r))
    big = lucid.zeros(3 * world, 4, dtype=lucid.float64)
    dist.all_gather_into_tensor(big, lucid.tensor(data(rank)))
    check(big.numpy(), np.concatenate(everyone))
    out = lucid.zeros(3, 4, dtype=lucid.float64)
    dist.reduce_scatter(out, [lucid.tensor(data(rank) + k) for k in range(world)])
    check(out.numpy(), np.sum([data(r) + rank for r in range(world)], axis=0))
    out = lucid.zeros(2, dtype=lucid.float64)
    dist.reduce_scatter_tensor(out, lucid.tensor(np.arange(2.0 * world) * (rank + 1)), dist.ReduceOp.AVG)
    check(out.numpy(), np.mean([np.arange(2.0 * world)[2 * rank:2 * rank + 2] * (r + 1)
                                for r in range(world)], axis=0))
    t = lucid.zeros(0)
    dist.all_reduce(t)                                        # empty tensors are fine
    objs = [None] * world
    dist.all_gather_object(objs, {"rank": rank})
    assert objs == [{"rank": r} for r in range(world)]
    lst = [rank, "x"]
    dist.broadcast_object_list(lst, src=0)
    assert lst == [0, "x"]
    for bad, exc in [(lambda: dist.broadcast(lucid.ones(2), src=world), ValueError),
                     (lambda: dist.all_reduce(np.ones(2)), TypeError),
                     (lambda: dist.all_gather([lucid.ones(2)] * (world + 1), lucid.ones(2)), ValueError)]:
        try:
            bad()
            raise AssertionError("expected an error")
        except exc:
            pass
    dist.barrier()
    print(f"OK {rank}")
dist.destroy_process_group()
