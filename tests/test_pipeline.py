"""Every path runs the one pass pipeline (``lucid_ir.pipeline.run``): eager calls, the
eager backward, ``lucid.compile`` (its trace's backward included) and optimiser updates;
no module outside it runs a pass itself."""
from __future__ import annotations

import ast
import pathlib

import numpy as np
import pytest

import lucid
import lucid.nn.functional as F
from lucid_ir import pipeline
from lucid_ir.builder import GraphBuilder
from lucid_ir.verify import VerificationError

ROOT = pathlib.Path(__file__).resolve().parent.parent
PASSES = {"autodiff", "simplify", "fuse", "fuse_rows", "dce"}


def _pass_calls(path: pathlib.Path) -> list[str]:
    """``X.run(...)`` calls of a pass module X, and ``run`` imported from one."""
    tree = ast.parse(path.read_text())
    found = []
    for node in ast.walk(tree):
        if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "run"
                and isinstance(node.func.value, ast.Name) and node.func.value.id in PASSES):
            found.append(f"{path.relative_to(ROOT)}:{node.lineno} {node.func.value.id}.run")
        if isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[-1] in PASSES:
            if any(a.name == "run" for a in node.names):
                found.append(f"{path.relative_to(ROOT)}:{node.lineno} imports run")
    return found


def test_no_module_runs_a_pass_but_the_pipeline():
    found = []
    for package in ("lucid", "lucid_codegen", "lucid_ir"):
        for path in sorted((ROOT / package).rglob("*.py")):
            inside = path.parent.name == "passes" or path.name == "pipeline.py"
            if not inside:
                found += _pass_calls(path)
    assert not found, "run passes through lucid_ir.pipeline.run: " + ", ".join(found)


@pytest.fixture
def calls(monkeypatch):
    seen = []
    real = pipeline.run

    def spy(graph, options=pipeline.COMPILE, name="graph"):
        seen.append((name, options))
        return real(graph, options, name)

    monkeypatch.setattr(pipeline, "run", spy)
    return seen


def _kinds(seen) -> set[str]:
    kinds = set()
    for _, o in seen:
        if o.wrt is not None:
            kinds.add("differentiate")
        elif o == pipeline.EAGER:
            kinds.add("eager")
        elif o == pipeline.UPDATE:
            kinds.add("update")
        elif o.simplify and o.fuse:
            kinds.add("compile")
    return kinds


def test_eager_call_and_backward_run_the_pipeline(calls):
    rng = np.random.default_rng(0)
    x = lucid.tensor(rng.standard_normal((23, 41)).astype(np.float32), requires_grad=True)
    y = (F.gelu(x) * 3.0).tanh().sum()
    assert _kinds(calls) >= {"eager"}
    y.backward()
    assert {"differentiate", "compile"} <= _kinds(calls)
    assert x.grad is not None


def test_compile_runs_the_pipeline_forward_and_backward(calls):
    rng = np.random.default_rng(1)
    w = lucid.tensor(rng.standard_normal((29, 31)).astype(np.float32), requires_grad=True)

    @lucid.compile
    def step(x):
        loss = (x @ w).relu().mean()
        loss.backward()
        return loss

    step(lucid.tensor(rng.standard_normal((19, 29)).astype(np.float32)))
    names = {name for name, _ in calls}
    assert {"differentiate", "compile"} <= _kinds(calls), calls
    assert "backward" in names


def test_optimizer_update_runs_the_pipeline(calls):
    p = lucid.nn.Parameter(lucid.tensor(np.ones((17, 43), np.float32)))
    p.grad = lucid.tensor(np.full((17, 43), 0.5, np.float32))
    lucid.optim.SGD([p], lr=0.1, momentum=0.9).step()
    assert "update" in _kinds(calls)
    np.testing.assert_allclose(p.detach().numpy(), 0.95)


def test_options_choose_the_stages():
    b = GraphBuilder()
    x = b.input((4, 3))
    one = b.constant(1.0)
    g = b.build([b.emit("exp", b.emit("mul", x, one))])
    compiled = pipeline.run(g, pipeline.COMPILE)
    assert [n.op for n in compiled.simplified.nodes] == ["exp"]
    assert [n.op for n in compiled.fused.nodes] == ["kernel"]
    eager = pipeline.run(g, pipeline.EAGER)
    assert eager.simplified is g and set(eager.fused.nodes[0].ops) == {"mul", "constant", "exp"}
    update = pipeline.run(g, pipeline.UPDATE)
    assert update.graph is g
    unfused = pipeline.run(g, pipeline.Options(fusion=False))
    assert [n.kind for n in unfused.fused.nodes] == ["elementwise"]
    grad = pipeline.run(g, pipeline.differentiate([0]))
    assert grad.backward.wrt == (0,) and grad.graph is grad.backward.graph
    both = pipeline.run(g, pipeline.Options(wrt=(0,)))
    assert both.traced is g and both.backward is not None
    assert [n.op for n in both.fused.nodes] == ["kernel"]


def test_verify_catches_a_bad_graph_when_asked(monkeypatch):
    from lucid_ir.graph import Graph, Node, Value
    from lucid_ir.types import TensorType
    x = Value(TensorType((3,), "float32"))
    wrong = Node("exp", (x,), (), Value(TensorType((4,), "float32")))
    bad = Graph((x,), (wrong,), (wrong.out,))
    with pytest.raises(VerificationError):
        pipeline.run(bad, pipeline.UPDATE)
    monkeypatch.delenv("LUCID_DEBUG", raising=False)
    pipeline.run(bad, pipeline.Options(simplify=False, fuse=False, verify=False))  # not checked
