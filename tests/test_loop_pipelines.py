"""The loop kernels' cheap LLVM pipeline (jit.LOOPS) computes the same bytes as the full
one (jit.FULL): a table of elementwise, reduction, row and index ops, forward, backward
and compiled, on shapes with 0, 1, primes, broadcasts and transposed views, in float32
and float64 (tests/loop_pipeline_worker.py), run in two fresh processes, one per pipeline."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from lucid_codegen.jit import cache
from lucid_codegen.jit import llvm as jit

WORKER = Path(__file__).resolve().parent / "loop_pipeline_worker.py"


def test_loop_kernels_are_byte_identical_whatever_the_pipeline(tmp_path, monkeypatch):
    procs = {}
    for opt in ("full", "loops"):
        env = dict(os.environ, LUCID_LOOP_OPT=opt, LUCID_CACHE_DIR=str(tmp_path / opt))
        procs[opt] = subprocess.Popen([sys.executable, str(WORKER)], env=env, text=True,
                                      stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    results = {}
    for opt, proc in procs.items():
        out, err = proc.communicate(timeout=900)
        assert proc.returncode == 0, err
        results[opt] = json.loads(out.strip().splitlines()[-1])
        # each process compiled its own kernels, with its own pipeline
        monkeypatch.setenv("LUCID_CACHE_DIR", str(tmp_path / opt))
        metas = [cache.entry_metadata(e.name) for e in cache.list_entries()]
        # loop kernels: not a plan's bundle, nor the runtime's own code (spin-waits, the
        # program runner, the eager trampolines: always the cheap pipeline)
        opts = {m["opt"] for m in metas if m["kind"] not in ("bundle", "spin", "jobs", "eager_call")}
        assert (jit.LOOPS.tag() in opts) == (opt == "loops"), opts
    full, loops = results["full"], results["loops"]
    assert len(full) > 400 and full.keys() == loops.keys()
    assert {k for k in full if full[k] != loops[k]} == set()


def test_cheap_pipeline_computes_erfcs_exponential_once_beside_the_graphs_own():
    """A GELU loop that also writes its derivative asks for e^{-u²} twice: inside erfc
    (``vector_erf._gaussian``) and as the graph's ``exp(neg(mul(u, u)))``. The emitters
    write both identically and count on GVN; instruction combining rewrites the graph's
    ``-(u·u)`` into ``u·(-u)`` (its product has one use), so GVN must run before it too.
    One ``llvm.rint`` (the exponential's reduction) per loop body, as the full pipeline."""
    import math
    from lucid_codegen.kernels.elementwise import ElementwiseKernel
    from lucid_ir.builder import GraphBuilder
    b = GraphBuilder()
    x = b.input((64,), "float32")
    u = b.emit("mul", x, b.constant(-math.sqrt(0.5)))
    e = b.emit("erfc", u)
    gauss = b.emit("exp", b.emit("neg", b.emit("mul", u, u)))
    graph = b.build([b.emit("mul", x, e), b.emit("add", b.emit("mul", x, gauss), e)])
    module = ElementwiseKernel.for_graph(graph).llvm_module()
    counts = {}
    for name, pipeline in (("full", jit.FULL), ("loops", jit.LOOPS)):
        ref = jit.prepare_module(module)
        jit.optimise(ref, *pipeline[:3], passes=pipeline.passes)
        counts[name] = sum("call" in line and "@llvm.rint." in line for line in str(ref).splitlines())
    assert counts["loops"] == counts["full"] > 0, counts
