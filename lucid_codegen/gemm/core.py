"""The GEMM core: the code every GEMM variant shares, compiled once per dtype and blocking.

A GEMM kernel (gemm.py) is specialised on its epilogue (bias, activation, residual,
gate, accumulation), but most of its machine code does not depend on that: the packing
routines, the register-tiled micro-kernels, the small path's dot products and the
few-rows path's strips only depend on the dtype and the blocking. Compiled into every
variant, they were about two thirds of each variant's LLVM time (a training step's
forward and backward use four or more variants). Here they are the core, compiled (or
loaded from the kernel cache) once per process, as a few modules compiled in parallel
(``core_parts``); its functions are made known to the process's linker
(``llvmlite.binding.add_symbol``), and each variant's module only declares them
(``declare_core``), so its object file links against the loaded core.

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

import ctypes
import dataclasses
import functools
import threading
from dataclasses import dataclass

import llvmlite.binding as llvm
import llvmlite.ir as ir

from lucid_codegen.jit.cache import load_or_compile, precompile, source_stamp
from lucid_codegen.jit.llvm import gemm_pipeline
from lucid_codegen.gemm.microkernel import I1, I8, I32, I64, Blocking, Ctx, Slot, build_microkernel, store_type
from lucid_codegen.gemm.driver import build_generic_batched, build_generic_driver, driver_args, sub_mr
from lucid_codegen.gemm.pack import build_pack_a, build_pack_b
from lucid_codegen.gemm.rows import _ROW_GROUPS, ROWS_M, _build_strip as build_strip
from lucid_codegen.gemm.small import SMALL_M, SMALL_N, _build_dots as build_dots, _row_groups

__all__ = ["CONTROL", "CoreFunctions", "LAZY", "core_symbols", "core_parts", "build_core_module", "declare_core",
           "ensure_core", "ensure_paths", "paths_for", "precompile_core", "sub_mr"]

#: The core's parts compiled only once a GEMM's shape may take their path
#: (:func:`paths_for`): the small path's dot kernels and the few-rows path's strips,
#: about 40% of the core's LLVM time, which a training step of batch 64 never runs. The
#: driver calls them through its slot table (``microkernel.Slot``), which
#: :func:`ensure_paths` fills as it loads them; the driver only takes a path after its
#: caller ensured it (``call.Gemm.prepare``), so it never calls an empty slot.
LAZY = ("dots", "strip")
#: The core's parts of loop control and data movement, code-generated at LLVM's level 0
#: (``jit.GEMM_CONTROL``): the driver and the packing routines. The micro-kernels, dots
#: and strips, where the arithmetic is, keep level 3.
CONTROL = ("pack", "driver")
I8P = I8.as_pointer()

GENERATOR = ("gemm.core", "gemm.driver", "gemm.batched", "gemm.microkernel", "gemm.pack", "gemm.small", "gemm.rows",
             "kernels.loops", "kernels.vector_math")


@dataclass(frozen=True)
class CoreFunctions:
    """The core's functions in one module (defined there, or declared in a variant's)."""

    pack_a: ir.Function
    pack_b: ir.Function
    ukrs: dict      # (rows, vectors, strided) -> micro-kernel
    dots: dict      # rows -> small-path dot kernel
    strips: dict    # rows -> few-rows strip kernel
    driver: ir.Function | None = None   # the generic driver (gemm/driver.py ``build_generic_driver``)
    batched: ir.Function | None = None  # its batched entry (``build_generic_batched``)


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
            + [f"{p}.strip{r}" for r in _ROW_GROUPS] + [f"{p}.driver", f"{p}.driver_batched", f"{p}.driver_slots"])


def lazy_symbols(dtype: str, blk: Blocking) -> list[str]:
    """The functions of the :data:`LAZY` parts, in the order of the driver's slot table."""
    return [n for part in core_parts(dtype, blk) if _kind(part) in LAZY for n in part]


