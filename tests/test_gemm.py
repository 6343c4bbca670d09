"""GEMM kernels against a float64 numpy reference (lucid_codegen.gemm.kernel / gemm_call)."""
from __future__ import annotations

import numpy as np
import pytest

from lucid_codegen.runtime import threads
from lucid_codegen.gemm.kernel import GemmSpec, build_gemm_module, gemm_symbol
from lucid_codegen.gemm.call import Gemm, get_gemm, split_pays
from gemm_specs import activation, chain_spec, gated

SENTINEL = -7777.0


def ref(a, b, bias=None, r=None, c_old=None, alpha=1.0, epilogue="none", gate=None):
    y = alpha * (a.astype(np.float64) @ b.astype(np.float64))
    if bias is not None:
        y = y + bias.astype(np.float64)
    if epilogue == "relu":
        y = np.maximum(y, 0.0)
    elif epilogue == "sigmoid":
        y = 1.0 / (1.0 + np.exp(-y))
    elif epilogue == "tanh":
        y = np.tanh(y)
    if r is not None:
        y = y + r.astype(np.float64)
    if gate is not None:
        y = np.where(gate > 0, y, 0.0)
    if c_old is not None:
        y = y + c_old.astype(np.float64)
    return y


def tol(dtype, K):
    if dtype == "float32":
        return dict(rtol=1e-5, atol=2e-6 * (K + 8))
    return dict(rtol=1e-12, atol=1e-14 * (K + 8))


def guarded_out(M, N, dtype, rng, fill=None):
    """An (M, N) view with row stride > N inside a sentinel-filled array."""
    big = np.full((M + 4, N + 7), SENTINEL, dtype)
    c = big[2:2 + M, 3:3 + N]
    if fill is not None:
        c[...] = fill
    return big, c


def check_guard(big, M, N):
    mask = np.ones(big.shape, bool)
    mask[2:2 + M, 3:3 + N] = False
    assert np.all(big[mask] == SENTINEL), "gemm wrote outside c_out"


def run_case(spec, M, K, N, rng, a_view="plain", b_view="wT", r_view="plain", alpha=1.0):
    dt = spec.dtype
    if a_view == "plain":
        a = rng.uniform(-1, 1, (M, K)).astype(dt)
    elif a_view == "T":
        a = rng.uniform(-1, 1, (K, M)).astype(dt).T
    elif a_view == "strided":
        a = rng.uniform(-1, 1, (2 * M + 1, 3 * K + 2)).astype(dt)[1::2, ::3][:M, :K]
    elif a_view == "neg":
        a = rng.uniform(-1, 1, (M, 2 * K)).astype(dt)[::-1, ::-2]
    elif a_view == "bcast":
        a = np.broadcast_to(rng.uniform(-1, 1, (1, K)).astype(dt), (M, K))
    if b_view == "wT":
        b = rng.uniform(-1, 1, (N, K)).astype(dt).T
    elif b_view == "plain":
        b = rng.uniform(-1, 1, (K, N)).astype(dt)
    elif b_view == "neg":
        b = rng.uniform(-1, 1, (K, 2 * N)).astype(dt)[::-1, ::-2]
    elif b_view == "bcast":
        b = np.broadcast_to(rng.uniform(-1, 1, (K, 1)).astype(dt), (K, N))
    bias = rng.uniform(-1, 1, N).astype(dt) if spec.bias else None
    r = None
    if spec.gate_a:
        r = rng.uniform(-1, 1, (K, M)).astype(dt).T if r_view == "T" else \
            rng.uniform(-1, 1, (M, K)).astype(dt)
        if r.size:
            r.flat[::7] = np.nan
    elif spec.reads_r:
        r = rng.uniform(-1, 1, (N, M)).astype(dt).T if r_view == "T" else \
            rng.uniform(-1, 1, (M, N)).astype(dt)
        if gated(spec) and r.size:
            r.flat[::7] = np.nan   # a NaN gate closes (numpy: nan > 0 is False)
            r.flat[::5] = 0.0      # so does exactly 0
    c_old = rng.uniform(-1, 1, (M, N)).astype(dt) if spec.accumulate else None
    big, c = guarded_out(M, N, dt, rng, fill=c_old)
    if spec.gate_a:
        get_gemm(spec)(a, b, c, bias=bias, gate_a=r, alpha=alpha)
        expect = ref(np.where(r > 0, a, 0), b, bias, None, c_old, alpha, activation(spec))
    elif gated(spec):
        get_gemm(spec)(a, b, c, bias=bias, residual=r, alpha=alpha)
        expect = ref(a, b, bias, None, c_old, alpha, activation(spec), gate=r)
    else:
        get_gemm(spec)(a, b, c, bias=bias, residual=r, alpha=alpha)
        expect = ref(a, b, bias, r, c_old, alpha, activation(spec))
    np.testing.assert_allclose(c, expect, **tol(dt, K))
    check_guard(big, M, N)
    return c


