"""The rest of PyTorch's tensor protocol (lucid/tensor_ops.py, lucid/inplace.py) against
torch in float64: values and gradients eagerly, under lucid.compile and with the numpy
interpreter; errors of PyTorch's type naming the op and the shapes."""
from __future__ import annotations

import numpy as np
import pytest
import torch

import lucid

rng = np.random.default_rng(14)
DATA = rng.uniform(-2.0, 2.0, (3, 4))
BOUND = rng.uniform(-1.0, 1.0, (3, 4))


def leaves(*arrays):
    ours = [lucid.tensor(a, dtype=lucid.float64, requires_grad=True) for a in arrays]
    theirs = [torch.tensor(a, dtype=torch.float64, requires_grad=True) for a in arrays]
    return ours, theirs


def check(fn, tfn=None, arrays=(DATA,)):
    """fn on lucid tensors and (tfn or fn) on torch ones: values, then the gradients of a
    random weighting of the result, for every input."""
    xs, txs = leaves(*arrays)
    out, ref = fn(*xs), (tfn or fn)(*txs)
    assert tuple(out.shape) == tuple(ref.shape)
    np.testing.assert_allclose(out.numpy(), ref.detach().numpy(), rtol=1e-12, atol=1e-12)
    w = rng.standard_normal(tuple(ref.shape))
    (out * lucid.tensor(w)).sum().backward()
    (ref * torch.tensor(w)).sum().backward()
    for x, tx in zip(xs, txs):
        want = np.zeros(tx.shape) if tx.grad is None else tx.grad.numpy()
        got = np.zeros(x.shape) if x.grad is None else x.grad
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)


# ties with the bounds on purpose: PyTorch's clamp passes the gradient at x == bound
TIED = DATA.copy()
TIED[0, :2] = 0.5
TIED[1, 0] = -0.5

COMPOSITIONS = {
    "clamp_both": (lambda x: x.clamp(-0.5, 0.5), None, (TIED,)),
    "clamp_min": (lambda x: x.clamp(min=-0.5), None, (TIED,)),
    "clamp_max": (lambda x: x.clamp(max=0.5), None, (TIED,)),
    "clip_fn": (lambda x: lucid.clip(x, -1, 1), lambda x: torch.clip(x, -1, 1), (DATA,)),
    "clamp_min_over_max": (lambda x: x.clamp(1.0, -1.0), None, (DATA,)),
    "clamp_tensors": (lambda x, lo: x.clamp(lo, lo + 0.5), None, (DATA, BOUND)),
    "clamp_row_bound": (lambda x, lo: lucid.clamp(x, min=lo), lambda x, lo: torch.clamp(x, min=lo),
                        (DATA, BOUND[:1])),
    "minimum": (lambda x, y: lucid.minimum(x, y), lambda x, y: torch.minimum(x, y), (DATA, BOUND)),
    "maximum_method": (lambda x, y: x.maximum(y), None, (DATA, BOUND)),
    "lerp_number": (lambda x, y: x.lerp(y, 0.3), None, (DATA, BOUND)),
    "lerp_tensor": (lambda x, y, w: lucid.lerp(x, y, w), lambda x, y, w: torch.lerp(x, y, w),
                    (DATA, BOUND, DATA[:1] * 0.1)),
    "diff": (lambda x: x.diff(), None, (DATA,)),
    "diff_dim0_n2": (lambda x: x.diff(n=2, dim=0), None, (DATA,)),
    "diff_prepend_append": (lambda x, p: x.diff(dim=1, prepend=p, append=p * 2.0), None,
                            (DATA, BOUND[:, :2])),
    "masked_fill": (lambda x: x.masked_fill(x > 0.3, -7.0), None, (DATA,)),
    "masked_fill_row_mask": (lambda x, v: x.masked_fill(lucid.tensor([True, False, True, False]), v),
                             lambda x, v: x.masked_fill(torch.tensor([True, False, True, False]), v),
                             (DATA, np.array(2.5))),
    "clone": (lambda x: x.clone() * 1.0, None, (DATA,)),
    "mT": (lambda x: x.reshape(2, 3, 2).mT, None, (DATA,)),
    "view_as": (lambda x, y: x.view_as(y.T), None, (DATA, BOUND)),
    "contiguous_of_a_view": (lambda x: x[:, ::2].contiguous(), None, (DATA,)),
}


