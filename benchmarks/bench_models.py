"""A GPT training step, a CNN training step and causal attention alone: lucid eager and
``lucid.compile`` against PyTorch eager, torch.compile and JAX (issue 16).

    python benchmarks/bench_models.py [--quick] [--json PATH] [--threads 1,2]
        [--workloads gpt,cnn,attn256,attn1024]
        [--modes lucid,lucid.compile,torch,torch.compile,jax,lucid.products,torch.products]
        [--rounds N]

Workloads (float32; model_zoo.py builds them for lucid and PyTorch from one PyTorch-API
source, jax_models.py writes them in JAX):

- ``gpt``: examples/train_char_gpt.py's CharGPT (d_model 128, 4 heads, 2 layers, context
  64, vocab 96), batch 16: zero_grad, forward, cross-entropy, backward, clip_grad_norm_
  at 1.0, AdamW(lr 3e-3, betas (0.9, 0.95), weight decay 0.1);
- ``cnn``: conv3x3(1->16) + BatchNorm2d + ReLU + MaxPool2d(2) + conv3x3(16->32) + ReLU +
  AdaptiveAvgPool2d(1) + Linear(32->10), 8x8 inputs, batch 64, cross-entropy with label
  smoothing 0.1, SGD(lr 0.05, momentum 0.9, Nesterov);
- ``attn256`` / ``attn1024``: causal ``F.scaled_dot_product_attention`` of q, k, v
  (batch 4, 8 heads, head dim 64, sequence 256 / 1024), the output's sum backward to the
  gradients of q, k and v.

Modes: ``lucid`` (eager), ``lucid.compile`` (the whole step function compiled, as the
examples' ``--compile`` does), ``torch`` (PyTorch eager: every ratio is to it),
``torch.compile`` (``torch.compile(step)``; an inductor failure shows as "failed: ..."),
``jax`` (``jax.jit`` of ``value_and_grad`` and a hand-written update, as the optional
``benchmarks`` extra installs it; "not installed" without it); and for ``gpt``,
``lucid.products`` / ``torch.products``: the step's dense matrix products alone
(``model_zoo.linear_products``: each linear layer's forward, input- and weight-gradient
products, without bias or activation), lucid's compiled, PyTorch's eager. They show how
much of a step the products take at the speed each library's GEMMs reach on this host:
below them, nothing the rest of the step does can bring it.

Method: one fresh process per (workload, mode, thread count), so that each figure's peak
RSS (``ru_maxrss``) is its own. The thread count is set in the environment before any
import (``LUCID_NUM_THREADS``, ``OMP_NUM_THREADS``, ...; ``torch.set_num_threads`` too);
libraries keep their other defaults, since each runs alone. JAX at 1 thread also gets
``XLA_FLAGS=--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1``, and as
XLA's CPU thread pool ignores those (measured here: a 2048² matmul still ran on both
cores), below the machine's core count its process is pinned to that many cores, the way
JAX's maintainers advise. Every process starts from PyTorch's initial weights
(saved once per run), times the first call (tracing and compiling for the compiled modes;
lucid's kernels come from its disk cache once compiled), makes two more warm-up calls
(torch.compile and lucid.compile may compile again once the optimiser has state), then
times steps one by one for ~2 s (at least 10; ``--quick``: ~0.5 s, at least 3). The
driver runs every process once a round (5 rounds, ``--quick`` 2), the modes of one
workload back to back, the order rotating from round to round; the step time is the
median of the rounds' medians.

Prints one row per (thread count, workload, mode): median step ms, its ratio to torch
eager, the share of the fp32 peak (measured on this host: ``harness.peak_gflops_per_core``)
its matrix products' FLOPs reach
(``model_zoo.matmul_flops``: the roofline of these compute-bound steps), the spread of
the rounds' medians, the first call and the whole warm-up (s), peak
RSS and its growth over the RSS after the library's import (MB), and the largest relative
difference of the mode's first two losses (attention: the loss and the sums of squares of
the three gradients) from torch eager's: above 1e-3 the row is marked ``!``, as the
benchmark would be timing a different computation. Then issue 16's targets, each PASS or
MISS, at each thread count: GPT compiled <= 0.6x torch eager and <= torch.compile and
JAX; GPT eager <= 1.0x; CNN compiled <= 0.7x, eager <= 1.0x; attention at 1024 (eager and
compiled) <= 1.0x torch's SDPA; GPT peak RSS (eager and compiled) <= torch eager's.
Saves everything (every round of every process) as JSON: ``--json PATH``, by default
bench_models.json in the current directory.
"""
from __future__ import annotations

