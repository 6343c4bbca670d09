"""lucid.reductions against PyTorch: values and dtypes in float64 (and ints/bools),
gradients in float64, in the three execution modes (eager native, ``lucid.compile``,
``LUCID_BACKEND=interpret``), with dims as ints, negative ints and tuples, keepdim,
ties, zeros (prod), NaNs (argmax), empty reductions, and PyTorch's error types."""
from __future__ import annotations

import numpy as np
import pytest
import torch

import lucid
from lucid.compiler import compile_graph
from lucid_ir.builder import GraphBuilder
from lucid_ir.interpreter import interpret

# (id, lucid call, torch call): both take the tensor module and the input
CASES = [
    ("sum", lambda m, x: m.sum(x)),
    ("sum_dim", lambda m, x: m.sum(x, dim=1)),
    ("sum_tuple_keep", lambda m, x: m.sum(x, dim=(0, -1), keepdim=True)),
    ("mean_neg", lambda m, x: m.mean(x, dim=-2)),
    ("mean_tuple", lambda m, x: m.mean(x, (0, 2))),
    ("prod_all", lambda m, x: m.prod(x)),
    ("prod_dim", lambda m, x: m.prod(x, 1)),
    ("prod_keep", lambda m, x: m.prod(x, dim=-1, keepdim=True)),
    ("amax", lambda m, x: m.amax(x, dim=(1, 2))),
    ("amin_keep", lambda m, x: m.amin(x, dim=0, keepdim=True)),
    ("amax_all", lambda m, x: m.amax(x)),
    ("max_all", lambda m, x: m.max(x)),
    ("min_all", lambda m, x: m.min(x)),
    ("max_dim_values", lambda m, x: m.max(x, dim=1)[0]),
    ("min_dim_values_keep", lambda m, x: m.min(x, -1, keepdim=True).values),
    ("var", lambda m, x: m.var(x)),
    ("var_dim", lambda m, x: m.var(x, dim=1)),
    ("var_c0_keep", lambda m, x: m.var(x, dim=(0, 2), correction=0, keepdim=True)),
    ("var_unbiased_false", lambda m, x: m.var(x, 2, unbiased=False)),
    ("std", lambda m, x: m.std(x, dim=-1)),
    ("std_c2", lambda m, x: m.std(x, dim=0, correction=2)),
    ("logsumexp", lambda m, x: m.logsumexp(x, 1)),
    ("logsumexp_tuple_keep", lambda m, x: m.logsumexp(x, (0, 2), keepdim=True)),
    ("cumsum", lambda m, x: m.cumsum(x, 1)),
    ("cumsum_neg", lambda m, x: m.cumsum(x, dim=-1)),
    ("composed", lambda m, x: m.cumsum(m.prod(x, 0), 0) * m.logsumexp(x, 0)),
]
INDEX_CASES = [
    ("argmax", lambda m, x: m.argmax(x)),
    ("argmax_dim", lambda m, x: m.argmax(x, dim=1)),
    ("argmin_keep", lambda m, x: m.argmin(x, dim=-1, keepdim=True)),
    ("argmax_keep_all", lambda m, x: m.argmax(x, keepdim=True)),
    ("max_dim_indices", lambda m, x: m.max(x, 2).indices),
    ("min_dim_indices", lambda m, x: m.min(x, dim=0)[1]),
    ("all_dim", lambda m, x: m.all(x > 0, dim=1)),
    ("any_keep", lambda m, x: m.any(x > 1, dim=(0, 2), keepdim=True)),
    ("all", lambda m, x: m.all(x)),
    ("any", lambda m, x: m.any(x < -10)),
]


def sample(seed=0, shape=(3, 4, 5)):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(shape)
    x[0, 1, :] = 0.0          # zeros: prod's gradient, all()
    x[1, 2, 3] = 0.0          # a single zero in a slice
    x[2, :, 1] = x[2, :, 0]   # ties along the last axis
    x[1, 0, :] = 1.5          # a slice of equal elements
    return x


