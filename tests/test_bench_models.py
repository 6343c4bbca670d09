"""benchmarks/bench_models.py times the same computation in every mode: model_zoo.py's
workloads, built for lucid and for PyTorch from one source, and jax_models.py's JAX
version give the same losses and gradients from PyTorch's initial weights. Nothing here
is timed; the table's ratios, loss check and PASS/MISS logic are checked on made-up
results."""
import os
import sys

import numpy as np
import pytest
import torch

import lucid

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "benchmarks"))

import bench_models  # noqa: E402
import model_zoo as zoo  # noqa: E402


def _first_two(lib_or_jax, workload, compiled=False):
    state = zoo.initial_state(workload)
    if lib_or_jax == "jax":
        jax_models = pytest.importorskip("jax_models")
        call, check = jax_models.build_step(workload, state)
    else:
        call, check = zoo.build_step(lib_or_jax, workload, state, compiled)
    first = check(call())
    second = check(call())
    return first, second


@pytest.mark.parametrize("workload", ["gpt", "cnn", "attn256"])
def test_lucid_computes_what_torch_computes(workload):
    want = _first_two(torch, workload)
    got = _first_two(lucid, workload)
    np.testing.assert_allclose(got, want, rtol=1e-4)
    if workload != "attn256":
        assert want[1][0] < want[0][0], "the update did not lower the loss on the same batch"


def test_compiled_cnn_step_computes_what_torch_computes():
    np.testing.assert_allclose(_first_two(lucid, "cnn", compiled=True), _first_two(torch, "cnn"), rtol=1e-4)


@pytest.mark.parametrize("workload", ["gpt", "cnn", "attn256"])
def test_jax_computes_what_torch_computes(workload):
    pytest.importorskip("jax")
    np.testing.assert_allclose(_first_two("jax", workload), _first_two(torch, workload), rtol=1e-4)


def test_the_gpt_is_the_examples_model():
    model = zoo.gpt(lucid)
    assert type(model).__name__ == "CharGPT"
    assert model.head.weight.shape == (zoo.GPT["vocab"], zoo.GPT["d_model"])
    assert sorted(zoo.initial_state("gpt")) == sorted(model.state_dict())


def test_inputs_are_the_same_in_every_process():
    for w in zoo.WORKLOADS:
        for a, b in zip(zoo.inputs(w), zoo.inputs(w)):
            np.testing.assert_array_equal(a, b)
    q, k, v = zoo.inputs("attn1024")
    assert q.shape == (4, 8, 1024, 64) and q.dtype == np.float32


def _run(step, values, peak=300.0, base=100.0):
    return dict(step=step, steps=10, first_call=1.0, warmup=[1.0, 0.1, 0.1], values=values,
                rss_base_mb=base, rss_peak_mb=peak)


