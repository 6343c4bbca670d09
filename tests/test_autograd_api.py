"""The autograd API against PyTorch in float64: autograd.grad, grad modes (as contexts
and decorators), register_hook, grad_fn, is_leaf/detach/detach_, backward's
retain_graph and inputs, and how they meet lucid.compile."""
from __future__ import annotations

import threading

import numpy as np
import pytest
import torch

import lucid
import lucid.nn.functional as F

rng = np.random.default_rng(5)
A = rng.uniform(0.5, 2.0, (3, 4))
B = rng.uniform(0.5, 2.0, (4, 2))


@pytest.fixture(params=["compiled", "interpret"])
def backend(request, monkeypatch):
    monkeypatch.setenv("LUCID_BACKEND", request.param)
    return request.param


def pair(data, grad=True):
    return (lucid.tensor(data, dtype=lucid.float64, requires_grad=grad),
            torch.tensor(data, dtype=torch.float64, requires_grad=grad))


def close(got, want):
    np.testing.assert_allclose(np.asarray(got), want.detach().numpy(), rtol=1e-12, atol=1e-12)


def model(lib, a, b):
    """a small graph with a shared intermediate, a matmul and a reduction"""
    h = (a * a).exp() if lib is lucid else (a * a).exp()
    z = h.matmul(b) if lib is torch else lucid.matmul(h, b)
    return h, z, (z * z).sum() + h.sum()


# ------------------------------------------------------------------ autograd.grad
def test_grad_matches_torch_and_leaves_dot_grad_alone(backend):
    (a, ta), (b, tb) = pair(A), pair(B)
    h, z, y = model(lucid, a, b)
    th, tz, ty = model(torch, ta, tb)
    got = lucid.autograd.grad(y, [a, b, h, z])
    want = torch.autograd.grad(ty, [ta, tb, th, tz])
    assert len(got) == 4 and all(isinstance(g, lucid.Tensor) for g in got)
    for g, w in zip(got, want):
        close(g, w)
    assert a.grad is None and b.grad is None and h.grad is None


def test_grad_with_grad_outputs_and_several_outputs(backend):
    (a, ta), (b, tb) = pair(A), pair(B)
    h, z, _ = model(lucid, a, b)
    th, tz, _ = model(torch, ta, tb)
    w1, w2 = rng.standard_normal(z.shape), rng.standard_normal(h.shape)
    got = lucid.autograd.grad([z, h], [a, b], [lucid.tensor(w1), w2])
    want = torch.autograd.grad([tz, th], [ta, tb], [torch.tensor(w1), torch.tensor(w2)])
    for g, w in zip(got, want):
        close(g, w)


def test_grad_of_an_input_used_twice_and_of_an_output_that_is_the_input(backend):
    (a, ta) = pair(A)
    got = lucid.autograd.grad((a * a * a).sum(), [a, a])
    want = torch.autograd.grad((ta * ta * ta).sum(), [ta, ta])
    close(got[0], want[0]), close(got[1], want[1])
    assert got[0].numpy() is not got[1].numpy()
    s, ts = pair(2.5)
    close(lucid.autograd.grad(s, s)[0], torch.autograd.grad(ts, ts)[0])


def test_grad_frees_the_graph_unless_retained():
    a, _ = pair(A)
    y = (a * a).sum()
    g1 = lucid.autograd.grad(y, a, retain_graph=True)[0]
    g2 = lucid.autograd.grad(y, a)[0]
    np.testing.assert_array_equal(g1.numpy(), g2.numpy())
    with pytest.raises(RuntimeError, match="second time"):
        lucid.autograd.grad(y, a)
    with pytest.raises(RuntimeError, match="second time"):
        y.backward()


def test_grad_unused_inputs():
    (a, ta), (b, tb) = pair(A), pair(B)
    y = (a * 2).sum()
    with pytest.raises(RuntimeError, match="index 1 .*not have been used"):
        lucid.autograd.grad(y, [a, b], retain_graph=True)
    ga, gb = lucid.autograd.grad(y, [a, b], allow_unused=True, retain_graph=True)
    tga, tgb = torch.autograd.grad((ta * 2).sum(), [ta, tb], allow_unused=True)
    close(ga, tga)
    assert gb is None and tgb is None
    ga, gb = lucid.autograd.grad(y, [a, b], materialize_grads=True)
    np.testing.assert_array_equal(gb.numpy(), np.zeros(B.shape))
    assert gb.dtype == lucid.float64


