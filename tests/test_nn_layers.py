"""The activation, normalisation, dropout, embedding, padding and distance modules against
PyTorch's: constructor defaults, ``repr``, parameters and buffers (shapes, initial values,
``state_dict`` keys), train/eval behaviour; dropout's statistics; and the functions' errors."""
from __future__ import annotations

import numpy as np
import pytest
import torch

import lucid
import lucid.nn as nn
import lucid.nn.functional as F

# (constructor source, forward input shape or None): the same text builds both modules
MODULES = [
    ("ReLU()", (3, 4)), ("ReLU(inplace=True)", None), ("ReLU6()", (3, 4)), ("LeakyReLU()", (3, 4)),
    ("LeakyReLU(0.2, inplace=True)", None), ("ELU(alpha=0.5)", (3, 4)), ("SELU()", (3, 4)),
    ("CELU(1.5)", (3, 4)), ("GELU()", (3, 4)), ("GELU(approximate='tanh')", (3, 4)), ("SiLU()", (3, 4)),
    ("Mish()", (3, 4)), ("Softplus(beta=2.0, threshold=5.0)", (3, 4)), ("Softsign()", (3, 4)),
    ("Hardtanh(-2.0, 2.0)", (3, 4)), ("Hardsigmoid()", (3, 4)), ("Hardswish()", (3, 4)),
    ("LogSigmoid()", (3, 4)), ("Tanhshrink()", (3, 4)), ("GLU()", (3, 4)), ("GLU(dim=0)", (4, 3)),
    ("Softmax(dim=1)", (3, 4)), ("Softmax()", (3, 4)), ("LogSoftmax(dim=-1)", (3, 4)), ("Softmin(dim=0)", (3, 4)),
    ("Sigmoid()", (3, 4)), ("Tanh()", (3, 4)), ("Threshold(0.1, 20.0)", (3, 4)),
    ("LayerNorm(4)", (3, 4)), ("LayerNorm((3, 4), eps=1e-3, elementwise_affine=False)", (2, 3, 4)),
    ("LayerNorm([4], bias=False)", (3, 4)), ("RMSNorm(4)", (3, 4)), ("RMSNorm([3, 4], eps=1e-4)", (2, 3, 4)),
    ("GroupNorm(2, 4)", (3, 4, 5)), ("GroupNorm(1, 4, affine=False)", (3, 4)), ("GroupNorm(2, 4, bias=False)", (2, 4)),
    ("BatchNorm1d(4)", (5, 4)), ("BatchNorm1d(4, momentum=None, affine=False)", (5, 4, 3)),
    ("BatchNorm1d(4, track_running_stats=False)", (5, 4)), ("BatchNorm2d(3, eps=1e-3, momentum=0.2)", (2, 3, 4, 5)),
    ("BatchNorm2d(3, bias=False)", (2, 3, 2, 2)),
    ("Dropout()", None), ("Dropout(p=0.2, inplace=True)", None), ("Dropout1d(0.3)", None), ("Dropout2d()", None),
    ("Dropout3d(0.25)", None), ("AlphaDropout(0.1)", None),
    ("Embedding(10, 3)", None), ("Embedding(10, 3, padding_idx=-2, max_norm=1.5, norm_type=1.0)", None),
    ("ZeroPad2d(1)", (1, 2, 3, 4)), ("ZeroPad2d((1, 0, 2, 3))", (2, 3, 4)), ("ZeroPad1d(2)", (2, 3)),
    ("ConstantPad1d((1, 2), 3.5)", (2, 3, 4)), ("ConstantPad2d(1, -1.0)", (2, 3, 4)),
    ("ReflectionPad1d(2)", (2, 3, 4)), ("ReflectionPad2d((1, 2, 0, 1))", (1, 2, 3, 4)),
    ("ReplicationPad1d((3, 1))", (2, 3, 4)), ("ReplicationPad2d(2)", (2, 3, 4)),
    ("CircularPad1d(1)", (2, 3, 4)), ("CircularPad2d((1, 2, 2, 1))", (1, 2, 3, 4)),
    ("CosineSimilarity()", None), ("CosineSimilarity(dim=0, eps=1e-6)", None), ("PairwiseDistance()", None),
    ("PairwiseDistance(p=1.0, keepdim=True)", None),
]
IDS = [src for src, _ in MODULES]


def build(src: str):
    return eval("nn." + src, {"nn": nn}), eval("tnn." + src, {"tnn": torch.nn})


