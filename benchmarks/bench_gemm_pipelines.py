"""Run time of the GEMM kernels compiled with the GEMM modules' LLVM pipelines (``jit.GEMM``,
and ``jit.GEMM_CONTROL`` for the core's loop-control parts) and with another for every
module (default ``O2u``: speed level 2 with loop unrolling, the pipeline before
2026-12-06; ``O0``: the pipeline before 2026-12-07, everything code-generated at level 3),
in one process, interleaved (A B A B, medians), and whether both give the same bits.
``new/old`` > 1: the GEMM pipelines' code is slower.

    python benchmarks/bench_gemm_pipelines.py [--quick] [--old O2u] [--new TAG]

``TAG``: a ``jit.Pipeline`` tag (``O0/c0``) for every GEMM module, or ``default`` (the
default for ``--new``): the pipelines lucid uses.

Each pipeline gets a core and variants of its own (the core's functions are re-linked
(``add_symbol``) before a pipeline's variants load, so each variant calls its own
pipeline's core). Cases: the MLP's layers and gradients (64x784x256 with bias + relu,
the accumulating weight gradient of a transposed operand), big square products, edge
tiles (primes), the small-shape and few-rows paths, float64, and the GPT MLP's GELU
backward as an epilogue reading R; 1 thread.
"""
from __future__ import annotations

import os
import statistics
import sys

os.environ.setdefault("LUCID_NUM_THREADS", "1")
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import numpy as np  # noqa: E402

from lucid_codegen.gemm import core as gemm_core  # noqa: E402
from lucid_codegen.gemm.call import Gemm  # noqa: E402
from lucid_codegen.gemm.epilogue import Epilogue  # noqa: E402
from lucid_codegen.gemm.kernel import GemmSpec  # noqa: E402
from lucid_codegen.jit import llvm as jit  # noqa: E402
from harness import interleaved  # noqa: E402


def cases():
    """(name, spec, a, b, bias, accumulate) of each case."""
    rng = np.random.default_rng(0)

    def arr(*shape, dtype="float32"):
        return rng.standard_normal(shape).astype(dtype)

    def spec(dtype="float32", bias=False, act="none", accumulate=False):
        return GemmSpec(dtype, Epilogue.chain(dtype, bias=bias, activation=act), accumulate=accumulate)

    yield "x@W.T+b relu 64x784x256", spec(bias=True, act="relu"), arr(64, 784), arr(256, 784).T, arr(256)
    yield "dW += dY.T@x 256x64x784", spec(accumulate=True), arr(64, 256).T, arr(64, 784), None
    yield "dX = dY@W 64x256x784", spec(), arr(64, 256), arr(256, 784), None
    yield "x@W.T+b 256x1024x1024", spec(bias=True), arr(256, 1024), arr(1024, 1024).T, arr(1024)
    yield "A@B 1024^3", spec(), arr(1024, 1024), arr(1024, 1024), None
    yield "edges 97x301x61 tanh", spec(bias=True, act="tanh"), arr(97, 301), arr(61, 301).T, arr(61)
    yield "small path 4x512x512", spec(bias=True), arr(4, 512), arr(512, 512).T, arr(512)
    yield "rows path 24x512x512", spec(), arr(24, 512), arr(512, 512), None
    yield "float64 x@W.T+b 128x512x512", spec("float64", bias=True), arr(128, 512, dtype="float64"), \
        arr(512, 512, dtype="float64").T, arr(512, dtype="float64")
    yield "dH = dY@W2 * gelu'(h) 1024x128x512", GemmSpec("float32", gelu_backward_epilogue("float32")), \
        arr(1024, 128), arr(128, 512), None, {"residual": arr(1024, 512)}


def gelu_backward_epilogue(dtype: str) -> Epilogue:
    """``P * gelu'(R)`` (GELU's exact derivative, ``Φ(R) + R φ(R)``): the GPT MLP's
    backward through its activation, an epilogue of transcendental cost reading R."""
    from lucid_ir.builder import GraphBuilder
    g = GraphBuilder()
    p, r = g.input((2, 3), dtype), g.input((2, 3), dtype)

    def c(value):
        return g.constant(value, dtype=dtype)
    cdf = g.emit("mul", g.emit("erfc", g.emit("mul", r, c(-0.5 ** 0.5))), c(0.5))
    pdf = g.emit("mul", g.emit("exp", g.emit("mul", g.emit("mul", r, r), c(-0.5))), c((2 * np.pi) ** -0.5))
    y = g.emit("mul", p, g.emit("add", cdf, g.emit("mul", r, pdf)))
    return Epilogue.of_graph(g.build([y]), ("full",))


