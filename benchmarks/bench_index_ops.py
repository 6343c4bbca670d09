"""gather / concat / scatter_add (compiled plans, native programs) vs numpy, float32, interleaved medians;
OPENBLAS_THREAD_TIMEOUT=4 set. Run: PYTHONPATH=. python benchmarks/bench_index_ops.py"""
import os, time
os.environ.setdefault("OPENBLAS_THREAD_TIMEOUT", "4")
import numpy as np
from lucid_ir.builder import GraphBuilder
from lucid.compiler import compile_graph
rng = np.random.default_rng(0)
x = rng.standard_normal((2048, 256)).astype(np.float32)
idx = rng.integers(0, 2048, size=(2048, 256))
y = rng.standard_normal((2048, 128)).astype(np.float32)
def plan(build, *arrays):
    b = GraphBuilder(); ins = [b.input(a.shape, str(a.dtype)) for a in arrays]
    cg = compile_graph(b.build([build(b, *ins)])); cg(list(arrays)); cg(list(arrays)); return cg
cases = {
 "gather axis0": (plan(lambda b, v, i: b.emit("gather", v, i, axis=0), x, idx), [x, idx], lambda: np.take_along_axis(x, idx, 0)),
 "concat axis1": (plan(lambda b, u, v: b.emit("concat", u, v, axis=1), x, y), [x, y], lambda: np.concatenate([x, y], 1)),
 "scatter_add axis0": (plan(lambda b, i, s: b.emit("scatter_add", i, s, axis=0, shape=(2048, 256)), idx, x), [idx, x],
                       lambda: (lambda o: (np.add.at(o, (idx, np.arange(256)[None, :]), x), o))(np.zeros((2048, 256), np.float32))),
}
for name, (cg, arrays, ref) in cases.items():
    tl, tn = [], []
    for _ in range(15):
        t = time.perf_counter(); cg(arrays); tl.append(time.perf_counter() - t)
        t = time.perf_counter(); ref(); tn.append(time.perf_counter() - t)
    print(f"{name:18s} lucid {np.median(tl)*1e3:7.3f} ms  numpy {np.median(tn)*1e3:7.3f} ms  ratio numpy/lucid {np.median(tn)/np.median(tl):5.2f}")
