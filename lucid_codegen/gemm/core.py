"""The GEMM core: the code every GEMM variant shares, compiled once per dtype and blocking.

A GEMM kernel (gemm.py) is specialised on its epilogue (bias, activation, residual,
gate, accumulation), but most of its machine code does not depend on that: the packing
routines, the register-tiled micro-kernels, the small path's dot products and the
few-rows path's strips only depend on the dtype and the blocking. Compiled into every
variant, they were about two thirds of each variant's LLVM time (a training step's
forward and backward use four or more variants). Here they are one module, the core,
compiled (or loaded from the kernel cache) once per process; its functions are made
known to the process's linker (``llvmlite.binding.add_symbol``), and each variant's
module only declares them (``declare_core``), so its object file links against the
loaded core.

>>> from lucid_codegen.gemm.kernel import GemmSpec
>>> spec = GemmSpec("float32")
>>> names = core_symbols(spec.dtype, spec.blocking)
>>> names[0].startswith("lucid_gemmcore_32_") and names[0].endswith(".pack_a")
True
>>> ensure_core(spec.dtype, spec.blocking)   # compiled or loaded once, then a no-op
>>> ensure_core(spec.dtype, spec.blocking)

Names in the core carry the blocking (``lucid_gemmcore_32_W8NV2MR6...``); a variant's
cache key includes the core's generator sources (gemm.py's ``GENERATOR`` names this
file and the builders it calls), so a variant never links against a core of other code.
"""
from __future__ import annotations

import functools
import threading
from dataclasses import dataclass

import llvmlite.binding as llvm
import llvmlite.ir as ir

from lucid_codegen.jit.cache import load_or_compile, precompile, source_stamp
from lucid_codegen.gemm.microkernel import Blocking, Ctx, build_microkernel
from lucid_codegen.gemm.pack import build_pack_a, build_pack_b
from lucid_codegen.gemm.rows import _ROW_GROUPS, build_strip_kernels
from lucid_codegen.gemm.small import _row_groups, build_dots_kernels

__all__ = ["CoreFunctions", "core_symbols", "build_core_module", "declare_core", "ensure_core", "precompile_core",
           "sub_mr", "SPEED_LEVEL"]

GENERATOR = ("gemm.core", "gemm.microkernel", "gemm.pack", "gemm.small", "gemm.rows", "kernels.vector_math")
SPEED_LEVEL = 2  # the GEMM modules' pipeline: vector code explicit, so no vectorizers; level 2
                 # gives the same machine code as 3, faster


@dataclass(frozen=True)
class CoreFunctions:
    """The core's functions in one module (defined there, or declared in a variant's)."""

    pack_a: ir.Function
    pack_b: ir.Function
    ukrs: dict      # (rows, vectors, strided) -> micro-kernel
    dots: dict      # rows -> small-path dot kernel
    strips: dict    # rows -> few-rows strip kernel


def sub_mr(blk: Blocking) -> int:
    """Rows of the remainder micro-kernel (a divisor of MR)."""
    for d in (4, 3, 2, 1):
        if blk.MR % d == 0 and blk.MR // d >= 2:
            return d
    return blk.MR


def _ukr_shapes(blk: Blocking) -> list:
    """(rows, vectors, strided, unroll) of every micro-kernel the driver calls: full tiles,
    the row remainder, row-major A read in place; each full width and one vector wide."""
    shapes = []
    for mr, strided in ((blk.MR, False), (sub_mr(blk), False), (blk.MR, True)):
        for nv in sorted({blk.NV, 1}, reverse=True):
            if not any(s[:3] == (mr, nv, strided) for s in shapes):
                unroll = 1 if strided else blk.UNROLL if (mr, nv) == (blk.MR, blk.NV) else 2
                shapes.append((mr, nv, strided, unroll))
    return shapes


def _prefix(dtype: str, blk: Blocking) -> str:
    return f"lucid_gemmcore_{dtype[-2:]}_{blk.tag()}"


def _ukr_name(prefix: str, mr: int, nv: int, strided: bool) -> str:
    return f"{prefix}.ukr{mr}x{nv}{'s' if strided else ''}"


