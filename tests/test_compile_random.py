"""Random numbers inside ``lucid.compile``: the counter-based ``random_uniform`` and
``random_normal`` ops (numpy reference, native kernels, fusion, threads), the key every
call draws from lucid's generator, and what is built on them: dropout (its mask, scaling,
gradient, training and eval modes, edge cases, reproducibility), ``rand``/``randn``/
``randint``/``normal``/``bernoulli`` and the in-place samplers."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

import fuzz
import lucid
import lucid.nn as nn
import lucid.nn.functional as F
from lucid.compiler import compile_graph
from lucid.random import KeySource
from lucid_codegen.runtime import threads
from lucid_ir.builder import GraphBuilder
from lucid_ir.interpreter import interpret
from lucid_ir.ops.random import GAMMA, MIX1, MIX2

MASK64 = (1 << 64) - 1


# ------------------------------------------------------------------ the ops
def _splitmix_by_hand(key: int, counter: int) -> int:
    """SplitMix64 in Python integers: an independent check of the numpy reference."""
    z = (key + counter * GAMMA) & MASK64
    z = ((z ^ (z >> 30)) * MIX1) & MASK64
    z = ((z ^ (z >> 27)) * MIX2) & MASK64
    return z ^ (z >> 31)


def _graph(op, shape, dtype, key_const=None):
    b = GraphBuilder()
    key = b.input((), "int64") if key_const is None else b.constant(key_const, (), "int64")
    return b.build([b.emit(op, key, shape=shape, dtype=dtype)])


def test_reference_is_splitmix64_of_the_key_and_the_position():
    key = -(1 << 63) + 12345
    u32, = interpret(_graph("random_uniform", (2, 3), "float32"), [np.array(key)])
    u64, = interpret(_graph("random_uniform", (2, 3), "float64"), [np.array(key)])
    for i in range(6):
        z = _splitmix_by_hand(key & MASK64, i + 1)
        assert u32.ravel()[i] == np.float32((z >> 40) / 2.0 ** 24)
        assert u64.ravel()[i] == (z >> 11) / 2.0 ** 53
    n, = interpret(_graph("random_normal", (3,), "float64"), [np.array(5)])
    for i in range(3):
        u1 = ((_splitmix_by_hand(5, 2 * i + 1) >> 11) + 1) / 2.0 ** 53
        u2 = (_splitmix_by_hand(5, 2 * i + 2) >> 11) / 2.0 ** 53
        assert n[i] == pytest.approx(math.sqrt(-2 * math.log(u1)) * math.cos(2 * math.pi * u2), rel=1e-14)
    # the values of a position do not depend on the shape around it
    flat, = interpret(_graph("random_uniform", (6,), "float64"), [np.array(key)])
    np.testing.assert_array_equal(flat, u64.ravel())


SHAPES = [(), (0,), (1,), (7,), (3, 0), (3, 5), (2, 3, 17), (64, 130), (5, 1, 33, 2)]
KEYS = [0, 1, -1, (1 << 63) - 1, -(1 << 63), 0x5DEECE66D]


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("shape", SHAPES)
def test_native_uniform_equals_the_reference_bit_for_bit(dtype, shape):
    g = _graph("random_uniform", shape, dtype)
    compiled = compile_graph(g)
    for key in KEYS:
        want, = interpret(g, [np.array(key)])
        got, = compiled([np.array(key)])
        assert got.dtype == dtype and got.shape == shape
        np.testing.assert_array_equal(got, want)
        assert ((got >= 0) & (got < 1)).all()


@pytest.mark.parametrize("layout", ["broadcast", "transposed", "strided"])
def test_uniform_in_loops_whose_dimensions_do_not_merge(layout):
    """Operands that keep the loop's dimensions apart (a broadcast, a transposed or a
    strided view): the kernel walks rows by an outer index, and each element still gets
    the number of its C-order position."""
    shape = (6, 7, 5)
    rng = np.random.default_rng(1)
    if layout == "broadcast":
        x = np.broadcast_to(rng.standard_normal((7, 1)).astype(np.float32), shape)
    elif layout == "transposed":
        x = np.ascontiguousarray(rng.standard_normal((5, 7, 6)).astype(np.float32)).transpose(2, 1, 0)
    else:
        x = rng.standard_normal((6, 14, 5)).astype(np.float32)[:, ::2]
    b = GraphBuilder()
    key, xv = b.input((), "int64"), b.input(shape, "float32")
    g = b.build([b.emit("add", xv, b.emit("random_uniform", key, shape=shape, dtype="float32"))])
    compiled = compile_graph(g)
    for _ in range(3):  # first call, then the prepared and native paths
        got, = compiled([np.array(-5), x])
        np.testing.assert_array_equal(got, interpret(g, [np.array(-5), np.ascontiguousarray(x)])[0])


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("shape", SHAPES)
def test_native_normal_agrees_with_the_reference(dtype, shape):
    g = _graph("random_normal", shape, dtype)
    compiled = compile_graph(g)
    for key in KEYS:
        want, = interpret(g, [np.array(key)])
        got, = compiled([np.array(key)])
        assert got.dtype == dtype and got.shape == shape
        # log, sqrt and cos: a few ulps of the float64 / float32 result
        np.testing.assert_allclose(got, want, rtol=4e-6 if dtype == "float32" else 1e-14,
                                   atol=1e-6 if dtype == "float32" else 1e-15)


@pytest.mark.parametrize("rows", [False, True])
@pytest.mark.parametrize("native", [False, True])
def test_one_and_two_threads_give_the_same_bits(native, rows):
    """Work big enough to split (thresholds lowered): each part computes its elements
    from their own positions, so the split changes nothing: parts of one long loop, or
    (``rows``: a broadcast operand keeps the dimensions apart) groups of rows."""
    shape = (37 + 2 * native + 4 * rows, 211)  # shapes of their own: plans memoise their split
    b = GraphBuilder()
    key, x = b.input((), "int64"), b.input(shape[-1:] if rows else shape, "float32")
    u = b.emit("random_uniform", key, shape=shape, dtype="float32")
    n = b.emit("random_normal", key, shape=shape, dtype="float64")
    y = b.emit("mul", x, b.emit("cast", b.emit("ge", u, b.constant(0.25, (), "float32")), dtype="float32"))
    if rows:
        x_col = b.input(shape[:1] + (1,), "float64")
        n = b.emit("add", n, x_col)
    g = b.build([y, u, n])
    arrays = [np.array(99), np.ones(shape[-1:] if rows else shape, np.float32)]
    if rows:
        arrays.append(np.arange(shape[0], dtype=np.float64)[:, None])
    want = interpret(g, arrays)
    with fuzz.low_thread_thresholds(native=native):
        compiled = compile_graph(g)
        results = []
        for n_threads in (1, 2, 1, 2):  # the later runs take the prepared / native paths
            threads.set_num_threads(n_threads)
            results.append(compiled(arrays))
    for got in results:
        np.testing.assert_array_equal(got[0], want[0])
        np.testing.assert_array_equal(got[1], want[1])
        np.testing.assert_array_equal(got[2], results[0][2])
        np.testing.assert_allclose(got[2], want[2], rtol=1e-14, atol=1e-15)


def _ks_statistic(sample, cdf) -> float:
    s = np.sort(sample)
    c = cdf(s)
    n = len(s)
    return float(max((np.arange(1, n + 1) / n - c).max(), (c - np.arange(n) / n).max()))


def test_uniform_and_normal_statistics():
    n = 200_000
    bound = 1.95 / math.sqrt(n)  # Kolmogorov-Smirnov at the 0.1% level
    for key in (3, -77):
        u, = compile_graph(_graph("random_uniform", (n,), "float64"))([np.array(key)])
        assert abs(u.mean() - 0.5) < 5 * math.sqrt(1 / 12 / n)
        assert abs(u.var() - 1 / 12) < 0.002
        assert _ks_statistic(u, lambda s: s) < bound
        assert abs(np.corrcoef(u[:-1], u[1:])[0, 1]) < 5 / math.sqrt(n)  # neighbours independent
        counts = np.bincount((u * 256).astype(int), minlength=256)  # chi-square over 256 bins
        assert ((counts - n / 256) ** 2 / (n / 256)).sum() < 256 + 5 * math.sqrt(2 * 256)
        z, = compile_graph(_graph("random_normal", (n,), "float32"))([np.array(key)])
        assert abs(z.mean()) < 5 / math.sqrt(n) and abs(z.std() - 1) < 0.005
        normal_cdf = np.vectorize(lambda v: 0.5 * (1 + math.erf(v / math.sqrt(2))))
        assert _ks_statistic(z.astype(np.float64), normal_cdf) < bound
    a, = compile_graph(_graph("random_uniform", (n,), "float64"))([np.array(1)])
    b, = compile_graph(_graph("random_uniform", (n,), "float64"))([np.array(2)])
    assert abs(np.corrcoef(a, b)[0, 1]) < 5 / math.sqrt(n)  # keys next to each other: unrelated


def test_op_types_and_errors():
    b = GraphBuilder()
    key = b.input((), "int64")
    assert str(b.emit("random_normal", key, shape=(2, 3), dtype="float64").type) == "f64[2,3]"
    with pytest.raises(TypeError, match="random_uniform: the key must be an int64 scalar"):
        b.emit("random_uniform", b.input((2,), "int64"), shape=(2,))
    with pytest.raises(TypeError, match="random_uniform: the key must be an int64 scalar"):
        b.emit("random_uniform", b.input((), "int32"), shape=(2,))
    with pytest.raises(TypeError, match="random_normal: draws float32 or float64"):
        b.emit("random_normal", key, shape=(2,), dtype="int64")
    with pytest.raises(ValueError, match="negative dimension"):
        b.emit("random_uniform", key, shape=(-1,))


def test_printed_and_serialized():
    from lucid_ir.serialize import dumps, loads
    g = _graph("random_normal", (2, 3), "float64")
    assert str(g) == ("{ lambda ; %0:i64[]. let\n    %1:f64[2,3] = random_normal %0\n  in (%1) }")
    again = loads(dumps(g))
    assert str(again) == str(g)
    np.testing.assert_array_equal(interpret(again, [np.array(4)])[0], interpret(g, [np.array(4)])[0])


def test_a_constant_key_is_not_folded_and_equal_draws_are_one():
    g = _graph("random_uniform", (4, 5), "float32", key_const=11)
    want, = interpret(g, [])
    got, = compile_graph(g)([])
    np.testing.assert_array_equal(got, want)
    assert len(set(got.ravel().tolist())) == 20
    b = GraphBuilder()
    key = b.input((), "int64")
    u1 = b.emit("random_uniform", key, shape=(8,))
    u2 = b.emit("random_uniform", key, shape=(8,))
    cg = compile_graph(b.build([b.emit("add", u1, u2)]))
    assert [n.op for n in cg.simplified.nodes].count("random_uniform") == 1  # the same numbers


def test_random_numbers_stay_in_loops_over_their_own_shape():
    """A (4, 1) draw broadcast into a (4, 5) loop, and a draw summed: each draw runs in a
    loop over exactly its shape (a bigger loop or a reduction would number the elements
    differently), and the results are the reference's."""
    b = GraphBuilder()
    key, x = b.input((), "int64"), b.input((4, 5), "float32")
    small = b.emit("random_uniform", key, shape=(4, 1), dtype="float32")
    wide = b.emit("mul", x, b.emit("exp", small))
    total = b.emit("sum", b.emit("random_normal", key, shape=(4, 5), dtype="float32"), axes=(1,))
    g = b.build([wide, total])
    cg = compile_graph(g)
    kernels = [n for n in cg.fused.nodes if n.op == "kernel"]
    for k in kernels:
        for n in k.body.nodes:
            if n.op in ("random_uniform", "random_normal"):
                assert k.kind == "elementwise" and all(o.shape == n.out.shape for o in k.outs), str(cg.fused)
    arrays = [np.array(8), np.random.default_rng(0).standard_normal((4, 5)).astype(np.float32)]
    for got, want in zip(cg(arrays), interpret(g, arrays)):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)