import argparse
import importlib
import importlib.util
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
import traceback
from statistics import median

from harness import command_line, peak_gflops_per_core, print_table, setup_path, thread_env

import model_zoo as zoo

# mode: (library, compiled, label)
MODES = {"lucid": ("lucid", False, "lucid eager"), "lucid.compile": ("lucid", True, "lucid.compile"),
         "torch": ("torch", False, "torch eager"), "torch.compile": ("torch", True, "torch.compile"),
         "jax": ("jax", True, "jax.jit"),
         # a step's dense matrix products alone (model_zoo.linear_products: gpt only)
         "lucid.products": ("lucid", True, "lucid products"), "torch.products": ("torch", False, "torch products")}
PRODUCTS = ("lucid.products", "torch.products")
BASELINE = "torch"
LOSS_TOLERANCE = 1e-3
WARMUP_CALLS = 3
TARGETS = [  # (workload, mode, against, limit, what)
    ("gpt", "lucid.compile", "torch", 0.6, "time"),
    ("gpt", "lucid.compile", "torch.compile", 1.0, "time"),
    ("gpt", "lucid.compile", "jax", 1.0, "time"),
    ("gpt", "lucid", "torch", 1.0, "time"),
    ("cnn", "lucid.compile", "torch", 0.7, "time"),
    ("cnn", "lucid", "torch", 1.0, "time"),
    ("attn1024", "lucid", "torch", 1.0, "time"),
    ("attn1024", "lucid.compile", "torch", 1.0, "time"),
    ("gpt", "lucid.compile", "torch", 1.0, "peak RSS"),
    ("gpt", "lucid", "torch", 1.0, "peak RSS"),
]
TORCH_MISSING = ("bench_models.py times lucid against PyTorch eager, and torch is not installed.\n"
                 "Install the benchmarks' extra: pip install -e '.[benchmarks]'")
WORKER_TIMEOUT = 3600  # s: a compile that hangs fails its row instead of the whole run
XLA_ONE_THREAD = "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1"


def _options(parser) -> None:
    parser.add_argument("--threads", type=_ints, default=[1, 2], help="thread counts, comma-separated (default 1,2)")
    parser.add_argument("--workloads", type=_names(zoo.WORKLOADS), default=list(zoo.WORKLOADS),
                        help=f"comma-separated, of {','.join(zoo.WORKLOADS)} (default: all)")
    parser.add_argument("--modes", type=_names(MODES), default=list(MODES),
                        help=f"comma-separated, of {','.join(MODES)} (default: all)")
    parser.add_argument("--rounds", type=int, help="processes per row, one a round (default 5, --quick 2)")
    parser.add_argument("--state", help=argparse.SUPPRESS)  # internal: the folder of the initial weights
    parser.add_argument("--setup", action="store_true", help=argparse.SUPPRESS)  # internal: write them


def _ints(text: str) -> list:
    counts = [int(s) for s in text.split(",") if s.strip()]
    if not counts or min(counts) < 1:
        raise ValueError(text)
    return counts


def _names(choices):
    def names(text: str) -> list:
        items = [s.strip() for s in text.split(",") if s.strip()]
        if not items or any(s not in choices for s in items):
            raise argparse.ArgumentTypeError(f"expected a comma-separated list of {', '.join(choices)}, got {text!r}")
        return items
    return names


# --- one process: one workload in one mode ----------------------------------------------

