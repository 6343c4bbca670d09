"""The shared GEMM core (lucid_codegen/gemm/core.py): every GEMM variant of a dtype and
blocking links against one compiled core instead of compiling its own packing routines
and micro-kernels; variants still compute what they did, also from a disk cache in a
fresh process (where the core must be loaded before the variant's object links)."""
import os
import subprocess
import sys

import numpy as np
import pytest

from lucid_codegen.jit import cache
from lucid_codegen.gemm.kernel import GemmSpec, build_gemm_module
from lucid_codegen.gemm.call import Gemm
from lucid_codegen.gemm.core import LAZY, _kind, build_core_module, core_key, core_parts, core_symbols, ensure_core
from gemm_specs import activation, chain_spec, gated

ROOT = os.path.join(os.path.dirname(__file__), "..")


def _exported(module) -> set:
    return {fn.name for fn in module.functions if not fn.is_declaration and fn.linkage != "internal"}


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_core_symbols_are_what_the_core_module_defines(dtype):
    blk = GemmSpec(dtype).blocking
    assert set(core_symbols(dtype, blk)) == _exported(build_core_module(dtype, blk))


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_variants_declare_the_core_with_the_types_its_module_defines(dtype):
    """declare_core writes the core's signatures down (not building its IR): they must be
    the built functions' types, or a variant would call the core with wrong arguments."""
    spec = GemmSpec(dtype)
    core = build_core_module(dtype, spec.blocking)
    built = {fn.name: str(fn.function_type) for fn in core.functions
             if fn.name in _exported(core) and not fn.name.endswith(".driver_slots")}  # (the core's own)
    declared = {fn.name: str(fn.function_type) for fn in build_gemm_module(spec).functions
                if fn.name in built}
    assert declared == built


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_the_core_parts_partition_it_and_each_part_module_defines_its_part(dtype):
    blk = GemmSpec(dtype).blocking
    parts = core_parts(dtype, blk)
    assert len(parts) > 1 and all(parts)
    assert sorted(n for part in parts for n in part) == sorted(core_symbols(dtype, blk))
    keys = {core_key(dtype, blk, part) for part in parts}
    assert len(keys) == len(parts) and core_key(dtype, blk) not in keys
    for part in parts:
        assert _exported(build_core_module(dtype, blk, part)) == set(part)


def test_variants_declare_the_core_instead_of_defining_it():
    spec = chain_spec("float32", bias=True, epilogue="relu")
    module = build_gemm_module(spec)
    names = {n for n in core_symbols(spec.dtype, spec.blocking) if not n.endswith(".driver_slots")}
    declared = {fn.name for fn in module.functions if fn.is_declaration}
    assert names <= declared
    defined = {fn.name for fn in module.functions if not fn.is_declaration}
    assert not any(".ukr" in n or ".pack_b" in n or ".dots" in n or ".strip" in n for n in defined)


def test_the_core_is_compiled_once_for_all_variants(tmp_path, monkeypatch):
    monkeypatch.setenv("LUCID_CACHE_DIR", str(tmp_path))
    code = (
        "import numpy as np\n"
        "from lucid_codegen.jit import cache\n"
        "from lucid_codegen.gemm.call import Gemm, GemmSpec\n"
        "from gemm_specs import chain_spec, gated\n"
        "rng = np.random.default_rng(0)\n"
        "a = rng.standard_normal((37, 29)).astype(np.float32)\n"
        "b = rng.standard_normal((29, 41)).astype(np.float32)\n"
        "bias = rng.standard_normal(41).astype(np.float32)\n"
        "outs = []\n"
        "for spec in [GemmSpec('float32'), chain_spec('float32', bias=True, epilogue='relu'),\n"
        "             chain_spec('float32', gate=True)]:\n"
        "    c = np.empty((37, 41), np.float32)\n"
        "    kw = {'bias': bias} if spec.bias else {'residual': a @ b} if gated(spec) else {}\n"
        "    Gemm(spec)(a, b, c, **kw)\n"
        "    outs.append(float(c.astype(np.float64).sum()))\n"
        "labels = sorted(cache.entry_metadata(e.name)['label'] for e in cache.list_entries())\n"
        "gemm = [l for l in labels if l.startswith('gemm')]\n"
        "print(len(gemm), sum(l.startswith('gemm core') for l in gemm), cache.stats()['compiles'], outs)\n")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([ROOT, os.path.dirname(__file__)]), LUCID_CACHE_DIR=str(tmp_path))
    run = lambda: subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                                 text=True, check=True).stdout.split(maxsplit=3)
    cold, warm = run(), run()
    parts = str(sum(_kind(p) not in LAZY for p in core_parts("float32", GemmSpec("float32").blocking)))
    # the core's parts and three variants, one core (37 x 41 runs no lazy part)
    assert cold[:2] == [str(3 + int(parts)), parts], cold
    assert warm[2] == "0", warm              # all from disk: the core linked first
    assert cold[3] == warm[3]
    rng = np.random.default_rng(0)
    a = rng.standard_normal((37, 29)).astype(np.float32)
    b = rng.standard_normal((29, 41)).astype(np.float32)
    bias = rng.standard_normal(41).astype(np.float32)
    ab = a.astype(np.float64) @ b
    want = [ab.sum(), np.maximum(ab + bias, 0).sum(), np.where(ab > 0, ab, 0).sum()]
    np.testing.assert_allclose(eval(cold[3]), want, rtol=1e-4)


