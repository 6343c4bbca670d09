"""Whole training steps under ``lucid.compile``: ``backward()`` and ``opt.step()``
inside the compiled function, against the same steps run eagerly."""
import numpy as np
import pytest

import lucid
import lucid.nn as nn
import lucid.nn.functional as F
from lucid.tracing import TracingError
from lucid_codegen.runtime import bounds
from lucid_codegen.runtime import plan as runtime

#: whether plans run from native programs here (not with LUCID_NATIVE_PLAN=0 or
#: LUCID_CHECK_BOUNDS=1): only then do calls take the prepared path
NATIVE = runtime.NATIVE_PLANS and not bounds.enabled()

OPTIMISERS = [
    (lucid.optim.SGD, dict(lr=0.1)),
    (lucid.optim.SGD, dict(lr=0.1, weight_decay=0.01)),
    (lucid.optim.SGD, dict(lr=0.05, momentum=0.9, dampening=0.1)),
    (lucid.optim.SGD, dict(lr=0.05, momentum=0.9, nesterov=True, weight_decay=0.001)),
    (lucid.optim.Adam, dict(lr=0.01)),
    (lucid.optim.Adam, dict(lr=0.01, betas=(0.8, 0.99), weight_decay=0.01)),
]


def mlp(sizes, dtype="float32", seed=0):
    lucid.random.seed(seed)
    layers = []
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
        layers.append(nn.Linear(a, b))
        if i < len(sizes) - 2:
            layers.append(nn.ReLU())
    model = nn.Sequential(*layers)
    if dtype != "float32":
        for p in model.parameters():
            p._data = p._data.astype(dtype)
    return model


def data(n, d, classes, dtype="float32", seed=1):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((n, d)).astype(dtype), rng.integers(0, classes, n)


def twins(make, opt_cls, **kw):
    """Two models from ``make()`` (same weights), each with its own ``opt_cls``:
    ``(eager_model, compiled_model, eager_opt, compiled_opt)``."""
    eager_model, comp_model = make(), make()
    return eager_model, comp_model, opt_cls(eager_model.parameters(), **kw), opt_cls(comp_model.parameters(), **kw)


def eager_step(model, opt, x, y, loss_fn=F.cross_entropy):
    opt.zero_grad()
    loss = loss_fn(model(lucid.Tensor(x)), y)
    loss.backward()
    opt.step()
    return loss.item()


def compiled_step(model, opt, loss_fn=F.cross_entropy):
    """The same step as ``eager_step``, compiled as a whole."""
    @lucid.compile
    def step(x, y):
        opt.zero_grad()
        loss = loss_fn(model(x), y)
        loss.backward()
        opt.step()
        return loss
    return step


def assert_same_models(a, b, rtol):
    for (name, pa), (_, pb) in zip(a.named_parameters(), b.named_parameters()):
        np.testing.assert_allclose(pb.numpy(), pa.numpy(), rtol=rtol, atol=rtol, err_msg=name)
        np.testing.assert_allclose(pb.grad, pa.grad, rtol=rtol, atol=rtol, err_msg=name + ".grad")


@pytest.mark.parametrize("opt_cls,kw", OPTIMISERS)
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_compiled_step_matches_eager(opt_cls, kw, dtype):
    sizes = (13, 7, 5) if dtype == "float64" else (20, 16, 1, 5)
    eager_model, comp_model, eager_opt, comp_opt = twins(lambda: mlp(sizes, dtype), opt_cls, **kw)
    step = compiled_step(comp_model, comp_opt)
    x, y = data(11, sizes[0], sizes[-1], dtype)
    arrays = [p._data for p in comp_model.parameters()]
    for _ in range(4):
        le = eager_step(eager_model, eager_opt, x, y)
        lc = step(lucid.Tensor(x), y)
        assert lc.requires_grad is False  # the function ran its own backward
        np.testing.assert_allclose(lc.item(), le, rtol=1e-5 if dtype == "float32" else 1e-12)
        assert_same_models(eager_model, comp_model, 2e-5 if dtype == "float32" else 1e-12)
    assert step.traces == 1
    # parameters are updated in place: the arrays are the ones the model started with
    assert all(p._data is a for p, a in zip(comp_model.parameters(), arrays))
    assert comp_model.state_dict().keys() == eager_model.state_dict().keys()


