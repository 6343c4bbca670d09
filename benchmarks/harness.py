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


_PEAK: list = []


def peak_gflops_per_core() -> float:
    """The fp32 GFLOP/s one core of this host reaches in a loop of independent vector
    FMAs (chains of the host's widest vectors: enough to fill two FMA pipes of 4-cycle
    latency, and few enough that they and the two operands stay in registers: 16 of
    AVX-512's 32, 12 of AVX2's 16; 16 chains on AVX2 spill and measure half the peak),
    compiled here by lucid's JIT: the ceiling a matrix product can approach, measured
    rather than assumed (machines change: Zen 3 ~101-113, Sapphire Rapids ~190).
    The best of five ~10 ms runs; measured once per process.

    >>> 20 < peak_gflops_per_core() < 10000
    True
    """
    if _PEAK:
        return _PEAK[0]
    import ctypes
    import llvmlite.ir as ir
    setup_path()
    from lucid_codegen.jit import llvm as jit
    from lucid_codegen.jit.target import host_target
    lanes = host_target().vector_bytes // 4
    chains = 16 if host_target().has_avx512 else 12
    f32, i64 = ir.FloatType(), ir.IntType(64)
    vty = ir.VectorType(f32, lanes)
    m = ir.Module(name="peak")
    fma = ir.Function(m, ir.FunctionType(vty, [vty] * 3), f"llvm.fma.v{lanes}f32")
    fn = ir.Function(m, ir.FunctionType(ir.VoidType(), [i64, f32.as_pointer()]), "peak_fma")
    n, out = fn.args
    b = ir.IRBuilder(fn.append_basic_block("entry"))
    entry, body, done = b.block, fn.append_basic_block("body"), fn.append_basic_block("done")
    x, y = ir.Constant(vty, [0.999] * lanes), ir.Constant(vty, [1e-3] * lanes)
    b.branch(body)
    b.position_at_end(body)
    i = b.phi(i64)
    accs = [b.phi(vty) for _ in range(chains)]
    nxt = [b.call(fma, [a, x, y]) for a in accs]
    i1 = b.add(i, i64(1))
    i.add_incoming(i64(0), entry)
    i.add_incoming(i1, body)
    for k, (a, v) in enumerate(zip(accs, nxt)):
        a.add_incoming(ir.Constant(vty, [float(k)] * lanes), entry)
        a.add_incoming(v, body)
    b.cbranch(b.icmp_signed("<", i1, n), body, done)
    b.position_at_end(done)
    total = nxt[0]
    for v in nxt[1:]:
        total = b.fadd(total, v)
    b.store(b.extract_element(total, ir.IntType(32)(0)), out)
    b.ret_void()
    lib = jit.load_object(jit.compile_to_object(m), ["peak_fma"])
    call = ctypes.CFUNCTYPE(None, ctypes.c_int64, ctypes.POINTER(ctypes.c_float))(lib.address("peak_fma"))
    sink = ctypes.c_float()
    iters = 200_000
    best = float("inf")
    for _ in range(5):
        start = time.perf_counter()
        call(iters, ctypes.byref(sink))
        best = min(best, time.perf_counter() - start)
    _PEAK.append(iters * chains * lanes * 2 / best / 1e9)
    return _PEAK[0]
