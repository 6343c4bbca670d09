"""Copies through gather tables (kernels/index.py's ``copy`` parts with a ``table``):
the rows of a permuted or windowed view (a max-pool's window transposes, NCHW <-> NHWC)
move as vector gathers into adjacent output elements. Every layout must give numpy's
values, in the kernel's three users: ``concat``, ``embed`` / ``embed_sum`` steps and the
native plans' reshape copies."""
from __future__ import annotations

import itertools

import numpy as np
import pytest

import lucid
from lucid_ir.builder import GraphBuilder
from lucid_ir.interpreter import interpret
from lucid_codegen.runtime import index_steps
from lucid_codegen.runtime.index_steps import TABLE_MAX, _copy_part, index_step

DTYPES = ["float32", "float64", "int32", "int64", "bool"]


def _data(rng, shape, dtype):
    if dtype == "bool":
        return rng.random(shape) < 0.5
    return (rng.standard_normal(shape) * 100).astype(dtype)


def _views(rng, shape, dtype):
    """Views of ``shape`` in several layouts: permuted, windowed, flipped, strided."""
    n = len(shape)
    for perm in list(itertools.permutations(range(n)))[:6]:
        base = _data(rng, [shape[p] for p in perm], dtype)
        yield np.transpose(base, np.argsort(perm))
    wide = _data(rng, [2 * d + 1 for d in shape], dtype)
    yield wide[tuple(slice(1, None, 2) for _ in shape)]
    yield _data(rng, shape, dtype)[tuple(slice(None, None, -1) for _ in shape)]
    if n >= 2:   # a 2x2 window's positions as dimensions (a max-pool's transpose)
        h, w = shape[-2], shape[-1]
        base = _data(rng, (*shape[:-2], 2 * h, 2 * w), dtype)
        yield base.reshape(*shape[:-2], h, 2, w, 2)[..., 0, :, 1]


SHAPES = [(0, 3), (1, 1), (3, 2), (5, 7), (2, 3, 4), (4, 1, 6), (3, 5, 2, 2), (2, 16, 3, 3)]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", SHAPES)
def test_concat_and_embed_of_any_layout_match_numpy(dtype, shape):
    rng = np.random.default_rng(len(shape) * 31 + shape[-1])
    for x in _views(rng, shape, dtype):
        y = _data(rng, shape, dtype)
        b = GraphBuilder()
        vx, vy = b.input(x.shape, dtype), b.input(y.shape, dtype)
        cat = index_step(b.build([b.emit("concat", vx, vy, axis=len(shape) - 1)]).nodes[0])
        np.testing.assert_array_equal(cat(x, y)[0], np.concatenate([x, y], axis=-1))
        b = GraphBuilder()
        padded = tuple(d + 2 for d in shape)
        node = b.build([b.emit("embed", b.input(x.shape, dtype), shape=padded,
                               starts=(1,) * len(shape), stops=tuple(d + 1 for d in shape),
                               steps=(1,) * len(shape))]).nodes[0]
        want = np.zeros(padded, dtype)
        want[tuple(slice(1, d + 1) for d in shape)] = x
        np.testing.assert_array_equal(index_step(node)(x)[0], want)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", [(2, 5, 3, 4), (2, 0, 3, 4), (1, 7, 2, 33), (3, 4, 1, 16)])
def test_unit_rows_are_walked_in_the_sources_order(dtype, shape):
    """A copy part of unit rows (both last strides 1) walks its outer dimensions in the
    source's order, largest stride first (a GPT's q, k, v gradients, (B, H, T, D) viewed
    as (B, T, H, D) and joined along H: each read in memory order), two dimensions at
    a time (the odometer over the outer ones, a loop over the next): the concat of
    such views along a middle axis, and of empty ones, is numpy's."""
    B, T, H, D = shape
    words = []
    _copy_part(words, (B, T, H, D), [T * 3 * H * D, 3 * H * D, D, 1], [H * T * D, D, T * D, 1], 0, 4)
    sources = words[7::3]   # (each dimension's size, output stride, source stride)
    assert sources[-1] == 1 and sources[:-1] == sorted(sources[:-1], reverse=True)
    rng = np.random.default_rng(5)
    parts = [np.swapaxes(_data(rng, (B, H, T, D), dtype), 1, 2) for _ in range(3)]
    b = GraphBuilder()
    ins = [b.input(p.shape, dtype) for p in parts]
    cat = index_step(b.build([b.emit("concat", *ins, axis=2)]).nodes[0])
    np.testing.assert_array_equal(cat(*parts)[0], np.concatenate(parts, axis=2))


