"""lucid.compile: tracing, signatures, guards, forward+backward compiled together."""
import numpy as np
import pytest

import lucid
import lucid.nn as nn
import lucid.nn.functional as F
from lucid import Tensor
from lucid_codegen.runtime import bounds
from lucid_codegen.runtime import plan as runtime


def make_model(seed, sizes, act):
    lucid.random.seed(seed)
    layers = []
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
        layers.append(nn.Linear(a, b))
        if i < len(sizes) - 2:
            layers.append(act())
    return nn.Sequential(*layers)


@pytest.mark.parametrize("seed", range(6))
def test_compiled_equals_eager_values_and_gradients(seed):
    rng = np.random.default_rng(seed)
    sizes = [int(d) for d in rng.integers(1, 20, size=int(rng.integers(2, 5)))]
    act = [nn.ReLU, nn.Tanh, nn.Sigmoid][seed % 3]
    model = make_model(seed, sizes, act)
    batch = int(rng.integers(1, 17))
    x = rng.standard_normal((batch, sizes[0])).astype(np.float32)
    y = rng.integers(0, sizes[-1], size=batch)

    def loss_fn(x, y):
        return F.cross_entropy(model(x), y)

    eager = loss_fn(Tensor(x), y)
    eager.backward()
    want = [p.grad.numpy().copy() for p in model.parameters()]
    model.zero_grad()
    step = lucid.compile(loss_fn)
    loss = step(Tensor(x), y)
    loss.backward()
    np.testing.assert_allclose(loss.item(), eager.item(), rtol=1e-5)
    for p, w in zip(model.parameters(), want):
        np.testing.assert_allclose(p.grad, w, rtol=1e-4, atol=1e-6)


def test_gradient_flows_to_inputs_and_through_eager_ops_after_the_call():
    w = Tensor(np.arange(6.0).reshape(2, 3), requires_grad=True, dtype="float64")
    f = lucid.compile(lambda x: (F.linear(x, w) * 2.0, x.exp()))
    x = Tensor([[1.0, -1.0, 0.5]], requires_grad=True, dtype="float64")
    a, b = f(x)
    ((a * a).sum() + b.sum()).backward()   # eager ops on top of the compiled outputs
    xv, wv = x.numpy(), w.numpy()
    out = 2 * xv @ wv.T
    np.testing.assert_allclose(w.grad, 2 * (2 * out).T @ xv, rtol=1e-12)
    np.testing.assert_allclose(x.grad, 2 * (2 * out) @ wv + np.exp(xv), rtol=1e-12)


def test_new_shape_retraces_and_same_shape_does_not():
    f = lucid.compile(lambda x: (x * x).sum())
    f(lucid.ones(2, 3))
    f(lucid.ones(2, 3))
    assert f.traces == 1
    f(lucid.ones(4, 3))
    assert f.traces == 2
    f(lucid.ones(2, 3, dtype="float64"))
    assert f.traces == 3


def test_updated_parameter_is_seen_by_the_next_call():
    layer = nn.Linear(3, 2)
    f = lucid.compile(lambda x: layer(x))
    x = lucid.ones(1, 3)
    before = f(x).numpy().copy()
    layer.weight._data += 1.0          # an optimiser's in-place update
    after = f(x).numpy()
    np.testing.assert_allclose(after, before + 3.0, rtol=1e-6)
    opt = lucid.optim.SGD(layer.parameters(), lr=0.5)
    f(x).sum().backward()
    opt.step()
    np.testing.assert_allclose(f(x).numpy(), layer(x).numpy(), rtol=1e-6)
    assert f.traces == 1


def test_static_arguments_are_part_of_the_signature():
    f = lucid.compile(lambda x, power: x * power)
    np.testing.assert_array_equal(f(lucid.ones(2), 3).numpy(), [3.0, 3.0])
    np.testing.assert_array_equal(f(lucid.ones(2), 5).numpy(), [5.0, 5.0])
    assert f.traces == 2


def test_control_flow_on_a_tensor_raises_naming_the_line():
    @lucid.compile
    def f(x):
        if x.sum() > 0:  # the offending line
            return x
        return -x

    with pytest.raises(lucid.TracingError, match=r"test_compile.py:\d+: if x.sum\(\) > 0:.*lucid.where"):
        f(lucid.ones(2))
    g = lucid.compile(lambda x: x.sum().item())
    with pytest.raises(lucid.TracingError, match="Tensor.item"):
        g(lucid.ones(2))