# ------------------------------------------------------------------ keys and generators
def test_key_source_draws_from_the_generator_at_every_call():
    g = lucid.Generator().manual_seed(4)
    draw = KeySource(g)
    first = [draw()[0] for _ in range(3)]
    assert len(set(first)) == 3 and all(-(1 << 63) <= k < (1 << 63) for k in first)
    g.manual_seed(4)  # manual_seed replaces the generator's stream: the source follows
    assert [draw()[0] for _ in range(3)] == first


def _dropout_reference(seed: int, shape, p: float, generator=None):
    """What a compiled ``F.dropout(ones(shape), p)`` returns as its first draw after
    ``manual_seed(seed)``: the key is the generator's next draw, the mask the reference
    interpreter's ``random_uniform >= p``."""
    gen = lucid.Generator().manual_seed(seed) if generator is None else generator
    key = KeySource(gen)()[0]
    u, = interpret(_graph("random_uniform", shape, "float32"), [np.array(key)])
    return np.where(u >= np.float32(p), np.float32(1 / (1 - p)), np.float32(0))


def test_compiled_dropout_is_the_reference_and_reproducible():
    f = lucid.compile(lambda x: F.dropout(x, 0.3))
    x = lucid.ones(50, 40)
    lucid.manual_seed(21)
    runs = [f(x).numpy() for _ in range(3)]
    np.testing.assert_array_equal(runs[0], _dropout_reference(21, (50, 40), 0.3))
    assert not np.array_equal(runs[0] != 0, runs[1] != 0)  # a fresh mask at every call
    assert not np.array_equal(runs[1] != 0, runs[2] != 0)
    lucid.manual_seed(21)
    for want in runs:
        np.testing.assert_array_equal(f(x).numpy(), want)