def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def worker(threads: int, workload: str, mode: str, state_dir: str, quick: bool) -> dict:
    """Time ``workload`` in ``mode`` in this process: the first call, the warm-up, then
    steps one by one; also the numbers that show what it computed, and the peak RSS."""
    library, compiled, _ = MODES[mode]
    setup_path()
    if library == "jax":
        cores = sorted(os.sched_getaffinity(0))
        if threads < len(cores):
            os.sched_setaffinity(0, cores[:threads])  # XLA sizes its thread pool from the affinity
    import numpy as np
    try:
        if library == "jax":
            import jax_models
            build = lambda state: jax_models.build_step(workload, state)
        else:
            lib = importlib.import_module(library)
            if library == "torch":
                lib.set_num_threads(threads)
            build = ((lambda state: zoo.build_products(lib, workload)) if mode in PRODUCTS else
                     (lambda state: zoo.build_step(lib, workload, state, compiled)))
    except ImportError as e:
        return dict(error="not installed", detail=str(e))
    base = _rss_mb()
    path = os.path.join(state_dir, f"{workload}.npz")
    state = dict(np.load(path)) if os.path.exists(path) else {}
    try:
        call, check = build(state)
        warmup = []
        for i in range(WARMUP_CALLS):
            start = time.perf_counter()
            out = call()
            warmup.append(time.perf_counter() - start)
            if i == 0:
                values = check(out)
            elif i == 1 and workload in ("gpt", "cnn") and values is not None:
                values.append(check(out)[0])  # the loss after one update: backward and optimiser checked too
        budget, least = (0.5, 3) if quick else (2.0, 10)
        times = []
        while len(times) < least or (sum(times) < budget and len(times) < 1000):
            start = time.perf_counter()
            call()
            times.append(time.perf_counter() - start)
    except Exception as e:  # noqa: BLE001 - a failing mode is a row of the table, not the end of the run
        return dict(error=_one_line(f"{type(e).__name__}: {e}"), traceback=traceback.format_exc(),
                    rss_base_mb=base, rss_peak_mb=_rss_mb())
    return dict(step=sorted(times)[len(times) // 2], steps=len(times), first_call=warmup[0], warmup=warmup,
                values=values, rss_base_mb=base, rss_peak_mb=_rss_mb(), cpus=len(os.sched_getaffinity(0)))


def _one_line(text: str) -> str:
    return " ".join(text.split())


def save_initial_state(state_dir: str, workloads) -> None:
    import numpy as np
    for w in workloads:
        state = zoo.initial_state(w)
        if state:
            np.savez(os.path.join(state_dir, f"{w}.npz"), **state)


# --- the driver ---------------------------------------------------------------------------

def run_worker(threads: int, workload: str, mode: str, state_dir: str, quick: bool) -> dict:
    env = thread_env(threads)
    if MODES[mode][0] == "jax" and threads == 1:
        env["XLA_FLAGS"] = f"{env.get('XLA_FLAGS', '')} {XLA_ONE_THREAD}".strip()
    cmd = [sys.executable, os.path.abspath(__file__), "--worker", str(threads), "--workloads", workload,
           "--modes", mode, "--state", state_dir] + (["--quick"] if quick else [])
    try:
        out = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=WORKER_TIMEOUT, check=False)
    except subprocess.TimeoutExpired:
        return dict(error=f"timed out after {WORKER_TIMEOUT} s")
    lines = out.stdout.strip().splitlines()
    if out.returncode == 0 and lines:
        try:
            return json.loads(lines[-1])
        except json.JSONDecodeError:
            pass
    tail = (out.stderr.strip().splitlines() or ["(nothing on stderr)"])[-1]
    return dict(error=_one_line(f"process ended with code {out.returncode}: {tail}"), stderr=out.stderr[-8000:])


def _rotate(items: list, r: int) -> list:
    k = r % len(items)
    return items[k:] + items[:k]


def measure(args) -> tuple:
    """Every (thread count, workload, mode) once a round, in a rotated order; the modes
    of one workload and thread count run back to back, so that the figures compared
    with each other are measured close in time on a shared machine."""
    rounds = args.rounds or (2 if args.quick else 5)
    have_jax = importlib.util.find_spec("jax") is not None
    results = {(n, w, m): [] for n in args.threads for w in args.workloads for m in args.modes
               if m not in PRODUCTS or zoo.linear_products(w)}
    for key in results:
        if key[2] == "jax" and not have_jax:
            results[key].append(dict(error="not installed"))
    groups = [(n, w) for n in args.threads for w in args.workloads]
    with tempfile.TemporaryDirectory(prefix="bench_models_") as state_dir:
        subprocess.run([sys.executable, os.path.abspath(__file__), "--setup", "--state", state_dir,
                        "--workloads", ",".join(args.workloads)], env=thread_env(1), check=True)
        for r in range(rounds):
            for n, w in _rotate(groups, r):
                for m in _rotate(list(args.modes), r):
                    if (n, w, m) not in results:
                        continue  # no products listed for this workload
                    done = results[(n, w, m)]
                    if done and "error" in done[0]:
                        continue  # failed or not installed: not again
                    res = run_worker(n, w, m, state_dir, args.quick)
                    done.append(res)
                    what = res.get("error") or f"{res['step'] * 1e3:.2f} ms ({res['steps']} steps)"
                    print(f"round {r + 1}/{rounds}: {w}, {m}, {n} thread(s): {what}", file=sys.stderr, flush=True)
    return results, rounds