@pytest.mark.parametrize("name", sorted(COMPOSITIONS))
def test_compositions_match_torch(name):
    fn, tfn, arrays = COMPOSITIONS[name]
    check(fn, tfn, arrays)


@pytest.mark.parametrize("name", sorted(COMPOSITIONS))
def test_compositions_interpreted(name, monkeypatch):
    monkeypatch.setenv("LUCID_BACKEND", "interpret")
    fn, tfn, arrays = COMPOSITIONS[name]
    check(fn, tfn, arrays)


@pytest.mark.parametrize("name", sorted(COMPOSITIONS))
def test_compositions_compile_with_gradients(name):
    fn, tfn, arrays = COMPOSITIONS[name]
    xs = [lucid.tensor(a, dtype=lucid.float64, requires_grad=True) for a in arrays]
    w = lucid.tensor(rng.standard_normal(tuple(fn(*xs).shape)))

    def loss(*args):
        out = (fn(*args) * w).sum()
        out.backward()
        return out, [a.grad for a in args]

    _, txs = leaves(*arrays)
    ((tfn or fn)(*txs) * torch.tensor(w.numpy())).sum().backward()
    got, grads = lucid.compile(loss)(*xs)
    for g, tx in zip(grads, txs):
        want = np.zeros(tx.shape) if tx.grad is None else tx.grad.numpy()
        np.testing.assert_allclose(np.asarray(g) if g is not None else 0 * want, want, atol=1e-12)


def test_clamp_dtypes_follow_torch():
    i = lucid.tensor([1, 5, 9])
    for args, kwargs in [((2, 6), {}), ((0.5,), {}), ((), {"max": 4}), ((lucid.tensor([2, 2, 20]),), {})]:
        targs = [torch.tensor(a.numpy()) if isinstance(a, lucid.Tensor) else a for a in args]
        got, want = i.clamp(*args, **kwargs), torch.tensor([1, 5, 9]).clamp(*targs, **kwargs)
        assert str(got.dtype) == str(want.dtype).replace("torch.", "")
        np.testing.assert_array_equal(got.numpy(), want.numpy())
    nan = lucid.tensor([float("nan"), 3.0]).clamp(0.0, 1.0).numpy()
    assert np.isnan(nan[0]) and nan[1] == 1.0


def test_integer_and_bool_diff_and_masked_fill():
    x = np.array([[1, 4, 9], [2, 2, 7]])
    np.testing.assert_array_equal(lucid.tensor(x).diff(dim=0).numpy(), torch.tensor(x).diff(dim=0).numpy())
    b = np.array([True, True, False, True])
    np.testing.assert_array_equal(lucid.tensor(b).diff().numpy(), torch.tensor(b).diff().numpy())
    m = np.array([[True, False, True], [False, False, True]])
    got = lucid.tensor(x).masked_fill(lucid.tensor(m), 2.7)
    want = torch.tensor(x).masked_fill(torch.tensor(m), 2.7)
    assert got.dtype == "int64"
    np.testing.assert_array_equal(got.numpy(), want.numpy())
    assert lucid.tensor([5.0]).diff().shape == torch.tensor([5.0]).diff().shape == (0,)


def test_sizes_devices_and_bytes():
    x, tx = lucid.zeros(2, 3, 4, dtype="float64"), torch.zeros(2, 3, 4, dtype=torch.float64)
    assert x.size() == tx.size() and isinstance(x.size(), tuple) and isinstance(x.size(), lucid.Size)
    assert repr(x.size()) == "lucid.Size([2, 3, 4])"
    assert [x.size(d) for d in (0, -1, 2)] == [tx.size(d) for d in (0, -1, 2)]
    assert x.numel() == tx.numel() == x.size().numel() == 24 and lucid.tensor(3.0).numel() == 1
    assert x.nbytes == tx.nbytes == 192 and lucid.tensor([1, 2]).int().nbytes == 8
    assert x.dim() == x.ndim == 3 and x.shape == (2, 3, 4)
    assert x.device.type == "cpu" and str(x.device) == "cpu" and x.device == "cpu"
    assert x.device == lucid.device("cpu") and repr(x.device) == repr(tx.device)
    assert x.to(x.device) is x
    assert lucid.tensor([1.0]).is_floating_point() and not lucid.tensor([1]).is_floating_point()
    with pytest.raises(IndexError, match=r"size: dimension out of range .*got 3"):
        x.size(3)
    with pytest.raises(RuntimeError, match="device type"):
        lucid.device("tpu")


