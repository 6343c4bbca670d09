"""The losses beyond their values (those are in ``tests/op_table_losses.py``): errors
raised before native code runs, PyTorch's signatures and defaults, warnings, the loss
modules and their buffers."""
from __future__ import annotations

import inspect
import warnings

import numpy as np
import pytest
import torch

import lucid
import lucid.nn as nn
import lucid.nn.functional as F
from lucid.nn import class_losses

LOSSES = ["mse_loss", "l1_loss", "smooth_l1_loss", "huber_loss", "binary_cross_entropy",
          "binary_cross_entropy_with_logits", "nll_loss", "cross_entropy", "kl_div", "soft_margin_loss",
          "margin_ranking_loss", "hinge_embedding_loss", "poisson_nll_loss", "cosine_embedding_loss"]
MODULES = ["L1Loss", "MSELoss", "SmoothL1Loss", "HuberLoss", "BCELoss", "BCEWithLogitsLoss", "NLLLoss",
           "CrossEntropyLoss", "KLDivLoss", "SoftMarginLoss", "MarginRankingLoss", "HingeEmbeddingLoss",
           "PoissonNLLLoss", "CosineEmbeddingLoss"]


def _params(fn):
    return [(("input" if p.name == "input_" else p.name), p.default)
            for p in inspect.signature(fn).parameters.values()]


@pytest.mark.parametrize("name", LOSSES)
def test_functional_signature_is_torchs(name):
    assert _params(getattr(F, name)) == _params(getattr(torch.nn.functional, name))


@pytest.mark.parametrize("name", MODULES)
def test_module_signature_defaults_and_repr_are_torchs(name):
    ours, theirs = getattr(nn, name), getattr(torch.nn, name)
    assert _params(ours.__init__) == _params(theirs.__init__)
    a, b = ours(), theirs()
    assert repr(a) == repr(b)
    for attr in ("reduction", "ignore_index", "label_smoothing", "beta", "delta", "margin", "log_target",
                 "log_input", "full", "eps"):
        assert getattr(a, attr, None) == getattr(b, attr, None), attr


def test_weights_are_buffers_in_state_dict():
    w, pw = lucid.tensor([1.0, 2.0, 3.0]), lucid.tensor([0.5, 1.0, 2.0])
    ce = nn.CrossEntropyLoss(weight=w)
    assert [n for n, _ in ce.named_buffers()] == ["weight"] and list(ce.parameters()) == []
    np.testing.assert_array_equal(ce.state_dict()["weight"], w.numpy())
    bce = nn.BCEWithLogitsLoss(weight=w, pos_weight=pw)
    assert [n for n, _ in bce.named_buffers()] == ["weight", "pos_weight"]
    assert nn.NLLLoss().weight is None and list(nn.BCELoss().buffers()) == []


def _torch(x):
    return torch.from_numpy(np.asarray(x))


def test_modules_call_their_functions_with_their_arguments():
    rng = np.random.default_rng(0)
    z, t = rng.standard_normal((5, 4)), np.array([0, 3, 1, 1, 2])
    w = rng.uniform(0.5, 2.0, 4)
    for ours, theirs, args in [
        (nn.CrossEntropyLoss(lucid.tensor(w), ignore_index=1, reduction="sum", label_smoothing=0.2),
         torch.nn.CrossEntropyLoss(_torch(w), ignore_index=1, reduction="sum", label_smoothing=0.2), (z, t)),
        (nn.NLLLoss(lucid.tensor(w), reduction="none"), torch.nn.NLLLoss(_torch(w), reduction="none"), (z, t)),
        (nn.BCEWithLogitsLoss(pos_weight=lucid.tensor(w)), torch.nn.BCEWithLogitsLoss(pos_weight=_torch(w)),
         (z, rng.uniform(0, 1, (5, 4)))),
        (nn.SmoothL1Loss(beta=0.4), torch.nn.SmoothL1Loss(beta=0.4), (z, z[::-1].copy())),
        (nn.HuberLoss(delta=0.4), torch.nn.HuberLoss(delta=0.4), (z, z[::-1].copy())),
        (nn.KLDivLoss(reduction="batchmean", log_target=True),
         torch.nn.KLDivLoss(reduction="batchmean", log_target=True), (z, z[::-1].copy())),
        (nn.MarginRankingLoss(margin=0.5), torch.nn.MarginRankingLoss(margin=0.5),
         (z[0], z[1], np.sign(z[2]))),
        (nn.HingeEmbeddingLoss(margin=2.0), torch.nn.HingeEmbeddingLoss(margin=2.0), (z, np.sign(z[::-1]))),
        (nn.PoissonNLLLoss(log_input=False, full=True), torch.nn.PoissonNLLLoss(log_input=False, full=True),
         (np.abs(z), 3 * np.abs(z[::-1]))),
    ]:
        got = ours(*[lucid.tensor(a) for a in args])
        want = theirs(*[_torch(a) for a in args])
        np.testing.assert_allclose(got.numpy(), want.numpy(), rtol=1e-10, err_msg=type(ours).__name__)


