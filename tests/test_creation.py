"""Creation functions, generators and the default dtype, against PyTorch as the
specification: values and dtypes of ``zeros``/``ones``/``full``/``arange``/``linspace``/
``eye`` and their ``*_like`` forms, zero-copy ``from_numpy``/``as_tensor``, seeding and
the distributions of ``rand``/``randn``/``randint``/``normal``, ``set_default_dtype``
(eager, compiled, on either backend), and the error types of bad input."""
from fractions import Fraction

import numpy as np
import pytest
import torch

import lucid

TORCH_DTYPE = {"float32": torch.float32, "float64": torch.float64, "int32": torch.int32,
               "int64": torch.int64, "bool": torch.bool}
LUCID_DTYPE = {v: k for k, v in TORCH_DTYPE.items()}


@pytest.fixture
def float64_default():
    lucid.set_default_dtype(lucid.float64)
    torch.set_default_dtype(torch.float64)
    yield
    lucid.set_default_dtype(lucid.float32)
    torch.set_default_dtype(torch.float32)


def same(lt, tt):
    """lucid tensor ``lt`` equals torch tensor ``tt``: shape, dtype and values (floats to
    about an ulp: torch's float32 linspace counts in float32 and its float64 one with
    FMA, lucid counts in float64 and rounds once)."""
    assert lt.shape == tuple(tt.shape)
    assert lt.dtype == LUCID_DTYPE[tt.dtype], (lt.dtype, tt.dtype)
    if lt.dtype.is_floating_point:
        rtol = 2e-7 if lt.dtype == "float32" else 2e-15
        np.testing.assert_allclose(lt.numpy(), tt.numpy(), rtol=rtol, atol=rtol * 1e-3)
    else:
        np.testing.assert_array_equal(lt.numpy(), tt.numpy())


def torch_kwargs(kw):
    return {k: (TORCH_DTYPE[str(v)] if k == "dtype" else v) for k, v in kw.items()}


# -- values and dtypes as torch ---------------------------------------------------------

CASES = [
    ("zeros", (2, 3), {}), ("zeros", ((2, 3),), {}), ("zeros", ([4],), {}), ("zeros", ((),), {}),
    ("zeros", (0, 2), {"dtype": "int32"}), ("ones", (3,), {"dtype": "bool"}),
    ("ones", ((2, 1),), {"dtype": "float64"}),
    ("full", ((2, 2), 1.5), {}), ("full", ((3,), 7), {}), ("full", ((2,), True), {}),
    ("full", ((2,), 7), {"dtype": "float64"}), ("full", ((), -2.25), {}),
    ("arange", (5,), {}), ("arange", (5.0,), {}), ("arange", (1, 4), {}), ("arange", (0, 1, 0.3), {}),
    ("arange", (5, 0, -2), {}), ("arange", (-1.5, 3, 1), {"dtype": "int64"}), ("arange", (0.1, 0.4, 0.1), {}), ("arange", (0, 5, 1.5), {"dtype": "int64"}),
    ("arange", (1, 4), {"dtype": "float64"}), ("arange", (-3.5, 2.25, 0.75), {"dtype": "float64"}),
    ("arange", (0,), {}), ("arange", (10, 0, -3), {"dtype": "int32"}),
    ("linspace", (0, 1, 5), {}), ("linspace", (-2.5, 7.0, 13), {"dtype": "float64"}),
    ("linspace", (0, 10, 4), {"dtype": "int64"}), ("linspace", (3, 3, 1), {}), ("linspace", (0, 1, 0), {}),
    ("linspace", (1, -1, 2), {}), ("linspace", (0, 1, 101), {}),
    ("eye", (3,), {}), ("eye", (2, 4), {}), ("eye", (3, 1), {"dtype": "int64"}), ("eye", (0,), {}),
]


@pytest.mark.parametrize("name, args, kw", CASES, ids=[f"{n}{a}{k}" for n, a, k in CASES])
def test_matches_torch(name, args, kw):
    same(getattr(lucid, name)(*args, **kw), getattr(torch, name)(*args, **torch_kwargs(kw)))


@pytest.mark.parametrize("name, extra", [("zeros_like", ()), ("ones_like", ()), ("full_like", (2.7,)),
                                         ("full_like", (True,)), ("full_like", (-3,))])
