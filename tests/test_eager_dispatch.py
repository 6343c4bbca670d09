"""The general eager path (``lucid/dispatch.py``): one signature lookup and one native
call per op; Python numbers as immediate kernel arguments; chains of several steps that
keep the inner results their gradient reads. Checked against PyTorch in float64."""
from __future__ import annotations

import threading

import numpy as np
import pytest
import torch

import lucid
import lucid.nn.functional as F
from lucid import dispatch
from lucid_codegen.runtime import plan as runtime


def entries() -> int:
    return sum(len(t) for t in dispatch._TABLES.values())


def t64(a, grad=False):
    return torch.tensor(np.asarray(a, np.float64), requires_grad=grad)


# ------------------------------------------------------------------ numbers as operands
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_numbers_share_one_signature_and_launch_once(dtype):
    x = lucid.randn(5, 3, dtype=dtype)
    x * 2.0
    before, launches = entries(), runtime.kernel_launches()
    for c in (3.0, -0.5, 1e-3, 7):
        out = x * c
        assert out.dtype == dtype
        expected = (torch.tensor(x.numpy()) * c).numpy()
        np.testing.assert_array_equal(out.numpy(), expected)  # the number rounds as torch's does
    assert runtime.kernel_launches() - launches == 4          # no launch of its own
    assert entries() - before == 1                            # the int's signature, once


def test_negative_zero_and_special_numbers_reach_the_kernel_as_they_are():
    x = lucid.tensor([1.0, 2.0])
    assert np.signbit((x * 0.0).numpy()).tolist() == [False, False]
    assert np.signbit((x * -0.0).numpy()).tolist() == [True, True]
    assert np.isnan((x * float("nan")).numpy()).all()
    assert ((x + float("inf")).numpy() == np.inf).all()


@pytest.mark.parametrize("expr", [
    lambda x: 2.0 - x, lambda x: 3 / x, lambda x: 1.5 * x, lambda x: x - 1,
    lambda x: 0.5 + x, lambda x: x / 4.0, lambda x: x * True, lambda x: x * np.float32(2.5),
    lambda x: lucid.where(x > 0.5, x, 0.25), lambda x: lucid.maximum(x, 0.5)])
def test_numbers_on_either_side_with_gradients_match_torch(expr):
    data = np.random.default_rng(1).uniform(0.1, 2.0, (4, 3))
    x = lucid.tensor(data, dtype="float64", requires_grad=True)
    tx = t64(data, grad=True)
    tfn = {lucid.where: torch.where, lucid.maximum: torch.maximum}
    out = expr(x)
    ref = expr_torch(expr, tx)
    np.testing.assert_allclose(out.numpy(), ref.detach().numpy(), rtol=1e-12)
    out.sum().backward()
    ref.sum().backward()
    np.testing.assert_allclose(x.grad, tx.grad.numpy(), rtol=1e-12)
    del tfn


def expr_torch(expr, tx):
    """The same expression on a torch tensor (lucid.where/maximum spelled as torch's)."""
    orig_where, orig_max = lucid.where, lucid.maximum
    try:
        lucid.where = lambda c, a, b: torch.where(c, a, torch.as_tensor(b, dtype=tx.dtype))
        lucid.maximum = lambda a, b: torch.maximum(a, torch.as_tensor(b, dtype=tx.dtype))
        return expr(tx)
    finally:
        lucid.where, lucid.maximum = orig_where, orig_max


# ------------------------------------------------------------------ chains of several steps
@pytest.mark.parametrize("name", ["log_softmax", "softmax", "cross_entropy", "cross_entropy_probs",
                                  "mse_loss"])