SPECS = [
    GemmSpec("float32"),
    chain_spec("float32", bias=True),
    chain_spec("float32", bias=True, epilogue="relu"),
    chain_spec("float32", bias=True, epilogue="sigmoid", residual=True),
    chain_spec("float32", epilogue="tanh", accumulate=True),
    chain_spec("float32", accumulate=True, residual=True, bias=True),
    GemmSpec("float64"),
    chain_spec("float64", bias=True, epilogue="sigmoid", accumulate=True, residual=True),
    chain_spec("float64", bias=True, epilogue="tanh"),
    chain_spec("float64", epilogue="relu", residual=True),
    chain_spec("float32", gate=True),
    chain_spec("float32", bias=True, epilogue="tanh", gate=True),
    chain_spec("float64", accumulate=True, gate=True),
    chain_spec("float32", gate_a=True),
    chain_spec("float64", bias=True, epilogue="relu", gate_a=True),
]
SHAPES = [(0, 3, 5), (4, 0, 3), (3, 5, 0), (1, 1, 1), (2, 3, 1), (7, 13, 31), (13, 17, 35),
          (37, 41, 97), (150, 9, 33)]


@pytest.mark.parametrize("spec", SPECS, ids=lambda s: gemm_symbol(s))
def test_shapes(spec):
    rng = np.random.default_rng(0)
    for M, K, N in SHAPES:
        run_case(spec, M, K, N, rng, alpha=0.75)


@pytest.mark.parametrize("spec", [SPECS[1], SPECS[3], SPECS[4], SPECS[5], SPECS[7], SPECS[10],
                                  SPECS[12], SPECS[13]], ids=lambda s: gemm_symbol(s))
def test_multi_block(spec):
    """K past one K block, M past one M block, N not a multiple of the tile."""
    rng = np.random.default_rng(1)
    blk = spec.blocking
    run_case(spec, blk.MC + 7, blk.KC + 29, 2 * blk.NR + 3, rng, alpha=1.5)
    run_case(spec, 3, 5, blk.NC + 5, rng)


@pytest.mark.parametrize("spec", [SPECS[3], SPECS[5], SPECS[7], SPECS[11], SPECS[13], SPECS[14]],
                         ids=lambda s: gemm_symbol(s))
def test_views(spec):
    rng = np.random.default_rng(2)
    for a_view in ("plain", "T", "strided", "neg", "bcast"):
        for b_view in ("wT", "plain", "neg", "bcast"):
            run_case(spec, 19, 23, 37, rng, a_view, b_view, r_view="T")
    run_case(spec, 40, 600, 70, rng, "T", "neg", r_view="T")