def test_legacy_size_average_and_reduce_map_to_reduction():
    with pytest.warns(UserWarning, match="reduction='sum'"):
        assert nn.MSELoss(size_average=False).reduction == "sum"
    with pytest.warns(UserWarning, match="reduction='none'"):
        out = F.l1_loss(lucid.tensor([1.0, -2.0]), lucid.zeros(2), reduce=False)
    assert out.tolist() == [1.0, 2.0]


# ------------------------------------------------------------------ errors
@pytest.mark.parametrize("name", [n for n in LOSSES if n not in ("margin_ranking_loss", "cosine_embedding_loss")])
def test_bad_reduction_is_a_value_error(name):
    x, t = lucid.full((2, 3), 0.5), lucid.full((2, 3), 0.5)
    if name in ("nll_loss", "cross_entropy"):
        t = lucid.tensor([0, 1])
    with pytest.raises(ValueError, match=f"{name}: reduction must be"):
        getattr(F, name)(x, t, reduction="avg")


def test_nn_module_checks_its_reduction_when_called():
    loss = nn.MSELoss(reduction="avg")  # as PyTorch: accepted here, refused when called
    with pytest.raises(ValueError, match="mse_loss: reduction"):
        loss(lucid.zeros(2), lucid.zeros(2))


@pytest.mark.parametrize("fn", [F.cross_entropy, F.nll_loss])
def test_target_out_of_range_is_an_index_error(fn):
    with pytest.raises(IndexError, match=r"Target 3 is out of bounds.*\[0, 3\)"):
        fn(lucid.zeros(2, 3), np.array([0, 3]))
    with pytest.raises(IndexError, match="Target -1 is out of bounds"):
        fn(lucid.zeros(2, 3, 4), np.full((2, 4), -1))
    with pytest.raises(IndexError, match="Target 5 is out of bounds"):
        fn(lucid.zeros(2, 3), np.array([5, 0]), ignore_index=4)
    assert fn(lucid.zeros(2, 3), np.array([5, 0]), ignore_index=5).item() == pytest.approx(
        0.0 if fn is F.nll_loss else np.log(3))


@pytest.mark.parametrize("fn", ["cross_entropy", "nll_loss"])
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("extra", [{}, {"weight": True}, {"label_smoothing": 0.2}], ids=str)
def test_a_repeated_call_still_refuses_a_target_out_of_range(fn, reduction, extra):
    """A signature seen before takes the short path (its targets checked only when the
    loss is not finite, for a scalar loss): a later target past the classes, or negative,
    is still an IndexError, ``ignore_index`` is still ignored, a NaN input still gives
    PyTorch's NaN, and a -inf input off the target gives its finite loss (nll_loss takes
    the target's term alone); the values and gradients of the calls that run match
    PyTorch's."""
    import torch
    if fn == "nll_loss" and "label_smoothing" in extra:
        pytest.skip("nll_loss has no label_smoothing")
    rng = np.random.default_rng(3)
    z = rng.standard_normal((9, 5))
    w = rng.random(5) + 0.5
    kw = {"reduction": reduction, **({"weight": None} if "weight" not in extra else {}),
          **({"label_smoothing": extra["label_smoothing"]} if "label_smoothing" in extra else {})}

    def both(z, t):
        zl = lucid.Tensor(z, requires_grad=True)
        zt = torch.tensor(z, requires_grad=True)
        extra_l = {"weight": lucid.Tensor(w)} if "weight" in extra else {}
        extra_t = {"weight": torch.tensor(w)} if "weight" in extra else {}
        got = getattr(F, fn)(zl, lucid.tensor(t), **kw, **extra_l)   # (int64 targets)
        want = getattr(torch.nn.functional, fn)(zt, torch.tensor(t), **kw, **extra_t)
        return zl, got, zt, want

    for k in range(3):  # the first call checks and keeps the chain; the next take the short path
        t = rng.integers(0, 5, 9)
        zl, got, zt, want = both(z, t)
        assert k == 0 or len(class_losses._SEEN._table) > 0
        np.testing.assert_allclose(got.numpy(), want.detach().numpy(), rtol=1e-10)
        got.sum().backward()
        want.sum().backward()
        np.testing.assert_allclose(zl.grad, zt.grad.numpy(), rtol=1e-10, atol=1e-12)
    for bad in (5, -1, 12):
        t = rng.integers(0, 5, 9)
        t[4] = bad
        with pytest.raises(IndexError, match=f"Target {bad} is out of bounds"):
            both(z, t)
    t = rng.integers(0, 5, 9)
    t[4] = -100                           # ignore_index: ignored, not an error
    zl, got, zt, want = both(z, t)
    np.testing.assert_allclose(got.numpy(), want.detach().numpy(), rtol=1e-10)
    t = rng.integers(0, 5, 9)
    zinf = z.copy()
    zinf[3, (t[3] + 1) % 5] = -np.inf     # not row 3's target: its loss stays finite
    _, got, _, want = both(zinf, t)
    np.testing.assert_allclose(got.numpy(), want.detach().numpy(), rtol=1e-10)
    zinf[2, t[2]] = np.nan                # row 2's target: NaN
    _, got, _, want = both(zinf, t)
    np.testing.assert_array_equal(np.isnan(got.numpy()), np.isnan(want.detach().numpy()))
    assert np.isnan(got.numpy()).any()