def test_grad_bad_input_raises_torchs_errors():
    a, ta = pair(A)
    c, tc = pair(A, grad=False)
    for lib, x, k in ((lucid, a, c), (torch, ta, tc)):
        with pytest.raises(RuntimeError, match="does not require grad"):
            lib.autograd.grad((x * 2).sum(), k)
        with pytest.raises(RuntimeError, match="implicitly created only for scalar outputs"):
            lib.autograd.grad(x * 2, x)
        with pytest.raises(RuntimeError, match="(?i)mismatch in shape"):
            lib.autograd.grad(x * 2, x, lib.ones(2))
        with pytest.raises(RuntimeError, match="does not require grad"):
            lib.autograd.grad(k.sum(), x)
    with pytest.raises(RuntimeError, match=r"shape \(3, 4\).*pass grad_outputs"):
        lucid.autograd.grad(a * 2, a)
    with pytest.raises(ValueError, match="create_graph=True .* not supported"):
        lucid.autograd.grad((a * 2).sum(), a, create_graph=True)
    with pytest.raises(TypeError, match="autograd.grad: inputs must be a tensor"):
        lucid.autograd.grad((a * 2).sum(), A)
    assert lucid.autograd.grad((a * 2).sum(), a)[0] is not None  # nothing was freed above


def test_grad_through_a_compiled_function_matches_torch(backend):
    (a, ta), (b, tb) = pair(A), pair(B)
    f = lucid.compile(lambda x, w: lucid.matmul(x.exp(), w))
    z = f(a, b)
    y = (z * z).sum()
    got = lucid.autograd.grad(y, [a, b, z])
    tz = ta.exp() @ tb
    want = torch.autograd.grad((tz * tz).sum(), [ta, tb, tz])
    for g, w in zip(got, want):
        close(g, w)
    assert a.grad is None and b.grad is None


# ------------------------------------------------------------------ backward
def test_backward_twice_needs_retain_graph():
    a, ta = pair(A)
    y = (a * a).sum()
    y.backward(retain_graph=True)
    y.backward()
    ty = (ta * ta).sum()
    ty.backward(retain_graph=True)
    ty.backward()
    close(a.grad, ta.grad)
    with pytest.raises(RuntimeError, match="backward through the graph a second time.*retain_graph=True"):
        y.backward()
    with pytest.raises(RuntimeError, match="second time"):
        ((y + 1) * 2).backward()  # a new graph built on a freed one


def test_backward_inputs_accumulates_only_there(backend):
    (a, ta), (b, tb) = pair(A), pair(B)
    h, z, y = model(lucid, a, b)
    th, tz, ty = model(torch, ta, tb)
    y.backward(inputs=[b, h])
    ty.backward(inputs=[tb, th])
    assert a.grad is None and ta.grad is None
    close(b.grad, tb.grad), close(h.grad, th.grad)
    with pytest.raises(ValueError, match="create_graph"):
        (a * 2).sum().backward(create_graph=True)


# ------------------------------------------------------------------ hooks
def hooked(lib, a, b, log):
    h = a * a
    h.register_hook(lambda g: log.append(("h", np.array(g.detach().numpy()))) or g * 3)
    a.register_hook(lambda g: log.append(("a", np.array(g.detach().numpy()))))
    b.register_hook(lambda g: g + 1)
    z = h.matmul(b) if lib is torch else lucid.matmul(h, b)
    return h, (z * z).sum() + (a * 2).sum()


def test_hooks_see_and_replace_gradients_as_in_torch(backend):
    (a, ta), (b, tb) = pair(A), pair(B)
    log, tlog = [], []
    h, y = hooked(lucid, a, b, log)
    th, ty = hooked(torch, ta, tb, tlog)
    h.retain_grad(), th.retain_grad()
    y.backward()
    ty.backward()
    close(a.grad, ta.grad), close(b.grad, tb.grad), close(h.grad, th.grad)  # h.grad: after its hook
    assert [k for k, _ in log] == [k for k, _ in tlog] == ["h", "a"]
    for (_, g), (_, tg) in zip(log, tlog):
        np.testing.assert_allclose(g, tg, rtol=1e-12)


def test_hooks_run_in_autograd_grad_as_in_torch(backend):
    (a, ta), (b, tb) = pair(A), pair(B)
    h, y = hooked(lucid, a, b, [])
    th, ty = hooked(torch, ta, tb, [])
    got = lucid.autograd.grad(y, [a, b, h])
    want = torch.autograd.grad(ty, [ta, tb, th])
    for g, w in zip(got, want):   # leaves after their hooks, h before its own
        close(g, w)
    assert a.grad is None