def paths_for(M: int, N: int, csa: int = 1, rsb: int = 1, csb: int = 1) -> tuple:
    """The :data:`LAZY` parts the driver may run for a C(M, N) of A's column stride
    ``csa`` and B's strides ``rsb``, ``csb`` (in elements; each 1 when not known, which
    gives every part the shape may take). The driver's own conditions
    (``small.small_condition``, ``rows.row_condition``) or more; a split across
    threads keeps a part's path (``call.split_spans``).

    >>> paths_for(64, 256), paths_for(8, 256), paths_for(1, 10), paths_for(64, 3)
    ((), ('dots',), ('dots', 'strip'), ('dots',))
    >>> paths_for(10, 256, csa=10, rsb=256)    # a weight gradient: A and B row-major
    ()
    """
    small = (M <= SMALL_M or N <= SMALL_N) and csa == 1 and rsb == 1
    return ("dots",) * small + ("strip",) * (M <= ROWS_M and csb == 1)


def _builders(c: Ctx, dtype: str) -> dict:
    """name -> a callable building that core function into ``c.m``, in the core's order."""
    p = _prefix(dtype, c.blk)
    out = {f"{p}.pack_a": lambda: build_pack_a(c, f"{p}.pack_a"),
           f"{p}.pack_b": lambda: build_pack_b(c, f"{p}.pack_b")}
    for mr, nv, s, u in _ukr_shapes(c.blk):
        name = _ukr_name(p, mr, nv, s)
        out[name] = functools.partial(build_microkernel, c, name, MR=mr, NV=nv, U=u, strided_a=s)
    for r, jb in _row_groups(c).items():
        out[f"{p}.dots{r}"] = functools.partial(build_dots, c, f"{p}.dots{r}", r, jb)
    for r, u in _ROW_GROUPS.items():
        out[f"{p}.strip{r}"] = functools.partial(build_strip, c, f"{p}.strip{r}", r, u)
    out[f"{p}.driver"] = lambda: _build_driver(c, dtype)
    out[f"{p}.driver_batched"] = lambda: build_generic_batched(
        c, f"{p}.driver_batched", c.m.globals.get(f"{p}.driver") or _build_driver(c, dtype))
    out[f"{p}.driver_slots"] = lambda: _slot_table(c, dtype)[1]
    return out


def _slot_table(c: Ctx, dtype: str) -> tuple:
    """(table, getter) in ``c.m``, made once: the driver's array of the :data:`LAZY`
    functions' addresses (``lazy_symbols``' order, null until loaded) and
    ``i8** driver_slots()``, which returns it."""
    p = _prefix(dtype, c.blk)
    if f"{p}.slots" not in c.m.globals:
        kind = ir.ArrayType(I8P, len(lazy_symbols(dtype, c.blk)))
        table = ir.GlobalVariable(c.m, kind, f"{p}.slots")
        table.linkage = "internal"
        table.initializer = ir.Constant(kind, None)
        getter = ir.Function(c.m, _core_types(c, dtype)[f"{p}.driver_slots"], f"{p}.driver_slots")
        b = ir.IRBuilder(getter.append_basic_block("entry"))
        b.ret(b.bitcast(table, I8P.as_pointer()))
    return c.m.globals[f"{p}.slots"], c.m.globals[f"{p}.driver_slots"]


def _build_driver(c: Ctx, dtype: str) -> ir.Function:
    """The generic driver, calling the core's other functions (defined in ``c.m`` when
    built before it, else declared: they are in other parts), the :data:`LAZY` ones
    through the slot table unless ``c.m`` defines them."""
    declared = declare_core(c, dtype, defined=True)
    table, _ = _slot_table(c, dtype)
    lazy, types = lazy_symbols(dtype, c.blk), _core_types(c, dtype)

    def slotted(fns: dict) -> dict:
        return {k: fn if not fn.is_declaration else Slot(table, lazy.index(fn.name), types[fn.name])
                for k, fn in fns.items()}
    declared = dataclasses.replace(declared, dots=slotted(declared.dots), strips=slotted(declared.strips))
    fn = build_generic_driver(c, f"{_prefix(dtype, c.blk)}.driver", declared)
    fn.linkage = "external"
    return fn


def build_core_module(dtype: str, blk: Blocking, names=None) -> ir.Module:
    """The core as an LLVM module exporting ``core_symbols(dtype, blk)``, or only
    ``names`` of them (one part of the core, see :func:`core_parts`)."""
    m = ir.Module(name=_prefix(dtype, blk))
    builders = _builders(Ctx(m, dtype, blk), dtype)
    for name in builders if names is None else names:
        builders[name]().linkage = "external"
    return m


