"""``lucid.autograd.Function`` against ``torch.autograd.Function``: each custom function
is written once, against the API both libraries share, and run in both; values and
gradients must agree, and so must the errors."""
from __future__ import annotations

import numpy as np
import pytest
import torch

import lucid


def define(lib):
    """The same custom functions, subclassing ``lib.autograd.Function``."""
    Function = lib.autograd.Function

    class Exp(Function):
        @staticmethod
        def forward(ctx, x):
            y = x.exp()
            ctx.save_for_backward(y)
            return y

        @staticmethod
        def backward(ctx, grad):
            (y,) = ctx.saved_tensors
            return grad * y

    class ScaledProduct(Function):
        """``(a * b * k, a + b)`` with a number argument and two outputs."""
        @staticmethod
        def forward(ctx, a, k, b):
            ctx.save_for_backward(a, b)
            ctx.k = k
            run.needs.append(tuple(ctx.needs_input_grad))
            return a * b * k, a + b

        @staticmethod
        def backward(ctx, g_prod, g_sum):
            a, b = ctx.saved_tensors
            ga = g_prod * b * ctx.k + g_sum if ctx.needs_input_grad[0] else None
            gb = g_prod * a * ctx.k + g_sum if ctx.needs_input_grad[2] else None
            return ga, None, gb

    class StraightThroughRound(Function):
        """A gradient autodiff would not give: round forward, identity backward."""
        @staticmethod
        def forward(ctx, x):
            return x.round()

        @staticmethod
        def backward(ctx, grad):
            return grad

    class ArgmaxAndDouble(Function):
        @staticmethod
        def forward(ctx, x):
            i = x.argmax()
            ctx.mark_non_differentiable(i)
            return x * 2.0, i

        @staticmethod
        def backward(ctx, grad, grad_i):
            run.seen.append(grad_i.tolist())
            return grad * 2.0

    class TwoOutputsLazy(Function):
        @staticmethod
        def forward(ctx, x):
            ctx.set_materialize_grads(False)
            return x * 3.0, x * 4.0

        @staticmethod
        def backward(ctx, g1, g2):
            run.seen.append((g1 is None, g2 is None))
            out = 0.0
            if g1 is not None:
                out = out + g1 * 3.0
            if g2 is not None:
                out = out + g2 * 4.0
            return out

    class Broadcasting(Function):
        """A backward returning a gradient of the output's shape for a smaller input."""
        @staticmethod
        def forward(ctx, x, bias):
            return x + bias

        @staticmethod
        def backward(ctx, grad):
            return grad, grad

    class NewStyle(Function):
        @staticmethod
        def forward(x, y):
            return x * y

        @staticmethod
        def setup_context(ctx, inputs, output):
            ctx.save_for_backward(*inputs)

        @staticmethod
        def backward(ctx, grad):
            x, y = ctx.saved_tensors
            return grad * y, grad * x

    class Identity(Function):
        @staticmethod
        def forward(ctx, x):
            return x

        @staticmethod
        def backward(ctx, grad):
            return grad * 5.0

    def run():
        pass
    run.needs, run.seen = [], []
    return dict(Exp=Exp, ScaledProduct=ScaledProduct, Round=StraightThroughRound, Argmax=ArgmaxAndDouble,
                Lazy=TwoOutputsLazy, Broadcasting=Broadcasting, NewStyle=NewStyle, Identity=Identity,
                run=run)


X = np.array([[0.25, -1.5, 2.0], [1.25, 0.5, -0.75]])
Y = np.array([[1.0, 2.0, -0.5], [0.3, -1.2, 0.8]])


def compare(program):
    """``program(lib, fns, x, y) -> loss`` in both libraries: loss, x.grad, y.grad and
    what the functions recorded."""
    results = []
    for lib in (lucid, torch):
        fns = define(lib)
        x = lib.tensor(X, requires_grad=True)
        y = lib.tensor(Y, requires_grad=True)
        loss = program(lib, fns, x, y)
        loss.backward()
        grads = [None if t.grad is None else t.grad.numpy() for t in (x, y)]
        results.append((loss.item(), grads, fns["run"].needs, fns["run"].seen))
    (loss, grads, needs, seen), (t_loss, t_grads, t_needs, t_seen) = results
    np.testing.assert_allclose(loss, t_loss, rtol=1e-12)
    for g, tg in zip(grads, t_grads):
        assert (g is None) == (tg is None)
        if g is not None:
            np.testing.assert_allclose(g, tg, rtol=1e-12, atol=1e-15)
    assert needs == t_needs and seen == t_seen


