"""``lucid.multinomial`` / ``Tensor.multinomial`` and ``lucid.randperm``: the
distributions checked statistically (seeded, so each check is deterministic; the
bounds are several standard deviations wide), seeding and generators, shapes and
dtypes, and PyTorch's errors. The streams are not PyTorch's, so nothing is compared
bitwise with torch."""
from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch

import lucid


def _chi2_ok(counts, expected) -> bool:
    """Pearson's statistic within 6 standard deviations of its mean (df = cells - 1)."""
    counts, expected = np.asarray(counts, float), np.asarray(expected, float)
    stat = float(((counts - expected) ** 2 / expected).sum())
    df = len(counts) - 1
    return stat < df + 6 * np.sqrt(2 * df)


def test_with_replacement_frequencies_follow_the_weights():
    w = np.array([1.0, 2.0, 3.0, 4.0, 0.0, 10.0])
    n = 200_000
    draws = lucid.multinomial(lucid.tensor(w), n, replacement=True, generator=lucid.Generator().manual_seed(0))
    assert draws.shape == (n,) and draws.dtype == lucid.int64
    counts = np.bincount(draws.numpy(), minlength=len(w))
    assert counts[4] == 0                                  # zero weight: never drawn
    nz = w > 0
    assert _chi2_ok(counts[nz], n * w[nz] / w.sum())


def test_without_replacement_first_two_draws_follow_the_sequential_law():
    w = np.array([1.0, 2.0, 3.0, 4.0])
    p = w / w.sum()
    rows = 40_000
    draws = lucid.tensor(np.tile(w, (rows, 1))).multinomial(2, generator=lucid.Generator().manual_seed(1))
    d = draws.numpy()
    assert d.shape == (rows, 2) and (d[:, 0] != d[:, 1]).all()
    pairs = [(i, j) for i, j in itertools.product(range(4), range(4)) if i != j]
    counts = [int(((d[:, 0] == i) & (d[:, 1] == j)).sum()) for i, j in pairs]
    expected = [rows * p[i] * p[j] / (1 - p[i]) for i, j in pairs]   # P(first i) P(then j | i gone)
    assert _chi2_ok(counts, expected)


def test_without_replacement_draws_distinct_and_zero_weights_last():
    w = lucid.tensor([[0.0, 5.0, 0.0, 1.0, 0.0], [1.0, 1.0, 1.0, 1.0, 1.0]])
    g = lucid.Generator().manual_seed(2)
    for _ in range(20):
        d = lucid.multinomial(w, 5, generator=g).numpy()
        assert sorted(d[0]) == sorted(d[1]) == [0, 1, 2, 3, 4]
        assert set(d[0][:2]) == {1, 3} and set(d[0][2:]) == {0, 2, 4}
    zero_orders = {tuple(lucid.multinomial(w, 5, generator=g).numpy()[0][2:]) for _ in range(200)}
    assert len(zero_orders) == 6                           # the zero weights in random order


def test_rows_are_drawn_independently_from_their_own_weights():
    w = lucid.tensor([[1.0, 0.0, 0.0], [0.0, 0.0, 3.0], [0.0, 2.0, 0.0]])
    d = lucid.multinomial(w, 50, replacement=True, generator=lucid.Generator().manual_seed(3))
    assert d.shape == (3, 50)
    assert (d.numpy() == np.array([[0], [2], [1]])).all()
    assert lucid.multinomial(lucid.ones(0, 3), 2).shape == (0, 2)
    assert lucid.multinomial(lucid.ones(3, dtype=lucid.float64), 3).dtype == lucid.int64


def test_seeding_reproduces_and_generators_are_independent():
    w = lucid.tensor([0.2, 0.3, 0.5])
    lucid.manual_seed(7)
    a, p = lucid.multinomial(w, 10, True), lucid.randperm(10)
    lucid.manual_seed(7)
    assert lucid.multinomial(w, 10, True).tolist() == a.tolist() and lucid.randperm(10).tolist() == p.tolist()
    g1, g2 = lucid.Generator().manual_seed(5), lucid.Generator().manual_seed(5)
    lucid.manual_seed(0)
    first = lucid.randperm(50, generator=g1).tolist()
    lucid.randperm(50)                                     # the default generator moves, g2 does not
    assert lucid.randperm(50, generator=g2).tolist() == first
    state = g1.get_state()
    x = w.multinomial(3, generator=g1).tolist()
    g1.set_state(state)
    assert w.multinomial(3, generator=g1).tolist() == x


