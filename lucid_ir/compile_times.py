"""Where a compilation's time goes, reported when ``LUCID_DEBUG`` is set.

A compilation (a function compiled by ``lucid.compile`` for one signature, an eager
backward graph, a replayed graph file) opens a record with :func:`begin`. While the
record is active (:meth:`CompileTimes.active`: a context variable, so it follows the
thread that compiles, and work handed to another thread joins it when that thread runs
in a copy of the context), each layer adds what it does:

- ``lucid`` times tracing and each IR pass with :func:`phase` (phases nest: the
  autodiff a traced ``backward()`` runs is part of the tracing);
- ``lucid_codegen``'s kernel cache adds each LLVM module with :func:`add_module`:
  compiled (building the IR in Python, parse and verify, optimise, codegen, link) or
  loaded from disk (read and verify, link), and counts kernels found in memory
  (:func:`memory_hit`).

:meth:`CompileTimes.report` prints the record through the ``lucid`` logger, once; a
later report of the same record (a compiled function's first run builds the kernels
its plan specialises on the arrays' layouts) prints only what was added since, and
only when modules were compiled or loaded meanwhile. A module compiled or loaded
outside any compilation (an eager op) is reported on a line of its own.

When ``LUCID_DEBUG`` is unset, :func:`begin` returns None (it reads the variable once
per compilation) and :func:`phase`, :func:`add_module` and :func:`memory_hit` cost one
context-variable look-up: nothing is timed, nothing is kept.

>>> times = CompileTimes("f")
>>> with times.active():
...     times.add_phase("trace", 0.0121)
...     times.add_phase("autodiff", 0.003, depth=1)
...     times.add_phase("f: fuse", 0.002)
...     times.add_phase("f: lower to kernels", 0.33, kernels=0.3061)
...     add_module(ModuleTimes("gemm:float32:bias1:relu", "gemm", "compiled",
...                            {"build IR": 0.004, "optimise": 0.2, "codegen": 0.1, "link": 0.001}, 40960))
...     add_module(ModuleTimes("elementwise cc exp", "elementwise", "disk",
...                            {"read": 0.0002, "link": 0.0009}, 2048))
...     memory_hit()
>>> print(times.render(total=0.35))
compile times of f: 350.0 ms
  trace                            12.1 ms
    autodiff                        3.0 ms
  f: fuse                           2.0 ms
  f: lower to kernels             330.0 ms  (kernels 306.1 ms)
  LLVM: 1 module compiled in 305.0 ms (build IR 4.0, optimise 200.0, codegen 100.0, link 1.0 ms)
     305.0 ms  gemm         gemm:float32:bias1:relu  build IR 4.0, optimise 200.0, codegen 100.0, link 1.0 ms; 40.0 KiB
  cache: 1 module loaded from disk in 1.1 ms (read 0.2, link 0.9 ms); 1 kernel found in memory
       1.1 ms  elementwise  elementwise cc exp  read 0.2, link 0.9 ms; 2.0 KiB
"""
from __future__ import annotations

import contextlib
import contextvars
import time
from typing import NamedTuple

from . import debug

__all__ = ["CompileTimes", "ModuleTimes", "begin", "current", "phase", "add_module", "memory_hit"]

_CURRENT: contextvars.ContextVar = contextvars.ContextVar("lucid_compile_times", default=None)
_NULL = contextlib.nullcontext()
_LABEL = 60  # characters of a module's label shown


class ModuleTimes(NamedTuple):
    """One LLVM module a compilation compiled or loaded from the disk cache."""

    label: str     # the kernel's human-readable name (its cache label)
    kind: str      # its family: gemm, elementwise, reduction, index, ...
    source: str    # "compiled" (LLVM ran) or "disk" (the object file was loaded)
    steps: dict    # step -> seconds, in order (build IR, parse, optimise, codegen, link; read, link)
    nbytes: int    # size of the object file

    @property
    def seconds(self) -> float:
        return sum(self.steps.values())


def _ms(seconds: float) -> str:
    return f"{seconds * 1e3:.1f}"


def _duration(seconds: float) -> str:
    return f"{seconds:.2f} s" if seconds >= 10 else f"{seconds * 1e3:.1f} ms"


def _steps(steps: dict) -> str:
    return ", ".join(f"{name} {_ms(s)}" for name, s in steps.items()) + " ms"


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


