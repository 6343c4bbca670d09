"""From an LLVM module to callable machine code, in two separable steps.

``compile_to_object`` runs LLVM (verify, optimise for the host CPU, emit an object
file): the slow step, hundreds of milliseconds. ``load_object`` links an object file
into the process and returns the addresses of its functions: about a millisecond.
The kernel cache stores what the first step makes, so a new process only runs the
second.

Compiling is thread-parallel (compile_pool.py runs independent modules on a few
threads): each thread parses, optimises and emits in an LLVM context and target machine
of its own, and those three long native calls run outside llvmlite's global lock (which
otherwise serialises every LLVM call of the process, ``unlocked_calls``); the short
calls around them (creating and freeing LLVM objects) keep the lock. Set
``LUCID_COMPILE_UNLOCKED=0`` to compile under the lock (one module at a time).

>>> import llvmlite.ir as ir
>>> m = ir.Module("demo")
>>> f = ir.Function(m, ir.FunctionType(ir.IntType(64), [ir.IntType(64)]), "twice")
>>> b = ir.IRBuilder(f.append_basic_block())
>>> _ = b.ret(b.add(f.args[0], f.args[0]))
>>> lib = load_object(compile_to_object(m), ["twice"])
>>> import ctypes
>>> ctypes.CFUNCTYPE(ctypes.c_int64, ctypes.c_int64)(lib.address("twice"))(21)
42
"""
from __future__ import annotations

import ctypes
import os
import threading
import time
from typing import NamedTuple

import llvmlite.binding as llvm
import llvmlite.ir as ir
from llvmlite.binding import ffi

from lucid_codegen.jit.target import host_target

_LOCK = threading.Lock()  # LLVM's JIT objects are not safe to build concurrently
# The process's one MCJIT engine, created by the first load and never freed: its code
# must stay mapped, and freeing it would free the shared target machine it took
# ownership of (a later compile would then crash). Every object file is linked into it:
# an engine costs about as much to create as ten objects cost to link.
_ENGINES: list = []


class Pipeline(NamedTuple):
    """How much LLVM optimises a module: the new pass manager's ``speed_level`` (0-3),
    its loop and SLP vectorizers (``vectorize``), and loop unrolling and interleaving
    (``unroll``); or, when ``passes`` names some, only those IR passes, in that order
    (llvmlite's ``ModulePassManager.add_<name>_pass``); then code generation at level
    ``codegen`` (0-3: the target machine's optimisation level; 0 selects instructions
    with FastISel and allocates registers with the fast allocator, about a tenth of
    level 3's time on loop-control code). Part of every kernel's cache key (``tag``,
    which writes a ``codegen`` below 3 as ``/c<level>``).

    >>> FULL.tag(), LOOPS.tag(), GEMM.tag(), GEMM_CONTROL.tag()
    ('O3vu', 'P:sroa+new_gvn+instruction_combine+simplify_cfg+new_gvn+dead_code_elimination+simplify_cfg', 'O0', 'O0/c0')
    """

    speed_level: int = 3
    vectorize: bool = True
    unroll: bool = True
    passes: tuple = ()
    codegen: int = 3

    def tag(self) -> str:
        cg = "" if self.codegen == 3 else f"/c{self.codegen}"
        if self.passes:
            return "P:" + "+".join(self.passes) + cg
        return f"O{self.speed_level}" + "v" * self.vectorize + "u" * self.unroll + cg


#: LLVM's whole pipeline at its highest level: for code whose speed LLVM makes (loops
#: written as scalar code, which it vectorises and unrolls).
FULL = Pipeline(3, True, True)
#: The loop kernels' pipeline (elementwise, reduction, row and index kernels): their
#: emitters write the vector code, its unrolling and the loop structure themselves, so
#: of LLVM's IR passes they need the few that clean up after a straightforward emitter:
#: SROA (the loop nest's index and offset slots into SSA values), instruction combining
#: and CFG simplification, and GVN (common loads and address arithmetic), once before
#: instruction combining too: emitters compute some values twice on purpose and count
#: on GVN to keep one (erfc's e^{-x²} and the graph's own ``exp(neg(mul(x, x)))`` beside
#: it, a GELU and its derivative in one loop), and instruction combining rewrites one of
#: two such copies (``-(x·x)`` into ``x·(-x)`` where the product has one use) so that
#: GVN after it no longer sees them equal: a GELU loop that also writes its derivative
#: computed the exponential twice (``python benchmarks/bench_loop_pipelines.py``'s
#: "GELU and its derivative" case on Zen 1, float32 / float64: 1.02 / 1.00 times the full
#: pipeline's time, and 1.37 / 1.33 with ``LUCID_LOOP_OPT`` naming the old order,
#: ``P:sroa+instruction_combine+simplify_cfg+new_gvn+dead_code_elimination+simplify_cfg``).
#: Against the
#: standard speed level 2 without vectorizers or unrolling (``O2``, this pipeline until
#: session 21) on an MLP training step's ten loop modules: IR passes 308 -> 32 ms and
#: code generation 258 -> 161 ms (smaller IR), the kernels' run time the same
#: (``python benchmarks/bench_loop_pipelines.py``: the same bits as :data:`FULL`, time
#: 0.99 of its, geometric mean). ``LUCID_LOOP_OPT`` = ``full``, ``O2`` or another tag
#: compiles them with that pipeline instead.
LOOPS = Pipeline(2, False, False, ("sroa", "new_gvn", "instruction_combine", "simplify_cfg", "new_gvn",
                                   "dead_code_elimination", "simplify_cfg"))