def test_an_explicit_generator_is_honoured():
    g = lucid.Generator().manual_seed(8)
    f = lucid.compile(lambda x: F.dropout(x, 0.5, generator=g))
    x = lucid.ones(300)
    state = lucid.get_rng_state()
    a = f(x).numpy()
    np.testing.assert_array_equal(a, _dropout_reference(8, (300,), 0.5))
    assert np.array_equal(lucid.get_rng_state().numpy(), state.numpy())  # the default one is untouched
    g.manual_seed(8)
    np.testing.assert_array_equal(f(x).numpy(), a)
    assert not np.array_equal(f(x).numpy(), a)


def test_unfused_and_interpreted_runs_give_the_same_numbers(monkeypatch):
    x = lucid.ones(64, 33)
    lucid.manual_seed(3)
    native = lucid.compile(lambda t: F.dropout(t, 0.4) + lucid.rand_like(t))(x).numpy()
    monkeypatch.setenv("LUCID_FUSION", "0")  # every op a kernel of its own: the same numbers
    lucid.manual_seed(3)
    unfused = lucid.compile(lambda t: F.dropout(t, 0.4) + lucid.rand_like(t))(x).numpy()
    np.testing.assert_array_equal(unfused, native)
    monkeypatch.setenv("LUCID_BACKEND", "interpret")
    lucid.manual_seed(3)
    interpreted = lucid.compile(lambda t: F.dropout(t, 0.4) + lucid.rand_like(t))(x).numpy()
    np.testing.assert_array_equal(interpreted, native)


