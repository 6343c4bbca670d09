"""The splitting cost model (``lucid_codegen.runtime.work_split``): its decisions on shapes whose
split was measured, its thresholds derived from the measured constants, decisions that
never flip back as work grows, and every kernel family reading it."""
from __future__ import annotations

import itertools
import pathlib
import re

import pytest

from lucid_codegen.runtime import work_split as w

ROOT = pathlib.Path(__file__).resolve().parent.parent

# (M, N, K, splits): measured at 2 threads (gemm_call's history) or far from the edge
GEMMS = [(1, 256, 256, False),       # 4.9 µs alone, 7.1 split
         (1, 256, 784, True),        # 11.4 µs alone, 10.2 split
         (8, 256, 784, True),        # 33 -> 21
         (32, 256, 256, True),       # 51 -> 29
         (8, 8, 8, False), (64, 64, 64, False), (64, 10, 256, False),
         (1024, 1024, 1024, True), (1, 4096, 4096, True)]


@pytest.mark.parametrize("M, N, K, splits", GEMMS)
def test_gemm_decisions(M, N, K, splits):
    assert w.gemm_splits(M, N, K, 4) is splits


# (bytes moved, elements, ops, splits in a native program)
LOOPS = [(3 * 512 * 512 * 4, 512 * 512, ["add"], True),                          # x + y 512x512
         (2 * 64 * 1000 * 4, 64000, ["max", "sub", "exp", "sum", "div"], True),  # softmax 64x1000
         (3 * 64 * 64 * 4, 64 * 64, ["add"], False),
         (2 * 64 * 256 * 4, 64 * 256, ["mean", "sub", "mul", "mean", "add", "rsqrt", "mul"], False),
         (2 * 20000 * 4, 20000, ["log1p"], True),         # 160 KB, but log1p's cost
         (2 * 20000 * 4, 20000, ["neg"], False)]


@pytest.mark.parametrize("nbytes, elements, ops, splits", LOOPS)
def test_loop_decisions(nbytes, elements, ops, splits):
    assert w.loop_splits(w.work_bytes(nbytes, elements, ops)) is splits


def test_costly_ops_add_their_trait_per_element():
    assert w.work_bytes(1000, 10, ["add"]) == 1000
    assert w.work_bytes(1000, 10, ["exp", "exp"]) == 1000 + 20 * w.OP_COST_BYTES["exp"]
    assert w.OP_COST_BYTES["log1p"] > w.OP_COST_BYTES["exp"] > w.OP_COST_BYTES.get("add", 0) == 0


def test_thresholds_derive_from_the_measured_constants():
    assert w.LOOP_SPLIT_BYTES == int(w.MARGIN * w.NATIVE_HANDOFF_S * w.LOOP_BYTES_PER_S)
    assert w.PARALLEL_BYTES == int(w.MARGIN * w.POOL_HANDOFF_S * w.LOOP_BYTES_PER_S)
    assert w.GEMM_SPLIT_SECONDS == pytest.approx(w.MARGIN * w.GEMM_HANDOFF_S)
    # the Python pool costs more to hand to than a native program's workers
    assert w.PARALLEL_BYTES > w.LOOP_SPLIT_BYTES


def test_decisions_never_flip_back_as_work_grows():
    sizes = [1, 2, 7, 16, 64, 100, 256, 784, 1000, 4096]
    for M, N, K in itertools.product(sizes, repeat=3):
        if w.gemm_splits(M, N, K, 4):
            assert w.gemm_splits(2 * M, N, K, 4) and w.gemm_splits(M, 2 * N, K, 4)
            assert w.gemm_splits(M, N, 2 * K, 4) and w.gemm_splits(M, N, K, 8)
    flops = [10.0 ** e for e in range(3, 11)]
    split = [w.attention_splits(f) for f in flops]
    assert split == sorted(split) and split[0] is False and split[-1] is True
    work = [w.attention_work_bytes(f) for f in flops]
    assert work == sorted(work)


def test_gil_release_follows_the_estimate():
    assert not w.releases_gil(w.kernel_seconds(nbytes=4096))
    assert w.releases_gil(w.kernel_seconds(nbytes=1 << 20))
    assert w.releases_gil(w.kernel_seconds(flop=2 * 256 ** 3))


def test_threshold_edits_reach_every_family(monkeypatch):
    """Decisions read the module's constants when they are made (tests and the fuzzer
    force splits by lowering them)."""
    monkeypatch.setattr(w, "LOOP_SPLIT_BYTES", 64)
    monkeypatch.setattr(w, "GEMM_SPLIT_SECONDS", 0.0)
    monkeypatch.setattr(w, "PARALLEL_BYTES", 64)
    assert w.loop_splits(100) and w.gemm_splits(1, 1, 1, 4) and w.pool_splits(100)


# the kernel families that decide splits; none keeps a threshold of its own
FAMILIES = ["kernels/elementwise.py", "kernels/reduction.py", "kernels/row_kernel.py", "runtime/scan_steps.py",
            "runtime/attention_steps.py", "runtime/native_plan.py", "runtime/plan.py", "gemm/call.py",
            "kernels/loops.py"]
OWN_THRESHOLD = re.compile(r"^(SPLIT_\w+|\w+_SPLIT_\w+|PARALLEL_BYTES|COMPUTE_BYTES|RELEASE_GIL\w*|"
                           r"FLOP_RATE|BYTE_RATE|\w+_PER_US)\s*=", re.M)


def test_one_module_holds_the_split_thresholds():
    for name in FAMILIES:
        text = (ROOT / "lucid_codegen" / name).read_text()
        assert not OWN_THRESHOLD.search(text), f"{name} keeps a threshold: {OWN_THRESHOLD.search(text).group(0)}"
