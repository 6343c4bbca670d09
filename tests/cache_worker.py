"""Helper for tests/test_cache.py: load (or compile) one tiny kernel in a fresh process.

Usage: python tests/cache_worker.py KEY ADDEND [START_AT [BUILD_SLEEP]]

Builds ``f(x) = x + ADDEND`` under cache key KEY (the cache directory comes from
the environment), waits until the wall-clock time START_AT if given (so several
processes start together), sleeps BUILD_SLEEP seconds inside ``build()`` (to make
concurrent compiles overlap), calls the kernel and prints one JSON line:
``{"result": f(1), "stats": ..., "seconds": time of load_or_compile}``.
"""
from __future__ import annotations

import ctypes
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import llvmlite.ir as ir  # noqa: E402

from lucid_codegen.jit import cache  # noqa: E402
from lucid_codegen.jit.target import host_target  # noqa: E402


def make_module(addend: int) -> ir.Module:
    m = ir.Module("cache_worker")
    i64 = ir.IntType(64)
    f = ir.Function(m, ir.FunctionType(i64, [i64]), "kernel")
    b = ir.IRBuilder(f.append_basic_block())
    b.ret(b.add(f.args[0], ir.Constant(i64, addend)))
    return m


def main() -> None:
    key, addend = sys.argv[1], int(sys.argv[2])
    start_at = float(sys.argv[3]) if len(sys.argv) > 3 else 0.0
    build_sleep = float(sys.argv[4]) if len(sys.argv) > 4 else 0.0
    host_target()  # process set-up (LLVM target init), not part of the cache's cost
    cache._pipeline_stamp()

    def build() -> ir.Module:
        time.sleep(build_sleep)
        return make_module(addend)

    delay = start_at - time.time()
    if delay > 0:
        time.sleep(delay)
    t0 = time.perf_counter()
    lib = cache.load_or_compile(key, build, ["kernel"])
    seconds = time.perf_counter() - t0
    fn = ctypes.CFUNCTYPE(ctypes.c_int64, ctypes.c_int64)(lib.address("kernel"))
    print(json.dumps({"result": fn(1), "stats": cache.stats(), "seconds": seconds}))


if __name__ == "__main__":
    main()
