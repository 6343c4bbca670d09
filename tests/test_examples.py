"""The examples' model code is PyTorch's API: the same source, with its three imports
changed to ``torch``, builds the same model under PyTorch; after loading PyTorch's
weights, the first training steps give the same losses (float64, rel ≤ 1e-6)."""
from __future__ import annotations

import os
import sys

import numpy as np
import pytest
import torch

import lucid

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "benchmarks"))

from model_zoo import load_example as load  # noqa: E402  (the loader bench_models.py uses too)


def same_weights(ours, theirs):
    ours.load_state_dict({k: v.detach().numpy().copy() for k, v in theirs.state_dict().items()})


def losses(lib, model, opt, batches, loss_fn, clip=None):
    out = []
    for x, y in batches:
        opt.zero_grad()
        loss = loss_fn(model(lib.tensor(x)), lib.tensor(y))
        loss.backward()
        if clip:
            lib.nn.utils.clip_grad_norm_(model.parameters(), clip)
        opt.step()
        out.append(loss.item())
    return out


def test_cnn_digits_model_follows_torch():
    ours_mod, theirs_mod = load("train_cnn_digits", False), load("train_cnn_digits", True)
    torch.manual_seed(0)
    theirs = theirs_mod.DigitsCNN(width=8).double()
    ours = ours_mod.DigitsCNN(width=8).double()
    same_weights(ours, theirs)
    rng = np.random.default_rng(0)
    batches = [(rng.random((16, 1, 8, 8)), rng.integers(0, 10, 16)) for _ in range(3)]

    def ce(lib):
        return lambda z, y: lib.nn.functional.cross_entropy(z, y, label_smoothing=0.05)
    got = losses(lucid, ours, lucid.optim.AdamW(ours.parameters(), lr=3e-3), batches, ce(lucid))
    want = losses(torch, theirs, torch.optim.AdamW(theirs.parameters(), lr=3e-3), batches, ce(torch))
    np.testing.assert_allclose(got, want, rtol=1e-6)


def test_char_gpt_model_follows_torch():
    ours_mod, theirs_mod = load("train_char_gpt", False), load("train_char_gpt", True)
    torch.manual_seed(0)
    theirs = theirs_mod.CharGPT(vocab=96, context=16, d_model=32, n_head=4, n_layer=2).double()
    ours = ours_mod.CharGPT(vocab=96, context=16, d_model=32, n_head=4, n_layer=2).double()
    same_weights(ours, theirs)
    rng = np.random.default_rng(1)
    batches = [(rng.integers(0, 96, (4, 16)), rng.integers(0, 96, (4, 16))) for _ in range(3)]

    def ce(lib):
        return lambda z, y: lib.nn.functional.cross_entropy(z.reshape(-1, 96), y.reshape(-1))
    kw = dict(lr=3e-3, betas=(0.9, 0.95), weight_decay=0.1)
    got = losses(lucid, ours, lucid.optim.AdamW(ours.parameters(), **kw), batches, ce(lucid), clip=1.0)
    want = losses(torch, theirs, torch.optim.AdamW(theirs.parameters(), **kw), batches, ce(torch), clip=1.0)
    np.testing.assert_allclose(got, want, rtol=1e-6)


def test_encode_keeps_printable_ascii_and_newlines():
    gpt = load("train_char_gpt", False)
    codes = gpt.encode("a\tb\n\u00e9")
    assert "".join(gpt.VOCAB[i] for i in codes) == "a    b\n"
    assert len(gpt.VOCAB) == 96


@pytest.mark.parametrize("name", ["train_cnn_digits", "train_char_gpt"])
def test_examples_parse_their_options(name):
    module = load(name, False)
    with pytest.raises(SystemExit):
        module.main(["--help"])


def test_char_gpt_saves_a_checkpoint_that_loads_back(tmp_path, capsys):
    """``--save``: after a short run (one rank), a checkpoint of the model, the optimizer
    and the step count that ``lucid.load`` reads back into a fresh model."""
    module = load("train_char_gpt", False)
    path = tmp_path / "gpt.npz"
    assert module.main(["--steps", "2", "--text-mb", "0.05", "--no-progress", "--plot", "",
                        "--save", str(path)]) == 0
    assert f"checkpoint saved to {path}" in capsys.readouterr().out
    checkpoint = lucid.load(path)
    assert checkpoint["step"] == 2 and checkpoint["optimizer"]["state"]
    fresh = module.CharGPT()
    assert str(fresh.load_state_dict(checkpoint["model"])) == "<All keys matched successfully>"
