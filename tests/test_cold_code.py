"""The loop kernels' cold tier (``work_split.cold_code``, ``jit.llvm.LOOPS_COLD``): a call
of little work runs code generated at LLVM's level 0, a call of more work the level-3
code of the same kernel, and both compute the same bits."""
from __future__ import annotations

import numpy as np
import pytest

from lucid_codegen.jit import llvm as jit
from lucid_codegen.kernels.elementwise import ElementwiseKernel
from lucid_codegen.kernels.reduction import ReductionKernel
from lucid_codegen.runtime import work_split
from lucid_ir.builder import GraphBuilder


def _kernels(n):
    """An erf-GELU elementwise kernel and a row sum of exp over (n, 37)."""
    b = GraphBuilder()
    x = b.input((n, 37))
    gelu = b.emit("mul", b.emit("mul", x, b.constant(0.5)),
                  b.emit("erfc", b.emit("mul", x, b.constant(-0.5 ** 0.5))))
    ew = ElementwiseKernel.for_graph(b.build([gelu]))
    b = GraphBuilder()
    x = b.input((n, 37))
    red = ReductionKernel.for_graph(b.build([b.emit("sum", b.emit("exp", x), axes=(1,))]))
    return ew, red


def _tiers(kernel):
    return {key[-1] for key in kernel._fns}


def test_the_tier_follows_the_work_of_the_call():
    assert work_split.cold_code(work_split.work_bytes(4 * 64, 64, ["cast"]))
    assert not work_split.cold_code(work_split.work_bytes(8 << 20, 1 << 20, ["exp"]))
    assert jit.loop_pipeline(cold=True) == jit.LOOPS_COLD and jit.LOOPS_COLD.codegen == 0
    assert jit.loop_pipeline() == jit.LOOPS


@pytest.mark.parametrize("which", [0, 1])
def test_small_and_big_calls_of_one_kernel_give_the_same_bits(which, monkeypatch):
    """A small call compiles the cold variant, a big one the level-3 variant; the big
    input through the cold code (the threshold raised) gives the level-3 code's bits,
    special values included."""
    kernel = _kernels(3000)[which]
    rng = np.random.default_rng(which)
    small = rng.standard_normal((2, 37)).astype(np.float32)
    big = (rng.standard_normal((3000, 37)) * 4).astype(np.float32)
    big[0, :4] = [np.inf, -np.inf, np.nan, -0.0]
    kernel._plans.clear()
    kernel([small])
    hot = np.array(kernel([big])[0])
    assert _tiers(kernel) == {True, False}
    monkeypatch.setattr(work_split, "COLD_CODE_SECONDS", 1.0)   # every call cold
    kernel._plans.clear()
    cold = np.array(kernel([big])[0])
    assert cold.tobytes() == hot.tobytes()


def test_loop_opt_loops_turns_the_tier_off(monkeypatch):
    monkeypatch.setenv("LUCID_LOOP_OPT", "loops")
    assert jit.loop_pipeline(cold=True) == jit.LOOPS
    monkeypatch.setenv("LUCID_LOOP_OPT", "full")
    assert jit.loop_pipeline(cold=True) == jit.FULL
