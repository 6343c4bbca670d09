"""Advanced indexing and index assignment: behaviour and errors against PyTorch (the op
table, ``tests/op_table_index.py``, covers values and gradients in every mode)."""
from __future__ import annotations

import numpy as np
import pytest
import torch

import lucid
from lucid import index_plan
from lucid.tracing import TracingError

rng = np.random.default_rng(7)
X = rng.standard_normal((3, 4, 5))


def _torch_key(key):
    def one(e):
        if isinstance(e, list) and not e:
            return torch.tensor(e, dtype=torch.long)
        if isinstance(e, (list, np.ndarray)):
            return torch.tensor(np.asarray(e))
        if isinstance(e, lucid.Tensor):
            return torch.from_numpy(e.numpy())
        return e
    return tuple(one(e) for e in key) if isinstance(key, tuple) else one(key)


KEYS = [
    [2, 0, 2], ([0, 2], [1, 3]), (slice(None), [[0], [3]], [1, 4]), ([1, 0], slice(None), [4, 4]),
    (0, slice(None), [0, 3]), (Ellipsis, [-1, 0]), (None, [0, 1], Ellipsis, 0), (slice(None), None, [0, 3]),
    (slice(1, None), [1, 2], slice(None, None, 2)), ([], slice(None)), (slice(None), []),
    True, False, (Ellipsis, True), np.array([True, False, True]), np.array([[True, False, True, True]] * 3),
    np.array([1, 2]), np.int64(1), (np.array(2), 1), lucid.tensor([1, 0], dtype=lucid.int32),
    lucid.tensor(2), (lucid.tensor([[0], [1]]), lucid.tensor([2, 3, 0])), X > 0.5, (X[:, 0, 0] > 0, 1),
]


@pytest.mark.parametrize("key", KEYS, ids=[str(i) for i in range(len(KEYS))])
def test_getitem_matches_torch(key):
    want = torch.from_numpy(X)[_torch_key(key)]
    got = lucid.tensor(X)[key]
    assert got.shape == tuple(want.shape)
    np.testing.assert_array_equal(got.numpy(), want.numpy())


@pytest.mark.parametrize("key", KEYS[:12], ids=[str(i) for i in range(12)])
def test_setitem_matches_torch(key):
    t = torch.from_numpy(X.copy())
    shape = tuple(t[_torch_key(key)].shape)
    for value_shape in [(), shape, shape[1:]]:
        v = rng.standard_normal(value_shape)
        t = torch.from_numpy(X.copy())
        t[_torch_key(key)] = torch.from_numpy(v)
        x = lucid.tensor(X.copy())
        x[key] = lucid.tensor(v)
        np.testing.assert_array_equal(x.numpy(), t.numpy())


def test_a_plan_is_made_once_per_structure_not_per_index_value():
    x = lucid.tensor(X)
    x[[0, 1], :, [2, 3]]
    before = len(index_plan._PLANS)
    for i in range(5):
        out = x[[i % 3, 2], :, [4, i]]
        np.testing.assert_array_equal(out.numpy(), X[[i % 3, 2], :, [4, i]])
    assert len(index_plan._PLANS) == before


def test_advanced_indexing_copies_and_basic_indexing_views():
    data = np.arange(6.0)
    x = lucid.tensor(data)
    x[[0, 1]].numpy()[...] = -1.0
    assert data[0] == 0.0
    v = x[1:3]
    v[0] = 9.0                  # writes through the view into x, as PyTorch
    assert x.tolist()[1] == 9.0


def test_gradients_of_duplicate_indices_accumulate():
    x = lucid.tensor([1.0, 2.0, 3.0], requires_grad=True)
    x[[0, 0, 2, 0]].sum().backward()
    assert x.grad.tolist() == [3.0, 0.0, 1.0]


