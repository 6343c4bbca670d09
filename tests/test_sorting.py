"""``sort``/``argsort``/``msort``/``topk``, ``cumprod``/``cummax``/``cummin`` and the norms
beyond the op table (``tests/op_table_sorting.py``): NaN, infinities and signed zeros
against PyTorch, stable ties, long and odd-sized axes, the result types, gradients
through zeros and of the gradient, compiled functions, and PyTorch's error types."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

import lucid

NAN, INF = float("nan"), float("inf")


def _same(got, want):
    """Values (NaN in place), shape and dtype of a lucid tensor and a torch tensor."""
    want = want.detach()
    assert tuple(got.shape) == tuple(want.shape)
    assert str(got.dtype) == str(want.dtype).replace("torch.", "")
    np.testing.assert_array_equal(np.asarray(got.numpy()), want.numpy())


SPECIALS = np.array([3.0, NAN, 1.0, INF, -INF, 1.0, NAN, -0.0, 0.0, -2.5, INF])


@pytest.mark.parametrize("descending", [False, True])
def test_sort_orders_nan_inf_and_signed_zeros_as_torch(descending):
    x = np.stack([SPECIALS, SPECIALS[::-1].copy()])
    got = lucid.sort(lucid.tensor(x), descending=descending)
    want = torch.sort(torch.tensor(x), descending=descending, stable=True)
    _same(got.values, want.values)
    _same(got.indices, want.indices)
    np.testing.assert_array_equal(np.signbit(got.values.numpy()), np.signbit(want.values.numpy()))
    _same(lucid.argsort(lucid.tensor(x), dim=1, descending=descending),
          torch.argsort(torch.tensor(x), dim=1, descending=descending, stable=True))


def test_topk_and_cummax_with_nan_as_torch():
    x = lucid.tensor(SPECIALS)
    v, i = lucid.topk(x, 3)
    assert np.isnan(v.numpy()[:2]).all() and v.numpy()[2] == INF and sorted(i.tolist()[:2]) == [1, 6]
    for op in ("cummax", "cummin"):
        got, want = getattr(lucid, op)(x, 0), getattr(torch, op)(torch.tensor(SPECIALS), 0)
        _same(got.values, want.values)
        _same(got.indices, want.indices)


@pytest.mark.parametrize("n", [1, 2, 17, 1000, 4099])
def test_long_axes_with_ties_match_torch_stable_sort(n):
    rng = np.random.default_rng(n)
    x = rng.integers(-20, 20, (3, n)).astype(np.float32)
    for descending in (False, True):
        got = lucid.tensor(x).sort(dim=1, descending=descending, stable=True)
        want = torch.tensor(x).sort(dim=1, descending=descending, stable=True)
        _same(got.values, want.values)
        _same(got.indices, want.indices)
    got = lucid.cummax(lucid.tensor(x), 1)
    want = torch.cummax(torch.tensor(x), 1)
    _same(got.values, want.values)
    _same(got.indices, want.indices)


def test_results_are_named_tuples_that_unpack():
    x = lucid.tensor([[2.0, 1.0], [0.0, 3.0]])
    for r, name in ((x.sort(), "sort"), (x.topk(1), "topk"), (x.cummax(1), "cummax"), (x.cummin(0), "cummin")):
        values, indices = r
        assert type(r).__name__ == name and r.values is values and r[1] is indices
        assert indices.dtype == lucid.int64
    assert lucid.msort(x).tolist() == [[0.0, 1.0], [2.0, 3.0]]
    assert x.msort().tolist() == [[0.0, 1.0], [2.0, 3.0]]


def test_sort_values_gradient_scatters_back_and_leaves_input_alone():
    x = lucid.tensor([[3.0, 1.0, 2.0]], requires_grad=True)
    values, indices = x.sort(descending=True)
    (values * lucid.tensor([[10.0, 20.0, 30.0]])).sum().backward()
    assert x.grad.tolist() == [[10.0, 30.0, 20.0]]
    assert indices.tolist() == [[0, 2, 1]] and x.tolist() == [[3.0, 1.0, 2.0]]
    y = lucid.tensor([4.0, 4.0, 1.0], requires_grad=True)
    y.topk(2).values.sum().backward()             # tied values: each gradient goes to its own index
    assert y.grad.tolist() == [1.0, 1.0, 0.0]


def test_sort_topk_cumprod_and_norms_compile_with_gradients():
    def step(x):
        v, i = x.sort(dim=1, descending=True)
        t = x.topk(2, dim=0).values
        loss = (v * v).sum() + t.sum() + x.cumprod(1).sum() + lucid.linalg.vector_norm(x, 3) \
            + lucid.linalg.matrix_norm(x, 1) + lucid.einsum("ij,ij->", x, x)
        return loss, i

    rng = np.random.default_rng(0)
    a = rng.standard_normal((4, 5))
    x = lucid.tensor(a, requires_grad=True)
    loss, i = lucid.compile(step)(x)
    loss.backward()
    t = torch.tensor(a, requires_grad=True)
    v, ti = t.sort(dim=1, descending=True)
    want = (v * v).sum() + t.topk(2, dim=0).values.sum() + t.cumprod(1).sum() + \
        torch.linalg.vector_norm(t, 3) + torch.linalg.matrix_norm(t, 1) + torch.einsum("ij,ij->", t, t)
    want.backward()
    np.testing.assert_allclose(loss.item(), want.item(), rtol=1e-12)
    np.testing.assert_allclose(np.asarray(x.grad), t.grad.numpy(), rtol=1e-10, atol=1e-12)
    _same(i, ti)


# ------------------------------------------------------------------ cumprod's gradient
@pytest.mark.parametrize("data", [[2.0, 0.0, 3.0, 0.0, 5.0], [0.0, 2.0, 3.0], [2.0, 3.0, 0.0],
                                  [0.0, 0.0, 0.0], [1.5, -2.0, 0.5], [0.0]])
def test_cumprod_gradient_through_zeros_matches_torch(data):
    w = np.arange(1.0, len(data) + 1)
    t = torch.tensor(data, dtype=torch.float64, requires_grad=True)
    (torch.cumprod(t, 0) * torch.tensor(w)).sum().backward()
    for dtype in (lucid.float64, lucid.float32):
        x = lucid.tensor(data, dtype=dtype, requires_grad=True)
        (lucid.cumprod(x, 0) * lucid.tensor(w, dtype=dtype)).sum().backward()
        np.testing.assert_allclose(np.asarray(x.grad), t.grad.numpy(), rtol=1e-6)
        assert np.isfinite(np.asarray(x.grad)).all()


def test_cumprod_dtypes():
    assert lucid.cumprod(lucid.tensor([True, True, False]), 0).tolist() == [1, 1, 0]
    assert lucid.cumprod(lucid.tensor([1, 2, 3], dtype=lucid.int32), 0).dtype == lucid.int64
    assert lucid.cumprod(lucid.tensor([1, 2, 3]), 0, dtype=lucid.float32).dtype == lucid.float32
    assert lucid.tensor(3.0).cumprod(0).item() == 3.0


# ------------------------------------------------------------------ norms
@pytest.mark.parametrize("ord", [2, 1, INF, -INF, 0, 0.5, 3, -1, -0.5, 1.5])
def test_vector_norm_gradient_at_zeros_is_torchs(ord):
    data = [[3.0, 0.0], [0.0, -4.0]]
    t = torch.tensor(data, dtype=torch.float64, requires_grad=True)
    torch.linalg.vector_norm(t, ord).backward()
    x = lucid.tensor(data, dtype=lucid.float64, requires_grad=True)
    n = lucid.linalg.vector_norm(x, ord)
    n.backward()
    want = np.zeros((2, 2)) if t.grad is None else t.grad.numpy()
    np.testing.assert_allclose(n.item(), torch.linalg.vector_norm(t.detach(), ord).item(), rtol=1e-12)
    np.testing.assert_allclose(np.asarray(x.grad), want, rtol=1e-12)
    assert not np.isnan(np.asarray(x.grad)).any()


def test_norms_of_nan_inf_and_large_values():
    for ord in (2, 1, INF, 0, 3):
        for data in ([1.0, NAN], [1.0, INF], [1e200, 1e200]):
            got = lucid.linalg.vector_norm(lucid.tensor(data, dtype=lucid.float64), ord).item()
            want = torch.linalg.vector_norm(torch.tensor(data, dtype=torch.float64), ord).item()
            assert got == want or (math.isnan(got) and math.isnan(want)), (ord, data, got, want)


def test_norm_dtypes_and_the_dtype_argument():
    x = lucid.tensor([3.0, 4.0])
    assert lucid.linalg.vector_norm(x, dtype=lucid.float64).dtype == lucid.float64
    assert x.double().norm().dtype == lucid.float64 and lucid.norm(x, dtype=lucid.float64).item() == 5.0
    assert lucid.linalg.norm(lucid.ones(2, 3), keepdim=True).shape == (1, 1)
    assert lucid.linalg.vector_norm(lucid.ones(2, 3), dim=(), keepdim=True).shape == (1, 1)
    assert lucid.linalg.matrix_norm(lucid.ones(2, 3, 4), dim=(0, 2), keepdim=True).shape == (1, 3, 1)


@pytest.mark.parametrize("call,error,words", [
    (lambda m: m.sort(m.ones(2, 3), dim=2), IndexError, "sort"),
    (lambda m: m.sort(m.tensor(2.5), dim=1), IndexError, "sort"),
    (lambda m: m.argsort(m.ones(2, 3), dim=-3), IndexError, "argsort"),
    (lambda m: m.topk(m.arange(5.0), 6), RuntimeError, "topk"),
    (lambda m: m.topk(m.arange(5.0), -1), RuntimeError, "topk"),
    (lambda m: m.topk(m.tensor(2.0), 2), RuntimeError, "topk"),
    (lambda m: m.topk(m.tensor([True, False]), 1), RuntimeError, "topk"),
    (lambda m: m.topk(m.ones(3), 2.0), TypeError, "topk"),
    (lambda m: m.topk(m.ones(3, 4), 2, dim=None), TypeError, "topk"),
    (lambda m: m.cumprod(m.ones(2, 3), dim=2), IndexError, "cumprod"),
    (lambda m: m.cumprod(m.tensor(3.0), 1), IndexError, "cumprod"),
    (lambda m: m.cummax(m.ones(2, 3), -3), IndexError, "cummax"),
    (lambda m: m.linalg.vector_norm(m.tensor([1, 2])), RuntimeError, "vector_norm"),
    (lambda m: m.norm(m.tensor([1, 2])), RuntimeError, "vector_norm"),
    (lambda m: m.linalg.vector_norm(m.ones(2), dtype=m.int64), RuntimeError, "vector_norm"),
    (lambda m: m.linalg.vector_norm(m.ones(2, dtype=m.float64), dtype=m.float32), RuntimeError, "narrowing"),
    (lambda m: m.linalg.vector_norm(m.ones(0, 3), INF), RuntimeError, "inf norm"),
    (lambda m: m.linalg.vector_norm(m.ones(0, 3), -1), RuntimeError, "-1 norm"),
    (lambda m: m.linalg.vector_norm(m.ones(0, 3), INF, dim=0), RuntimeError, "dimension 0"),
    (lambda m: m.linalg.vector_norm(m.ones(2, 3), "fro"), TypeError, "ord"),
    (lambda m: m.linalg.vector_norm(m.ones(2, 3), 2, dim=(0, 0)), RuntimeError, "multiple"),
    (lambda m: m.linalg.vector_norm(m.ones(2, 3), dim=5), IndexError, "vector_norm"),
    (lambda m: m.linalg.vector_norm(m.ones(2, 3), dim=1.0), TypeError, "dim"),
    (lambda m: m.linalg.matrix_norm(m.ones(3)), RuntimeError, "2 dimensions"),
    (lambda m: m.linalg.matrix_norm(m.ones(2, 3), "abc"), RuntimeError, "not supported"),
    (lambda m: m.linalg.matrix_norm(m.ones(2, 3), 3), RuntimeError, "not supported"),
    (lambda m: m.linalg.matrix_norm(m.ones(2, 3), dim=(0, 0)), RuntimeError, "different"),
    (lambda m: m.linalg.matrix_norm(m.ones(2, 3), dim=0), TypeError, "dim"),
    (lambda m: m.linalg.matrix_norm(m.tensor([[1, 2]]), 1), RuntimeError, "floating"),
    (lambda m: m.linalg.matrix_norm(m.ones(3, 0), -1), IndexError, "non-zero size"),
    (lambda m: m.linalg.norm(m.ones(2, 3, 4), 2), RuntimeError, "1D or 2D"),
    (lambda m: m.linalg.norm(m.ones(2, 3, 4), dim=(0, 1, 2)), RuntimeError, "length 1 or 2"),
    (lambda m: m.linalg.norm(m.ones(3), "fro"), RuntimeError, "2 dimensions"),
    (lambda m: m.norm(m.ones(2, 3, 4), "fro", dim=(0, 1, 2)), RuntimeError, "2-tuple"),
    (lambda m: m.norm(m.ones(2, 3, 4), "abc"), RuntimeError, "not supported"),
])
def test_bad_input_raises_torchs_error_type_naming_the_op(call, error, words):
    with pytest.raises(error):
        call(torch)
    with pytest.raises(error, match=words):
        call(lucid)


def test_singular_value_norms_are_refused_clearly():
    for ord in ("nuc", 2, -2):
        with pytest.raises(NotImplementedError, match="singular values"):
            lucid.linalg.matrix_norm(lucid.ones(2, 3), ord)
    with pytest.raises(NotImplementedError, match="singular values"):
        lucid.norm(lucid.ones(2, 3), "nuc")


def test_ir_cumprod_gradient_rule_against_finite_differences():
    from gradcheck import check_graph_gradients
    from lucid_ir.builder import GraphBuilder
    rng = np.random.default_rng(0)
    for data in (rng.standard_normal((3, 5)), np.array([[2.0, 0.0, 3.0, 0.0, 5.0], [0.0, 1.5, -2.0, 0.5, 1.0],
                                                        [1.0, 2.0, 3.0, 4.0, 0.0]])):
        for axis in (0, 1):
            b = GraphBuilder()
            x = b.input(data.shape, "float64")
            graph = b.build([b.emit("cumprod", x, axis=axis)])
            check_graph_gradients(graph, [data], rng)
