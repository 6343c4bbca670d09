"""``MultiheadAttention`` and the Transformer layers against PyTorch in float64: the same
weights (PyTorch's state_dict loaded into lucid's module: same names and shapes), the
same inputs and masks; outputs and the gradients of inputs and parameters, eager and
under ``lucid.compile``; and a few training steps following PyTorch's losses."""
from __future__ import annotations

import numpy as np
import pytest
import torch

import lucid
import lucid.nn as nn


def load_from(ours, theirs):
    state = {k: v.detach().numpy().copy() for k, v in theirs.state_dict().items()}
    assert list(ours.state_dict()) == list(state)
    ours.load_state_dict(state)
    return ours


def run_both(ours, theirs, arrays, call, mode="eager", rtol=1e-9):
    """``call(module, lib, *tensors)`` on both; compare outputs and gradients."""
    rng = np.random.default_rng(7)
    tx = [torch.tensor(a, requires_grad=a.dtype == np.float64) for a in arrays]
    touts = call(theirs, torch, *tx)
    touts = [t for t in (touts if isinstance(touts, tuple) else (touts,)) if t is not None]
    ws = [rng.standard_normal(tuple(t.shape)) for t in touts]
    sum((t * torch.tensor(w)).sum() for t, w in zip(touts, ws)).backward()
    lx = [lucid.tensor(a, requires_grad=a.dtype == np.float64) for a in arrays]

    def fn(*xs):
        outs = call(ours, lucid, *xs)
        outs = [o for o in (outs if isinstance(outs, tuple) else (outs,)) if o is not None]
        sum((o * lucid.tensor(w)).sum() for o, w in zip(outs, ws)).backward()
        return outs
    louts = lucid.compile(fn)(*lx) if mode == "compile" else fn(*lx)
    assert len(louts) == len(touts)
    for a, b in zip(louts, touts):
        np.testing.assert_allclose(a.numpy(), b.detach().numpy(), rtol=rtol, atol=1e-10)
    for a, b in zip(lx, tx):
        if b.grad is not None:
            np.testing.assert_allclose(np.asarray(a.grad), b.grad.numpy(), rtol=rtol, atol=1e-10)
    for (n, p), (_, q) in zip(ours.named_parameters(), theirs.named_parameters()):
        np.testing.assert_allclose(np.asarray(p.grad), q.grad.numpy(), rtol=rtol, atol=1e-10, err_msg=n)


MHA_CASES = [
    dict(kw={}, need_weights=True, mask=None),
    dict(kw=dict(batch_first=True), need_weights=False, mask="causal"),
    dict(kw=dict(kdim=3, vdim=5), need_weights=True, mask="bool"),
    dict(kw=dict(add_bias_kv=True, add_zero_attn=True), need_weights=True, mask="float"),
    dict(kw=dict(bias=False), need_weights=True, mask="padding"),
]


@pytest.mark.parametrize("case", range(len(MHA_CASES)))
@pytest.mark.parametrize("mode", ["eager", "compile"])
def test_multihead_attention_matches_torch(case, mode):
    c = MHA_CASES[case]
    torch.manual_seed(case)
    theirs = torch.nn.MultiheadAttention(8, 2, dtype=torch.float64, **c["kw"])
    ours = load_from(nn.MultiheadAttention(8, 2, dtype=lucid.float64, **c["kw"]), theirs)
    rng = np.random.default_rng(case)
    bf = c["kw"].get("batch_first", False)
    L, S, N = 4, 5, 3
    q = rng.standard_normal((N, L, 8) if bf else (L, N, 8))
    k = rng.standard_normal((N, S, c["kw"].get("kdim", 8)) if bf else (S, N, c["kw"].get("kdim", 8)))
    v = rng.standard_normal((N, S, c["kw"].get("vdim", 8)) if bf else (S, N, c["kw"].get("vdim", 8)))
    extra = []
    if c["mask"] == "causal":
        k, v = q.copy(), q.copy()
        extra = [np.triu(np.full((L, L), -np.inf), 1)]
    elif c["mask"] == "bool":
        m = rng.random((L, S)) < 0.3
        m[:, 0] = False
        extra = [m]
    elif c["mask"] == "float":
        extra = [rng.standard_normal((L, S))]
    elif c["mask"] == "padding":
        m = np.zeros((N, S), bool)
        m[1, 3:] = True
        extra = [m]

    def call(mod, lib, q_, k_, v_, *m):
        kwargs = dict(need_weights=c["need_weights"])
        if c["mask"] == "padding":
            kwargs["key_padding_mask"] = m[0]
        elif m:
            kwargs["attn_mask"] = m[0]
            kwargs["is_causal"] = c["mask"] == "causal"
        return mod(q_, k_, v_, **kwargs)
    if c["mask"] == "causal":
        run_both(ours, theirs, [q] + extra, lambda mod, lib, x, m: call(mod, lib, x, x, x, m), mode)
    else:
        run_both(ours, theirs, [q, k, v] + extra, call, mode)


