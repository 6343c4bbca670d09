"""The GEMM modules' LLVM pipelines (jit.GEMM: code generation only; jit.GEMM_CONTROL,
the core's driver and packing: code generation at level 0) compute the same bytes as the
earlier ones (``O2u``: IR passes at level 2 with unrolling; ``O0``: everything
code-generated at level 3) and LLVM's full pipeline: every epilogue form, accumulation,
A's gate and both dtypes on shapes with 1 and primes, through the general, small and
few-rows paths (benchmarks/bench_gemm_pipelines.py ``bit_cases``), in a fresh process
that links each pipeline's core and variants."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from lucid_codegen.jit import llvm as jit

ROOT = os.path.join(os.path.dirname(__file__), "..")


@pytest.mark.parametrize("old", ["O2u", "O0", "full"])
def test_gemm_kernels_are_byte_identical_whatever_the_pipeline(tmp_path, old):
    code = ("import json, sys\nsys.path.insert(0, 'benchmarks')\nimport bench_gemm_pipelines as b\n"
            f"cases = list(b.bit_cases())\nprint(json.dumps([len(cases), b.differing({old!r}, 'default')]))\n")
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
    assert jit.gemm_pipeline(control=True) == jit.GEMM_CONTROL
    monkeypatch.setenv("LUCID_GEMM_OPT", "O0/c0")
    assert jit.gemm_pipeline() == jit.gemm_pipeline(control=True) == jit.Pipeline(0, False, False, codegen=0)
    monkeypatch.setenv("LUCID_GEMM_OPT", "O2u")
    assert jit.gemm_pipeline() == jit.Pipeline(2, False, True)
    monkeypatch.setenv("LUCID_GEMM_OPT", "full")
    assert jit.gemm_pipeline() == jit.FULL
    monkeypatch.setenv("LUCID_GEMM_OPT", "O9x")
    with pytest.raises(ValueError, match="not an LLVM pipeline"):
        jit.gemm_pipeline()


def test_a_pipeline_tag_names_its_code_generation_level():
    for p in (jit.GEMM, jit.GEMM_CONTROL, jit.LOOPS, jit.FULL, jit.Pipeline(2, False, True, codegen=1),
              jit.LOOPS._replace(codegen=0)):
        assert jit.parse_pipeline(p.tag()) == p
    assert jit.GEMM.tag() != jit.GEMM_CONTROL.tag()   # another cache entry
    with pytest.raises(ValueError, match="not an LLVM pipeline"):
        jit.parse_pipeline("O0/c7")


def test_the_core_generates_its_loop_control_at_level_zero_and_its_kernels_at_three():
    """The driver and the packing routines are compiled with code generation at level 0
    (jit.GEMM_CONTROL), the micro-kernels, dots and strips with jit.GEMM (level 3); a
    variant's ``_py`` entry is ``optnone`` (level 0 for it alone)."""
    from lucid_codegen.gemm import core
    from lucid_codegen.gemm.kernel import GemmSpec, build_gemm_module
    spec = GemmSpec("float32")
    kinds = {core._kind(part): core._pipeline(part) for part in core.core_parts(spec.dtype, spec.blocking)}
    assert {k for k, p in kinds.items() if p.codegen == 0} == set(core.CONTROL) == {"pack", "driver"}
    assert all(p == jit.GEMM for k, p in kinds.items() if k not in core.CONTROL)
    text = str(build_gemm_module(spec))
    entry = next(line for line in text.splitlines() if line.startswith("define") and '_py"(' in line)
    assert "optnone" in entry and "noinline" in entry
