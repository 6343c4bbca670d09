"""Behaviour of the shape, index and function-form API beyond the op table: PyTorch's
error types for bad arguments (each case runs on both libraries), views, in-place
``scatter_add_`` and the eager-only ops under ``lucid.compile``."""
from __future__ import annotations

import numpy as np
import pytest
import torch

import lucid

X = np.arange(6.0).reshape(2, 3)


def _both(lib):
    x = lib.tensor(X)
    return x, lib.tensor([[0, 2]]), lib


# each case: (name, fn(x, i, lib)) where x is the 2x3 float64 tensor 0..5 and i = [[0, 2]]
ERROR_CASES = [
    ("view_transposed", lambda x, i, lib: x.T.view(-1)),
    ("view_bad_size", lambda x, i, lib: x.view(4)),
    ("view_two_inferred", lambda x, i, lib: x.view(-1, -1)),
    ("unflatten_bad_sizes", lambda x, i, lib: x.unflatten(1, (2, 2))),
    ("unflatten_bad_inferred", lambda x, i, lib: x.unflatten(1, (2, -1))),
    ("unflatten_bad_dim", lambda x, i, lib: x.unflatten(2, (1, 3))),
    ("broadcast_to_mismatch", lambda x, i, lib: lib.broadcast_to(x, (3, 3))),
    ("broadcast_to_fewer_dims", lambda x, i, lib: x.broadcast_to((3,))),
    ("repeat_fewer_dims", lambda x, i, lib: x.repeat(2)),
    ("split_zero", lambda x, i, lib: x.split(0)),
    ("split_bad_sections", lambda x, i, lib: x.split([1, 1], dim=1)),
    ("split_bad_dim", lambda x, i, lib: x.split(1, dim=2)),
    ("chunk_zero", lambda x, i, lib: x.chunk(0)),
    ("unbind_bad_dim", lambda x, i, lib: x.unbind(2)),
    ("tril_1d", lambda x, i, lib: x[0].tril()),
    ("triu_0d", lambda x, i, lib: lib.triu(x[0, 0])),
    ("flip_repeated_dim", lambda x, i, lib: x.flip(0, 0)),
    ("flip_bad_dim", lambda x, i, lib: x.flip(2)),
    ("roll_misaligned", lambda x, i, lib: x.roll(1, (0, 1))),
    ("roll_flat_two_shifts", lambda x, i, lib: x.roll((1, 2))),
    ("roll_bad_dim", lambda x, i, lib: x.roll(1, 3)),
    ("narrow_start", lambda x, i, lib: x.narrow(1, 4, 0)),
    ("narrow_too_long", lambda x, i, lib: x.narrow(1, 2, 2)),
    ("narrow_0d", lambda x, i, lib: x[0, 0].narrow(0, 0, 1)),
    ("movedim_mismatch", lambda x, i, lib: x.movedim((0, 1), (0,))),
    ("movedim_repeated", lambda x, i, lib: x.movedim((0, 0), (0, 1))),
    ("movedim_bad_dim", lambda x, i, lib: x.movedim(0, 2)),
    ("swapaxes_bad_dim", lambda x, i, lib: lib.swapaxes(x, 0, 2)),
    ("squeeze_bad_dim", lambda x, i, lib: x.squeeze(5)),
    ("squeeze_bad_tuple", lambda x, i, lib: x.squeeze((0, 2))),
    ("unsqueeze_bad_dim", lambda x, i, lib: x.unsqueeze(-4)),
    ("gather_float_index", lambda x, i, lib: x.gather(1, i.to(lib.float64))),
    ("gather_bool_index", lambda x, i, lib: lib.gather(x, 1, i > 0)),
    ("gather_rank", lambda x, i, lib: x.gather(1, i[0])),
    ("gather_out_of_range", lambda x, i, lib: x.gather(1, i + 1)),
    ("gather_negative", lambda x, i, lib: x.gather(1, i - 1)),
    ("gather_too_large", lambda x, i, lib: x.gather(1, lib.zeros((3, 1), dtype=lib.int64))),
    ("gather_bad_dim", lambda x, i, lib: x.gather(2, i)),
    ("take_out_of_range", lambda x, i, lib: x.take(i * 3)),
    ("take_negative_out_of_range", lambda x, i, lib: lib.take(x, i - 7)),
    ("take_float_index", lambda x, i, lib: x.take(i.to(lib.float32))),
    ("index_select_2d_index", lambda x, i, lib: x.index_select(1, i)),
    ("index_select_float_index", lambda x, i, lib: x.index_select(1, i[0].to(lib.float64))),
    ("index_select_0d_two", lambda x, i, lib: x[0, 0].index_select(0, i[0])),
    ("index_select_out_of_range", lambda x, i, lib: x.index_select(1, i[0] + 1)),
    ("index_select_negative", lambda x, i, lib: x.index_select(1, i[0] - 1)),
    ("index_select_bad_dim", lambda x, i, lib: x.index_select(2, i[0])),
    ("scatter_add_float_index", lambda x, i, lib: x.scatter_add(1, i.to(lib.float32), x)),
    ("scatter_add_dtype", lambda x, i, lib: x.scatter_add(1, i, x.to(lib.float32))),
    ("scatter_add_out_of_range", lambda x, i, lib: x.scatter_add(1, i + 1, x)),
    ("scatter_add_index_larger", lambda x, i, lib: x.scatter_add(1, lib.zeros((1, 4), dtype=lib.int64), x)),
    ("scatter_add_0d_out_of_range", lambda x, i, lib: x[0, 0].scatter_add(0, i[0, 1], x[0, 0])),
    ("scatter_add_rank", lambda x, i, lib: lib.scatter_add(x, 1, i[0], x)),
    ("masked_select_not_bool", lambda x, i, lib: x.masked_select(i)),
    ("masked_select_shapes", lambda x, i, lib: lib.masked_select(x, lib.tensor([True, False]))),
    ("floor_divide_int_zero", lambda x, i, lib: lib.floor_divide(i, i)),
    ("remainder_int_zero", lambda x, i, lib: lib.remainder(i, 0)),
    ("fmod_int_zero", lambda x, i, lib: lib.fmod(i, i - 2)),
    ("div_trunc_int_zero", lambda x, i, lib: i.div(i, rounding_mode="trunc")),
    ("div_floor_int_zero", lambda x, i, lib: lib.div(i, i * 0, rounding_mode="floor")),
    ("add_float_alpha_on_ints", lambda x, i, lib: lib.add(i, i, alpha=0.5)),
    ("sub_bool", lambda x, i, lib: lib.sub(i > 0, i > 1)),
    ("round_decimals_int", lambda x, i, lib: lib.round(i, decimals=1)),
    ("t_of_3d", lambda x, i, lib: x.reshape(1, 2, 3).t()),
]


