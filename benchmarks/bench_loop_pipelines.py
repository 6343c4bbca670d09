"""Run time of the loop kernels compiled with LLVM's full pipeline (``jit.FULL``) and
with the loop kernels' cheap one (``jit.LOOPS``, or the pipeline ``LUCID_LOOP_OPT``
names: to time another), in one process, interleaved (A B A B, medians): the same kernel
object, its compiled functions and plans swapped between the two pipelines' sets.
``cheap/full`` > 1: the cheap pipeline's code is slower.

    [LUCID_LOOP_OPT=P:pass+pass+...] python benchmarks/bench_loop_pipelines.py [--quick]

Cases: memory-bound elementwise and reductions (4M elements), compute-bound ones that
stay in cache (exp, tanh, GELU with its derivative on 64K elements), row kernels (softmax 64x1000,
layer norm 64x256, 4096x1000 softmax), in float32 and float64, at 1 thread.
"""
from __future__ import annotations

import math
import os
import statistics
import sys
import time

os.environ.setdefault("LUCID_NUM_THREADS", "1")
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import numpy as np  # noqa: E402

from lucid_codegen.kernels import elementwise  # noqa: E402
from lucid_codegen.jit import llvm as jit
from lucid_codegen.kernels import reduction
from lucid_codegen.kernels import row_kernel
from lucid_codegen.kernels.elementwise import ElementwiseKernel  # noqa: E402
from lucid_codegen.kernels.reduction import ReductionKernel  # noqa: E402
from lucid_codegen.kernels.row_kernel import RowKernel  # noqa: E402
from lucid_ir.builder import GraphBuilder  # noqa: E402
from lucid_ir.passes import fuse  # noqa: E402

EMITTERS = (elementwise, reduction, row_kernel)


def _graph(shapes, dtype, body):
    b = GraphBuilder()
    vs = [b.input(s, dtype) for s in shapes]
    return b.build([body(b, *vs)])


def cases(dtype):
    rng = np.random.default_rng(0)
    big, small = 4 * 1024 * 1024, 64 * 1024
    arr = lambda *s: rng.standard_normal(s).astype(dtype)  # noqa: E731
    ew = lambda shapes, body: ElementwiseKernel.for_graph(_graph(shapes, dtype, body))  # noqa: E731
    red = lambda shapes, body: ReductionKernel.for_graph(_graph(shapes, dtype, body))  # noqa: E731
    x, y, z = arr(big), arr(big), arr(big)
    yield "sigmoid(x*y+z) 4M", ew([(big,)] * 3, lambda b, p, q, r: b.emit(
        "sigmoid", b.emit("add", b.emit("mul", p, q), r))), [x, y, z]
    s = arr(small)
    yield "exp 64K", ew([(small,)], lambda b, p: b.emit("exp", p)), [s]
    yield "tanh 64K", ew([(small,)], lambda b, p: b.emit("tanh", p)), [s]
    yield "GELU and its derivative 64K", ElementwiseKernel.for_graph(_gelu_and_derivative(small, dtype)), [s]
    yield "x*y+b (256,256)+(256,)", ew([(256, 256), (256, 256), (256,)], lambda b, p, q, r: b.emit(
        "add", b.emit("mul", p, q), r)), [arr(256, 256), arr(256, 256), arr(256)]
    yield "transposed add (512,512)", ew([(512, 512), (512, 512)], lambda b, p, q: b.emit("add", p, q)), \
        [arr(512, 512).T, arr(512, 512)]
    yield "column sum (16384,256)", red([(16384, 256)], lambda b, p: b.emit("sum", p, axes=(0,))), \
        [arr(16384, 256)]
    yield "row sum exp (4096,1000)", red([(4096, 1000)], lambda b, p: b.emit(
        "sum", b.emit("exp", p), axes=(1,))), [arr(4096, 1000)]
    yield "dot 4M", red([(big,), (big,)], lambda b, p, q: b.emit("sum", b.emit("mul", p, q), axes=(0,))), [x, y]
    for shape in ((64, 1000), (4096, 1000)):
        g = _graph([shape], dtype, lambda b, p: _softmax(b, p))
        (node,) = [n for n in fuse.run(g).nodes if getattr(n, "kind", None) == "rows"]
        yield f"softmax {shape}", RowKernel.for_graph(node.body), [arr(*shape)]
    g = _graph([(64, 256)], dtype, lambda b, p: _layer_norm(b, p))
    (node,) = [n for n in fuse.run(g).nodes if getattr(n, "kind", None) == "rows"]
    yield "layer norm (64,256)", RowKernel.for_graph(node.body), [arr(64, 256)]