def test_hook_handles_remove_and_bad_hooks():
    a, _ = pair(A)
    handle = a.register_hook(lambda g: g * 0)
    handle.remove()
    (a * 1).sum().backward()
    np.testing.assert_array_equal(a.grad, np.ones(A.shape))
    c = lucid.tensor(A)
    with pytest.raises(RuntimeError, match="doesn't require gradient"):
        c.register_hook(lambda g: g)
    with pytest.raises(TypeError, match="callable"):
        a.register_hook(3)
    a.register_hook(lambda g: lucid.ones(2))
    with pytest.raises(RuntimeError, match=r"hook returned a gradient of shape \(2,\) for a tensor of shape \(3, 4\)"):
        (a * 1).sum().backward()


def test_hooks_on_a_compiled_functions_inputs():
    (a, ta), (b, tb) = pair(A), pair(B)
    a.register_hook(lambda g: g * 2)
    ta.register_hook(lambda g: g * 2)
    f = lucid.compile(lambda x, w: (lucid.matmul(x, w) ** 2).sum())
    f(a, b).backward()
    ((ta @ tb) ** 2).sum().backward()
    close(a.grad, ta.grad), close(b.grad, tb.grad)


def test_hooks_and_grad_inside_compile_raise_tracing_errors():
    a, _ = pair(A)

    def registers(x):
        y = x * 2
        y.register_hook(lambda g: g)
        return y.sum()

    def differentiates(x):
        y = (x * x).sum()
        return lucid.autograd.grad(y, x)[0]

    for fn in (registers, differentiates):
        with pytest.raises(lucid.TracingError, match="not supported inside a function compiled"):
            lucid.compile(fn)(a)
    w = lucid.tensor(A, requires_grad=True)
    w.register_hook(lambda g: g)

    @lucid.compile
    def step(x):
        loss = (x * w).sum()
        loss.backward()
        return loss

    with pytest.raises(lucid.TracingError, match="has hooks"):
        step(lucid.tensor(A))


# ------------------------------------------------------------------ grad modes
def test_grad_modes_as_contexts():
    a = lucid.tensor([1.0], requires_grad=True)
    with lucid.no_grad():
        assert not (a * 2).requires_grad and not lucid.is_grad_enabled()
        with lucid.enable_grad():
            assert (a * 2).requires_grad and lucid.autograd.is_grad_enabled()
        with lucid.set_grad_enabled(True):
            assert (a * 2).requires_grad
        assert not lucid.is_grad_enabled()
    with lucid.set_grad_enabled(False):
        assert not (a * 2).requires_grad
    assert lucid.is_grad_enabled()
    with lucid.inference_mode():
        assert not (a * 2).requires_grad and lucid.is_inference_mode_enabled()
        with lucid.inference_mode(False):
            assert not lucid.is_inference_mode_enabled() and not lucid.is_grad_enabled()
    assert lucid.is_grad_enabled() and not lucid.is_inference_mode_enabled()
    with pytest.raises(ZeroDivisionError), lucid.no_grad():
        1 / 0
    assert lucid.is_grad_enabled()  # restored after an exception


def test_set_grad_enabled_as_a_function_like_torch():
    for lib in (lucid, torch):
        lib.set_grad_enabled(False)
        assert not lib.is_grad_enabled()
        lib.autograd.set_grad_enabled(True)
        assert lib.is_grad_enabled()
    with pytest.raises(TypeError, match="mode must be a bool"):
        lucid.set_grad_enabled("no")
    with pytest.raises(TypeError, match="mode must be a bool"):
        lucid.inference_mode("no")


@pytest.mark.parametrize("make", [lambda: lucid.no_grad, lambda: lucid.no_grad(),
                                  lambda: lucid.set_grad_enabled(False),
                                  lambda: lucid.inference_mode, lambda: lucid.inference_mode()])
def test_grad_modes_as_decorators(make):
    a = lucid.tensor([1.0], requires_grad=True)
    deco = make()

    @deco
    def f(x, depth=0):
        """doc"""
        assert not lucid.is_grad_enabled()
        return f(x, depth - 1) if depth else x * 2

    assert lucid.is_grad_enabled()          # decorating changes nothing by itself
    assert not f(a, depth=2).requires_grad
    assert f.__doc__ == "doc" and f.__name__ == "f"
    assert lucid.is_grad_enabled() and (a * 2).requires_grad