@pytest.mark.parametrize("name,fn", ERROR_CASES, ids=[c[0] for c in ERROR_CASES])
def test_errors_have_torch_type(name, fn):
    with pytest.raises(Exception) as expected:
        fn(*_both(torch))
    with pytest.raises(expected.type):
        fn(*_both(lucid))


def test_error_messages_name_the_op_and_shapes():
    x = lucid.tensor(X)
    with pytest.raises(RuntimeError, match=r"view size is not compatible.*\(3, 2\)"):
        x.T.view(6)
    with pytest.raises(RuntimeError, match="gather: index 3 is out of bounds for dimension 1 with size 3"):
        x.gather(1, lucid.tensor([[3]]))
    with pytest.raises(RuntimeError, match="index_select: index 5 is out of bounds"):
        x.index_select(1, lucid.tensor([5]))
    with pytest.raises(RuntimeError, match=r"scatter_add: .*int64 for index"):
        x.scatter_add(1, lucid.tensor([[0.0]]), x)
    with pytest.raises(RuntimeError, match="rounding_mode"):
        lucid.div(x, x, rounding_mode="round")
    with pytest.raises(RuntimeError, match=r"t: .*<= 2 dimensions.*\(1, 2, 3\)"):
        lucid.t(x.reshape(1, 2, 3))