def test_report_ratios_loss_check_and_targets(capsys, monkeypatch):
    monkeypatch.setattr(bench_models, "peak_gflops_per_core", lambda: 102.0)   # (measured on the host)
    results = {
        (1, "gpt", "torch"): [_run(0.040, [4.7, 4.4]), _run(0.044, [4.7, 4.4])],
        (1, "gpt", "lucid"): [_run(0.036, [4.7, 4.4 * (1 + 2e-3)], peak=200.0)],
        (1, "gpt", "lucid.compile"): [_run(0.030, [4.7, 4.4], peak=400.0)],
        (1, "gpt", "torch.compile"): [dict(error="InductorError: no C compiler")],
        (1, "gpt", "jax"): [dict(error="not installed")],
    }
    rows = bench_models.summarise(results)
    by_mode = {r["mode"]: r for r in rows}
    assert by_mode["torch"]["step"] == pytest.approx(0.042)  # median of the rounds
    assert by_mode["lucid"]["ratio"] == pytest.approx(0.036 / 0.042)
    assert by_mode["lucid"]["rel_diff"] == pytest.approx(2e-3)
    assert by_mode["lucid.compile"]["rel_diff"] == 0
    targets = bench_models.evaluate_targets(rows, ["gpt"])
    verdict = {(t["mode"], t["against"], t["what"]): t for t in targets}
    assert verdict[("lucid.compile", "torch", "time")]["value"] == pytest.approx(0.030 / 0.042)  # > 0.6: MISS
    assert "no C compiler" in verdict[("lucid.compile", "torch.compile", "time")]["na"]
    assert verdict[("lucid.compile", "jax", "time")]["na"] == "jax: not installed"
    assert verdict[("lucid", "torch", "peak RSS")]["value"] == pytest.approx(200 / 300)
    bench_models.print_report(rows, targets, 2, (0.0, 0.0))
    out = capsys.readouterr().out
    assert "failed: InductorError: no C compiler" in out and "not installed" in out
    assert "2.0e-03 !" in out
    # the roofline: 2.594 GFLOP in 30 ms at 1 thread is 85% of a 102 GFLOP/s core
    assert next(line for line in out.splitlines() if "lucid.compile" in line and "30.0" in line).split()[5] == "85%"
    assert "gpt 2.59 GFLOP = 25.4 ms at 1 thr" in out
    assert next(line for line in out.splitlines() if line.startswith("same computation")).endswith("MISS")
    assert "gpt: lucid.compile time <= 0.6x torch eager: 0.71 (30.0 vs 42.0 ms) MISS" in out
    assert ("gpt: lucid eager peak RSS <= 1.0x torch eager: 0.67 "
            "(200 vs 300 MB; growth over the import 100 vs 200 MB) PASS") in out


def test_the_peak_is_measured_on_this_host_once_per_process():
    import harness
    first = harness.peak_gflops_per_core()
    assert 20 < first < 10000 and harness.peak_gflops_per_core() == first


def test_products_are_the_gpt_steps_linear_gemms_in_both_libraries():
    """``lucid.products`` and ``torch.products`` compute the same 27 products (forward,
    input and weight gradient of each linear layer) at the step's shapes."""
    products = zoo.linear_products("gpt")
    assert len(products) == 4 * zoo.GPT["n_layer"] + 1 and zoo.linear_products("cnn") == []
    ours, _ = zoo.build_products(lucid, "gpt")
    theirs, check = zoo.build_products(torch, "gpt")
    got, want = ours(), theirs()
    assert check(got) is None and len(got) == len(want) == 3 * len(products)
    shapes = [s for t, i, o in products for s in ((t, o), (t, i), (o, i))]
    assert [tuple(g.shape) for g in got] == shapes
    for g, w in zip(got, want):
        np.testing.assert_allclose(g.numpy(), w.numpy(), rtol=1e-3, atol=1e-3)


def test_report_products_rows_and_their_floor_line(capsys, monkeypatch):
    monkeypatch.setattr(bench_models, "peak_gflops_per_core", lambda: 100.0)
    results = {
        (1, "gpt", "torch"): [_run(0.100, [4.7, 4.4])],
        (1, "gpt", "lucid.compile"): [_run(0.090, [4.7, 4.4])],
        (1, "gpt", "lucid.products"): [_run(0.060, None)],
    }
    rows = bench_models.summarise(results)
    by_mode = {r["mode"]: r for r in rows}
    assert "rel_diff" not in by_mode["lucid.products"] and by_mode["lucid.products"]["ratio"] == pytest.approx(0.6)
    bench_models.print_report(rows, bench_models.evaluate_targets(rows, ["gpt"]), 1, (0.0, 0.0))
    out = capsys.readouterr().out
    flops = sum(6 * t * i * o for t, i, o in zoo.linear_products("gpt"))
    line = next(line for line in out.splitlines() if "lucid products" in line)
    assert line.split()[6] == f"{100 * flops / (0.060 * 100e9):.0f}%"   # its own FLOPs, not the step's
    assert ("1 thread(s), gpt: the step's dense products alone (lucid products: 27 GEMMs, no epilogues) "
            "take 60.0 ms = 0.60x torch eager's step; lucid.compile spends 30.0 ms beyond them") in out