#: The GEMM modules' pipeline (the shared core's packing routines and micro-kernels, each
#: variant's driver and epilogue): none of LLVM's IR passes, only code generation (which
#: has its own at ``opt=3``: instruction selection, scheduling, register allocation,
#: loop strength reduction). Their IR is written as LLVM would leave it -- SSA values
#: and phis, no stack slots to promote, explicit vectors, FMAs and k-loop unrolling --
#: so the IR passes changed little: the same bits and the same speed
#: (benchmarks/bench_gemm_pipelines.py, tests/test_gemm_pipelines.py) for half the LLVM
#: time (core 254 -> 128 ms, a bias + relu variant 148 -> 76 ms at speed level 1; the
#: earlier ``O2u`` unrolled edge kernels and packing loops again for 440 and 203 ms).
#: ``LUCID_GEMM_OPT`` = ``full`` or a :meth:`Pipeline.tag` (``O2u``) overrides it.
GEMM = Pipeline(0, False, False)
#: The GEMM core's loop-control modules (gemm/core.py ``CONTROL``: the generic driver's
#: loop nest around the micro-kernels, and the packing routines): :data:`GEMM` with
#: code generation at level 0. Their machine code's quality does not show in a
#: product's time (the micro-kernels do the work), but level 3 took the longest of the
#: core's code generation: the driver 55 -> 5 ms, packing 37 -> 17 ms on Zen 3, the
#: products' times the same (``python benchmarks/bench_gemm_pipelines.py --old O0``:
#: geometric mean 0.992 over its cases, the same bits). The variants' modules keep level
#: 3 (their epilogues run on every tile: 5% slower at level 0), but for their ``_py``
#: entries (``optnone``, gemm/kernel.py).
GEMM_CONTROL = Pipeline(0, False, False, codegen=0)


def parse_pipeline(text: str) -> Pipeline:
    """The pipeline named by ``full`` or by a :meth:`Pipeline.tag`.

    >>> parse_pipeline("O2u"), parse_pipeline("full") == FULL
    (Pipeline(speed_level=2, vectorize=False, unroll=True, passes=(), codegen=3), True)
    >>> parse_pipeline(LOOPS.tag()) == LOOPS, parse_pipeline("O0/c0") == GEMM_CONTROL
    (True, True)
    """
    text = text.strip()
    if text.lower() == "full":
        return FULL
    head, slash, level = text.rpartition("/c")
    if slash and level in ("0", "1", "2"):
        return parse_pipeline(head)._replace(codegen=int(level))
    if text.startswith("P:"):
        passes = tuple(p.strip() for p in text[2:].split("+"))
        unknown = [p for p in passes if not hasattr(llvm.ModulePassManager, f"add_{p}_pass")]
        if not passes or unknown:
            raise ValueError(f"not an LLVM pipeline: {text!r} (unknown passes {unknown}; names are "
                             "llvmlite's ModulePassManager.add_<name>_pass, joined by '+')")
        return Pipeline(2, False, False, passes)
    level, flags = text[1:2], text[2:]
    if text[:1] != "O" or level not in "0123" or not level or flags not in ("", "v", "u", "vu"):
        raise ValueError(f"not an LLVM pipeline: {text!r} (expected 'full' or a tag such as 'O2u')")
    return Pipeline(int(level), "v" in flags, "u" in flags)


def _pipeline_from_env(name: str, default: Pipeline, family: str) -> Pipeline:
    """The pipeline the variable ``name`` names; unset, empty or ``family``: ``default``."""
    text = os.environ.get(name, "").strip()
    return default if text.lower() in ("", family) else parse_pipeline(text)


def loop_pipeline() -> Pipeline:
    """:data:`LOOPS`, or what ``LUCID_LOOP_OPT`` names (``full``: :data:`FULL`; read on
    every call).

    >>> loop_pipeline() in (LOOPS, FULL)
    True
    """
    return _pipeline_from_env("LUCID_LOOP_OPT", LOOPS, "loops")