def test_new_tensors_take_dtype_from_self():
    x, tx = lucid.tensor([1, 2]), torch.tensor([1, 2])
    for name, args in [("new_zeros", (2, 3)), ("new_ones", ((3,),)), ("new_full", ((2,), 7.9)),
                       ("new_tensor", ([1.5, 2.5],))]:
        got, want = getattr(x, name)(*args), getattr(tx, name)(*args)
        assert str(got.dtype) == str(want.dtype).replace("torch.", "")
        np.testing.assert_array_equal(got.numpy(), want.numpy())
    with pytest.raises(RuntimeError, match="lucid runs on the cpu only"):
        x.new_ones(2, device="cuda")
    f = lucid.tensor([1.0]).new_zeros(2, dtype=lucid.float64, requires_grad=True, device=x.device)
    assert f.dtype == "float64" and f.requires_grad and f.is_leaf
    src = lucid.tensor([1.0, 2.0])
    copy = src.new_tensor(src)
    copy.fill_(0.0)
    assert src.tolist() == [1.0, 2.0]
    assert lucid.tensor([1, 2]).type_as(lucid.tensor([0.5])).dtype == "float32"


def test_clone_copies_and_contiguous_keeps_contiguous():
    x = lucid.tensor(DATA)
    assert not np.shares_memory(x.clone().numpy(), x.numpy())
    assert x.contiguous() is x
    v = x[:, ::2]
    c = v.contiguous()
    assert c is not v and c.numpy().flags.c_contiguous
    np.testing.assert_array_equal(c.numpy(), v.numpy())


def test_iteration_len_bool_and_array():
    x, tx = lucid.tensor(DATA), torch.tensor(DATA)
    rows = list(x)
    assert len(rows) == len(x) == 3
    for r, tr in zip(rows, tx):
        np.testing.assert_array_equal(r.numpy(), tr.numpy())
    with pytest.raises(TypeError, match="iteration over a 0-d tensor"):
        iter(lucid.tensor(1.0))
    with pytest.raises(TypeError, match="len"):
        len(lucid.tensor(1.0))
    assert bool(lucid.tensor([2.0])) and not bool(lucid.tensor(0))
    np.testing.assert_array_equal(np.asarray(x), DATA)


def test_mT_and_T():
    x = lucid.tensor(DATA)
    np.testing.assert_array_equal(x.mT.numpy(), torch.tensor(DATA).mT.numpy())
    np.testing.assert_array_equal(x.T.numpy(), DATA.T)
    with pytest.raises(RuntimeError, match=r"mT: .*matrices.*Got 1-D tensor with shape \(3,\)"):
        lucid.zeros(3).mT


def test_bad_input_errors_name_the_op():
    x = lucid.tensor(DATA)
    with pytest.raises(ValueError, match="clamp: at least one of 'min' or 'max'"):
        x.clamp()
    with pytest.raises(ValueError, match=r"clamp: shapes \(3, 4\) and \(2,\) do not broadcast"):
        x.clamp(lucid.zeros(2, dtype="float64"))
    with pytest.raises(NotImplementedError, match=r"clamp: not implemented for bool tensors \(shape \(1,\)\)"):
        lucid.tensor([True]).clamp(False, True)
    assert lucid.tensor([True]).clamp(0, 1).dtype == "int64"   # promoted, as torch
    with pytest.raises(TypeError, match="masked_fill: only supports boolean masks"):
        x.masked_fill(lucid.zeros(3, 4), 1.0)
    with pytest.raises(ValueError, match=r"masked_fill: the mask of shape \(5,\) does not broadcast"):
        x.masked_fill(lucid.tensor([True] * 5), 1.0)
    with pytest.raises(ValueError, match=r"masked_fill: the mask of shape \(2, 3, 4\)"):
        x.masked_fill(lucid.tensor(np.ones((2, 3, 4), bool)), 1.0)
    with pytest.raises(ValueError, match="masked_fill: only supports a 0-dimensional value tensor"):
        x.masked_fill(x > 0, lucid.zeros(2))
    with pytest.raises(TypeError, match="lerp: expected input, end and weight of one floating dtype"):
        x.lerp(lucid.tensor(BOUND).float(), 0.5)   # float64 and float32
    with pytest.raises(TypeError, match="lerp"):
        lucid.tensor([1, 2]).lerp(lucid.tensor([3, 4]), 0.5)
    with pytest.raises(ValueError, match=r"lerp: shapes \(3, 4\) and \(2,\) do not broadcast"):
        x.lerp(lucid.zeros(2, dtype="float64"), 0.5)
    with pytest.raises(RuntimeError, match="diff: expects input to be at least one-dimensional"):
        lucid.tensor(1.0).diff()
    with pytest.raises(RuntimeError, match="diff: order must be non-negative"):
        x.diff(n=-1)
    with pytest.raises(IndexError, match="diff: dimension out of range"):
        x.diff(dim=2)
    with pytest.raises(RuntimeError, match=r"diff: expects prepend .* shapes \(4,\) and \(3, 4\)"):
        x.diff(prepend=lucid.zeros(4, dtype="float64"))
    with pytest.raises(ValueError, match="concat"):
        x.diff(dim=0, prepend=lucid.zeros(1, 3, dtype="float64"))


