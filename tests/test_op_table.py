"""Every entry of ``tests/op_table.py`` against PyTorch: values and gradients in float64
in the three execution modes (eager native, interpreter, ``lucid.compile``), gradients
also against central finite differences, and values and gradients in float32 (eager).

A case's loss is ``Σ_k sum(out_k · w_k)`` over the float outputs with random weights
``w_k``: its gradient is every output's vector-Jacobian product at once.
"""
from __future__ import annotations

import numpy as np
import pytest
import torch

import lucid
from gradcheck import numeric_grads
from op_table import TABLE, make

CASES = [(e, i) for e in TABLE for i in range(len(e.cases))]
IDS = [f"{e.name}-{i}" for e, i in CASES]


def outputs(result) -> list:
    """An op's result as a list of tensors (tuples and named tuples flattened)."""
    if isinstance(result, (tuple, list)):
        return [t for r in result for t in outputs(r)]
    return [result]


def dtype_name(t) -> str:
    return str(t.dtype).replace("torch.", "")


def inputs_of(entry, case, seed, float_dtype="float64"):
    rng = np.random.default_rng(seed)
    arrays = []
    for spec in entry.cases[case]:
        a = make(spec, rng)
        if spec.is_float and float_dtype != "float64":
            a = a.astype(float_dtype)
        arrays.append(a)
    return arrays


def wants_grad(entry, spec) -> bool:
    return entry.grad and spec.is_float and spec.grad


def weights_for(outs, seed) -> list:
    """A random weight array per float output (None for int and bool outputs)."""
    rng = np.random.default_rng(seed + 1000)
    return [rng.standard_normal(tuple(o.shape)) if o.dtype.is_floating_point else None for o in outs]


def torch_reference(entry, case, arrays):
    xs = [torch.from_numpy(a) for a in arrays]
    for x, spec in zip(xs, entry.cases[case]):
        if wants_grad(entry, spec):
            x.requires_grad_()
    with np.errstate(all="ignore"):
        outs = outputs(entry.fn(torch, *xs))
    ws = weights_for(outs, case)
    grads = None
    diff = [x for x in xs if x.requires_grad]
    floats = [(o, w) for o, w in zip(outs, ws) if w is not None and o.requires_grad]
    if diff and floats:
        loss = sum((o * torch.from_numpy(w).to(o.dtype)).sum() for o, w in floats)
        grads = torch.autograd.grad(loss, diff, allow_unused=True)
        grads = [np.zeros(x.shape, a.dtype) if g is None else g.detach().numpy()  # (some torch grads require grad)
                 for g, x, a in zip(grads, diff, [a for a, x in zip(arrays, xs) if x.requires_grad])]
    return [o.detach().numpy() for o in outs], [dtype_name(o) for o in outs], ws, grads


def lucid_inputs(entry, case, arrays):
    xs = [lucid.from_numpy(a) for a in arrays]
    for x, spec in zip(xs, entry.cases[case]):
        if wants_grad(entry, spec):
            x.requires_grad_()
    return xs


def weighted_loss(outs, ws):
    terms = [(o * lucid.tensor(w, dtype=o.dtype)).sum() for o, w in zip(outs, ws) if w is not None]
    return sum(terms[1:], terms[0]) if terms else None


def run_lucid(entry, case, arrays, ws, mode):
    """(values, dtypes, gradients of the float inputs) of one case in one mode."""
    xs = lucid_inputs(entry, case, arrays)
    if mode == "compile":
        def step(*xs):
            outs = outputs(entry.fn(lucid, *xs))
            loss = weighted_loss(outs, ws) if entry.grad else None
            return (loss, *outs) if loss is not None else tuple(outs)
        result = lucid.compile(step)(*xs)
        loss, outs = (result[0], list(result[1:])) if entry.grad and any(w is not None for w in ws) \
            else (None, list(result))
    else:
        outs = outputs(entry.fn(lucid, *xs))
        loss = weighted_loss(outs, ws) if entry.grad else None
    grads = None
    diff = [x for x in xs if x.requires_grad]
    if diff and loss is not None and loss.requires_grad:
        loss.backward()
        grads = [np.zeros(x.shape, x.numpy().dtype) if x.grad is None else np.asarray(x.grad) for x in diff]
    return [np.asarray(o.numpy()) for o in outs], [str(o.dtype) for o in outs], grads


