"""The GEMM's small-shape paths: the dot path (lucid_codegen.gemm.small: few rows or columns,
B = Wᵀ) and the row path (lucid_codegen.gemm.rows: few rows, B row-major), against float64
numpy, every epilogue, both layouts of B, views, 1-3 threads, bit for bit against the
general path where the summation order is the same, and operands fenced by inaccessible
pages (a read past an operand's end faults)."""
from __future__ import annotations

import ctypes
import itertools
import mmap

import numpy as np
import pytest

from lucid_codegen.gemm import rows as gemm_rows
from lucid_codegen.gemm import small as gemm_small
from lucid_codegen.runtime import threads
from lucid_codegen.runtime import work_split
from lucid_codegen.gemm.kernel import GemmSpec, gemm_symbol
from lucid_codegen.gemm.call import Gemm, get_gemm, split_pays, split_spans
from lucid_codegen.gemm.rows import ROWS_M, uses_row_path
from lucid_codegen.gemm.small import SMALL_M, SMALL_N, uses_dot_path
from test_gemm import SPECS, check_guard, guarded_out, ref, run_case, tol
from gemm_specs import activation, chain_spec, gated

# 0, 1, both sides of the row path's and the dot path's thresholds
SMALL_MS = tuple(sorted({0, 1, 2, 3, 5, ROWS_M, ROWS_M + 1, SMALL_M - 1, SMALL_M, SMALL_M + 1}))
KS = (0, 1, 7, 16, 33, 100)           # 0, 1, primes, a multiple and non-multiples of W
NS = (1, 3, 4, 5, 17, 37)             # either side of SMALL_N and of the tile widths


@pytest.fixture(params=[1, 2])
def num_threads(request):
    old = threads.get_num_threads()
    threads.set_num_threads(request.param)
    yield request.param
    threads.set_num_threads(old)


@pytest.mark.parametrize("spec", SPECS, ids=lambda s: gemm_symbol(s))
@pytest.mark.parametrize("b_view", ["wT", "plain"])
def test_small_shapes_every_epilogue(spec, b_view, num_threads):
    """M around both thresholds and N, K including 1, primes and non-multiples of the vector
    width, with B = Wᵀ (the dot path when M <= SMALL_M or N <= SMALL_N) and B row-major
    (the row path when M <= ROWS_M, else the general path): same results as float64
    numpy, nothing written outside C."""
    rng = np.random.default_rng(10)
    for M, K, N in itertools.product(SMALL_MS, KS, NS):
        run_case(spec, M, K, N, rng, b_view=b_view, alpha=0.75)
    for M, K, N in itertools.product((13, 40), (5, 64), (1, 2, 4)):  # small N, many rows
        run_case(spec, M, K, N, rng, b_view=b_view)


def _padded(rng, rows, cols, dtype):
    """A (rows, cols) view with unit column stride and a row stride of cols + 3."""
    return rng.uniform(-1, 1, (rows, cols + 3)).astype(dtype)[:, 1:cols + 1]


@pytest.mark.parametrize("spec", [SPECS[1], SPECS[3], SPECS[7], SPECS[11], SPECS[14]],
                         ids=lambda s: gemm_symbol(s))