def test_enable_grad_decorator_inside_no_grad_and_generators():
    a = lucid.tensor([1.0], requires_grad=True)

    @lucid.enable_grad
    def g(x):
        return x * 2

    @lucid.no_grad()
    def gen(x):
        for _ in range(2):
            received = yield (x * 2).requires_grad, lucid.is_grad_enabled()
            assert received == "sent"

    with lucid.no_grad():
        assert g(a).requires_grad
    it = gen(a)
    assert next(it) == (False, False) and lucid.is_grad_enabled()
    assert it.send("sent") == (False, False) and lucid.is_grad_enabled()
    with pytest.raises(StopIteration):
        it.send("sent")
    with pytest.raises(TypeError, match="only functions"):
        lucid.no_grad()(3)


def test_grad_mode_is_per_thread():
    seen = []
    with lucid.no_grad():
        t = threading.Thread(target=lambda: seen.append(lucid.is_grad_enabled()))
        t.start(), t.join()
    assert seen == [True]


def test_grad_modes_inside_compile():
    a, ta = pair(A)

    @lucid.compile
    def f(x):
        with lucid.no_grad():
            frozen = x * 3
        return (x * frozen).sum()

    f(a).backward()
    with torch.no_grad():
        tfrozen = ta * 3
    (ta * tfrozen).sum().backward()
    close(a.grad, ta.grad)


# ------------------------------------------------------------------ grad_fn, leaves, detach
CASES = [
    ("mul", lambda m, x, w: x * 2),
    ("add", lambda m, x, w: x + x),
    ("sub", lambda m, x, w: x - 1),
    ("div", lambda m, x, w: x / 3),
    ("neg", lambda m, x, w: -x),
    ("exp", lambda m, x, w: x.exp()),
    ("tanh", lambda m, x, w: x.tanh()),
    ("sum", lambda m, x, w: x.sum()),
    ("mean", lambda m, x, w: x.mean()),
    ("pow", lambda m, x, w: x ** 2),
    ("pow_half", lambda m, x, w: x ** 0.5),
    ("pow_other", lambda m, x, w: x ** 1.5),
    ("stack", lambda m, x, w: m.stack([x, x], 1)),
    ("max_dim", lambda m, x, w: m.max(x, 1)[0]),
    ("min_dim", lambda m, x, w: x.min(0, keepdim=True)[0]),
    ("matmul", lambda m, x, w: m.matmul(x, w)),
    ("relu", lambda m, x, w: x.relu()),
    ("reshape", lambda m, x, w: x.reshape(12)),
    ("linear", lambda m, x, w: m.nn.functional.linear(x, w.T, w[0])),
    ("where", lambda m, x, w: m.where(x > 1, x, x * 0)),
]


@pytest.mark.parametrize("name,fn", CASES, ids=[c[0] for c in CASES])
def test_grad_fn_names_like_torch(name, fn):
    (a, ta), (b, tb) = pair(A), pair(B)
    got, want = fn(lucid, a, b).grad_fn, fn(torch, ta, tb).grad_fn
    assert got.name() == want.name(), name
    assert repr(got) == f"<{want.name()}>"


def test_grad_fn_next_functions_leaves_and_detach():
    (a, ta), (c, tc) = pair(A), pair(A, grad=False)
    y, ty = a * c, ta * tc
    assert [type(f).__name__ if f else None for f, _ in y.grad_fn.next_functions] == \
           [type(f).__name__ if f else None for f, _ in ty.grad_fn.next_functions]
    assert y.grad_fn.next_functions[0][0].variable is a
    z = y.sum()
    assert z.grad_fn.next_functions[0][0].name() == "MulBackward0"
    assert a.grad_fn is None and c.grad_fn is None and a.is_leaf and c.is_leaf and not y.is_leaf
    z.backward()
    assert z.grad_fn.name() == "SumBackward0"  # still named after its graph was freed
    d = y.detach()
    assert d.is_leaf and not d.requires_grad and d.grad_fn is None
    np.testing.assert_array_equal(d.numpy(), y.numpy())
    e = a * 2
    assert e.detach_() is e and e.is_leaf and not e.requires_grad and e.grad_fn is None
    with lucid.no_grad():
        assert (a * 2).grad_fn is None
    assert lucid.compile(lambda x: x * 2)(a).grad_fn.name() == "CompiledFunctionBackward"


def test_grad_fn_of_compiled_outputs_after_backward_keeps_no_saved_arrays(backend):
    a, ta = pair(A)
    f = lucid.compile(lambda x: (x * x).sum())
    y = f(a)
    y.backward()
    assert y.grad_fn.name() == "CompiledFunctionBackward" and y._node is None
    assert y._spent == "CompiledFunctionBackward"
    (ta * ta).sum().backward()
    close(a.grad, ta.grad)
    with pytest.raises(RuntimeError, match="second time"):
        y.backward()
