"""LUCID_BACKEND=interpret runs everything through the numpy reference interpreter;
the default runs native kernels. Both give the same answers."""
import numpy as np
import pytest

import lucid
import lucid.nn as nn
import lucid.nn.functional as F
from lucid_codegen.runtime.plan import kernel_launches


def train_two_steps():
    lucid.random.seed(5)
    model = nn.Sequential(nn.Linear(6, 8), nn.Tanh(), nn.Linear(8, 3))
    opt = lucid.optim.Adam(model.parameters(), lr=0.1)
    x = lucid.Tensor(np.linspace(-1, 1, 30, dtype=np.float32).reshape(5, 6))
    y = np.array([0, 2, 1, 1, 0])
    step = lucid.compile(lambda x, y: F.cross_entropy(model(x), y))
    losses = []
    for fn in (lambda: F.cross_entropy(model(x), y), lambda: step(x, y)):
        opt.zero_grad()
        loss = fn()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    return losses, [p.numpy().copy() for p in model.parameters()]


def test_interpreter_and_native_kernels_agree(monkeypatch):
    native_losses, native_params = train_two_steps()
    monkeypatch.setenv("LUCID_BACKEND", "interpret")
    before = kernel_launches()
    ref_losses, ref_params = train_two_steps()
    assert kernel_launches() == before  # nothing ran natively
    np.testing.assert_allclose(native_losses, ref_losses, rtol=1e-5)
    for a, b in zip(native_params, ref_params):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)


def test_seed_example_under_the_interpreter(monkeypatch):
    monkeypatch.setenv("LUCID_BACKEND", "interpret")
    x = lucid.Tensor([[1.0, 2.0], [3.0, 4.0]], requires_grad=True)
    w = lucid.Tensor([[5.0, 6.0], [7.0, 8.0]], requires_grad=True)
    b = lucid.Tensor([[9.0, 10.0]], requires_grad=True).reshape(1, -1)
    out = F.linear(x, w, b)
    out.backward()
    np.testing.assert_array_equal(out.numpy(), [[26.0, 33.0], [48.0, 63.0]])
    np.testing.assert_array_equal(b.grad, [[2.0, 2.0]])


def test_unknown_backend_is_a_clear_error(monkeypatch):
    monkeypatch.setenv("LUCID_BACKEND", "gpu")
    with pytest.raises(ValueError, match="LUCID_BACKEND='gpu'"):
        lucid.ones(2) + 1.0


@pytest.mark.parametrize("name", ["compiled", "interpret"])
def test_both_backends_give_an_executable(monkeypatch, name):
    """``backend.executable`` returns a ``lucid_ir.executable.Executable`` on either
    backend, with the donations and in-place writes it makes, and the same outputs."""
    from lucid import backend
    from lucid_ir import pipeline
    from lucid_ir.builder import GraphBuilder
    from lucid_ir.executable import Executable
    monkeypatch.setenv("LUCID_BACKEND", name)
    b = GraphBuilder()
    w, g = b.input((3, 4)), b.input((3, 4))
    fused = pipeline.run(b.build([b.emit("sub", w, b.emit("mul", g, b.constant(0.5)))])).fused
    run = backend.executable(fused, in_place={0: 0})
    assert isinstance(run, Executable)
    assert list(run.donations) == [(0, 0)]
    assert run.in_place_direct == ({0} if name == "compiled" else set())
    W = np.arange(12, dtype=np.float32).reshape(3, 4)
    G = np.ones((3, 4), np.float32)
    (out,) = run([W, G])
    assert out is W and np.array_equal(W, np.arange(12, dtype=np.float32).reshape(3, 4) - 0.5)
    assert ("define" in run.llvm_text()) == (name == "compiled")
    assert run.asm_text()


def test_a_broken_compiler_import_is_an_error_not_a_silent_interpreter(monkeypatch):
    """Only a missing llvmlite makes ops fall back to the numpy interpreter (with a
    warning); any other failure importing the native runtime is raised."""
    import builtins
    import sys
    from lucid import backend
    real_import = builtins.__import__

    def broken(name, *args, **kwargs):
        if name.startswith("lucid_codegen.runtime"):
            raise ImportError("cannot import name 'imax' from 'lucid_codegen.gemm.microkernel'")
        return real_import(name, *args, **kwargs)

    def no_llvmlite(name, *args, **kwargs):
        if name.startswith("lucid_codegen.runtime"):
            raise ModuleNotFoundError("No module named 'llvmlite'", name="llvmlite")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(backend, "_RUNTIME", [])
    monkeypatch.delitem(sys.modules, "lucid_codegen.runtime.plan", raising=False)
    monkeypatch.setattr(builtins, "__import__", broken)
    with pytest.raises(ImportError, match="imax"):
        backend._compiled()
    monkeypatch.setattr(builtins, "__import__", no_llvmlite)
    with pytest.warns(RuntimeWarning, match="pip install llvmlite"):
        assert backend._compiled() is None
