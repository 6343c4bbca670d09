"""Every primitive's gradient rule against central finite differences (float64),
on random shapes with broadcasting."""
import numpy as np
import pytest

from gradcheck import check_graph_gradients
from lucid_ir.builder import GraphBuilder

rng = np.random.default_rng(1234)


def positive(shape):
    return rng.uniform(0.5, 2.0, shape)


def normal(shape):
    return rng.standard_normal(shape)


def apart(shape):
    """Values far from each other (max/maximum/comparisons have kinks at ties)."""
    n = int(np.prod(shape))
    return (rng.permutation(n).reshape(shape) * 0.37 - n * 0.15).astype(np.float64)


CASES = [
    # (op, attrs, input makers with shapes)
    ("neg", {}, [(normal, (3, 4))]),
    ("exp", {}, [(normal, (5,))]),
    ("log", {}, [(positive, (2, 3))]),
    ("sqrt", {}, [(positive, (4, 3))]),
    ("tanh", {}, [(normal, (7,))]),
    ("sigmoid", {}, [(normal, (3, 5))]),
    ("cast", {"dtype": "float64"}, [(normal, (2, 2))]),
    ("log2", {}, [(positive, (2, 3))]),
    ("log1p", {}, [(positive, (4,))]),
    ("expm1", {}, [(normal, (3, 2))]),
    ("rsqrt", {}, [(positive, (5,))]),
    ("sin", {}, [(normal, (3, 4))]),
    ("cos", {}, [(normal, (3, 4))]),
    ("erfc", {}, [(normal, (3, 4))]),
    ("erf", {}, [(normal, (6,))]),
    ("floor", {}, [(apart, (3, 4))]),
    ("round", {}, [(apart, (3, 4))]),
    ("pow", {}, [(positive, (3, 4)), (normal, (4,))]),
    ("pow", {}, [(positive, (2, 1)), (normal, (1, 3))]),
    ("add", {}, [(normal, (3, 4)), (normal, (4,))]),
    ("add", {}, [(normal, (3, 1)), (normal, (1, 5))]),
    ("sub", {}, [(normal, (2, 3, 4)), (normal, (3, 1))]),
    ("mul", {}, [(normal, (3, 4)), (normal, ())]),
    ("mul", {}, [(normal, (1,)), (normal, (2, 3))]),
    ("div", {}, [(normal, (3, 4)), (positive, (3, 4))]),
    ("div", {}, [(normal, (5,)), (positive, (2, 1))]),
    ("maximum", {}, [(apart, (3, 4)), (apart, (4,))]),
    ("minimum", {}, [(apart, (3, 4)), (apart, (4,))]),
    ("abs", {}, [(apart, (3, 4))]),
    ("remainder", {}, [(normal, (3, 4)), (positive, (4,))]),
    ("select", {}, [(lambda s: rng.random(s) > 0.5, (3, 4)), (normal, (3, 4)), (normal, (4,))]),
    ("sum", {"axes": (1,)}, [(normal, (3, 4, 2))]),
    ("sum", {"axes": None, "keepdims": True}, [(normal, (3, 4))]),
    ("mean", {"axes": (0, 2), "keepdims": True}, [(normal, (3, 4, 2))]),
    ("max", {"axes": (1,)}, [(apart, (3, 5))]),
    ("min", {"axes": (0,)}, [(apart, (3, 5))]),
    ("reshape", {"shape": (6, -1)}, [(normal, (3, 4))]),
    ("transpose", {"perm": (2, 0, 1)}, [(normal, (2, 3, 4))]),
    ("broadcast_to", {"shape": (4, 3, 5)}, [(normal, (3, 1))]),
    ("matmul", {}, [(normal, (3, 4)), (normal, (4, 5))]),
    ("matmul", {"trans_a": True}, [(normal, (4, 3)), (normal, (4, 5))]),
    ("matmul", {"trans_b": True}, [(normal, (3, 4)), (normal, (5, 4))]),
    ("matmul", {"trans_a": True, "trans_b": True}, [(normal, (4, 3)), (normal, (5, 4))]),
    ("matmul", {}, [(normal, (1, 7)), (normal, (7, 1))]),
]