def test_misaligned_strides_fall_back():
    spec = SPECS[0]
    rng = np.random.default_rng(3)
    raw = np.zeros(4096, np.uint8)
    a = np.ndarray((5, 6), np.float32, raw, offset=1, strides=(29, 4))
    a[...] = rng.uniform(-1, 1, (5, 6))
    b = rng.uniform(-1, 1, (6, 7)).astype(np.float32)
    big, c = guarded_out(5, 7, "float32", rng)
    get_gemm(spec)(a, b, c)
    np.testing.assert_allclose(c, ref(a, b), **tol("float32", 6))
    check_guard(big, 5, 7)


@pytest.mark.parametrize("shape", [(300, 200, 257), (50, 300, 1001)])
def test_threads_bit_identical(shape):
    M, K, N = shape
    assert split_pays(M, N, K, 4)
    rng = np.random.default_rng(4)
    for spec in (SPECS[1], SPECS[3], SPECS[7], SPECS[11], SPECS[13]):
        g = get_gemm(spec)
        dt = spec.dtype
        a = rng.uniform(-1, 1, (M, K)).astype(dt)
        b = rng.uniform(-1, 1, (N, K)).astype(dt).T
        bias = rng.uniform(-1, 1, N).astype(dt) if spec.bias else None
        r = rng.uniform(-1, 1, (M, K) if spec.gate_a else (M, N)).astype(dt) if spec.uses_r else None
        r_arg = {"gate_a" if spec.gate_a else "residual": r}
        c0 = rng.uniform(-1, 1, (M, N)).astype(dt)
        outs = []
        old = threads.get_num_threads()
        try:
            for nt in (1, 2, 3):
                threads.set_num_threads(nt)
                c = c0.copy()
                g(a, b, c, bias=bias, **r_arg)
                outs.append(c)
        finally:
            threads.set_num_threads(old)
        for c in outs[1:]:
            assert np.array_equal(c, outs[0])
        if spec.gate_a:
            a, r = np.where(r > 0, a, 0), None
        np.testing.assert_allclose(outs[0], ref(a, b, bias, None if gated(spec) else r,
                                                c0 if spec.accumulate else None, 1.0, activation(spec),
                                                gate=r if gated(spec) else None), **tol(dt, K))


def test_bad_arguments():
    g = get_gemm(SPECS[1])
    a = np.zeros((3, 4), np.float32)
    b = np.zeros((5, 6), np.float32)
    c = np.zeros((3, 6), np.float32)
    bias = np.zeros(6, np.float32)
    with pytest.raises(ValueError, match=r"gemm.*\(3, 4\).*\(5, 6\)"):
        g(a, b, c, bias=bias)
    with pytest.raises(ValueError, match="gemm"):
        g(a, np.zeros((4, 6), np.float32), np.zeros((3, 5), np.float32), bias=bias)
    with pytest.raises(ValueError, match="gemm.*bias"):
        g(a, np.zeros((4, 6), np.float32), c, bias=np.zeros(5, np.float32))
    with pytest.raises(TypeError, match="gemm"):
        g(a, np.zeros((4, 6), np.float32), c)
    with pytest.raises(TypeError, match="gemm"):
        g(a.astype(np.float64), np.zeros((4, 6), np.float32), c, bias=bias)
    with pytest.raises(ValueError, match="gemm.*column stride"):
        g(a, np.zeros((4, 6), np.float32), np.zeros((6, 3), np.float32).T, bias=bias)
    with pytest.raises(ValueError, match="gemm.*2-D"):
        g(a, np.zeros(4, np.float32), c, bias=bias)
    with pytest.raises(ValueError, match="gemm.*bias"):
        get_gemm(SPECS[0])(a, np.zeros((4, 6), np.float32), c, bias=bias)
    with pytest.raises(TypeError, match="gemm"):
        g([[1.0]], b, c, bias=bias)
    w = np.zeros((4, 6), np.float32)
    with pytest.raises(ValueError, match="gemm.*residual given"):
        g(a, w, c, bias=bias, residual=c.copy())        # the epilogue reads no R
    masked = get_gemm(SPECS[10])                        # select(R > 0, P, 0)
    with pytest.raises(TypeError, match="gemm.*residual"):
        masked(a, w, c)                                  # R is missing
    with pytest.raises(ValueError, match="gemm.*residual shape"):
        masked(a, w, c, residual=np.zeros((6, 3), np.float32))
    with pytest.raises(ValueError, match="gemm.*not"):
        masked(a, w, c, gate_a=a.copy(), residual=c.copy())
    with pytest.raises(ValueError, match="gemm.*choose one"):
        chain_spec("float32", residual=True, gate=True)
    with pytest.raises(ValueError, match="gemm.*choose one"):
        chain_spec("float32", gate=True, gate_a=True)
    gated_a = get_gemm(SPECS[13])
    with pytest.raises(ValueError, match=r"gemm: gate_a shape \(3, 6\) does not match \(3, 4\)"):
        gated_a(a, w, c, gate_a=c.copy())           # a gate on A has A's shape
    with pytest.raises(ValueError, match="gemm.*residual given"):
        gated_a(a, w, c, residual=c.copy())


