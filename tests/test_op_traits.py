"""Op traits (``lucid_ir.ops``): each trait means what it says (checked against the
reference semantics), every layer has one entry per op, and the passes ask traits
instead of comparing op names."""
from __future__ import annotations

import pathlib

import numpy as np
import pytest

from lucid_ir import opnames
from lucid_ir.builder import GraphBuilder
from lucid_ir.interpreter import interpret
from lucid_ir.ops import all_ops, get_op

from name_tests import name_tests

ROOT = pathlib.Path(__file__).resolve().parent.parent
GROUPS = {"elementwise", "reduction", "scan", "movement", "indexing", "matmul", "source",
          "collective", "attention"}
RNG = np.random.default_rng(7)


def _sample(shape, dtype):
    if dtype == "bool":
        return RNG.random(shape) < 0.5
    if dtype.startswith("int"):
        return RNG.integers(-9, 10, shape).astype(dtype)
    return (RNG.standard_normal(shape) * 3).astype(dtype)


def _accepted(d) -> list[str]:
    return [t for t in ("float32", "float64", "int32", "int64", "bool") if t in d.accepts]


def test_every_op_has_a_known_group_and_elementwise_kinds():
    for d in all_ops():
        assert d.group in GROUPS, d.name
        if d.elementwise:
            assert d.kind in ("unary", "binary", "comparison", "select", "random"), d.name
        assert not d.random or d.elementwise, d.name
        assert d.fusible == (d.elementwise and not d.random), d.name
        assert not d.row_reduction or d.group == "reduction", d.name
        assert not d.cost or d.elementwise, d.name


def test_opnames_are_views_of_the_traits():
    assert set(opnames.ALL_OPS) == {d.name for d in all_ops()}
    assert set(opnames.RANDOM) == {d.name for d in all_ops() if d.random}
    for name in opnames.ALL_OPS:
        assert opnames.group_of(name) == get_op(name).group
    with pytest.raises(KeyError):
        opnames.group_of("nope")


def test_one_lowering_per_elementwise_op():
    lowering = pytest.importorskip("lucid_codegen.kernels.lowering")
    elementwise = {d.name for d in all_ops() if d.elementwise}
    assert set(lowering.LOWERINGS) == elementwise


@pytest.mark.parametrize("name", [d.name for d in all_ops() if d.units != (None, None)])
def test_units_are_identities(name):
    d = get_op(name)
    left, right = d.units
    for dtype in _accepted(d):
        b = GraphBuilder()
        x = b.input((3, 5), dtype)
        outs = []
        if right is not None:
            outs.append(b.emit(name, x, b.constant(right, (), dtype)))
        if left is not None:
            outs.append(b.emit(name, b.constant(left, (), dtype), x))
        a = _sample((3, 5), dtype)
        for got in interpret(b.build(outs), [a]):
            np.testing.assert_array_equal(got, a, err_msg=f"{name} {dtype}")


@pytest.mark.parametrize("name", [d.name for d in all_ops() if d.involution])
def test_involutions(name):
    d = get_op(name)
    for dtype in _accepted(d):
        b = GraphBuilder()
        x = b.input((4, 3), dtype)
        a = _sample((4, 3), dtype)
        (got,) = interpret(b.build([b.emit(name, b.emit(name, x))]), [a])
        np.testing.assert_array_equal(got, a, err_msg=f"{name} {dtype}")


# (op, attrs, whether it forwards its (2, 3) input): both answers of each movement op
FORWARDS = [("reshape", dict(shape=(2, 3)), True), ("reshape", dict(shape=(3, 2)), False),
            ("transpose", dict(perm=(0, 1)), True), ("transpose", dict(perm=(1, 0)), False),
            ("broadcast_to", dict(shape=(2, 3)), True), ("broadcast_to", dict(shape=(4, 2, 3)), False),
            ("slice", dict(starts=(0, 0), stops=(2, 3), steps=(1, 1)), True),
            ("slice", dict(starts=(0, 1), stops=(2, 3), steps=(1, 1)), False),
            ("stop_gradient", {}, True), ("exp", {}, False)]


@pytest.mark.parametrize("name, attrs, forwards", FORWARDS)
def test_forwards(name, attrs, forwards):
    b = GraphBuilder()
    x = b.input((2, 3), "float64")
    y = b.emit(name, x, **attrs)
    g = b.build([y])
    assert get_op(name).forwards(g.nodes[-1]) is forwards
    a = _sample((2, 3), "float64")
    (got,) = interpret(g, [a])
    if forwards:
        np.testing.assert_array_equal(got, a)
    else:
        assert got.shape != a.shape or not np.array_equal(got, a)
    # every movement op is covered
    assert {n for n, _, _ in FORWARDS if get_op(n).group == "movement"} == set(opnames.MOVEMENT)


def test_cost_trait_drives_the_codegen_tables():
    work_split = pytest.importorskip("lucid_codegen.runtime.work_split")
    costly = {d.name: d.cost for d in all_ops() if d.cost}
    assert work_split.OP_COST_BYTES == costly
    assert {"exp", "log", "erf", "tanh"} <= set(costly) and "add" not in costly


# ---------------------------------------------------------------- name tests in the passes
def test_passes_ask_traits_not_name_collections():
    found = []
    for path in sorted((ROOT / "lucid_ir" / "passes").glob("*.py")):
        for line, kind, func in name_tests(path.read_text()):
            if kind == "collection":
                found.append(f"{path.name}:{line} in {func}")
    assert not found, "compare op names with a collection; ask a trait instead: " + ", ".join(found)


def test_name_test_finder_catches_each_form():
    source = ("def f(node, op):\n"
              "    a = node.op in ELEMENTWISE\n"
              "    b = op in ('mul', 'div')\n"
              "    c = node.op == 'neg'\n"
              "    d = node.kind == 'gemm' or get_op(node.op).random\n")
    assert [(line, kind) for line, kind, _ in name_tests(source)] == [
        (2, "collection"), (3, "collection"), (4, "name")]
