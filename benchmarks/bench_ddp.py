"""Data parallelism on this machine's two cores: one process with 2 threads against
2 MPI ranks with 1 thread each, on the MLP training step (784-256-256-10, float32,
softmax cross-entropy, SGD; a global batch of 128, so 64 per rank on 2 ranks).

    python benchmarks/bench_ddp.py [--quick]

For lucid (eager, and the whole step under ``lucid.compile``) and PyTorch (DDP over its
``gloo`` backend, launched by the same ``mpiexec``): milliseconds per global step
(median over steps, rank 0's clock, a barrier closing each step), the speed-up of
2 ranks × 1 thread over 1 rank × 2 threads, and lucid's gradient all-reduce alone (one
flat buffer of all parameters) per step. Rounds of all configurations are interleaved;
the figures are medians over rounds. Needs the distributed extra (mpi4py, mpich) and
torch for the PyTorch rows.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import time

from harness import OPENBLAS_SPIN, STEADY_MALLOC, print_table, setup_path

SIZES = (784, 256, 256, 10)
GLOBAL_BATCH = 128
LR = 0.01


def lucid_worker(mode: str, steps: int) -> dict:
    setup_path()
    import numpy as np

    import lucid
    import lucid.distributed as dist
    import lucid.nn as nn
    import lucid.nn.functional as F
    from lucid.nn.parallel import DistributedDataParallel as DDP

    dist.init_process_group("mpi")
    rank, world = dist.get_rank(), dist.get_world_size()
    lucid.manual_seed(0)
    net = nn.Sequential(nn.Linear(784, 256), nn.ReLU(), nn.Linear(256, 256), nn.ReLU(), nn.Linear(256, 10))
    model = DDP(net) if world > 1 else net
    opt = lucid.optim.SGD(net.parameters(), lr=LR)
    rng = np.random.default_rng(rank)
    local = GLOBAL_BATCH // world
    x = lucid.tensor(rng.standard_normal((local, 784)).astype(np.float32))
    y = lucid.tensor(rng.integers(0, 10, local))

    def step(xb, yb):
        opt.zero_grad()
        loss = F.cross_entropy(model(xb), yb)
        loss.backward()
        opt.step()
        return loss

    run = lucid.compile(step) if mode == "compiled" else step
    times = []
    for i in range(steps + 5):
        dist.barrier()
        start = time.perf_counter()
        run(x, y)
        dist.barrier()
        if i >= 5:
            times.append(time.perf_counter() - start)
    flat = lucid.zeros(sum(p.numel() for p in net.parameters()))
    reduce_times = []
    for i in range(steps + 5):
        dist.barrier()
        start = time.perf_counter()
        dist.all_reduce(flat)
        if i >= 5:
            reduce_times.append(time.perf_counter() - start)
    out = {"step_ms": 1e3 * statistics.median(times), "allreduce_ms": 1e3 * statistics.median(reduce_times)}
    dist.destroy_process_group()
    return out if rank == 0 else None


def torch_worker(steps: int) -> dict:
    import torch
    import torch.distributed as tdist
    import torch.nn as tnn
    import torch.nn.functional as TF

    rank, world = int(os.environ["PMI_RANK"]), int(os.environ["PMI_SIZE"])
    torch.set_num_threads(int(os.environ["OMP_NUM_THREADS"]))
    tdist.init_process_group("gloo", rank=rank, world_size=world,
                             init_method=f"tcp://127.0.0.1:{os.environ['BENCH_PORT']}")
    torch.manual_seed(0)
    net = tnn.Sequential(tnn.Linear(784, 256), tnn.ReLU(), tnn.Linear(256, 256), tnn.ReLU(), tnn.Linear(256, 10))
    model = tnn.parallel.DistributedDataParallel(net) if world > 1 else net
    opt = torch.optim.SGD(net.parameters(), lr=LR)
    g = torch.Generator().manual_seed(rank)
    local = GLOBAL_BATCH // world
    x, y = torch.randn(local, 784, generator=g), torch.randint(0, 10, (local,), generator=g)
    times = []
    for i in range(steps + 5):
        tdist.barrier()
        start = time.perf_counter()
        opt.zero_grad()
        TF.cross_entropy(model(x), y).backward()
        opt.step()
        tdist.barrier()
        if i >= 5:
            times.append(time.perf_counter() - start)
    tdist.destroy_process_group()
    return {"step_ms": 1e3 * statistics.median(times)} if rank == 0 else None


def launch(lib: str, mode: str, ranks: int, threads: int, steps: int, port: int) -> dict:
    mpiexec = shutil.which("mpiexec", path=os.path.dirname(sys.executable)) or shutil.which("mpiexec")
    env = dict(os.environ, OPENBLAS_NUM_THREADS=str(threads), OMP_NUM_THREADS=str(threads),
               MKL_NUM_THREADS=str(threads), LUCID_NUM_THREADS=str(threads), BENCH_PORT=str(port),
               GOMP_SPINCOUNT="20000")
    env.setdefault("OPENBLAS_THREAD_TIMEOUT", OPENBLAS_SPIN)
    env.update(STEADY_MALLOC)
    cmd = [mpiexec, "-n", str(ranks), sys.executable, os.path.abspath(__file__),
           "--worker", lib, "--mode", mode, "--steps", str(steps)]
    out = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
    if out.returncode != 0:
        sys.stderr.write(out.stdout + out.stderr)
        raise SystemExit(f"bench_ddp: {lib} {mode} {ranks}x{threads} failed")
    lines = [ln for ln in out.stdout.splitlines() if ln.startswith("{")]
    return json.loads(lines[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--mode", default="eager", help=argparse.SUPPRESS)
    parser.add_argument("--steps", type=int, default=60, help=argparse.SUPPRESS)
    parser.add_argument("--quick", action="store_true", help="fewer rounds and steps")
    args = parser.parse_args()
    if args.worker:
        result = lucid_worker(args.mode, args.steps) if args.worker == "lucid" else torch_worker(args.steps)
        if result is not None:
            print(json.dumps(result))
        return
    try:
        import torch  # noqa: F401
        libs = [("lucid", "eager"), ("lucid", "compiled"), ("torch", "eager")]
    except ImportError:
        libs = [("lucid", "eager"), ("lucid", "compiled")]
    rounds, steps = (1, 20) if args.quick else (3, 60)
    layouts = [(1, 2), (2, 1)]
    figures: dict = {}
    port = 29500 + os.getpid() % 1000
    for r in range(rounds):
        for lib, mode in (libs if r % 2 == 0 else libs[::-1]):
            for ranks, threads in (layouts if r % 2 == 0 else layouts[::-1]):
                port += 1
                res = launch(lib, mode, ranks, threads, steps, port)
                figures.setdefault((lib, mode, ranks), []).append(res)
    med = {k: {f: statistics.median(r[f] for r in v) for f in v[0]} for k, v in figures.items()}
    rows = []
    for lib, mode in libs:
        one, two = med[(lib, mode, 1)], med[(lib, mode, 2)]
        red = two.get("allreduce_ms")
        rows.append([f"{lib} {mode}", f"{one['step_ms']:.2f}", f"{two['step_ms']:.2f}",
                     f"{one['step_ms'] / two['step_ms']:.2f}x", "-" if red is None else f"{red:.3f}"])
    print(f"MLP {'-'.join(map(str, SIZES))} step, global batch {GLOBAL_BATCH}, float32 "
          f"(medians of {rounds} interleaved round(s) x {steps} steps)")
    print_table(["library", "1 rank x 2 thr ms", "2 ranks x 1 thr ms", "speed-up", "all-reduce ms"], rows)
    if ("torch", "eager") in [(a, b) for a, b in libs]:
        print("\nlucid / torch (2 ranks x 1 thread): "
              + ", ".join(f"{mode} {med[('lucid', mode, 2)]['step_ms'] / med[('torch', 'eager', 2)]['step_ms']:.2f}x"
                          for mode in ("eager", "compiled")))


if __name__ == "__main__":
    main()