@pytest.mark.parametrize("dtype", ["float32", "float64", "int32", "int64"])
def test_embed_sum_adds_gathered_rows(dtype):
    """``embed_sum`` (the ``copy_add`` kernel): two transposed inputs added into
    overlapping slices of zeros, as the interpreter adds them."""
    rng = np.random.default_rng(7)
    x = _data(rng, (6, 5, 3), dtype).transpose(2, 1, 0)     # (3, 5, 6), strided rows
    y = _data(rng, (6, 5, 3), dtype).transpose(2, 1, 0)
    b = GraphBuilder()
    g = b.build([b.emit("embed_sum", b.input(x.shape, dtype), b.input(y.shape, dtype), shape=(3, 6, 6),
                        starts=(0, 0, 0, 0, 1, 0), stops=(3, 5, 6, 3, 6, 6), steps=(1,) * 6)])
    got = index_step(g.nodes[0])(x, y)[0]
    np.testing.assert_array_equal(got, interpret(g, [x, y])[0])


def test_a_table_covers_the_output_contiguous_trailing_dimensions_up_to_its_limit():
    """The table spans the trailing dimensions over which the output is C-contiguous, as
    many as fit in ``TABLE_MAX`` entries; unit rows and strided output rows get none."""
    n = TABLE_MAX // 4
    table = _copy_part([], (3, n, 4), [4 * n, 4, 1], [1, 12, 3], 0, 4)   # (3 * n * 4 > TABLE_MAX)
    assert table is not None and len(table) == 4 * n
    np.testing.assert_array_equal(table[:8], [0, 3, 6, 9, 12, 15, 18, 21])
    words = []
    assert _copy_part(words, (3, 5), [5, 1], [5, 1], 0, 4) is None        # unit rows: vector moves
    assert _copy_part([], (3, 5), [1, 3], [5, 1], 0, 4) is None            # strided output rows
    assert _copy_part([], (3, 5), [5, 1], [1, 3], 0, 1) is None            # bytes: no gathers


@pytest.mark.parametrize("dtype", ["float32", "float64", "int64"])
@pytest.mark.parametrize("perm", [(0, 2, 3, 1), (0, 3, 1, 2), (3, 2, 1, 0)])
def test_a_compiled_reshape_of_a_permuted_tensor_copies_through_a_table(dtype, perm):
    """A compiled ``permute(...).reshape(...)`` (a reshape that cannot be a view: the
    native plan's reshape copy) gives numpy's values, call after call."""
    rng = np.random.default_rng(11)
    x = _data(rng, (4, 5, 6, 3), dtype)
    f = lucid.compile(lambda t: (t.permute(*perm).reshape(x.shape[perm[0]], -1) * 2))
    want = np.transpose(x, perm).reshape(x.shape[perm[0]], -1) * 2
    for _ in range(3):
        np.testing.assert_array_equal(f(lucid.tensor(x)).numpy(), want)


def test_max_pool_backward_through_tables_matches_torch():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(3)
    x = rng.standard_normal((4, 3, 8, 6))

    def grad(lib):
        t = lib.tensor(x, requires_grad=True)
        lib.nn.functional.max_pool2d(t, 2).pow(2).sum().backward()
        return t.grad.numpy()
    np.testing.assert_allclose(grad(lucid), grad(torch), rtol=1e-12, atol=0)


def test_tables_stay_out_of_blocks_of_other_parts():
    """Two parts, each with its own table, appended after every part's words."""
    rng = np.random.default_rng(2)
    x = _data(rng, (4, 3, 5), "float32").transpose(0, 2, 1)
    y = _data(rng, (4, 2, 5), "float32").transpose(0, 2, 1)
    b = GraphBuilder()
    step = index_step(b.build([b.emit("concat", b.input(x.shape, "float32"), b.input(y.shape, "float32"),
                                      axis=2)]).nodes[0])
    fn, words, _, in_words = step._prepare([x, y])
    tables = [words[at + 4] for at in in_words]
    assert all(t >= max(in_words) + 5 for t in tables) and tables[0] != tables[1]
    np.testing.assert_array_equal(step(x, y)[0], np.concatenate([x, y], axis=2))
    assert index_steps.TABLE_MAX >= 16