def test_compiled_results_are_the_same_at_one_and_two_threads():
    shape = (173, 389)
    f = lucid.compile(lambda x: F.dropout(F.gelu(x), 0.2))
    x = lucid.randn(*shape)
    with fuzz.low_thread_thresholds(native=True):
        out = []
        for n in (1, 2, 1, 2):
            threads.set_num_threads(n)
            lucid.manual_seed(0)
            out.append(f(x).numpy())
    for o in out[1:]:
        np.testing.assert_array_equal(o, out[0])


# ------------------------------------------------------------------ dropout
def test_kept_fraction_scaling_and_gradient_mask():
    p = 0.3
    scale = np.float32(1 / (1 - p))
    f = lucid.compile(lambda x: F.dropout(x, p))
    x = lucid.ones(200_000, requires_grad=True)
    lucid.manual_seed(11)
    y = f(x)
    kept = y.numpy() != 0
    assert abs(kept.mean() - (1 - p)) < 5 * math.sqrt(p * (1 - p) / kept.size)
    assert set(np.unique(y.numpy()).tolist()) == {0.0, float(scale)}
    (y * 2.0).sum().backward()
    np.testing.assert_array_equal(x.grad, np.where(kept, np.float32(2.0) * scale, 0.0))
    assert not np.array_equal(f(x.detach()).numpy() != 0, kept)