def test_spec_key_and_module():
    s1 = chain_spec("float32", bias=True, epilogue="relu")
    s2 = chain_spec("float32", bias=True, epilogue="relu")
    assert s1 == s2 and hash(s1) == hash(s2) and s1.key() == s2.key()
    keys = {s.key() for s in SPECS}
    assert len(keys) == len(SPECS)
    assert gemm_symbol(s1) in build_gemm_module(s1).globals
    with pytest.raises(ValueError):
        GemmSpec("float16")
    with pytest.raises(ValueError):
        chain_spec("float32", epilogue="softplus")  # not one of the chain's activations
    with pytest.raises(ValueError, match="gemm: epilogue must be a float64"):
        GemmSpec("float64", SPECS[2].epilogue)      # a float32 subgraph
    with pytest.raises(TypeError):
        Gemm("float32")


def test_parallel_for():
    out = [0] * 7
    threads.parallel_for(7, lambda i: out.__setitem__(i, i + 1))
    assert out == list(range(1, 8))

    def boom(i):
        if i == 3:
            raise RuntimeError("chunk 3")
    with pytest.raises(RuntimeError, match="chunk 3"):
        threads.parallel_for(5, boom)
    nested = []
    threads.parallel_for(2, lambda i: threads.parallel_for(
        2, lambda j: nested.append((i, j))))
    assert sorted(nested) == [(0, 0), (0, 1), (1, 0), (1, 1)]


def test_overlapping_input_is_copied():
    """a/b/residual sharing memory with c_out: the _py entry refuses, the general path copies."""
    rng = np.random.default_rng(5)
    for spec in (SPECS[0], SPECS[3]):
        buf = rng.uniform(-1, 1, (40, 40)).astype(np.float32)
        a = buf[:30, :20]                   # A with unit column stride (packed)
        b = buf[5:25, 10:35]                # overlaps c_out as well
        c = buf[10:40, 15:40]
        bias = rng.uniform(-1, 1, 25).astype(np.float32) if spec.bias else None
        r = buf[:30, :25] if spec.reads_r else None
        expect = ref(a.copy(), b.copy(), bias, None if r is None else r.copy(),
                     epilogue=activation(spec))
        get_gemm(spec)(a, b, c, bias=bias, residual=r)
        np.testing.assert_allclose(c, expect, **tol("float32", 20))
        at = buf.T[:30, :20]                # A with unit row stride (read in place)
        buf2 = buf.copy()
        expect = ref(buf2.T[:30, :20], buf2[5:25, 10:35], bias,
                     None if r is None else buf2[:30, :25], epilogue=activation(spec))
        get_gemm(spec)(at, buf[5:25, 10:35], buf[10:40, 15:40], bias=bias,
                       residual=buf[:30, :25] if spec.reads_r else None)
        np.testing.assert_allclose(buf[10:40, 15:40], expect, **tol("float32", 20))