@pytest.mark.parametrize("norm_first", [False, True])
@pytest.mark.parametrize("activation", ["relu", "gelu"])
@pytest.mark.parametrize("mode", ["eager", "compile"])
def test_encoder_and_decoder_layers_match_torch(norm_first, activation, mode):
    torch.manual_seed(1)
    kw = dict(d_model=8, nhead=2, dim_feedforward=16, dropout=0.0, activation=activation,
              batch_first=True, norm_first=norm_first)
    rng = np.random.default_rng(2)
    src, tgt = rng.standard_normal((3, 5, 8)), rng.standard_normal((3, 4, 8))
    mask = np.triu(np.full((4, 4), -np.inf), 1)
    theirs = torch.nn.TransformerEncoderLayer(dtype=torch.float64, **kw)
    ours = load_from(nn.TransformerEncoderLayer(dtype=lucid.float64, **kw), theirs)
    run_both(ours, theirs, [src], lambda m, lib, x: m(x), mode)
    theirs = torch.nn.TransformerDecoderLayer(dtype=torch.float64, **kw)
    ours = load_from(nn.TransformerDecoderLayer(dtype=lucid.float64, **kw), theirs)
    run_both(ours, theirs, [tgt, src, mask], lambda m, lib, t, s, msk: m(t, s, tgt_mask=msk, tgt_is_causal=True), mode)


def test_full_transformer_matches_torch_and_generates_its_mask():
    torch.manual_seed(3)
    kw = dict(d_model=8, nhead=2, num_encoder_layers=2, num_decoder_layers=2, dim_feedforward=16, dropout=0.0)
    theirs = torch.nn.Transformer(dtype=torch.float64, **kw)
    ours = load_from(nn.Transformer(dtype=lucid.float64, **kw), theirs)
    mask = nn.Transformer.generate_square_subsequent_mask(4)
    np.testing.assert_array_equal(mask.numpy(), torch.nn.Transformer.generate_square_subsequent_mask(4).numpy())
    rng = np.random.default_rng(4)
    src, tgt = rng.standard_normal((5, 2, 8)), rng.standard_normal((4, 2, 8))
    run_both(ours, theirs, [src, tgt, mask.numpy().astype(np.float64)],
             lambda m, lib, s, t, msk: m(s, t, tgt_mask=msk))
    assert repr(ours.encoder.layers[0].self_attn) == repr(theirs.encoder.layers[0].self_attn)


def test_transformer_block_trains_like_torch():
    """A pre-norm encoder layer with a head, 4 AdamW steps in float64: losses follow PyTorch's."""
    torch.manual_seed(5)
    kw = dict(d_model=8, nhead=2, dim_feedforward=16, dropout=0.0, batch_first=True, norm_first=True,
              activation="gelu")

    def build(lib, nn_):
        return nn_.Sequential(nn_.TransformerEncoderLayer(dtype=lib.float64, **kw), nn_.Flatten(),
                              nn_.Linear(40, 3, dtype=lib.float64))
    theirs = build(torch, torch.nn)
    ours = load_from(build(lucid, nn), theirs)
    rng = np.random.default_rng(6)
    x, y = rng.standard_normal((4, 5, 8)), rng.integers(0, 3, 4)
    losses = {}
    for lib, model in (("torch", theirs), ("lucid", ours)):
        L = torch if lib == "torch" else lucid
        opt = L.optim.AdamW(model.parameters(), lr=1e-2)
        xs, ys = L.tensor(x), L.tensor(y)
        out = []
        for _ in range(4):
            opt.zero_grad()
            loss = L.nn.functional.cross_entropy(model(xs), ys)
            loss.backward()
            opt.step()
            out.append(loss.item())
        losses[lib] = out
    np.testing.assert_allclose(losses["lucid"], losses["torch"], rtol=1e-6)


def test_errors():
    with pytest.raises(AssertionError, match="embed_dim must be divisible by num_heads"):
        nn.MultiheadAttention(10, 3)
    mha = nn.MultiheadAttention(8, 2)
    with pytest.raises(RuntimeError, match="Need attn_mask if specifying the is_causal hint"):
        mha(lucid.zeros(4, 1, 8), lucid.zeros(4, 1, 8), lucid.zeros(4, 1, 8), is_causal=True)
    with pytest.raises(RuntimeError, match="The shape of the 2D attn_mask is"):
        mha(lucid.zeros(4, 1, 8), lucid.zeros(4, 1, 8), lucid.zeros(4, 1, 8), attn_mask=lucid.zeros(3, 3))
    with pytest.raises(RuntimeError, match="activation should be relu/gelu"):
        nn.TransformerEncoderLayer(8, 2, activation="tanh")