# ---------------------------------------------------------------- in-place ops
INPLACE = [
    ("add_", lambda t, o: t.add_(o), (BOUND,)),
    ("add_alpha", lambda t, o: t.add_(o, alpha=2.5), (BOUND,)),
    ("add_number", lambda t, o: t.add_(3), ()),
    ("sub_", lambda t, o: t.sub_(o, alpha=-1), (BOUND[0],)),
    ("mul_", lambda t, o: t.mul_(o), (BOUND,)),
    ("div_", lambda t, o: t.div_(o), (BOUND[:, :1],)),
    ("div_number", lambda t, o: t.div_(4), ()),
    ("zero_", lambda t, o: t.zero_(), ()),
    ("fill_", lambda t, o: t.fill_(-1.25), ()),
    ("fill_tensor", lambda t, o: t.fill_(o), (np.array(0.75),)),
    ("copy_", lambda t, o: t.copy_(o), (BOUND[1],)),
    ("clamp_", lambda t, o: t.clamp_(-0.5, 0.5), ()),
    ("clamp_tensor", lambda t, o: t.clamp_(max=o), (BOUND,)),
]


@pytest.mark.parametrize("name,fn,others", INPLACE, ids=[n for n, _, _ in INPLACE])
def test_inplace_ops_match_torch_and_write_views(name, fn, others):
    base = lucid.tensor(np.stack([DATA, DATA]))
    tbase = torch.tensor(np.stack([DATA, DATA]))
    x, tx = base[1], tbase[1]   # a view: the write must reach its base, as in PyTorch
    before = x.numpy()
    args = [lucid.tensor(o) for o in others] + [None] * (1 - len(others))
    targs = [torch.tensor(o) for o in others] + [None] * (1 - len(others))
    out, tout = fn(x, *args), fn(tx, *targs)
    assert out is x and tout is tx
    np.testing.assert_allclose(x.numpy(), tx.numpy(), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(base.numpy(), tbase.numpy(), rtol=1e-12, atol=1e-12)
    assert np.shares_memory(x.numpy(), before)


def test_inplace_dtype_rules_follow_torch():
    i = lucid.tensor([1, 2, 3])
    with pytest.raises(RuntimeError, match=r"add_: result type Float can't be cast to the desired "
                                           r"output type Long"):
        i.add_(0.5)
    with pytest.raises(TypeError, match="div_: result type"):   # also a TypeError (lucid's before)
        i.div_(2)
    assert i.tolist() == [1, 2, 3]          # nothing written on refusal
    assert i.mul_(lucid.tensor([2], dtype="int32")).tolist() == [2, 4, 6]
    f = lucid.tensor([1.0, 2.0])
    assert f.add_(lucid.tensor([1, 1])).dtype == "float32" and f.tolist() == [2.0, 3.0]
    assert i.copy_(lucid.tensor([1.9, -2.9, 3.5])).tolist() == torch.tensor([1, 2, 3]).copy_(
        torch.tensor([1.9, -2.9, 3.5])).tolist()
    assert i.fill_(7.9).tolist() == [7, 7, 7]
    assert lucid.tensor([True, False]).fill_(0).tolist() == [False, False]


def test_inplace_shape_errors():
    x = lucid.zeros(3)
    with pytest.raises(ValueError, match=r"add_: output with shape \(3,\) doesn't match the broadcast "
                                         r"shape \(2, 3\)"):
        x.add_(lucid.zeros(2, 3))
    with pytest.raises(ValueError, match=r"copy_: the source of shape \(2,\) does not broadcast"):
        x.copy_(lucid.zeros(2))
    with pytest.raises(ValueError, match=r"copy_: the source of shape \(1, 3\)"):
        x.copy_(lucid.zeros(1, 3))
    with pytest.raises(ValueError, match="fill_: only supports 0-dimension value tensor"):
        x.fill_(lucid.zeros(3))
    with pytest.raises(TypeError, match="fill_: the value must be a number"):
        x.fill_("1")
    with pytest.raises(RuntimeError, match="more than one element of the written-to tensor"):
        lucid.zeros(3).expand(2, 3).add_(1.0)


def test_inplace_refuses_leaves_and_records_other_writes_as_torch():
    w = lucid.tensor([1.0, 2.0], requires_grad=True)
    tw = torch.tensor([1.0, 2.0], requires_grad=True)
    with pytest.raises(RuntimeError, match="a leaf Variable that requires grad is being used in an "
                                           "in-place operation"):
        tw.add_(1.0)
    with pytest.raises(RuntimeError, match="add_: a leaf Variable that requires grad is being used in "
                                           r"an in-place operation \(shape \(2,\)\)"):
        w.add_(1.0)
    y, ty = w * 2.0, tw * 2.0
    y.mul_(2.0), ty.mul_(2.0)                # a recorded tensor takes the op's history
    with lucid.no_grad(), torch.no_grad():
        y.add_(1.0), ty.add_(1.0)            # allowed, not recorded, as in PyTorch
        w.sub_(lucid.tensor([0.5, 0.5])), tw.sub_(torch.tensor([0.5, 0.5]))  # an optimiser's step
    assert y.tolist() == ty.tolist() and not y.is_leaf and y.grad_fn.name() == "MulBackward0"
    assert w.tolist() == [0.5, 1.5] and w.requires_grad and w.grad is None
    (y * w).sum().backward(), (ty * tw).sum().backward()
    np.testing.assert_allclose(w.grad.numpy(), tw.grad.numpy())
    z = w * 1.0
    z.zero_()                                # still recorded: zero gradient to its history
    assert z.requires_grad and z.tolist() == [0.0, 0.0]
    z.sum().backward()
    np.testing.assert_allclose(w.grad.numpy(), tw.grad.numpy())


def test_inplace_interpreted(monkeypatch):
    monkeypatch.setenv("LUCID_BACKEND", "interpret")
    x = lucid.tensor(DATA.copy())
    x.add_(lucid.tensor(BOUND), alpha=2.0).clamp_(-1.0, 1.0).mul_(3.0)
    np.testing.assert_allclose(x.numpy(), np.clip(DATA + 2.0 * BOUND, -1.0, 1.0) * 3.0, rtol=1e-12)


def test_inplace_under_compile():
    state = lucid.tensor([0.0, 1.0], dtype="float64")

    def step(x):
        y = x * 2.0
        y.add_(1.0)               # computed inside: rebound
        state.add_(y)             # from outside: written at every call
        return y

    f = lucid.compile(step)
    x = lucid.tensor([1.0, 2.0], dtype="float64")
    np.testing.assert_allclose(f(x).numpy(), [3.0, 5.0])
    np.testing.assert_allclose(f(x).numpy(), [3.0, 5.0])
    np.testing.assert_allclose(state.numpy(), [6.0, 11.0])

    def bad(x):
        x.mul_(2.0)
        return x
    with pytest.raises(lucid.TracingError, match="mul_: an argument of a compiled function"):
        lucid.compile(bad)(x)


def test_cat_of_three_after_cat_of_two_on_the_same_axis():
    """The concat chain is keyed by the operand count (diff's prepend/append joins three)."""
    a, b = lucid.zeros(2, 1), lucid.ones(2, 2)
    assert lucid.cat([a, b], 1).shape == (2, 3)
    assert lucid.cat([a, b, a], 1).shape == (2, 4)
    assert lucid.cat([b, a, b, a], 1).tolist() == [[1, 1, 0, 1, 1, 0]] * 2
