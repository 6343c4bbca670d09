"""``lucid.nn.utils`` gradient clipping and parameter vectors against ``torch.nn.utils``
in float64, eagerly and inside a compiled training step."""
import math

import numpy as np
import pytest

import lucid
import lucid.nn.functional as F
from lucid.nn import utils

torch = pytest.importorskip("torch")

SHAPES = [(3, 4), (7,), (), (1, 1), (0, 5), (2, 3, 5)]


def grads(seed=0, scale=1.0, shapes=SHAPES):
    rng = np.random.default_rng(seed)
    return [rng.standard_normal(s) * scale for s in shapes]


def pair(arrays, transposed=False):
    """Lucid and torch float64 parameters whose gradients are ``arrays``."""
    lp, tp = [], []
    for a in arrays:
        g = a.T.copy().T if transposed and a.ndim == 2 else a.copy()  # a non-contiguous (Fortran) grad
        p = lucid.Tensor(np.zeros(a.shape), requires_grad=True, dtype="float64")
        p.grad = g
        t = torch.zeros(a.shape, dtype=torch.float64, requires_grad=True)
        t.grad = torch.tensor(a)
        lp.append(p)
        tp.append(t)
    return lp, tp


@pytest.mark.parametrize("norm_type", [2.0, 1.0, math.inf, -math.inf, 3.5, 0.5, 0.0])
@pytest.mark.parametrize("max_norm", [0.7, 1e3])
@pytest.mark.parametrize("transposed", [False, True])
def test_clip_grad_norm_matches_torch(norm_type, max_norm, transposed):
    arrays = grads(1, 2.0)
    lp, tp = pair(arrays, transposed)
    held = lp[0].grad
    if math.isinf(norm_type):  # an empty gradient has no infinity norm, in both
        with pytest.raises(RuntimeError):
            torch.nn.utils.clip_grad_norm_(tp, max_norm, norm_type=norm_type)
        with pytest.raises(RuntimeError, match="inf norm"):
            utils.clip_grad_norm_(lp, max_norm, norm_type=norm_type)
        lp, tp = pair(grads(1, 2.0, [s for s in SHAPES if 0 not in s]), transposed)
        held = lp[0].grad
    total = utils.clip_grad_norm_(lp, max_norm, norm_type=norm_type)
    want = torch.nn.utils.clip_grad_norm_(tp, max_norm, norm_type=norm_type)
    assert isinstance(total, lucid.Tensor) and total.shape == ()
    np.testing.assert_allclose(total.item(), want.item(), rtol=1e-12)
    for p, t in zip(lp, tp):
        np.testing.assert_allclose(p.grad, t.grad.numpy(), rtol=1e-12, atol=1e-15)
    assert lp[0].grad is held  # rescaled in place, as PyTorch's mul_


def test_clip_grad_norm_really_clips_and_skips_missing_grads():
    lp, tp = pair(grads(2, 5.0))
    lp[1].grad = None
    tp[1].grad = None
    total = utils.clip_grad_norm_(iter(lp), 1.0)
    torch.nn.utils.clip_grad_norm_(tp, 1.0)
    assert total.item() > 5
    assert lp[1].grad is None
    clipped = math.sqrt(sum((p.grad ** 2).sum() for p in lp if p.grad is not None))
    assert abs(clipped - 1.0) < 1e-5
    single = lucid.Tensor([3.0, 4.0], requires_grad=True)
    single.grad = np.array([3.0, 4.0], np.float32)
    assert utils.clip_grad_norm_(single, 100.0).item() == 5.0
    assert utils.clip_grad_norm_([], 1.0).item() == 0.0


def test_error_if_nonfinite():
    lp, _ = pair([np.array([1.0, np.inf])])
    with pytest.raises(RuntimeError, match="non-finite"):
        utils.clip_grad_norm_(lp, 1.0, error_if_nonfinite=True)
    lp, tp = pair([np.array([1.0, np.nan]), np.array([2.0])])
    total = utils.clip_grad_norm_(lp, 1.0)
    want = torch.nn.utils.clip_grad_norm_(tp, 1.0)
    assert math.isnan(total.item()) and math.isnan(want.item())


