"""benchmarks/bench_ddp.py's arithmetic, on made-up figures (nothing here is timed and
no MPI job starts): the ring fit recovers the constants it was given, and the scaling
projection reproduces the measured 2-rank step and behaves as the model says."""
import os
import sys

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "benchmarks"))

import bench_ddp  # noqa: E402


def test_fit_ring_recovers_latency_and_bandwidth():
    a, bandwidth = 8e-6, 3e9
    sweep = [(n, 1e3 * (a + n / bandwidth)) for n in (4096, 32768, 262144, 2 << 20, 16 << 20)]
    fa, fb = bench_ddp.fit_ring(sweep)
    assert fa == pytest.approx(a, rel=1e-6) and fb == pytest.approx(bandwidth, rel=1e-6)


def test_projection_matches_the_measurement_at_two_ranks_and_stops_with_the_batch():
    rows = bench_ddp.project(step2_ms=20.0, allreduce2_ms=2.0, nbytes=2e6, latency_s=10e-6, batch=16)
    assert [n for n, _, _ in rows] == [1, 2, 4, 8, 16]
    assert rows[0][1] == pytest.approx(36.0) and rows[1][1] == pytest.approx(20.0)
    speedups = [s for _, _, s in rows]
    assert all(s2 > s1 for s1, s2 in zip(speedups, speedups[1:]))   # compute-bound: keeps scaling
    assert all(s < n for n, _, s in rows[1:])                       # never linear: it pays the all-reduce


def test_a_communication_bound_step_stops_scaling():
    rows = bench_ddp.project(step2_ms=1.0, allreduce2_ms=0.5, nbytes=1e6, latency_s=10e-6, batch=128)
    best = min(rows, key=lambda r: r[1])[0]
    assert best <= 2 and rows[-1][2] < 1.0          # compute 1 ms, all-reduce 0.5: more ranks are slower