def _kernels(pipeline_tag: str, specs) -> dict:
    """spec -> a Gemm compiled with ``pipeline_tag`` (and a core of its own)."""
    if pipeline_tag != "default":
        os.environ["LUCID_GEMM_OPT"] = pipeline_tag
    gemm_core._LOADED.clear()
    try:
        kernels = {s: Gemm(s) for s in dict.fromkeys(specs)}
        for dtype, blk in {(s.dtype, s.blocking) for s in kernels}:  # this core's every path,
            gemm_core.ensure_paths(dtype, blk, gemm_core.LAZY)  # before the next core replaces it
        return kernels
    finally:
        os.environ.pop("LUCID_GEMM_OPT", None)


def _run(kernel, a, b, bias, c0, **operands):
    c = c0.copy()
    kernel(a, b, c, bias=bias, **operands)
    return c


def bit_cases():
    """(name, spec, a, b, bias, operands) of the bit-identity check: every epilogue
    form (activations, residual, relu gate, accumulation, A's gate) and dtype on shapes
    with 1 and primes, through the general, small and few-rows paths."""
    rng = np.random.default_rng(2)
    for dtype in ("float32", "float64"):
        for M, K, N in ((1, 1, 1), (1, 37, 53), (7, 64, 29), (23, 300, 41), (97, 301, 61), (130, 97, 200)):
            a = rng.standard_normal((M, K)).astype(dtype)
            bt = rng.standard_normal((N, K)).astype(dtype).T
            bias = rng.standard_normal(N).astype(dtype)
            r = rng.standard_normal((M, N)).astype(dtype)
            for act in ("none", "relu", "sigmoid", "tanh"):
                for accumulate in (False, True):
                    spec = GemmSpec(dtype, Epilogue.chain(dtype, bias=True, activation=act),
                                    accumulate=accumulate)
                    yield f"{dtype} {M}x{K}x{N} bias {act} acc{int(accumulate)}", spec, a, bt, bias, {}
            yield f"{dtype} {M}x{K}x{N} residual", GemmSpec(dtype, Epilogue.chain(
                dtype, activation="tanh", residual=True)), a, bt.T.copy().T, None, {"residual": r}
            yield f"{dtype} {M}x{K}x{N} gate", GemmSpec(dtype, Epilogue.chain(dtype, gate=True)), \
                a.T.copy().T, bt.copy(), None, {"residual": r}
            yield f"{dtype} {M}x{K}x{N} gate_a", GemmSpec(dtype, gate_a=True), a, bt, None, \
                {"gate_a": rng.standard_normal((M, K)).astype(dtype)}


def differing(old: str, new: str) -> list:
    """Names of the :func:`bit_cases` whose results differ between the pipelines ``old``
    and ``new`` (tags); run it in a process of its own (it re-links the core)."""
    todo = list(bit_cases())
    kernels = {tag: _kernels(tag, [c[1] for c in todo]) for tag in (old, new)}
    out = []
    for name, spec, a, b, bias, operands in todo:
        c0 = np.random.default_rng(1).standard_normal((a.shape[0], b.shape[1])).astype(spec.dtype)
        got = [_run(kernels[tag][spec], a, b, bias, c0, **operands) for tag in (old, new)]
        if not np.array_equal(got[0], got[1], equal_nan=True):
            out.append(name)
    return out


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    quick = "--quick" in argv
    old = argv[argv.index("--old") + 1] if "--old" in argv else "O2u"
    new = argv[argv.index("--new") + 1] if "--new" in argv else "default"
    todo = list(cases())
    kernels = {tag: _kernels(tag, [c[1] for c in todo]) for tag in (old, new)}
    print(f"GEMM kernels, pipeline {new} (new) vs {old} (old), 1 thread; load average {os.getloadavg()[0]:.2f}")
    print(f"{'case':30s} {'old us':>9s} {'new us':>9s} {'new/old':>8s} same bits")
    ratios = []
    for name, spec, a, b, bias, *extra in todo:
        operands = extra[0] if extra else {}
        M, N = a.shape[0], b.shape[1]
        c0 = np.random.default_rng(1).standard_normal((M, N)).astype(spec.dtype)
        outs = {tag: _run(kernels[tag][spec], a, b, bias, c0, **operands) for tag in (old, new)}
        same = np.array_equal(outs[old], outs[new], equal_nan=True)
        flops = 2.0 * M * N * a.shape[1]
        inner = max(1, int((5e7 if quick else 2e8) / flops))
        c = c0.copy()
        fns = {tag: (lambda k=kernels[tag][spec]: k(a, b, c, bias=bias, **operands)) for tag in (old, new)}
        median = interleaved(fns, 7 if quick else 15, inner)
        to, tn = median[old], median[new]
        ratios.append(tn / to)
        print(f"{name:30s} {to * 1e6:9.1f} {tn * 1e6:9.1f} {tn / to:8.3f} {same}")
    geo = statistics.geometric_mean(ratios)
    print(f"geometric mean new/old: {geo:.3f}; load average {os.getloadavg()[0]:.2f}")
    return geo


if __name__ == "__main__":
    main()
