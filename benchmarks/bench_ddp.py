"""Data parallelism on this machine's two cores: one process with 2 threads against
2 MPI ranks with 1 thread each, on the MLP training step (784-256-256-10, float32,
softmax cross-entropy, SGD; a global batch of 128, so 64 per rank on 2 ranks) and the
GPT step of ``benchmarks/model_zoo.py`` (the char-GPT example's model, global batch 16,
AdamW, clipping at 1.0).

    python benchmarks/bench_ddp.py [--quick] [--models mlp,gpt] [--json PATH]

It also times lucid's all-reduce of one float32 buffer of 4 KB .. 16 MB on 2 ranks and
fits the ring model ``t = a + 2(N-1)/N * bytes / B`` (latency ``a``, bus bandwidth
``B``): the constants of the README's scaling model.

For lucid (eager, and the whole step under ``lucid.compile``) and PyTorch (DDP over its
``gloo`` backend, launched by the same ``mpiexec``): milliseconds per global step
(median over steps, rank 0's clock, a barrier closing each step), the speed-up of
2 ranks × 1 thread over 1 rank × 2 threads, and lucid's gradient all-reduce alone (one
flat buffer of all parameters) per step. Rounds of all configurations are interleaved;
the figures are medians over rounds. Needs the distributed extra (mpi4py, mpich) and
torch for the PyTorch rows.

Then the scaling model (``project``): for N single-thread ranks sharing one global batch,
step = C / N + 2(N-1) a + 2(N-1)/N * bytes / B, with C (one rank's compute of the whole
batch) and B taken from the 2-rank run of each model, and the N where the projected step
is shortest. Last, issue 18's target: on the GPT step, 2 ranks x 1 thread take at most
1.15x the time of 1 rank x 2 threads, printed with PASS or MISS.
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
#: issue 18: 2 ranks x 1 thread take at most this times 1 rank x 2 threads (GPT step)
SPEEDUP_TARGET = 1.15
GLOBAL_BATCH = 128
LR = 0.01


def _model_and_step(lib, model_name: str, world: int, rank: int, wrap):
    """``(parameters, step, (x, y))`` of one rank's share of the global batch in ``lib``
    (``lucid`` or ``torch``); ``wrap`` makes the data-parallel module of a model."""
    import numpy as np
    F = lib.nn.functional
    rng = np.random.default_rng(rank)
    if model_name == "gpt":
        import model_zoo
        net = model_zoo.gpt(lib)
        local = model_zoo.GPT_BATCH // world
        shape = (local, model_zoo.GPT["context"])
        x, y = (lib.tensor(rng.integers(0, model_zoo.GPT["vocab"], shape)) for _ in range(2))
        opt = lib.optim.AdamW(net.parameters(), **model_zoo.ADAMW)
    else:
        nn = lib.nn
        net = nn.Sequential(nn.Linear(784, 256), nn.ReLU(), nn.Linear(256, 256), nn.ReLU(), nn.Linear(256, 10))
        local = GLOBAL_BATCH // world
        x = lib.tensor(rng.standard_normal((local, 784)).astype(np.float32))
        y = lib.tensor(rng.integers(0, 10, local))
        opt = lib.optim.SGD(net.parameters(), lr=LR)
    model = wrap(net) if world > 1 else net

    def step(xb, yb):
        opt.zero_grad()
        out = model(xb)
        loss = F.cross_entropy(out.reshape(-1, out.shape[-1]), yb.reshape(-1))
        loss.backward()
        if model_name == "gpt":
            lib.nn.utils.clip_grad_norm_(net.parameters(), 1.0)
        opt.step()
        return loss
    return list(net.parameters()), step, (x, y)


#: buffer sizes (float32 elements) of the all-reduce sweep: 4 KB .. 16 MB
SWEEP = (1 << 10, 1 << 13, 1 << 16, 1 << 19, 1 << 22)


def lucid_worker(mode: str, steps: int, model_name: str = "mlp") -> dict:
    setup_path()
    import lucid
    import lucid.distributed as dist
    from lucid.nn.parallel import DistributedDataParallel as DDP

    dist.init_process_group("mpi")
    rank, world = dist.get_rank(), dist.get_world_size()
    lucid.manual_seed(0)
    params, step, (x, y) = _model_and_step(lucid, model_name, world, rank, DDP)

    run = lucid.compile(step) if mode == "compiled" else step
    times = []
    for i in range(steps + 5):
        dist.barrier()
        start = time.perf_counter()
        run(x, y)
        dist.barrier()
        if i >= 5:
            times.append(time.perf_counter() - start)
    n_params = sum(p.numel() for p in params)
    out = {"step_ms": 1e3 * statistics.median(times), "params": n_params,
           "allreduce_ms": 1e3 * _allreduce_seconds(lucid, dist, n_params, steps)}
    if world > 1 and mode == "eager":
        out["sweep"] = [(4 * n, 1e3 * _allreduce_seconds(lucid, dist, n, steps)) for n in SWEEP]
    dist.destroy_process_group()
    return out if rank == 0 else None


def _allreduce_seconds(lucid, dist, n: int, steps: int) -> float:
    """Median seconds of ``all_reduce`` of ``n`` float32 elements, barriers between."""
    flat = lucid.zeros(n)
    times = []
    for i in range(steps + 5):
        dist.barrier()
        start = time.perf_counter()
        dist.all_reduce(flat)
        if i >= 5:
            times.append(time.perf_counter() - start)
    return statistics.median(times)


def fit_ring(sweep, world: int = 2):
    """``(a seconds, B bytes/s)`` of ``t = a + 2(N-1)/N * bytes / B`` over ``[(bytes, ms)]``,
    least squares on the relative error (every size counts alike: 4 KB, latency-bound,
    as much as 16 MB, bandwidth-bound).

    >>> a, b = fit_ring([(1000, 0.011), (2000, 0.012)])
    >>> round(a * 1e6, 3), round(b / 1e9, 3)
    (10.0, 1.0)
    """
    xs = [2 * (world - 1) / world * nbytes for nbytes, _ in sweep]
    ys = [ms / 1e3 for _, ms in sweep]
    ws = [1.0 / y ** 2 for y in ys]
    total = sum(ws)
    mx = sum(w * x for w, x in zip(ws, xs)) / total
    my = sum(w * y for w, y in zip(ws, ys)) / total
    slope = (sum(w * (x - mx) * (y - my) for w, x, y in zip(ws, xs, ys))
             / sum(w * (x - mx) ** 2 for w, x in zip(ws, xs)))
    return my - slope * mx, 1.0 / slope


#: ranks of the scaling projection (capped where a rank's share of the batch is 1 sample)
PROJECTED_RANKS = (1, 2, 4, 8, 16, 32, 64)


def project(step2_ms: float, allreduce2_ms: float, nbytes: float, latency_s: float, batch: int):
    """The README's scaling model, from the 2-rank measurement of one model.

    ``C`` = the compute of one global batch on one single-thread rank, ``2 (step - all-reduce)``
    at 2 ranks; a ring all-reduce of ``bytes`` on N ranks takes ``2(N-1) a + 2(N-1)/N
    bytes / B`` (2(N-1) messages in turn, each rank sending and receiving 2(N-1)/N of the
    buffer); ``B`` is calibrated so that N = 2 gives the measured all-reduce. Returns
    ``[(N, step ms, speed-up over N = 1)]`` for the ranks whose share is at least 1 sample.

    >>> rows = project(10.0, 1.0, 1e6, 10e-6, 16)
    >>> [(n, round(ms, 2), round(s, 2)) for n, ms, s in rows[:3]]
    [(1, 18.0, 1.0), (2, 10.0, 1.8), (4, 6.03, 2.99)]
    """
    compute = 2.0 * (step2_ms - allreduce2_ms)
    bandwidth = nbytes / max(allreduce2_ms / 1e3 - 2 * latency_s, 1e-9)  # bytes/s at N = 2
    rows = []
    for n in PROJECTED_RANKS:
        if n > batch:
            break
        comm = 0.0 if n == 1 else 1e3 * (2 * (n - 1) * latency_s + 2 * (n - 1) / n * nbytes / bandwidth)
        rows.append((n, compute / n + comm, compute / (compute / n + comm)))
    return rows


def torch_worker(steps: int, model_name: str = "mlp") -> dict:
    setup_path()
    import torch
    import torch.distributed as tdist

    rank, world = int(os.environ["PMI_RANK"]), int(os.environ["PMI_SIZE"])
    torch.set_num_threads(int(os.environ["OMP_NUM_THREADS"]))
    tdist.init_process_group("gloo", rank=rank, world_size=world,
                             init_method=f"tcp://127.0.0.1:{os.environ['BENCH_PORT']}")
    torch.manual_seed(0)
    _, step, (x, y) = _model_and_step(torch, model_name, world, rank, torch.nn.parallel.DistributedDataParallel)
    times = []
    for i in range(steps + 5):
        tdist.barrier()
        start = time.perf_counter()
        step(x, y)
        tdist.barrier()
        if i >= 5:
            times.append(time.perf_counter() - start)
    tdist.destroy_process_group()
    return {"step_ms": 1e3 * statistics.median(times)} if rank == 0 else None


def launch(lib: str, mode: str, ranks: int, threads: int, steps: int, port: int, model: str) -> dict:
    mpiexec = shutil.which("mpiexec", path=os.path.dirname(sys.executable)) or shutil.which("mpiexec")
    env = dict(os.environ, OPENBLAS_NUM_THREADS=str(threads), OMP_NUM_THREADS=str(threads),
               MKL_NUM_THREADS=str(threads), LUCID_NUM_THREADS=str(threads), BENCH_PORT=str(port),
               GOMP_SPINCOUNT="20000")
    env.setdefault("OPENBLAS_THREAD_TIMEOUT", OPENBLAS_SPIN)
    env.update(STEADY_MALLOC)
    cmd = [mpiexec, "-n", str(ranks), sys.executable, os.path.abspath(__file__),
           "--worker", lib, "--mode", mode, "--steps", str(steps), "--models", model]
    out = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
    if out.returncode != 0:
        sys.stderr.write(out.stdout + out.stderr)
        raise SystemExit(f"bench_ddp: {model} {lib} {mode} {ranks}x{threads} failed")
    lines = [ln for ln in out.stdout.splitlines() if ln.startswith("{")]
    return json.loads(lines[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--mode", default="eager", help=argparse.SUPPRESS)
    parser.add_argument("--steps", type=int, default=None, help="timed steps per process")
    parser.add_argument("--models", default="mlp,gpt", help="comma-separated: mlp, gpt")
    parser.add_argument("--quick", action="store_true", help="fewer rounds and steps")
    parser.add_argument("--json", help="also save the figures to this JSON file")
    args = parser.parse_args()
    if args.worker:
        steps = args.steps or 60
        result = (lucid_worker(args.mode, steps, args.models) if args.worker == "lucid"
                  else torch_worker(steps, args.models))
        if result is not None:
            print(json.dumps(result))
        return
    try:
        import torch  # noqa: F401
        libs = [("lucid", "eager"), ("lucid", "compiled"), ("torch", "eager")]
    except ImportError:
        libs = [("lucid", "eager"), ("lucid", "compiled")]
    models = [m for m in args.models.split(",") if m]
    unknown = set(models) - {"mlp", "gpt"}
    if unknown:
        raise SystemExit(f"bench_ddp: unknown model(s) {sorted(unknown)}; choose from mlp, gpt")
    rounds, steps = (1, 20) if args.quick else (3, 60)
    steps = args.steps or steps
    layouts = [(1, 2), (2, 1)]
    figures: dict = {}
    port = 29500 + os.getpid() % 1000
    for r in range(rounds):
        for model in models:
            for lib, mode in (libs if r % 2 == 0 else libs[::-1]):
                for ranks, threads in (layouts if r % 2 == 0 else layouts[::-1]):
                    port += 1
                    res = launch(lib, mode, ranks, threads, steps, port, model)
                    figures.setdefault((model, lib, mode, ranks), []).append(res)
    med = {k: {f: statistics.median(r[f] for r in v) for f in v[0] if f != "sweep"}
           for k, v in figures.items()}
    titles = {"mlp": f"MLP {'-'.join(map(str, SIZES))} step, global batch {GLOBAL_BATCH}",
              "gpt": "GPT step (examples/train_char_gpt.py's model), global batch 16"}
    for model in models:
        rows = []
        for lib, mode in libs:
            one, two = med[(model, lib, mode, 1)], med[(model, lib, mode, 2)]
            red = two.get("allreduce_ms")
            rows.append([f"{lib} {mode}", f"{one['step_ms']:.2f}", f"{two['step_ms']:.2f}",
                         f"{one['step_ms'] / two['step_ms']:.2f}x", "-" if red is None else f"{red:.3f}"])
        params = med[(model, "lucid", "eager", 1)]["params"]
        print(f"\n{titles[model]}, float32, {params} parameters ({4 * params / 1e6:.2f} MB of gradients); "
              f"medians of {rounds} interleaved round(s) x {steps} steps")
        print_table(["library", "1 rank x 2 thr ms", "2 ranks x 1 thr ms", "speed-up", "all-reduce ms"], rows)
        if ("torch", "eager") in libs:
            print("lucid / torch (2 ranks x 1 thread): "
                  + ", ".join(f"{mode} {med[(model, 'lucid', mode, 2)]['step_ms'] / med[(model, 'torch', 'eager', 2)]['step_ms']:.2f}x"
                              for mode in ("eager", "compiled")))
    sweeps = [res["sweep"] for (_, lib, mode, ranks), v in figures.items() for res in v if "sweep" in res]
    report = {"rounds": rounds, "steps": steps,
              "steps_ms": {f"{m} {lib} {mode} {r}x{3 - r}": v["step_ms"] for (m, lib, mode, r), v in med.items()}}
    latency = None
    if sweeps:
        sweep = [(nbytes, statistics.median(s[k][1] for s in sweeps)) for k, (nbytes, _) in enumerate(sweeps[0])]
        latency, bandwidth = fit_ring(sweep)
        print("\nlucid all_reduce on 2 ranks (float32, median ms): "
              + ", ".join(f"{nbytes / 1e6:g} MB {ms:.3f}" for nbytes, ms in sweep))
        print(f"ring model t = a + 2(N-1)/N * bytes / B fitted (relative least squares): "
              f"a = {latency * 1e6:.1f} us, B = {bandwidth / 1e9:.2f} GB/s")
        report.update(sweep=sweep, latency_us=latency * 1e6, bandwidth_GBps=bandwidth / 1e9)
    if latency is not None:
        _print_projection(models, med, max(latency, 0.0), report)
    if "gpt" in models:
        verdicts = []
        for mode in ("eager", "compiled"):
            ratio = med[("gpt", "lucid", mode, 2)]["step_ms"] / med[("gpt", "lucid", mode, 1)]["step_ms"]
            verdicts.append(f"{mode} {ratio:.2f} {'PASS' if ratio <= SPEEDUP_TARGET else 'MISS'}")
        print(f"\ntarget (issue 18): GPT step, 2 ranks x 1 thread / 1 rank x 2 threads <= {SPEEDUP_TARGET}: "
              + ", ".join(verdicts))
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(report, fh, indent=1)
        print(f"results saved in {args.json}")


def _print_projection(models, med, latency: float, report: dict) -> None:
    """Print, per model and lucid mode, the scaling model's step time for N ranks (one
    thread each), from the 2-rank figures; and where scaling stops (the N of the
    shortest step)."""
    batches = {"mlp": GLOBAL_BATCH, "gpt": 16}
    print(f"\nscaling model, N single-thread ranks on one global batch (a = {latency * 1e6:.1f} us; B per model "
          f"calibrated on its measured 2-rank all-reduce): projected ms per step (speed-up over one rank)")
    rows, report["projection"] = [], {}
    for model in models:
        params = med[(model, "lucid", "eager", 2)]["params"]
        for mode in ("eager", "compiled"):
            two = med[(model, "lucid", mode, 2)]
            proj = project(two["step_ms"], two["allreduce_ms"], 4 * params, latency, batches[model])
            best = min(proj, key=lambda r: r[1])[0]
            report["projection"][f"{model} {mode}"] = proj
            rows.append([f"{model} {mode}"] + [f"{ms:.2f} ({sp:.2f}x)" for _, ms, sp in proj]
                        + [""] * (len(PROJECTED_RANKS) - len(proj)) + [str(best)])
    print_table(["model"] + [f"N={n}" for n in PROJECTED_RANKS] + ["fastest N"], rows)

if __name__ == "__main__":
    main()
