"""When work splits across threads: one cost model for every kernel family.

A kernel call's time on one core is estimated from what it does,

    seconds = bytes moved / bandwidth + elements × Σ cost(op) / bandwidth + FLOPs / FLOP rate

(``cost`` is the ops' trait in ``lucid_ir.ops``: what an exp or an erf adds per element,
in bytes that take as long to move), and the call is split across threads when that is
at least ``MARGIN`` hand-offs to the pool that runs the parts. A split into two halves
saves T/2 and costs one hand-off h, so at T = 4h it saves h: below that, the noise of a
shared machine eats the gain. Three pools hand work over at different costs:

- a native program's parts (``native_plan``: spinning workers, no Python): ``NATIVE_HANDOFF_S``;
- a GEMM's parts through ``threads.run_native`` (one Python call posting the jobs):
  ``GEMM_HANDOFF_S``;
- Python chunks through ``threads.parallel_for`` (a kernel run outside a native
  program, attention's items): ``POOL_HANDOFF_S``.

The rates and hand-offs are measured on the machine by
``benchmarks/calibrate_splits.py`` (which prints them next to the values below); the
thresholds every kernel family reads are derived here, not tuned per shape (and read
at each decision: a test may set one, ``LOOP_SPLIT_BYTES = 64``, to split small work). Splitting
never changes results: every output element is computed by one sequential computation
whichever thread runs it, so the same bits come out at any thread count (tests check).

>>> loop_splits(work_bytes(512000, 64000, ["max", "sub", "exp", "sum", "div"]))
True
>>> gemm_splits(1, 256, 256, 4), gemm_splits(1, 256, 784, 4), gemm_splits(64, 64, 64, 4)
(False, True, False)
>>> LOOP_SPLIT_BYTES, PARALLEL_BYTES
(524800, 10560000)
"""
from __future__ import annotations

from lucid_ir.ops import all_ops

__all__ = ["MARGIN", "work_bytes", "loop_seconds", "loop_splits", "pool_splits", "LOOP_SPLIT_BYTES",
           "PARALLEL_BYTES", "GEMM_SPLIT_SECONDS", "ATTENTION_SPLIT_SECONDS", "gemm_seconds", "gemm_splits", "attention_seconds", "attention_splits",
           "attention_work_bytes", "releases_gil", "kernel_seconds"]

# ---------------------------------------------------------------- measured (calibrate_splits.py)
#: one core streaming a loop kernel's operands from cache (float32 x + y over 0.25-2 MB)
LOOP_BYTES_PER_S = 80e9
#: lucid's one-core GEMM on packed panels (256³), and the bytes a skinny product streams
#: (1×784×256: W read once, not from L2)
GEMM_FLOPS_PER_S = 110e9
GEMM_BYTES_PER_S = 55e9
#: the fused attention kernel's one-core rate (its q·kᵀ, softmax and p·v in tiles)
ATTENTION_FLOPS_PER_S = 52e9
#: hand-off latencies: native program parts (a fork/join of spinning workers, 1-2 µs);
#: a GEMM posted by run_native (break-even measured at 2 threads: F.linear 1x784x256,
#: ~14 µs, 11.4 -> 10.2 µs split; 1x256x256, ~5 µs, 4.9 -> 7.1); Python chunks (a*b+a:
#: 2.4 MB 37 vs 87 µs, 12 MB 167 vs 135). The script's own hand-off figures (a split's
#: time minus half the one-thread time) also count the bandwidth the halves share, so
#: they overstate these for loops; they are printed as a check of the order of magnitude.
NATIVE_HANDOFF_S = 1.64e-6
GEMM_HANDOFF_S = 2.5e-6
POOL_HANDOFF_S = 33e-6

#: a split pays from this many hand-offs of one-thread work (see the module docstring)
MARGIN = 4.0
#: a native program whose kernels take about this long or more releases the GIL while it
#: runs, so other Python threads run meanwhile; a shorter one keeps it (taking it back
#: can wait for another thread): about what moving 200 KB takes
RELEASE_GIL_S = 2.5e-6