PROGRAMS = {
    "exp": lambda lib, f, x, y: (f["Exp"].apply(x) * y).sum(),
    "exp_twice_and_chained": lambda lib, f, x, y: f["Exp"].apply(f["Exp"].apply(x * 0.1) + y).sum(),
    "two_outputs_number_argument": lambda lib, f, x, y: sum(
        (o * w).sum() for o, w in zip(f["ScaledProduct"].apply(x, 2.5, y), (y, x))),
    "only_one_input_requires_grad": lambda lib, f, x, y: f["ScaledProduct"].apply(x, -1.0, y.detach())[0].sum(),
    "straight_through": lambda lib, f, x, y: (f["Round"].apply(x * 3.0) * y).sum(),
    "non_differentiable_output": lambda lib, f, x, y: (f["Argmax"].apply(x)[0] * y).sum(),
    "unused_output_is_none": lambda lib, f, x, y: f["Lazy"].apply(x)[1].sum() + y.sum(),
    "broadcast_gradient_is_summed": lambda lib, f, x, y: (f["Broadcasting"].apply(x, y[0]) ** 2).sum(),
    "new_style_setup_context": lambda lib, f, x, y: f["NewStyle"].apply(x, y).sum(),
    "identity_output_is_a_new_tensor": lambda lib, f, x, y: (f["Identity"].apply(x) * y).sum() + x.sum(),
}


@pytest.mark.parametrize("name", list(PROGRAMS))
def test_custom_functions_match_torch(name):
    compare(PROGRAMS[name])


def test_grad_fn_hooks_autograd_grad_and_retain_graph():
    for lib in (lucid, torch):
        fns = define(lib)
        x = lib.tensor(X, requires_grad=True)
        y = fns["Exp"].apply(x)
        assert y.grad_fn.name() == "ExpBackward" and not y.is_leaf and y.requires_grad
        seen = []
        y.register_hook(lambda g: seen.append(g.sum().item()))
        (g,) = lib.autograd.grad((y * 2.0).sum(), x, retain_graph=True)
        np.testing.assert_allclose(g.numpy(), 2.0 * np.exp(X))
        (y * 2.0).sum().backward()
        np.testing.assert_allclose(x.grad.numpy(), 2.0 * np.exp(X))
        assert seen == [12.0, 12.0]
        with pytest.raises(RuntimeError):        # the graph was freed
            (y * 2.0).sum().backward()


def test_without_gradients_apply_is_forward():
    for lib in (lucid, torch):
        fns = define(lib)
        x = lib.tensor(X)
        assert not fns["Exp"].apply(x).requires_grad
        with lib.no_grad():
            out = fns["Exp"].apply(lib.tensor(X, requires_grad=True))
        assert not out.requires_grad
        np.testing.assert_allclose(out.numpy(), np.exp(X))


def test_errors_match_torch():
    def wrong_count(lib):
        class F(lib.autograd.Function):
            @staticmethod
            def forward(ctx, a, b):
                return a * b

            @staticmethod
            def backward(ctx, g):
                return g
        return F

    def wrong_shape(lib):
        class F(lib.autograd.Function):
            @staticmethod
            def forward(ctx, a, b):
                return a * b

            @staticmethod
            def backward(ctx, g):
                return g.sum(0), None
        return F

    for make, message in [(wrong_count, "function FBackward returned an incorrect number of gradients "
                                        r"\(expected 2, got 1\)"),
                          (wrong_shape, r"Function FBackward returned an invalid gradient at index 0 - got "
                                        r"\[3\] but expected shape compatible with \[2, 3\]")]:
        for lib in (lucid, torch):
            x = lib.tensor(X, requires_grad=True)
            with pytest.raises(RuntimeError, match=message):
                make(lib).apply(x, lib.tensor(Y)).sum().backward()


def test_a_saved_tensor_written_in_place_is_refused_when_backward_reads_it():
    for lib in (lucid, torch):
        fns = define(lib)
        a = lib.tensor(X, requires_grad=True) * 1.0
        out = fns["NewStyle"].apply(a, lib.tensor(Y))
        a.add_(1.0)
        with pytest.raises(RuntimeError, match="modified by an inplace operation"):
            out.sum().backward()


def test_gradients_are_cast_to_the_inputs_dtype():
    for lib in (lucid, torch):
        class Double(lib.autograd.Function):
            @staticmethod
            def forward(ctx, x):
                return x * 2.0

            @staticmethod
            def backward(ctx, g):
                return (g * 2.0).double()
        x = lib.tensor([1.0, 2.0], requires_grad=True)
        Double.apply(x).sum().backward()
        assert x.grad.dtype == x.dtype and x.grad.tolist() == [2.0, 2.0]


def test_inside_compile_is_eager_only_when_gradients_are_wanted():
    fns = define(lucid)
    exp = fns["Exp"]
    f = lucid.compile(lambda x: exp.apply(x).sum())
    with pytest.raises(lucid.TracingError, match="eager-only"):
        f(lucid.tensor(X, requires_grad=True))
    np.testing.assert_allclose(f(lucid.tensor(X)).item(), np.exp(X).sum())


def test_once_differentiable_and_legacy_instances():
    from lucid.autograd import once_differentiable

    class F(lucid.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            return x * 3.0

        @staticmethod
        @once_differentiable
        def backward(ctx, g):
            assert not lucid.is_grad_enabled()
            return g * 3.0
    x = lucid.tensor([1.0], requires_grad=True)
    F.apply(x).sum().backward()
    assert x.grad.tolist() == [3.0]
    with pytest.raises(RuntimeError, match=r"F.apply\(\.\.\.\)"):
        F()