@pytest.mark.parametrize("op,attrs,inputs", CASES, ids=[f"{c[0]}-{i}" for i, c in enumerate(CASES)])
def test_gradient_rule(op, attrs, inputs):
    b = GraphBuilder()
    arrays = [make(shape) for make, shape in inputs]
    arrays = [a if a.dtype == bool else a.astype(np.float64 if op != "cast" else np.float32) for a in arrays]
    values = [b.input(a.shape, a.dtype.name) for a in arrays]
    out = b.emit(op, *values, **attrs)
    if op == "cast":  # differentiate a float64 function of a float32 input: relax tolerance
        check_graph_gradients(b.build([out]), arrays, rng, rtol=1e-3, atol=1e-3)
    else:
        check_graph_gradients(b.build([out]), arrays, rng)


def test_fan_out_accumulates():
    b = GraphBuilder()
    x = b.input((3,), "float64")
    y = b.emit("mul", b.emit("exp", x), b.emit("tanh", x))  # x used twice
    z = b.emit("add", y, x)                                  # and a third time
    check_graph_gradients(b.build([z]), [normal((3,))], rng)


def test_several_outputs_and_unused_input():
    b = GraphBuilder()
    x, y, unused = b.input((2, 3), "float64"), b.input((3,), "float64"), b.input((4,), "float64")
    out1 = b.emit("sum", b.emit("mul", x, y), axes=(1,))
    out2 = b.emit("exp", y)
    check_graph_gradients(b.build([out1, out2]), [normal((2, 3)), normal((3,)), normal((4,))], rng)


def test_comparisons_have_no_gradient():
    from lucid_ir.passes import autodiff
    b = GraphBuilder()
    x, y = b.input((3,), "float64"), b.input((3,), "float64")
    bwd = autodiff.run(b.build([b.emit("gt", x, y)]), [0, 1])
    assert [n.op for n in bwd.graph.nodes] == ["constant", "constant"]  # zeros for both


def test_inputs_not_requested_get_no_gradient_nodes():
    from lucid_ir.passes import autodiff
    b = GraphBuilder()
    x, w = b.input((4, 3), "float64"), b.input((2, 3), "float64")
    fwd = b.build([b.emit("matmul", x, w, trans_b=True)])
    bwd = autodiff.run(fwd, [1])  # only the weight: one matmul, dW = gᵀ·x
    assert [n.op for n in bwd.graph.nodes] == ["matmul"]
    assert bwd.graph.nodes[0].attr_dict == {"trans_a": True, "trans_b": False}


def test_backward_cache_tells_negative_zero_constants_apart():
    """Eager backward graphs are cached by the forward's structure: constants 0.0 and
    -0.0 are different graphs (the gradient of x * c is c, sign of zero included)."""
    import lucid
    for c in (0.0, -0.0, 0.0):
        x = lucid.Tensor([1.0, 2.0], requires_grad=True)
        y = x * c  # the eager op cache tells them apart too
        assert np.signbit(y.numpy()).tolist() == [np.signbit(c)] * 2
        y.sum().backward()
        assert np.signbit(x.grad).tolist() == [np.signbit(c)] * 2


def test_no_gradient_flows_through_int_or_bool_values():
    """x * cast(x > 0) has gradient (x > 0); a round trip through int32 has none; the
    int and bool inputs themselves get zeros of their own dtype."""
    b = GraphBuilder()
    x = b.input((6,), "float64")
    n = b.input((6,), "int32")
    m = b.input((6,), "bool")
    mask = b.emit("cast", b.emit("gt", x, b.constant(0.0, (), "float64")), dtype="float64")
    through_int = b.emit("cast", b.emit("add", b.emit("cast", x, dtype="int32"), n), dtype="float64")
    picked = b.emit("select", m, x, b.emit("neg", x))
    out = b.emit("add", b.emit("add", b.emit("mul", x, mask), through_int), picked)
    arrays = [np.array([-2.5, -1.2, 0.7, 1.9, 3.3, -0.4]), np.arange(6, dtype=np.int32),
              np.array([True, False, True, True, False, False])]
    check_graph_gradients(b.build([out]), arrays, rng)