def _core_types(c: Ctx, dtype: str) -> dict:
    """name -> function type of each core function, from the signatures the builders
    document (``build_pack_a``, ``build_microkernel``, ...): a variant declares the core
    without building its IR (60-90 ms of Python). tests/test_gemm_core.py checks them
    against the built module's."""
    p, P, void = _prefix(dtype, c.blk), c.P, ir.VoidType()
    types = {f"{p}.pack_a": ir.FunctionType(void, [I64, I64, P, I64, I64, P, I1]),
             f"{p}.pack_b": ir.FunctionType(void, [I64, I64, P, I64, I64, P, I1])}
    for mr, nv, s, _ in _ukr_shapes(c.blk):
        types[_ukr_name(p, mr, nv, s)] = ir.FunctionType(void, [I64, P, I64, P, I64, P] + [I64] * s)
    for r in _row_groups(c):
        types[f"{p}.dots{r}"] = ir.FunctionType(void, [I64, P, I64, I64, P, I64, I64, P])
    for r in _ROW_GROUPS:
        types[f"{p}.strip{r}"] = ir.FunctionType(void, [I64, P, I64, I64, I64, P, I64, I64, P])
    passed = [store_type(c).as_pointer(), I1]
    types[f"{p}.driver"] = ir.FunctionType(I32, driver_args(c) + passed)
    types[f"{p}.driver_batched"] = ir.FunctionType(I32, driver_args(c)[:17] + passed)
    types[f"{p}.driver_slots"] = ir.FunctionType(I8P.as_pointer(), [])
    return types





def declare_core(c: Ctx, dtype: str, defined: bool = False) -> CoreFunctions:
    """The core's functions declared (not defined) in the variant module ``c.m``;
    ``defined``: those ``c.m`` defines already are taken as they are (a core part)."""
    types = _core_types(c, dtype)
    p = _prefix(dtype, c.blk)

    def declare(name):
        if defined and name in c.m.globals:
            return c.m.globals[name]
        return ir.Function(c.m, types[name], name)
    return CoreFunctions(
        declare(f"{p}.pack_a"), declare(f"{p}.pack_b"),
        {(mr, nv, s): declare(_ukr_name(p, mr, nv, s)) for mr, nv, s, _ in _ukr_shapes(c.blk)},
        {r: declare(f"{p}.dots{r}") for r in _row_groups(c)},
        {r: declare(f"{p}.strip{r}") for r in _ROW_GROUPS},
        *((None, None) if defined else (declare(f"{p}.driver"), declare(f"{p}.driver_batched"))))


def core_parts(dtype: str, blk: Blocking) -> list[list[str]]:
    """The core's functions in the groups compiled as separate modules (in parallel on the
    compile pool, each a kernel-cache entry of its own): one per path of the driver --
    packing, micro-kernels, the small path's dots, the few-rows path's strips -- each
    about a quarter of the core's LLVM time (60-70 ms at 1 thread on Zen 3), where the
    whole core in one module was one 260 ms chain.

    >>> from lucid_codegen.gemm.kernel import GemmSpec
    >>> [len(part) for part in core_parts("float32", GemmSpec("float32").blocking)]
    [6, 3, 2, 2, 3]
    """
    names = core_symbols(dtype, blk)
    return [[n for n in names if n.rsplit(".", 1)[1].startswith(k)] for k in _KINDS]


#: (in the order the compile pool takes them: the longest first, the micro-kernels; the
#: :data:`CONTROL` parts, generated at level 0, last)
_KINDS = ("ukr", "dots", "strip", "pack", "driver")


def _kind(part: list[str]) -> str:
    """Which of ``_KINDS`` a part of :func:`core_parts` is."""
    return next(k for k in _KINDS if part[0].rsplit(".", 1)[1].startswith(k))


def core_key(dtype: str, blk: Blocking, part: list[str] | None = None) -> str:
    """The cache key of the core (its ``part``: some of its functions, see :func:`core_parts`)."""
    what = "" if part is None else ":" + ",".join(n.rsplit(".", 1)[1] for n in part)
    return f"gemmcore:{dtype}:{blk.tag()}{what}:src{source_stamp(*GENERATOR)}"


def _pipeline(part: list[str]):
    """The LLVM pipeline of one part of the core (:data:`CONTROL`)."""
    return gemm_pipeline(control=_kind(part) in CONTROL)


