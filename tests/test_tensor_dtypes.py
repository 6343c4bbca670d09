"""Tensors of every dtype in the user API, against PyTorch: dtype objects, inference in
``lucid.tensor``, promotion of binary ops (numbers weak), comparisons giving bool,
integer division and remainder, casts, and the gradient through promotions."""
from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch

import lucid

DTYPES = ["float32", "float64", "int32", "int64", "bool"]
TORCH = {"float32": torch.float32, "float64": torch.float64, "int32": torch.int32,
         "int64": torch.int64, "bool": torch.bool}


def sample(dtype, shape=(2, 3), seed=0):
    rng = np.random.default_rng(seed)
    if dtype == "bool":
        return rng.random(shape) > 0.5
    if dtype.startswith("int"):
        return rng.integers(-9, 10, shape).astype(dtype)
    return rng.uniform(-3, 3, shape).astype(dtype)


def test_dtype_objects():
    assert repr(lucid.float32) == "lucid.float32" and lucid.float32 == "float32"
    assert lucid.float is lucid.float32 and lucid.double is lucid.float64
    assert lucid.long is lucid.int64 and lucid.int is lucid.int32
    assert lucid.float32 != lucid.float64 and lucid.int64 == np.dtype("int64")
    assert {lucid.float32: 1}["float32"] == 1
    assert lucid.bool.itemsize == 1 and not lucid.int32.is_floating_point
    for name in DTYPES:
        t = lucid.tensor(sample(name))
        assert t.dtype == getattr(lucid, name) and repr(t.dtype) == f"lucid.{name}"


@pytest.mark.parametrize("data", [[1, 2], [1.5, 2], [True, False], 3, 2.5, False, [[1], [2]],
                                  np.arange(3, dtype=np.int32), np.arange(3, dtype=np.int16),
                                  np.arange(3, dtype=np.uint8), np.ones(2, np.float16),
                                  np.ones(2, np.float64), np.zeros(2, bool)])
def test_tensor_infers_dtypes_as_torch_tensor(data):
    got, want = lucid.tensor(data), torch.tensor(data)
    expected = {torch.int16: "int64", torch.uint8: "int64", torch.float16: "float32"}.get(
        want.dtype, str(want.dtype).replace("torch.", ""))
    assert got.dtype == expected
    np.testing.assert_array_equal(got.numpy(), want.numpy().astype(expected))


def test_the_tensor_constructor_stays_floating_and_dtype_converts():
    assert lucid.Tensor([1, 2]).dtype == "float32" and lucid.Tensor([True]).dtype == "float32"
    assert lucid.tensor([1, 2], dtype=lucid.float64).dtype == "float64"
    assert lucid.tensor([1.7, -1.7], dtype="int32").tolist() == [1, -1]


@pytest.mark.parametrize("op", ["add", "sub", "mul", "truediv", "floordiv", "mod", "gt", "le",
                                "eq", "ne", "and_", "or_", "xor"])
