"""benchmarks/bench_gemm_raw.py runs the shapes it is given against its peers."""
from __future__ import annotations

import os
import subprocess
import sys

SCRIPT = os.path.join(os.path.dirname(__file__), "..", "benchmarks", "bench_gemm_raw.py")


def test_given_shapes_are_timed_against_numpy_and_torch_with_the_share_of_peak():
    out = subprocess.run([sys.executable, SCRIPT, "--quick", "--threads", "1", "--shapes", "8x8x8,33x17x40"],
                         capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    header = next(line for line in lines if "(M, K, N)" in line)
    assert "%peak" in header and "numpy/lucid" in header and "torch/lucid" in header
    rows = [line for line in lines if line.lstrip().startswith("(") and line is not header]
    assert [r.split(")")[0].strip() for r in rows] == ["(8, 8, 8", "(33, 17, 40"]
    assert all(float(r.split()[-1]) < 1e-4 for r in rows)        # max|err| against float64
    assert any(line.startswith("peak:") for line in lines)


def test_bad_shapes_are_refused():
    out = subprocess.run([sys.executable, SCRIPT, "--shapes", "8x8"], capture_output=True, text=True, timeout=60)
    assert out.returncode != 0 and "MxKxN" in out.stderr
