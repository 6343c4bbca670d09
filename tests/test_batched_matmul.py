"""Batched and vector matrix products (lucid/products.py, the IR's matmul beyond 2-D, the
native batched GEMM entry): values and gradients against PyTorch in float64 and float32,
in eager, interpreter and compiled modes, on 1 and 2 threads; torch's errors; fusion of
the epilogue on the batched path; bounds checking; the kernel's unit split."""
from __future__ import annotations

import numpy as np
import pytest
import torch

import lucid
from lucid_codegen.runtime import threads
from lucid_codegen.runtime import work_split
from lucid_codegen.gemm.batched_call import describe, run_batched
from lucid_codegen.gemm.call import GemmSpec, get_gemm
from gemm_specs import activation, chain_spec, gated

SHAPES = [  # (a, b): dot, vector sides, bmm, broadcast batch axes, 1s, 0s, primes
    ((5,), (5,)), ((3,), (3, 4)), ((4, 3), (3,)), ((7,), (2, 7, 3)), ((2, 3, 7), (7,)),
    ((2, 3, 5), (2, 5, 4)), ((2, 1, 3, 5), (4, 5, 2)), ((1, 3, 5), (6, 5, 1)), ((1, 1, 1), (1, 1, 1)),
    ((0, 3, 4), (4, 2)), ((2, 3, 0), (2, 0, 4)), ((2, 0, 3), (3, 5)), ((13, 11, 7), (7, 17)),
    ((3, 37, 29), (1, 29, 31)),
]
LAYOUTS = ["c", "a_t", "b_t", "both_t"]  # views with the last two axes swapped (no copy)


def _views(rng, sa, sb, layout, dtype):
    """Arrays of shapes sa, sb; transposed layouts are swapaxes views of the other layout."""
    def make(shape, transposed):
        if transposed and len(shape) >= 2:
            return np.swapaxes(rng.standard_normal(shape[:-2] + shape[:-3:-1]), -1, -2).astype(dtype)
        return rng.standard_normal(shape).astype(dtype)
    return make(sa, layout in ("a_t", "both_t")), make(sb, layout in ("b_t", "both_t"))


@pytest.fixture(params=[1, 2], ids=["1thread", "2threads"])
def num_threads(request, monkeypatch):
    old = threads.get_num_threads()
    threads.set_num_threads(request.param)
    # small enough that these shapes split across the threads
    monkeypatch.setattr(work_split, "GEMM_SPLIT_SECONDS", 2.5e-7)
    yield request.param
    threads.set_num_threads(old)


def _run(mode, fn, *xs):
    if mode == "compile":
        return lucid.compile(fn)(*xs)
    return fn(*xs)


