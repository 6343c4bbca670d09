"""Shared benchmark machinery: interleaved timing (A B A B, medians), one subprocess per
thread count (so OpenBLAS and lucid get the thread count from their environment before
they start), and table printing. Figures are ratios measured in the same process."""
from __future__ import annotations

import argparse
import itertools
import json
import os
import subprocess
import sys
import time

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
NOMINAL_PEAK_PER_CORE = 102.0  # fp32 GFLOP/s of one core (PERF-NOTES: 2 FMA x 8 lanes x 2 x 3.2 GHz)


def interleaved(fns: dict, reps: int, inner: int = 1) -> dict:
    """Median seconds per call of each function, timed in turn, the order changing from one
    repetition to the next through every permutation (A B C, A C B, B A C, ...): what runs
    just before a function (another library's threads winding down, its data in the
    caches) changes its time, and this gives every function every predecessor."""
    for fn in fns.values():
        fn()
    times = {name: [] for name in fns}
    orders = list(itertools.permutations(fns))
    for r in range(reps):
        for name in orders[r % len(orders)]:
            fn = fns[name]
            start = time.perf_counter()
            for _ in range(inner):
                fn()
            times[name].append((time.perf_counter() - start) / inner)
            quiesce()  # every library's idle threads sleep before the next one is timed
    return {name: sorted(t)[len(t) // 2] for name, t in times.items()}


# OpenBLAS's idle threads busy-wait for ~2**28 cycles after each call; interleaved with
# lucid, they take the second core from lucid's workers (measured: lucid's 2-thread GEMM
# fell from ~175 to ~85 GFLOP/s). A short spin timeout lets them sleep between calls;
# numpy's own 2-thread figure moves by a few percent (256x1024x1024: ~140 -> ~134).
# Runs follow each other without sleeping: after an idle pause the VM's second core is
# slow to wake (lucid's 2-thread GEMM measured 189 GFLOP/s right away, 101 after 2 s idle).
OPENBLAS_SPIN = "4"


# glibc hands big blocks back to the OS and faults them in again (~1 µs a page on this
# VM) depending on what the other library freed last: a 4 MB temporary then costs lucid
# or numpy a few ms at random. Fixed thresholds keep freed memory in the heap for both.
STEADY_MALLOC = {"MALLOC_MMAP_THRESHOLD_": str(1 << 30), "MALLOC_TRIM_THRESHOLD_": str(1 << 30)}


def quiesce() -> None:
    """Put lucid's polling workers to sleep (OpenBLAS and OpenMP threads are made to
    sleep by their environment, below)."""
    threads = sys.modules.get("lucid_codegen.runtime.threads")
    if threads is not None:
        threads.quiesce()


def thread_env(n: int) -> dict:
    """This process's environment with every library's thread count set to ``n`` (read by
    OpenBLAS, OpenMP (PyTorch), MKL and lucid when they start)."""
    return dict(os.environ, OPENBLAS_NUM_THREADS=str(n), OMP_NUM_THREADS=str(n),
                MKL_NUM_THREADS=str(n), LUCID_NUM_THREADS=str(n))


def run_per_thread_count(script: str, counts, extra_args=()) -> list:
    """Run ``script --worker N`` in a fresh process per thread count; collect its JSON."""
    results = []
    for n in counts:
        env = thread_env(n)
        env.setdefault("OPENBLAS_THREAD_TIMEOUT", OPENBLAS_SPIN)
        # PyTorch's OpenMP threads: spin briefly (enough between the ops of one step), not
        # for the ~0.3 s that then takes the core from the library timed next
        env.setdefault("GOMP_SPINCOUNT", "20000")
        env.update(STEADY_MALLOC)
        out = subprocess.run([sys.executable, script, "--worker", str(n), *extra_args],
                             env=env, capture_output=True, text=True, check=False)
        if out.returncode != 0:
            sys.stderr.write(out.stderr)
            raise SystemExit(f"benchmark worker for {n} thread(s) failed")
        results.append(json.loads(out.stdout.strip().splitlines()[-1]))
    return results


def command_line(doc: str, json_option: bool = False, options=None, argv=None) -> argparse.Namespace:
    """The options every benchmark shares: ``--worker N`` (internal), ``--quick``, and
    ``--json PATH`` (save the results) for the benchmarks that offer it; ``options``, if
    given, adds a benchmark's own options to the parser."""
    parser = argparse.ArgumentParser(description=doc.splitlines()[0])
    parser.add_argument("--worker", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--quick", action="store_true", help="fewer repetitions")
    if json_option:
        parser.add_argument("--json", metavar="PATH", help="also save the results as JSON in PATH")
    if options is not None:
        options(parser)
    return parser.parse_args(argv)


def results_per_thread_count(doc: str, script: str, worker, args=None):
    """The command line every benchmark shares (``args``: already parsed by
    ``command_line``): ``--worker N`` (internal) runs ``worker(N, quick)`` and prints its
    JSON, returning None; otherwise one worker process per thread count runs and their
    results are returned."""
    if args is None:
        args = command_line(doc)
    if args.worker:
        print(json.dumps(worker(args.worker, args.quick)))
        return None
    return run_per_thread_count(os.path.abspath(script), (1, 2), ["--quick"] if args.quick else [])


def print_table(headers, rows) -> None:
    widths = [max(len(str(h)), *(len(str(r[i])) for r in rows)) for i, h in enumerate(headers)]
    line = "  ".join(str(h).rjust(w) for h, w in zip(headers, widths))
    print(line)
    print("-" * len(line))
    for r in rows:
        print("  ".join(str(c).rjust(w) for c, w in zip(r, widths)))


def setup_path() -> None:
    if ROOT not in sys.path:
        sys.path.insert(0, ROOT)