def test_learning_rate_schedule_does_not_retrace():
    eager_model, comp_model, eager_opt, comp_opt = twins(lambda: mlp((9, 6, 3)), lucid.optim.SGD,
                                                         lr=0.1, momentum=0.5)
    step = compiled_step(comp_model, comp_opt)
    x, y = data(8, 9, 3)
    for lr in (0.1, 0.05, 0.02, 0.3):
        for opt in (eager_opt, comp_opt):
            opt.param_groups[0]["lr"] = lr
        eager_step(eager_model, eager_opt, x, y)
        step(lucid.Tensor(x), y)
        assert_same_models(eager_model, comp_model, 1e-5)
    assert step.traces == 1
    for opt in (eager_opt, comp_opt):  # momentum turned off: another rule, a retrace
        opt.param_groups[0]["momentum"] = 0.0
    eager_step(eager_model, eager_opt, x, y)
    step(lucid.Tensor(x), y)
    assert step.traces == 2
    assert_same_models(eager_model, comp_model, 1e-5)


def test_adam_step_counter_advances_per_call():
    eager_model, comp_model, eager_opt, comp_opt = twins(lambda: mlp((6, 4)), lucid.optim.Adam, lr=0.1)
    step = compiled_step(comp_model, comp_opt)
    x, y = data(5, 6, 4)
    for _ in range(6):  # bias correction differs at every step
        eager_step(eager_model, eager_opt, x, y)
        step(lucid.Tensor(x), y)
    assert_same_models(eager_model, comp_model, 1e-5)
    assert [s["step"].item() for s in comp_opt.state.values()] == [6, 6]


def test_mixing_eager_and_compiled_steps_shares_the_optimiser_state():
    eager_model, comp_model, eager_opt, comp_opt = twins(lambda: mlp((6, 5, 3)), lucid.optim.SGD,
                                                         lr=0.1, momentum=0.9)
    step = compiled_step(comp_model, comp_opt)
    x, y = data(7, 6, 3)
    for i in range(5):
        eager_step(eager_model, eager_opt, x, y)
        if i % 2:
            eager_step(comp_model, comp_opt, x, y)
        else:
            step(lucid.Tensor(x), y)
        assert_same_models(eager_model, comp_model, 1e-5)


def test_gradients_accumulate_without_zero_grad():
    w = lucid.Tensor(np.arange(6.0).reshape(2, 3), requires_grad=True, dtype="float64")

    @lucid.compile
    def accumulate(x):
        y = F.linear(x, w)
        loss = (y * y).sum()
        loss.backward()
        return loss

    x = np.ones((4, 3))
    expected = 2 * (x @ w.numpy().T).T @ x
    accumulate(lucid.Tensor(x))
    np.testing.assert_allclose(w.grad, expected)
    accumulate(lucid.Tensor(x))  # w.grad existed before this call: a new trace reads it
    np.testing.assert_allclose(w.grad, 2 * expected)
    accumulate(lucid.Tensor(x))
    np.testing.assert_allclose(w.grad, 3 * expected)
    assert accumulate.traces == 2
    w.grad = None  # back to the first trace's state: its guard holds again
    accumulate(lucid.Tensor(x))
    np.testing.assert_allclose(w.grad, expected)
    assert accumulate.traces == 2


def test_backward_inside_reaches_arguments_and_takes_a_gradient():
    w = lucid.Tensor([[1.0, -2.0]], requires_grad=True)

    @lucid.compile
    def f(x, g):
        y = F.linear(x, w)
        y.backward(g)
        return y

    x = lucid.Tensor([[3.0, 4.0], [0.5, 1.0]], requires_grad=True)
    g = lucid.Tensor([[2.0], [-1.0]])
    y = f(x, g)
    np.testing.assert_allclose(y.numpy(), [[-5.0], [-1.5]])
    np.testing.assert_allclose(x.grad, g.numpy() @ w.numpy())
    np.testing.assert_allclose(w.grad, g.numpy().T @ x.numpy())


def test_one_gradient_for_two_tensors_is_two_arrays():
    a = lucid.Tensor([1.0, 2.0], requires_grad=True)
    b = lucid.Tensor([3.0, 4.0], requires_grad=True)

    @lucid.compile
    def f():
        a.grad = b.grad = None
        (a + b).sum().backward()

    f()
    np.testing.assert_array_equal(a.grad, [1.0, 1.0])
    a.grad[0] = 7.0
    np.testing.assert_array_equal(b.grad, [1.0, 1.0])