#: per op name, the bytes-equivalent it adds per element: the ``cost`` trait
OP_COST_BYTES = {d.name: d.cost for d in all_ops() if d.cost}


# ---------------------------------------------------------------- loop kernels
def work_bytes(nbytes: int, elements: int, ops) -> int:
    """A loop kernel's work in bytes-equivalent: the bytes it moves plus, per element,
    the ``cost`` of each op it computes (``ops``: its nodes' op names). A softmax over
    64x1000 moves 0.5 MB but computes 64000 exponentials, and splits.

    >>> work_bytes(512000, 64000, ["max", "sub", "exp", "sum", "div"])
    1408000
    """
    return nbytes + elements * sum(OP_COST_BYTES.get(op, 0) for op in ops)


def loop_seconds(work: float) -> float:
    """One core's time for a loop kernel of ``work`` bytes-equivalent (``work_bytes``)."""
    return work / LOOP_BYTES_PER_S


#: the bytes-equivalent from which a native program splits a loop kernel, and from
#: which a kernel run outside one splits through the Python pool
LOOP_SPLIT_BYTES = int(MARGIN * NATIVE_HANDOFF_S * LOOP_BYTES_PER_S)
PARALLEL_BYTES = int(MARGIN * POOL_HANDOFF_S * LOOP_BYTES_PER_S)


def loop_splits(work: float) -> bool:
    """Whether a loop kernel of ``work`` bytes-equivalent splits in a native program
    (or as a one-kernel eager call, which then takes the native program)."""
    return work >= LOOP_SPLIT_BYTES


def pool_splits(work: float) -> bool:
    """Whether a kernel run outside a native program splits through the Python pool."""
    return work >= PARALLEL_BYTES


# ---------------------------------------------------------------- GEMM
def gemm_seconds(M: int, N: int, K: int, itemsize: int) -> float:
    """One core's time for C(M, N) = A(M, K)·B(K, N): its FLOPs or the bytes it
    streams, whichever bounds it."""
    flop = 2.0 * M * N * K
    nbytes = itemsize * (M * K + K * N + 1.0 * M * N)
    return max(flop / GEMM_FLOPS_PER_S, nbytes / GEMM_BYTES_PER_S)


#: a GEMM (and a native program's parts, and Python chunks) split from these one-thread times
GEMM_SPLIT_SECONDS = MARGIN * GEMM_HANDOFF_S
ATTENTION_SPLIT_SECONDS = MARGIN * POOL_HANDOFF_S


def gemm_splits(M: int, N: int, K: int, itemsize: int) -> bool:
    """Whether C(M, N) = A(M, K)·B(K, N) is worth splitting across threads (measured at
    2 threads: F.linear 1x784x256 11.4 -> 10.2 µs split, 1x256x256 4.9 -> 7.1: kept).

    >>> gemm_splits(1, 256, 256, 4), gemm_splits(32, 256, 256, 4)
    (False, True)
    """
    return gemm_seconds(M, N, K, itemsize) >= GEMM_SPLIT_SECONDS


# ---------------------------------------------------------------- attention
def attention_seconds(flops: float) -> float:
    return flops / ATTENTION_FLOPS_PER_S


def attention_splits(flops: float) -> bool:
    """Whether an eager attention call splits its items through the Python pool."""
    return attention_seconds(flops) >= ATTENTION_SPLIT_SECONDS


def attention_work_bytes(flops: float) -> int:
    """Attention's work as a loop kernel's bytes-equivalent (a native program splits its
    items as it splits a loop kernel's rows)."""
    return int(attention_seconds(flops) * LOOP_BYTES_PER_S)


# ---------------------------------------------------------------- a program
def kernel_seconds(nbytes: float = 0.0, flop: float = 0.0) -> float:
    """A native program's kernels' estimated time: loop bytes plus GEMM FLOPs."""
    return nbytes / LOOP_BYTES_PER_S + flop / GEMM_FLOPS_PER_S


def releases_gil(seconds: float) -> bool:
    return seconds >= RELEASE_GIL_S