def compare(entry, got, want, rtol, atol, what):
    assert len(got) == len(want), f"{what}: {len(got)} results, torch gives {len(want)}"
    for k, (g, w) in enumerate(zip(got, want)):
        assert g.shape == w.shape, f"{what} result {k}: shape {g.shape}, torch {w.shape}"
        if w.dtype.kind == "f":
            np.testing.assert_allclose(g, w, rtol=rtol, atol=atol, equal_nan=True, err_msg=f"{what} result {k}")
        else:
            np.testing.assert_array_equal(g, w, err_msg=f"{what} result {k}")


@pytest.mark.parametrize("mode", ["eager", "interpret", "compile"])
@pytest.mark.parametrize("entry,case", CASES, ids=IDS)
def test_float64_values_and_gradients_match_torch(entry, case, mode, monkeypatch):
    if mode not in entry.modes:
        pytest.skip(f"{entry.name}: not in {mode} mode ({entry.notes})")
    monkeypatch.setenv("LUCID_BACKEND", "interpret" if mode == "interpret" else "compiled")
    arrays = inputs_of(entry, case, seed=case)
    want, want_dtypes, ws, want_grads = torch_reference(entry, case, arrays)
    got, got_dtypes, grads = run_lucid(entry, case, arrays, ws, mode)
    what = f"{entry.name} case {case} ({mode})"
    assert got_dtypes == want_dtypes, f"{what}: dtypes {got_dtypes}, torch {want_dtypes}"
    compare(entry, got, want, entry.rtol, entry.atol, what)
    if want_grads is not None:
        assert grads is not None, f"{what}: no gradient where torch has one"
        compare(entry, grads, want_grads, entry.rtol, entry.atol, what + " gradient")


FD_CASES = [(e, i) for e, i in CASES if e.grad and e.fd
            and any(s.is_float and s.grad for s in e.cases[i])
            and 0 < min(int(np.prod(s.shape)) for s in e.cases[i])
            and max(int(np.prod(s.shape)) for s in e.cases[i]) <= 64]


@pytest.mark.parametrize("entry,case", FD_CASES, ids=[f"{e.name}-{i}" for e, i in FD_CASES])
def test_gradients_match_finite_differences(entry, case):
    arrays = inputs_of(entry, case, seed=case)
    _, _, ws, _ = torch_reference(entry, case, arrays)
    _, _, grads = run_lucid(entry, case, arrays, ws, "eager")
    specs = entry.cases[case]
    which = [i for i, s in enumerate(specs) if wants_grad(entry, s)]

    def scalar(perturbed):
        with lucid.no_grad():
            outs = outputs(entry.fn(lucid, *[lucid.from_numpy(a) for a in perturbed]))
        return sum(float(np.sum(o.numpy() * w)) for o, w in zip(outs, ws) if w is not None)

    numeric = numeric_grads(scalar, [np.ascontiguousarray(a).reshape(a.shape) for a in arrays])
    for g, i in zip(grads, which):
        np.testing.assert_allclose(g, numeric[i], rtol=1e-5, atol=1e-6,
                                   err_msg=f"{entry.name} case {case}: gradient of input {i}")


F32_CASES = [(e, i) for e, i in CASES if i in (0, len(e.cases) - 1)]


@pytest.mark.parametrize("entry,case", F32_CASES, ids=[f"{e.name}-{i}" for e, i in F32_CASES])
def test_float32_values_and_gradients_match_torch(entry, case):
    arrays = inputs_of(entry, case, seed=case, float_dtype="float32")
    want, want_dtypes, ws, want_grads = torch_reference(entry, case, arrays)
    got, got_dtypes, grads = run_lucid(entry, case, arrays, ws, "eager")
    what = f"{entry.name} case {case} (float32)"
    assert got_dtypes == want_dtypes, f"{what}: dtypes {got_dtypes}, torch {want_dtypes}"
    compare(entry, got, want, 2e-5, 2e-5, what)
    if want_grads is not None:
        compare(entry, grads, want_grads, 2e-5, 2e-5, what + " gradient")


def test_table_names_are_unique():
    names = [e.name for e in TABLE]
    assert len(names) == len(set(names))