@pytest.mark.parametrize("src,shape", MODULES, ids=IDS)
def test_repr_parameters_and_buffers_match_torch(src, shape):
    ours, theirs = build(src)
    assert repr(ours) == repr(theirs)
    assert list(ours.state_dict()) == list(theirs.state_dict())
    assert [n for n, _ in ours.named_parameters()] == [n for n, _ in theirs.named_parameters()]
    assert [n for n, _ in ours.named_buffers()] == [n for n, _ in theirs.named_buffers()]
    for name, value in theirs.state_dict().items():
        mine = ours.state_dict()[name]
        assert tuple(mine.shape) == tuple(value.shape), name
        assert str(mine.dtype) == str(value.dtype).replace("torch.", ""), name
        if "weight" not in name or "Embedding" not in src:  # random init: checked on its own
            np.testing.assert_array_equal(mine, value.numpy(), err_msg=name)


@pytest.mark.parametrize("src,shape", [m for m in MODULES if m[1] is not None],
                         ids=[s for s, sh in MODULES if sh is not None])
def test_forward_matches_torch_in_both_modes(src, shape):
    ours, theirs = build(src)
    rng = np.random.default_rng(0)
    for training in (True, False):
        ours.train(training)
        theirs.train(training)
        for step in range(2):  # the second step sees the first step's running statistics
            x = (rng.standard_normal(shape) * 3).astype(np.float32)
            want = theirs(torch.from_numpy(x.copy())).detach().numpy()
            got = ours(lucid.from_numpy(x.copy())).numpy()
            np.testing.assert_allclose(got, want, rtol=2e-5, atol=2e-5, err_msg=f"{src} training={training}")
    for name, value in theirs.state_dict().items():
        np.testing.assert_allclose(ours.state_dict()[name], value.numpy(), rtol=1e-5, atol=1e-6, err_msg=name)


def test_batchnorm_momentum_none_is_a_cumulative_average():
    bn = nn.BatchNorm1d(2, momentum=None)
    xs = [lucid.tensor(np.random.default_rng(k).standard_normal((6, 2)).astype(np.float32)) for k in range(3)]
    for x in xs:
        bn(x)
    want = np.mean([x.numpy().mean(0) for x in xs], axis=0)
    np.testing.assert_allclose(bn.running_mean.numpy(), want, rtol=1e-5, atol=1e-6)
    assert int(bn.num_batches_tracked.item()) == 3
    bn.eval()
    y = bn(xs[0])
    want = (xs[0].numpy() - bn.running_mean.numpy()) / np.sqrt(bn.running_var.numpy() + 1e-5)
    np.testing.assert_allclose(y.numpy(), want, rtol=1e-5, atol=1e-5)


def test_batchnorm_input_rank_and_single_value_errors():
    with pytest.raises(ValueError, match="expected 2D or 3D input"):
        nn.BatchNorm1d(3)(lucid.zeros(2, 3, 4, 5))
    with pytest.raises(ValueError, match="more than 1 value per channel"):
        nn.BatchNorm1d(3)(lucid.zeros(1, 3))
    nn.BatchNorm1d(3).eval()(lucid.zeros(1, 3))  # eval: one sample is fine


