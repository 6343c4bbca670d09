"""Eager calls and the eager MLP step: lucid vs PyTorch eager vs numpy (issue 13).

The cost of single eager calls, and of the eager MLP training step, in each library.

    python benchmarks/bench_eager.py [--quick] [--json PATH] [--only TEXT ...]

``--only softmax --only norm`` times only the calls whose names contain one of the texts
(the MLP step too when its name does).

The calls are the rows of ``eager_rows.py`` (issue 13's table, 64x64 float32 unless
noted, and more calls a PyTorch user makes all the time); tests/test_bench_eager.py
checks that the three libraries compute the same values with them. Each thread count
(1, 2) runs in its own process; inside it the libraries are timed in turn (every order
of them, see ``harness.interleaved``), each timing a batch of calls of at least ~3 ms
(~1 ms with --quick), and the table gives the median per call.

Targets (issue 13), each printed with PASS or MISS:
- every call at 1 thread takes at most 1.5x PyTorch eager's time;
- the geometric mean of lucid/torch over issue 13's nine calls at 1 thread is at most 1.0
  (aim: 0.8);
- the eager MLP step (784-256-256-10, batch 64, cross-entropy, SGD) takes at most
  PyTorch eager's time at 1 and 2 threads (aim: 0.8x), and lucid's 2-thread step at most
  its 1-thread step (two processes: the noisiest comparison here);
- ``F.linear`` 1x784->256 takes at most numpy's ``x @ W.T + b`` at 1 and 2 threads.
"""
from __future__ import annotations

import importlib.util
import json
import math
import os
import sys
import time

from harness import OPENBLAS_SPIN, command_line, interleaved, print_table, run_per_thread_count, setup_path

PER_CALL_TARGET = 1.5  # lucid / torch, every call at 1 thread
GEOMEAN_TARGET = 1.0   # lucid / torch, geometric mean of issue 13's nine calls at 1 thread
GEOMEAN_AIM = 0.8
STEP_TARGET = 1.0      # lucid / torch, the eager MLP step
NUMPY_TARGET = 1.0     # lucid / numpy, rows marked vs_numpy
MLP_NAME = "MLP step 784-256-256-10"
TORCH_MISSING = ("bench_eager.py times lucid against PyTorch eager, and torch is not installed.\n"
                 "Install the benchmarks' extra: pip install -e '.[benchmarks]'")


def time_calls(fns: dict, quick: bool) -> dict:
    """Median seconds per call of each zero-argument function, interleaved; a batch of
    calls is timed at once, long enough (for the fastest library) that the clock's
    resolution and one interruption do not decide the figure."""
    for fn in fns.values():  # the first call compiles or loads lucid's kernels
        fn()
    fastest = min(_one_call(fn) for fn in fns.values())
    inner = int(min(10000, max(1, (1e-3 if quick else 3e-3) / fastest)))
    return interleaved(fns, 9 if quick else 31, inner)


def _one_call(fn) -> float:
    best = math.inf
    for _ in range(5):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def worker(threads: int, quick: bool, only=None) -> dict:
    setup_path()
    import torch

    import eager_rows
    torch.set_num_threads(threads)
    load_before = os.getloadavg()[0]
    rows = []
    for row in eager_rows.ROWS:
        if not _chosen(row.name, only):
            continue
        arrays = row.arrays()
        fns = {"lucid": eager_rows.lucid_call(row, arrays), "torch": eager_rows.torch_call(row, arrays)}
        numpy_fn = eager_rows.numpy_call(row, arrays)
        if numpy_fn is not None:
            fns["numpy"] = numpy_fn
        rows.append(dict(name=row.name, **time_calls(fns, quick)))
    if _chosen(MLP_NAME, only):
        mlp = eager_rows.MLP()
        steps = {"lucid": mlp.lucid().call, "torch": mlp.torch().call, "numpy": mlp.numpy().call}
        rows.append(dict(name=MLP_NAME, **time_calls(steps, quick)))
    env = {k: os.environ.get(k, "(unset)") for k in ("OPENBLAS_THREAD_TIMEOUT", "GOMP_SPINCOUNT",
                                                     "LUCID_NUM_THREADS", "OPENBLAS_NUM_THREADS")}
    return dict(threads=threads, torch_threads=torch.get_num_threads(), env=env, rows=rows,
                load=[load_before, os.getloadavg()[0]])


def _chosen(name: str, only) -> bool:
    return not only or any(text in name for text in only)


def _verdict(ok: bool) -> str:
    return "PASS" if ok else "MISS"