def test_ensure_core_is_idempotent_and_keyed_by_dtype_and_blocking():
    f32, f64 = GemmSpec("float32"), GemmSpec("float64")
    ensure_core(f32.dtype, f32.blocking)
    compiles = cache.stats()["compiles"]
    ensure_core(f32.dtype, f32.blocking)
    assert cache.stats()["compiles"] == compiles
    assert core_key("float32", f32.blocking) != core_key("float64", f64.blocking)
    assert core_symbols("float32", f32.blocking)[0] != core_symbols("float64", f64.blocking)[0]


@pytest.mark.parametrize("shape", [(1, 1, 1), (2, 7, 3), (13, 31, 17), (97, 300, 61)])
def test_variants_sharing_the_core_match_numpy(shape):
    M, K, N = shape
    rng = np.random.default_rng(M * K * N)
    for dtype in ("float32", "float64"):
        a = rng.standard_normal((M, K)).astype(dtype)
        b = rng.standard_normal((N, K)).astype(dtype).T  # non-contiguous view
        bias = rng.standard_normal(N).astype(dtype)
        for spec in (GemmSpec(dtype), chain_spec(dtype, bias=True, epilogue="tanh")):
            out = np.empty((M, N), dtype)
            Gemm(spec)(a, b, out, bias=bias if spec.bias else None)
            want = a.astype(np.float64) @ b
            if spec.bias:
                want = np.tanh(want + bias)
            np.testing.assert_allclose(out, want, rtol=1e-4, atol=1e-4)


_LAZY_CODE = """
import sys, numpy as np
from lucid_codegen.jit import cache
from lucid_codegen.gemm.call import Gemm, GemmSpec
import lucid, lucid.nn.functional as F
rng = np.random.default_rng(0)

def lazy_entries():
    labels = [cache.entry_metadata(e.name)['label'] for e in cache.list_entries()]
    return sorted(k for l in labels if l.startswith('gemm core') for k in ('dots', 'strip') if ' ' + k in l)

out = []
g = Gemm(GemmSpec('float32'))
w = rng.standard_normal((41, 29)).astype(np.float32)
for M, N in [(37, 41), (37, 3), (8, 41), (1, 41)]:     # general, dots (N), dots (M), dots / strips
    a = rng.standard_normal((M, 29)).astype(np.float32)
    c = np.empty((M, N), np.float32)
    g(a, w[:N].T, c)          # B = W.T: the dot path's layout
    c2 = np.empty((M, N), np.float32)
    g(a, np.ascontiguousarray(w[:N].T), c2)   # row-major B: the few-rows path's
    out.append([float(np.abs(c - a.astype(np.float64) @ w[:N].T).max()),
                float(np.abs(c2 - a.astype(np.float64) @ w[:N].T).max())])
    out.append(lazy_entries())
x = lucid.tensor(rng.standard_normal((1, 29)).astype(np.float32))   # eager, a new variant
y = F.linear(x, lucid.tensor(w), lucid.tensor(w[:, 0].copy()))
out.append(float(np.abs(y.numpy() - (x.numpy().astype(np.float64) @ w.T + w[:, 0])).max()))
print(repr(out))
"""


def test_lazy_core_parts_are_compiled_for_the_first_shape_that_may_run_them(tmp_path):
    """The small path's dots and the few-rows path's strips are compiled (and their
    addresses written into the driver's slots) only once a shape may take them, in a
    fresh process after the core's other parts linked: their results are right, cold
    and from disk."""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([ROOT, os.path.dirname(__file__)]), LUCID_CACHE_DIR=str(tmp_path))
    runs = [eval(subprocess.run([sys.executable, "-c", _LAZY_CODE], env=env, capture_output=True, text=True,
                                check=True).stdout) for _ in range(2)]
    for out in runs:
        errors = [e for pair in out[0:8:2] for e in pair] + [out[8]]
        assert max(errors) < 1e-4, out
    cold, warm = runs
    assert cold[1] == [] and cold[3] == ["dots"] and cold[5] == ["dots"] and cold[7] == ["dots", "strip"], cold
    assert warm[1:8:2] == [["dots", "strip"]] * 4  # (the entries are on disk from the start)