def test_one_call_chains_match_torch_forward_and_gradient(name):
    rng = np.random.default_rng(7)
    z = rng.standard_normal((6, 5))
    labels = rng.integers(0, 5, 6)
    probs = rng.dirichlet(np.ones(5), 6)
    target = rng.standard_normal((6, 5))
    x, tx = lucid.tensor(z, dtype="float64", requires_grad=True), t64(z, grad=True)
    out, ref = {
        "log_softmax": lambda: (F.log_softmax(x, axis=1), torch.log_softmax(tx, 1)),
        "softmax": lambda: (F.softmax(x, axis=0), torch.softmax(tx, 0)),
        "cross_entropy": lambda: (F.cross_entropy(x, labels), torch.nn.functional.cross_entropy(
            tx, torch.tensor(labels))),
        "cross_entropy_probs": lambda: (F.cross_entropy(x, probs, reduction="sum"),
                                        torch.nn.functional.cross_entropy(tx, t64(probs), reduction="sum")),
        "mse_loss": lambda: (F.mse_loss(x, lucid.tensor(target, dtype="float64"), reduction="none"),
                             torch.nn.functional.mse_loss(tx, t64(target), reduction="none")),
    }[name]()
    np.testing.assert_allclose(out.numpy(), ref.detach().numpy(), rtol=1e-10, atol=1e-12)
    seed = rng.standard_normal(out.shape)
    out.backward(lucid.tensor(seed, dtype="float64"))
    ref.backward(t64(seed))
    np.testing.assert_allclose(x.grad, tx.grad.numpy(), rtol=1e-10, atol=1e-12)


def test_a_recorded_chain_computes_only_the_inner_results_its_gradient_reads():
    x = lucid.randn(4, 6, requires_grad=True)
    F.log_softmax(x)  # records: max, stop_gradient, sub, exp, sum, log, sub
    entry = next(e for t in dispatch._TABLES.values() for k, e in t.items()
                 if isinstance(k[0], dispatch.Chain) and k[0].name == "log_softmax")
    assert entry.saved == (3, 4)  # exp (its own gradient) and the sum (log's)
    y = F.log_softmax(x)
    exp, total = y._node.saved      # the one record of the call keeps just these two
    np.testing.assert_allclose(total, exp.sum(axis=1, keepdims=True), rtol=1e-6)
    assert exp.shape == (4, 6) and total.shape == (4, 1)
    with lucid.no_grad():
        assert F.log_softmax(x)._node is None


def test_recording_builds_no_ir_and_a_known_backward_derives_nothing(monkeypatch):
    import lucid.autograd as autograd
    x = lucid.randn(5, 4, requires_grad=True)
    w = lucid.randn(3, 4, requires_grad=True)

    def step():
        loss = F.cross_entropy(F.relu(F.linear(x, w)) * 0.5, [0, 1, 2, 0, 1])
        loss.backward()
        return x.grad.numpy().copy(), w.grad.numpy().copy()
    x.grad = w.grad = None
    first = step()

    def refuse(*args, **kwargs):
        raise AssertionError("a known backward derived a graph")
    monkeypatch.setattr(autograd, "_derive", refuse)
    monkeypatch.setattr(dispatch, "make_node", refuse)
    x.grad = w.grad = None
    again = step()
    for a, b in zip(first, again):
        np.testing.assert_array_equal(a, b)


# ------------------------------------------------------------------ the hot path
def test_a_known_signature_builds_no_ir(monkeypatch):
    import lucid_ir.builder
    x, y, w, b = lucid.randn(3, 4), lucid.randn(3, 4), lucid.randn(2, 4), lucid.randn(2)
    calls = [lambda: x + y, lambda: x * 2.0, lambda: 1.0 - x, lambda: x.exp(), lambda: F.relu(x),
             lambda: x.sum(), lambda: x.mean(axis=1), lambda: x @ y.T, lambda: F.linear(x, w, b),
             lambda: F.log_softmax(x)]
    first = [c().numpy() for c in calls]

    def no_ir(*args, **kwargs):
        raise AssertionError("IR built on the hot path")
    monkeypatch.setattr(lucid_ir.builder, "make_node", no_ir)
    monkeypatch.setattr(dispatch, "make_node", no_ir)
    for c, expected in zip(calls, first):
        np.testing.assert_array_equal(c().numpy(), expected)