def summarise(results: dict) -> list:
    """One row per (thread count, workload, mode): medians over the rounds, the ratio to
    torch eager, and the largest relative difference from torch eager's losses."""
    rows = []
    for (n, w, m), runs in results.items():
        ok = [r for r in runs if "error" not in r]
        row = dict(threads=n, workload=w, mode=m)
        if not ok:
            row["error"] = runs[0]["error"] if runs else "not run"
        else:
            steps = [r["step"] for r in ok]
            row.update(step=median(steps), spread=(max(steps) - min(steps)) / median(steps),
                       first_call=median([r["first_call"] for r in ok]),
                       warmup=median([sum(r["warmup"]) for r in ok]),
                       rss_peak_mb=median([r["rss_peak_mb"] for r in ok]),
                       rss_growth_mb=median([r["rss_peak_mb"] - r["rss_base_mb"] for r in ok]),
                       rounds=len(ok), values=[r["values"] for r in ok])
        rows.append(row)
    find = {(r["threads"], r["workload"], r["mode"]): r for r in rows}
    for row in rows:
        if "error" in row:
            continue
        base = find.get((row["threads"], row["workload"], BASELINE))
        if base is not None and "error" not in base:
            row["ratio"] = row["step"] / base["step"]
        ref = _reference_values(rows, row)
        if ref is not None and row["values"][0] is not None:
            row["rel_diff"] = max(abs(a - b) / max(abs(b), 1e-30) for v in row["values"] for a, b in zip(v, ref))
    return rows


def _reference_values(rows, row):
    """torch eager's first-round numbers for the row's workload, preferably at its thread count."""
    refs = [r for r in rows if r["workload"] == row["workload"] and r["mode"] == BASELINE and "error" not in r]
    refs.sort(key=lambda r: r["threads"] != row["threads"])
    return refs[0]["values"][0] if refs else None


def evaluate_targets(rows: list, workloads) -> list:
    find = {(r["threads"], r["workload"], r["mode"]): r for r in rows}
    out = []
    for n in sorted({r["threads"] for r in rows}):
        for w, mode, against, limit, what in TARGETS:
            if w not in workloads:
                continue
            entry = dict(threads=n, workload=w, mode=mode, against=against, limit=limit, what=what)
            a, b = find.get((n, w, mode)), find.get((n, w, against))
            missing = [f"{m}: {r['error'] if r else 'not run'}" for m, r in ((mode, a), (against, b))
                       if r is None or "error" in r]
            if missing:
                entry["na"] = "; ".join(missing)
            elif what == "time":
                entry.update(value=a["step"] / b["step"], detail=f"{a['step'] * 1e3:.1f} vs {b['step'] * 1e3:.1f} ms")
            else:
                entry.update(value=a["rss_peak_mb"] / b["rss_peak_mb"],
                             detail=f"{a['rss_peak_mb']:.0f} vs {b['rss_peak_mb']:.0f} MB; growth over the "
                                    f"import {a['rss_growth_mb']:.0f} vs {b['rss_growth_mb']:.0f} MB")
            out.append(entry)
    return out


def _ms(v: float) -> str:
    return f"{v * 1e3:.2f}" if v < 0.01 else f"{v * 1e3:.1f}"


