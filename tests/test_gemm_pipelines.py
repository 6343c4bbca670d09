"""The GEMM modules' LLVM pipeline (jit.GEMM: code generation only) computes the same
bytes as the earlier one (``O2u``: IR passes at level 2 with unrolling) and LLVM's full
pipeline: every epilogue form, accumulation, A's gate and both dtypes on shapes with 1
and primes, through the general, small and few-rows paths
(benchmarks/bench_gemm_pipelines.py ``bit_cases``), in a fresh process that links each
pipeline's core and variants."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from lucid_codegen.jit import llvm as jit

ROOT = os.path.join(os.path.dirname(__file__), "..")


@pytest.mark.parametrize("old", ["O2u", "full"])
def test_gemm_kernels_are_byte_identical_whatever_the_pipeline(tmp_path, old):
    code = ("import json, sys\nsys.path.insert(0, 'benchmarks')\nimport bench_gemm_pipelines as b\n"
            f"cases = list(b.bit_cases())\nprint(json.dumps([len(cases), b.differing({old!r}, {jit.GEMM.tag()!r})]))\n")
    env = dict(os.environ, PYTHONPATH=ROOT, LUCID_CACHE_DIR=str(tmp_path), LUCID_NUM_THREADS="1")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True,
                         timeout=900)
    assert out.returncode == 0, out.stderr
    count, differ = json.loads(out.stdout.strip().splitlines()[-1])
    assert count > 100
    assert differ == []


def test_the_gemm_pipeline_is_read_from_the_environment(monkeypatch):
    monkeypatch.delenv("LUCID_GEMM_OPT", raising=False)
    assert jit.gemm_pipeline() == jit.GEMM
    monkeypatch.setenv("LUCID_GEMM_OPT", "O2u")
    assert jit.gemm_pipeline() == jit.Pipeline(2, False, True)
    monkeypatch.setenv("LUCID_GEMM_OPT", "full")
    assert jit.gemm_pipeline() == jit.FULL
    monkeypatch.setenv("LUCID_GEMM_OPT", "O9x")
    with pytest.raises(ValueError, match="not an LLVM pipeline"):
        jit.gemm_pipeline()
