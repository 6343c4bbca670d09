"""LUCID_CHECK_BOUNDS=1: guarded kernel outputs catch writes outside a kernel's buffers."""
from __future__ import annotations

import ctypes

import numpy as np
import pytest

from lucid_codegen.runtime import bounds
from lucid_codegen.runtime import plan as runtime
from lucid_codegen.runtime import steps
from lucid_ir.builder import GraphBuilder
from lucid_ir.passes import fuse


@pytest.fixture
def checking(monkeypatch):
    monkeypatch.setenv("LUCID_CHECK_BOUNDS", "1")


def _graph():
    b = GraphBuilder()
    x = b.input((3, 5), "float32")
    return fuse.run(b.build([b.emit("exp", b.emit("neg", x))]))


class _Overrun:
    """A fake kernel step: writes its result, then `extra` bytes at offset `where`."""

    def __init__(self, where, extra=4):
        self.where, self.extra = where, extra

    def __call__(self, x):
        return self.call_into([np.empty(x.shape, x.dtype)], x)

    def call_into(self, outs, x):
        (out,) = outs
        out[...] = np.exp(-x)
        offset = out.nbytes if self.where == "after" else -self.extra
        ctypes.memset(out.ctypes.data + offset, 0, self.extra)
        return (out,)


def test_checked_plan_only_when_enabled(monkeypatch):
    monkeypatch.delenv("LUCID_CHECK_BOUNDS", raising=False)
    assert type(runtime.Plan(_graph())) is runtime.Plan
    monkeypatch.setenv("LUCID_CHECK_BOUNDS", "1")
    plan = runtime.Plan(_graph())
    assert isinstance(plan, bounds.CheckedPlan)
    x = np.linspace(-1, 1, 15, dtype=np.float32).reshape(3, 5)
    np.testing.assert_allclose(plan([x])[0], np.exp(-x), rtol=1e-6)


@pytest.mark.parametrize("where", ["after", "before"])
def test_bad_kernel_step_is_caught(checking, monkeypatch, where):
    real = steps.make_step

    def fake(node):
        fn, kind = real(node)
        return (_Overrun(where), kind) if node.op == "kernel" else (fn, kind)

    monkeypatch.setattr(runtime, "make_step", fake)
    plan = runtime.Plan(_graph())
    with pytest.raises(RuntimeError, match=r"bounds check: kernel\[elementwise: neg \+ exp\].*"
                                           r"wrote outside output 0"):
        plan([np.ones((3, 5), np.float32)])


def test_input_modified_is_caught(checking, monkeypatch):
    class Clobber(_Overrun):
        def call_into(self, outs, x):
            outs[0][...] = 0
            ctypes.memset(x.ctypes.data, 0xFF, 4)
            return tuple(outs)

    real = steps.make_step
    monkeypatch.setattr(runtime, "make_step", lambda n: (Clobber("after"), "elementwise")
                        if n.op == "kernel" else real(n))
    plan = runtime.Plan(_graph())
    with pytest.raises(RuntimeError, match="modified its input 0"):
        plan([np.ones((3, 5), np.float32)])


def test_guard_helpers():
    view, buf = bounds.guarded_empty((0,), np.float64)
    assert view.size == 0 and bounds.guard_damage(buf, 0) == (0, 0)
    view, buf = bounds.guarded_empty((7,), np.float64)
    view[:] = 1.0
    bounds.check_guards(buf, view.nbytes)
    buf[-1] ^= 1
    with pytest.raises(RuntimeError, match="1 after"):
        bounds.check_guards(buf, view.nbytes)


def test_real_kernels_pass_with_checking(checking):
    import lucid
    import lucid.nn.functional as F
    rng = np.random.default_rng(0)
    for n, k, m in [(1, 1, 1), (7, 13, 5), (0, 3, 2), (4, 0, 3), (33, 17, 9)]:
        x = rng.standard_normal((n, k)).astype(np.float32)
        w = rng.standard_normal((m, k)).astype(np.float32)
        b = rng.standard_normal(m).astype(np.float32)
        out = F.relu(F.linear(lucid.Tensor(x), lucid.Tensor(w), lucid.Tensor(b)))
        np.testing.assert_allclose(out.numpy(), np.maximum(x @ w.T + b, 0), rtol=1e-5, atol=1e-5)
        s = lucid.Tensor(x).sum(axis=1).numpy()
        np.testing.assert_allclose(s, x.sum(axis=1), rtol=1e-5, atol=1e-5)