def test_small_shapes_views(spec):
    """Operands that are views: padded rows (still the dot path), transposed, strided,
    negative strides and broadcasts (the general path), and a transposed residual."""
    rng = np.random.default_rng(11)
    for M, K, N in [(1, 31, 19), (2, 23, 41), (3, 17, 40), (8, 9, 3), (5, 64, 2)]:
        for a_view, b_view in itertools.product(("plain", "T", "strided", "neg", "bcast"),
                                                ("wT", "plain", "neg", "bcast")):
            run_case(spec, M, K, N, rng, a_view, b_view, r_view="T")
        dt = spec.dtype
        a, w = _padded(rng, M, K, dt), _padded(rng, N, K, dt)
        assert uses_dot_path(M, N, a.strides[1] // a.itemsize, w.T.strides[0] // a.itemsize,
                             spec.gate_a) != spec.gate_a
        bias = rng.uniform(-1, 1, N).astype(dt) if spec.bias else None
        r = rng.uniform(-1, 1, (M, K) if spec.gate_a else (M, N)).astype(dt) if spec.uses_r else None
        c_old = rng.uniform(-1, 1, (M, N)).astype(dt) if spec.accumulate else None
        big, c = guarded_out(M, N, dt, rng, fill=c_old)
        kind = "gate_a" if spec.gate_a else "residual"
        get_gemm(spec)(a, w.T, c, bias=bias, **{kind: r})
        a_eff = np.where(r > 0, a, 0) if spec.gate_a else a
        expect = ref(a_eff, w.T, bias, r if spec.reads_r and not gated(spec) else None, c_old, 1.0, activation(spec),
                     gate=r if gated(spec) else None)
        np.testing.assert_allclose(c, expect, **tol(dt, K))
        check_guard(big, M, N)