@pytest.mark.parametrize("key,error,message", [
    (5, IndexError, "index 5 is out of bounds for dimension 0 with size 3"),
    ((0, 3, [7]), IndexError, "index 7 is out of bounds for dimension . with size 5"),
    ([0, -4], IndexError, "index -4 is out of bounds for dimension 0 with size 3"),
    ((0, 0, 0, 0), IndexError, "too many indices for tensor of dimension 3"),
    ((np.ones((3, 4), bool), 0, 0), IndexError, "too many indices"),
    (np.array([True, False]), IndexError, r"shape of the mask \[2\] at index 0 does not match the shape "
                                         r"of the indexed tensor \[3, 4, 5\] at index 0"),
    ((slice(None), np.ones((4, 4), bool)), IndexError, r"mask \[4, 4\] at index 1 .* at index 2"),
    (np.array([0.5]), IndexError, "tensors used as indices must be long, int, byte or bool"),
    (lucid.tensor([1.0]), IndexError, "tensors used as indices must be long, int, byte or bool"),
    (1.5, IndexError, "only integers, slices"),
    (([0, 1], [0, 1, 2]), IndexError, r"shape mismatch: .* broadcast together with shapes \[2\], \[3\]"),
    ((slice(None, None, -1), [0]), ValueError, "step must be greater than zero"),
])
def test_indexing_errors_are_pytorchs(key, error, message):
    with pytest.raises(error, match=message):
        lucid.tensor(X)[key]
    with pytest.raises(error, match=message):
        torch.from_numpy(X)[_torch_key(key)]
    if error is IndexError:
        with pytest.raises(error, match=message):
            lucid.tensor(X)[key] = 1.0


def test_compiled_indexing_takes_new_index_values_without_retracing():
    calls = []

    def f(x, i, j):
        calls.append(1)
        return x[i, :, j] * 2.0

    g = lucid.compile(f)
    for i, j in [([0, 2], [4, -1]), ([1, 1], [0, 3])]:
        out = g(lucid.tensor(X), lucid.tensor(i), lucid.tensor(j))
        np.testing.assert_allclose(out.numpy(), X[i, :, j] * 2.0)
    assert len(calls) == 1


def test_compiled_mask_indexing_is_refused_but_mask_assignment_works():
    with pytest.raises(TracingError, match="boolean mask"):
        lucid.compile(lambda x: x[x > 0])(lucid.tensor(X))

    def clip(x):
        y = x.clone()
        y[y > 0.5] = 0.5
        return y
    np.testing.assert_array_equal(lucid.compile(clip)(lucid.tensor(X)).numpy(), np.minimum(X, 0.5))


def test_compiled_assignment_updates_a_captured_tensor_and_refuses_arguments_and_index_tensors():
    buf = lucid.zeros(4)

    def write(v):
        buf[1:3] = v
        return buf * 1.0
    g = lucid.compile(write)
    assert g(lucid.tensor([1.0, 2.0])).tolist() == [0.0, 1.0, 2.0, 0.0]
    assert g(lucid.tensor([5.0, 6.0])).tolist() == [0.0, 5.0, 6.0, 0.0]
    assert buf.tolist() == [0.0, 5.0, 6.0, 0.0]

    def into_argument(x):
        x[0] = 1.0
        return x
    with pytest.raises(TracingError, match="argument of a compiled function cannot be updated"):
        lucid.compile(into_argument)(lucid.zeros(3))

    def by_tensor(x, i):
        y = x.clone()
        y[i] = 0.0
        return y
    with pytest.raises(TracingError, match="index tensor inside lucid.compile"):
        lucid.compile(by_tensor)(lucid.zeros(3), lucid.tensor([0, 1]))


def test_assigning_into_a_leaf_that_requires_grad_is_refused_except_under_no_grad():
    w = lucid.ones(3, requires_grad=True)
    with pytest.raises(RuntimeError, match="a leaf Variable that requires grad is being used in an "
                                           "in-place operation"):
        w[0] = 2.0
    tw = torch.ones(3, requires_grad=True)
    with pytest.raises(RuntimeError, match="a leaf Variable that requires grad"):
        tw[0] = 2.0
    with lucid.no_grad():
        w[[0, 2]] = 2.0
    assert w.tolist() == [2.0, 1.0, 2.0] and w.is_leaf and w.requires_grad


def test_assignment_into_a_recorded_tensor_sends_gradients_to_old_values_and_value():
    w = lucid.tensor([1.0, 2.0, 3.0, 4.0], requires_grad=True)
    v = lucid.tensor([10.0, 20.0], requires_grad=True)
    h = w * 3.0
    h[[3, 1]] = v * v
    assert h.tolist() == [3.0, 400.0, 9.0, 100.0] and not h.is_leaf
    (h * lucid.tensor([1.0, 2.0, 3.0, 4.0])).sum().backward()
    assert w.grad.tolist() == [3.0, 0.0, 9.0, 0.0]
    assert v.grad.tolist() == [80.0, 80.0]


