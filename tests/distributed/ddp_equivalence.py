"""Run under ``mpiexec -n 2``: N steps of data-parallel training (each rank half of the
batch) give the parameters one process gets on the whole batch (float64, 1e-12).
Prints ``OK <rank> <max relative difference>`` on success; exits non-zero otherwise.

The model has a buffer that rank 1 spoils before every step: DDP's broadcast of rank 0's
buffers must restore it.

Argument: ``eager`` or ``nosync`` (gradient accumulation over two half-batches inside
``no_sync`` on each rank) or ``compile`` (the step under ``lucid.compile``: the
averaging is an ``all_reduce`` node of the compiled graph, the buffers' broadcast a
``broadcast`` node, and from the third step on the whole step runs as one native program
calling MPI) or ``unused`` (a parameter the forward does not use, with
``find_unused_parameters=True``) or ``unused-error`` (the same without it: the second
forward raises PyTorch's "Expected to have finished reduction" error).
"""
import sys

import numpy as np

import lucid
import lucid.distributed as dist
import lucid.nn as nn
from lucid.nn.parallel import DistributedDataParallel as DDP

mode = sys.argv[1] if len(sys.argv) > 1 else "eager"
dist.init_process_group("mpi")
rank, world = dist.get_rank(), dist.get_world_size()


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(8, 16)
        self.fc2 = nn.Linear(16, 3)
        if mode in ("unused", "unused-error"):
            self.spare = nn.Linear(3, 3)      # a parameter the forward never uses
        self.register_buffer("gain", lucid.tensor([1.0, 0.5, 2.0], dtype=lucid.float64))

    def forward(self, x):
        return self.fc2(self.fc1(x).tanh()) * self.gain


def make():
    lucid.manual_seed(1234 + rank)            # different on each rank: DDP must broadcast rank 0's
    net = Net()
    for p in net.parameters():
        p._data = p._data.astype(np.float64)
    return net


rng = np.random.default_rng(0)
X = rng.standard_normal((12, 8))
Y = rng.standard_normal((12, 3))

net = make()
model = DDP(net, bucket_cap_mb=0.0005, find_unused_parameters=(mode == "unused"))   # several buckets
ref = make()
for (_, p), (_, q) in zip(net.named_parameters(), ref.named_parameters()):
    q._data = p._data.copy()

lr = 0.05
share = 12 // world
mine = slice(rank * share, (rank + 1) * share)
if mode == "compile":
    opt = lucid.optim.SGD(net.parameters(), lr=lr)

    @lucid.compile
    def train_step(x, y):
        opt.zero_grad()
        loss = ((model(x) - y) ** 2).sum() / 12 * world
        loss.backward()
        opt.step()
        return loss

    if rank == 0:
        text = train_step.lower(lucid.tensor(X[mine]), lucid.tensor(Y[mine])).as_text("fused")
for step in range(5):
    for p in net.parameters():
        p.grad = None
    if rank == 1:
        net.gain._data[...] = 7.0             # spoiled: the forward's broadcast restores rank 0's
    if mode == "compile":
        train_step(lucid.tensor(X[mine]), lucid.tensor(Y[mine]))
    elif mode == "nosync":
        half = share // 2
        a, b = slice(mine.start, mine.start + half), slice(mine.start + half, mine.stop)
        with model.no_sync():
            out = model(lucid.tensor(X[a]))
            (((out - lucid.tensor(Y[a])) ** 2).sum() / 12 * world).backward()
        out = model(lucid.tensor(X[b]))
        (((out - lucid.tensor(Y[b])) ** 2).sum() / 12 * world).backward()
    else:
        out = model(lucid.tensor(X[mine]))
        (((out - lucid.tensor(Y[mine])) ** 2).sum() / 12 * world).backward()
    for p in net.parameters():
        if p.grad is not None and mode != "compile":
            p._data = p._data - lr * np.asarray(p.grad)
    # the reference: one process, the whole batch
    for p in ref.parameters():
        p.grad = None
    out = ref(lucid.tensor(X))
    (((out - lucid.tensor(Y)) ** 2).sum() / 12).backward()
    for p in ref.parameters():
        if p.grad is not None:
            p._data = p._data - lr * np.asarray(p.grad)

worst = 0.0
for (name, p), (_, q) in zip(net.named_parameters(), ref.named_parameters()):
    rel = np.max(np.abs(p._data - q._data) / (np.abs(q._data) + 1e-300))
    worst = max(worst, float(rel))
    if name.startswith("spare"):
        assert p.grad is None, f"{name}: unused parameter got a gradient"
if worst > 1e-12:
    print(f"FAIL {rank} {worst:.3e}")
    sys.exit(1)
if mode == "compile":
    if rank == 0:
        assert "all_reduce" in text and "broadcast" in text, text
    plan = next(iter(train_step._programs.values())).compiled_forward.executable
    programs = [p for p in getattr(plan._local, "programs", {}).values() if p]
    assert len(programs) == 1, "the compiled step should run as one native program"
    # the three buckets' all_reduce and the buffer's broadcast: each an MPI call and a wait
    assert len(programs[0].host_jobs) == 2 * 4, programs[0].host_jobs
    assert dist.process_group.group()._native, "MPI is called from the program directly"
print(f"OK {rank} {worst:.3e}")
dist.destroy_process_group()