class Fenced:
    """Arrays placed against an inaccessible page (PROT_NONE): reading one element past
    an array's end (``at="end"``) or before its start (``at="start"``) faults."""

    PROT_NONE, PROT_RW = 0, 3

    def __init__(self):
        self._maps = []
        self._libc = ctypes.CDLL(None, use_errno=True)
        self._libc.mprotect.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]

    def array(self, values: np.ndarray, at: str, skip: int = 0) -> np.ndarray:
        """``skip``: bytes left between the guard page and the array (``at="start"``)."""
        page = mmap.PAGESIZE
        nbytes = max(values.nbytes + skip, 1)
        data_pages = -(-nbytes // page)
        m = mmap.mmap(-1, (data_pages + 2) * page)
        base = ctypes.addressof(ctypes.c_char.from_buffer(m))
        self._maps.append((m, base))
        for guard in (base, base + (data_pages + 1) * page):
            assert self._libc.mprotect(guard, page, self.PROT_NONE) == 0
        offset = page + (data_pages * page - values.nbytes if at == "end" else skip)
        out = np.frombuffer(m, values.dtype, values.size, offset).reshape(values.shape)
        out[...] = values
        return out

    def close(self):
        for m, base in self._maps:
            self._libc.mprotect(base, len(m), self.PROT_RW)
        self._maps.clear()


@pytest.mark.parametrize("at", ["end", "start"])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("layout", ["wT", "rows"])
def test_small_paths_read_only_their_operands(at, dtype, layout):
    """A, W (B = Wᵀ: the dot path; or B = W (K, N) row-major: the row path at M <= ROWS_M),
    bias and residual each against an inaccessible page: the dot path's masked K tail,
    the row path's masked last vector of B, aliased rows/columns and the epilogue never
    step outside them."""
    rng = np.random.default_rng(12)
    fence = Fenced()
    try:
        for spec in (chain_spec(dtype, bias=True, epilogue="tanh", residual=True),
                     chain_spec(dtype, gate=True, accumulate=True)):
            g = get_gemm(spec)
            for M, K, N in [(1, 1, 1), (1, 13, 7), (3, 5, 9), (5, 33, 2), (8, 100, 3), (2, 7, 70),
                            (2, 600, 37), (1, 3, 1100)]:
                if layout == "rows":
                    M = min(M, ROWS_M)
                    bm = fence.array(rng.uniform(-1, 1, (K, N)).astype(dtype), at)
                else:
                    bm = fence.array(rng.uniform(-1, 1, (N, K)).astype(dtype), at).T
                a = fence.array(rng.uniform(-1, 1, (M, K)).astype(dtype), at)
                r = fence.array(rng.uniform(-1, 1, (M, N)).astype(dtype), at)
                bias = fence.array(rng.uniform(-1, 1, N).astype(dtype), at) if spec.bias else None
                c = np.zeros((M, N), dtype)
                if gated(spec):
                    g(a, bm, c, residual=r)
                    expect = ref(a, bm, gate=r)
                else:
                    g(a, bm, c, bias=bias, residual=r)
                    expect = ref(a, bm, bias, r, epilogue="tanh")
                np.testing.assert_allclose(c, expect, **tol(dtype, K))
    finally:
        fence.close()


def test_split_never_crosses_the_small_threshold():
    """Every part of a split is on the same side of SMALL_M / SMALL_N as the whole."""
    for M, N, nt, (mr, nr) in itertools.product(range(1, 60), range(1, 60), (2, 3, 4),
                                                ((6, 16), (12, 32), (4, 8))):
        split = split_spans(M, N, nt, mr, nr)
        if split is None:
            continue
        split_m, spans = split
        total, small, tile = (M, SMALL_M, mr) if split_m else (N, SMALL_N, nr)
        assert split_m == (M >= N)
        assert [o for o, _ in spans] == sorted(o for o, _ in spans) and spans[0][0] == 0
        assert sum(n for _, n in spans) == total and all(o % tile == 0 for o, _ in spans)
        assert all((n <= small) == (total <= small) for _, n in spans), (M, N, nt, spans)


@pytest.mark.parametrize("spec", [SPECS[1], SPECS[7], SPECS[11]], ids=lambda s: gemm_symbol(s))
def test_small_shapes_bit_identical_across_threads(spec, monkeypatch):
    """Splits forced on tiny work (the cost model's threshold at 0): 1, 2 and 3 threads
    give the same bits, including splits whose last rows would be few enough for the
    dot path, and column splits of the dot path itself."""
    monkeypatch.setattr(work_split, "GEMM_SPLIT_SECONDS", 0.0)
    rng = np.random.default_rng(13)
    dt = spec.dtype
    old = threads.get_num_threads()
    try:
        for (M, K, N), layout in itertools.product(
                [(1, 50, 300), (2, 40, 1100), (3, 17, 100), (20, 9, 10), (14, 33, 5), (9, 40, 3),
                 (25, 7, 4), (16, 64, 70), (40, 20, 5), (17, 30, 6)], ("wT", "rows")):
            a = rng.uniform(-1, 1, (M, K)).astype(dt)
            b = (rng.uniform(-1, 1, (N, K)).astype(dt).T if layout == "wT"
                 else rng.uniform(-1, 1, (K, N)).astype(dt))
            bias = rng.uniform(-1, 1, N).astype(dt) if spec.bias else None
            r = rng.uniform(-1, 1, (M, N)).astype(dt) if spec.uses_r else None
            kind = "residual"
            c0 = rng.uniform(-1, 1, (M, N)).astype(dt)
            outs = []
            for nt in (1, 2, 3):
                threads.set_num_threads(nt)
                c = c0.copy()
                get_gemm(spec)(a, b, c, bias=bias, **{kind: r})
                outs.append(c)
            for other in outs[1:]:
                np.testing.assert_array_equal(outs[0], other, err_msg=f"{(M, K, N, layout)}")
    finally:
        threads.set_num_threads(old)


def test_cost_model_keeps_small_work_on_the_calling_thread():
    """Work of a few µs stays on the calling thread (a split costs more than it saves);
    a batch-1 layer that streams 0.8 MB of weight splits (each core streams half of W
    from its own L2), and so does big work."""
    for M, K, N in [(1, 256, 256), (4, 256, 256), (8, 8, 8), (64, 64, 64), (2, 128, 128)]:
        assert not split_pays(M, N, K, 4), (M, K, N)
        assert not split_pays(K, M, N, 4), (K, M, N)     # dW = dY.T @ X of the same layer
    assert split_pays(1, 256, 784, 4)              # x @ W.T, batch 1, 784 -> 256
    assert split_pays(1024, 1024, 1024, 4)
    assert split_pays(1, 4096, 4096, 4)            # 64 MB of weight


@pytest.mark.parametrize("M", [1, 2, 3, 5, 8, 9])
def test_linear_forward_backward_with_bounds_checking(M, monkeypatch):
    """LUCID_CHECK_BOUNDS=1: F.linear forward and backward at batch sizes around the
    small-shape threshold (dX = dY·W and the rank-M update dW = dYᵀ·X included)."""
    monkeypatch.setenv("LUCID_CHECK_BOUNDS", "1")
    import lucid
    import lucid.nn.functional as F
    rng = np.random.default_rng(14)
    K, N = 37, 19
    x = rng.standard_normal((M, K)).astype(np.float32)
    w = rng.standard_normal((N, K)).astype(np.float32)
    b = rng.standard_normal(N).astype(np.float32)
    gy = rng.standard_normal((M, N)).astype(np.float32)
    xt, wt, bt = (lucid.Tensor(v, requires_grad=True) for v in (x, w, b))
    out = F.tanh(F.linear(xt, wt, bt))
    (out * lucid.Tensor(gy)).sum().backward()
    x64, w64 = x.astype(np.float64), w.astype(np.float64)
    y = np.tanh(x64 @ w64.T + b)
    gz = gy * (1 - y * y)
    np.testing.assert_allclose(out.numpy(), y, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(np.asarray(xt.grad), gz @ w64, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(np.asarray(wt.grad), gz.T @ x64, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(np.asarray(bt.grad), gz.sum(0), rtol=1e-4, atol=1e-4)


def _general_only(spec) -> Gemm:
    """A kernel for ``spec`` whose every shape takes the general path (the small-shape
    thresholds at 0 while it is built: a cache key of its own)."""
    saved = gemm_small.SMALL_M, gemm_small.SMALL_N, gemm_rows.ROWS_M
    gemm_small.SMALL_M, gemm_small.SMALL_N, gemm_rows.ROWS_M = 0, 0, 0
    try:
        return Gemm(spec)
    finally:
        gemm_small.SMALL_M, gemm_small.SMALL_N, gemm_rows.ROWS_M = saved


@pytest.mark.parametrize("spec", [SPECS[1], SPECS[3], SPECS[4], SPECS[7], SPECS[11]],
                         ids=lambda s: gemm_symbol(s))
def test_row_path_bit_identical_to_general_path(spec):
    """The row path does each element's FMA chain in the general path's order, K blocks
    and epilogue included: every bit equal to a kernel that has only the general path,
    for K over several K blocks, N over several strips and with a masked last vector,
    A transposed or strided (its elements are read one at a time)."""
    assert uses_row_path(1, csb=1) and uses_row_path(ROWS_M, csb=1)
    assert not uses_row_path(ROWS_M + 1, csb=1) and not uses_row_path(1, csb=2)
    general = _general_only(spec)
    chosen = get_gemm(spec)
    rng = np.random.default_rng(15)
    dt = spec.dtype
    kc = spec.blocking.KC
    for M, K, N in [(1, 0, 5), (1, 1, 1), (2, 7, 17), (1, 2 * kc + 3, 37), (2, kc + 1, 16),
                    (ROWS_M, 33, 1100), (1, 5, 2100), (2, 300, 9)]:
        for a_view in ("plain", "T", "strided"):
            a = rng.uniform(-1, 1, (M, K) if a_view != "T" else (K, M)).astype(dt)
            a = a.T if a_view == "T" else a
            if a_view == "strided":
                a = rng.uniform(-1, 1, (M, 2 * K)).astype(dt)[:, ::2]
            b = rng.uniform(-1, 1, (K, N)).astype(dt)
            bias = rng.uniform(-1, 1, N).astype(dt) if spec.bias else None
            r = rng.uniform(-1, 1, (M, N)).astype(dt) if spec.uses_r else None
            c0 = rng.uniform(-1, 1, (M, N)).astype(dt)
            kind = "residual"
            outs = []
            for g in (chosen, general):
                c = c0.copy()
                g(a, b, c, bias=bias, **{kind: r})
                outs.append(c)
            np.testing.assert_array_equal(outs[0], outs[1], err_msg=f"{(M, K, N, a_view)}")
            expect = ref(a, b, bias, r if spec.reads_r and not gated(spec) else None,
                         c0 if spec.accumulate else None, 1.0, activation(spec),
                         gate=r if gated(spec) else None)
            np.testing.assert_allclose(outs[0], expect, **tol(dt, K))


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_dot_path_value_depends_only_on_k(dtype):
    """An element of C computed by the dot path has the same bits whichever rows and
    columns share its pass and its reduction (row groups of 4, 2, 1; W accumulators
    reduced together by transpose-and-add): computed alone, in a row of C, or inside a
    (SMALL_M, 37) block."""
    g = get_gemm(chain_spec(dtype, bias=True))
    rng = np.random.default_rng(16)
    for K in (1, 9, 64, 301):
        a = rng.uniform(-1, 1, (SMALL_M, K)).astype(dtype)
        w = rng.uniform(-1, 1, (37, K)).astype(dtype)
        bias = rng.uniform(-1, 1, 37).astype(dtype)
        whole = np.empty((SMALL_M, 37), dtype)
        g(a, w.T, whole, bias=bias)
        np.testing.assert_allclose(whole, ref(a, w.T, bias), **tol(dtype, K))
        for i in (0, 3, SMALL_M - 1):
            row = np.empty((1, 37), dtype)
            g(a[i:i + 1], w.T, row, bias=bias)
            np.testing.assert_array_equal(row[0], whole[i])
            for j in (0, 5, 36):
                one = np.empty((1, 1), dtype)
                g(a[i:i + 1], w[j:j + 1].T, one, bias=bias[j:j + 1])
                assert one[0, 0] == whole[i, j], (K, i, j)
        for lo, hi in ((1, 4), (2, 7)):
            part = np.empty((hi - lo, 37), dtype)
            g(a[lo:hi], w.T, part, bias=bias)
            np.testing.assert_array_equal(part, whole[lo:hi])


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_dot_path_same_bits_at_every_alignment_and_reads_nothing_before_w(dtype):
    """The dot path loads W's rows from vector-aligned addresses, its first vector
    starting before the row with those lanes masked off (a row starting mid-vector): W
    placed right after an inaccessible page at every element offset within a vector
    gives the same bits (the lanes are rotated back before the reduction), and nothing
    before W is read. Rows whose starts differ in alignment (a row stride that is not a
    multiple of the vector) take unaligned loads, with the same bits again."""
    g = get_gemm(chain_spec(dtype, bias=True))
    rng = np.random.default_rng(21)
    itemsize = np.dtype(dtype).itemsize
    fence = Fenced()
    try:
        for M, K, N in [(1, 784, 40), (3, 17, 9), (1, 5, 3), (16, 100, 37), (2, 1, 4)]:
            a = rng.uniform(-1, 1, (M, K)).astype(dtype)
            w = rng.uniform(-1, 1, (N, K)).astype(dtype)
            bias = rng.uniform(-1, 1, N).astype(dtype)
            first = None
            for skip in range(0, 128, itemsize):
                placed = fence.array(w, "start", skip)
                c = np.empty((M, N), dtype)
                g(a, placed.T, c, bias=bias)
                if first is None:
                    first = c
                    np.testing.assert_allclose(c, ref(a, w.T, bias), **tol(dtype, K))
                np.testing.assert_array_equal(c, first, err_msg=f"W at {skip} bytes from a page")
            wide = fence.array(np.pad(w, ((0, 0), (0, 1))), "start", itemsize)[:, :K]
            c = np.empty((M, N), dtype)
            g(a, wide.T, c, bias=bias)
            np.testing.assert_array_equal(c, first)
    finally:
        fence.close()