class CompileTimes:
    """The times of one compilation (see the module docstring)."""

    def __init__(self, name: str):
        self.name = name
        self.phases: list[list] = []         # [depth, label, seconds, of which kernels] as begun
        self.modules: list[ModuleTimes] = []
        self.memory_hits = 0
        self.seconds = 0.0                   # wall time spent while active
        self._open: list[list] = []          # the phases running now, outermost first
        self._mark = None                    # (phases, modules, hits, seconds) at the last report

    # -- recording
    @contextlib.contextmanager
    def active(self):
        """Make this the current record for the block (the calling thread's context)."""
        token = _CURRENT.set(self)
        start = time.perf_counter()
        try:
            yield self
        finally:
            self.seconds += time.perf_counter() - start
            _CURRENT.reset(token)

    @contextlib.contextmanager
    def phase(self, label: str):
        """Time the block as phase ``label`` (nested inside any phase already running)."""
        entry = [len(self._open), label, 0.0, 0.0]
        self.phases.append(entry)
        self._open.append(entry)
        start = time.perf_counter()
        try:
            yield
        finally:
            entry[2] = time.perf_counter() - start
            self._open.remove(entry)

    def add_phase(self, label: str, seconds: float, depth: int = 0, kernels: float = 0.0) -> None:
        """Record a phase timed elsewhere (``kernels``: the part spent on LLVM modules)."""
        self.phases.append([depth, label, seconds, kernels])

    def add_module(self, module: ModuleTimes) -> None:
        """Record an LLVM module (its time also counts as kernel time of the open phases)."""
        self.modules.append(module)
        for entry in self._open:
            entry[3] += module.seconds

    # -- reporting
    def render(self, title: str | None = None, total: float | None = None, since=None) -> str:
        """The report as text: phases in order, then the LLVM modules compiled (slowest
        first) and those loaded from disk, with every step's time."""
        p0, m0, h0, s0 = since or (0, 0, 0, 0.0)
        name = self.name if title is None else f"{self.name} ({title})"
        total = self.seconds - s0 if total is None else total
        lines = [f"compile times of {name}: {_duration(total)}"]
        phases = self.phases[p0:]
        width = max([30] + [len(label) + 2 * depth + 1 for depth, label, _, _ in phases])
        for depth, label, seconds, kernels in phases:
            line = f"{'  ' * (depth + 1)}{label:<{width - 2 * depth}} {_ms(seconds):>6} ms"
            lines.append(line + (f"  (kernels {_ms(kernels)} ms)" if kernels else ""))
        modules = self.modules[m0:]
        compiled = [m for m in modules if m.source == "compiled"]
        loaded = [m for m in modules if m.source != "compiled"]
        hits = self.memory_hits - h0
        if compiled:
            lines.append(f"  LLVM: {_plural(len(compiled), 'module')} compiled in "
                         f"{_ms(sum(m.seconds for m in compiled))} ms ({_steps(_sum_steps(compiled))})")
            lines += _module_lines(compiled)
        if loaded or hits:
            parts = []
            if loaded:
                parts.append(f"{_plural(len(loaded), 'module')} loaded from disk in "
                             f"{_ms(sum(m.seconds for m in loaded))} ms ({_steps(_sum_steps(loaded))})")
            if hits:
                parts.append(f"{_plural(hits, 'kernel')} found in memory")
            lines.append("  cache: " + "; ".join(parts))
            lines += _module_lines(loaded)
        return "\n".join(lines)

    def report(self, title: str | None = None) -> None:
        """Print the record (the first time), or what it gained since the last report
        when that includes compiled or loaded modules (``title`` names the part)."""
        mark = (len(self.phases), len(self.modules), self.memory_hits, self.seconds)
        if self._mark is None:
            debug.emit(self.render())
        elif len(self.modules) > self._mark[1]:
            debug.emit(self.render(title, since=self._mark))
        self._mark = mark


def _sum_steps(modules) -> dict:
    out: dict = {}
    for m in modules:
        for step, s in m.steps.items():
            out[step] = out.get(step, 0.0) + s
    return out


def _module_lines(modules) -> list[str]:
    width = max((len(m.label[:_LABEL]) for m in modules), default=0)
    return [f"    {_ms(m.seconds):>6} ms  {m.kind:<11}  {m.label[:_LABEL]:<{width}}  "
            f"{_steps(m.steps)}; {m.nbytes / 1024:.1f} KiB"
            for m in sorted(modules, key=lambda m: -m.seconds)]


# ------------------------------------------------------------- what the layers call
def begin(name: str) -> CompileTimes | None:
    """A new record for compilation ``name`` when ``LUCID_DEBUG`` asks for compile times
    and no compilation is being recorded already (a nested one, such as the backward
    graph of a compiled function, adds to the outer record); else None."""
    if _CURRENT.get() is not None or not debug.times_enabled():
        return None
    return CompileTimes(name)


@contextlib.contextmanager
def compilation(name: str):
    """Record the block as compilation ``name`` (see :func:`begin`) and report it at the
    end; yields the record, or None when there is nothing to record."""
    times = begin(name)
    if times is None:
        yield None
        return
    with times.active():
        yield times
    times.report()


def current() -> CompileTimes | None:
    """The record of the compilation running in this context, or None."""
    return _CURRENT.get()


def phase(label: str):
    """A context manager timing the block as phase ``label`` of the current record
    (does nothing when no compilation is being recorded)."""
    times = _CURRENT.get()
    return _NULL if times is None else times.phase(label)


def add_module(module: ModuleTimes) -> None:
    """Add a compiled or loaded LLVM module to the current record; outside any
    compilation, report it on a line of its own when ``LUCID_DEBUG`` is set."""
    times = _CURRENT.get()
    if times is not None:
        times.add_module(module)
    elif debug.times_enabled():
        verb = "compiled" if module.source == "compiled" else "loaded from disk"
        debug.emit(f"kernel {module.label[:_LABEL]} ({module.kind}) {verb} in {_ms(module.seconds)} ms "
                   f"({_steps(module.steps)}; {module.nbytes / 1024:.1f} KiB)")


def memory_hit() -> None:
    """Count a kernel the current compilation found in the in-memory cache."""
    times = _CURRENT.get()
    if times is not None:
        times.memory_hits += 1