def gemm_pipeline(control: bool = False) -> Pipeline:
    """:data:`GEMM` (:data:`GEMM_CONTROL` for loop-control modules, ``control``), or
    what ``LUCID_GEMM_OPT`` names for every GEMM module (read on every call).

    >>> gemm_pipeline().vectorize, gemm_pipeline(control=True).codegen
    (False, 0)
    """
    return _pipeline_from_env("LUCID_GEMM_OPT", GEMM_CONTROL if control else GEMM, "gemm")


class LoadedLibrary:
    """Machine code linked into this process; ``address(name)`` of each function."""

    def __init__(self, engine: llvm.ExecutionEngine, symbols: dict[str, int]):
        self._engine = engine
        self._symbols = symbols

    def address(self, name: str) -> int:
        try:
            return self._symbols[name]
        except KeyError:
            raise KeyError(f"no function {name!r} in this kernel library "
                           f"(it has {sorted(self._symbols)})") from None


def prepare_module(module: ir.Module | str) -> llvm.ModuleRef:
    """Parse and verify a module, stamped with the host's triple and data layout."""
    target = host_target()
    if isinstance(module, ir.Module):
        module.triple = target.triple
        module.data_layout = target.data_layout
    ref = llvm.parse_assembly(str(module))
    ref.triple = target.triple
    ref.data_layout = target.data_layout
    ref.verify()
    return ref


def _pass_builder(machine, speed_level: int, vectorize: bool, unroll: bool):
    options = llvm.create_pipeline_tuning_options(speed_level=speed_level)
    options.loop_vectorization = vectorize
    options.slp_vectorization = vectorize
    options.loop_unrolling = unroll
    options.loop_interleaving = unroll
    return llvm.create_pass_builder(machine, options)


def _module_passes(builder, passes: tuple):
    """The module pass manager that runs ``passes`` (:class:`Pipeline`), or the standard
    pipeline ``builder`` was made for when there are none."""
    if not passes:
        return builder.getModulePassManager()
    manager = llvm.create_new_module_pass_manager()
    for name in passes:
        getattr(manager, f"add_{name}_pass")()
    return manager


def optimise(ref: llvm.ModuleRef, speed_level: int = 3, vectorize: bool = True, unroll: bool = True,
             passes: tuple = ()) -> None:
    """Run LLVM's standard pipeline (new pass manager) tuned for the host CPU, or only
    ``passes`` (see :class:`Pipeline`).

    ``vectorize=False`` skips the loop and SLP vectorizers and ``unroll=False`` the loop
    unroller: for modules whose vector code is explicit (GEMM and loop kernels) they
    mostly add compile time (see :class:`Pipeline`).
    """
    builder = _pass_builder(host_target().machine, speed_level, vectorize, unroll)
    _module_passes(builder, passes).run(ref, builder)


def _raw_calls():
    """The three long LLVM calls of a compilation as llvmlite's own ctypes functions,
    without the wrapper that takes llvmlite's global lock (``_lib_fn_wrapper._cfn``: not
    public API, so checked here); None when unavailable or disabled. ctypes releases the
    GIL during each call."""
    if os.environ.get("LUCID_COMPILE_UNLOCKED", "1").strip().lower() in ("0", "off", "false", "no"):
        return None
    try:
        names = ("LLVMPY_ParseAssembly", "LLVMPY_RunNewModulePassManager", "LLVMPY_TargetMachineEmitToMemory")
        raw = tuple(getattr(getattr(ffi.lib, n), "_cfn") for n in names)
    except AttributeError:
        return None
    if not all(isinstance(f, ctypes._CFuncPtr) and f.argtypes for f in raw):
        return None
    return raw


_RAW = _raw_calls()
_LOCAL = threading.local()


def unlocked_calls() -> bool:
    """Whether modules compile outside llvmlite's global lock (in parallel)."""
    return _RAW is not None


def _thread_machine(codegen: int = 3):
    """This thread's target machine for code generation level ``codegen`` (the host's,
    a private copy)."""
    machines = getattr(_LOCAL, "machines", None)
    if machines is None:
        machines = _LOCAL.machines = {}
    if codegen not in machines:
        target = host_target()
        machines[codegen] = llvm.Target.from_triple(target.triple).create_target_machine(
            cpu=target.cpu_name, features=target.cpu_features, opt=codegen, reloc="static",
            codemodel="jitdefault")
    return machines[codegen]


