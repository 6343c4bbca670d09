"""From an LLVM module to callable machine code, in two separable steps.

``compile_to_object`` runs LLVM (verify, optimise for the host CPU, emit an object
file): the slow step, hundreds of milliseconds. ``load_object`` links an object file
into the process and returns the addresses of its functions: about a millisecond.
The kernel cache stores what the first step makes, so a new process only runs the
second.

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

import threading
import time

import llvmlite.binding as llvm
import llvmlite.ir as ir

from .target import host_target

_LOCK = threading.Lock()  # LLVM's JIT objects are not safe to build concurrently
# Every engine ever created stays alive: its code must never be freed, and freeing an
# engine also frees the shared target machine it took ownership of (a later compile
# would then crash). So engines are kept even when loading fails.
_ENGINES: list = []


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


def optimise(ref: llvm.ModuleRef, speed_level: int = 3, vectorize: bool = True) -> None:
    """Run LLVM's standard pipeline (new pass manager) tuned for the host CPU.

    ``vectorize=False`` skips the loop and SLP vectorizers: for modules whose
    vector code is explicit (the GEMM kernels) they only add compile time.
    """
    target = host_target()
    options = llvm.create_pipeline_tuning_options(speed_level=speed_level)
    options.loop_vectorization = vectorize
    options.slp_vectorization = vectorize
    builder = llvm.create_pass_builder(target.machine, options)
    builder.getModulePassManager().run(ref, builder)


def compile_to_object(module: ir.Module | str, speed_level: int = 3,
                      vectorize: bool = True, times: dict | None = None) -> bytes:
    """Verify, optimise and emit an ELF object file for the host CPU.

    ``times``, when given, receives the seconds of each step: ``parse`` (the module as
    text, parsed and verified by LLVM), ``optimise`` and ``codegen``.
    """
    with _LOCK:
        t0 = time.perf_counter()
        ref = prepare_module(module)
        t1 = time.perf_counter()
        optimise(ref, speed_level, vectorize)
        t2 = time.perf_counter()
        obj = host_target().machine.emit_object(ref)
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


def load_object(obj: bytes, symbols: list[str]) -> LoadedLibrary:
    """Link an object file into the process and look up ``symbols``.

    Raises ``RuntimeError`` if a symbol is missing (a foreign or damaged object).
    """
    with _LOCK:
        target = host_target()
        empty = llvm.parse_assembly(f'target triple = "{target.triple}"\n')
        engine = llvm.create_mcjit_compiler(empty, target.machine)
        _ENGINES.append(engine)
        engine.add_object_file(llvm.ObjectFileRef.from_data(obj))
        engine.finalize_object()
        addresses = {}
        for name in symbols:
            addr = engine.get_function_address(name)
            if not addr:
                raise RuntimeError(f"object file does not define {name!r}")
            addresses[name] = addr
        return LoadedLibrary(engine, addresses)