@pytest.mark.parametrize("mode", ["eager", "interpret", "compile"])
@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("sa,sb", SHAPES, ids=[f"{a}@{b}" for a, b in SHAPES])
def test_matmul_matches_torch_values_and_gradients(sa, sb, layout, mode, num_threads, monkeypatch):
    monkeypatch.setenv("LUCID_BACKEND", "interpret" if mode == "interpret" else "compiled")
    rng = np.random.default_rng(len(sa) * 7 + len(sb))
    a, b = _views(rng, sa, sb, layout, np.float64)
    la, lb = lucid.tensor(a, requires_grad=True), lucid.tensor(b, requires_grad=True)
    ta, tb = torch.tensor(a, requires_grad=True), torch.tensor(b, requires_grad=True)
    ref = torch.matmul(ta, tb)
    w = rng.standard_normal(ref.shape)

    def loss(x, y):
        out = x @ y
        return out, (out * lucid.tensor(w)).sum()
    out, total = _run(mode, loss, la, lb)
    total.backward()
    (ref * torch.tensor(w)).sum().backward()
    assert tuple(out.shape) == tuple(ref.shape)
    np.testing.assert_allclose(out.numpy(), ref.detach().numpy(), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(np.asarray(la.grad), ta.grad.numpy(), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(np.asarray(lb.grad), tb.grad.numpy(), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("sa,sb", SHAPES[5:], ids=[f"{a}@{b}" for a, b in SHAPES[5:]])
def test_float32_matches_float64_reference(sa, sb, num_threads):
    rng = np.random.default_rng(3)
    a, b = _views(rng, sa, sb, "both_t", np.float32)
    out = (lucid.tensor(a) @ lucid.tensor(b)).numpy()
    assert out.dtype == np.float32
    k = sa[-1]
    np.testing.assert_allclose(out, a.astype(np.float64) @ b, rtol=1e-5, atol=1e-5 * max(k, 1))


def test_splits_are_bit_identical_to_one_thread(monkeypatch):
    """Units split across threads (batches, or rows of few big products) give the same bits."""
    monkeypatch.setattr(work_split, "GEMM_SPLIT_SECONDS", 2.5e-7)
    rng = np.random.default_rng(0)
    g = get_gemm(chain_spec("float32", bias=True, epilogue="relu", residual=True))
    old = threads.get_num_threads()
    try:
        for batch, m, k, n in [((5,), 31, 17, 13), ((1,), 97, 33, 65), ((2, 1), 130, 64, 9)]:
            a = rng.standard_normal(batch + (m, k)).astype(np.float32)
            b = np.swapaxes(rng.standard_normal(batch + (n, k)).astype(np.float32), -1, -2)
            bias = rng.standard_normal(n).astype(np.float32)
            r = rng.standard_normal((m, n)).astype(np.float32)   # broadcast over the batch
            outs = []
            for nt in (1, 2):
                threads.set_num_threads(nt)
                plan = describe(g, a, b, np.empty(batch + (m, n), np.float32), r)
                assert len(plan.ranges) == nt and plan.units >= nt
                c = np.empty(batch + (m, n), np.float32)
                run_batched(g, a, b, c, bias, r)
                outs.append(c)
            assert np.array_equal(outs[0], outs[1])
            np.testing.assert_allclose(outs[0], np.maximum(a.astype(np.float64) @ b + bias, 0) + r,
                                       rtol=1e-5, atol=1e-4)
    finally:
        threads.set_num_threads(old)


def test_descriptor_reads_views_in_place():
    """A transposed operand is described by its strides and a broadcast axis by stride 0."""
    g = get_gemm(GemmSpec("float64"))
    a = np.swapaxes(np.zeros((4, 5, 3)), -1, -2)          # (4, 3, 5), transposed
    b = np.zeros((5, 2))                                  # broadcast over the batch
    c = np.empty((4, 3, 2))
    words = describe(g, a, b, c, num_threads=1).desc.tolist()
    M, N, K, rsa, csa, rsb, csb, ldc = words[:8]
    assert (M, N, K, rsa, csa, rsb, csb, ldc) == (3, 2, 5, 1, 3, 2, 1, 2)
    assert words[10] == 1 and words[15:] == [4, 15, 0, 6, 0]   # extent, A, B, C, R strides


def test_bias_and_activation_fuse_on_the_batched_path():
    x, w, bias = lucid.randn(4, 3, 5), lucid.randn(4, 5, 6), lucid.randn(6)

    def f(x, w, bias):
        return lucid.nn.functional.relu(x @ w + bias)
    kernels = [str(k) for k in lucid.compile(f).lower(x, w, bias).kernels]
    assert kernels == ["Kernel(gemm: matmul + add + maximum)"], kernels
    np.testing.assert_allclose(lucid.compile(f)(x, w, bias).numpy(),
                               np.maximum(x.numpy() @ w.numpy() + bias.numpy(), 0), rtol=1e-5, atol=1e-5)


def test_compiled_batched_step_repeats_with_native_program():
    """A compiled function's later calls (a native program) give the first call's results."""
    rng = np.random.default_rng(1)
    f = lucid.compile(lambda x, y, r: (x @ y.transpose(-1, -2)) + r)
    x, y = lucid.tensor(rng.standard_normal((3, 4, 6))), lucid.tensor(rng.standard_normal((1, 5, 6)))
    r = lucid.tensor(rng.standard_normal((3, 4, 5)))
    want = x.numpy() @ np.swapaxes(y.numpy(), -1, -2) + r.numpy()
    for _ in range(3):
        np.testing.assert_allclose(f(x, y, r).numpy(), want, rtol=1e-12)


def test_bounds_checking_covers_the_batched_kernel(monkeypatch):
    monkeypatch.setenv("LUCID_CHECK_BOUNDS", "1")
    rng = np.random.default_rng(2)
    for sa, sb in SHAPES:
        a = rng.standard_normal(sa).astype(np.float32)
        b = rng.standard_normal(sb).astype(np.float32)
        out = lucid.compile(lambda x, y: x @ y)(lucid.tensor(a), lucid.tensor(b))
        np.testing.assert_allclose(out.numpy(), a.astype(np.float64) @ b, rtol=1e-5, atol=1e-4)


# ------------------------------------------------------------------ the functions and torch's errors
def test_functions_and_methods_match_torch():
    rng = np.random.default_rng(4)
    a, b, c = rng.standard_normal((2, 3, 4)), rng.standard_normal((2, 4, 5)), rng.standard_normal((2, 3, 5))
    L, T = lucid.tensor, torch.tensor
    pairs = [
        (lucid.bmm(L(a), L(b)), torch.bmm(T(a), T(b))),
        (L(a).bmm(L(b)), T(a).bmm(T(b))),
        (L(a[0]).mm(L(b[0])), T(a[0]).mm(T(b[0]))),
        (L(a).matmul(L(b)), T(a).matmul(T(b))),
        (lucid.baddbmm(L(c), L(a), L(b), beta=0.5, alpha=2.0), torch.baddbmm(T(c), T(a), T(b), beta=0.5, alpha=2.0)),
        (lucid.addmm(L(c[0]), L(a[0]), L(b[0]), beta=0, alpha=-1.0),
         torch.addmm(T(c[0]), T(a[0]), T(b[0]), beta=0, alpha=-1.0)),
        (b[0].T @ L(a[0]).T, T(b[0].T) @ T(a[0]).T),   # __rmatmul__ with a numpy array
    ]
    for got, want in pairs:
        np.testing.assert_allclose(np.asarray(got.numpy()), want.numpy(), rtol=1e-12, atol=1e-12)


def test_addmm_beta_zero_ignores_nan_input():
    out = lucid.addmm(lucid.full((2, 2), float("nan")), lucid.eye(2), lucid.eye(2), beta=0)
    assert out.tolist() == [[1.0, 0.0], [0.0, 1.0]]


@pytest.mark.parametrize("call,message", [
    (lambda: lucid.mm(lucid.ones(2, 3, 4), lucid.ones(4, 2)), "mm: self must be a matrix"),
    (lambda: lucid.mm(lucid.ones(3, 2), lucid.ones(3, 5)), r"mat1 and mat2 shapes cannot be multiplied \(3x2 and 3x5\)"),
    (lambda: lucid.bmm(lucid.ones(3, 4), lucid.ones(3, 4, 2)), "bmm: batch1 must be a 3D tensor"),
    (lambda: lucid.bmm(lucid.ones(2, 3, 4), lucid.ones(3, 4, 2)),
     r"Expected size for first two dimensions of batch2 tensor to be: \[2, 4\] but got: \[3, 4\]"),
    (lambda: lucid.matmul(lucid.ones(2, 3, 4), lucid.ones(3, 5, 2)), r"\(2, 3, 4\) and \(3, 5, 2\) do not fit"),
    (lambda: lucid.matmul(lucid.ones(2, 3, 4), lucid.ones(3, 4, 2)), "batch dimensions"),
    (lambda: lucid.ones(3) @ lucid.ones(4), "inconsistent tensor size"),
    (lambda: lucid.matmul(lucid.tensor(2.0), lucid.ones(3)), "at least 1D"),
    (lambda: lucid.addmm(lucid.ones(4), lucid.ones(2, 3), lucid.ones(3, 5)), "does not broadcast"),
    (lambda: lucid.baddbmm(lucid.ones(2, 3, 5), lucid.ones(2, 3), lucid.ones(2, 3, 5)), "batch1 must be a 3D"),
])
def test_errors_are_torchs(call, message):
    with pytest.raises(RuntimeError, match=message):
        call()


def test_torch_raises_the_same_error_types():
    for a, b in [((2, 3), (4, 5)), ((2, 3, 4), (3, 4, 2))]:
        with pytest.raises(RuntimeError):
            torch.matmul(torch.ones(a), torch.ones(b))
        with pytest.raises(RuntimeError):
            lucid.matmul(lucid.ones(*a), lucid.ones(*b))
    with pytest.raises(ValueError):  # and lucid's shape errors stay ValueErrors
        lucid.ones(2, 3) @ lucid.ones(2, 3)


def test_relu_backward_gates_on_the_batched_path():
    """relu's backward mask as the batched GEMM's output gate (fused), against torch."""
    rng = np.random.default_rng(5)
    x, w, v = rng.standard_normal((3, 4, 5)), rng.standard_normal((3, 5, 6)), rng.standard_normal((3, 6, 2))
    lx, lw, lv = (lucid.tensor(a, requires_grad=True) for a in (x, w, v))
    tx, tw, tv = (torch.tensor(a, requires_grad=True) for a in (x, w, v))

    def f(x, w, v):
        return (lucid.nn.functional.relu(x @ w) @ v).sum()
    lucid.compile(f)(lx, lw, lv).backward()
    (torch.relu(tx @ tw) @ tv).sum().backward()
    for a, b in ((lx, tx), (lw, tw), (lv, tv)):
        np.testing.assert_allclose(np.asarray(a.grad), b.grad.numpy(), rtol=1e-12, atol=1e-12)
    kernels = [str(k) for k in lucid.compile(f).lower(lx, lw, lv).backward_kernels]
    assert any("select" in k and k.startswith("Kernel(gemm") for k in kernels), kernels


@pytest.mark.parametrize("sa,sb,sbias", [((5,), (3, 5, 4), (4,)), ((3, 4, 5), (5,), (4,)), ((4, 5), (5,), (4,))])
def test_vector_products_keep_their_bias_apart(sa, sb, sbias):
    """A product with a 1-D side has no matrix columns for a bias row: not fused."""
    rng = np.random.default_rng(6)
    a, b, bias = rng.standard_normal(sa), rng.standard_normal(sb), rng.standard_normal(sbias)
    f = lucid.compile(lambda a, b, bias: lucid.nn.functional.relu(a @ b + bias))
    kernels = [str(k) for k in f.lower(lucid.tensor(a), lucid.tensor(b), lucid.tensor(bias)).kernels]
    assert kernels[0] == "Kernel(gemm: matmul)", kernels
    np.testing.assert_allclose(f(lucid.tensor(a), lucid.tensor(b), lucid.tensor(bias)).numpy(),
                               np.maximum(a @ b + bias, 0), rtol=1e-12, atol=1e-12)