def test_whole_step_is_one_plan_with_the_update_kernels(monkeypatch):
    for name in ("LUCID_BACKEND", "LUCID_CHECK_BOUNDS"):  # native, unchecked plans write in place
        monkeypatch.delenv(name, raising=False)
    model, x_y = mlp((12, 8, 4)), data(6, 12, 4)
    opt = lucid.optim.SGD(model.parameters(), lr=0.1)
    step = compiled_step(model, opt)
    lowered = step.lower(lucid.Tensor(x_y[0]), x_y[1])
    kinds = [k.kind for k in lowered.kernels]
    assert kinds.count("gemm") >= 5 and lowered.backward_kernels == []
    fused = lowered.as_text("fused")
    assert "# backward" not in fused  # forward, backward and update in one graph
    # every weight and bias is written in place by the kernel computing its new value
    assert fused.count("(written by its kernel)") == 4 and "copied" not in fused
    assert "part of the traced graph" in lowered.as_text("autodiff")


def test_errors_inside_a_compiled_step():
    w = lucid.Tensor([1.0, 2.0], requires_grad=True)
    c = lucid.Tensor([1.0, 2.0])

    @lucid.compile
    def no_grad_root():
        (c * 2).sum().backward()
    with pytest.raises(RuntimeError, match="does not require grad"):
        no_grad_root()

    @lucid.compile
    def concrete_grad():
        w.grad = np.zeros(2, np.float32)
    with pytest.raises(TracingError, match="only None or a tensor"):
        concrete_grad()

    opt = lucid.optim.SGD([w], lr=0.1)

    @lucid.compile
    def update_then_backward():
        (w * w).sum().backward()
        opt.step()
        (w * w).sum().backward()
    with pytest.raises(TracingError, match="updated in place"):
        update_then_backward()
    np.testing.assert_array_equal(w.numpy(), [1.0, 2.0])  # a failed trace changed nothing


def test_traced_tensor_backward_outside_its_trace_is_an_error():
    leaked = []

    @lucid.compile
    def f(x):
        y = x * 2
        leaked.append(y)
        return y.sum()

    f(lucid.Tensor([1.0], requires_grad=True))
    with pytest.raises(TracingError, match="traced"):
        leaked[0].backward()


def test_gradient_clipping_and_unused_parameters_inside_a_compiled_step():
    """Inside the trace ``.grad`` is a traced tensor: reading it (a global norm),
    rescaling it (``p.grad = p.grad * scale``) and skipping parameters without one all
    work, and match the same step written eagerly (with numpy gradients)."""
    def make():
        lucid.random.seed(4)
        return nn.Sequential(nn.Linear(6, 5), nn.Tanh(), nn.Linear(5, 3))  # the last layer unused

    def step_fn(model, opt, traced):
        def step(x, y):
            opt.zero_grad()
            loss = F.cross_entropy(model[1](model[0](x)), y)
            loss.backward()
            grads = [p.grad for p in model.parameters() if p.grad is not None]
            total = sum((g * g).sum() for g in grads)
            if traced:
                scale = lucid.where(total > 0.01, 0.1 / total.sqrt(), lucid.Tensor(1.0))
            else:
                scale = np.float32(0.1 / np.sqrt(total) if total > 0.01 else 1.0)
            for p in model.parameters():
                if p.grad is not None:
                    p.grad = p.grad * scale
            opt.step()
            return loss
        return step

    eager_model, comp_model, eager_opt, comp_opt = twins(make, lucid.optim.SGD, lr=0.5, momentum=0.9)
    eager, comp = step_fn(eager_model, eager_opt, False), lucid.compile(step_fn(comp_model, comp_opt, True))
    x, y = data(4, 6, 5)
    for _ in range(4):
        np.testing.assert_allclose(comp(lucid.Tensor(x), y).item(), eager(lucid.Tensor(x), y).item(), rtol=1e-6)
        for a, b in zip(eager_model.parameters(), comp_model.parameters()):
            np.testing.assert_allclose(b.numpy(), a.numpy(), rtol=1e-6, atol=1e-6)
            assert (a.grad is None) == (b.grad is None)
    assert [p.grad is None for p in comp_model.parameters()] == [False, False, True, True]
    assert comp.traces == 1


