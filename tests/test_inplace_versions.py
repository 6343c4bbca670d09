"""In-place ops and version counters against PyTorch (issue 14): the augmented
assignments write the tensor's own array, PyTorch's dtype rule, ``_version`` shared by
views, recorded in-place writes that rewrite a tensor's history (and its base's, through
a view), and backward's RuntimeError when a saved value was overwritten.

Values and gradients of the ops themselves are in the op table
(``tests/op_table_protocol.py``); these tests pin the semantics around them.
"""
from __future__ import annotations


import numpy as np
import pytest
import torch

import lucid

LIBS = [lucid, torch]


def both(fn):
    """``fn(lib)`` for lucid and torch, as numpy/lists (or the exception type)."""
    out = []
    for lib in LIBS:
        try:
            out.append(fn(lib))
        except RuntimeError as e:
            out.append(("RuntimeError", str(e)))
    return out


def _plain(r):
    return r.detach().numpy() if hasattr(r, "detach") else r


# ---------------------------------------------------------------- augmented assignments
OPERATORS = [("+=", "float", "float"), ("-=", "float", "float"), ("*=", "float", "int"),
             ("/=", "float", "float"), ("//=", "int", "int"), ("%=", "int", "int"), ("**=", "float", "int"),
             ("&=", "int", "int"), ("|=", "bool", "bool"), ("^=", "int", "int"), ("//=", "float", "float"),
             ("%=", "float", "float")]


def _data(kind, shape, seed):
    r = np.random.default_rng(seed)
    if kind == "float":
        return r.uniform(0.5, 3.0, shape)
    if kind == "int":
        return r.integers(1, 9, shape)
    return r.random(shape) < 0.5


@pytest.mark.parametrize("symbol,a,b", OPERATORS, ids=[f"{s}{a}-{b}" for s, a, b in OPERATORS])
def test_augmented_assignment_writes_the_array_views_see_it_as_torch(symbol, a, b):
    base_np, other_np = _data(a, (2, 3), 0), _data(b, (3,), 1)

    def run(lib):
        base = lib.tensor(base_np.copy())
        x = base[1]                 # a view: the write must reach the base
        before = id(x)
        env = {"x": x, "y": lib.tensor(other_np)}
        exec(f"x {symbol} y", env)
        assert id(env["x"]) == before   # the same object, written in place
        return base.numpy().copy(), base._version
    (got, got_version), (want, want_version) = both(run)
    np.testing.assert_allclose(got, want, rtol=1e-6)
    assert got.dtype == want.dtype and got_version == want_version == 1


@pytest.mark.parametrize("dtype,statement", [("int64", "x += 0.5"), ("int64", "x /= 2"), ("int64", "x *= 1.5"),
                                             ("int32", "x **= 0.5"), ("bool", "x += 1"),
                                             ("int64", "x -= lib.tensor([0.5])")])
def test_results_of_a_higher_kind_are_refused_with_torchs_message(dtype, statement):
    def run(lib):
        x = lib.tensor([1, 2], dtype=getattr(lib, dtype))
        try:
            exec(statement, {"x": x, "lib": lib})
        except (RuntimeError, TypeError) as e:
            return isinstance(e, RuntimeError), str(e)
        return None
    got, want = run(lucid), run(torch)
    assert got is not None and want is not None and got[0] == want[0]
    if want[1].startswith("result type"):
        assert want[1] in got[1]   # PyTorch's words, after the op's name


def test_same_kind_results_are_cast_and_shapes_cannot_grow():
    x, tx = lucid.tensor([1.5, 2.5]), torch.tensor([1.5, 2.5])
    x += lucid.tensor([1.0, 1.0], dtype=lucid.float64)
    tx += torch.tensor([1.0, 1.0], dtype=torch.float64)
    i = lucid.tensor([1, 2], dtype=lucid.int32)
    i += lucid.tensor([5, 6])
    assert x.dtype == lucid.float32 and x.tolist() == tx.tolist() and i.dtype == lucid.int32
    with pytest.raises(RuntimeError, match=r"output with shape \(2,\) doesn't match the broadcast shape"):
        x += lucid.zeros(3, 2)