def test_lower_shows_every_stage_and_the_kernels():
    w = lucid.randn(4, 3, requires_grad=True)
    b = lucid.randn(4, requires_grad=True)
    f = lucid.compile(lambda x: F.relu(F.linear(x, w, b)))
    low = f.lower(lucid.randn(5, 3))
    assert [k.kind for k in low.kernels] == ["gemm"]
    assert low.kernels[0].ops == ("matmul", "add", "maximum")
    assert "matmul[trans_b=True]" in low.as_text("traced")
    assert "select" in low.as_text("autodiff")
    assert "kernel[gemm]" in low.as_text("fused")
    assert "define" in low.as_text("llvm")
    assert "ret" in low.as_text("asm")
    # x needs no gradient: dW = gᵀ·x with relu's mask applied as the GEMM packs gᵀ, and
    # db = Σ g with the mask as the reduction's prologue; no kernel of its own for the mask
    assert [(k.kind, k.ops) for k in low.backward_kernels] == [
        ("reduction", ("gt", "select", "sum")), ("gemm", ("gt", "select", "matmul"))]
    with pytest.raises(ValueError, match="unknown stage"):
        low.as_text("bogus")
    assert f.traces == 1


def test_no_grad_call_has_no_backward():
    w = lucid.randn(2, 2, requires_grad=True)
    f = lucid.compile(lambda x: x @ w)
    with lucid.no_grad():
        out = f(lucid.ones(1, 2))
    assert not out.requires_grad
    assert f.lower(lucid.ones(1, 2)).backward_kernels  # with grad on, there is one


def test_outputs_in_nested_structures_and_python_values():
    f = lucid.compile(lambda x: {"double": x * 2, "pair": (x + 1, "tag")})
    out = f(lucid.ones(2))
    np.testing.assert_array_equal(out["double"].numpy(), [2.0, 2.0])
    assert out["pair"][1] == "tag"


def test_compile_as_decorator_with_options_and_bad_arguments():
    @lucid.compile(max_signatures=2)
    def f(x):
        return x + 1

    for n in range(1, 5):
        f(lucid.ones(n))
    assert len(f._programs) == 2
    with pytest.raises(TypeError, match="neither a tensor nor hashable"):
        lucid.compile(lambda x, opts: x)(lucid.ones(1), {1, 2})  # a set: unhashable
    with pytest.raises(TypeError, match="expected a callable"):
        lucid.compile(3)


def test_where_is_the_way_to_branch_inside_a_compiled_function():
    x = Tensor([-2.0, 3.0], requires_grad=True, dtype="float64")
    f = lucid.compile(lambda x: lucid.where(x > 0, x * x, -x).sum())
    f(x).backward()
    np.testing.assert_array_equal(x.grad, [-1.0, 6.0])
    np.testing.assert_array_equal(lucid.where(x > 0, 1.0, 0.0).numpy(), [0.0, 1.0])


def test_intermediate_buffers_are_reused_but_results_are_never_overwritten():
    from lucid_codegen.runtime.plan import ReusedBuffers
    w = lucid.randn(6, 5)
    f = lucid.compile(lambda x: ((x @ w).exp() - 1.0).sum(axis=1).reshape(-1, 1) * (x @ w))
    x1, x2 = lucid.randn(4, 6), lucid.randn(4, 6)
    first = f(x1)
    kept = first.numpy().copy()
    second = f(x2)
    np.testing.assert_array_equal(first.numpy(), kept)  # not clobbered by the next call
    for x, out in ((x1, first), (x2, second)):
        h = x.numpy().astype(np.float64) @ w.numpy()
        np.testing.assert_allclose(out.numpy(), (np.exp(h) - 1).sum(1, keepdims=True) * h, rtol=1e-4)
    plan = next(iter(f._programs.values())).compiled_forward.executable
    assert any(isinstance(fn, ReusedBuffers) for fn, _, _ in plan.exec_steps)


