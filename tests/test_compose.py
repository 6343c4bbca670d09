"""lucid_ir.compose: PyTorch's shape and indexing functions as compositions of IR
primitives, through the interpreter and compiled plans, values and gradients vs torch."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from lucid.compiler import compile_graph
from lucid_ir import compose
from lucid_ir.builder import GraphBuilder
from lucid_ir.graph import Graph
from lucid_ir.interpreter import interpret
from lucid_ir.passes import autodiff

rng = np.random.default_rng(1414)


def residual_values(g, arrays, bwd):
    """The forward values (inputs or intermediates) the backward graph reads."""
    full = Graph(g.inputs, g.nodes, tuple(n.out for n in g.nodes))
    env = dict(zip(g.inputs, arrays))
    env.update(zip(full.outputs, interpret(full, arrays)))
    return [env[r] for r in bwd.residuals]

CASES = [
    ("flip", lambda b, x: compose.flip(b, x, (0, 2)), lambda x: torch.flip(x, (0, 2)), (3, 4, 5)),
    ("narrow", lambda b, x: compose.narrow(b, x, 1, -3, 2), lambda x: torch.narrow(x, 1, 1, 2), (3, 4)),
    ("roll", lambda b, x: compose.roll(b, x, -5, 1), lambda x: torch.roll(x, -5, 1), (3, 7)),
    ("roll0", lambda b, x: compose.roll(b, x, 7, 1), lambda x: torch.roll(x, 7, 1), (3, 7)),
    ("stack", lambda b, x: compose.stack(b, [x, compose.flip(b, x, (0,))], 1),
     lambda x: torch.stack([x, torch.flip(x, (0,))], 1), (3, 2)),
    ("split", lambda b, x: compose.split(b, x, [1, 0, 4], 1), lambda x: list(torch.split(x, [1, 0, 4], 1)), (2, 5)),
    ("tril", lambda b, x: compose.tril(b, x, -1), lambda x: torch.tril(x, -1), (2, 4, 5)),
    ("triu", lambda b, x: compose.triu(b, x, 2), lambda x: torch.triu(x, 2), (5, 3)),
    ("repeat", lambda b, x: compose.repeat(b, x, (2, 1, 3)), lambda x: x.repeat(2, 1, 3), (2, 3)),
]


@pytest.mark.parametrize("name,build,reference,shape", CASES, ids=[c[0] for c in CASES])
def test_composition_values_and_gradients_match_torch(name, build, reference, shape):
    x = rng.standard_normal(shape)
    b = GraphBuilder()
    v = b.input(shape, "float64")
    outs = build(b, v)
    outs = outs if isinstance(outs, list) else [outs]
    g = b.build(outs)
    t = torch.tensor(x, requires_grad=True)
    want = reference(t)
    want = want if isinstance(want, list) else [want]
    for got in (interpret(g, [x]), compile_graph(g)([x])):
        for a, w in zip(got, want):
            np.testing.assert_array_equal(a, w.detach().numpy())
    seeds = [rng.standard_normal(w.shape) for w in want]
    torch.autograd.backward(want, [torch.from_numpy(s) for s in seeds])
    bwd = autodiff.run(g, [0])
    (grad,) = compile_graph(bwd.graph)(seeds + residual_values(g, [x], bwd))
    np.testing.assert_allclose(grad, t.grad.numpy(), rtol=1e-13, atol=1e-13)


def test_index_select_and_boolean_mask_match_torch():
    x = rng.standard_normal((4, 6))
    index = np.array([5, 0, 5, 2])
    mask = rng.random((4, 6)) < 0.4
    positions = compose.mask_positions(mask)
    b = GraphBuilder()
    v, i, p = b.input(x.shape, "float64"), b.input(index.shape, "int64"), b.input(positions.shape, "int64")
    g = b.build([compose.index_select(b, v, 1, i), compose.take_flat(b, v, p)])
    t = torch.tensor(x, requires_grad=True)
    want = [torch.index_select(t, 1, torch.from_numpy(index)), t[torch.from_numpy(mask)]]
    for got in (interpret(g, [x, index, positions]), compile_graph(g)([x, index, positions])):
        for a, w in zip(got, want):
            np.testing.assert_array_equal(a, w.detach().numpy())
    seeds = [rng.standard_normal(w.shape) for w in want]
    torch.autograd.backward(want, [torch.from_numpy(s) for s in seeds])
    bwd = autodiff.run(g, [0])
    (grad,) = compile_graph(bwd.graph)(seeds + residual_values(g, [x, index, positions], bwd))
    np.testing.assert_allclose(grad, t.grad.numpy(), rtol=1e-13, atol=1e-13)


def test_composition_errors():
    b = GraphBuilder()
    x = b.input((3, 4))
    with pytest.raises(ValueError, match=r"narrow: start 2 and length 3 do not fit axis 0 of \(3, 4\)"):
        compose.narrow(b, x, 0, 2, 3)
    with pytest.raises(ValueError, match=r"split: sizes \[1, 1\] do not add up to axis 1 of \(3, 4\)"):
        compose.split(b, x, [1, 1], 1)
    with pytest.raises(ValueError, match=r"repeat: \(2,\) must give one count"):
        compose.repeat(b, x, (2,))
    with pytest.raises(ValueError, match="tril: needs rank >= 2"):
        compose.tril(b, b.input((3,)))