def evaluate(results: list) -> dict:
    """Ratios and targets of the workers' medians: one entry per (thread count, row),
    each with its checks [(description, ratio, limit)], plus the geometric means."""
    import eager_rows
    step_1 = next((r for res in results if res["threads"] == 1 for r in res["rows"] if r["name"] == MLP_NAME),
                  None)
    entries, geomeans = [], []
    for res in results:
        n = res["threads"]
        for r in res["rows"]:
            row = eager_rows.ROW_BY_NAME.get(r["name"])
            checks = []
            if r["name"] == MLP_NAME:
                checks.append(("lucid/torch", r["lucid"] / r["torch"], STEP_TARGET))
                if n > 1 and step_1 is not None:
                    checks.append(("lucid/lucid 1 thread", r["lucid"] / step_1["lucid"], 1.0))
            else:
                if n == 1:
                    checks.append(("lucid/torch", r["lucid"] / r["torch"], PER_CALL_TARGET))
                if row.vs_numpy:
                    checks.append(("lucid/numpy", r["lucid"] / r["numpy"], NUMPY_TARGET))
            entries.append(dict(threads=n, name=r["name"], lucid=r["lucid"], torch=r["torch"],
                                numpy=r.get("numpy"), issue=bool(row and row.issue), checks=checks))
        timed = sum(e["threads"] == n and e["name"] != MLP_NAME for e in entries)
        for label, pick in (("issue 13's nine calls", lambda e: e["issue"]),
                            (f"all {timed} calls timed", lambda e: e["name"] != MLP_NAME)):
            ratios = [e["lucid"] / e["torch"] for e in entries if e["threads"] == n and pick(e)]
            if not ratios or (label.startswith("issue") and len(ratios) != 9):  # (--only left some out)
                continue
            mean = math.exp(sum(map(math.log, ratios)) / len(ratios))
            target = GEOMEAN_TARGET if (n == 1 and label.startswith("issue")) else None
            geomeans.append(dict(threads=n, label=label, ratio=mean, target=target))
    return dict(entries=entries, geomeans=geomeans, env=results[0]["env"],
                torch_threads=[res["torch_threads"] for res in results],
                load={res["threads"]: res["load"] for res in results})


def print_report(report: dict) -> None:
    us = lambda v: "-" if v is None else (f"{v * 1e6:.1f}" if v < 1e-4 else f"{v * 1e6:.0f}")
    table = []
    for e in report["entries"]:
        numpy_ratio = "-" if e["numpy"] is None else f"{e['lucid'] / e['numpy']:.2f}"
        target = ", ".join(f"{what} <= {limit:.1f}" for what, _, limit in e["checks"]) or "-"
        result = " ".join(_verdict(ratio <= limit) for _, ratio, limit in e["checks"]) or "-"
        table.append([e["threads"], e["name"] + (" *" if e["issue"] else ""), us(e["lucid"]), us(e["torch"]),
                      us(e["numpy"]), f"{e['lucid'] / e['torch']:.2f}", numpy_ratio, target, result])
    env = report["env"]
    print("eager calls, float32, median µs per call; lucid vs PyTorch eager vs numpy in one process, "
          "interleaved (* = issue 13's table)")
    print(f"OPENBLAS_THREAD_TIMEOUT={env['OPENBLAS_THREAD_TIMEOUT']} (harness default {OPENBLAS_SPIN}: OpenBLAS's "
          f"idle threads sleep between calls instead of spinning on lucid's core), "
          f"GOMP_SPINCOUNT={env['GOMP_SPINCOUNT']}; torch threads per worker: {report['torch_threads']}")
    print("load average (1 min) at the start and end of each worker, on a shared machine: " + "; ".join(
        f"{n} thread(s) {a:.1f} -> {b:.1f}" for n, (a, b) in report["load"].items()))
    print_table(["threads", "call", "lucid us", "torch us", "numpy us", "lucid/torch", "lucid/numpy",
                 "target", "result"], table)
    print()
    for g in report["geomeans"]:
        tail = (f"  target <= {g['target']:.1f} (aim {GEOMEAN_AIM}): {_verdict(g['ratio'] <= g['target'])}"
                if g["target"] is not None else "")
        print(f"geometric mean lucid/torch, {g['threads']} thread(s), {g['label']}: {g['ratio']:.2f}{tail}")
    checks = [(e, what, ratio, limit) for e in report["entries"] for what, ratio, limit in e["checks"]]
    checks += [(g, "geometric mean", g["ratio"], g["target"]) for g in report["geomeans"] if g["target"]]
    missed = [(e, what, ratio, limit) for e, what, ratio, limit in checks if ratio > limit]
    print(f"targets: {len(checks) - len(missed)} of {len(checks)} PASS")
    for e, what, ratio, limit in missed:
        print(f"  MISS {e['threads']} thread(s), {e.get('name', e.get('label'))}: {what} {ratio:.2f} > {limit:.1f}")


def main() -> None:
    if importlib.util.find_spec("torch") is None:
        print(TORCH_MISSING, file=sys.stderr)
        raise SystemExit(1)
    args = command_line(__doc__, json_option=True, options=lambda p: p.add_argument(
        "--only", metavar="TEXT", action="append", help="time only the calls whose name contains TEXT"))
    if args.worker:
        print(json.dumps(worker(args.worker, args.quick, args.only)))
        return
    extra = (["--quick"] if args.quick else []) + [a for text in args.only or () for a in ("--only", text)]
    results = run_per_thread_count(os.path.abspath(__file__), (1, 2), extra)
    report = evaluate(results)
    print_report(report)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(dict(results=results, **report), f, indent=1)
        print(f"results saved in {args.json}")


if __name__ == "__main__":
    main()