def test_gradient_of_a_whole_compiled_training_step_uses_the_same_mask():
    w = lucid.ones(5000, requires_grad=True)
    x = lucid.tensor(np.linspace(0.5, 1.5, 5000, dtype=np.float32))

    @lucid.compile
    def step(x):
        w.grad = None
        y = F.dropout(x * w, 0.5)
        (y * 3.0).sum().backward()
        return y

    for _ in range(2):
        y = step(x).numpy()
        kept = y != 0
        assert 0.45 < kept.mean() < 0.55
        np.testing.assert_allclose(w.grad, np.where(kept, 3.0 * 2.0 * x.numpy(), 0.0), rtol=1e-6)
        assert (w.grad[~kept] == 0).all()


def test_dropout_trains_inside_a_compiled_training_step():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((256, 8)).astype(np.float32)
    labels = (X[:, 0] + X[:, 1] * X[:, 2] > 0).astype(np.int64)
    lucid.manual_seed(0)
    model = nn.Sequential(nn.Linear(8, 64), nn.ReLU(), nn.Dropout(0.2), nn.Linear(64, 2))
    opt = lucid.optim.Adam(model.parameters(), lr=0.01)

    @lucid.compile
    def train_step(x, y):
        opt.zero_grad()
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        opt.step()
        return loss

    xs, ys = lucid.tensor(X), lucid.tensor(labels)
    losses = [train_step(xs, ys).item() for _ in range(150)]
    assert "random_uniform" in train_step.lower(xs, ys).as_text("fused")
    assert np.mean(losses[-10:]) < 0.5 * np.mean(losses[:3]), losses[::15]
    model.eval()
    with lucid.no_grad():
        eval_fn = lucid.compile(lambda x: model(x))
        accuracy = (eval_fn(xs).numpy().argmax(1) == labels).mean()
        np.testing.assert_array_equal(eval_fn(xs).numpy(), model(xs).numpy())  # deterministic
    assert accuracy > 0.9
    assert "random" not in eval_fn.lower(xs).as_text("fused")


def test_eval_mode_and_training_false_are_the_identity():
    x = lucid.randn(6, 7)
    drop = nn.Dropout(0.5)
    f = lucid.compile(lambda t: drop(t) * 1.0)
    drop.eval()
    np.testing.assert_array_equal(f(x).numpy(), x.numpy())
    assert "random" not in f.lower(x).as_text("traced")
    g = lucid.compile(lambda t: F.dropout(t, 0.5, training=False) + F.dropout2d(t[None, :, :, None], 0.5,
                                                                                 training=False)[0, :, :, 0])
    np.testing.assert_array_equal(g(x).numpy(), 2 * x.numpy())


def test_p_zero_one_and_out_of_range_as_pytorch():
    x = lucid.tensor([[1.0, -2.0, float("inf")], [0.5, float("nan"), 3.0]])
    tx = torch.tensor(x.numpy())
    for p in (0.0, 1.0):
        got = lucid.compile(lambda t, p=p: F.dropout(t, p))(x).numpy()
        np.testing.assert_array_equal(got, torch.nn.functional.dropout(tx, p).numpy())  # inf * 0 is NaN
    for p in (-0.1, 1.5):
        with pytest.raises(ValueError) as torch_error:
            torch.nn.functional.dropout(tx, p)
        with pytest.raises(ValueError, match="dropout probability has to be between 0 and 1, but got "
                                             + str(p)) as lucid_error:
            lucid.compile(lambda t, p=p: F.dropout(t, p))(x)
        assert str(torch_error.value) in str(lucid_error.value)