def test_prepared_kernel_calls_follow_new_data_and_new_layouts():
    w = lucid.randn(7, 5)
    f = lucid.compile(lambda x: ((x * x).tanh() @ w).exp().sum(axis=1) + (x * x).tanh().max(axis=1))

    def want(x):
        t = np.tanh(x.astype(np.float64) ** 2)
        return np.exp(t @ w.numpy()).sum(1) + t.max(1)

    base = np.random.default_rng(1).standard_normal((9, 14)).astype(np.float32)
    for x in (base[:, :7], base[:, 7:], base[:, ::2], np.asfortranarray(base[:, :7]), base[:, :7] * 2):
        for _ in range(2):  # the second call takes the prepared path
            np.testing.assert_allclose(f(lucid.Tensor(x)).numpy(), want(x), rtol=1e-4)


def test_repeated_backward_passes_do_not_touch_freed_memory():
    """A prepared column-sum call keeps its scratch row alive (it once pointed into freed
    memory, which later held the next iteration's weight)."""
    import gc
    for _ in range(20):
        x = Tensor([[1.0, 2.0], [3.0, 4.0]], requires_grad=True)
        w = Tensor([[5.0, 6.0], [7.0, 8.0]], requires_grad=True)
        b = Tensor([[9.0, 10.0]], requires_grad=True).reshape(1, -1)
        F.linear(x, w, b).backward()
        np.testing.assert_array_equal(w.numpy(), [[5.0, 6.0], [7.0, 8.0]])
        np.testing.assert_array_equal(x.grad, [[12.0, 14.0], [12.0, 14.0]])
        np.testing.assert_array_equal(b.grad, [[2.0, 2.0]])
        gc.collect()
        keep = [np.full((2, 2), 7.0, np.float32) for _ in range(50)]  # reuse freed blocks
        assert all((k == 7.0).all() for k in keep)


def test_results_are_freed_at_once_and_their_memory_reused():
    """A result's buffer is never handed out again while the result is held, and the
    plan keeps no reference to it: dropping the result frees its memory at once (for
    the allocator to reuse; which address it hands back next is its choice)."""
    import gc
    import weakref
    w = lucid.randn(64, 64)
    f = lucid.compile(lambda x: F.relu(x @ w))
    x = lucid.randn(2048, 64)
    for _ in range(3):  # the plan settles (a native program from its second call)
        f(x)
    first = f(x)
    kept = first.numpy().copy()
    second = f(x)  # `first` is still held: a different buffer, its values untouched
    assert not np.shares_memory(second.numpy(), first.numpy())
    np.testing.assert_array_equal(first.numpy(), kept)
    gc.disable()  # "at once": by reference counting, not a later collection
    try:
        assert first._data.base is None  # its own memory, not a view of a buffer kept elsewhere
        buffer = weakref.ref(first._data)
        del first
        assert buffer() is None
    finally:
        gc.enable()
    third = f(x)
    assert not np.shares_memory(third.numpy(), second.numpy())
    np.testing.assert_array_equal(third.numpy(), kept)
    np.testing.assert_array_equal(second.numpy(), kept)


#: whether plans run from native programs here (not with LUCID_NATIVE_PLAN=0 or
#: LUCID_CHECK_BOUNDS=1): only then do calls take the prepared path
NATIVE = runtime.NATIVE_PLANS and not bounds.enabled()


def _prepared_calls(f):
    return sum(p.calls_prepared for p in f._programs.values())


def test_repeated_calls_take_the_prepared_path():
    """From the plan's third call on, a call with the last call's argument pattern goes
    through the call site (no signature key), with the same results."""
    w, b = lucid.randn(8, 8), lucid.randn(8)
    f = lucid.compile(lambda x, w, b: F.relu(F.linear(x, w, b)))
    rng = np.random.default_rng(0)
    for k in range(6):
        x = rng.standard_normal((8, 8)).astype(np.float32)
        got = f(Tensor(x), w, b).numpy()
        want = np.maximum(x.astype(np.float64) @ w.numpy().T.astype(np.float64) + b.numpy(), 0)
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)
    assert (_prepared_calls(f) >= 3 or not NATIVE) and f.traces == 1
    g = lucid.compile(lambda x, y, scale: (x - y) * scale)   # an array and a static argument
    for k in range(5):
        x = rng.standard_normal(4).astype(np.float32)
        np.testing.assert_allclose(g(Tensor(x), x[::-1].copy(), 2.0).numpy(), (x - x[::-1]) * 2, rtol=1e-6)
    assert (_prepared_calls(g) >= 2 or not NATIVE) and g.traces == 1


