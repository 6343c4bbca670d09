"""Name JIT code for ``perf``: with ``LUCID_PERF_MAP=1``, every object file linked into
the process adds its functions to ``/tmp/perf-<pid>.map``, the file Linux ``perf report``
reads to name addresses in anonymous executable memory (the convention JITs share: one
line per function, ``<start hex> <size hex> <name>``).

Each function is named by its linked symbol followed by the kernel's label (what the
cache stores, e.g. ``rows bcc in:float32/s...``), so a profile of a training step reads
kernel by kernel::

    LUCID_PERF_MAP=1 perf record -F 5000 python train.py
    perf report --sort sym

Addresses come from the object file's own symbol table (ELF64): a function's start is
its section's load address (found through a function of that section whose address the
engine gave) plus its offset in the section. Local helpers (a GEMM's micro-kernel, say)
are named too. Objects in another format are skipped, never an error.

>>> import struct
>>> parse_functions(b"not an ELF file")
[]
"""
from __future__ import annotations

import os
import re
import struct
import threading

_ENV = "LUCID_PERF_MAP"
_LOCK = threading.Lock()
_SHT_SYMTAB = 2
_STT_FUNC = 2
_LABEL_CHARS = 160


def enabled() -> bool:
    """``LUCID_PERF_MAP`` is set to something other than ``0`` (read on every call)."""
    return os.environ.get(_ENV, "0") not in ("", "0")


def map_path() -> str:
    """The map file of this process: ``/tmp/perf-<pid>.map`` (where perf looks)."""
    return f"/tmp/perf-{os.getpid()}.map"


def parse_functions(obj: bytes) -> list[tuple[str, int, int, int]]:
    """``(name, section index, offset, size)`` of each sized function symbol of a
    little-endian ELF64 object; ``[]`` for anything else."""
    if len(obj) < 64 or obj[:4] != b"\x7fELF" or obj[4] != 2 or obj[5] != 1:
        return []
    shoff, = struct.unpack_from("<Q", obj, 0x28)
    shentsize, shnum = struct.unpack_from("<HH", obj, 0x3A)
    if shentsize < 64 or shoff + shnum * shentsize > len(obj):
        return []
    sections = [struct.unpack_from("<IIQQQQIIQQ", obj, shoff + i * shentsize) for i in range(shnum)]
    functions = []
    for _name, kind, _flags, _addr, offset, size, link, _info, _align, entsize in sections:
        if kind != _SHT_SYMTAB or entsize < 24 or link >= shnum:
            continue
        str_offset, str_size = sections[link][4], sections[link][5]
        strings = obj[str_offset:str_offset + str_size]
        for at in range(offset, min(offset + size, len(obj) - 23), entsize):
            st_name, st_info, _other, shndx, value, sym_size = struct.unpack_from("<IBBHQQ", obj, at)
            if st_info & 0xF != _STT_FUNC or sym_size == 0:
                continue
            end = strings.find(b"\0", st_name)
            functions.append((strings[st_name:end].decode(errors="replace"), shndx, value, sym_size))
    return functions


def map_lines(obj: bytes, addresses: dict[str, int], label: str = "") -> list[str]:
    """The map lines of ``obj``'s functions, given the load address of some of them
    (``addresses``, by symbol name): every function of a section holding one of those.

    >>> map_lines(b"", {"f": 0x1000})
    []
    """
    functions = parse_functions(obj)
    bases = {}
    for name, shndx, value, _size in functions:
        if name in addresses:
            bases[shndx] = addresses[name] - value
    tag = re.sub(r"\s+", " ", label).strip()[:_LABEL_CHARS]
    return [f"{bases[shndx] + value:x} {size:x} {name}{' ' + tag if tag else ''}"
            for name, shndx, value, size in functions if shndx in bases]


def record(obj: bytes, addresses: dict[str, int], label: str = "") -> None:
    """Append ``obj``'s functions to this process's map file when ``LUCID_PERF_MAP`` is
    on; a failure to write is silent (a profiling aid never breaks a run)."""
    if not enabled():
        return
    lines = map_lines(obj, addresses, label)
    if not lines:
        return
    try:
        with _LOCK, open(map_path(), "a") as f:
            f.write("\n".join(lines) + "\n")
    except OSError:
        pass
