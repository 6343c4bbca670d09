"""``lucid.einsum`` against ``torch.einsum``: a list of hand-picked equations and a few
hundred random ones (diagonals, ellipses, broadcast size-1 subscripts, empty dims,
implicit outputs, 1 to 4 operands), values and gradients in float64; the call forms,
integer operands, compiled functions, and PyTorch's errors."""
from __future__ import annotations

import numpy as np
import pytest
import torch

import lucid

EQUATIONS = [
    ("ij,jk->ik", [(2, 3), (3, 4)]), ("ij,jk", [(2, 3), (3, 4)]), ("bij,bjk->bik", [(2, 3, 4), (2, 4, 5)]),
    ("ii->i", [(3, 3)]), ("ii", [(4, 4)]), ("iij->ij", [(3, 3, 2)]), ("iii->i", [(3, 3, 3)]),
    ("i,i", [(5,), (5,)]), ("i,j->ij", [(3,), (4,)]), ("...ij,...jk", [(5, 2, 3), (3, 4)]),
    ("...ij,...jk", [(5, 1, 2, 3), (7, 3, 4)]), ("...,...", [(5,), (2, 1)]), ("i...->...", [(5, 2, 3)]),
    ("...i->i...", [(5, 2, 3)]), ("ij->ji", [(5, 2)]), ("ba", [(5, 2)]), ("bA", [(5, 2)]),
    ("ij,kl", [(5, 2), (3, 1)]), ("i,i", [(3,), (1,)]), ("ij,ij->ij", [(3, 1), (1, 4)]), ("i...->i", [(5, 2, 3)]),
    ("ij->...", [(5, 2)]), ("", [()]), ("->", [()]), ("i->", [(0,)]), ("ij,jk->ik", [(2, 0), (0, 3)]),
    ("ij,jk,kl->il", [(2, 3), (3, 4), (4, 5)]), ("abc,cd,dbe->ae", [(2, 3, 4), (4, 5), (5, 3, 6)]),
    ("bhqd,bhkd->bhqk", [(2, 3, 4, 5), (2, 3, 6, 5)]), ("ij,ij->", [(3, 4), (3, 4)]),
    ("i,i,i->i", [(3,), (3,), (3,)]), ("ijk,ikl->ijl", [(1, 2, 3), (4, 3, 5)]), ("ij,ji->", [(3, 4), (4, 3)]),
    ("ii,i->i", [(3, 3), (3,)]), ("ab,ab,ab->", [(2, 3), (2, 1), (1, 3)]), ("i,j,k->ijk", [(2,), (3,), (4,)]),
    ("ij,k->", [(2, 3), (4,)]), ("i,jk->ijk", [(0,), (2, 3)]), ("ij,jk->ik", [(0, 3), (3, 2)]),
    ("...ii->...i", [(2, 3, 3)]), ("a...b,b...c->a...c", [(2, 3, 4), (4, 3, 5)]),
    ("xyz,zyx->", [(2, 3, 4), (4, 3, 2)]), ("i,i->", [(1,), (4,)]), ("ij,j->i", [(3, 1), (4,)]),
    ("ij,jj->i", [(3, 2), (2, 2)]), (" i j , j k -> i k ", [(2, 3), (3, 4)]), ("ij,->ij", [(2, 3), ()]),
    ("i,i->i", [(1,), (1,)]), ("ab,cd,ef,fe->", [(2, 1), (1, 3), (2, 4), (4, 2)]),
    ("iijj->ij", [(3, 3, 2, 2)]), ("ijij->ji", [(3, 2, 3, 2)]), ("ijji", [(2, 3, 3, 2)]),
    ("iiij->ij", [(2, 2, 2, 4)]), ("ii...,jj...->ij...", [(3, 3, 2), (4, 4, 1)]), ("ii->i", [(0, 0)]),
]


def _check(equation, shapes, seed=0, transpose=False):
    rng = np.random.default_rng(seed)
    arrays = [np.asarray(rng.standard_normal(s)) for s in shapes]
    if transpose:  # the same values reached through transposed (non-contiguous) views
        arrays = [a.T.copy().T for a in arrays]
    ts = [torch.tensor(a, requires_grad=True) for a in arrays]
    want = torch.einsum(equation, *ts)
    w = rng.standard_normal(tuple(want.shape))
    (want * torch.tensor(w)).sum().backward()
    xs = [lucid.from_numpy(a).requires_grad_() for a in arrays]
    got = lucid.einsum(equation, *xs)
    assert got.shape == tuple(want.shape) and got.dtype == lucid.float64, equation
    np.testing.assert_allclose(got.numpy(), want.detach().numpy(), rtol=1e-10, atol=1e-12, err_msg=equation)
    (got * lucid.tensor(w)).sum().backward()
    for k, (x, t) in enumerate(zip(xs, ts)):
        np.testing.assert_allclose(np.asarray(x.grad), t.grad.numpy(), rtol=1e-10, atol=1e-12,
                                   err_msg=f"{equation}: gradient of operand {k}")