def test_what_the_prepared_path_must_not_miss():
    """Each change a call site or the native check must see, after prepared calls: a
    static value, requires_grad of an argument and of a captured tensor, grad mode,
    a new shape, a captured tensor whose array changed shape, a gradient that appears."""
    rng = np.random.default_rng(1)
    w = Tensor(rng.standard_normal((3, 4)).astype(np.float32), requires_grad=True)
    f = lucid.compile(lambda x, s: (x @ w.T) * s)
    x = Tensor(rng.standard_normal((2, 4)).astype(np.float32))

    def want(x, s):
        return (x.numpy().astype(np.float64) @ w.numpy().T.astype(np.float64)) * s

    def warm():
        before = _prepared_calls(f)
        for _ in range(3):
            out = f(x, 2.0)
        assert _prepared_calls(f) > before or not NATIVE
        return out
    out = warm()
    assert out.requires_grad
    np.testing.assert_allclose(f(x, 3.0).numpy(), want(x, 3.0), rtol=1e-5)      # static value
    warm()
    xg = Tensor(x.numpy(), requires_grad=True)                                  # an argument's flag
    f(xg, 2.0).sum().backward()
    np.testing.assert_allclose(xg.grad, np.tile(2 * w.numpy().sum(0), (2, 1)), rtol=1e-5)
    warm()
    with lucid.no_grad():                                                       # grad mode
        assert not f(x, 2.0).requires_grad
    warm()
    w.requires_grad = False                                                     # a captured flag
    assert not f(x, 2.0).requires_grad
    w.requires_grad = True
    warm()
    x5 = Tensor(rng.standard_normal((5, 4)).astype(np.float32))                 # a new shape
    np.testing.assert_allclose(f(x5, 2.0).numpy(), want(x5, 2.0), rtol=1e-5)
    warm()
    w._data = rng.standard_normal((6, 4)).astype(np.float32)                    # captured array's shape
    assert f(x, 2.0).shape == (2, 6)
    np.testing.assert_allclose(f(x, 2.0).numpy(), want(x, 2.0), rtol=1e-5)
    warm()
    w._data = np.asfortranarray(w.numpy())                                      # its strides only
    np.testing.assert_allclose(f(x, 2.0).numpy(), want(x, 2.0), rtol=1e-5)


def test_what_the_plain_call_closure_must_not_miss():
    """A call site of tensors whose program only runs its plan (no gradient anywhere)
    calls ``Program.plain_call``'s closure; each change it must see falls back to the
    general path with the right result: an argument's or a captured tensor's
    ``requires_grad``, grad mode, an array or a Tensor subclass for an argument, a
    captured array of another shape, an argument's strides."""
    rng = np.random.default_rng(2)
    w = Tensor(rng.standard_normal((3, 4)).astype(np.float32))
    f = lucid.compile(lambda x, b: F.linear(x, w, b))
    x = Tensor(rng.standard_normal((2, 4)).astype(np.float32))
    b = Tensor(rng.standard_normal(3).astype(np.float32))

    def want(x):
        return x.astype(np.float64) @ w.numpy().T.astype(np.float64) + b.numpy()

    def warm():
        before = _prepared_calls(f)
        for _ in range(3):
            out = f(x, b)
        assert _prepared_calls(f) > before or not NATIVE
        assert not out.requires_grad and type(out) is Tensor
        np.testing.assert_allclose(out.numpy(), want(x.numpy()), rtol=1e-5)
    warm()
    assert (f._site.run.__name__ == "call") or not NATIVE    # the closure, not the site
    xg = Tensor(x.numpy(), requires_grad=True)                                  # an argument's flag
    f(xg, b).sum().backward()
    np.testing.assert_allclose(xg.grad, np.tile(w.numpy().sum(0), (2, 1)), rtol=1e-5)
    warm()
    w.requires_grad = True                                                      # a captured flag
    out = f(x, b)
    assert out.requires_grad
    out.sum().backward()
    np.testing.assert_allclose(w.grad, np.tile(x.numpy().sum(0), (3, 1)), rtol=1e-5)
    w.requires_grad, w.grad = False, None
    warm()
    with lucid.no_grad():                                                       # grad mode
        np.testing.assert_allclose(f(x, b).numpy(), want(x.numpy()), rtol=1e-5)
    warm()
    np.testing.assert_allclose(f(x.numpy(), b).numpy(), want(x.numpy()), rtol=1e-5)  # an array

    class Sub(Tensor):
        pass
    np.testing.assert_allclose(f(Sub(x.numpy()), b).numpy(), want(x.numpy()), rtol=1e-5)
    warm()
    xt = Tensor(np.asfortranarray(x.numpy()))                                   # strides only
    np.testing.assert_allclose(f(xt, b).numpy(), want(x.numpy()), rtol=1e-5)
    warm()
    w._data = rng.standard_normal((5, 4)).astype(np.float32)                    # captured shape
    b5 = Tensor(rng.standard_normal(5).astype(np.float32))
    np.testing.assert_allclose(f(x, b5).numpy(), x.numpy() @ w.numpy().T + b5.numpy(), rtol=1e-5)