def test_randperm_is_a_uniform_permutation():
    g = lucid.Generator().manual_seed(4)
    perms = [tuple(lucid.randperm(4, generator=g).tolist()) for _ in range(24_000)]
    counts = [perms.count(p) for p in itertools.permutations(range(4))]
    assert _chi2_ok(counts, [1000] * 24)
    big = lucid.randperm(1000, generator=g)
    assert big.dtype == lucid.int64 and sorted(big.tolist()) == list(range(1000))
    assert big.tolist() != list(range(1000))


def test_randperm_dtypes_and_shapes():
    assert lucid.randperm(0).shape == (0,)
    assert lucid.randperm(5, dtype=lucid.float32).dtype == lucid.float32
    assert sorted(lucid.randperm(5, dtype=lucid.int32).tolist()) == [0, 1, 2, 3, 4]
    assert lucid.randperm(5, dtype=lucid.float64, requires_grad=True).requires_grad
    assert sorted(lucid.randperm(lucid.tensor(3)).tolist()) == [0, 1, 2]


def test_inside_compile_they_raise_tracing_error():
    with pytest.raises(lucid.TracingError, match="multinomial"):
        lucid.compile(lambda w: lucid.multinomial(w, 1))(lucid.ones(3))
    with pytest.raises(lucid.TracingError, match="randperm"):
        lucid.compile(lambda x: x[lucid.randperm(3)])(lucid.ones(3))


@pytest.mark.parametrize("call,error,words", [
    (lambda m: m.multinomial(m.tensor([1.0, 2.0, 3.0]), 4), RuntimeError, "without replacement"),
    (lambda m: m.multinomial(m.tensor([1.0, 2.0]), 0), RuntimeError, "n_sample <= 0"),
    (lambda m: m.multinomial(m.tensor([1.0, 2.0]), -1, True), RuntimeError, "n_sample <= 0"),
    (lambda m: m.multinomial(m.tensor([1.0, 2.0]), 2.0), TypeError, "num_samples"),
    (lambda m: m.multinomial(m.tensor([0.0, 0.0]), 1), RuntimeError, "sum of probabilities"),
    (lambda m: m.multinomial(m.tensor([[1.0, 0.0], [0.0, 0.0]]), 1), RuntimeError, "sum of probabilities"),
    (lambda m: m.multinomial(m.tensor([-1.0, 1.0]), 1), RuntimeError, "element < 0"),
    (lambda m: m.multinomial(m.tensor([float("inf"), 1.0]), 1), RuntimeError, "inf"),
    (lambda m: m.multinomial(m.tensor([float("nan"), 1.0]), 1), RuntimeError, "nan"),
    (lambda m: m.multinomial(m.tensor([1, 2]), 1), RuntimeError, "floating"),
    (lambda m: m.multinomial(m.tensor(1.0), 1), RuntimeError, "1 or 2 dim"),
    (lambda m: m.multinomial(m.ones(2, 3, 4), 1), RuntimeError, "1 or 2 dim"),
    (lambda m: m.multinomial(m.ones(2, 0), 2), RuntimeError, "without replacement"),
    (lambda m: m.randperm(-1), RuntimeError, "negative dimension"),
    (lambda m: m.randperm(5.0), TypeError, "randperm"),
    (lambda m: m.randperm(5, dtype=m.bool), NotImplementedError, "randperm"),
    (lambda m: m.randperm(5, requires_grad=True), RuntimeError, "floating"),
])
def test_bad_input_raises_torchs_error_type(call, error, words):
    with pytest.raises(error):
        call(torch)
    with pytest.raises(error, match=words):
        call(lucid)