def test_div_bad_rounding_mode_is_a_runtime_error_as_torch():
    with pytest.raises(RuntimeError):
        torch.div(torch.ones(2), 2, rounding_mode="up")
    with pytest.raises(RuntimeError):
        lucid.ones(2).div(2, rounding_mode="up")


def test_view_shares_memory_and_reshape_copies_a_transposed_tensor():
    x = lucid.tensor(X)
    assert np.shares_memory(x.view(-1)._data, x._data)
    assert x.T.reshape(-1).tolist() == [0.0, 3.0, 1.0, 4.0, 2.0, 5.0]


def test_split_chunk_unbind_narrow_give_views():
    x = lucid.tensor(X)
    for piece in (*x.split(1, dim=1), *x.chunk(2), *x.unbind(1), x.narrow(1, 1, 2)):
        assert np.shares_memory(piece._data, x._data)


def test_chunk_may_give_fewer_pieces_as_torch():
    for n, chunks in [(5, 3), (6, 4), (1, 3), (0, 2), (7, 7)]:
        got = [t.shape for t in lucid.zeros(n).chunk(chunks)]
        assert got == [tuple(t.shape) for t in torch.zeros(n).chunk(chunks)], (n, chunks)


def test_squeeze_unsqueeze_forms_match_torch():
    a = np.zeros((1, 3, 1, 2))
    for fn in (lambda t: t.squeeze(), lambda t: t.squeeze((0, 2)), lambda t: t.squeeze(-2),
               lambda t: t.squeeze(1), lambda t: t.unsqueeze(-1), lambda t: t.unsqueeze(-5),
               lambda t: t.unsqueeze(4)):
        assert fn(lucid.tensor(a)).shape == tuple(fn(torch.tensor(a)).shape)


def test_scatter_add_inplace_updates_views_and_refuses_a_leaf_that_requires_grad():
    base = lucid.zeros(2, 3)
    row = base[1]
    base.scatter_add_(1, lucid.tensor([[0, 0], [2, 1]]), lucid.tensor([[1.0, 2.0], [3.0, 4.0]]))
    assert base.tolist() == [[3.0, 0.0, 0.0], [0.0, 4.0, 3.0]]
    assert row.tolist() == [0.0, 4.0, 3.0]
    w = lucid.zeros(3, requires_grad=True)
    with pytest.raises(RuntimeError, match="leaf"):
        w.scatter_add_(0, lucid.tensor([0]), lucid.tensor([1.0]))
    with lucid.no_grad():
        w.scatter_add_(0, lucid.tensor([0, 0]), lucid.tensor([1.0, 1.0]))
    assert w.tolist() == [2.0, 0.0, 0.0]


def test_scatter_add_inplace_on_a_non_leaf_keeps_both_gradients():
    rng = np.random.default_rng(0)
    a, s = rng.standard_normal((3, 4)), rng.standard_normal((3, 2))
    index = np.array([[0, 3], [1, 1], [2, 0]])
    grads = []
    for lib in (torch, lucid):
        w, src = lib.tensor(a, requires_grad=True), lib.tensor(s, requires_grad=True)
        x = w * 3.0
        x.scatter_add_(1, lib.tensor(index), src * src)
        (x * x).sum().backward()
        grads.append((np.asarray(x.detach().numpy()), np.asarray(w.grad), np.asarray(src.grad)))
    for got, want in zip(grads[1], grads[0]):
        np.testing.assert_allclose(got, want, rtol=1e-12)