def test_lower_shows_the_random_op_fused_with_the_multiply():
    x = lucid.randn(32, 48)
    f = lucid.compile(lambda t: F.dropout(F.gelu(t), 0.1))
    with lucid.no_grad():
        lowered = f.lower(x)
        assert "random_uniform" in lowered.as_text("fused")
        kernels = lowered.kernels
        fused = lowered.program.compiled_forward.fused
    # the mask never reaches memory: drawn in the loop that multiplies gelu's parts by it
    drawing = [n for n in fused.nodes if n.op == "kernel" and "random_uniform" in n.ops]
    assert len(drawing) == 1 and len(drawing[0].outs) == 1 and drawing[0].outs[0] in fused.outputs
    ops = drawing[0].ops
    assert ops.index("random_uniform") < ops.index("ge") < ops.index("cast") and ops[-1] == "mul", kernels


def test_inplace_dropout_inside_compile_updates_a_captured_tensor():
    buf = lucid.ones(1000)

    @lucid.compile
    def f():
        F.dropout(buf, 0.5, inplace=True)
        return buf.sum()

    f()
    first = buf.numpy().copy()
    assert set(np.unique(first).tolist()) == {0.0, 2.0}
    f()
    assert set(np.unique(buf.numpy()).tolist()) <= {0.0, 2.0, 4.0} and not np.array_equal(buf.numpy(), first)


def test_channel_and_alpha_dropout_inside_compile():
    lucid.manual_seed(2)
    y = lucid.compile(lambda t: F.dropout2d(t, 0.5))(lucid.ones(8, 64, 3, 3)).numpy().reshape(8, 64, 9)
    assert ((y == 0).all(-1) | (y == 2.0).all(-1)).all()
    assert 0.4 < (y[..., 0] == 0).mean() < 0.6
    y1 = lucid.compile(lambda t: nn.Dropout1d(0.25)(t))(lucid.ones(4, 128, 5)).numpy()
    assert ((y1 == 0).all(-1) | (y1 == np.float32(1 / 0.75)).all(-1)).all()
    assert 0.15 < (y1[..., 0] == 0).mean() < 0.35
    y3 = lucid.compile(lambda t: nn.Dropout3d(0.5)(t))(lucid.ones(4, 32, 2, 2, 3)).numpy().reshape(4, 32, 12)
    assert ((y3 == 0).all(-1) | (y3 == 2.0).all(-1)).all() and 0.3 < (y3[..., 0] == 0).mean() < 0.7
    lucid.manual_seed(3)
    z = lucid.compile(lambda t: F.alpha_dropout(t, 0.2, training=True))(lucid.randn(400_000)).numpy()
    assert abs(z.mean()) < 0.01 and abs(z.std() - 1.0) < 0.01


def test_attention_and_transformer_dropout_inside_compile():
    lucid.manual_seed(0)
    layer = nn.TransformerEncoderLayer(d_model=16, nhead=2, dim_feedforward=32, dropout=0.1, batch_first=True)
    x = lucid.randn(2, 5, 16)
    f = lucid.compile(lambda t: layer(t))
    a, b = f(x).numpy(), f(x).numpy()
    assert a.shape == (2, 5, 16) and not np.array_equal(a, b)
    layer.eval()
    np.testing.assert_allclose(lucid.compile(lambda t: layer(t))(x).numpy(), layer(x).numpy(), rtol=1e-5, atol=1e-5)
    q = lucid.randn(1, 2, 6, 4)
    s = lucid.compile(lambda t: F.scaled_dot_product_attention(t, t, t, dropout_p=0.5))
    assert not np.array_equal(s(q).numpy(), s(q).numpy())