INPLACE_METHODS = ["pow_(2)", "neg_()", "abs_()", "exp_()", "sqrt_()", "relu_()", "sigmoid_()", "tanh_()",
                   "floor_()", "ceil_()", "round_()", "trunc_()", "sign_()", "log_()", "sin_()", "square_()",
                   "reciprocal_()", "masked_fill_(x > 1.5, -1.0)", "index_fill_(0, lib.tensor([1]), 0.25)",
                   "floor_divide_(0.5)", "remainder_(0.75)", "fmod_(0.75)",
                   "addmm_(lib.ones(2, 3, dtype=x.dtype), lib.ones(3, 2, dtype=x.dtype), beta=0.5)"]


@pytest.mark.parametrize("call", INPLACE_METHODS)
def test_inplace_methods_match_torch_return_self_and_bump_the_version(call):
    data = np.array([[0.3, 1.7], [2.2, 0.9]])

    def run(lib):
        x = lib.tensor(data.copy())
        out = eval(f"x.{call}", {"x": x, "lib": lib})
        assert out is x
        return x.numpy().copy(), x._version
    (got, gv), (want, wv) = both(run)
    np.testing.assert_allclose(got, want, rtol=1e-12)
    assert gv == wv == 1


# ---------------------------------------------------------------- version counters
def test_version_counters_are_shared_by_views_and_detach_but_not_data():
    def run(lib):
        x = lib.zeros(2, 3)
        v, t, d = x[1], x.T, x.detach()
        seen = [x._version]
        v.add_(1.0)
        seen.append((x._version, t._version, d._version))
        x[0, 0] = 5.0
        seen.append((x._version, v._version))
        d.mul_(2.0)
        seen.append(x._version)
        data = x.data
        data.add_(1.0)                   # hidden from autograd: a counter of its own
        seen.append((x._version, data._version))
        with lib.no_grad():
            x.zero_()
        seen.append(x._version)
        return seen
    got, want = both(run)
    assert got == want


def test_backward_refuses_an_operand_written_after_it_was_saved():
    def run(lib):
        w = lib.tensor([1.0, 2.0], requires_grad=True)
        x = lib.tensor([3.0, 4.0])
        y = w * x                     # saves x
        x.add_(1.0)
        y.sum().backward()
    got, want = both(run)
    assert got[0] == want[0] == "RuntimeError"
    assert "modified by an inplace operation: [lucid.FloatTensor [2]] is at version 1; expected " \
           "version 0 instead" in got[1]
    assert "[torch.FloatTensor [2]] is at version 1; expected version 0 instead" in want[1]


def test_backward_refuses_a_saved_result_written_in_place():
    def run(lib):
        w = lib.tensor([1.0, 2.0], requires_grad=True)
        y = w.sigmoid()               # its gradient reads y
        y.mul_(2.0)
        y.sum().backward()
    got, want = both(run)
    assert got[0] == want[0] == "RuntimeError" and "is at version 1; expected version 0" in got[1]


def test_writes_that_no_gradient_reads_are_allowed_and_counted_versions_are_exact():
    w = lucid.tensor([1.0, 2.0], requires_grad=True)
    x = lucid.tensor([3.0, 4.0])
    y = w + x                         # reads no value
    x.add_(1.0)                       # version 1
    z = w * x                         # saves x at version 1
    (y + z).sum().backward()
    assert w.grad.tolist() == [5.0, 6.0]
    w.grad = None
    z = w * x
    for _ in range(3):
        x.sub_(0.5)
    with pytest.raises(RuntimeError, match="is at version 4; expected version 1 instead"):
        z.sum().backward()