def test_a_value_that_requires_grad_makes_a_plain_tensor_recorded():
    x = lucid.zeros(3)
    v = lucid.tensor(2.0, requires_grad=True)
    x[1:] = v
    assert x.requires_grad and not x.is_leaf
    (x * x).sum().backward()
    assert v.grad.tolist() == 8.0


def test_overwritten_duplicates_get_no_gradient_as_finite_differences_say():
    """Duplicate positions: the last value wins (as numpy and PyTorch on CPU); only it
    reaches the result, so only it gets a gradient (PyTorch gives every duplicate one)."""
    v = lucid.tensor([1.0, 2.0, 3.0], requires_grad=True)
    x = lucid.zeros(4) * 1.0
    x[[1, 1, 2]] = v
    assert x.tolist() == [0.0, 2.0, 3.0, 0.0]
    x.sum().backward()
    assert v.grad.tolist() == [0.0, 1.0, 1.0]


def test_ops_recorded_before_an_assignment_keep_the_old_history_and_versions_guard_values():
    """As PyTorch: calls recorded before ``h[...] = v`` keep h's old history (their
    gradients reach it); a backward that reads values assigned over after they were
    saved is PyTorch's version-counter RuntimeError."""
    w0 = np.array([1.0, 2.0, 3.0, 4.0])
    c = [1.0, 2.0, 3.0, 4.0]
    w = lucid.tensor(w0, requires_grad=True)
    h = w * 2.0
    z = h * 3.0             # does not save h
    h[[0, 3]] += 1.0        # reads h[[0, 3]], then writes
    h[1] = 0.0
    view = h[1:3]           # a view taken after the assignments sees the new history
    ((z * lucid.tensor(c)).sum() + (h * h).sum() + (view * view).sum()).backward()
    tw = torch.tensor(w0, requires_grad=True)
    th = tw * 2.0
    tz = th * 3.0
    th[[0, 3]] += 1.0
    th[1] = 0.0
    tview = th[1:3]
    ((tz * torch.tensor(c)).sum() + (th * th).sum() + (tview * tview).sum()).backward()
    np.testing.assert_allclose(w.grad, tw.grad.numpy())
    np.testing.assert_allclose(h.numpy(), th.detach().numpy())
    assert h._version == th._version == 2

    w = lucid.tensor(w0, requires_grad=True)
    h = w * 2.0
    z = h * h               # saves h
    h[1] = 0.0
    with pytest.raises(RuntimeError, match=r"modified by an inplace operation: \[lucid.DoubleTensor "
                                           r"\[4\]\] is at version 1; expected version 0"):
        z.sum().backward()
    h = w * 2.0
    out = lucid.compile(lambda t: t * t)(h)
    h[2] = 1.0                  # after a compiled call that saved h
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        (out.sum() + h.sum()).backward()


def test_assignment_into_a_view_of_a_recorded_tensor_rewrites_its_base_as_torch():
    a = lucid.tensor([1.0, 2.0], requires_grad=True)
    ta = torch.tensor([1.0, 2.0], requires_grad=True)
    r, tr = (a * 3.0).reshape(2, 1), (ta * 3.0).reshape(2, 1)
    r.reshape(2)[0] = 5.0
    tr.reshape(2)[0] = 5.0
    (r * r).sum().backward(), (tr * tr).sum().backward()
    np.testing.assert_allclose(r.detach().numpy(), tr.detach().numpy())
    np.testing.assert_allclose(a.grad.numpy(), ta.grad.numpy())
    w = lucid.tensor([1.0, 2.0], requires_grad=True)
    with pytest.raises(RuntimeError, match="a view of a leaf Variable that requires grad"):
        w[0:1][0] = 3.0


def test_assignment_errors():
    x = lucid.zeros(3, 4)
    with pytest.raises(RuntimeError, match=r"shape mismatch: value tensor of shape \[3\] cannot be "
                                           r"broadcast to indexing result of shape \[2, 4\]"):
        x[[0, 1]] = lucid.zeros(3)
    with pytest.raises(RuntimeError, match="Index put requires the source and destination dtypes match"):
        x[[0, 1]] = lucid.zeros(4, dtype=lucid.int64)
    with pytest.raises(RuntimeError, match="expanded view"):
        lucid.zeros(1, 4).expand(3, 4)[0, 0] = 1.0
    with pytest.raises(TypeError, match="cannot assign a str"):
        x[0] = "a"


