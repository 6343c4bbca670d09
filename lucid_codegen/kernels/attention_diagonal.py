"""The tile products of a causal attention block on the diagonal, without its dead quarter.

On a block where the queries ``i0 ..`` and the keys ``j0 ..`` start together (``i0 ==
j0``, causal), a key of the second half (``j0 + h`` on) is seen only by queries of the
second half: the scores of the second half of the keys against the first half of the
queries are all masked, and their probabilities 0. The products here leave that quarter
out, cutting each of the kernels' products in two calls of ``tile_product`` (rows, or
columns, or the summed dimension, split at ``h``): a quarter of the diagonal block's
work, all of it for a sequence of one block (GPT's context of 64).

``h`` is :func:`split_point`: half the block rounded down to a whole column group of the
tile product (``CV`` vectors), so both calls keep its fastest path; 0 (no split, one call
as before) when the block is a single group (AVX-512 float32: 64 = 4 × 16). ``cut`` is
``h`` on a causal diagonal block and 0 elsewhere, where the two calls compute the whole
block. Every C element is still one sum over the same k in order, and the terms left out
are products with probabilities that are 0, so the results are the bits of the whole
products (up to the sign of a zero).

The quarter of ``Sᵀ`` and ``dPᵀ`` left out is never read as such: the softmax and the
score gradient stop at ``attention.visible_keys`` and write zeros past it.
"""
from __future__ import annotations

from lucid_codegen.kernels.attention_tiles import BLOCK, CV, Emitter, call_tile
from lucid_codegen.kernels.loops import const64


def split_point(e: Emitter) -> int:
    """``h``: half of BLOCK in whole column groups of the tile product, or 0."""
    group = CV * e.w
    return (BLOCK // 2) // group * group


def diagonal_cut(e: Emitter, causal, i0, j0):
    """``h`` (as i64) when the block of queries ``i0`` and keys ``j0`` is causal and on the
    diagonal, else 0."""
    b, h = e.b, split_point(e)
    diag = b.and_(b.icmp_signed("!=", causal, const64(0)), b.icmp_signed("==", i0, j0))
    return b.select(diag, const64(h), const64(0))


def _rest(e: Emitter, n, h):
    """``max(n - h, 0)``."""
    b = e.b
    d = b.sub(n, const64(h))
    return b.select(b.icmp_signed("<", d, const64(0)), const64(0), d)


def keys_by_queries(e: Emitter, tile, cut, M, N, K, A, a_rs, a_ks, B, ldb, C, ldc):
    """``C = A·B`` (mode 0) for C rows = keys (M), columns = queries (N): the keys of the
    second half only against the queries from ``cut`` on."""
    h = split_point(e)
    if not h:
        return call_tile(e, tile, 0, M, N, K, A, a_rs, a_ks, B, ldb, C, ldc)
    call_tile(e, tile, 0, e.imin(M, const64(h)), N, K, A, a_rs, a_ks, B, ldb, C, ldc)
    call_tile(e, tile, 0, _rest(e, M, h), e.b.sub(N, cut), K, e.at(A, e.mul(const64(h), a_rs)), a_rs, a_ks,
              e.at(B, cut), ldb, e.at(C, e.add(e.mul(const64(h), ldc), cut)), ldc)


def keys_over_queries(e: Emitter, tile, cut, M, N, K, A, a_rs, a_ks, B, ldb, C, ldc):
    """``C += A·B`` (mode 1) for C rows = keys (M), summed over queries (K): the keys of
    the second half only over the queries from ``cut`` on."""
    h = split_point(e)
    if not h:
        return call_tile(e, tile, 1, M, N, K, A, a_rs, a_ks, B, ldb, C, ldc)
    call_tile(e, tile, 1, e.imin(M, const64(h)), N, K, A, a_rs, a_ks, B, ldb, C, ldc)
    call_tile(e, tile, 1, _rest(e, M, h), N, e.b.sub(K, cut),
              e.at(A, e.add(e.mul(const64(h), a_rs), e.mul(cut, a_ks))), a_rs, a_ks,
              e.at(B, e.mul(cut, ldb)), ldb, e.at(C, e.mul(const64(h), ldc)), ldc)


def queries_over_keys(e: Emitter, tile, mode: int, cut, M, N, K, A, a_rs, a_ks, B, ldb, C, ldc,
                      colscale=None, queries_are_rows: bool = True):
    """``C (+)= A·B`` summed over keys (K), the queries being C's rows (``dQ``) or, with
    ``queries_are_rows=False``, its columns (the forward's ``Oᵀ``, ``colscale`` read
    along them): the queries before ``cut`` only over the keys of the first half."""
    h = split_point(e)
    if not h:
        return call_tile(e, tile, mode, M, N, K, A, a_rs, a_ks, B, ldb, C, ldc, colscale)
    k1 = e.imin(K, const64(h))
    if queries_are_rows:
        call_tile(e, tile, mode, cut, N, k1, A, a_rs, a_ks, B, ldb, C, ldc, colscale)
        call_tile(e, tile, mode, e.b.sub(M, cut), N, K, e.at(A, e.mul(cut, a_rs)), a_rs, a_ks, B, ldb,
                  e.at(C, e.mul(cut, ldc)), ldc, colscale)
    else:
        call_tile(e, tile, mode, M, cut, k1, A, a_rs, a_ks, B, ldb, C, ldc, colscale)
        call_tile(e, tile, mode, M, e.b.sub(N, cut), K, A, a_rs, a_ks, e.at(B, cut), ldb, e.at(C, cut), ldc,
                  None if colscale is None else e.at(colscale, cut))