@pytest.mark.parametrize("da,db", list(itertools.product(DTYPES, DTYPES)))
def test_binary_ops_promote_as_torch(op, da, db):
    a, b = sample(da, seed=1), sample(db, (3,), seed=2)
    if op in ("truediv", "floordiv", "mod"):  # integer division by zero: see the README
        b = np.where(b == 0, 1, b).astype(db)
    fn = getattr(__import__("operator"), op)
    try:
        want = fn(torch.tensor(a), torch.tensor(b))
    except RuntimeError:
        with pytest.raises((TypeError, ValueError, RuntimeError)):
            fn(lucid.tensor(a), lucid.tensor(b))
        return
    got = fn(lucid.tensor(a), lucid.tensor(b))
    assert got.dtype == str(want.dtype).replace("torch.", "")
    np.testing.assert_allclose(got.numpy(), want.numpy(), rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("number", [2, 2.5, True, -3])
@pytest.mark.parametrize("op", ["add", "mul", "sub", "truediv", "gt"])
def test_numbers_are_weak(dtype, number, op):
    a = sample(dtype, seed=3)
    fn = getattr(__import__("operator"), op)
    try:
        want = fn(torch.tensor(a), number)
    except RuntimeError:
        return  # (torch refuses e.g. bool - bool)
    got = fn(lucid.tensor(a), number)
    assert got.dtype == str(want.dtype).replace("torch.", "")
    np.testing.assert_allclose(got.numpy(), want.numpy(), rtol=1e-6)
    reflected = fn(number, lucid.tensor(a)) if op != "gt" else None
    if reflected is not None:
        np.testing.assert_allclose(reflected.numpy(), fn(number, torch.tensor(a)).numpy(), rtol=1e-6)


def test_integer_division_and_remainder_follow_python_signs():
    a, b = np.array([7, -7, 7, -7, 0]), np.array([2, 2, -2, -2, 3])
    la, lb = lucid.tensor(a), lucid.tensor(b)
    assert (la // lb).tolist() == (torch.tensor(a) // torch.tensor(b)).tolist()
    assert (la % lb).tolist() == (torch.tensor(a) % torch.tensor(b)).tolist()
    assert (la / lb).dtype == "float32"
    np.testing.assert_allclose((la / lb).numpy(), a / b, rtol=1e-6)


def test_comparisons_give_bool_that_counts_and_selects():
    x = lucid.tensor([-1.0, 0.5, 2.0])
    mask = x > 0
    assert mask.dtype == "bool" and mask.tolist() == [False, True, True]
    assert mask.sum().item() == 2 and mask.sum().dtype == "int64"
    assert lucid.where(mask, x, 0.0).tolist() == [0.0, 0.5, 2.0]
    assert (mask & (x < 1)).tolist() == [False, True, False] and (~mask).tolist() == [True, False, False]
    assert (x == x).numpy().all() and not (x != x).numpy().any()


def test_casts_and_conversions():
    x = lucid.tensor([1.7, -2.2, 0.0])
    assert x.long().tolist() == [1, -2, 0] and x.int().dtype == "int32"
    assert x.bool().tolist() == [True, True, False] and x.long().double().dtype == "float64"
    assert x.to(lucid.float64).dtype == "float64" and x.to("cpu") is x and x.to(x) is x
    assert x.to(dtype=lucid.int64).tolist() == [1, -2, 0]
    assert x.is_floating_point() and not x.long().is_floating_point()
    assert x.element_size() == 4 and x.double().element_size() == 8
    assert lucid.tensor([3]).item() == 3 and isinstance(lucid.tensor([3]).item(), int)
    assert lucid.tensor([True]).item() is True
    with pytest.raises(ValueError, match="CPU only"):
        x.to("cuda")


def test_gradients_flow_through_promotions_and_not_into_integers():
    x = lucid.tensor([1.0, 2.0, 3.0], dtype=lucid.float32, requires_grad=True)
    y = lucid.tensor([0.5, 0.25, 2.0], dtype=lucid.float64, requires_grad=True)
    ids = lucid.tensor([1, 0, 2])
    out = ((x * y) * ids + x / 2).sum()
    assert out.dtype == "float64"
    out.backward()
    tx = torch.tensor([1.0, 2.0, 3.0], requires_grad=True)
    ty = torch.tensor([0.5, 0.25, 2.0], dtype=torch.float64, requires_grad=True)
    ((tx * ty) * torch.tensor([1, 0, 2]) + tx / 2).sum().backward()
    assert x.grad.dtype == lucid.float32 and y.grad.dtype == lucid.float64
    np.testing.assert_allclose(x.grad, tx.grad.numpy(), rtol=1e-6)
    np.testing.assert_allclose(y.grad, ty.grad.numpy(), rtol=1e-12)


def test_only_floating_leaves_require_grad():
    with pytest.raises((TypeError, RuntimeError), match="floating"):
        lucid.tensor([1, 2], requires_grad=True)
    with pytest.raises(RuntimeError, match="floating"):
        lucid.tensor([1, 2]).requires_grad_()
    x = lucid.tensor([1.0]).requires_grad_()
    assert x.requires_grad
    with pytest.raises(RuntimeError, match="leaf"):
        (x * 2).requires_grad_()


def test_int_and_bool_tensors_in_compiled_functions():
    @lucid.compile
    def f(x, ids):
        return ((x > 0) & (ids % 2 == 0)).sum() + (ids // 2).sum()
    x, ids = lucid.tensor([1.0, -1.0, 2.0, 3.0]), lucid.tensor([2, 4, 6, 7])
    want = ((torch.tensor([1.0, -1.0, 2.0, 3.0]) > 0) & (torch.tensor([2, 4, 6, 7]) % 2 == 0)).sum() \
        + (torch.tensor([2, 4, 6, 7]) // 2).sum()
    got = f(x, ids)
    assert got.dtype == "int64" and got.item() == want.item()