@pytest.mark.parametrize("dtype", ["float32", "float64", "int32", "int64", "bool"])
def test_like_keeps_dtype_unless_given(name, extra, dtype):
    x = np.arange(6).reshape(2, 3).astype(dtype)
    same(getattr(lucid, name)(lucid.tensor(x), *extra), getattr(torch, name)(torch.tensor(x), *extra))
    same(getattr(lucid, name)(lucid.tensor(x), *extra, dtype=lucid.float64),
         getattr(torch, name)(torch.tensor(x), *extra, dtype=torch.float64))


def test_empty_and_empty_like_shapes_and_dtypes():
    assert lucid.empty(2, 3).shape == (2, 3) and lucid.empty(2, 3).dtype == lucid.float32
    x = lucid.zeros(4, dtype=lucid.int32)
    assert lucid.empty_like(x).shape == (4,) and lucid.empty_like(x).dtype == lucid.int32
    assert lucid.empty_like(x, dtype=lucid.float64).dtype == lucid.float64


def test_sizes_as_args_tuple_list_and_ints_from_numpy():
    for size in [(2, 3), ((2, 3),), ([2, 3],), (np.int64(2), 3)]:
        assert lucid.ones(*size).shape == (2, 3)
        assert lucid.rand(*size).shape == (2, 3)


def test_linspace_float32_close_to_torch_and_exact_ends():
    for start, end, steps in [(0, 1, 7), (-3.3, 8.1, 50), (1e3, -1e3, 9)]:
        ours, ref = lucid.linspace(start, end, steps).numpy(), torch.linspace(start, end, steps).numpy()
        np.testing.assert_allclose(ours, ref, rtol=1e-6, atol=1e-6)
        assert ours[0] == np.float32(start) and ours[-1] == np.float32(end)
        a, b = Fraction(start), Fraction(end)
        exact = np.array([float(a + (b - a) * i / (steps - 1)) for i in range(steps)])
        scale = max(abs(start), abs(end))
        np.testing.assert_allclose(lucid.linspace(start, end, steps, dtype=lucid.float64).numpy(),
                                   exact, rtol=0, atol=4 * 2.0 ** -52 * scale)
        np.testing.assert_allclose(ours, exact, rtol=0, atol=2.0 ** -24 * scale)  # float32: rounded once


def test_requires_grad_and_gradients_match_torch():
    x = lucid.arange(1.0, 4.0, dtype=lucid.float64, requires_grad=True)
    tx = torch.arange(1.0, 4.0, dtype=torch.float64, requires_grad=True)
    (x * x).sum().backward()
    (tx * tx).sum().backward()
    np.testing.assert_allclose(np.asarray(x.grad), tx.grad.numpy(), rtol=1e-12)
    for make in (lambda **k: lucid.zeros(2, **k), lambda **k: lucid.full((2,), 1.0, **k),
                 lambda **k: lucid.linspace(0, 1, 3, **k), lambda **k: lucid.eye(2, **k),
                 lambda **k: lucid.randn(2, **k), lambda **k: lucid.tensor([1.0], **k)):
        t = make(requires_grad=True)
        assert t.requires_grad and t.is_leaf
        (t * 2.0).sum().backward()
        np.testing.assert_array_equal(np.asarray(t.grad), np.full(t.shape, 2.0))


# -- from data ---------------------------------------------------------------------------

def test_from_numpy_shares_memory_both_ways():
    a = np.arange(6, dtype=np.float64).reshape(2, 3)
    t = lucid.from_numpy(a)
    assert t.dtype == lucid.float64 and t.shape == (2, 3)
    a[0, 0] = 42.0
    assert t.numpy()[0, 0] == 42.0
    t.numpy()[1, 2] = -1.0
    assert a[1, 2] == -1.0
    col = lucid.from_numpy(a[:, 1])  # a strided view: still shared
    a[1, 1] = 7.0
    assert col.tolist() == [1.0, 7.0]
    assert ((col * 2.0).numpy() == a[:, 1] * 2).all()


def test_as_tensor_shares_when_it_can_and_copies_when_it_must():
    a = np.zeros(3, np.float32)
    t = lucid.as_tensor(a)
    a[1] = 3.0
    assert t.tolist() == [0.0, 3.0, 0.0]
    c = lucid.as_tensor(a, dtype=lucid.float64)
    a[0] = 1.0
    assert c.dtype == lucid.float64 and c.tolist() == [0.0, 3.0, 0.0]
    assert lucid.as_tensor(t) is t and lucid.as_tensor(t, dtype=lucid.float32) is t
    assert lucid.as_tensor(t, dtype=lucid.float64).dtype == lucid.float64
    same(lucid.as_tensor([1, 2]), torch.as_tensor([1, 2]))
    same(lucid.as_tensor([[1.5]], dtype=lucid.float64), torch.as_tensor([[1.5]], dtype=torch.float64))