def run_lucid(fn, x, mode, monkeypatch):
    if mode == "interpret":
        monkeypatch.setenv("LUCID_BACKEND", "interpret")
    t = lucid.tensor(x, requires_grad=True)
    f = (lambda t: fn(lucid, t)) if mode != "compile" else lucid.compile(lambda t: fn(lucid, t))
    out = f(t)
    if mode == "compile":
        out = f(t)  # the compiled function's second call (the fixed plan)
    return t, out


def torch_grad(fn, x, weights):
    t = torch.tensor(x, requires_grad=True)
    out = fn(torch, t)
    (out * torch.from_numpy(weights)).sum().backward()
    return out.detach().numpy(), t.grad.numpy()


@pytest.mark.parametrize("mode", ["eager", "compile", "interpret"])
@pytest.mark.parametrize("name,fn", CASES, ids=[c[0] for c in CASES])
def test_values_and_gradients_match_torch_float64(name, fn, mode, monkeypatch):
    x = sample()
    t, out = run_lucid(fn, x, mode, monkeypatch)
    weights = np.random.default_rng(1).standard_normal(out.shape)
    want, want_grad = torch_grad(fn, x, weights)
    assert out.dtype == lucid.float64 and out.shape == want.shape
    np.testing.assert_allclose(out.numpy(), want, rtol=1e-12, atol=1e-12)
    (out * lucid.tensor(weights)).sum().backward()
    np.testing.assert_allclose(np.asarray(t.grad), want_grad, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("mode", ["eager", "compile", "interpret"])
@pytest.mark.parametrize("name,fn", INDEX_CASES, ids=[c[0] for c in INDEX_CASES])
def test_indices_and_logical_results_match_torch(name, fn, mode, monkeypatch):
    x = sample()
    _, out = run_lucid(fn, x, mode, monkeypatch)
    want = fn(torch, torch.tensor(x)).numpy()
    assert str(out.dtype) == str(want.dtype).replace("torch.", "") and out.shape == want.shape
    np.testing.assert_array_equal(out.numpy(), want)


@pytest.mark.parametrize("dtype", ["int32", "int64", "bool"])
@pytest.mark.parametrize("call", [
    lambda m, x: m.sum(x), lambda m, x: m.sum(x, dim=0), lambda m, x: m.prod(x, 1),
    lambda m, x: m.prod(x), lambda m, x: m.cumsum(x, 0), lambda m, x: m.all(x, 1),
    lambda m, x: m.any(x, 0), lambda m, x: m.amax(x, 1), lambda m, x: m.max(x, 0).values,
    lambda m, x: m.logsumexp(x, 1), lambda m, x: m.sum(x, 1, dtype=m.float64),
    lambda m, x: m.mean(x, 0, dtype=m.float64)])
def test_integer_and_bool_dtypes_follow_torch(call, dtype):
    x = np.random.default_rng(2).integers(-3, 4, (3, 5)).astype(dtype)
    got = call(lucid, lucid.tensor(x))
    want = call(torch, torch.tensor(x))
    assert str(got.dtype) == str(want.dtype).replace("torch.", "")
    np.testing.assert_allclose(got.numpy(), want.numpy(), rtol=1e-6)


@pytest.mark.parametrize("dtype", ["int32", "int64", "float32"])
def test_argmax_argmin_and_max_dim_on_ints_and_float32(dtype):
    x = np.random.default_rng(3).integers(-2, 3, (4, 6)).astype(dtype)  # many ties
    for dim in (0, 1, -1, None):
        for op in ("argmax", "argmin"):
            got = getattr(lucid, op)(lucid.tensor(x), dim=dim)
            want = getattr(torch, op)(torch.tensor(x), dim=dim)
            np.testing.assert_array_equal(got.numpy(), want.numpy())
    v, i = lucid.max(lucid.tensor(x), 1)
    tv, ti = torch.max(torch.tensor(x), 1)
    np.testing.assert_array_equal(v.numpy(), tv.numpy())
    np.testing.assert_array_equal(i.numpy(), ti.numpy())


def test_max_dim_of_bool_and_argmax_with_nan():
    b = np.array([[False, True, True], [False, False, False]])
    v, i = lucid.tensor(b).max(dim=1)
    assert v.dtype == lucid.bool and v.tolist() == [True, False] and i.tolist() == [1, 0]
    x = np.array([[1.0, np.nan, 3.0, np.nan], [5.0, 2.0, 9.0, 0.0]])
    for op in ("argmax", "argmin"):
        got = getattr(lucid.tensor(x), op)(dim=1)
        assert got.tolist() == getattr(torch.tensor(x), op)(dim=1).tolist()


def test_max_dim_gradient_goes_to_the_first_index_but_amax_splits_ties():
    x = lucid.tensor([[1.0, 3.0, 3.0]], requires_grad=True)
    x.max(dim=1).values.sum().backward()
    assert np.asarray(x.grad).tolist() == [[0.0, 1.0, 0.0]]
    x.grad = None
    x.amax().backward()
    assert np.asarray(x.grad).tolist() == [[0.0, 0.5, 0.5]]
    x.grad = None
    x.max().backward()
    assert np.asarray(x.grad).tolist() == [[0.0, 0.5, 0.5]]


def test_max_result_is_a_named_tuple_and_max_of_two_tensors_is_elementwise():
    r = lucid.tensor([[1, 9], [4, 2]]).max(1)
    values, indices = r
    assert type(r).__name__ == "max" and r.values is values and r.indices is indices
    assert lucid.min(lucid.tensor([1, 5]), lucid.tensor([3, 2])).tolist() == [1, 2]
    assert lucid.max(lucid.tensor([1, 5]), lucid.tensor([3, 2])).tolist() == [3, 5]


@pytest.mark.parametrize("dim", [None, 0, 1])
@pytest.mark.parametrize("x", [[[0.0, 2.0, 3.0], [0.0, 0.0, 4.0], [1.5, -2.0, 0.5]],   # 0, 1, 2+ zeros
                               [[1.0, 2.0, 3.0], [0.5, 4.0, -1.0], [0.0, 1.0, 1.0]]])
def test_prod_gradient_with_zeros_matches_torch(x, dim):
    t = lucid.tensor(x, dtype=lucid.float64, requires_grad=True)
    tt = torch.tensor(x, dtype=torch.float64, requires_grad=True)
    w = np.array([1.0, -2.0, 0.5])[:1 if dim is None else 3]
    ((lucid.prod(t, dim) if dim is not None else lucid.prod(t)) * lucid.tensor(w)).sum().backward()
    ((torch.prod(tt, dim) if dim is not None else torch.prod(tt)) * torch.tensor(w)).sum().backward()
    np.testing.assert_allclose(np.asarray(t.grad), tt.grad.numpy(), rtol=1e-12)


def test_old_axis_keepdims_spellings_still_work():
    x = lucid.tensor([[1.0, 2.0], [3.0, 5.0]])
    assert x.sum(axis=0).tolist() == [4.0, 7.0]
    assert x.mean(axis=1, keepdims=True).tolist() == [[1.5], [4.0]]
    assert x.max(axis=(0, 1)).item() == 5.0 and x.max(axis=0, keepdims=True).shape == (1, 2)
    with pytest.raises(TypeError, match="sum"):
        x.sum(dim=0, axis=1)
    assert lucid.max(x, axis=1).tolist() == [2.0, 5.0]  # the values alone, as before


def test_empty_reductions_match_torch():
    e = np.zeros((2, 0))
    assert lucid.sum(lucid.tensor(e), 1).tolist() == [0.0, 0.0]
    assert lucid.prod(lucid.tensor(e), 1).tolist() == [1.0, 1.0]
    assert lucid.all(lucid.tensor(e), 1).tolist() == [True, True]
    assert lucid.any(lucid.tensor(e), 1).tolist() == [False, False]
    assert lucid.logsumexp(lucid.tensor(e), 1).tolist() == [-np.inf, -np.inf]
    assert lucid.cumsum(lucid.tensor(e), 1).shape == (2, 0)
    assert lucid.amax(lucid.tensor(e), 0).shape == (0,)


@pytest.mark.parametrize("call,error,words", [
    (lambda m: m.amax(m.zeros(0)), RuntimeError, "amax"),
    (lambda m: m.max(m.zeros(2, 0)), RuntimeError, "max"),
    (lambda m: m.max(m.zeros(2, 0), dim=1), IndexError, "max"),
    (lambda m: m.min(m.zeros(2, 0), 1), IndexError, "min"),
    (lambda m: m.max(m.zeros(2, 3), 2), IndexError, "max"),
    (lambda m: m.zeros(2, 3).max(-3), IndexError, "max"),
    (lambda m: m.max(m.zeros(2, 3), True), TypeError, "max"),
    (lambda m: m.max(m.zeros(()), 1), IndexError, "max"),
    (lambda m: m.amin(m.zeros(2, 0), 1), IndexError, "amin"),
    (lambda m: m.argmax(m.zeros(2, 0), dim=1), IndexError, "argmax"),
    (lambda m: m.argmin(m.zeros(0)), IndexError, "argmin"),
    (lambda m: m.argmax(m.zeros(2, 0)), IndexError, "argmax"),
    (lambda m: m.argmax(m.tensor([True, False])), RuntimeError, "argmax"),
    (lambda m: m.sum(m.zeros(2, 3), dim=2), IndexError, "sum"),
    (lambda m: m.cumsum(m.zeros(2, 3), dim=-3), IndexError, "cumsum"),
    (lambda m: m.mean(m.zeros(2, 3), dim=(0, -2)), RuntimeError, "mean"),
    (lambda m: m.var(m.tensor([1, 2])), RuntimeError, "var"),
    (lambda m: m.mean(m.tensor([1, 2])), RuntimeError, "mean"),
    (lambda m: m.tensor([True]).mean(dim=0), RuntimeError, "mean"),
    (lambda m: m.prod(m.ones(2, 3), dim=(0, 1)), TypeError, "prod"),
    (lambda m: m.cumsum(m.ones(2, 3), dim=1.0), TypeError, "cumsum"),
    (lambda m: m.std(m.tensor([1, 2]), dim=0), RuntimeError, "var"),
])
def test_bad_input_raises_torchs_error_type_naming_the_op(call, error, words):
    with pytest.raises(error):
        call(torch)
    with pytest.raises(error, match=words):
        call(lucid)


def test_errors_name_the_shape():
    with pytest.raises(IndexError, match=r"\(2, 3\)"):
        lucid.sum(lucid.zeros(2, 3), dim=5)
    with pytest.raises(IndexError, match=r"\(2, 0\)"):
        lucid.argmax(lucid.zeros(2, 0), 1)


def test_var_of_one_element_is_nan_and_logsumexp_is_stable():
    assert np.isnan(lucid.var(lucid.tensor([2.0])).item())
    x = np.array([[1000.0, 1000.0, -1000.0], [-np.inf, -np.inf, -np.inf]])
    got = lucid.logsumexp(lucid.tensor(x), 1).numpy()
    np.testing.assert_allclose(got, torch.logsumexp(torch.tensor(x), 1).numpy())


@pytest.mark.parametrize("dtype", ["float32", "float64", "int32", "int64", "bool"])
@pytest.mark.parametrize("axes", [(0,), (1,), (0, 1), (1, 2), (0, 2)])
def test_native_prod_matches_the_reference(dtype, axes):
    rng = np.random.default_rng(4)
    x = (rng.uniform(0.5, 1.5, (5, 7, 37)) * rng.choice([-1, 1], (5, 7, 37))).astype(dtype) \
        if dtype.startswith("float") else rng.integers(-2, 3, (5, 7, 37)).astype(dtype)
    b = GraphBuilder()
    g = b.build([b.emit("prod", b.input(x.shape, dtype), axes=axes)])
    plan = compile_graph(g)
    for arr in (x, np.asfortranarray(x), x[:, :, ::-1]):  # row and column layouts, strides
        got, want = plan([arr])[0], interpret(g, [arr])[0]
        assert got.dtype == want.dtype
        np.testing.assert_allclose(got, want, rtol=1e-5 if dtype == "float32" else 1e-12)