def core_symbols(dtype: str, blk: Blocking) -> list[str]:
    """The names of the core's functions (without building its IR)."""
    p = _prefix(dtype, blk)
    c = Ctx(ir.Module("names"), dtype, blk)
    return ([f"{p}.pack_a", f"{p}.pack_b"]
            + [_ukr_name(p, mr, nv, s) for mr, nv, s, _ in _ukr_shapes(blk)]
            + [f"{p}.dots{r}" for r in _row_groups(c)]
            + [f"{p}.strip{r}" for r in _ROW_GROUPS])


def _build_functions(c: Ctx, dtype: str) -> CoreFunctions:
    p = _prefix(dtype, c.blk)
    ukrs = {(mr, nv, s): build_microkernel(c, _ukr_name(p, mr, nv, s), MR=mr, NV=nv, U=u, strided_a=s)
            for mr, nv, s, u in _ukr_shapes(c.blk)}
    return CoreFunctions(build_pack_a(c, f"{p}.pack_a"), build_pack_b(c, f"{p}.pack_b"), ukrs,
                         build_dots_kernels(c, p), build_strip_kernels(c, p))


def _all(fns: CoreFunctions) -> list:
    return [fns.pack_a, fns.pack_b, *fns.ukrs.values(), *fns.dots.values(), *fns.strips.values()]


def build_core_module(dtype: str, blk: Blocking) -> ir.Module:
    """The core as an LLVM module exporting ``core_symbols(dtype, blk)``."""
    m = ir.Module(name=_prefix(dtype, blk))
    fns = _build_functions(Ctx(m, dtype, blk), dtype)
    for fn in _all(fns):
        fn.linkage = "external"
    return m


@functools.lru_cache(maxsize=None)
def _core_types(dtype: str, blk: Blocking) -> dict:
    """name -> function type of each core function (from its IR, built once)."""
    m = build_core_module(dtype, blk)
    return {fn.name: fn.function_type for fn in m.functions}


def declare_core(c: Ctx, dtype: str) -> CoreFunctions:
    """The core's functions declared (not defined) in the variant module ``c.m``."""
    types = _core_types(dtype, c.blk)
    p = _prefix(dtype, c.blk)

    def declare(name):
        return ir.Function(c.m, types[name], name)
    return CoreFunctions(
        declare(f"{p}.pack_a"), declare(f"{p}.pack_b"),
        {(mr, nv, s): declare(_ukr_name(p, mr, nv, s)) for mr, nv, s, _ in _ukr_shapes(c.blk)},
        {r: declare(f"{p}.dots{r}") for r in _row_groups(c)},
        {r: declare(f"{p}.strip{r}") for r in _ROW_GROUPS})


def core_key(dtype: str, blk: Blocking) -> str:
    return f"gemmcore:{dtype}:{blk.tag()}:src{source_stamp(*GENERATOR)}:O{SPEED_LEVEL}nv"


_LOADED: dict = {}   # (dtype, blocking) -> the core's LoadedLibrary (kept alive)
_LOCK = threading.Lock()


def ensure_core(dtype: str, blk: Blocking) -> None:
    """Compile or load the core for (dtype, blocking) and make its functions known to the
    process's linker, once; a variant's object file can be loaded after this."""
    if (dtype, blk) in _LOADED:
        return
    with _LOCK:
        if (dtype, blk) in _LOADED:
            return
        names = core_symbols(dtype, blk)
        lib = load_or_compile(core_key(dtype, blk), lambda: build_core_module(dtype, blk), names,
                              label=f"gemm core {dtype} {blk.tag()}", kind="gemm",
                              speed_level=SPEED_LEVEL, vectorize=False)
        for name in names:
            llvm.add_symbol(name, lib.address(name))
        _LOADED[(dtype, blk)] = lib


def precompile_core(dtype: str, blk: Blocking) -> None:
    """The core's object file compiled (or found on disk) without linking it
    (``cache.precompile``): for the compile pool, alongside the variants' objects."""
    if (dtype, blk) not in _LOADED:
        precompile(core_key(dtype, blk), lambda: build_core_module(dtype, blk), core_symbols(dtype, blk),
                   label=f"gemm core {dtype} {blk.tag()}", kind="gemm", speed_level=SPEED_LEVEL,
                   vectorize=False)
