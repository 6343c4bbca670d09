"""``LUCID_DEBUG``: what the compiler did, on stderr through the ``lucid`` logger.

- ``1``: every compiled graph after each pass, and where each compilation's time
  went (tracing, each IR pass, LLVM per module, cache loads; see
  :mod:`lucid_ir.compile_times`);
- ``2``: adds each compiled graph's LLVM IR;
- ``3``: adds its assembly;
- ``time``: only the compile times (no graphs).

``LUCID_DUMP_DIR=DIR`` also saves every compiled graph as a replayable JSON file.

The variable is read once per compilation (never per call of a compiled function or an
eager op already planned), so leaving it unset costs nothing where it matters.

>>> import os
>>> os.environ["LUCID_DEBUG"] = "time"  # doctest: +SKIP
>>> level(), times_enabled()  # doctest: +SKIP
(0, True)
"""
from __future__ import annotations

import os
import sys

#: the value of ``LUCID_DEBUG`` that turns on the compile times alone
TIMES_ONLY = "time"


def level() -> int:
    """How much of each compiled graph to log: 0 (nothing) to 3 (graphs, LLVM IR, assembly)."""
    try:
        return int(os.environ.get("LUCID_DEBUG", "0") or 0)
    except ValueError:
        return 0


def times_enabled() -> bool:
    """Whether compilations report where their time went (``LUCID_DEBUG`` 1 and up, or ``time``)."""
    raw = os.environ.get("LUCID_DEBUG", "").strip().lower()
    return raw == TIMES_ONLY or level() >= 1


_log = None


def _ensure_handler():
    """The ``lucid`` logger, its debug output going to stderr (set up once, whatever
    else listens to it). ``logging`` is imported here, when something is logged: not
    by ``import lucid``."""
    global _log
    if _log is None:
        import logging

        class _StderrHandler(logging.StreamHandler):
            """Writes to whatever ``sys.stderr`` is at the time (a test may have
            replaced it)."""

            @property
            def stream(self):
                return sys.stderr

            @stream.setter
            def stream(self, value) -> None:
                pass

        log = logging.getLogger("lucid")
        handler = _StderrHandler()
        handler.setFormatter(logging.Formatter("[lucid] %(message)s"))
        log.addHandler(handler)
        log.propagate = False
        _log = log
    _log.setLevel(10)  # logging.DEBUG
    return _log


def emit(text: str) -> None:
    """Log one debug message (to stderr, prefixed ``[lucid]``)."""
    _ensure_handler().debug("%s", text)


def log_stage(name: str, stage: str, graph) -> None:
    if level() >= 1:
        _ensure_handler().debug("%s after %s:\n%s", name, stage, graph)
    dump_dir = os.environ.get("LUCID_DUMP_DIR")
    if dump_dir and stage == "traced":
        from .serialize import save_graph
        save_graph(graph, dump_dir, name)


def log_code(name: str, compiled) -> None:
    if level() >= 2:
        _ensure_handler().debug("%s LLVM IR:\n%s", name, compiled.llvm_text())
    if level() >= 3:
        _ensure_handler().debug("%s assembly:\n%s", name, compiled.asm_text())