def _gelu_and_derivative(n, dtype):
    """GELU's forward loop in a compiled training step: x/2 · erfc(-x/√2) and its
    derivative erfc/2 + x/2 · e^{-u²} · (-2/√π) · (-1/√2), whose e^{-u²} is the one erfc
    computes inside (the emitters count on GVN to keep one)."""
    b = GraphBuilder()
    x = b.input((n,), dtype)
    c = b.constant(-math.sqrt(0.5), dtype=dtype)
    u = b.emit("mul", x, c)
    e = b.emit("erfc", u)
    half = b.emit("mul", x, b.constant(0.5, dtype=dtype))
    gauss = b.emit("exp", b.emit("neg", b.emit("mul", u, u)))
    slope = b.emit("mul", b.emit("mul", b.emit("mul", half, gauss), b.constant(-2 / math.sqrt(math.pi), dtype=dtype)), c)
    return b.build([b.emit("mul", half, e), b.emit("add", slope, b.emit("mul", e, b.constant(0.5, dtype=dtype)))])


def _softmax(b, x):
    e = b.emit("exp", b.emit("sub", x, b.emit("max", x, axes=(1,), keepdims=True)))
    return b.emit("div", e, b.emit("sum", e, axes=(1,), keepdims=True))


def _layer_norm(b, x):
    n = x.type.shape[1]
    mean = b.emit("div", b.emit("sum", x, axes=(1,), keepdims=True), b.constant(float(n), dtype=x.type.dtype))
    d = b.emit("sub", x, mean)
    var = b.emit("div", b.emit("sum", b.emit("mul", d, d), axes=(1,), keepdims=True), b.constant(float(n), dtype=x.type.dtype))
    return b.emit("div", d, b.emit("sqrt", b.emit("add", var, b.constant(1e-5, dtype=x.type.dtype))))


def _compiled_with(pipeline, kernel, arrays):
    """The kernel's outputs for ``arrays`` and its compiled functions and plans, compiled
    with ``pipeline`` (the emitters' ``loop_pipeline`` replaced meanwhile)."""
    saved = [module.loop_pipeline for module in EMITTERS]
    for module in EMITTERS:
        module.loop_pipeline = lambda: pipeline
    try:
        kernel._fns, kernel._plans = {}, {}
        outs = [np.array(o) for o in kernel(arrays)]
        return outs, (kernel._fns, kernel._plans)
    finally:
        for module, fn in zip(EMITTERS, saved):
            module.loop_pipeline = fn


def compare(kernel, arrays, reps):
    """Median seconds per call with each pipeline's code, and whether both gave the same bits."""
    states, outs = {}, {}
    for name, pipeline in (("full", jit.FULL), ("cheap", jit.loop_pipeline())):
        outs[name], states[name] = _compiled_with(pipeline, kernel, arrays)
    same = all(np.array_equal(a, b, equal_nan=True) for a, b in zip(outs["full"], outs["cheap"]))
    times = {"full": [], "cheap": []}
    inner = max(1, reps // 10)
    for _ in range(10):
        for name in ("full", "cheap"):
            kernel._fns, kernel._plans = states[name]
            start = time.perf_counter()
            for _ in range(inner):
                kernel(arrays)
            times[name].append((time.perf_counter() - start) / inner)
    return statistics.median(times["full"]), statistics.median(times["cheap"]), same


def main(argv=None):
    quick = "--quick" in (argv if argv is not None else sys.argv[1:])
    print(f"loop kernels, full vs cheap LLVM pipeline, 1 thread; load average {os.getloadavg()[0]:.2f}")
    print(f"{'case':34s} {'dtype':8s} {'full us':>9s} {'cheap us':>9s} {'cheap/full':>10s} same bits")
    ratios = []
    for dtype in ("float32", "float64"):
        for name, kernel, arrays in cases(dtype):
            tf, tc, same = compare(kernel, arrays, 20 if quick else 60)
            ratios.append(tc / tf)
            print(f"{name:34s} {dtype:8s} {tf * 1e6:9.1f} {tc * 1e6:9.1f} {tc / tf:10.2f} {same}")
    geo = float(np.exp(np.mean(np.log(ratios))))
    print(f"geometric mean cheap/full: {geo:.3f}; load average {os.getloadavg()[0]:.2f}")
    return geo


if __name__ == "__main__":
    main()