def test_setitem_and_random_fills_and_init_bump_the_version():
    x = lucid.zeros(4)
    x[1] = 2.0
    x[[0, 3]] = 1.0
    x[x > 1.5] = 0.0
    x.uniform_()
    x.normal_()
    lucid.nn.init.ones_(x)
    assert x._version == 6


# ---------------------------------------------------------------- recorded in-place writes
def _grads(run):
    """``run(lib, w)`` for both libraries, w.grad as numpy."""
    out = []
    for lib in LIBS:
        w = lib.tensor([0.5, -1.0, 2.0], dtype=lib.float64, requires_grad=True)
        run(lib, w)
        out.append(w.grad.numpy())
    return out


@pytest.mark.parametrize("case", ["mul_", "exp_then_add", "div_", "pow_", "copy_", "clamp_", "twice",
                                  "masked_fill_", "zero_", "tanh_", "scatter_add_"])
def test_recorded_inplace_writes_keep_earlier_calls_on_the_old_history(case):
    def run(lib, w):
        h = w * 1.5 + 0.25
        z = h * 2.0                    # recorded before: sees the old h
        other = w.flip(0)
        if case == "mul_":
            h.mul_(other)
        elif case == "exp_then_add":
            h += other
            h.exp_()
        elif case == "div_":
            h /= other.abs() + 1.0
        elif case == "pow_":
            h.pow_(2)
        elif case == "copy_":
            h.copy_(other * 3.0)
        elif case == "clamp_":
            h.clamp_(max=1.0)
        elif case == "twice":
            h.mul_(other)
            h.mul_(other)
        elif case == "masked_fill_":
            h.masked_fill_(h > 1.0, 0.0)
        elif case == "zero_":
            h.zero_()
        elif case == "tanh_":
            h.tanh_()
        elif case == "scatter_add_":
            h.scatter_add_(0, lib.tensor([0, 0]), other[1:])
        assert h.requires_grad and not h.is_leaf
        ((h * lib.tensor([1.0, 2.0, 3.0], dtype=lib.float64)).sum() + (z * z).sum()).backward()
    got, want = _grads(run)
    np.testing.assert_allclose(got, want, rtol=1e-12)


def test_a_plain_tensor_written_with_a_tensor_that_requires_grad_becomes_recorded():
    def run(lib, w):
        total = lib.zeros((), dtype=lib.float64)
        for k in range(3):
            total += (w * k).sum()        # the accumulation loop
        buf = lib.zeros(3, dtype=lib.float64)
        buf *= 2.0
        buf += w
        assert buf.requires_grad and not buf.is_leaf and total.grad_fn.name() == "AddBackward0"
        (total + (buf * buf).sum()).backward()
    got, want = _grads(run)
    np.testing.assert_allclose(got, want, rtol=1e-12)


@pytest.mark.parametrize("case", ["slice", "transpose_of_matrix", "column_assigned_back", "nested_views",
                                  "setitem_on_view"])
def test_writing_a_view_rewrites_its_base_history_as_torch(case):
    def run(lib, w):
        h = (w * 2.0).reshape(1, 3) * lib.ones(2, 1, dtype=lib.float64)  # (2, 3)
        if case == "slice":
            h[0:1, 1:].mul_(w[1:])
        elif case == "transpose_of_matrix":
            h.T.add_(w.reshape(3, 1) * 3.0)
        elif case == "column_assigned_back":
            h[:, 0] *= w[2]
        elif case == "nested_views":
            h.reshape(6)[1:5].reshape(2, 2).T.mul_(w[0])
        elif case == "setitem_on_view":
            h[1][1:] = w[:2] * w[:2]
        (h * lib.arange(6.0, dtype=lib.float64).reshape(2, 3)).sum().backward()
    got, want = _grads(run)
    np.testing.assert_allclose(got, want, rtol=1e-12)


