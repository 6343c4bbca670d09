"""A short seeded run of the user-API fuzzer (tests/fuzz_api.py): eager ops with
backward, lucid.compile, optimiser steps eager and compiled, against PyTorch float64."""
import numpy as np
import pytest

pytest.importorskip("torch")

import fuzz  # noqa: E402
import fuzz_api  # noqa: E402
from api_ops import LucidOps  # noqa: E402

CI_SEEDS = range(5000, 5000 + 12)  # a fixed list: the same programs on every machine


def test_short_seeded_api_fuzz_run():
    ran, found = fuzz.run_seeds(CI_SEEDS, log=lambda *a: None, case=fuzz_api.run_case)
    report = "\n".join(f"seed {s}: {f[0][:2000]}" for s, fs in found for f in fs[:1])
    assert not found, report
    assert ran == len(CI_SEEDS)


def test_programs_are_deterministic():
    a, b = fuzz_api.ProgramGen(3).build(), fuzz_api.ProgramGen(3).build()
    assert repr(a.program) == repr(b.program) and a.outputs == b.outputs
    assert all(np.array_equal(x, y) for x, y in zip(a.inputs, b.inputs))


def test_a_wrong_lucid_op_is_reported(monkeypatch):
    """tanh 1e-3 off (in lucid only) shows up in values or gradients, eager, compiled and
    in training, for the first program with a tanh among its outputs."""
    def tanh_output(seed):
        gen = fuzz_api.ProgramGen(seed).build()
        return any(gen.program[i][0] in ("tanh", "f_tanh") for i in gen.outputs)
    seed = next(s for s in range(500) if tanh_output(s))
    assert fuzz_api.run_case(seed)[2] == []
    real = LucidOps.tanh
    monkeypatch.setattr(LucidOps, "tanh", lambda self, x: real(self, x) * 1.001 + 1e-3)
    monkeypatch.setattr(LucidOps, "f_tanh", lambda self, x: real(self, x) * 1.001 + 1e-3)
    failures = fuzz_api.run_case(seed)[2]
    assert any(f.startswith("eager") for f in failures), failures
    assert any(f.startswith("compiled") for f in failures), failures
    assert any(f.startswith("training") for f in failures), failures