def test_tensor_copies_its_data():
    a = np.ones(2)
    t = lucid.tensor(a)
    a[0] = 5.0
    assert t.tolist() == [1.0, 1.0]
    u = lucid.tensor(t)
    t.numpy()[1] = 9.0
    assert u.tolist() == [1.0, 1.0]


def test_is_tensor_and_numel():
    assert lucid.is_tensor(lucid.zeros(1)) and not lucid.is_tensor([1]) and not lucid.is_tensor(np.zeros(1))
    assert lucid.numel(lucid.zeros(2, 3, 4)) == 24 == torch.numel(torch.zeros(2, 3, 4))
    assert lucid.numel(lucid.zeros(0, 5)) == 0
    with pytest.raises(TypeError, match="numel"):
        lucid.numel([1, 2])


# -- errors: PyTorch's exception types, messages naming the function ---------------------

ERRORS = [
    ("zeros(-1)", "zeros"), ("ones(2, -3)", "ones"), ("zeros(2.5)", "zeros"), ("zeros((2, 'a'))", "zeros"),
    ("full(2, 1.0)", "full"), ("full((2,), 'x')", "full"),
    ("arange(0, 5, 0)", "arange"), ("arange(5, 0)", "arange"), ("arange(float('inf'))", "arange"),
    ("arange('a')", "arange"),
    ("arange(3, dtype=DT.bool)", "arange"), ("linspace(0, 1, 3, dtype=DT.bool)", "linspace"),
    ("linspace(0, 1, -1)", "linspace"), ("linspace(0, 1, 2.5)", "linspace"),
    ("eye(-1)", "eye"), ("eye(2.5)", "eye"), ("eye(2, -2)", "eye"),
    ("rand(2, dtype=DT.int64)", "rand"), ("randn(2, dtype=DT.int64)", "randn"),
    ("randint(5, 5, (2,))", "randint"), ("randint(3, 2)", "randint"),
    ("randint(0, 2**40, (2,), dtype=DT.int32)", "randint"), ("randint(-3, 4, (5,), dtype=DT.bool)", "randint"),
    ("normal(0.0, -1.0, (2,))", "normal"), ("normal(M.zeros(2), -1.0)", "normal"),
    ("normal(M.zeros(2, dtype=DT.int64), 1.0)", "normal"), ("normal(M.zeros(2), M.ones(3))", "normal"),
    ("normal(0.0, 1.0)", "normal"), ("rand(2, generator=3)", "rand"),
    ("from_numpy([1])", "from_numpy"), ("from_numpy(np.arange(4)[::-1])", "from_numpy"),
    ("zeros(2, requires_grad=True, dtype=DT.int64)", "requires_grad"),
    ("set_default_dtype(DT.int64)", "default"), ("manual_seed(2**64)", "seed"),
]


@pytest.mark.parametrize("expr, name", ERRORS, ids=[e for e, _ in ERRORS])
def test_bad_input_raises_torchs_error_type(expr, name):
    with pytest.raises(Exception) as expected:
        eval(f"torch.{expr}", {"torch": torch, "np": np, "M": torch, "DT": torch})
    with pytest.raises(Exception) as got:
        eval(f"lucid.{expr}", {"lucid": lucid, "np": np, "M": lucid, "DT": lucid})
    assert isinstance(got.value, expected.type), (type(got.value), expected.type, str(got.value))
    assert name in str(got.value), str(got.value)


def test_other_bad_input():
    with pytest.raises(TypeError, match="from_numpy.*complex"):
        lucid.from_numpy(np.zeros(2, np.complex64))  # torch has complex tensors; lucid does not
    with pytest.raises(TypeError, match="expected a Tensor"):
        lucid.zeros_like(np.zeros(2))
    with pytest.raises(RuntimeError, match="cpu"):
        lucid.zeros(2, device="cuda")
    with pytest.raises(TypeError, match="set_state"):
        lucid.Generator().set_state(np.zeros(12))
    with pytest.raises(RuntimeError, match="set_state.*shape"):
        lucid.Generator().set_state(lucid.zeros(3, dtype=lucid.int64))
    with pytest.raises(TypeError, match="randint.*high"):
        lucid.randint(0, 2.5, (2,))