def test_views_of_leaves_that_require_grad_are_refused_as_torch():
    for lib in LIBS:
        w = lib.ones(3, requires_grad=True)
        with pytest.raises(RuntimeError, match="a view of a leaf Variable that requires grad is being "
                                               "used in an in-place operation"):
            w[1:].mul_(2.0)
        with pytest.raises(RuntimeError, match="a leaf Variable that requires grad"):
            w += 1.0
        with lib.no_grad():
            w[1:].mul_(2.0)                 # an update outside autograd: allowed
        assert w.tolist() == [1.0, 2.0, 2.0]


def test_hooks_registered_before_an_inplace_write_see_the_old_values_gradient():
    def run(lib, w):
        seen = []
        a = w * 2.0
        a.register_hook(lambda g: seen.append(g.tolist()) or g * 10.0)
        a.mul_(3.0)
        b = w * 1.0
        b.retain_grad()
        b.mul_(5.0)                         # .grad is for the newest value, as torch's
        (a.sum() + b.sum()).backward()
        run.seen.append((seen, b.grad.tolist()))
    run.seen = []
    got, want = _grads(run)
    np.testing.assert_allclose(got, want)
    assert run.seen[0] == run.seen[1]


def test_inplace_activations_on_recorded_tensors_match_torch():
    def run(lib, w):
        F = lib.nn.functional
        h = w * 1.0 - 0.75
        F.relu(h, inplace=True)
        y = F.hardtanh(h * 3.0, inplace=True)
        z = F.leaky_relu(w * 2.0, 0.1, inplace=True)
        (y * y + z).sum().backward()
    got, want = _grads(run)
    np.testing.assert_allclose(got, want, rtol=1e-12)

    def saved_then_written(lib):
        F = lib.nn.functional
        w = lib.tensor([0.5, -1.0, 2.0], requires_grad=True)
        h = w * 1.0 - 0.75
        F.relu(h, inplace=True)             # saves its result ...
        F.leaky_relu(h, 0.1, inplace=True)  # ... which this overwrites
        h.sum().backward()
    got, want = both(saved_then_written)
    assert got[0] == want[0] == "RuntimeError"
    assert "is at version 2; expected version 1 instead" in got[1] and "Relu" in got[1]


def test_no_grad_writes_keep_the_history_and_bump_the_version():
    def run(lib, w):
        h = w * 3.0                   # saves nothing it reads later
        with lib.no_grad():
            h.add_(100.0)
        assert h.grad_fn.name() == "MulBackward0" and h._version == 1
        h.sum().backward()
    got, want = _grads(run)
    np.testing.assert_allclose(got, want)
    for lib in LIBS:   # a plain tensor written under no_grad stays plain
        x = lib.zeros(2)
        with lib.no_grad():
            x.copy_(lib.ones(2, requires_grad=True))
            x += lib.ones(2, requires_grad=True)
        assert x.is_leaf and not x.requires_grad and x._version == 2


@pytest.mark.parametrize("case", ["view_of_rewritten_base", "sibling_views", "view_of_a_view",
                                  "used_before_and_after", "root_is_the_view", "written_twice"])
def test_views_taken_before_a_write_take_the_new_history_as_torch(case):
    """PyTorch regenerates the history of a view whose memory another tensor's recorded
    in-place op rewrote; lucid does the same at backward time."""
    def run(lib, w):
        h = (w * 2.0).reshape(1, 3) * lib.ones(2, 1, dtype=lib.float64)   # (2, 3)
        if case == "view_of_rewritten_base":
            v = h[1]
            h.mul_(w)
            loss = (v * v).sum() + h.sum()
        elif case == "sibling_views":
            u, v = h[:, 1:], h[:, :2]
            v.mul_(w[:2])                 # u overlaps v's column 1
            loss = (u * u).sum() + v.sum()
        elif case == "view_of_a_view":
            u = h.T[1:]
            h[0].add_(w * w)
            loss = (u * lib.arange(4.0, dtype=lib.float64).reshape(2, 2)).sum()
        elif case == "used_before_and_after":
            v = h[0]
            z = v * 3.0
            h.mul_(w)
            loss = (z * z).sum() + (v * v).sum()
        elif case == "root_is_the_view":
            v = h[1:, 1:]
            h.exp_()
            loss = v
        else:
            v = h[0]
            h[0, 0] = w[1] * 5.0
            h.mul_(w)
            loss = (v * w).sum()
        loss.sum().backward()
    got, want = _grads(run)
    np.testing.assert_allclose(got, want, rtol=1e-12)