@pytest.mark.parametrize("shape, bias", [((2, 3, 5), "vector"), ((2, 1, 3, 5), None), ((4, 0, 5), "row"),
                                         ((3, 7, 5), "transposed")])
def test_linear_on_more_dims_is_one_recorded_call_found_in_one_lookup(monkeypatch, shape, bias):
    """F.linear on a 3-D (or more) input is one eager call (the 2-D product between two
    views), recorded once with the caller's tensors as parents, and a repeated call of
    the signature takes call3's lookup (no general path), with PyTorch's values and
    gradients; an input that is a transposed view, a (1, out) bias and no rows too."""
    import lucid.nn.functional as functional
    rng = np.random.default_rng(4)
    xs = rng.standard_normal(shape)
    if bias == "transposed":
        xs = np.ascontiguousarray(np.swapaxes(xs, 0, 1)).swapaxes(0, 1)
    ws, bs = rng.standard_normal((6, 5)), rng.standard_normal((1, 6) if bias == "row" else (6,))
    lx, lw = lucid.tensor(xs, requires_grad=True), lucid.tensor(ws, requires_grad=True)
    lb = None if bias is None else lucid.tensor(bs, requires_grad=True)
    tx, tw = torch.tensor(xs, requires_grad=True), torch.tensor(ws, requires_grad=True)
    tb = None if bias is None else torch.tensor(bs, requires_grad=True)
    out = F.linear(lx, lw, lb)
    assert out._parents == tuple(t for t in (lx, lw, lb) if t is not None)   # one record
    general = []
    real = functional._linear
    monkeypatch.setattr(functional, "_linear", lambda *a: general.append(1) or real(*a))
    out = F.linear(lx, lw, lb)
    assert not general
    want = torch.nn.functional.linear(tx, tw, tb)
    np.testing.assert_allclose(out.numpy(), want.detach().numpy(), rtol=1e-12, atol=1e-12)
    g = rng.standard_normal(want.shape)
    out.backward(lucid.tensor(g))
    want.backward(torch.tensor(g))
    for lt, t in ((lx, tx), (lw, tw), (lb, tb)):
        if t is not None:
            np.testing.assert_allclose(lt.grad.numpy(), t.grad.numpy(), rtol=1e-12, atol=1e-12)


def test_non_contiguous_operands_get_their_own_signature_and_right_values():
    base = np.arange(60, dtype=np.float32).reshape(6, 10)
    views = [base, base.T, base[::2, 1::3], base[:, ::-1], np.broadcast_to(base[:1], (6, 10))]
    for v in views:
        x = lucid.Tensor(v)
        np.testing.assert_array_equal((x * 2.0 + x).numpy(), v * 2.0 + v)
        np.testing.assert_allclose(x.sum(axis=0).numpy(), v.sum(axis=0), rtol=1e-6)
        np.testing.assert_allclose(x.exp().numpy(), np.exp(v), rtol=1e-6)


@pytest.mark.parametrize("shape", [(0,), (0, 3), (), (1,), (7, 1)])
def test_empty_and_scalar_shapes(shape):
    data = np.random.default_rng(0).standard_normal(shape).astype(np.float32)
    x = lucid.Tensor(data)
    np.testing.assert_array_equal((x * 3.0 - x).numpy(), data * np.float32(3.0) - data)
    np.testing.assert_array_equal(F.relu(x).numpy(), np.maximum(data, 0))
    assert (x + x).shape == shape