@pytest.mark.parametrize("reduction", ["mean", "none"])
def test_a_repeated_call_checks_spatial_targets_whole(reduction):
    """(N, C, d) logits and (N, d) targets on the short path: a bad target anywhere in
    the (N, d) array is found (the check reduces over every axis)."""
    rng = np.random.default_rng(4)
    z = lucid.Tensor(rng.standard_normal((3, 5, 4)))
    for _ in range(3):
        F.cross_entropy(z, lucid.tensor(rng.integers(0, 5, (3, 4))), reduction=reduction)
    assert len(class_losses._SEEN._table) > 0   # (the short path is the one tested)
    t = rng.integers(0, 5, (3, 4))
    t[2, 3] = 7
    with pytest.raises(IndexError, match="Target 7 is out of bounds"):
        F.cross_entropy(z, lucid.tensor(t), reduction=reduction)


def test_target_shape_mismatch_names_both_shapes():
    with pytest.raises(ValueError, match=r"cross_entropy: logits \(2, 3\) and target \(3,\)"):
        F.cross_entropy(lucid.zeros(2, 3), np.array([0, 1, 2]))
    with pytest.raises(ValueError, match=r"nll_loss: input \(2, 3, 4\) and target \(2, 3\).*\(2, 4\)"):
        F.nll_loss(lucid.zeros(2, 3, 4), np.zeros((2, 3), np.int64))
    with pytest.raises(ValueError, match="must have a class dimension"):
        F.cross_entropy(lucid.tensor(1.0), np.array(0))


def test_class_targets_must_be_integers():
    with pytest.raises(TypeError, match="class targets must be integers"):
        F.cross_entropy(lucid.zeros(2, 3), np.array([0.5, 1.0]))
    with pytest.raises(TypeError, match="class indices"):
        F.cross_entropy(lucid.zeros(2, 3), np.array([True, False]))


def test_any_integer_target_dtype_works():
    z = lucid.tensor(np.random.default_rng(1).standard_normal((4, 5)))
    want = F.cross_entropy(z, lucid.tensor([1, 4, 0, 2])).item()
    for dtype in ("int32", "int64", "uint8", "int16"):
        assert F.cross_entropy(z, np.array([1, 4, 0, 2], dtype)).item() == pytest.approx(want, rel=1e-12)
    assert F.cross_entropy(z, lucid.tensor([1, 4, 0, 2]).int()).item() == pytest.approx(want, rel=1e-12)


def test_weight_of_the_wrong_size():
    with pytest.raises(ValueError, match=r"for all 3 classes.*\(2,\)"):
        F.cross_entropy(lucid.zeros(2, 3), [0, 1], weight=lucid.ones(2))


def test_label_smoothing_range():
    with pytest.raises(ValueError, match="label_smoothing must be between 0.0 and 1.0"):
        F.cross_entropy(lucid.zeros(2, 3), [0, 1], label_smoothing=1.5)


def test_every_target_ignored_gives_nan_mean_as_torch():
    got = F.cross_entropy(lucid.zeros(2, 3), [-100, -100]).item()
    want = torch.nn.functional.cross_entropy(torch.zeros(2, 3), torch.tensor([-100, -100])).item()
    assert np.isnan(got) and np.isnan(want)


def test_mse_loss_broadcast_warns_as_torch_and_broadcasts():
    x, t = np.arange(6.0).reshape(3, 2), np.array([1.0, 2.0])
    with pytest.warns(UserWarning, match=r"target size \(2,\) that is different to the input size \(3, 2\)"):
        got = F.mse_loss(lucid.tensor(x), lucid.tensor(t))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        want = torch.nn.functional.mse_loss(_torch(x), _torch(t))
    assert got.item() == pytest.approx(want.item())
    with pytest.raises(ValueError, match=r"mse_loss: input \(2,\) and target \(3,\)"):
        F.mse_loss(lucid.zeros(2), lucid.zeros(3))


