"""``LUCID_DEBUG=1|2|3``: log every compiled graph after each pass (1), plus LLVM IR (2),
plus assembly and compile times (3), to stderr through the ``lucid`` logger.
``LUCID_DUMP_DIR=DIR`` also saves every compiled graph as a replayable JSON file."""
from __future__ import annotations

import logging
import os
import sys

log = logging.getLogger("lucid")


def level() -> int:
    try:
        return int(os.environ.get("LUCID_DEBUG", "0") or 0)
    except ValueError:
        return 0


_handler = None


def _ensure_handler() -> None:
    """Debug output goes to stderr, once, whatever else listens to the logger."""
    global _handler
    log.setLevel(logging.DEBUG)
    if _handler is None:
        _handler = logging.StreamHandler(sys.stderr)
        _handler.setFormatter(logging.Formatter("[lucid] %(message)s"))
        log.addHandler(_handler)
        log.propagate = False


def log_stage(name: str, stage: str, graph) -> None:
    if level() >= 1:
        _ensure_handler()
        log.debug("%s after %s:\n%s", name, stage, graph)
    dump_dir = os.environ.get("LUCID_DUMP_DIR")
    if dump_dir and stage == "traced":
        from .serialize import save_graph
        save_graph(graph, dump_dir, name)


def log_times(name: str, seconds: dict) -> None:
    if level() >= 3:
        _ensure_handler()
        log.debug("%s compile times: %s", name,
                  ", ".join(f"{k} {v * 1e3:.1f} ms" for k, v in seconds.items()))


def log_code(name: str, compiled) -> None:
    if level() >= 2:
        _ensure_handler()
        log.debug("%s LLVM IR:\n%s", name, compiled.llvm_text())
    if level() >= 3:
        log.debug("%s assembly:\n%s", name, compiled.asm_text())