def _thread_llvm(codegen: int = 3):
    """This thread's LLVM context and its target machine for level ``codegen``."""
    context = getattr(_LOCAL, "context", None)
    if context is None:
        context = _LOCAL.context = llvm.create_context()
    return context, _thread_machine(codegen)


def _compile_unlocked(module, speed_level, vectorize, unroll, times, passes=(), codegen=3):
    parse, run_passes, emit = _RAW
    context, machine = _thread_llvm(codegen)
    target = host_target()
    t0 = time.perf_counter()
    if isinstance(module, ir.Module):
        module.triple = target.triple
        module.data_layout = target.data_layout
    text = str(module).encode("utf8")
    with ffi.OutputString() as err:
        ref = llvm.ModuleRef(parse(context, ctypes.c_char_p(text), err), context)
        if err:
            ref.close()
            raise RuntimeError(f"LLVM IR parsing error\n{err}")
    ref.triple = target.triple
    ref.data_layout = target.data_layout
    ref.verify()
    t1 = time.perf_counter()
    builder = _pass_builder(machine, speed_level, vectorize, unroll)
    run_passes(_module_passes(builder, passes), ref, builder)
    t2 = time.perf_counter()
    with ffi.OutputString() as err:
        buf = emit(machine, ref, 1, err)
        if not buf:
            raise RuntimeError(str(err))
    try:
        obj = ctypes.string_at(ffi.lib.LLVMPY_GetBufferStart(buf), ffi.lib.LLVMPY_GetBufferSize(buf))
    finally:
        ffi.lib.LLVMPY_DisposeMemoryBuffer(buf)
    if times is not None:
        times.update(parse=t1 - t0, optimise=t2 - t1, codegen=time.perf_counter() - t2)
    return obj


def compile_to_object(module: ir.Module | str, speed_level: int = 3,
                      vectorize: bool = True, times: dict | None = None, unroll: bool = True,
                      passes: tuple = (), codegen: int = 3) -> bytes:
    """Verify, optimise (:func:`optimise`'s arguments) and emit an ELF object file for the
    host CPU, generating code at LLVM's level ``codegen`` (0-3; 0: fast instruction
    selection and register allocation).

    ``times``, when given, receives the seconds of each step: ``parse`` (the module as
    text, parsed and verified by LLVM), ``optimise`` and ``codegen``. Safe to call from
    several threads at once (they compile in parallel, see the module docstring).
    """
    if _RAW is not None:
        return _compile_unlocked(module, speed_level, vectorize, unroll, times, passes, codegen)
    with _LOCK:
        t0 = time.perf_counter()
        ref = prepare_module(module)
        t1 = time.perf_counter()
        optimise(ref, speed_level, vectorize, unroll, passes)
        t2 = time.perf_counter()
        machine = host_target().machine if codegen == 3 else _thread_machine(codegen)
        obj = machine.emit_object(ref)
        if times is not None:
            times.update(parse=t1 - t0, optimise=t2 - t1, codegen=time.perf_counter() - t2)
        return obj


def optimised_ir(module: ir.Module | str, speed_level: int = 3) -> str:
    """The module's LLVM IR after optimisation (for dumps and tests)."""
    with _LOCK:
        ref = prepare_module(module)
        optimise(ref, speed_level)
        return str(ref)


def assembly(module: ir.Module | str, speed_level: int = 3) -> str:
    """The host assembly the module compiles to (for dumps)."""
    with _LOCK:
        ref = prepare_module(module)
        optimise(ref, speed_level)
        return host_target().machine.emit_assembly(ref)


def _engine() -> llvm.ExecutionEngine:
    """The process's one JIT engine (created on first use; call under ``_LOCK``)."""
    if not _ENGINES:
        target = host_target()
        empty = llvm.parse_assembly(f'target triple = "{target.triple}"\n')
        _ENGINES.append(llvm.create_mcjit_compiler(empty, target.machine))
    return _ENGINES[0]


def load_object(obj: bytes, symbols: list[str]) -> LoadedLibrary:
    """Link an object file into the process (into its one engine) and look up ``symbols``.

    Each object's functions are looked up right after it is linked, so objects may define
    the same names (the latest definition is the one found); code linked earlier stays
    valid. Raises ``RuntimeError`` if a symbol is missing (a foreign or damaged object).
    """
    with _LOCK:
        engine = _engine()
        before = {name: engine.get_function_address(name) for name in symbols}
        engine.add_object_file(llvm.ObjectFileRef.from_data(obj))
        engine.finalize_object()
        addresses = {}
        for name in symbols:
            addr = engine.get_function_address(name)
            if not addr or addr == before[name]:  # (unchanged: an earlier object's function)
                raise RuntimeError(f"object file does not define {name!r}")
            addresses[name] = addr
        return LoadedLibrary(engine, addresses)
