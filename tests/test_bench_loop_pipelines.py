"""benchmarks/bench_loop_pipelines.py: its two versions of a kernel are compiled with the
two pipelines and compute the same bits, and the emitters get their own pipeline choice
back. Nothing here is timed."""
import os
import sys

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "benchmarks"))

import bench_loop_pipelines as bench  # noqa: E402
from lucid_codegen.jit import cache  # noqa: E402
from lucid_codegen.jit import llvm as jit


def test_each_case_compiles_both_pipelines_and_restores_the_emitters(tmp_path, monkeypatch):
    monkeypatch.setenv("LUCID_CACHE_DIR", str(tmp_path))
    name, kernel, _ = next(bench.cases("float64"))
    x = np.random.default_rng(0).standard_normal((3, 1000))
    arrays = [x[0], x[1], x[2]]
    full, cheap, same = bench.compare(kernel, arrays, 2)
    assert same and full > 0 and cheap > 0
    opts = sorted(cache.entry_metadata(e.name)["opt"] for e in cache.list_entries()
                  if cache.entry_metadata(e.name)["kind"] == "elementwise")
    assert opts == sorted([jit.FULL.tag(), jit.LOOPS.tag()])
    assert all(m.loop_pipeline is jit.loop_pipeline for m in bench.EMITTERS)