# ------------------------------------------------------------------ the samplers
def test_samplers_inside_compile():
    @lucid.compile
    def draw(x):
        return (lucid.rand_like(x), lucid.randn_like(x, dtype=lucid.float64), lucid.rand(3, 4),
                lucid.randn((2, 2)), lucid.randint(-3, 4, (50_000,)), lucid.randint_like(x, 10, dtype=lucid.int32),
                lucid.normal(2.0, 0.5, (50_000,)), lucid.bernoulli(x * 0.0 + 0.25))

    x = lucid.zeros(50_000)
    lucid.manual_seed(1)
    first = draw(x)
    u, z, r, n, k, k32, m, bern = (t.numpy() for t in first)
    assert u.dtype == np.float32 and z.dtype == np.float64 and r.shape == (3, 4) and n.shape == (2, 2)
    assert ((u >= 0) & (u < 1)).all() and abs(u.mean() - 0.5) < 0.01
    assert abs(z.mean()) < 0.03 and abs(z.std() - 1) < 0.02
    assert k.dtype == np.int64 and set(np.unique(k).tolist()) == set(range(-3, 4))
    assert k32.dtype == np.int32 and k32.min() >= 0 and k32.max() <= 9
    assert abs(m.mean() - 2.0) < 0.01 and abs(m.std() - 0.5) < 0.01
    assert bern.dtype == np.float32 and set(np.unique(bern).tolist()) == {0.0, 1.0}
    assert abs(bern.mean() - 0.25) < 0.01
    second = draw(x)
    assert all(not np.array_equal(a.numpy(), b.numpy()) for a, b in zip(first, second))
    lucid.manual_seed(1)
    assert all(np.array_equal(a.numpy(), b.numpy()) for a, b in zip(first, draw(x)))


def test_normal_of_tensors_inside_compile_passes_zero_gradients():
    mean = lucid.tensor([0.0, 10.0], requires_grad=True)
    std = lucid.tensor([1.0, 0.0], requires_grad=True)
    f = lucid.compile(lambda m, s: lucid.normal(m, s))
    y = f(mean, std)
    assert y.numpy()[1] == 10.0 and y.requires_grad
    y.sum().backward()
    np.testing.assert_array_equal(mean.grad, [0.0, 0.0])
    np.testing.assert_array_equal(std.grad, [0.0, 0.0])


def test_bernoulli_eager_matches_pytorch_rules():
    p = lucid.tensor([0.0, 1.0, 0.5, 1.0], requires_grad=True)
    y = lucid.bernoulli(p)
    assert y.dtype == lucid.float32 and y.numpy()[[0, 1, 3]].tolist() == [0.0, 1.0, 1.0]
    y.sum().backward()
    np.testing.assert_array_equal(p.grad, np.zeros(4))
    assert lucid.bernoulli(lucid.zeros(3, dtype=lucid.int64), 1.0).tolist() == [1, 1, 1]
    g1, g2 = lucid.Generator().manual_seed(5), lucid.Generator().manual_seed(5)
    half = lucid.full((1000,), 0.5)
    np.testing.assert_array_equal(lucid.bernoulli(half, generator=g1).numpy(),
                                  half.bernoulli(generator=g2).numpy())
    with pytest.raises(NotImplementedError, match="bernoulli.*int64"):
        lucid.bernoulli(lucid.zeros(2, dtype=lucid.int64))
    with pytest.raises(RuntimeError, match=r"bernoulli_ expects p to be in \[0, 1\], but got p=1.5"):
        lucid.bernoulli(lucid.zeros(2), 1.5)
    with pytest.raises(RuntimeError, match=r"p_in >= 0 && p_in <= 1"):
        lucid.bernoulli(lucid.tensor([0.5, 1.5]))
    t = lucid.zeros(2000)
    assert t.bernoulli_(0.3) is t and abs(t.numpy().mean() - 0.3) < 0.05


def test_in_place_samplers_inside_compile_refill_a_captured_tensor():
    noise = lucid.zeros(20_000)
    coin = lucid.zeros(20_000)

    @lucid.compile
    def refill():
        noise.normal_(1.0, 2.0)
        coin.bernoulli_(0.5)
        return noise.sum() + coin.sum()

    refill()
    a = noise.numpy().copy()
    assert abs(a.mean() - 1.0) < 0.1 and abs(a.std() - 2.0) < 0.1
    assert set(np.unique(coin.numpy()).tolist()) == {0.0, 1.0}
    refill()
    assert not np.array_equal(noise.numpy(), a)
    u = lucid.empty(10_000)
    lucid.compile(lambda: u.uniform_(-1.0, 3.0).sum())()
    assert u.numpy().min() >= -1.0 and u.numpy().max() < 3.0 and abs(u.numpy().mean() - 1.0) < 0.1
