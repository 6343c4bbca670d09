"""Convolution, pooling and resizing layers against PyTorch's: outputs and gradients with
the same weights, parameter shapes and initialisation bounds, ``repr``, errors, and a small
CNN trained for three SGD steps eagerly and under ``lucid.compile``."""
import numpy as np
import pytest
import torch

import lucid
import lucid.nn as nn
import lucid.nn.functional as F

TNN, TF = torch.nn, torch.nn.functional
#: torch's own note about its 'same' padding with even kernels (a copy it makes)
pytestmark = pytest.mark.filterwarnings("ignore:Using padding='same':UserWarning")


def copy_params(src_torch, dst):
    for (name, p), (_, q) in zip(src_torch.named_parameters(), dst.named_parameters()):
        assert tuple(p.shape) == q.shape, name
        q._data = p.detach().numpy().copy()


def run_both(make, x, call=lambda m, x: m(x)):
    """Output and input/parameter gradients of the torch layer and its lucid twin."""
    tm = make(TNN).double()
    lm = make(nn)
    for p in lm.parameters():
        p._data = p._data.astype("float64")
    copy_params(tm, lm)
    rng = np.random.default_rng(3)
    xt = torch.tensor(x, requires_grad=True)
    xl = lucid.tensor(x, requires_grad=True)
    yt, yl = call(tm, xt), call(lm, xl)
    g = rng.standard_normal(tuple(yt.shape))
    (yt * torch.tensor(g)).sum().backward()
    (yl * lucid.tensor(g)).sum().backward()
    np.testing.assert_allclose(yl.numpy(), yt.detach().numpy(), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(xl.grad, xt.grad.numpy(), rtol=1e-10, atol=1e-12)
    for (name, p), (_, q) in zip(tm.named_parameters(), lm.named_parameters()):
        np.testing.assert_allclose(q.grad, p.grad.numpy(), rtol=1e-10, atol=1e-12, err_msg=name)


X4 = np.random.default_rng(0).standard_normal((2, 4, 7, 6))
X3 = np.random.default_rng(1).standard_normal((2, 4, 9))


@pytest.mark.parametrize("mode", ["zeros", "reflect", "replicate", "circular"])
def test_conv2d_padding_modes_match_torch(mode):
    run_both(lambda m: m.Conv2d(4, 6, (3, 2), stride=(1, 2), padding=(2, 1), groups=2, padding_mode=mode), X4)


@pytest.mark.parametrize("mode", ["zeros", "reflect", "circular"])
def test_conv_same_padding_with_modes_matches_torch(mode):
    run_both(lambda m: m.Conv1d(4, 3, 4, padding="same", dilation=2, padding_mode=mode), X3)
    run_both(lambda m: m.Conv2d(4, 2, (2, 3), padding="same", padding_mode=mode, bias=False), X4)


def test_conv3d_and_unbatched_inputs_match_torch():
    run_both(lambda m: m.Conv3d(4, 2, 2, padding=1, stride=(2, 1, 1)), X4[:1, :, :, :4, None].repeat(3, -1))
    run_both(lambda m: m.Conv2d(4, 3, 3), X4[0])
    run_both(lambda m: m.Conv1d(4, 3, 2, stride=2), X3[0])


def test_conv_transpose_layers_match_torch():
    run_both(lambda m: m.ConvTranspose2d(4, 6, (3, 2), stride=2, padding=1, output_padding=1, groups=2), X4)
    run_both(lambda m: m.ConvTranspose1d(4, 3, 3, stride=2, dilation=2), X3)
    run_both(lambda m: m.ConvTranspose1d(4, 3, 3, stride=3, bias=False), X3[0])


def test_conv_transpose_output_size_matches_torch():
    def call(m, x):
        return m(x, output_size=[14, 12])
    run_both(lambda m: m.ConvTranspose2d(4, 2, 3, stride=2, padding=1), X4, call)
    with pytest.raises(ValueError):
        nn.ConvTranspose2d(4, 2, 3, stride=2, padding=1)(lucid.tensor(X4), output_size=[16, 13])


def test_pool_and_resize_layers_match_torch():
    run_both(lambda m: m.MaxPool2d(3, stride=2, padding=1, ceil_mode=True), X4)
    run_both(lambda m: m.MaxPool1d(2), X3)
    run_both(lambda m: m.AvgPool2d(3, stride=2, padding=1, count_include_pad=False), X4)
    run_both(lambda m: m.AvgPool1d(4, stride=3, padding=2, ceil_mode=True), X3)
    run_both(lambda m: m.AdaptiveAvgPool2d((3, None)), X4)
    run_both(lambda m: m.AdaptiveMaxPool2d(4), X4)
    run_both(lambda m: m.AdaptiveAvgPool1d(5), X3)
    run_both(lambda m: m.Upsample(scale_factor=2, mode="bilinear"), X4)
    run_both(lambda m: m.UpsamplingBilinear2d(size=(5, 9)), X4)
    run_both(lambda m: m.UpsamplingNearest2d(scale_factor=3), X4)
    run_both(lambda m: m.PixelShuffle(2), X4)
    run_both(lambda m: m.PixelUnshuffle(2), X4[:, :, :6])
    run_both(lambda m: m.Unfold(2, padding=1), X4)

    def unpool(m, x):
        y, i = TF.max_pool2d(x, 2, return_indices=True) if isinstance(x, torch.Tensor) else \
            F.max_pool2d(x, 2, return_indices=True)
        return m(y, i, output_size=x.shape)
    run_both(lambda m: m.MaxUnpool2d(2), X4[:, :, :6, :5], unpool)


def test_max_pool_return_indices_match_torch():
    x = np.round(X4 * 2)  # ties: the first maximum wins, as in torch
    yt, it = TNN.MaxPool2d(3, 2, 1, return_indices=True)(torch.tensor(x))
    yl, il = nn.MaxPool2d(3, 2, 1, return_indices=True)(lucid.tensor(x))
    np.testing.assert_array_equal(yl.numpy(), yt.numpy())
    np.testing.assert_array_equal(il.numpy(), it.numpy())
    assert il.dtype == lucid.int64


@pytest.mark.parametrize("make", [
    lambda m: m.Conv1d(4, 6, 3), lambda m: m.Conv2d(2, 4, (3, 2), groups=2, bias=False),
    lambda m: m.Conv3d(3, 2, 2, stride=2, dilation=2), lambda m: m.ConvTranspose2d(4, 6, 3, groups=2),
    lambda m: m.ConvTranspose1d(3, 5, 4, stride=2, output_padding=1)])
def test_parameter_shapes_and_init_bounds_match_torch(make):
    tm, lm = make(TNN), make(nn)
    for (name, p), (_, q) in zip(tm.named_parameters(), lm.named_parameters()):
        assert tuple(p.shape) == q.shape, name
        assert q.dtype == lucid.float32
    fan_in = tm.weight.shape[1] * int(np.prod(tm.weight.shape[2:]))
    bound = 1 / np.sqrt(fan_in)
    for q in lm.parameters():
        assert np.abs(q.numpy()).max() <= bound
    assert repr(lm) == repr(tm)
    big = nn.Conv2d(16, 32, 3)  # 4608 draws: the bound is reached (to 1%) and not exceeded
    w = big.weight.numpy()
    assert 0.99 / np.sqrt(16 * 9) < np.abs(w).max() <= 1 / np.sqrt(16 * 9)
    assert abs(w.mean()) < 0.01


@pytest.mark.parametrize("make", [
    lambda m: m.Conv2d(2, 4, 3, padding="same", padding_mode="reflect"),
    lambda m: m.Conv2d(2, 4, 3, stride=2, padding=1, dilation=2, bias=False, padding_mode="circular"),
    lambda m: m.ConvTranspose2d(2, 4, 3, stride=2, output_padding=1, groups=2),
    lambda m: m.Conv1d(2, 4, 3, padding="valid"), lambda m: m.MaxPool2d(3, 2, 1), lambda m: m.MaxPool1d(2),
    lambda m: m.AvgPool1d(3), lambda m: m.AvgPool2d((2, 3), padding=1), lambda m: m.AdaptiveAvgPool2d((None, 3)),
    lambda m: m.AdaptiveMaxPool2d(2, return_indices=True), lambda m: m.Upsample(scale_factor=2),
    lambda m: m.Upsample(size=(3, 4), mode="bilinear", align_corners=True), lambda m: m.PixelShuffle(3),
    lambda m: m.MaxUnpool2d(2), lambda m: m.MaxUnpool1d(3, 2, 1), lambda m: m.MaxUnpool2d((2, 3), stride=1),
    lambda m: m.Fold((4, 5), 2)])
def test_repr_matches_torch(make):
    assert repr(make(nn)) == repr(make(TNN))


def same_error(fn):
    """``fn(torch)`` and ``fn(lucid)`` raise the same exception type; lucid's message
    names the op."""
    with pytest.raises(Exception) as t_err:
        fn(torch)
    with pytest.raises(type(t_err.value)) as l_err:
        fn(lucid)
    return str(l_err.value)


def _f(lib):
    return lib.nn.functional


ERRORS = {
    "rank": lambda lib: _f(lib).conv2d(lib.zeros(2, 3, 4, 4, 4), lib.zeros(2, 3, 3, 3)),
    "channels": lambda lib: _f(lib).conv2d(lib.zeros(1, 4, 5, 5), lib.zeros(2, 3, 3, 3)),
    "groups_weight": lambda lib: _f(lib).conv2d(lib.zeros(1, 4, 5, 5), lib.zeros(3, 2, 3, 3), groups=2),
    "kernel_too_big": lambda lib: _f(lib).conv1d(lib.zeros(1, 2, 3), lib.zeros(2, 2, 4)),
    "same_strided": lambda lib: _f(lib).conv1d(lib.zeros(1, 2, 5), lib.zeros(2, 2, 3), stride=2, padding="same"),
    "bad_padding_string": lambda lib: _f(lib).conv1d(lib.zeros(1, 2, 5), lib.zeros(2, 2, 3), padding="full"),
    "transpose_output_padding": lambda lib: _f(lib).conv_transpose1d(lib.zeros(1, 2, 5), lib.zeros(2, 2, 3),
                                                                     output_padding=1),
    "transpose_channels": lambda lib: _f(lib).conv_transpose2d(lib.zeros(1, 3, 5, 5), lib.zeros(2, 2, 3, 3)),
    "module_groups": lambda lib: lib.nn.Conv2d(3, 4, 3, groups=2),
    "module_out_groups": lambda lib: lib.nn.Conv2d(4, 3, 3, groups=2),
    "module_padding_mode": lambda lib: lib.nn.Conv2d(4, 3, 3, padding_mode="mirror"),
    "module_same_strided": lambda lib: lib.nn.Conv2d(4, 3, 3, stride=2, padding="same"),
    "transpose_padding_mode": lambda lib: lib.nn.ConvTranspose2d(4, 3, 3, padding_mode="reflect"),
    "pool_rank": lambda lib: _f(lib).max_pool2d(lib.zeros(4, 4), 2),
    "pool_pad": lambda lib: _f(lib).max_pool2d(lib.zeros(1, 1, 6, 6), 2, padding=2),
    "avg_pool_pad": lambda lib: _f(lib).avg_pool2d(lib.zeros(1, 1, 6, 6), 3, padding=2),
    "pool_too_small": lambda lib: _f(lib).max_pool2d(lib.zeros(1, 1, 2, 2), 3),
    "interp_both": lambda lib: _f(lib).interpolate(lib.zeros(1, 1, 4), size=3, scale_factor=2.0),
    "interp_neither": lambda lib: _f(lib).interpolate(lib.zeros(1, 1, 4)),
    "interp_corners_nearest": lambda lib: _f(lib).interpolate(lib.zeros(1, 1, 4), size=3, align_corners=True),
    "interp_mode_rank": lambda lib: _f(lib).interpolate(lib.zeros(1, 1, 4), size=3, mode="bilinear"),
    "pixel_shuffle_channels": lambda lib: _f(lib).pixel_shuffle(lib.zeros(1, 3, 2, 2), 2),
    "fold_blocks": lambda lib: _f(lib).fold(lib.zeros(1, 4, 5), (3, 3), 2),
    "unfold_rank": lambda lib: _f(lib).unfold(lib.zeros(1, 1, 3, 3, 3), 2),
    "unpool_rank": lambda lib: _f(lib).max_unpool2d(lib.zeros(2, 2), lib.zeros(2, 2, dtype=lib.int64), 2),
    "unpool_index": lambda lib: _f(lib).max_unpool2d(lib.zeros(1, 1, 2, 2), lib.full((1, 1, 2, 2), 99), 2),
    "unpool_output_size": lambda lib: _f(lib).max_unpool2d(lib.zeros(1, 1, 2, 2),
                                                           lib.zeros(1, 1, 2, 2, dtype=lib.int64), 2,
                                                           output_size=(6, 6)),
}


@pytest.mark.parametrize("name", sorted(ERRORS))
def test_errors_have_torch_types(name):
    assert same_error(ERRORS[name])


def test_mixed_dtypes_are_an_error():
    with pytest.raises(RuntimeError, match="conv2d"):
        F.conv2d(lucid.zeros(1, 2, 3, 3, dtype=lucid.float64), lucid.zeros(1, 2, 2, 2))


# ------------------------------------------------------------------ a small CNN, trained
class SmallCNN:
    """conv -> relu -> max pool -> conv -> adaptive avg pool -> flatten -> linear."""

    @staticmethod
    def make(lib):
        m = lib.nn

        class Net(m.Module):
            def __init__(self):
                super().__init__()
                self.conv1 = m.Conv2d(3, 6, 3, padding=1)
                self.pool = m.MaxPool2d(2)
                self.conv2 = m.Conv2d(6, 8, 3, stride=2, padding=1, groups=2)
                self.gap = m.AdaptiveAvgPool2d(1)
                self.fc = m.Linear(8, 5)

            def forward(self, x):
                x = self.pool(self.conv1(x).relu())
                x = self.gap(self.conv2(x))
                return self.fc(x.reshape(x.shape[0], -1))
        return Net()


def _torch_losses(x, y, steps=3):
    torch.manual_seed(0)
    net = SmallCNN.make(torch).double()
    opt = torch.optim.SGD(net.parameters(), lr=0.1, momentum=0.9)
    losses = []
    for _ in range(steps):
        opt.zero_grad()
        loss = TF.cross_entropy(net(torch.tensor(x)), torch.tensor(y))
        loss.backward()
        opt.step()
        losses.append(loss.item())
    return net, losses


def _lucid_twin(net):
    lnet = SmallCNN.make(lucid)
    for (name, p), (_, q) in zip(net.named_parameters(), lnet.named_parameters()):
        q._data = p.detach().numpy().copy()  # the weights before training: copied below
    return lnet


@pytest.mark.parametrize("compiled", [False, True])
def test_small_cnn_trains_like_torch(compiled):
    rng = np.random.default_rng(7)
    x, y = rng.standard_normal((4, 3, 9, 10)), rng.integers(0, 5, 4)
    torch.manual_seed(0)
    start = SmallCNN.make(torch).double()
    lnet = _lucid_twin(start)
    _, expected = _torch_losses(x, y)
    opt = lucid.optim.SGD(lnet.parameters(), lr=0.1, momentum=0.9)

    def step(xb, yb):
        opt.zero_grad()
        loss = F.cross_entropy(lnet(xb), yb)
        loss.backward()
        opt.step()
        return loss
    run = lucid.compile(step) if compiled else step
    losses = [run(lucid.tensor(x), lucid.tensor(y)).item() for _ in range(3)]
    np.testing.assert_allclose(losses, expected, rtol=1e-10)
    assert losses[2] < losses[0]


def test_reset_parameters_redraws_and_seeding_reproduces():
    lucid.manual_seed(3)
    a = nn.ConvTranspose2d(2, 4, 3)
    lucid.manual_seed(3)
    b = nn.ConvTranspose2d(2, 4, 3)
    np.testing.assert_array_equal(a.weight.numpy(), b.weight.numpy())
    np.testing.assert_array_equal(a.bias.numpy(), b.bias.numpy())
    before = a.weight.numpy().copy()
    a.reset_parameters()
    assert not np.array_equal(before, a.weight.numpy())
    assert np.abs(a.weight.numpy()).max() <= 1 / np.sqrt(4 * 9)
    assert nn.Conv2d(2, 4, 3, dtype=lucid.float64).weight.dtype == lucid.float64
