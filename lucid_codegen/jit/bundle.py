"""The kernels of one compiled function in one file of the kernel cache.

A plan (a compiled function) loads tens of kernels. Each is an entry of the cache
(``cache.load_or_compile``), and a fresh process used to read each entry's file on its
own. A :class:`Bundle` gathers them: while its :meth:`~Bundle.scope` is open, every kernel
the cache is asked for is recorded, and when the bundle is closed (after the plan's first
run) the object files of all of them are written into one entry, named by the caller's
description of what is compiled (the fused graph's text). The next process that builds
the same plan reads that one file, on the first kernel it asks for, and each kernel asked
for inside the scope is linked from it.

The bundle only supplies bytes; it decides nothing. Every kernel is still looked up by
its own full key (``cache.full_key``: its spec, the generators' source stamps, the CPU,
the pipeline), and the bundle is searched for that key: a kernel whose key changed (an
edited generator) is simply not in the bundle, is loaded or compiled as usual, and the
bundle is written anew at close. The entry has the cache's header (magic, format,
key, payload length and sha256), so a torn or damaged bundle is a miss (every kernel
then comes from its own entry), never linked.

Payload: ``u32`` member count; per member 32 raw bytes of its full key and its ``u64``
length; then the members' object files in that order.

>>> import llvmlite.ir as ir
>>> from lucid_codegen.jit import cache
>>> def build():
...     m = ir.Module("k")
...     f = ir.Function(m, ir.FunctionType(ir.IntType(64), [ir.IntType(64)]), "inc")
...     b = ir.IRBuilder(f.append_basic_block())
...     b.ret(b.add(f.args[0], ir.IntType(64)(1)))
...     return m
>>> bundle = Bundle("doc: one kernel")
>>> with bundle.scope():
...     lib = cache.load_or_compile("doc:bundle:inc", build, ["inc"])
>>> bundle.close()    # written (when the disk cache is on)
"""
from __future__ import annotations

import contextlib
import struct
import threading
import time

from lucid_codegen.jit import cache

__all__ = ["Bundle"]

_COUNT = struct.Struct("<I")
_MEMBER = struct.Struct("<32sQ")


class Bundle:
    """The kernels of one compiled function (``description`` names it: the same text in
    another process finds the same file). Open :meth:`scope` around everything that loads
    the function's kernels, then :meth:`close` once."""

    def __init__(self, description: str):
        self.description = description
        self._digest_hex = cache.full_key("bundle|" + description)
        self._lock = threading.Lock()
        self._members: dict | None = None   # full key hex -> object file, once read
        self._used: dict = {}               # full key hex -> object file (None: not seen)
        self._closed = False

    @contextlib.contextmanager
    def scope(self):
        """Kernels the cache is asked for in this block (and in tasks the block hands to
        the compile pool) come from the bundle when it has them, and are recorded."""
        token = cache._BUNDLE.set(self)
        try:
            yield self
        finally:
            cache._BUNDLE.reset(token)

    def _member(self, digest_hex: str) -> bytes | None:
        """The object file of kernel ``digest_hex`` from the bundle's file (read, and its
        checksum verified, on the first call), or None."""
        members = self._members
        if members is None:
            with self._lock:
                if self._members is None:
                    self._members = self._read()
                members = self._members
        return members.get(digest_hex)

    def _path(self):
        return cache.cache_dir() / (self._digest_hex + cache._SUFFIX)

    def _read(self) -> dict:
        if not cache.cache_enabled():
            return {}
        payload = cache._read_entry(self._path(), bytes.fromhex(self._digest_hex))
        members = None if payload is None else _unpack(payload)
        return members or {}   # (None: a verified payload of another layout, a miss)

    def close(self) -> None:
        """Write the bundle when the kernels recorded are not exactly those of its file
        (the first process, or kernels changed since); later calls do nothing. Kernels
        found in memory (loaded before the scope, e.g. by another plan) are taken from
        their own entries on disk; one that is not there is left out."""
        if self._closed:
            return
        self._closed = True
        used, self._used = self._used, {}
        if not used or not cache.cache_enabled():
            return
        if self._members is None:
            self._members = self._read()
        if set(used) == set(self._members):
            return
        directory = cache.cache_dir()
        objects = []
        for digest_hex, obj in used.items():
            if obj is None:
                obj = self._members.get(digest_hex) or cache._read_entry(
                    directory / (digest_hex + cache._SUFFIX), bytes.fromhex(digest_hex))
            if obj is not None:
                objects.append((digest_hex, obj))
        if not objects:
            return
        payload = _pack(objects)
        label = " ".join(self.description.split())   # (one line for ``lucid-ir cache``)
        meta = {"label": label[:cache._KEY_PREVIEW], "kind": "bundle",
                "members": len(objects), "created": time.time(), "object_bytes": len(payload),
                "fingerprint": cache._target_fingerprint(), "pipeline": cache._pipeline_stamp(),
                "codegen_version": cache.CODEGEN_VERSION}
        cache._write_entry(directory, self._digest_hex + cache._SUFFIX,
                           cache._encode(bytes.fromhex(self._digest_hex), payload, meta))


def _pack(objects) -> bytes:
    """The payload of ``[(full key hex, object file)]``.

    >>> _unpack(_pack([("ab" * 32, b"obj1"), ("cd" * 32, b"o2")])) == {"ab" * 32: b"obj1", "cd" * 32: b"o2"}
    True
    """
    table = b"".join(_MEMBER.pack(bytes.fromhex(d), len(obj)) for d, obj in objects)
    return _COUNT.pack(len(objects)) + table + b"".join(obj for _, obj in objects)


def _unpack(payload: bytes) -> dict | None:
    """``{full key hex: object file}`` of a payload, or None when its layout is wrong.

    >>> _unpack(b"\\x05\\x00\\x00\\x00") is None
    True
    """
    if len(payload) < _COUNT.size:
        return None
    (count,) = _COUNT.unpack_from(payload)
    start = _COUNT.size + count * _MEMBER.size
    if start > len(payload):
        return None
    members, offset = {}, start
    for k in range(count):
        digest, length = _MEMBER.unpack_from(payload, _COUNT.size + k * _MEMBER.size)
        members[digest.hex()] = payload[offset:offset + length]
        offset += length
    if offset != len(payload):
        return None
    return members