def print_report(rows: list, targets: list, rounds: int, load: tuple) -> None:
    print("float32; median ms per step over the rounds (each round: one fresh process per row); "
          "x torch = step / torch eager's step; spread = (slowest - fastest round) / median; "
          "first call and warm-up (3 calls) in s; peak = peak RSS, +MB = its growth over the RSS after "
          "the library's import; max rel diff = the first two losses (attention: loss and gradients' "
          f"sums of squares) against torch eager's, '!' above {LOSS_TOLERANCE:g}")
    for w in dict.fromkeys(r["workload"] for r in rows):
        print(f"  {w}: {zoo.DESCRIPTION[w]}")
    print(f"{rounds} round(s); load average (1 min) at the start and end: {load[0]:.1f} -> {load[1]:.1f} "
          "(a shared machine: compare figures of one run only)")
    table, errors = [], []
    core_peak = peak_gflops_per_core()
    for r in rows:
        label = MODES[r["mode"]][2]
        if "error" in r:
            text = r["error"] if r["error"] == "not installed" else "failed: " + r["error"]
            if len(text) > 60:
                errors.append((r, text))
                text = text[:57] + "..."
            table.append([r["threads"], r["workload"], label, text] + ["-"] * 8)
            continue
        diff = "-" if "rel_diff" not in r else f"{r['rel_diff']:.1e}" + (" !" if r["rel_diff"] > LOSS_TOLERANCE else "")
        flops = zoo.product_flops(r["workload"]) if r["mode"] in PRODUCTS else zoo.matmul_flops(r["workload"])
        peak = flops / (r["step"] * core_peak * 1e9 * r["threads"])
        table.append([r["threads"], r["workload"], label, _ms(r["step"]),
                      f"{r['ratio']:.2f}" if "ratio" in r else "-", f"{100 * peak:.0f}%", f"{100 * r['spread']:.0f}%",
                      f"{r['first_call']:.2f}", f"{r['warmup']:.2f}", f"{r['rss_peak_mb']:.0f}",
                      f"{r['rss_growth_mb']:.0f}", diff])
    print_table(["threads", "workload", "mode", "step ms", "x torch", "% peak", "spread", "first call s",
                 "warm-up s", "peak MB", "+MB", "max rel diff"], table)
    print("% peak: the step's matrix-product FLOPs (model_zoo.matmul_flops) per second, as a share of the "
          f"fp32 peak of its threads ({core_peak:.0f} GFLOP/s a core, measured: harness.peak_gflops_per_core); the floor, every "
          "product at peak and nothing else: "
          + ", ".join(f"{w} {zoo.matmul_flops(w) / 1e9:.2f} GFLOP = "
                      + " / ".join(f"{_ms(zoo.matmul_flops(w) / (core_peak * 1e9 * n))} ms at {n} thr"
                                   for n in sorted({r['threads'] for r in rows}))
                      for w in dict.fromkeys(r["workload"] for r in rows)))
    for r, text in errors:
        print(f"{r['threads']} thread(s), {r['workload']}, {MODES[r['mode']][2]}: {text}")
    find = {(r["threads"], r["workload"], r["mode"]): r for r in rows if "error" not in r}
    for (n, w, m), r in find.items():
        step, base = find.get((n, w, "lucid.compile")), find.get((n, w, BASELINE))
        if m == "lucid.products" and base is not None:
            print(f"{n} thread(s), {w}: the step's dense products alone (lucid products: "
                  f"{len(zoo.linear_products(w)) * 3} GEMMs, no epilogues) take {_ms(r['step'])} ms = "
                  f"{r['step'] / base['step']:.2f}x torch eager's step"
                  + (f"; lucid.compile spends {_ms(step['step'] - r['step'])} ms beyond them" if step else ""))
    print()
    checked = [r for r in rows if "rel_diff" in r]
    worst = max((r["rel_diff"] for r in checked), default=None)
    if worst is not None:
        verdict = "PASS" if worst <= LOSS_TOLERANCE else "MISS"
        print(f"same computation: every mode's losses within {LOSS_TOLERANCE:g} of torch eager's "
              f"(largest relative difference {worst:.1e}): {verdict}")
    print("issue 16's targets:")
    for t in targets:
        mode, against = MODES[t["mode"]][2], MODES[t["against"]][2]
        head = f"  {t['threads']} thread(s), {t['workload']}: {mode} {t['what']} <= {t['limit']:.1f}x {against}"
        if "na" in t:
            print(f"{head}: n/a ({t['na']})")
        else:
            print(f"{head}: {t['value']:.2f} ({t['detail']}) {'PASS' if t['value'] <= t['limit'] else 'MISS'}")


def main() -> None:
    args = command_line(__doc__, json_option=True, options=_options)
    if args.worker:
        print(json.dumps(worker(args.worker, args.workloads[0], args.modes[0], args.state, args.quick)))
        return
    if args.setup:
        save_initial_state(args.state, args.workloads)
        return
    if importlib.util.find_spec("torch") is None:
        print(TORCH_MISSING, file=sys.stderr)
        raise SystemExit(1)
    load_before = os.getloadavg()[0]
    results, rounds = measure(args)
    load = (load_before, os.getloadavg()[0])
    rows = summarise(results)
    targets = evaluate_targets(rows, args.workloads)
    print_report(rows, targets, rounds, load)
    path = args.json or "bench_models.json"
    with open(path, "w") as f:
        json.dump(dict(command=sys.argv, rounds=rounds, threads=args.threads, workloads=args.workloads,
                       modes=args.modes, cpus=os.cpu_count(), load=load, loss_tolerance=LOSS_TOLERANCE,
                       core_peak_gflops=peak_gflops_per_core(),
                       rows=rows, targets=targets,
                       results=[dict(threads=n, workload=w, mode=m, rounds=runs)
                                for (n, w, m), runs in results.items()]), f, indent=1)
    print(f"results saved in {path}")


if __name__ == "__main__":
    main()