@pytest.mark.parametrize("backend", ["compiled", "interpret"])
@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("norm_type", [2.0, math.inf, 0.0, 1.5])
def test_eager_clip_of_many_gradients_is_one_norm_call_and_one_rescale(monkeypatch, backend, threads,
                                                                        norm_type):
    """Eagerly the joint norm is one chain (one dispatch call) and the rescaling one
    in-place plan, whatever the number of gradients; float32 results match PyTorch's."""
    from lucid import dispatch
    from lucid_codegen.runtime import threads as runtime_threads
    monkeypatch.setenv("LUCID_BACKEND", backend)
    runtime_threads.set_num_threads(threads)
    shapes = [(64, 97), (97,), (), (1, 1), (3, 5, 7), (13,)] + ([(0, 4)] if not math.isinf(norm_type) else [])
    arrays = [a.astype(np.float32) for a in grads(7, 3.0, shapes)]
    arrays[0] = np.asfortranarray(arrays[0])   # a non-contiguous gradient, rescaled where it is
    lp = [lucid.Tensor(np.zeros(a.shape, np.float32), requires_grad=True) for a in arrays]
    tp = [torch.zeros(a.shape, requires_grad=True) for a in arrays]
    for p, t, a in zip(lp, tp, arrays):
        p.grad, t.grad = a.copy(order="K"), torch.tensor(a)
    held = [p._grad for p in lp]
    calls = []
    real_call = dispatch.call
    monkeypatch.setattr(dispatch, "call", lambda *args, **kw: calls.append(args[0].name) or real_call(*args, **kw))
    total = utils.clip_grad_norm_(lp, 1.0, norm_type=norm_type)
    want = torch.nn.utils.clip_grad_norm_(tp, 1.0, norm_type=norm_type)
    assert calls == ["clip_grad_norm"]                     # the norm; the rescale is no op call
    assert total.dtype == "float32" and total.shape == ()
    np.testing.assert_allclose(total.item(), want.item(), rtol=2e-6)
    for p, t, h in zip(lp, tp, held):
        assert p._grad is h                                # in place
        np.testing.assert_allclose(p.grad, t.grad.numpy(), rtol=2e-6, atol=1e-7)
    assert arrays[0].size and lp[0]._grad.flags.f_contiguous


def test_eager_clip_falls_back_to_one_call_per_gradient_where_one_call_cannot_do():
    """Mixed dtypes (each norm in its own dtype), the same parameter twice and a
    read-only gradient are clipped one by one, as PyTorch's loop would."""
    a, b = np.array([3.0, 4.0]), np.array([[12.0]], np.float32)
    lp = [lucid.Tensor(np.zeros(2), requires_grad=True, dtype="float64"),
          lucid.Tensor(np.zeros((1, 1)), requires_grad=True, dtype="float32")]
    tp = [torch.zeros(2, dtype=torch.float64, requires_grad=True), torch.zeros((1, 1), requires_grad=True)]
    for p, t, g in zip(lp, tp, (a, b)):
        p.grad, t.grad = g.copy(), torch.tensor(g)
    total = utils.clip_grad_norm_(lp, 2.0)
    want = torch.nn.utils.clip_grad_norm_(tp, 2.0)
    assert total.dtype == "float64" and total.item() == pytest.approx(want.item(), rel=1e-12)
    for p, t in zip(lp, tp):
        np.testing.assert_allclose(p.grad, t.grad.numpy(), rtol=1e-6)
    p, t = lp[0], tp[0]
    p.grad, t.grad = a.copy(), torch.tensor(a)
    total = utils.clip_grad_norm_([p, p], 1.0)             # counted and rescaled twice
    want = torch.nn.utils.clip_grad_norm_([t, t], 1.0)
    assert total.item() == pytest.approx(want.item(), rel=1e-12)
    np.testing.assert_allclose(p.grad, t.grad.numpy(), rtol=1e-12)
    read_only = np.array([3.0, 4.0])
    read_only.flags.writeable = False
    p.grad = read_only
    with pytest.raises(ValueError, match="read-only"):      # numpy's refusal, as before
        utils.clip_grad_norm_([p], 1.0)


@pytest.mark.parametrize("clip", [0.0, 0.3, 10.0])
def test_clip_grad_value_matches_torch(clip):
    lp, tp = pair(grads(3), transposed=True)
    utils.clip_grad_value_(lp, clip)
    torch.nn.utils.clip_grad_value_(tp, clip)
    for p, t in zip(lp, tp):
        np.testing.assert_array_equal(p.grad, t.grad.numpy())