def test_assignment_converts_numbers_and_basic_keys_cast_tensors():
    n = lucid.zeros(4, dtype=lucid.int64)
    n[[0, 3]] = 1.7
    n[1:3] = lucid.tensor([2.9, -1.5])
    b = lucid.zeros(3, dtype=lucid.bool)
    b[[0, 2]] = True
    assert n.tolist() == [1, 2, -1, 1] and b.tolist() == [True, False, True]


def test_scalar_tensors_and_bool_scalars():
    s = lucid.tensor(3.0)
    s[...] = 5.0
    assert s.tolist() == 5.0 and s[None].shape == (1,) and s[True].shape == (1,) and s[False].shape == (0,)
    s[lucid.tensor(False)] = 7.0
    assert s.tolist() == 5.0


def _random_key(r, shape):
    """A random mix of ints, slices, None, ..., index arrays and one mask for ``shape``."""
    key, axis, ellipsis = [], 0, False
    index_shape = tuple(int(d) for d in r.integers(1, 3, r.integers(1, 3)))
    while axis < len(shape):
        kind = r.choice(["int", "slice", "none", "array", "array", "mask", "ellipsis", "stop"])
        n = shape[axis]
        if kind == "stop":
            break
        if kind == "int" and n:
            key.append(int(r.integers(-n, n)))
        elif kind == "slice":
            key.append(slice(int(r.integers(-n - 1, n + 1)), None, int(r.integers(1, 3))))
        elif kind == "none":
            key.append(None)
            continue
        elif kind == "array" and n:
            key.append(r.integers(-n, n, index_shape))
        elif kind == "mask" and not any(isinstance(e, np.ndarray) and e.dtype == bool for e in key):
            span = int(r.integers(1, len(shape) - axis + 1))
            key.append(r.random(shape[axis:axis + span]) < 0.5)
            axis += span
            continue
        elif kind == "ellipsis" and not ellipsis:
            ellipsis = True
            key.append(Ellipsis)
            break
        else:
            key.append(slice(None))
        axis += 1
    return tuple(key)


@pytest.mark.parametrize("seed", range(40))
def test_random_keys_match_torch_for_reading_assigning_and_gradients(seed):
    r = np.random.default_rng(seed)
    shape = tuple(int(d) for d in r.integers(1, 5, r.integers(1, 4)))
    data = r.standard_normal(shape)
    key = _random_key(r, shape)
    tkey = tuple(torch.from_numpy(e) if isinstance(e, np.ndarray) else e for e in key)
    try:
        want = torch.from_numpy(data)[tkey]
    except IndexError:   # e.g. a mask and index arrays that do not broadcast
        with pytest.raises(IndexError):
            lucid.tensor(data)[key]
        return
    x = lucid.tensor(data, requires_grad=True)
    got = x[key]
    np.testing.assert_array_equal(got.numpy(), want.numpy(), err_msg=str(key))
    w = r.standard_normal(tuple(want.shape))
    (got * lucid.tensor(w)).sum().backward()
    tx = torch.tensor(data, requires_grad=True)
    (tx[tkey] * torch.from_numpy(w)).sum().backward()
    np.testing.assert_allclose(x.grad, tx.grad.numpy(), rtol=1e-12, err_msg=str(key))
    v = r.standard_normal(tuple(want.shape)[1:])
    t = torch.from_numpy(data.copy())
    t[tkey] = torch.from_numpy(v)
    y = lucid.tensor(data.copy())
    y[key] = lucid.tensor(v)
    np.testing.assert_array_equal(y.numpy(), t.numpy(), err_msg=str(key))


@pytest.mark.parametrize("before,after", [(None, None), (0, None), (None, 1), (2, None), (0, 2), (1, 0)])
def test_records_made_before_an_assignment_keep_the_old_history_whatever_the_collector_did(before, after):
    """A collection of generation g between the steps moves the tensor (``before``: after
    ``h`` is made) or the record that used it (``after``: after ``z``) to an older one;
    nothing about an assignment depends on where the collector keeps them."""
    import gc
    w = lucid.tensor([1.0, 2.0, 3.0], requires_grad=True)
    h = w * 2.0
    if before is not None:
        gc.collect(before)
    z = h * 3.0             # reads no value of h
    if after is not None:
        gc.collect(after)
    h[1] = 0.0
    (z.sum() + h.sum()).backward()
    assert w.grad.tolist() == [8.0, 6.0, 8.0]