@pytest.mark.parametrize("equation,shapes", EQUATIONS, ids=[e or "scalar" for e, _ in EQUATIONS])
def test_equations_match_torch_with_gradients(equation, shapes):
    _check(equation, shapes)
    _check(equation, shapes, seed=1, transpose=True)


def _random_case(rng):
    """A random valid equation and shapes (diagonals, ellipses, size-1 broadcasts, 0 dims)."""
    letters = "abcdeXY"
    size = {c: int(rng.choice([1, 2, 3, 5, 0] if rng.random() < 0.1 else [1, 2, 3, 5])) for c in letters}
    ellipsis = [int(d) for d in rng.choice([1, 2, 3], int(rng.integers(0, 3)))]
    terms, shapes = [], []
    for _ in range(int(rng.integers(1, 5))):
        term = list(rng.choice(list(letters), int(rng.integers(0, 4))))
        shape = [size[c] if rng.random() < 0.85 else 1 for c in term]
        for c in set(term):  # a repeated subscript: the same size on every axis it names
            shape = [shape[term.index(c)] if t == c else s for t, s in zip(term, shape)]
        if ellipsis and rng.random() < 0.6:
            dims = ellipsis[len(ellipsis) - int(rng.integers(0, len(ellipsis) + 1)):]
            dims = [d if rng.random() < 0.8 else 1 for d in dims]
            at = int(rng.integers(0, len(term) + 1))
            term = term[:at] + ["..."] + term[at:]
            shape = shape[:at] + dims + shape[at:]
        terms.append("".join(term))
        shapes.append(tuple(shape))
    equation = ",".join(terms)
    if rng.random() < 0.6:
        used = sorted({c for t in terms for c in t if c != "."})
        out = list(rng.permutation(used)[:int(rng.integers(0, len(used) + 1))]) if used else []
        if any("..." in t for t in terms) and rng.random() < 0.7:
            out.insert(int(rng.integers(0, len(out) + 1)), "...")
        equation += "->" + "".join(out)
    return equation, shapes


@pytest.mark.parametrize("seed", range(300))
def test_random_equations_match_torch_with_gradients(seed):
    equation, shapes = _random_case(np.random.default_rng(seed))
    try:
        torch.einsum(equation, *[torch.zeros(s, dtype=torch.float64) for s in shapes])
    except RuntimeError:  # sizes that do not broadcast: lucid refuses them too
        with pytest.raises(RuntimeError, match="einsum"):
            lucid.einsum(equation, *[lucid.zeros(s, dtype=lucid.float64) for s in shapes])
        return
    _check(equation, shapes, seed)


def test_call_forms():
    a, b = lucid.arange(6.0).reshape(2, 3), lucid.arange(12.0).reshape(3, 4)
    want = (a @ b).tolist()
    assert lucid.einsum("ij,jk", [a, b]).tolist() == want
    assert lucid.einsum("ij,jk", (a, b)).tolist() == want
    assert lucid.einsum(a, [0, 1], b, [1, 2]).tolist() == want
    assert lucid.einsum(a, [0, 1], b, [1, 2], [2, 0]).tolist() == lucid.einsum("ij,jk->ki", a, b).tolist()
    assert lucid.einsum(a, [Ellipsis, 30], [30, Ellipsis]).tolist() == a.T.tolist()
    assert lucid.einsum("ij", np.ones((2, 2))).tolist() == [[1.0, 1.0], [1.0, 1.0]]


def test_permutations_and_diagonals_of_one_operand_are_views_as_torch():
    for eq, total in (("ij", 45.0), ("ij->ji", 45.0), ("ii->i", 21.0), ("ij,->ij", 9.0)):
        x = lucid.ones(3, 3)
        ops = (x, lucid.tensor(1.0)) if "," in eq else (x,)
        lucid.einsum(eq, *ops).fill_(5.0)
        assert x.sum().item() == total, eq


