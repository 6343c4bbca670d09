"""Central finite differences in float64: the independent judge of every gradient."""
from __future__ import annotations

import numpy as np

from lucid_ir.interpreter import interpret
from lucid_ir.passes import autodiff


def numeric_grads(f, arrays, eps=None):
    """d f(arrays) / d arrays[i] for every i, for scalar-valued ``f``."""
    grads = []
    for i, a in enumerate(arrays):
        if a.dtype.kind != "f":  # int and bool inputs get no gradient (zeros of their dtype)
            grads.append(np.zeros(a.shape, a.dtype))
            continue
        eps = eps or (1e-6 if a.dtype == np.float64 else 1e-2)
        g = np.zeros_like(a)
        it = np.nditer(a, flags=["multi_index"])
        for _ in it:
            idx = it.multi_index
            plus = [x.copy() for x in arrays]
            minus = [x.copy() for x in arrays]
            plus[i][idx] += eps
            minus[i][idx] -= eps
            g[idx] = (f(plus) - f(minus)) / (2 * eps)
        grads.append(g)
    return grads


def check_graph_gradients(graph, arrays, rng, rtol=1e-5, atol=1e-6, run=interpret):
    """Compare the autodiff pass (run by ``run``) with finite differences of
    ``sum(out * w)`` for a random weighting ``w`` of each output."""
    weights = [rng.standard_normal(v.shape) for v in graph.outputs]

    def scalar(xs):
        outs = interpret(graph, xs)
        return sum(float(np.sum(o * w)) for o, w in zip(outs, weights))

    bwd = autodiff.run(graph, range(len(graph.inputs)))
    env = dict(zip(graph.inputs, arrays))
    env.update(zip(graph.outputs, interpret(graph, arrays)))
    # residuals may be intermediates: evaluate the forward graph with all values exposed
    from lucid_ir.graph import Graph
    full = Graph(graph.inputs, graph.nodes, tuple(n.out for n in graph.nodes))
    env.update(zip(full.outputs, interpret(full, arrays)))
    got = run(bwd.graph, [w.astype(v.dtype) for w, v in zip(weights, graph.outputs)]
              + [env[v] for v in bwd.residuals])
    want = numeric_grads(scalar, arrays)
    for i, (g, w) in enumerate(zip(got, want)):
        assert g.shape == w.shape, (i, g.shape, w.shape)
        assert g.dtype == w.dtype, (i, g.dtype, w.dtype)
        np.testing.assert_allclose(g.astype(np.float64), w.astype(np.float64), rtol=rtol, atol=atol,
                                   err_msg=f"gradient of input {i}")