def test_parameters_to_vector_and_back():
    arrays = grads(4)
    lp = [lucid.Tensor(a, requires_grad=True, dtype="float64") for a in arrays]
    tp = [torch.tensor(a, requires_grad=True) for a in arrays]
    v, tv = utils.parameters_to_vector(lp), torch.nn.utils.parameters_to_vector(tp)
    np.testing.assert_array_equal(v.numpy(), tv.detach().numpy())
    (v * v).sum().backward()  # differentiable, as PyTorch's
    for p, a in zip(lp, arrays):
        np.testing.assert_allclose(p.grad, 2 * a)
    held = [p._data for p in lp]
    utils.vector_to_parameters(v * 3, lp)
    torch.nn.utils.vector_to_parameters(tv * 3, tp)
    for p, t, h in zip(lp, tp, held):
        np.testing.assert_array_equal(p.numpy(), t.detach().numpy())
        assert p._data is h  # in place
    with pytest.raises(ValueError, match="does not hold"):
        utils.vector_to_parameters(v[:3], lp)
    with pytest.raises(TypeError, match="Tensor"):
        utils.vector_to_parameters(np.zeros(3), lp)


@pytest.mark.parametrize("norm_type", [2.0, math.inf])
def test_clipping_inside_a_compiled_step_matches_eager(norm_type):
    rng = np.random.default_rng(5)
    x, y = rng.standard_normal((8, 6)) * 3, rng.integers(0, 4, 8)
    w0, b0 = rng.standard_normal((4, 6)), rng.standard_normal(4)
    runs = []
    for compiled in (False, True):
        w = lucid.Tensor(w0.copy(), requires_grad=True, dtype="float64")  # a copy: Tensor(array)
        b = lucid.Tensor(b0.copy(), requires_grad=True, dtype="float64")  # shares its memory
        opt = lucid.optim.SGD([w, b], lr=0.5, momentum=0.9)

        def step(x, y):
            opt.zero_grad()
            loss = F.cross_entropy(F.linear(x, w, b), y)
            loss.backward()
            norm = utils.clip_grad_norm_([w, b], 0.1, norm_type=norm_type)
            utils.clip_grad_value_([b], 0.01)
            opt.step()
            return norm
        run = lucid.compile(step) if compiled else step
        norms = [run(lucid.Tensor(x, dtype="float64"), y).item() for _ in range(4)]
        runs.append((norms, w.numpy().copy(), b.numpy().copy()))
        if compiled:
            assert run.traces == 1
    (n0, w0_, b0_), (n1, w1_, b1_) = runs
    np.testing.assert_allclose(n1, n0, rtol=1e-12)
    np.testing.assert_allclose(w1_, w0_, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(b1_, b0_, rtol=1e-12, atol=1e-14)
    assert n0[0] > 0.1  # the clip was active


@pytest.mark.parametrize("norm_type", [2.0, 1.0, math.inf, 3.0])
def test_clip_grad_norm_inside_a_compiled_backward_matches_torch(norm_type):
    """Traced: the norm and the rescaled gradients are part of the compiled graph."""
    rng = np.random.default_rng(6)
    x, w0, b0 = rng.standard_normal((5, 4)) * 3, rng.standard_normal((3, 4)), rng.standard_normal(3)
    w = lucid.Tensor(w0, requires_grad=True, dtype="float64")
    b = lucid.Tensor(b0, requires_grad=True, dtype="float64")

    @lucid.compile
    def clipped(x):
        w.grad = b.grad = None
        (F.linear(x, w, b) ** 2).sum().backward()
        utils.clip_grad_value_([b], 2.0)
        return utils.clip_grad_norm_([w, b], 1.5, norm_type=norm_type)

    tw, tb = torch.tensor(w0, requires_grad=True), torch.tensor(b0, requires_grad=True)
    (torch.nn.functional.linear(torch.tensor(x), tw, tb) ** 2).sum().backward()
    torch.nn.utils.clip_grad_value_([tb], 2.0)
    want = torch.nn.utils.clip_grad_norm_([tw, tb], 1.5, norm_type=norm_type)
    for _ in range(2):
        got = clipped(lucid.Tensor(x, dtype="float64"))
        np.testing.assert_allclose(got.item(), want.item(), rtol=1e-12)
        np.testing.assert_allclose(w.grad, tw.grad.numpy(), rtol=1e-12)
        np.testing.assert_allclose(b.grad, tb.grad.numpy(), rtol=1e-12)
    assert clipped.traces == 1 and want.item() > 1.5