@pytest.mark.parametrize("dtype", ["int64", "int32"])
def test_integer_operands_keep_their_dtype(dtype):
    rng = np.random.default_rng(0)
    a, b = rng.integers(-5, 6, (3, 4)).astype(dtype), rng.integers(-5, 6, (4, 2)).astype(dtype)
    for eq in ("ij,jk->ik", "ij->", "ii->i", "ij,jk->kji"):
        ops = (a[:, :3],) if eq == "ii->i" else (a,) if eq == "ij->" else (a, b)
        got = lucid.einsum(eq, *[lucid.tensor(o) for o in ops])
        want = torch.einsum(eq, *[torch.tensor(o) for o in ops])
        assert str(got.dtype) == str(want.dtype).replace("torch.", "")
        np.testing.assert_array_equal(got.numpy(), want.numpy())


def test_compiled_einsum_matches_eager_with_gradients():
    rng = np.random.default_rng(3)
    q, k = rng.standard_normal((2, 3, 4, 5)), rng.standard_normal((2, 3, 6, 5))

    def attention_scores(q, k):
        s = lucid.einsum("bhqd,bhkd->bhqk", q, k)
        return (s * s).sum(), s

    xs = [lucid.tensor(q, requires_grad=True), lucid.tensor(k, requires_grad=True)]
    loss, s = lucid.compile(attention_scores)(*xs)
    loss.backward()
    ts = [torch.tensor(q, requires_grad=True), torch.tensor(k, requires_grad=True)]
    ts_s = torch.einsum("bhqd,bhkd->bhqk", *ts)
    (ts_s * ts_s).sum().backward()
    np.testing.assert_allclose(s.numpy(), ts_s.detach().numpy(), rtol=1e-12)
    for x, t in zip(xs, ts):
        np.testing.assert_allclose(np.asarray(x.grad), t.grad.numpy(), rtol=1e-10)


def test_one_plan_per_equation_and_shapes():
    import importlib
    plans = importlib.import_module("lucid.einsum")._CHAINS
    a, b = lucid.ones(2, 3), lucid.ones(3, 4)
    lucid.einsum("ij,jk->ik", a, b)
    before = len(plans)
    for _ in range(3):
        lucid.einsum("ij,jk->ik", a * 2.0, b)
    assert len(plans) == before


@pytest.mark.parametrize("call,error,words", [
    (lambda m: m.einsum("ij,jk", m.ones(2, 3)), RuntimeError, "fewer operands"),
    (lambda m: m.einsum("ij,jk->ik", m.ones(2, 3), m.ones(2, 4)), RuntimeError, "subscript j has size 2"),
    (lambda m: m.einsum("ij,jk->il", m.ones(2, 3), m.ones(3, 4)), RuntimeError, "output subscript l"),
    (lambda m: m.einsum("ij,jk->ii", m.ones(2, 3), m.ones(3, 4)), RuntimeError, "more than once"),
    (lambda m: m.einsum("ijk", m.ones(2, 3)), RuntimeError, "number of subscripts"),
    (lambda m: m.einsum("i$", m.ones(2, 3)), RuntimeError, "subscripts must be in"),
    (lambda m: m.einsum("ii->i", m.ones(3, 4)), RuntimeError, "repeated for operand 0"),
    (lambda m: m.einsum("ij,jk", m.ones(2, 3), m.ones(3, 4, dtype=m.float64)), RuntimeError, "dtype"),
    (lambda m: m.einsum("ij->.", m.ones(2, 3)), RuntimeError, "ellipsis"),
    (lambda m: m.einsum("...i...j", m.ones(2, 3)), RuntimeError, "ellipsis"),
    (lambda m: m.einsum("ij,jk->ik", m.ones(2, 3), m.ones(3)), RuntimeError, "number of subscripts"),
    (lambda m: m.einsum("...ij", m.ones(3)), RuntimeError, "operand 0"),
    (lambda m: m.einsum("ij,j", m.ones(3, 3, dtype=m.bool), m.ones(3, dtype=m.bool)), NotImplementedError, "bool"),
    (lambda m: m.einsum(1, m.ones(2)), TypeError, "equation"),
    (lambda m: m.einsum("ij->ji"), ValueError, "at least one operand"),
])
def test_bad_input_raises_torchs_error_type(call, error, words):
    with pytest.raises(error):
        call(torch)
    with pytest.raises(error, match=words):
        call(lucid)