def test_data_dependent_ops_refuse_tracing():
    f = lucid.compile(lambda x: x.masked_select(x > 0))
    with pytest.raises(lucid.TracingError, match="masked_select"):
        f(lucid.tensor([1.0, -1.0]))
    g = lucid.compile(lambda x: x.nonzero())
    with pytest.raises(lucid.TracingError, match="nonzero"):
        g(lucid.tensor([1.0, -1.0]))


def test_function_forms_and_methods_exist_where_torch_has_them():
    names = ["add", "sub", "mul", "div", "true_divide", "floor_divide", "remainder", "fmod", "pow",
             "neg", "abs", "sign", "exp", "log", "log2", "log1p", "expm1", "sqrt", "rsqrt", "sin",
             "cos", "tanh", "sigmoid", "erf", "erfc", "floor", "ceil", "round", "trunc", "eq", "ne", "lt",
             "le", "gt", "ge", "logical_xor", "isnan", "isfinite", "isinf", "square", "reciprocal",
             "unflatten", "broadcast_to", "split", "chunk", "unbind", "tril", "triu", "flip", "roll",
             "narrow", "movedim", "swapaxes", "swapdims", "gather", "take", "index_select",
             "scatter_add", "masked_select", "nonzero"]
    for name in names:
        assert callable(getattr(lucid, name)), name
        if hasattr(torch.Tensor, name):
            assert callable(getattr(lucid.Tensor, name)), name
    assert hasattr(lucid.Tensor, "repeat") and hasattr(lucid.Tensor, "scatter_add_")


def test_number_first_operands_stay_weak():
    x = lucid.tensor([1.0, 2.0])
    assert lucid.pow(2, x).tolist() == [2.0, 4.0] and lucid.pow(2, x).dtype == lucid.float32
    assert lucid.sub(1, x, alpha=2).tolist() == [-1.0, -3.0]
    assert lucid.eq(x, 2).tolist() == [False, True]


def test_integer_rounding_division_matches_torch_for_every_sign():
    a = np.array([7, -7, 7, -7, 0, 5, -5])
    b = np.array([2, 2, -2, -2, 3, 5, 5])
    for mode in ("trunc", "floor"):
        want = torch.div(torch.tensor(a), torch.tensor(b), rounding_mode=mode)
        got = lucid.div(lucid.tensor(a), lucid.tensor(b), rounding_mode=mode)
        assert got.tolist() == want.tolist() and str(got.dtype) == "int64"
    want = torch.fmod(torch.tensor(a), torch.tensor(b)).tolist()
    assert lucid.fmod(lucid.tensor(a), lucid.tensor(b)).tolist() == want


def test_fmod_and_trunc_keep_signed_zeros_and_specials():
    a = np.array([-0.0, 0.0, -3.0, 3.0, np.inf, np.nan, 5.5])
    b = np.array([2.0, -2.0, 3.0, -3.0, 2.0, 1.0, np.inf])
    want = torch.fmod(torch.tensor(a), torch.tensor(b)).numpy()
    got = lucid.fmod(lucid.tensor(a), lucid.tensor(b)).numpy()
    np.testing.assert_array_equal(got, want)
    assert (np.signbit(got) == np.signbit(want)).all()
    t = np.array([-0.5, 0.5, -2.7, np.inf, -np.inf, np.nan])
    np.testing.assert_array_equal(lucid.trunc(lucid.tensor(t)).numpy(), torch.trunc(torch.tensor(t)).numpy())


def test_int32_indices_are_accepted_where_torch_accepts_them():
    a = np.arange(12.0).reshape(3, 4)
    i = np.array([[3, 0], [1, 1], [0, 2]], dtype=np.int32)
    for fn in (lambda lib, x, i: x.gather(1, i), lambda lib, x, i: x.scatter_add(1, i, x[:, :2] * 1.0),
               lambda lib, x, i: x.index_select(1, i[:, 0])):
        want = fn(torch, torch.tensor(a), torch.tensor(i))
        got = fn(lucid, lucid.tensor(a), lucid.tensor(i))
        np.testing.assert_array_equal(got.numpy(), want.numpy())