def test_a_gradient_guard_is_checked_on_the_prepared_path():
    """A function reading ``w.grad`` (None when traced): a call after ``w.grad`` appeared
    must not run the program traced for None."""
    w = Tensor(np.ones((2, 2), np.float32), requires_grad=True)

    @lucid.compile
    def f(x):
        g = w.grad
        return x * 2.0 if g is None else x * 2.0 + g
    x = lucid.ones(2, 2)
    for _ in range(4):
        np.testing.assert_array_equal(f(x).numpy(), 2.0)
    w.grad = np.full((2, 2), 5.0, np.float32)
    np.testing.assert_array_equal(f(x).numpy(), 7.0)
    w.grad = None
    np.testing.assert_array_equal(f(x).numpy(), 2.0)


def test_an_argument_that_starts_requiring_grad_gets_its_gradient():
    """All-tensor arguments (the call site's two-tuple compare): a flag that changes
    after prepared calls gives a program with a backward."""
    w = Tensor(np.arange(6, dtype=np.float32).reshape(2, 3))
    f = lucid.compile(lambda x, v: (x @ w.T) * v)
    x, v = lucid.ones(4, 3), lucid.ones(4, 2)
    for _ in range(4):
        assert not f(x, v).requires_grad
    assert _prepared_calls(f) >= 1 or not NATIVE
    xg = Tensor(np.ones((4, 3), np.float32), requires_grad=True)
    out = f(xg, v)
    assert out.requires_grad
    out.sum().backward()
    np.testing.assert_allclose(xg.grad, np.tile(w.numpy().sum(0), (4, 1)))


def test_threads_calling_one_compiled_function():
    """Threads share the function's call site; each has its own native programs and
    output buffers: every result is its own input's."""
    import threading
    w = lucid.randn(16, 16)
    f = lucid.compile(lambda x: F.relu(F.linear(x, w)) * 2.0)
    rng = np.random.default_rng(5)
    xs = [rng.standard_normal((8, 16)).astype(np.float32) for _ in range(4)]
    wants = [np.maximum(x.astype(np.float64) @ w.numpy().T.astype(np.float64), 0) * 2 for x in xs]
    errors = []

    def work(k):
        try:
            held = []
            for i in range(60):
                j = (k + i) % 4
                out = f(Tensor(xs[j]))
                held.append((j, out))        # some outputs held: their buffers are not reused
                if len(held) > 3:
                    held.pop(0)
                for jj, o in held:
                    if not np.allclose(o.numpy(), wants[jj], rtol=1e-5, atol=1e-5):
                        errors.append((k, i, jj))
        except Exception as e:  # noqa: BLE001
            errors.append(e)
    workers = [threading.Thread(target=work, args=(k,)) for k in range(3)]
    for t in workers:
        t.start()
    for t in workers:
        t.join(60)
    assert errors == []
    assert (_prepared_calls(f) > 0 or not NATIVE) and f.traces == 1


def test_a_function_called_through_its_call_site_stays_among_the_recent_signatures():
    """Prepared calls do not reorder the programs; a new signature first marks the
    site's program as the latest, so it is not the one evicted (here a keyword call,
    which leaves the site alone, was the latest otherwise)."""
    f = lucid.compile(lambda x, scale=2.0: x * scale, max_signatures=2)
    hot, other = lucid.ones(3), lucid.ones(4)
    f(x=other)
    for _ in range(3):
        f(hot)                    # the site's program
    f(x=other)                    # reorders the programs, not the site
    for _ in range(3):
        f(hot)                    # through the site: no reordering
    assert f.traces == 2
    f(lucid.ones(5))              # a third signature: one of the two goes
    np.testing.assert_array_equal(f(hot).numpy(), [2.0, 2.0, 2.0])
    assert f.traces == 3          # hot was kept