# -- generators --------------------------------------------------------------------------

def draws(**kw):
    return np.concatenate([lucid.rand(5, **kw).numpy().astype(np.float64),
                           lucid.randn(5, **kw).numpy().astype(np.float64),
                           lucid.randint(0, 100, (5,), **kw).numpy().astype(np.float64),
                           lucid.normal(1.0, 2.0, (5,), **kw).numpy().astype(np.float64)])


def test_manual_seed_reproduces_and_different_seeds_differ():
    g = lucid.manual_seed(123)
    assert g is lucid.default_generator and lucid.initial_seed() == 123
    a = draws()
    lucid.manual_seed(123)
    np.testing.assert_array_equal(a, draws())
    lucid.manual_seed(124)
    assert not np.array_equal(a, draws())
    lucid.random.seed(123)  # the older spelling keeps working
    np.testing.assert_array_equal(a, draws())


def test_generator_argument_is_independent_of_the_default():
    g1, g2 = lucid.Generator().manual_seed(5), lucid.Generator().manual_seed(5)
    a = draws(generator=g1)
    lucid.manual_seed(0)
    lucid.randn(100)  # the default generator's use does not disturb g2
    np.testing.assert_array_equal(a, draws(generator=g2))
    assert g1.initial_seed() == 5 and g1.device == "cpu"


def test_get_state_set_state_and_rng_state():
    g = lucid.Generator().manual_seed(9)
    lucid.randn(3, generator=g)
    state = g.get_state()
    a = draws(generator=g)
    lucid.rand(7, generator=g)
    g.set_state(state)
    np.testing.assert_array_equal(a, draws(generator=g))
    assert g.initial_seed() == 9
    other = lucid.Generator().set_state(state)  # a state moves between generators
    g.set_state(state)
    np.testing.assert_array_equal(draws(generator=g), draws(generator=other))
    s = lucid.get_rng_state()
    b = draws()
    lucid.set_rng_state(s)
    np.testing.assert_array_equal(b, draws())


def test_seed_and_negative_seeds():
    g = lucid.Generator()
    s = g.seed()
    assert isinstance(s, int) and g.initial_seed() == s and 0 <= s < 2**64
    assert g.manual_seed(-1).initial_seed() == 2**64 - 1  # wraps, as torch
    assert torch.Generator().manual_seed(-1).initial_seed() == 2**64 - 1


def test_nn_linear_initialisation_follows_manual_seed():
    lucid.manual_seed(3)
    w1 = lucid.nn.Linear(4, 2).weight.numpy().copy()
    lucid.manual_seed(3)
    np.testing.assert_array_equal(w1, lucid.nn.Linear(4, 2).weight.numpy())


# -- distributions ---------------------------------------------------------------------

N = 200_000


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_rand_uniform_moments_and_bounds(dtype):
    x = lucid.rand(N, dtype=dtype, generator=lucid.Generator().manual_seed(1)).numpy()
    assert x.dtype == dtype and x.min() >= 0.0 and x.max() < 1.0
    se = np.sqrt(1 / 12 / N)
    assert abs(x.mean() - 0.5) < 5 * se
    assert abs(x.var() - 1 / 12) < 0.002
    hist = np.histogram(x, bins=10, range=(0, 1))[0]
    assert (np.abs(hist - N / 10) < 5 * np.sqrt(N / 10)).all()


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_randn_moments(dtype):
    x = lucid.randn(N, dtype=dtype, generator=lucid.Generator().manual_seed(2)).numpy().astype(np.float64)
    assert abs(x.mean()) < 5 / np.sqrt(N)
    assert abs(x.var() - 1) < 5 * np.sqrt(2 / N)
    assert abs(np.mean(x ** 3)) < 5 * np.sqrt(15 / N)          # symmetric
    assert abs(np.mean(x ** 4) - 3) < 5 * np.sqrt(96 / N)      # normal kurtosis
    assert abs(np.mean(np.abs(x) < 1) - 0.682689) < 0.005