def test_threads_share_signatures_safely():
    x = lucid.randn(64, 33)
    x * 1.0, x + x, x.sum(axis=1)
    errors = []

    def work(seed):
        rng = np.random.default_rng(seed)
        for _ in range(200):
            a = rng.standard_normal((64, 33)).astype(np.float32)
            c = float(rng.standard_normal())
            t = lucid.Tensor(a)
            if not (np.array_equal((t * c).numpy(), a * np.float32(c))
                    and np.array_equal((t + t).numpy(), a + a)):
                errors.append(seed)
    threads = [threading.Thread(target=work, args=(s,)) for s in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []


def test_a_trace_records_concrete_tensors_while_other_threads_stay_eager():
    """Eager hot paths read the process-wide count of active traces before their
    thread's tracer: a concrete tensor used inside a trace is still recorded (a
    constant of the graph), another thread's calls meanwhile stay eager, and the
    count is back to 0 after a trace that raised."""
    from lucid import tracing
    w = lucid.randn(4)
    w + w, w.exp()  # known signatures: the hot path would take them
    inside, outside = threading.Event(), threading.Event()
    eager_results = []

    def other_thread():
        inside.wait(5)
        eager_results.append(((w + w).numpy(), w.exp().numpy()))
        outside.set()

    t = threading.Thread(target=other_thread)
    t.start()

    @lucid.compile
    def f(x):
        inside.set()
        outside.wait(5)
        return x * (w + w).exp()  # w concrete: recorded, not computed eagerly
    x = lucid.randn(4)
    out = f(x)
    t.join()
    np.testing.assert_allclose(out.numpy(), x.numpy() * np.exp(2 * w.numpy()), rtol=1e-6)
    (sum_, exp_), = eager_results
    np.testing.assert_array_equal(sum_, w.numpy() + w.numpy())
    np.testing.assert_allclose(exp_, np.exp(w.numpy()), rtol=1e-6)
    assert tracing.ACTIVE[0] == 0
    inside.set(), outside.set()
    w.mul_(2.0)  # recorded in the graph, (w + w).exp() follows w; computed eagerly at
    # trace time, it would have been frozen into the graph
    np.testing.assert_allclose(f(x).numpy(), x.numpy() * np.exp(2 * w.numpy()), rtol=1e-6)

    @lucid.compile
    def broken(x):
        raise KeyError("inside the trace")
    with pytest.raises(KeyError):
        broken(x)
    assert tracing.ACTIVE[0] == 0 and (w + w).numpy().tolist() == (2 * w.numpy()).tolist()


def test_backends_keep_separate_entries(monkeypatch):
    x = lucid.randn(3, 5)
    native = (x * 2.5 - x.exp()).numpy()
    monkeypatch.setenv("LUCID_BACKEND", "interpret")
    launches = runtime.kernel_launches()
    interpreted = (x * 2.5 - x.exp()).numpy()
    assert runtime.kernel_launches() == launches  # the interpreter ran it, not the native entry
    np.testing.assert_allclose(interpreted, native, rtol=1e-5)


def test_bounds_mode_runs_eager_ops_through_checked_plans(monkeypatch):
    monkeypatch.setenv("LUCID_CHECK_BOUNDS", "1")
    x = lucid.randn(9, 7)
    np.testing.assert_allclose((x * 3.0 + 1.0).numpy(), x.numpy() * 3 + 1, rtol=1e-6)
    np.testing.assert_allclose(F.log_softmax(x).numpy(),
                               torch.log_softmax(torch.tensor(x.numpy()), 1).numpy(), atol=1e-6)


# ------------------------------------------------------------------ errors
def test_errors_come_before_native_code_and_name_the_op():
    with pytest.raises(ValueError, match=r"add: shapes \(2, 3\) and \(4,\) cannot be broadcast"):
        lucid.zeros(2, 3) + lucid.zeros(4)
    lucid.zeros(3, 2) @ lucid.zeros(2, 5)
    with pytest.raises(ValueError, match=r"matmul: shapes \(3, 2\) and \(3, 5\) do not fit"):
        lucid.zeros(3, 2) @ lucid.zeros(3, 5)
    with pytest.raises(ValueError, match="linear: input"):
        F.linear(lucid.zeros(2, 3), lucid.zeros(4, 5))
    with pytest.raises(TypeError, match="expected numeric data"):
        dispatch.call(dispatch.single("add", (), 2), (lucid.zeros(2), object()))
    with pytest.raises(ValueError, match="reduction must be"):
        F.cross_entropy(lucid.zeros(2, 3), [0, 1], reduction="avg")


def test_a_traced_tensor_used_outside_its_trace_is_refused():
    kept = []

    @lucid.compile
    def f(x):
        kept.append(x * 2.0)
        return x + 1.0
    f(lucid.randn(3))
    with pytest.raises(lucid.TracingError):
        kept[0] + kept[0]
    with pytest.raises(lucid.TracingError):
        kept[0].exp()


def test_odd_strides_reach_the_general_gemm_path():
    """Byte strides that are not whole elements: the native adapter declines, the
    general path copies; the result is still right."""
    raw = np.random.default_rng(3).standard_normal(200).astype(np.float32)
    buf = bytearray(raw.tobytes())
    odd = np.ndarray((6, 5), np.float32, buf, 2, (22, 4))  # rows 22 bytes apart
    assert odd.strides[0] % odd.itemsize
    w = lucid.randn(3, 5)
    got = F.linear(lucid.Tensor(odd), w).numpy()
    np.testing.assert_allclose(got, odd @ w.numpy().T, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose((lucid.Tensor(odd) * 2.0).numpy(), odd * 2, rtol=0)


def test_a_full_signature_table_starts_over_and_stays_right(monkeypatch):
    monkeypatch.setattr(dispatch, "_ENTRY_LIMIT", 3)
    x = lucid.randn(4, 3, requires_grad=True)
    for k in range(12):  # far more signatures than the table holds
        y = x * float(k) + x.exp() - 1.0
        y.sum().backward()
    np.testing.assert_allclose(x.grad, (sum(range(12)) + 12 * np.exp(x.numpy())), rtol=1e-5)


# ------------------------------------------------------------------ the inline cache
def _bound_chain(method) -> dispatch.Chain:
    """The chain a Tensor operator or method was bound to (``dispatch.binary_method``)."""
    return next(c.cell_contents for c in method.__closure__ if isinstance(c.cell_contents, dispatch.Chain))


_METHODS = ("__add__", "__radd__", "__sub__", "__mul__", "exp", "tanh")


@pytest.fixture
def fresh_caches():
    """Every one-op chain's inline cache disarmed with no misses counted (other tests'
    calls may have made a chain stop arming it)."""
    from lucid.nn import functional as functional_module
    for chain in [*dispatch._SINGLE.values(), *(_bound_chain(getattr(lucid.Tensor, m)) for m in _METHODS),
                  functional_module._LINEAR, functional_module._LINEAR_BIAS]:
        chain.hot, chain.hot_misses = None, 0


def _warm(fn, times=3):
    """Call ``fn`` enough for its chain's inline cache to be armed (the first call of a
    signature builds its entry; the next finds it in the table and arms the cache)."""
    for _ in range(times):
        out = fn()
    return out


def test_the_inline_cache_serves_repeated_calls_and_checks_layouts_natively(fresh_caches):
    x, y = lucid.randn(6, 5), lucid.randn(6, 5)
    chain = _bound_chain(lucid.Tensor.__add__)
    _warm(lambda: x + y)
    assert chain.hot is not None and chain.hot.pattern == ("tensor", "tensor")
    before = entries()
    table_calls = []
    real_table = dispatch._table
    dispatch._table = lambda: table_calls.append(1) or real_table()
    try:
        np.testing.assert_array_equal((x + y).numpy(), x.numpy() + y.numpy())
        assert not table_calls                        # served by the cache: no lookup
        # the same chain with other layouts: the native check misses, the table serves
        for a, b in [(lucid.randn(5, 6).T, y), (x, lucid.randn(6, 5, dtype="float64")),
                     (lucid.randn(6, 1), lucid.randn(5)), (lucid.tensor([1, 2]), lucid.tensor([3, 4]))]:
            for _ in range(2):
                np.testing.assert_array_equal((a + b).numpy(), a.numpy() + b.numpy())
        assert table_calls
    finally:
        dispatch._table = real_table
    assert entries() > before


def test_numbers_of_another_type_never_take_a_cached_tensor_call(fresh_caches):
    """int tensor + 2 and int tensor + 2.5 are different signatures (int and float
    results): the cache of one must not serve the other."""
    i = lucid.tensor([1, 2, 3])
    _warm(lambda: i + 2)
    for _ in range(3):
        got = i + 2.5
        assert got.dtype == "float32" and got.tolist() == [3.5, 4.5, 5.5]
        got = i + 2
        assert got.dtype == "int64" and got.tolist() == [3, 4, 5]
        got = 2.5 + i
        assert got.dtype == "float32" and got.tolist() == [3.5, 4.5, 5.5]
        got = i + i
        assert got.dtype == "int64" and got.tolist() == [2, 4, 6]


def test_a_chain_whose_calls_keep_changing_signature_stops_arming_its_cache(fresh_caches):
    chain = _bound_chain(lucid.Tensor.__sub__)
    a, b = lucid.randn(4, 3), lucid.randn(2, 5)
    for _ in range(3 * dispatch.HOT_MISS_LIMIT):
        np.testing.assert_array_equal((a - a).numpy(), np.zeros((4, 3), np.float32))
        np.testing.assert_array_equal((b - b).numpy(), np.zeros((2, 5), np.float32))
    assert chain.hot_misses == dispatch.HOT_MISS_LIMIT and chain.hot is None


def test_the_inline_cache_follows_the_environment_and_recording(monkeypatch, fresh_caches):
    x = lucid.randn(4, 4)
    _warm(lambda: x.exp())
    monkeypatch.setenv("LUCID_BACKEND", "interpret")
    launches = runtime.kernel_launches()
    np.testing.assert_allclose(x.exp().numpy(), np.exp(x.numpy()), rtol=1e-6)
    assert runtime.kernel_launches() == launches     # the interpreter ran it
    monkeypatch.delenv("LUCID_BACKEND")
    w = lucid.randn(4, 4, requires_grad=True)
    _warm(lambda: w.exp())
    out = w.exp()                                    # recorded, not served by the cache
    out.sum().backward()
    np.testing.assert_allclose(w.grad.numpy(), np.exp(w.numpy()), rtol=1e-6)


def test_arrays_the_native_check_cannot_vouch_for_take_the_table(fresh_caches):
    """An ndarray subclass, or a dtype object equal to float32's but not numpy's own
    (metadata): the native check misses, the table's call gives the right values."""
    x = lucid.randn(3, 4)
    _warm(lambda: x.tanh())
    odd = np.arange(12, dtype=np.dtype(np.float32, metadata={"unit": "m"})).reshape(3, 4) / 12
    t = lucid.Tensor._wrap(odd.astype(np.dtype(np.float32, metadata={"unit": "m"})))
    np.testing.assert_allclose(t.tanh().numpy(), np.tanh(odd), rtol=1e-6)
    sub = np.ones((3, 4), np.float32).view(np.matrix)
    np.testing.assert_allclose(lucid.Tensor._wrap(np.asarray(sub)).tanh().numpy(), np.tanh(1.0), rtol=1e-6)


def test_threads_calling_one_chain_with_different_shapes_get_their_own_results(fresh_caches):
    shapes = [(3, 5), (7,), (2, 2, 2), (1, 9)]
    errors = []

    def work(shape):
        x = lucid.randn(*shape)
        for _ in range(300):
            got = (x * x).numpy()
            if not np.array_equal(got, x.numpy() * x.numpy()):
                errors.append(shape)
                return
    threads = [threading.Thread(target=work, args=(s,)) for s in shapes]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors


def test_a_gemm_worth_splitting_runs_whole_at_one_thread_with_the_split_bits():
    """F.linear 1x784 -> 256 splits its columns across threads when the pool has
    several; with one thread it takes the one-builtin call. Same bits either way."""
    from lucid_codegen.runtime import threads
    rng = np.random.default_rng(3)
    x, w, b = (lucid.tensor(rng.standard_normal(s).astype(np.float32)) for s in ((1, 784), (256, 784), (256,)))
    old = threads.get_num_threads()
    try:
        results = {}
        for n in (1, 2, 1, 2):
            threads.set_num_threads(n)
            results.setdefault(n, []).append(F.linear(x, w, b).numpy())
    finally:
        threads.set_num_threads(old)
    for got in results[1] + results[2]:
        np.testing.assert_array_equal(got, results[1][0])
    runs = [e.run for e in dispatch._table().values() if "_whole_at_one_thread" in getattr(e.run, "__qualname__", "")]
    assert runs, "the eager F.linear 1x784 entry keeps a one-thread call"


def test_chains_made_per_shape_are_bounded_and_stay_right(monkeypatch):
    """stack, embedding and max(x, dim) make one chain per shape; a model fed every
    sequence length must not grow them without bound: each cache starts over at the
    signature tables' limit, and calls after that are still right."""
    from lucid import functional_core, reductions
    from lucid.nn import functional_sparse
    monkeypatch.setattr(dispatch, "_ENTRY_LIMIT", 4)
    w = lucid.randn(10, 3)
    for n in range(1, 12):
        x = lucid.randn(n, 2)
        np.testing.assert_array_equal(lucid.stack([x, x]).numpy(), np.stack([x.numpy()] * 2))
        idx = np.arange(n) % 10
        np.testing.assert_array_equal(F.embedding(lucid.tensor(idx), w).numpy(), w.numpy()[idx])
        np.testing.assert_array_equal(x.max(1).values.numpy(), x.numpy().max(1))
    for cache in (functional_core._STACK, functional_sparse._EMBEDDING, reductions._GATHERED):
        assert isinstance(cache, dispatch.ChainCache) and len(cache) <= 4


def test_the_inline_cache_of_a_gemm_checks_layouts_and_declines(fresh_caches):
    """F.linear's chain cached for one signature: other shapes, a weight seen through a
    transpose or with every other column (the GEMM entry declines it), and the bias
    dropped or present all give numpy's values."""
    from lucid.nn import functional as functional_module
    rng = np.random.default_rng(7)

    def t(*shape):
        return lucid.tensor(rng.standard_normal(shape).astype(np.float32))
    x, w, b = t(8, 8), t(8, 8), t(8)
    for _ in range(3):
        F.linear(x, w, b)
    assert functional_module._LINEAR_BIAS.hot is not None
    wide = t(8, 16)
    cases = [(x, w, b), (t(5, 8), w, b), (x, t(3, 8), t(3)), (x, wide[:, ::2], b), (x, w.T, b), (x, w, b)]
    for _ in range(2):
        for xi, wi, bi in cases:
            want = xi.numpy() @ wi.numpy().T + bi.numpy()
            np.testing.assert_allclose(F.linear(xi, wi, bi).numpy(), want, rtol=1e-5, atol=1e-5)
            np.testing.assert_allclose(F.linear(xi, wi).numpy(), want - bi.numpy(), rtol=1e-5, atol=1e-5)


def test_a_first_call_after_a_thread_count_change_counts_one_launch():
    """The hot call's layout-checked trampoline declines a signature it was not built for
    and runs nothing; it counted a launch anyway, so a new signature's first call after
    ``set_num_threads`` counted two (the order-dependent launch counts of sessions 23-24)."""
    from lucid_codegen.runtime.plan import kernel_launches
    threads = lucid.get_num_threads()
    try:
        for n in (2, 1):
            lucid.set_num_threads(n)
            k = 11 + n
            x, w = lucid.tensor(np.ones((4, k), np.float32)), lucid.tensor(np.ones((3, k), np.float32))
            b = lucid.tensor(np.ones((64, 1000 + k), np.float32))
            for call in (lambda: F.linear(x, w), lambda: b.argmax(dim=-1)):
                for _ in range(2):
                    before = kernel_launches()
                    call()
                    assert kernel_launches() - before == 1
    finally:
        lucid.set_num_threads(threads)