def _part_args(dtype: str, blk: Blocking, part: list[str]) -> tuple:
    """(key, build, symbols) of one part of the core in the kernel cache."""
    return core_key(dtype, blk, part), lambda: build_core_module(dtype, blk, part), part


def _label(dtype: str, blk: Blocking, part: list[str]) -> str:
    return f"gemm core {dtype} {blk.tag()} " + " ".join(n.rsplit(".", 1)[1] for n in part)


class _Loaded:
    """One (dtype, blocking)'s loaded core: its parts' libraries (kept alive), the
    address of the driver's slot table and which :data:`LAZY` parts are loaded."""

    def __init__(self, libs: list, slots: int):
        self.libs, self.slots, self.lazy = libs, slots, set()


_LOADED: dict = {}   # (dtype, blocking) -> _Loaded
_LOCK = threading.Lock()
_SLOTS_SIG = ctypes.CFUNCTYPE(ctypes.c_void_p)


def _link(dtype: str, blk: Blocking, part: list[str]):
    """Compile or load one part and make its functions known to the process's linker."""
    key, build, symbols = _part_args(dtype, blk, part)
    lib = load_or_compile(key, build, symbols, label=_label(dtype, blk, part), kind="gemm",
                          pipeline=_pipeline(part))
    for name in part:
        llvm.add_symbol(name, lib.address(name))
    return lib


def ensure_core(dtype: str, blk: Blocking) -> None:
    """Compile or load the core for (dtype, blocking) but its :data:`LAZY` parts and make
    its functions known to the process's linker, once; a variant's object file can be
    loaded after this. (Parts not yet compiled compile one after another here:
    gemm/call.py first compiles them in parallel, with :func:`precompile_core`'s tasks
    on the compile pool.)"""
    if (dtype, blk) in _LOADED:
        return
    with _LOCK:
        if (dtype, blk) in _LOADED:
            return
        libs = {_kind(part): _link(dtype, blk, part) for part in core_parts(dtype, blk) if _kind(part) not in LAZY}
        slots = _SLOTS_SIG(libs["driver"].address(f"{_prefix(dtype, blk)}.driver_slots"))()
        _LOADED[(dtype, blk)] = _Loaded(list(libs.values()), slots)


def ensure_paths(dtype: str, blk: Blocking, kinds) -> bool:
    """:func:`ensure_core`, then the :data:`LAZY` parts ``kinds`` (see :func:`paths_for`),
    each compiled or loaded once and its addresses written into the driver's slot table;
    whether every lazy part is now loaded (a caller then stops asking).

    >>> from lucid_codegen.gemm.kernel import GemmSpec
    >>> blk = GemmSpec("float32").blocking
    >>> ensure_paths("float32", blk, paths_for(1, 256))   # dots and strips: all of them
    True
    """
    core = _LOADED.get((dtype, blk))
    if core is None:
        ensure_core(dtype, blk)
        core = _LOADED[(dtype, blk)]
    if any(k not in core.lazy for k in kinds):
        with _LOCK:
            order = lazy_symbols(dtype, blk)
            for part in core_parts(dtype, blk):
                kind = _kind(part)
                if kind in kinds and kind not in core.lazy:
                    lib = _link(dtype, blk, part)
                    for name in part:
                        ctypes.c_void_p.from_address(core.slots + 8 * order.index(name)).value = lib.address(name)
                    core.libs.append(lib)
                    core.lazy.add(kind)
    return len(core.lazy) == len(LAZY)


def _precompile(dtype: str, blk: Blocking, part: list[str]) -> None:
    key, build, symbols = _part_args(dtype, blk, part)
    precompile(key, build, symbols, label=_label(dtype, blk, part), kind="gemm", pipeline=_pipeline(part))


def precompile_core(dtype: str, blk: Blocking, kinds=()) -> list:
    """Callables that compile the core's parts' object files (or find them on disk)
    without linking them (``cache.precompile``): for the compile pool, alongside the
    variants' objects; the :data:`LAZY` parts only when in ``kinds``; none for a part
    already loaded."""
    core = _LOADED.get((dtype, blk))

    def wanted(kind: str) -> bool:
        if kind not in LAZY:
            return core is None
        return kind in kinds and (core is None or kind not in core.lazy)
    return [lambda part=part: _precompile(dtype, blk, part) for part in core_parts(dtype, blk)
            if wanted(_kind(part))]
