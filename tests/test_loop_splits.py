"""Which loop kernels split across threads: by their work (``work_split.work_bytes``:
bytes moved plus what their costly ops compute), in compiled plans and in eager calls,
and the results are the same bits at any thread count."""
import numpy as np
import pytest

import lucid
import lucid.nn.functional as F
from lucid_codegen.runtime import native_plan
from lucid_codegen.runtime import plan as runtime
from lucid_codegen.runtime import threads
from lucid_codegen.runtime import work_split


def test_costly_ops_count_as_work():
    cheap = work_split.work_bytes(400000, 50000, ["sub", "add"])
    costly = work_split.work_bytes(400000, 50000, ["max", "sub", "exp", "sum", "div"])
    assert cheap < work_split.LOOP_SPLIT_BYTES <= costly


@pytest.mark.parametrize("call,big", [
    (lambda a: a + a, (512, 512)),                      # 3 MB moved
    (lambda a: F.softmax(a, dim=-1), (64, 1000)),       # 0.5 MB, 64000 exponentials
])
def test_eager_calls_with_enough_work_take_the_splitting_program(call, big, monkeypatch):
    """An eager one-kernel call with enough work runs from the plan's native program (which
    splits it), not the one-thread trampoline; a small one keeps the trampoline; values
    are bit-identical at 1 and 2 threads."""
    seen = []
    real = runtime._splits
    monkeypatch.setattr(runtime, "_splits", lambda *a: seen.append(real(*a)) or seen[-1])
    rng = np.random.default_rng(8)
    old = threads.get_num_threads()
    try:
        for shape, expect in ((big, True), ((8, 16), False)):
            x = lucid.tensor(rng.standard_normal(shape).astype(np.float32))
            seen.clear()
            outs = []
            for nt in (1, 2, 2):
                threads.set_num_threads(nt)
                outs.append(call(x).numpy())
            assert seen and seen[0] is expect, (shape, seen)
            for o in outs[1:]:
                np.testing.assert_array_equal(o, outs[0])
    finally:
        threads.set_num_threads(old)


def test_a_compiled_softmax_of_64x1000_splits_into_two_parts(monkeypatch):
    parts = []
    real = native_plan._ranges
    monkeypatch.setattr(native_plan, "_ranges", lambda job, nt: parts.append(real(job, nt)) or parts[-1])
    old = threads.get_num_threads()
    threads.set_num_threads(2)
    try:
        fn = lucid.compile(lambda a: F.softmax(a, dim=-1))
        x = lucid.tensor(np.random.default_rng(9).standard_normal((64, 1000)).astype(np.float32))
        for _ in range(3):
            fn(x)
    finally:
        threads.set_num_threads(old)
    assert any(p is not None and len(p) == 2 for p in parts)