def test_randint_bounds_and_uniformity():
    g = lucid.Generator().manual_seed(3)
    x = lucid.randint(-3, 4, (N,), generator=g).numpy()
    assert x.dtype == np.int64 and x.min() == -3 and x.max() == 3
    counts = np.bincount(x + 3)
    assert (np.abs(counts - N / 7) < 5 * np.sqrt(N / 7)).all()
    b = lucid.randint(2, (1000,), dtype=lucid.bool, generator=g).numpy()
    assert b.dtype == np.bool_ and 400 < b.sum() < 600
    big = lucid.randint(2**62, 2**63 - 1, (100,), generator=g).numpy()
    assert (big >= 2**62).all()
    f = lucid.randint(0, 3, (100,), dtype=lucid.float32, generator=g).numpy()
    assert f.dtype == np.float32 and set(np.unique(f)) <= {0.0, 1.0, 2.0}


def test_normal_variants_moments_and_broadcast():
    g = lucid.Generator().manual_seed(4)
    x = lucid.normal(3.0, 2.0, (N,), generator=g).numpy().astype(np.float64)
    assert abs(x.mean() - 3) < 5 * 2 / np.sqrt(N) and abs(x.std() - 2) < 0.02
    mean = lucid.tensor([[-10.0], [10.0]], dtype=lucid.float64)
    std = lucid.tensor([0.0, 1.0, 5.0], dtype=lucid.float64)
    y = lucid.normal(mean, std, generator=g)
    assert y.shape == (2, 3) and y.dtype == lucid.float64
    assert (y.numpy()[:, 0] == [-10.0, 10.0]).all()  # std 0: exactly the mean
    many = np.stack([lucid.normal(mean, std, generator=g).numpy() for _ in range(4000)])
    np.testing.assert_allclose(many.mean(0), np.broadcast_to(mean.numpy(), (2, 3)), atol=0.3)
    np.testing.assert_allclose(many.std(0), np.broadcast_to(std.numpy(), (2, 3)), rtol=0.05, atol=1e-12)
    assert lucid.normal(mean, 1.0).shape == (2, 1) and lucid.normal(0.0, std).shape == (3,)


def test_normal_gradients_are_zero_as_in_torch():
    m = lucid.zeros(3, dtype=lucid.float64, requires_grad=True)
    s = lucid.ones(3, dtype=lucid.float64, requires_grad=True)
    y = lucid.normal(m, s)
    assert y.requires_grad
    y.sum().backward()
    tm = torch.zeros(3, dtype=torch.float64, requires_grad=True)
    ts = torch.ones(3, dtype=torch.float64, requires_grad=True)
    torch.normal(tm, ts).sum().backward()
    np.testing.assert_array_equal(np.asarray(m.grad), tm.grad.numpy())
    np.testing.assert_array_equal(np.asarray(s.grad), ts.grad.numpy())


def test_like_samplers_keep_shape_and_dtype():
    x = lucid.zeros(3, 2, dtype=lucid.float64)
    assert lucid.rand_like(x).dtype == lucid.float64 and lucid.randn_like(x).shape == (3, 2)
    assert lucid.rand_like(x, dtype=lucid.float32).dtype == lucid.float32
    i = lucid.zeros(50, dtype=lucid.int32)
    r = lucid.randint_like(i, 5)
    assert r.dtype == lucid.int32 and 0 <= r.numpy().min() and r.numpy().max() < 5
    r = lucid.randint_like(i, 2, 4).numpy()
    assert r.min() >= 2 and r.max() < 4
    g1, g2 = lucid.Generator().manual_seed(1), lucid.Generator().manual_seed(1)
    assert lucid.randn_like(x, generator=g1).tolist() == lucid.randn(3, 2, dtype=lucid.float64, generator=g2).tolist()


def test_rand_float32_is_drawn_in_float32_never_one():
    # a float64 sample just below 1 rounds to 1.0 in float32; drawing in float32 cannot
    g = lucid.Generator().manual_seed(0)
    x = lucid.rand(1 << 22, generator=g).numpy()
    assert x.dtype == np.float32 and x.max() < 1.0


# -- the default dtype ---------------------------------------------------------------------

def test_default_dtype_float64_everywhere(float64_default):
    assert lucid.get_default_dtype() == lucid.float64
    for expr in ["tensor([1.0])", "Tensor([1])", "zeros(2)", "ones(1)", "empty(1)", "rand(2)",
                 "randn(2)", "arange(2.0)", "full((1,), 2.0)", "linspace(0, 1, 3)", "eye(2)",
                 "normal(0.0, 1.0, (2,))", "tensor([1]) + 2.5", "tensor([1]) * 0.5",
                 "tensor(2.0)", "as_tensor([1.5])"]:
        got = eval(f"lucid.{expr}", {"lucid": lucid})
        ref = eval(f"torch.{expr}", {"torch": torch})
        assert got.dtype == LUCID_DTYPE[ref.dtype], expr
    assert lucid.arange(3).dtype == lucid.int64 and lucid.full((1,), 1).dtype == lucid.int64
    x = lucid.tensor([1, 2])
    np.testing.assert_array_equal((x + 0.1).numpy(), (torch.tensor([1, 2]) + 0.1).numpy())