def test_compiled_calls_check_the_arrays_they_saved():
    w = lucid.tensor([1.0, 2.0], requires_grad=True)
    x = lucid.tensor([3.0, 4.0])
    f = lucid.compile(lambda a, b: a * b)
    y = f(w, x)                         # the compiled backward reads x
    x.mul_(2.0)
    with pytest.raises(RuntimeError, match="modified by an inplace operation.*a compiled function"):
        y.sum().backward()
    y = f(w, x)
    y.sum().backward()
    assert w.grad.tolist() == [6.0, 8.0]


def test_earlier_incarnations_are_released_with_the_graph():
    w = lucid.tensor([1.0, 2.0], requires_grad=True)
    h = w * 1.0
    for _ in range(3):
        h.mul_(w)
    old = h._previous
    assert old is not None and old._data.strides != (0,)
    h.sum().backward()
    assert w.grad.tolist() == [4.0, 32.0]
    assert h._previous._freed and old._data.strides == (0,)   # its copy of old values is gone
    with pytest.raises(RuntimeError, match="backward through the graph a second time"):
        h.sum().backward()
    w.grad = None
    h = w * 2.0
    z = h * 3.0                        # an earlier call, outside the graph freed below
    h.copy_(w * 5.0)
    h.sum().backward()
    z.sum().backward()                 # still has its history (the old h)
    assert w.grad.tolist() == [11.0, 11.0]


def test_writes_inside_a_compiled_function():
    state = lucid.zeros(2, dtype=lucid.float64)

    def step(x):
        y = x * 2.0
        y += 1.0                # computed inside: the name keeps the new value
        y.exp_()
        state.add_(y)           # from outside: written at every call
        return y

    f = lucid.compile(step)
    x = lucid.tensor([0.0, 1.0], dtype=lucid.float64, requires_grad=True)
    out = f(x)
    out.sum().backward()
    np.testing.assert_allclose(out.numpy(), np.exp([1.0, 3.0]))
    np.testing.assert_allclose(x.grad.numpy(), 2.0 * np.exp([1.0, 3.0]))
    np.testing.assert_allclose(state.numpy(), np.exp([1.0, 3.0]))