@pytest.mark.parametrize("seed", range(6))
def test_random_models_train_the_same_compiled_and_eager(seed):
    """Random depths, widths (1, primes), activations, batch sizes (1, primes), losses and
    optimisers: every step of the compiled training step equals the eager step."""
    rng = np.random.default_rng(100 + seed)
    widths = [int(rng.choice([1, 2, 3, 7, 13, 31]) if i else rng.choice([1, 5, 17])) for i in range(rng.integers(2, 5))]
    acts = [nn.ReLU, nn.Tanh, nn.Sigmoid]

    def make():
        lucid.random.seed(seed)
        layers = []
        for i, (a, b) in enumerate(zip(widths[:-1], widths[1:])):
            layers.append(nn.Linear(a, b, bias=bool((seed + i) % 3)))
            if i < len(widths) - 2:
                layers.append(acts[(seed + i) % 3]())
        return nn.Sequential(*layers)

    opt_cls, kw = OPTIMISERS[seed % len(OPTIMISERS)]
    eager_model, comp_model, eager_opt, comp_opt = twins(make, opt_cls, **kw)
    mse = seed % 2 == 0
    loss_fn = F.mse_loss if mse else F.cross_entropy
    step = compiled_step(comp_model, comp_opt, loss_fn)

    batch = int(rng.choice([1, 2, 11]))
    x = rng.standard_normal((batch, widths[0])).astype(np.float32)
    t = (rng.standard_normal((batch, widths[-1])).astype(np.float32) if mse
         else rng.integers(0, widths[-1], batch))
    for _ in range(3):
        le = eager_step(eager_model, eager_opt, x, t, loss_fn)
        lc = step(lucid.Tensor(x), t)
        np.testing.assert_allclose(lc.item(), le, rtol=1e-5, atol=1e-6)
        assert_same_models(eager_model, comp_model, 1e-5)


def test_two_models_updated_one_after_the_other_in_one_step():
    """An update of one model does not stop the backward of another (only a backward
    through a value updated in place in the same function is refused)."""
    a, b = mlp((5, 3), seed=1), mlp((5, 3), seed=2)
    ea, eb = mlp((5, 3), seed=1), mlp((5, 3), seed=2)
    opt_a, opt_b = lucid.optim.SGD(a.parameters(), lr=0.1), lucid.optim.SGD(b.parameters(), lr=0.1)
    eopt_a, eopt_b = lucid.optim.SGD(ea.parameters(), lr=0.1), lucid.optim.SGD(eb.parameters(), lr=0.1)
    x, y = data(4, 5, 3)

    @lucid.compile
    def step(x, y):
        for model, opt in ((a, opt_a), (b, opt_b)):
            opt.zero_grad()
            F.cross_entropy(model(x), y).backward()
            opt.step()

    for _ in range(2):
        step(lucid.Tensor(x), y)
        for model, opt in ((ea, eopt_a), (eb, eopt_b)):
            eager_step(model, opt, x, y)
    assert_same_models(ea, a, 1e-6)
    assert_same_models(eb, b, 1e-6)


def test_a_compiled_step_may_detach_a_parameter():
    w = lucid.Tensor(np.array([1.0, 2.0, -1.0]), requires_grad=True)
    opt = lucid.optim.SGD([w], lr=0.1)

    @lucid.compile
    def step():
        opt.zero_grad()
        loss = (w * w.detach()).sum()  # d/dw = w (the detached factor is a constant)
        loss.backward()
        opt.step()
        return loss
    assert step().item() == 6.0
    np.testing.assert_allclose(w.numpy(), [0.9, 1.8, -0.9], rtol=1e-15)


