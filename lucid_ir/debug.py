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


def _ensure_handler() -> None:
    if not log.handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("[lucid] %(message)s"))
        log.addHandler(handler)
        log.setLevel(logging.DEBUG)
        log.propagate = False


def log_stage(name: str, stage: str, graph) -> None:
    if level() >= 1:
        _ensure_handler()
        log.debug("%s after %s:\n%s", name, stage, graph)
    dump_dir = os.environ.get("LUCID_DUMP_DIR")
    if dump_dir and stage == "traced":
        from .serialize import save_graph
        save_graph(graph, dump_dir, name)


def log_code(name: str, compiled) -> None:
    if level() >= 2:
        _ensure_handler()
        log.debug("%s LLVM IR:\n%s", name, compiled.llvm_text())
    if level() >= 3:
        log.debug("%s assembly:\n%s", name, compiled.asm_text())