def test_scatter_add_inplace_on_views_follows_torch():
    """A view of a leaf that requires grad is refused; a view of a recorded tensor is
    written and its base takes the new history (PyTorch's CopySlices)."""
    w = lucid.zeros(2, 3, requires_grad=True)
    i, s = lucid.tensor([0]), lucid.tensor([1.0])
    for view in (w.reshape(6), w.T):
        with pytest.raises(RuntimeError, match="a view of a leaf Variable that requires grad"):
            view.scatter_add_(0, i, s) if view.ndim == 1 else view.scatter_add_(0, i[None], s[None])
    assert w.tolist() == [[0.0] * 3] * 2
    grads = []
    for lib in (lucid, torch):
        w = lib.tensor([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]], requires_grad=True)
        src = lib.tensor([1.5, 2.5], requires_grad=True)
        h = w * 2.0
        h[0].scatter_add_(0, lib.tensor([2, 2]), src)
        (h * h).sum().backward()
        grads.append((h.tolist(), w.grad.tolist(), src.grad.tolist()))
    assert grads[0] == grads[1]


def test_zero_dim_index_ops_match_torch():
    for fn in (lambda lib, x, i: x.scatter_add(0, i, x * 2), lambda lib, x, i: x.gather(0, i),
               lambda lib, x, i: x.index_select(0, i), lambda lib, x, i: x.take(i)):
        want = fn(torch, torch.tensor(3.0), torch.tensor(0))
        got = fn(lucid, lucid.tensor(3.0), lucid.tensor(0))
        assert got.shape == tuple(want.shape) and got.item() == want.item()


def test_keyword_spellings_match_torch():
    a = np.arange(24.0).reshape(2, 3, 4)
    for fn in (lambda lib, x: x.flip(dims=[0, 2]), lambda lib, x: lib.flip(x, dims=(1,)),
               lambda lib, x: lib.swapdims(x, dim0=0, dim1=2), lambda lib, x: lib.swapaxes(x, axis0=1, axis1=2),
               lambda lib, x: x.split(split_size=2, dim=2)[1], lambda lib, x: lib.split(x, split_size_or_sections=[1, 2], dim=1)[1],
               lambda lib, x: x.narrow(dim=1, start=1, length=2), lambda lib, x: x.movedim(source=0, destination=2),
               lambda lib, x: x.roll(shifts=1, dims=2), lambda lib, x: x.tril(diagonal=1),
               lambda lib, x: x.unflatten(dim=2, sizes=(2, 2)), lambda lib, x: x.chunk(chunks=2, dim=2)[0],
               lambda lib, x: x.gather(dim=2, index=lib.zeros((2, 3, 1), dtype=lib.int64), sparse_grad=False)):
        np.testing.assert_array_equal(fn(lucid, lucid.tensor(a)).numpy(), fn(torch, torch.tensor(a)).numpy())


def test_stack_bad_input_errors_match_torch():
    a, b = np.zeros((2, 3), np.float32), np.zeros((3, 2), np.float32)
    for dim in (3, -4):
        with pytest.raises(IndexError, match="stack: dimension out of range"):
            lucid.stack([lucid.tensor(a), lucid.tensor(a)], dim)
        with pytest.raises(IndexError):
            torch.stack([torch.tensor(a), torch.tensor(a)], dim)
    with pytest.raises(ValueError, match="equal size"):
        lucid.stack([lucid.tensor(a), lucid.tensor(b)])
    with pytest.raises(ValueError, match="non-empty"):
        lucid.stack([])
    mixed = lucid.stack([lucid.tensor(a), lucid.tensor(a.astype(np.float64))], -1)   # promoted, as torch
    assert mixed.dtype == lucid.float64 and mixed.shape == (2, 3, 2)