def test_binary_cross_entropy_errors():
    with pytest.raises(RuntimeError, match="between 0 and 1"):
        F.binary_cross_entropy(lucid.tensor([0.5, 1.5]), lucid.tensor([1.0, 0.0]))
    with pytest.raises(ValueError, match=r"target size \(2,\) that is different to the input size \(2, 2\)"):
        F.binary_cross_entropy(lucid.full((2, 2), 0.5), lucid.tensor([1.0, 0.0]))
    with pytest.raises(ValueError, match=r"pos_weight \(3,\) does not broadcast"):
        F.binary_cross_entropy_with_logits(lucid.zeros(2, 2), lucid.zeros(2, 2), pos_weight=lucid.ones(3))


def test_binary_cross_entropy_clamps_its_logs_at_minus_100():
    got = F.binary_cross_entropy(lucid.tensor([0.0, 1.0]), lucid.tensor([1.0, 0.0]), reduction="none")
    assert got.tolist() == [100.0, 100.0]


def test_beta_delta_and_margin_checks():
    with pytest.raises(RuntimeError, match="negative values for beta"):
        F.smooth_l1_loss(lucid.zeros(2), lucid.zeros(2), beta=-1.0)
    with pytest.raises(RuntimeError, match="non-positive values for delta"):
        F.huber_loss(lucid.zeros(2), lucid.zeros(2), delta=0.0)
    with pytest.raises(ValueError, match="same dimension"):
        F.margin_ranking_loss(lucid.zeros(2), lucid.zeros(2, 1), lucid.zeros(2))


def test_kl_div_mean_warns_and_batchmean_divides_by_the_batch():
    x, p = lucid.tensor([[-1.0, -2.0], [-0.5, -3.0]]), lucid.tensor([[0.3, 0.7], [0.9, 0.1]])
    with pytest.warns(UserWarning, match="'batchmean' divides only by the batch size"):
        mean = F.kl_div(x, p).item()
    total = F.kl_div(x, p, reduction="sum").item()
    assert mean == pytest.approx(total / 4) and F.kl_div(x, p, reduction="batchmean").item() == pytest.approx(total / 2)
    with pytest.raises(ValueError, match="kl_div: reduction must be one of"):
        F.kl_div(x, p, reduction="batch")


def test_losses_compile_with_traced_class_targets():
    rng = np.random.default_rng(2)
    z, t, w = rng.standard_normal((6, 4)), np.array([0, 3, 1, 2, 2, 1]), rng.uniform(0.5, 2.0, 4)
    step = lucid.compile(lambda z, t: F.cross_entropy(z, t, weight=lucid.tensor(w), ignore_index=2,
                                                      label_smoothing=0.1))
    want = torch.nn.functional.cross_entropy(_torch(z), _torch(t), weight=_torch(w), ignore_index=2,
                                             label_smoothing=0.1)
    assert step(lucid.tensor(z), lucid.tensor(t)).item() == pytest.approx(want.item(), rel=1e-10)


@pytest.mark.parametrize("reduction", ["none", "sum", "mean"])
@pytest.mark.parametrize("shape,target,smoothing", [
    ((2, 0), "probs", 0.0), ((2, 0, 3), "probs", 0.0), ((0,), "probs", 0.0), ((2, 0), "probs", 0.1),
    ((2, 0), [-100, -100], 0.0), ((2, 0), [-100, -100], 0.1), ((0, 0), [], 0.0)])
def test_no_classes_give_pytorch_values(shape, target, smoothing, reduction):
    """A class axis of size 0 (found by tests/fuzz_api.py): the loss is -0.0 an element for
    probabilities, 0 for ignored class indices (NaN with label smoothing), and 'mean'
    divides by 0, as PyTorch; the input's gradient is empty."""
    def run(lib):
        x = lib.zeros(shape, requires_grad=True)
        t = lib.zeros(shape) if target == "probs" else lib.tensor(np.asarray(target, np.int64))
        out = lib.nn.functional.cross_entropy(x, t, reduction=reduction, label_smoothing=smoothing)
        out.sum().backward()
        return np.asarray(out.detach().numpy()), tuple(x.grad.shape)
    (got, gshape), (want, tshape) = run(lucid), run(torch)
    np.testing.assert_array_equal(got, want)
    np.testing.assert_array_equal(np.signbit(got[~np.isnan(got)]), np.signbit(want[~np.isnan(want)]))
    assert gshape == tshape


def test_no_classes_refuse_a_class_index():
    with pytest.raises(IndexError, match="Target 0 is out of bounds"):
        F.cross_entropy(lucid.zeros((2, 0)), lucid.tensor(np.array([0, -100])))