def test_adam_reads_its_step_counter_once_per_call_when_batches_change():
    """Prepared calls read run-time scalars (Adam's step count advances when they are
    read) only once the native check has passed: batch sizes that change between calls
    (a call site miss each time) count every step exactly once."""
    eager_model, comp_model, eager_opt, comp_opt = twins(lambda: mlp((6, 5, 4)), lucid.optim.Adam, lr=0.05)
    step = compiled_step(comp_model, comp_opt)
    batches = {n: data(n, 6, 4, seed=n) for n in (5, 3)}
    sizes = [5, 5, 5, 5, 3, 5, 3, 3, 3, 5]
    for n in sizes:
        x, y = batches[n]
        le = eager_step(eager_model, eager_opt, x, y)
        np.testing.assert_allclose(step(lucid.Tensor(x), y).item(), le, rtol=1e-5)
    assert_same_models(eager_model, comp_model, 1e-5)
    assert [s["step"] for s in comp_opt.state.values()] == [len(sizes)] * 4
    assert sum(p.calls_prepared for p in step._programs.values()) >= 3 or not NATIVE
    assert step.traces == 2


def test_prepared_steps_write_parameters_in_place_and_refuse_shared_arrays():
    """A compiled step on the prepared path updates the parameters' own arrays; a
    parameter whose array became read-only is refused with the plan's error, not
    written."""
    eager_model, comp_model, eager_opt, comp_opt = twins(lambda: mlp((4, 3)), lucid.optim.SGD,
                                                         lr=0.1, momentum=0.9)
    step = compiled_step(comp_model, comp_opt)
    x, y = data(6, 4, 3)
    arrays = [p._data for p in comp_model.parameters()]
    for _ in range(5):
        eager_step(eager_model, eager_opt, x, y)
        step(lucid.Tensor(x), y)
    assert_same_models(eager_model, comp_model, 1e-5)
    assert all(p._data is a for p, a in zip(comp_model.parameters(), arrays))
    assert sum(p.calls_prepared for p in step._programs.values()) >= 2 or not NATIVE
    weight = comp_model[0].weight
    before = weight.numpy().copy()
    weight._data.setflags(write=False)
    with pytest.raises(ValueError, match="read-only"):
        step(lucid.Tensor(x), y)
    np.testing.assert_array_equal(weight.numpy(), before)


def test_scalar_source_arrays_are_remade_only_when_the_bits_change():
    from lucid.compiled import ScalarSource
    values = [(0.5, 0.0), (0.5, 0.0), (0.5, -0.0), (0.5, -0.0), (0.25, -0.0), (0.25, 0.0)]
    feed = iter(values)
    source = ScalarSource(lambda: next(feed), np.dtype("float32"), 2)
    got = [source.arrays() for _ in values]
    for (lr, zero), arrays in zip(values, got):
        assert arrays[0].dtype == np.float32 and float(arrays[0]) == lr
        assert np.signbit(arrays[1]) == np.signbit(zero)
        assert not arrays[0].flags.writeable
    assert got[1] is got[0] and got[3] is got[2]            # the same bits: the same arrays
    assert got[2] is not got[1] and got[5] is not got[4]    # a zero's sign changed


def test_a_broadcast_mask_read_by_cloned_reduction_prologues_stays_its_own_kernel():
    """tril's (3, 5) mask feeds the forward's and the backward's (7, 3, 5) selects, and
    reductions clone the forward select as their prologue: the fusion pass used to move
    the mask into the selects' loop (counting only the original graph's readers), which
    left a (3, 5) output on a (7, 3, 5) elementwise kernel (a ValueError building the
    plan; found by tests/fuzz_api.py). Compiled and eager steps agree."""
    rng = np.random.default_rng(0)
    x0, s0 = rng.standard_normal((7, 3, 5)), rng.standard_normal((1, 1))
    y = lucid.tensor(rng.standard_normal((7, 3, 5)).astype(np.float32))

    def make():
        x = lucid.tensor(x0.astype(np.float32), requires_grad=True)
        s = lucid.tensor(s0.astype(np.float32), requires_grad=True)
        opt = lucid.optim.Adam([x, s], lr=0.1)

        def step(y):
            opt.zero_grad()
            t = 0.27 * lucid.tril(x, diagonal=1)
            loss = (lucid.maximum(t, s) * y).sum() + t.tanh().tanh().sum() + (x * y).sum()
            loss.backward()
            opt.step()
            return loss
        return step, x, s
    eager, xe, se = make()
    compiled, xc, sc = make()
    compiled = lucid.compile(compiled)
    for _ in range(3):
        np.testing.assert_allclose(compiled(y).item(), eager(y).item(), rtol=1e-5)
    np.testing.assert_allclose(xc.numpy(), xe.numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(sc.numpy(), se.numpy(), rtol=1e-5, atol=1e-6)