@pytest.mark.parametrize("momentum", [0.1, None])
def test_batchnorm_training_in_compiled_step_updates_buffers(momentum):
    bn = nn.BatchNorm1d(3, momentum=momentum)
    step = lucid.compile(lambda x: bn(x).sum())
    ref = torch.nn.BatchNorm1d(3, momentum=momentum)
    for k in range(3):
        x = np.random.default_rng(k).standard_normal((4, 3)).astype(np.float32)
        step(lucid.from_numpy(x))
        ref(torch.from_numpy(x))
    assert int(bn.num_batches_tracked.item()) == 3
    np.testing.assert_allclose(bn.running_mean.numpy(), ref.running_mean.numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(bn.running_var.numpy(), ref.running_var.numpy(), rtol=1e-5, atol=1e-6)


def test_layer_norm_gradients_reach_weight_and_bias():
    ln = nn.LayerNorm(3)
    x = lucid.tensor([[1.0, 2.0, 4.0], [0.0, -1.0, 1.0]])
    (ln(x) * lucid.tensor([[1.0, 2.0, 3.0]])).sum().backward()
    t = torch.nn.LayerNorm(3)
    (t(torch.tensor(x.numpy())) * torch.tensor([[1.0, 2.0, 3.0]])).sum().backward()
    np.testing.assert_allclose(ln.weight.grad, t.weight.grad.numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(ln.bias.grad, t.bias.grad.numpy(), rtol=1e-5, atol=1e-6)


# ------------------------------------------------------------------ dropout
def test_dropout_keep_rate_scaling_and_gradient_mask():
    lucid.manual_seed(11)
    x = lucid.ones(200_000, requires_grad=True)
    y = F.dropout(x, p=0.3)
    kept = y.numpy() != 0
    assert abs(kept.mean() - 0.7) < 0.005
    np.testing.assert_allclose(np.unique(y.numpy()), [0.0, np.float32(1 / 0.7)], rtol=1e-6)
    (y * 2.0).sum().backward()
    np.testing.assert_allclose(x.grad, np.where(kept, 2 / 0.7, 0.0), rtol=1e-6)


def test_dropout_is_reproducible_under_manual_seed_and_generator():
    lucid.manual_seed(5)
    a = F.dropout(lucid.ones(64)).numpy()
    lucid.manual_seed(5)
    b = F.dropout(lucid.ones(64)).numpy()
    np.testing.assert_array_equal(a, b)
    g1, g2 = lucid.Generator().manual_seed(9), lucid.Generator().manual_seed(9)
    np.testing.assert_array_equal(F.dropout(lucid.ones(64), generator=g1).numpy(),
                                  F.dropout(lucid.ones(64), generator=g2).numpy())


def test_dropout_edge_cases():
    x = lucid.randn(4, 5)
    assert F.dropout(x, 0.5, training=False) is x
    assert nn.Dropout(0.5).eval()(x) is x
    assert (F.dropout(x, 1.0).numpy() == 0).all()
    np.testing.assert_array_equal(F.dropout(x, 0.0).numpy(), x.numpy())
    with pytest.raises(ValueError, match="between 0 and 1"):
        F.dropout(x, 1.5)
    with pytest.raises(ValueError, match="between 0 and 1"):
        nn.Dropout(-0.1)
    # (inside lucid.compile: tests/test_compile_random.py)


def test_dropout2d_zeroes_whole_channels():
    lucid.manual_seed(2)
    y = F.dropout2d(lucid.ones(8, 16, 3, 3), p=0.5).numpy()
    per_channel = y.reshape(8, 16, 9)
    assert ((per_channel == 0).all(-1) | (per_channel == 2.0).all(-1)).all()
    assert 0.3 < (per_channel[..., 0] == 0).mean() < 0.7


def test_dropout3d_zeroes_whole_channels_and_warns_as_torch_on_other_ranks():
    lucid.manual_seed(4)
    y = F.dropout3d(lucid.ones(4, 16, 2, 3, 2), p=0.5).numpy().reshape(4, 16, 12)
    assert ((y == 0).all(-1) | (y == 2.0).all(-1)).all() and 0.25 < (y[..., 0] == 0).mean() < 0.75
    y = nn.Dropout3d(0.5)(lucid.ones(16, 2, 3, 2)).numpy().reshape(16, 12)  # unbatched (C, D, H, W)
    assert ((y == 0).all(-1) | (y == 2.0).all(-1)).all()
    with pytest.warns(UserWarning, match="dropout3d: Received a 3-D input"):
        y = F.dropout3d(lucid.ones(8, 3, 4), 0.5).numpy()
    assert ((y == 0).all((1, 2)) | (y == 2.0).all((1, 2))).all()  # PyTorch: along the first axis
    x = lucid.ones(2, 3, 2, 2, 2)
    assert F.dropout3d(x, 0.5, training=False) is x


def test_dropout_inplace_writes_the_input():
    lucid.manual_seed(0)
    x = lucid.ones(100)
    out = F.dropout(x, 0.5, inplace=True)
    assert out is x and set(np.unique(x.numpy()).tolist()) <= {0.0, 2.0}


def test_alpha_dropout_keeps_mean_and_variance():
    lucid.manual_seed(3)
    y = F.alpha_dropout(lucid.randn(400_000), 0.2, training=True).numpy()
    assert abs(y.mean()) < 0.01 and abs(y.std() - 1.0) < 0.01


# ------------------------------------------------------------------ embedding, one_hot
def test_embedding_init_padding_row_and_from_pretrained():
    lucid.manual_seed(0)
    emb = nn.Embedding(1000, 8, padding_idx=3)
    w = emb.weight.numpy()
    assert (w[3] == 0).all() and abs(w.std() - 1.0) < 0.05 and abs(w.mean()) < 0.05
    idx = lucid.tensor([[3, 1], [1, 0]])
    emb(idx).sum().backward()
    assert (emb.weight.grad[3] == 0).all() and (emb.weight.grad[1] == 2).all()
    pre = nn.Embedding.from_pretrained(lucid.tensor([[1.0, 2.0], [3.0, 4.0]]))
    assert not pre.weight.requires_grad and pre(lucid.tensor([1])).tolist() == [[3.0, 4.0]]
    assert nn.Embedding.from_pretrained(lucid.zeros(2, 2), freeze=False).weight.requires_grad


def test_embedding_max_norm_renormalises_in_place_like_torch():
    w = np.random.default_rng(0).standard_normal((6, 4)) * 3
    ours, theirs = lucid.tensor(w.copy()), torch.tensor(w.copy())
    F.embedding(lucid.tensor([0, 2, 2]), ours, max_norm=1.0)
    torch.nn.functional.embedding(torch.tensor([0, 2, 2]), theirs, max_norm=1.0)
    np.testing.assert_allclose(ours.numpy(), theirs.numpy(), rtol=1e-12)


def test_embedding_and_one_hot_errors():
    w = lucid.zeros(4, 2)
    with pytest.raises(IndexError, match="out of range"):
        F.embedding(lucid.tensor([4]), w)
    with pytest.raises(RuntimeError, match="Long, Int"):
        F.embedding(lucid.tensor([1.0]), w)
    with pytest.raises(RuntimeError, match="smaller than num_classes"):
        F.one_hot(lucid.tensor([3]), 3)
    with pytest.raises(RuntimeError, match="non-negative"):
        F.one_hot(lucid.tensor([-1]), 3)
    assert F.one_hot(lucid.tensor([[2], [0]])).dtype == "int64"


# ------------------------------------------------------------------ functions' errors
@pytest.mark.parametrize("call,error,match", [
    (lambda: F.gelu(lucid.zeros(2), approximate="fast"), ValueError, "approximate"),
    (lambda: F.glu(lucid.zeros(2, 3)), RuntimeError, "Halving dimension must be even"),
    (lambda: F.relu6(lucid.tensor([1, 2])), RuntimeError, "floating-point"),
    (lambda: F.layer_norm(lucid.zeros(2, 3), (4,)), RuntimeError, "normalized_shape"),
    (lambda: F.layer_norm(lucid.zeros(2, 3), (3,), lucid.ones(2)), RuntimeError, "weight"),
    (lambda: F.group_norm(lucid.zeros(2, 3), 2), RuntimeError, "divisible"),
    (lambda: F.batch_norm(lucid.zeros(2, 3), None, None), RuntimeError, "running_mean"),
    (lambda: F.batch_norm(lucid.zeros(2, 3), lucid.zeros(2), lucid.ones(3)), RuntimeError, "running_mean"),
    (lambda: F.pad(lucid.zeros(2, 3), (1,)), ValueError, "divisible by 2"),
    (lambda: F.pad(lucid.zeros(1, 2, 3), (3, 0), mode="reflect"), RuntimeError, "less than"),
    (lambda: F.pad(lucid.zeros(1, 2, 3), (4, 0), mode="circular"), RuntimeError, "wrapping"),
    (lambda: F.pad(lucid.zeros(3), (1, 1), mode="reflect"), NotImplementedError, "dimensions"),
    (lambda: F.pad(lucid.zeros(3), (1, 1), mode="wrap"), NotImplementedError, "unsupported"),
    (lambda: F.cosine_similarity(lucid.zeros(2, 3), lucid.zeros(2, 4)), RuntimeError, "broadcast"),
    (lambda: F.softmin(lucid.zeros(2, 3), dim=2), IndexError, "out of range"),
])
def test_bad_input_raises_torch_error_type(call, error, match):
    with pytest.raises(error, match=match):
        call()


def test_inplace_activation_writes_input_and_refuses_leaves_requiring_grad():
    x = lucid.tensor([-1.0, 2.0])
    assert F.relu(x, inplace=True) is x and x.tolist() == [0.0, 2.0]
    with pytest.raises(RuntimeError, match="in-place"):
        F.silu(lucid.tensor([1.0], requires_grad=True), inplace=True)


def test_activations_run_as_one_native_call(monkeypatch):
    """Each activation is one chain: its eager call makes one dispatch.call."""
    from lucid import dispatch
    calls = []
    real = dispatch.call
    monkeypatch.setattr(dispatch, "call", lambda chain, ops, check=None: calls.append(chain) or real(chain, ops, check))
    x = lucid.randn(3, 4)
    for fn in (F.gelu, F.mish, F.hardswish, F.softplus, F.elu, lambda t: F.layer_norm(t, (4,)),
               lambda t: F.pad(t, (1, 1), mode="replicate"), F.normalize):
        calls.clear()
        fn(x)
        assert len(calls) == 1, fn


@pytest.mark.parametrize("dtype", [np.int64, np.int32])
def test_embedding_indices_out_of_range_raise_before_native_code(dtype):
    w = lucid.randn(5, 3)
    ok = np.array([[0, 4], [2, 1]], dtype)
    np.testing.assert_array_equal(F.embedding(lucid.tensor(ok), w).numpy(), w.numpy()[ok])
    for bad in ([0, 5], [-1, 2], [np.iinfo(dtype).min, 0], [np.iinfo(dtype).max, 0]):
        with pytest.raises(IndexError, match="index out of range in self"):
            F.embedding(lucid.tensor(np.array(bad, dtype)), w)
        with pytest.raises(IndexError):
            torch.nn.functional.embedding(torch.tensor(np.array(bad, dtype)), torch.tensor(w.numpy()))