# ---------------------------------------------------------------- layout
def test_strides_offsets_contiguity_and_pointers_match_torch():
    def run(lib):
        x = lib.arange(24.0).reshape(2, 3, 4)
        views = [x, x[1], x[:, 1:, ::2], x.transpose(0, 2), x.permute(1, 2, 0)[1], x[..., 3],
                 lib.zeros(3, 1).expand(3, 4), lib.zeros(0, 3), x.unfold(2, 2, 1), x[0].T.contiguous()]
        return [(v.stride(), v.stride(-1) if v.ndim else None, v.is_contiguous(), v.storage_offset(),
                 (v.data_ptr() - x.data_ptr()) // 4 if v.numel() and v.storage_offset() else None)
                for v in views]
    got, want = both(run)
    assert got == want
    assert lucid.zeros(0).data_ptr() == 0 == torch.zeros(0).data_ptr()
    with pytest.raises(IndexError, match="(?i)dimension out of range"):
        lucid.zeros(2, 3).stride(2)


def test_unfold_is_a_view_with_torchs_errors():
    x = lucid.arange(10.0)
    u = x.unfold(0, 4, 4)
    assert u.shape == (2, 4) and u.data_ptr() == x.data_ptr()
    u.mul_(2.0)                          # windows that do not overlap are writable views
    assert x[:8].tolist() == [float(2 * k) for k in range(8)] and x._version == 1
    with pytest.raises(RuntimeError, match="refers to a single memory location"):
        x.unfold(0, 3, 1).add_(1.0)
    for args, message in [((0, 11, 1), "maximum size for tensor at dimension 0 is 10 but size is 11"),
                          ((0, 2, 0), "step is 0 but must be > 0"), ((0, -1, 1), "size is -1 but must be >= 0")]:
        with pytest.raises(RuntimeError, match=message):
            x.unfold(*args)
        with pytest.raises(RuntimeError, match=message):
            torch.arange(10.0).unfold(*args)
    with pytest.raises(IndexError, match="(?i)dimension out of range"):
        x.unfold(1, 2, 1)


def test_index_fill_errors_follow_torch():
    x = lucid.zeros(2, 3)
    for index, err, message in [(lucid.tensor([1.0]), IndexError, "Expected dtype int64 for index"),
                                (lucid.tensor([3]), IndexError, "index 3 is out of bounds for dimension 1"),
                                (lucid.tensor([[1]]), RuntimeError, "Index has to be a vector/scalar")]:
        with pytest.raises(err, match=message):
            x.index_fill(1, index, 1.0)
    with pytest.raises(RuntimeError, match="only supports a 0-dimensional value tensor"):
        x.index_fill(1, lucid.tensor([0]), lucid.ones(2))
    assert x.index_fill(1, lucid.tensor([-1, 0, 0]), 2.0).tolist() == \
        torch.zeros(2, 3).index_fill(1, torch.tensor([-1, 0, 0]), 2.0).tolist()


# ---------------------------------------------------------------- random programs
_STEPS = [
    "zs.append(h * 2.0)",                      # reads no value of h
    "zs.append(h * w)",                        # saves h (and w)
    "zs.append(h.exp())",                      # saves its result
    "h.mul_(1.5)",
    "h.add_(w)",
    "h.mul_(w.flip(0))",
    "h.tanh_()",
    "h[0].mul_(2.0)",
    "h[:, 1:3].add_(w[:, 1:3] * w[:, :2])",
    "h.T[1].mul_(w[:, 1])",
    "h[1, 2] = w[0, 0] * 3.0",
    "h[:, 0] *= w[:, 3]",
    "views.append(h[1:])",
    "h += 0.5",
    "h = h * 1.0",
    "zs.append(h.sigmoid())",
]


@pytest.mark.parametrize("seed", range(60))
def test_random_programs_of_inplace_writes_match_torch(seed):
    """Random sequences of in-place writes (on the tensor, on its views, by assignment)
    and calls that save values: lucid and PyTorch agree on the values, on the gradients,
    and on refusing a saved value that was overwritten."""
    r = np.random.default_rng(seed)
    program = [_STEPS[k] for k in r.integers(0, len(_STEPS), int(r.integers(2, 7)))]
    w0 = r.uniform(-1.0, 1.0, (3, 4))
    results = []
    for lib in (lucid, torch):
        w = lib.tensor(w0, requires_grad=True)
        env = {"w": w, "h": w * 1.5, "zs": [], "views": [], "lib": lib}
        try:
            for step in program:
                exec(step, env)
            h = env["h"]
            loss = (h * lib.arange(12.0, dtype=lib.float64).reshape(3, 4)).sum()
            for z in env["zs"] + env["views"]:
                loss = loss + (z * z).sum()
            loss.backward()
            results.append(("ok", h.detach().numpy().copy(), w.grad.numpy().copy()))
        except RuntimeError as e:
            results.append(("error", str(e)))
    got, want = results
    assert got[0] == want[0], f"{program}: lucid {got}, torch {want}"
    if got[0] == "ok":
        np.testing.assert_allclose(got[1], want[1], rtol=1e-12, err_msg=str(program))
        np.testing.assert_allclose(got[2], want[2], rtol=1e-10, atol=1e-12, err_msg=str(program))
    else:
        assert "modified by an inplace operation" in got[1] and "modified by an inplace operation" in want[1]
