"""What the disk kernel cache holds, summed up for ``lucid-ir cache``.

:func:`summarize` reads every entry's header and metadata (not the object files) in
:func:`~lucid_codegen.jit.cache.cache_dir`: how many entries and bytes, per kernel family
(``kind``), the largest entries, and the *stale* ones: made for another CPU, LLVM or
llvmlite, another compile pipeline or another code generator version, which this
process never asks for (``lucid-ir cache --clear`` reclaims them). An entry of an
earlier version of one family's generator is stale too, but its metadata cannot show
it (the generator's stamp is inside the key's hash), so it is counted as current.

>>> import os, tempfile
>>> os.environ["LUCID_CACHE_DIR"] = tempfile.mkdtemp()  # doctest: +SKIP
>>> s = summarize()  # doctest: +SKIP
>>> s.entries, s.bytes, s.kinds, s.largest  # doctest: +SKIP
(0, 0, [], [])
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

from lucid_codegen.jit import cache

__all__ = ["KindTotal", "EntrySummary", "CacheSummary", "summarize"]


class KindTotal(NamedTuple):
    """The entries of one kernel family."""

    kind: str
    entries: int
    bytes: int
    compile_seconds: float   # the LLVM time they saved (as measured when each was compiled)


class EntrySummary(NamedTuple):
    """One entry file, with what its metadata says."""

    name: str
    size: int
    kind: str
    label: str
    compile_seconds: float
    stale: bool


@dataclass
class CacheSummary:
    """What :func:`summarize` found."""

    directory: Path
    enabled: bool
    entries: int = 0
    bytes: int = 0
    kinds: list[KindTotal] = field(default_factory=list)        # the most bytes first
    largest: list[EntrySummary] = field(default_factory=list)   # the largest first
    stale: int = 0
    stale_bytes: int = 0


def _describe(name: str, size: int, current: tuple) -> EntrySummary:
    meta = cache.entry_metadata(name)
    if meta is None:  # no readable header or metadata: of no use to anybody
        return EntrySummary(name, size, "unreadable", "", 0.0, True)
    label = str(meta.get("label", ""))
    kind = str(meta.get("kind") or cache.kind_of(label))
    made_for = (meta.get("fingerprint"), meta.get("pipeline"), meta.get("codegen_version"))
    seconds = meta.get("compile_seconds")
    seconds = float(seconds) if isinstance(seconds, (int, float)) else 0.0
    return EntrySummary(name, size, kind, label, seconds, made_for != current)


def summarize(top: int = 10) -> CacheSummary:
    """The disk cache's contents: totals, per-kind totals, the ``top`` largest entries
    and the stale ones (see the module docstring)."""
    out = CacheSummary(cache.cache_dir(), cache.cache_enabled())
    entries = cache.list_entries()
    if not entries:
        return out
    current = (cache._target_fingerprint(), cache._pipeline_stamp(), cache.CODEGEN_VERSION)
    described = [_describe(e.name, e.size, current) for e in entries]
    out.entries, out.bytes = len(described), sum(e.size for e in described)
    kinds: dict[str, list] = {}
    for e in described:
        total = kinds.setdefault(e.kind, [0, 0, 0.0])
        total[0] += 1
        total[1] += e.size
        total[2] += e.compile_seconds
        if e.stale:
            out.stale += 1
            out.stale_bytes += e.size
    out.kinds = sorted((KindTotal(k, n, b, s) for k, (n, b, s) in kinds.items()),
                       key=lambda t: (-t.bytes, t.kind))
    out.largest = sorted(described, key=lambda e: (-e.size, e.name))[:max(top, 0)]
    return out