@pytest.mark.parametrize("backend", ["compiled", "interpret"])
def test_default_dtype_in_compiled_functions(float64_default, monkeypatch, backend):
    monkeypatch.setenv("LUCID_BACKEND", backend)

    def f(x):
        return x * 0.1 + lucid.ones(x.shape[0]) + lucid.arange(x.shape[0])

    x = lucid.tensor([1, 2, 3], dtype=lucid.int64)
    ref = torch.tensor([1, 2, 3]) * 0.1 + torch.ones(3) + torch.arange(3)
    for out in (f(x), lucid.compile(f)(x)):
        assert out.dtype == lucid.float64
        np.testing.assert_allclose(out.numpy(), ref.numpy(), rtol=1e-15)
    lucid.set_default_dtype(lucid.float32)
    assert lucid.compile(f)(x).dtype == lucid.float32 and f(x).dtype == lucid.float32


def test_set_default_dtype_names_and_restores():
    assert lucid.get_default_dtype() == lucid.float32
    lucid.set_default_dtype("float64")
    try:
        assert lucid.zeros(1).dtype == lucid.float64
    finally:
        lucid.set_default_dtype(lucid.float32)
    assert lucid.zeros(1).dtype == lucid.float32 and lucid.tensor([1.0]).dtype == lucid.float32


# -- lucid.compile --------------------------------------------------------------------------

@pytest.mark.parametrize("backend", ["compiled", "interpret"])
def test_creation_inside_compile(monkeypatch, backend):
    monkeypatch.setenv("LUCID_BACKEND", backend)

    def f(x):
        return (x + lucid.zeros_like(x) + lucid.full_like(x, 2.0)) * lucid.linspace(0, 1, x.shape[-1]) \
            + lucid.eye(x.shape[0], x.shape[1]) + lucid.ones_like(x, dtype=lucid.float64)

    x = lucid.tensor(np.arange(6.0).reshape(2, 3))
    tx = torch.tensor(np.arange(6.0).reshape(2, 3))
    ref = (tx + 2.0) * torch.linspace(0, 1, 3) + torch.eye(2, 3) + 1.0
    cf = lucid.compile(f)
    for out in (f(x), cf(x), cf(x * 2.0 / 2.0)):
        np.testing.assert_allclose(out.numpy(), ref.numpy(), rtol=1e-15)
        assert out.dtype == lucid.float64


def test_random_inside_compile_limits():
    """Random numbers inside lucid.compile are part of the graph (tests/test_compile_random.py);
    what a graph cannot do is refused with TracingError, naming the op."""
    with pytest.raises(lucid.TracingError, match="randint.*2\\*\\*32"):
        lucid.compile(lambda x: x + lucid.randint(0, 2 ** 40, (3,)))(lucid.zeros(3, dtype=lucid.int64))
    with pytest.raises(lucid.TracingError, match="rand.*requires grad.*compiled function"):
        lucid.compile(lambda x: x + lucid.rand_like(x, requires_grad=True))(lucid.zeros(3))


# -- Tensor.new_* ----------------------------------------------------------------------------

@pytest.mark.parametrize("dtype", ["float32", "float64", "int32", "int64", "bool"])
def test_new_methods_match_torch(dtype):
    x, tx = lucid.zeros(2, dtype=dtype), torch.zeros(2, dtype=TORCH_DTYPE[dtype])
    same(x.new_zeros(2, 3), tx.new_zeros(2, 3))
    same(x.new_ones((3,)), tx.new_ones((3,)))
    same(x.new_full((2, 2), 2.7), tx.new_full((2, 2), 2.7))
    same(x.new_full((1,), 3, dtype=lucid.float64), tx.new_full((1,), 3, dtype=torch.float64))
    same(x.new_tensor([[1.5, 0.0]]), tx.new_tensor([[1.5, 0.0]]))
    assert x.new_empty(4).shape == (4,) and x.new_empty(4).dtype == dtype
    assert x.new_zeros(1, dtype=lucid.float64, requires_grad=True).requires_grad
