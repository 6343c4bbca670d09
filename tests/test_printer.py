"""Golden text for the printer: the printed IR is a public, stable format."""
import lucid
import lucid.nn.functional as F
from lucid.autograd import recorded_graph
from lucid_ir.builder import GraphBuilder
from lucid_ir.graph import Graph
from lucid_ir.passes import autodiff


def linear_graph():
    b = GraphBuilder()
    x, w, bias = b.input((64, 784)), b.input((256, 784)), b.input((256,))
    y = b.emit("add", b.emit("matmul", x, w, trans_b=True), bias)
    return b.build([b.emit("maximum", y, b.constant(0.0))])


def test_forward_golden():
    assert str(linear_graph()) == """\
{ lambda ; %0:f32[64,784] %1:f32[256,784] %2:f32[256]. let
    %3:f32[64,256] = matmul[trans_b=True] %0 %1
    %4:f32[64,256] = add %3 %2
    %5:f32[] = constant[value=0.0]
    %6:f32[64,256] = maximum %4 %5
  in (%6) }"""


def test_backward_golden():
    bwd = autodiff.run(linear_graph(), [0, 1, 2])
    # inputs: the cotangent, then the residuals (relu's output, W, x); the forward's
    # constant 0 is re-emitted rather than saved
    assert str(bwd.graph) == """\
{ lambda ; %0:f32[64,256] %1:f32[64,256] %2:f32[256,784] %3:f32[64,784]. let
    %4:f32[] = constant[value=0.0]
    %5:bool[64,256] = gt %1 %4
    %6:f32[] = constant[value=0.0]
    %7:f32[64,256] = select %5 %0 %6
    %8:f32[1,256] = sum[axes=(0,),keepdims=True] %7
    %9:f32[256] = reshape %8
    %10:f32[64,784] = matmul %7 %2
    %11:f32[256,784] = matmul[trans_a=True] %7 %3
  in (%10, %11, %9) }"""


def test_printing_is_deterministic_across_builds():
    assert str(linear_graph()) == str(linear_graph())


def test_eager_calls_record_the_graph():
    x = lucid.Tensor([[1.0, 2.0]], requires_grad=True)
    w = lucid.Tensor([[3.0, 4.0]], requires_grad=True)
    out = F.relu(F.linear(x, w))
    g = recorded_graph(out)
    assert str(g) == """\
{ lambda ; %0:f32[1,2] %1:f32[1,2]. let
    %2:f32[1,1] = matmul[trans_b=True] %0 %1
    %3:f32[] = constant[value=0.0]
    %4:f32[1,1] = maximum %2 %3
  in (%4) }"""
