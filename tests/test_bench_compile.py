"""benchmarks/bench_compile.py: its probes compute what their rows claim (the same losses
and outputs as PyTorch and numpy), its table's units, ratios and PASS/MISS are right on
made-up results, and it runs end to end in --quick mode. Nothing here is timed."""
import os
import sys

import numpy as np
import pytest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "benchmarks"))

import bench_compile  # noqa: E402
from lucid_codegen.gemm.core import LAZY, core_parts  # noqa: E402
from lucid_codegen.gemm.kernel import GemmSpec  # noqa: E402
from lucid_codegen.jit import llvm as jit  # noqa: E402


def test_the_mlp_step_is_pytorchs():
    got = bench_compile.probe("mlp", "lucid")
    import torch
    step, x, y = bench_compile._torch_like_mlp_step(torch, lambda f: f)  # eager: torch.compile takes ~30 s
    want = [float(step(x, y).detach()), float(step(x, y).detach())]
    np.testing.assert_allclose(got["check"], want, rtol=1e-4)
    assert got["check"][1] < got["check"][0], "the SGD step did not lower the loss"
    assert got["seconds"] > 0


def test_the_tiny_function_and_the_linear_compute_relu_linear_and_linear():
    rng = np.random.default_rng(0)
    x, w, b = (rng.standard_normal(s).astype(np.float32) for s in ((8, 8), (8, 8), (8,)))
    np.testing.assert_allclose(bench_compile.probe("tiny", "lucid")["check"][0],
                               np.maximum(x @ w.T + b, 0).sum(), rtol=1e-4)
    rng = np.random.default_rng(0)
    x, w, b = (rng.standard_normal(s).astype(np.float32) for s in ((64, 784), (256, 784), (256,)))
    want = (x.astype(np.float64) @ w.T.astype(np.float64) + b).sum()
    np.testing.assert_allclose(bench_compile.probe("linear", "lucid")["check"][0], want, rtol=1e-3, atol=1e-2)


def test_the_table_gives_units_ratios_and_verdicts():
    results = {"mlp cold": {"lucid": {"seconds": 0.4}, "torch": {"seconds": 16.0}},
               "tiny": {"lucid": {"seconds": 4e-6}},
               "gpt warm": {"lucid": {"seconds": 0.1}, "torch": {"seconds": 0.05}}}
    rows = bench_compile.table(results, ["mlp cold", "tiny", "gpt warm"], ["torch"])
    assert rows[0] == ["mlp cold", "s", "0.4", "0.5", "PASS", "16", "40.00"]
    assert rows[1] == ["tiny", "us", "4", "3", "MISS", "-", "-"]
    assert rows[2] == ["gpt warm", "s", "0.1", "-", "-", "0.05", "0.50"]


def test_warm_rows_measure_a_filled_cache_and_cold_rows_an_empty_one(monkeypatch):
    calls = []

    def fake(name, lib, env):
        cache = env["LUCID_CACHE_DIR"]
        calls.append((name, os.path.basename(cache)))
        return {"seconds": float(len(calls)), "check": [0.0]}
    monkeypatch.setattr(bench_compile, "run_probe", fake)
    assert bench_compile.measure("mlp warm", "lucid", 3)["seconds"] == 3.0
    assert calls == [("mlp", "warm")] + [("mlp_start", "warm")] * 3
    calls.clear()
    bench_compile.measure("linear cold", "lucid", 2)
    assert calls == [("linear", "cold0"), ("linear", "cold1")]


def test_quick_run_prints_the_rows(capsys):
    results = bench_compile.main(["--quick", "--no-peers", "--rows", "tiny,linear_cold"])
    assert set(results) == {"tiny", "linear cold"}
    out = capsys.readouterr().out
    assert "load average" in out and "linear cold" in out and "tiny" in out


def test_the_breakdown_splits_a_cold_call_by_kernel_family():
    result = {"seconds": 1.0, "modules": [["gemm", "O2u", 0.3], ["gemm", "O2u", 0.2], ["elementwise", "O2", 0.1],
                                         ["rows", "O2", 0.05], ["spin", "O3vu", 0.05]]}
    b = bench_compile.summarize(result)
    assert b["llvm"] == pytest.approx({"gemm": 0.5, "loops": 0.15, "other": 0.05})
    assert b["modules"] == {"gemm": 2, "loops": 2, "other": 1}
    assert b["longest"] == 0.3 and b["rest"] == pytest.approx(0.3)
    assert bench_compile.breakdown_table({"mlp cold": b}) == [
        ["mlp cold", "1.000", "0.500 (2)", "0.150 (2)", "0.050 (1)", "0.700", "0.300", "0.300"]]


def test_a_cold_probe_lists_the_modules_its_call_compiled(tmp_path, monkeypatch):
    """Run in a fresh process (an empty cache of its own): the linear's GEMM and its
    core's parts (but those for other shapes: 64 rows take no lazy part), compiled with
    the GEMM pipeline, inside the timed call."""
    env = bench_compile._env("lucid", str(tmp_path / "cache"), 1)
    result = bench_compile.run_probe("linear", "lucid", env)
    kinds = sorted(kind for kind, _, _ in result["modules"])
    parts = core_parts("float32", GemmSpec("float32").blocking)
    assert kinds.count("gemm") == 1 + len(parts) - len(LAZY), kinds
    assert {opt for kind, opt, _ in result["modules"] if kind == "gemm"} == {jit.GEMM.tag(), jit.GEMM_CONTROL.tag()}
    assert all(0 < seconds < result["seconds"] for _, _, seconds in result["modules"])
    b = bench_compile.summarize(result)
    assert b["llvm"]["gemm"] <= b["seconds"] and b["rest"] >= 0
