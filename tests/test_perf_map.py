"""``LUCID_PERF_MAP=1``: every linked kernel's functions named in /tmp/perf-<pid>.map,
the file ``perf report`` reads for JIT code (lucid_codegen/jit/perf_map.py)."""
from __future__ import annotations

import ctypes
import os
import uuid

import llvmlite.ir as ir

from lucid_codegen.jit import cache, perf_map


def _module():
    m = ir.Module("k")
    i64 = ir.IntType(64)
    helper = ir.Function(m, ir.FunctionType(i64, [i64]), "helper")
    helper.linkage = "internal"
    helper.attributes.add("noinline")
    b = ir.IRBuilder(helper.append_basic_block())
    b.ret(b.mul(helper.args[0], ir.Constant(i64, 3)))
    f = ir.Function(m, ir.FunctionType(i64, [i64]), "thrice_plus_one")
    b = ir.IRBuilder(f.append_basic_block())
    b.ret(b.add(b.call(helper, [f.args[0]]), ir.Constant(i64, 1)))
    return m


def test_each_linked_function_is_named_with_its_kernel_label(monkeypatch, tmp_path):
    monkeypatch.setenv("LUCID_PERF_MAP", "1")
    monkeypatch.setenv("LUCID_CACHE_DIR", str(tmp_path))
    path = perf_map.map_path()
    before = os.path.getsize(path) if os.path.exists(path) else 0
    key = f"test:perf-map:{uuid.uuid4().hex}"
    lib = cache.load_or_compile(key, _module, ["thrice_plus_one"], label="perf map test kernel")
    address = lib.address("thrice_plus_one")
    assert ctypes.CFUNCTYPE(ctypes.c_int64, ctypes.c_int64)(address)(5) == 16
    with open(path) as f:
        f.seek(before)
        new = [line for line in f.read().splitlines() if line]
    entries = [(int(s, 16), int(n, 16), name) for s, n, name in (line.split(" ", 2) for line in new)]
    mine = [e for e in entries if e[2].endswith("perf map test kernel")]
    assert len(mine) == 2, new                     # the exported function and its helper
    top = [e for e in mine if e[2].startswith("thrice_plus_one.")]
    assert len(top) == 1 and top[0][0] == address and top[0][1] > 0
    helper = [e for e in mine if e[2].startswith("helper")]
    assert helper and helper[0][0] != address and helper[0][1] > 0


def test_nothing_is_written_when_the_variable_is_off(monkeypatch, tmp_path):
    monkeypatch.setenv("LUCID_PERF_MAP", "0")
    monkeypatch.setenv("LUCID_CACHE_DIR", str(tmp_path))
    path = perf_map.map_path()
    before = os.path.getsize(path) if os.path.exists(path) else 0
    cache.load_or_compile(f"test:perf-map:{uuid.uuid4().hex}", _module, ["thrice_plus_one"], label="off")
    assert (os.path.getsize(path) if os.path.exists(path) else 0) == before


def test_an_object_that_is_not_elf64_names_nothing():
    assert perf_map.parse_functions(b"\x7fELF" + b"\x01" * 60) == []
    assert perf_map.map_lines(b"junk", {"f": 1}) == []
