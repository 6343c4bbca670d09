"""The kernel cache: compile a kernel once, reuse its machine code everywhere.

``load_or_compile(key, build, symbols)`` looks for a kernel in three places, in
order, and returns a :class:`~lucid_codegen.jit.llvm.LoadedLibrary`:

1. this process's memory (a dict; thread-safe, and two threads asking for the
   same key at once compile it only once);
2. the disk cache (an object file written by an earlier process: loading it
   costs a fraction of a millisecond instead of hundreds for LLVM); inside an open
   :class:`~lucid_codegen.jit.bundle.Bundle` (a plan's kernels kept as one entry) the
   bundle's copy first, else the kernel's own entry;
3. ``build()`` -> :func:`~lucid_codegen.jit.llvm.compile_to_object`, after which the
   object file is stored on disk for the next process.

>>> import ctypes, llvmlite.ir as ir
>>> def build():
...     m = ir.Module("demo")
...     i64 = ir.IntType(64)
...     f = ir.Function(m, ir.FunctionType(i64, [i64, i64]), "add")
...     b = ir.IRBuilder(f.append_basic_block())
...     b.ret(b.add(*f.args))
...     return m
>>> lib = load_or_compile("demo:add:i64", build, ["add"])
>>> ctypes.CFUNCTYPE(ctypes.c_int64, ctypes.c_int64, ctypes.c_int64)(lib.address("add"))(40, 2)
42

Cache key
    The caller's ``key`` must describe the kernel *exactly* (its IR text, or a
    spec string from which the IR is generated deterministically) *and the code
    that generates it*: every kernel family puts :func:`source_stamp` of its
    generator's modules into its keys, so an edited emitter never loads a stale
    kernel. The full key is ``sha256(key, host fingerprint, pipeline stamp,
    code generator version, CACHE_FORMAT)``, where the pipeline stamp is
    ``source_stamp(*PIPELINE)``, the source of the compile step every kernel goes
    through (optimisation passes, target machine), and the version is
    ``lucid_codegen.__version__``; so files made on another CPU, LLVM or llvmlite,
    or by another version of the code generator, are never used. The key names
    nothing of ``lucid`` (the layer above): a new lucid release whose code
    generator is unchanged keeps its cache.

Location (read from the environment on every call)
    ``$LUCID_CACHE_DIR``, else ``$XDG_CACHE_HOME/lucid``, else ``~/.cache/lucid``.
    ``LUCID_CACHE=0`` (or ``off``/``false``/``no``) disables the disk cache; the
    memory cache still works.

File format (``<full key hex>.lucidk``)
    An 88-byte header (``_HEADER``): magic ``b"LUCIDKC\\0"``, format version,
    the full key hash, payload length, sha256 of the payload, metadata length;
    then a small JSON metadata blob (human-readable key, kind, symbols, compile
    time, what it was made for: see :func:`entry_metadata`);
    then the object file. Anything that does not verify (truncated, bad checksum,
    wrong magic/version/key) is a miss: the kernel is recompiled and the file
    overwritten. Unverified bytes are never given to the linker.

Linking
    Every object file is linked into the process's one JIT engine (``jit.load_object``).
    Each kernel's functions are renamed after its full key before it is compiled
    (:func:`linked_name`: ``lucid_ew`` -> ``lucid_ew.<16 hex digits>``), so kernels that
    name their entry alike link side by side, and an object is linked only if it
    defines the names of the key asked for: an object made for another key is a miss.

Writes are atomic (temp file in the same directory, ``os.replace``), so
concurrent processes are safe and a process killed mid-write leaves only a
``.*.tmp`` file, which is ignored and removed by :func:`clear_cache`. There is no
``fsync``: it cost milliseconds per kernel on the compile path (a cold training step
writes tens of entries), and what it guards against, a power loss leaving an entry
whose data never reached the disk, is a file that fails its checksum: a miss. If the
directory cannot be written, the cache falls back to memory only and warns once
(``RuntimeWarning``) per directory per process.
"""
from __future__ import annotations

import contextvars
import functools
import hashlib
import importlib.util
import json
import os
import re
import struct
import tempfile
import threading
import time
import warnings
from pathlib import Path
from typing import Callable, NamedTuple

import llvmlite.ir as ir

from lucid_ir import compile_times, gc_pause

from lucid_codegen import __version__ as CODEGEN_VERSION
from lucid_codegen.jit import llvm as jit
from lucid_codegen.jit import perf_map
from lucid_codegen.jit.target import host_target

__all__ = [
    "CACHE_FORMAT", "CODEGEN_VERSION", "PIPELINE", "source_stamp", "load_or_compile", "precompile", "available", "full_key",
    "kind_of", "cache_dir", "cache_enabled", "cache_info", "list_entries", "entry_metadata", "clear_cache", "stats",
    "reset_stats", "reset_memory_cache", "CacheEntry", "linked_name",
]

#: Version of the on-disk format *and* of the key scheme. Bump it to orphan
#: every existing entry (e.g. when the compile pipeline changes). 2: each kernel's
#: functions are named after its key (:func:`linked_name`), so every object links into
#: the process's one engine.
CACHE_FORMAT = 2
#: The modules of the compile step every kernel shares (``jit``: optimisation
#: passes and object emission; ``target``: the target machine): their
#: :func:`source_stamp` is part of every full key.
PIPELINE = ("jit.llvm", "jit.target")

_MAGIC = b"LUCIDKC\x00"
#: magic, format version (u16), flags (u16, 0), full key hash (32 raw bytes),
#: payload length (u64), payload sha256 (32 raw bytes), metadata length (u32)
_HEADER = struct.Struct("<8sHH32sQ32sI")
_SUFFIX = ".lucidk"
_TMP_SUFFIX = ".tmp"
_MAX_META = 1 << 16
_KEY_PREVIEW = 200  # characters of the caller's key kept in the metadata

_DISABLE_VALUES = {"0", "off", "false", "no"}

# ---------------------------------------------------------------- process state
_LOCK = threading.Lock()                    # guards every dict/set below
_MEMORY: dict[tuple[str, tuple[str, ...]], jit.LoadedLibrary] = {}
_KEY_LOCKS: dict[str, threading.Lock] = {}  # one per full key, never removed
_OBJECTS: dict[str, bytes] = {}  # full key -> object file compiled by ``precompile``, not yet linked
_LINKED: set[str] = set()        # full keys linked into this process
_WARNED_DIRS: set[str] = set()
_STAT_NAMES = ("hits_memory", "hits_disk", "compiles", "disk_writes",
               "disk_rejects", "write_errors")
_STATS: dict[str, int] = dict.fromkeys(_STAT_NAMES, 0)
#: the :class:`~lucid_codegen.jit.bundle.Bundle` whose scope is open (it supplies object
#: files and records the kernels loaded), or None
_BUNDLE: contextvars.ContextVar = contextvars.ContextVar("lucid_cache_bundle", default=None)


class CacheEntry(NamedTuple):
    """One file of the disk cache, as listed by :func:`list_entries`."""

    name: str      # file name, ``<full key hex>.lucidk``
    size: int      # bytes on disk
    mtime: float   # seconds since the epoch


# ------------------------------------------------------------------------ keys
@functools.lru_cache(maxsize=None)
def source_stamp(*modules: str) -> str:
    """16 hex digits of sha256 over the source of ``lucid_codegen`` modules, in order.

    A kernel family names the modules whose code decides what it generates (its
    emitter and the modules it imports at module level, other than the shared
    :data:`PIPELINE`) and puts the stamp into its cache keys: any edit to them,
    even one that keeps the key's spec text the same, gives new keys, so no stale
    kernel is ever loaded from disk. Computed once per process per argument tuple
    (reading and hashing a few files: well under a millisecond). Names are module
    names inside ``lucid_codegen`` such as ``"kernels.elementwise"``; an unknown name is a ``ValueError``.

    >>> gen = ("kernels.elementwise", "kernels.loops", "kernels.lowering", "runtime.pyarray")
    >>> stamp = source_stamp(*gen)
    >>> len(stamp), stamp == source_stamp(*gen)
    (16, True)
    >>> stamp != source_stamp(*gen[:-1])
    True
    >>> source_stamp("no_such_module")
    Traceback (most recent call last):
    ...
    ValueError: source_stamp: lucid_codegen has no module 'no_such_module'
    """
    h = hashlib.sha256()
    for name in modules:
        data = _module_source(name)
        h.update(f"{name}\0{len(data)}\0".encode())
        h.update(data)
    return h.hexdigest()[:16]


def _module_source(name: str) -> bytes:
    """The bytes of module ``lucid_codegen.<name>``'s file (the .py, or the .pyc of a
    source-less install); a separate function so tests can hand in an edited source."""
    try:
        valid = all(part.isidentifier() for part in name.split("."))
        spec = importlib.util.find_spec(f"lucid_codegen.{name}") if valid else None
    except ImportError:   # a parent that is a module, not a package ("runtime.spin.py")
        spec = None
    if spec is None or not spec.origin:
        raise ValueError(f"source_stamp: lucid_codegen has no module {name!r}")
    try:
        return Path(spec.origin).read_bytes()
    except OSError:  # unreadable: a stamp no other process shares (compiled, never stale)
        return os.urandom(32)


def _pipeline_stamp() -> str:
    """:func:`source_stamp` of :data:`PIPELINE` (a separate function so tests can patch it)."""
    return source_stamp(*PIPELINE)


def _target_fingerprint() -> str:
    """The host CPU/LLVM fingerprint (a separate function so tests can patch it)."""
    return host_target().fingerprint


def full_key(key: str) -> str:
    """The hex sha256 naming ``key`` for this CPU, LLVM, compile pipeline, code generator
    version (:data:`CODEGEN_VERSION`, ``lucid_codegen.__version__``) and cache format.

    >>> len(full_key("demo:add:i64"))
    64
    >>> full_key("a") != full_key("b")
    True
    """
    text = json.dumps([key, _target_fingerprint(), _pipeline_stamp(), CODEGEN_VERSION, CACHE_FORMAT])
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


# ----------------------------------------------------------------- environment
def cache_dir() -> Path:
    """Directory of the disk cache (it need not exist yet), read from the environment now.

    ``$LUCID_CACHE_DIR``, else ``$XDG_CACHE_HOME/lucid``, else ``~/.cache/lucid``.

    >>> import os
    >>> os.environ["LUCID_CACHE_DIR"] = "/tmp/lucid-doc"  # doctest: +SKIP
    >>> cache_dir()  # doctest: +SKIP
    PosixPath('/tmp/lucid-doc')
    """
    explicit = os.environ.get("LUCID_CACHE_DIR")
    if explicit:
        return Path(explicit).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    if xdg:
        return Path(xdg).expanduser() / "lucid"
    return Path.home() / ".cache" / "lucid"


def cache_enabled() -> bool:
    """False when ``LUCID_CACHE`` is ``0``/``off``/``false``/``no`` (memory-only mode).

    >>> import os
    >>> os.environ["LUCID_CACHE"] = "0"  # doctest: +SKIP
    >>> cache_enabled()  # doctest: +SKIP
    False
    """
    return os.environ.get("LUCID_CACHE", "1").strip().lower() not in _DISABLE_VALUES


# --------------------------------------------------------------------- helpers
def _bump(name: str) -> None:
    with _LOCK:
        _STATS[name] += 1


def _warn_unwritable(directory: Path, err: BaseException) -> None:
    with _LOCK:
        if str(directory) in _WARNED_DIRS:
            return
        _WARNED_DIRS.add(str(directory))
    warnings.warn(f"lucid kernel cache: cannot write to {directory} ({err}); "
                  f"kernels compiled in this process are kept in memory only",
                  RuntimeWarning, stacklevel=5)


def _encode(digest: bytes, payload: bytes, meta: dict) -> bytes:
    meta_bytes = json.dumps(meta, sort_keys=True, default=str).encode()
    if len(meta_bytes) > _MAX_META:
        meta_bytes = b"{}"
    header = _HEADER.pack(_MAGIC, CACHE_FORMAT, 0, digest, len(payload),
                          hashlib.sha256(payload).digest(), len(meta_bytes))
    return header + meta_bytes + payload


def _decode(data: bytes, digest: bytes) -> bytes | None:
    """The verified payload of a cache file, or None if anything is wrong."""
    if len(data) < _HEADER.size:
        return None
    magic, version, _flags, key, length, checksum, meta_len = _HEADER.unpack_from(data)
    if magic != _MAGIC or version != CACHE_FORMAT or key != digest:
        return None
    if meta_len > _MAX_META or len(data) != _HEADER.size + meta_len + length:
        return None
    payload = data[_HEADER.size + meta_len:]
    if hashlib.sha256(payload).digest() != checksum:
        return None
    return payload


def _read_entry(path: Path, digest: bytes) -> bytes | None:
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError:  # missing file, unreadable dir, dir is a file: all misses
        return None
    payload = _decode(data, digest)
    if payload is None:
        _bump("disk_rejects")
    return payload


def _write_entry(directory: Path, name: str, data: bytes) -> None:
    """Atomically store ``data`` as ``directory/name``; on failure warn once, never raise."""
    tmp = None
    try:
        directory.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{name}.", suffix=_TMP_SUFFIX, dir=directory)
        with os.fdopen(fd, "wb") as f:
            os.fchmod(f.fileno(), 0o644)  # mkstemp makes 0600; entries are not secret
            f.write(data)
        os.replace(tmp, directory / name)
        tmp = None
        _bump("disk_writes")
    except OSError as err:
        _bump("write_errors")
        vanished = isinstance(err, FileNotFoundError) and tmp is not None and not os.path.exists(tmp)
        if tmp is not None:
            try:
                os.unlink(tmp)
            except OSError:
                pass
        if not vanished:  # a temp file removed by clear_cache() elsewhere is no reason to warn
            _warn_unwritable(directory, err)


def linked_name(symbol: str, digest_hex: str) -> str:
    """The name the function ``symbol`` of the kernel with full key ``digest_hex`` has in
    its object file: made unique by the key, so the objects of every kernel (many of which
    name their entry ``lucid_ew`` or ``lucid_red``) link into one engine side by side, and
    a name can only be found in the object compiled for that key.

    >>> linked_name("lucid_ew", "3f2a" * 16)
    'lucid_ew.3f2a3f2a3f2a3f2a'
    """
    return f"{symbol}.{digest_hex[:16]}"


def _renamed(module: ir.Module | str, symbols: list[str], digest_hex: str) -> str:
    """The IR text of ``module`` (stamped with the host's triple and data layout) with each
    of ``symbols`` (its definition and every use) renamed to :func:`linked_name`.
    llvmlite prints every global name quoted (``@"lucid_ew"``): a plain replacement;
    IR text given as a string may also use bare names.

    >>> _renamed('call void @f() ; @"f" @fx', ["f"], "ab" * 32)
    'call void @"f.abababababababab"() ; @"f.abababababababab" @fx'
    """
    if isinstance(module, ir.Module):
        target = host_target()
        module.triple, module.data_layout = target.triple, target.data_layout
        text = str(module)
        for name in symbols:
            text = text.replace(f'@"{name}"', f'@"{linked_name(name, digest_hex)}"')
        return text
    if not symbols:
        return module
    names = "|".join(re.escape(name) for name in sorted(symbols, key=len, reverse=True))
    pattern = re.compile(rf'@(?:"({names})"|({names})(?![-\w.$]))')
    return pattern.sub(lambda m: f'@"{linked_name(m.group(1) or m.group(2), digest_hex)}"', module)


def _load(obj: bytes, symbols: list[str], digest_hex: str, label: str = "") -> jit.LoadedLibrary:
    """Link ``obj`` (compiled for ``digest_hex``) and find ``symbols`` under their
    :func:`linked_name`; the library answers to the names the caller knows. With
    ``LUCID_PERF_MAP`` on, its functions are named (with ``label``) for ``perf``."""
    names = [linked_name(name, digest_hex) for name in symbols]
    for name in names:  # (an object made for another key would fail to link, or worse: abort
        if name.encode() not in obj:  # on references no ``prepare`` made resolvable)
            raise RuntimeError(f"object file of key {digest_hex[:16]} does not define {name!r}")
    lib = jit.load_object(obj, names)
    perf_map.record(obj, lib._symbols, label)
    return jit.LoadedLibrary(lib._engine, {name: lib.address(linked) for name, linked in zip(symbols, names)})


def _key_lock(digest_hex: str) -> threading.Lock:
    with _LOCK:
        lock = _KEY_LOCKS.get(digest_hex)
        if lock is None:
            lock = _KEY_LOCKS[digest_hex] = threading.Lock()
        return lock


# ------------------------------------------------------------------ public API
def _from_memory(mem_key):
    """The library this process holds for ``mem_key`` (counted as a memory hit), or None."""
    with _LOCK:
        lib = _MEMORY.get(mem_key)
        if lib is not None:
            _STATS["hits_memory"] += 1
    if lib is not None:
        compile_times.memory_hit()
    return lib


def load_or_compile(key: str, build: Callable[[], ir.Module], symbols: list[str],
                    *, label: str | None = None, kind: str | None = None, speed_level: int = 3,
                    vectorize: bool = True, prepare: Callable[[], None] | None = None,
                    pipeline: jit.Pipeline | None = None) -> jit.LoadedLibrary:
    """Machine code for the kernel ``key``: from memory, else disk, else ``build()`` + LLVM.

    ``key`` must determine the module ``build()`` returns exactly (e.g. its IR text
    or a deterministic spec string); ``build`` is only called on a compile.
    ``symbols`` are the functions to look up (``lib.address(name)``). ``label`` is an
    optional human-readable name stored in the entry's metadata (default: the key,
    cut to 200 characters); ``kind`` the kernel family (default: the key's leading
    word, :func:`kind_of`), also stored, for ``lucid-ir cache``. ``pipeline``
    (:class:`jit.Pipeline`; default: ``speed_level`` and ``vectorize`` with unrolling)
    is how LLVM optimises the module; it is part of the full key (a kernel compiled
    with another pipeline is another entry). ``prepare``,
    if given, is called before the object is linked (e.g. to load the code it calls).

    Never raises because of the cache itself (bad files are recompiled, unwritable
    directories fall back to memory with one ``RuntimeWarning``); errors from
    ``build()``, from LLVM, or a symbol the module does not define do propagate.

    A compilation being recorded for ``LUCID_DEBUG`` (:mod:`lucid_ir.compile_times`)
    is told of every kernel: found in memory, or, with the time of each step, loaded
    from disk or compiled.

    >>> import ctypes, llvmlite.ir as ir
    >>> def build():
    ...     m = ir.Module("k")
    ...     i64 = ir.IntType(64)
    ...     f = ir.Function(m, ir.FunctionType(i64, [i64]), "twice")
    ...     b = ir.IRBuilder(f.append_basic_block())
    ...     b.ret(b.add(f.args[0], f.args[0]))
    ...     return m
    >>> lib = load_or_compile("doc:twice", build, ["twice"])
    >>> ctypes.CFUNCTYPE(ctypes.c_int64, ctypes.c_int64)(lib.address("twice"))(21)
    42
    >>> load_or_compile("doc:twice", build, ["twice"]) is lib   # memory hit
    True
    """
    symbols = list(symbols)
    pipeline = pipeline or jit.Pipeline(speed_level, vectorize)
    digest_hex = _digest(key, pipeline)
    mem_key = (digest_hex, tuple(symbols))
    bundle = _BUNDLE.get()
    if bundle is not None:
        bundle._used.setdefault(digest_hex, None)
    lib = _from_memory(mem_key)
    if lib is not None:
        return lib
    with _key_lock(digest_hex):
        lib = _from_memory(mem_key)  # another thread may have finished it while we waited
        if lib is not None:
            return lib
        lib = _load_or_compile_locked(key, digest_hex, build, symbols, label, pipeline, kind, prepare)
        with _LOCK:
            _MEMORY[mem_key] = lib
            _LINKED.add(digest_hex)
        return lib


def precompile(key: str, build: Callable[[], ir.Module], symbols: list[str],
               *, label: str | None = None, kind: str | None = None, speed_level: int = 3,
               vectorize: bool = True, pipeline: jit.Pipeline | None = None) -> None:
    """Make sure the object file of ``key`` exists without linking it: nothing to do when
    it is linked already or on disk, else compile it (and store it on disk, and in memory
    for the :func:`load_or_compile` of the same key, which then only links it). Arguments
    as :func:`load_or_compile`'s. Independent keys precompile in parallel on several
    threads (compile_pool.py); one key is never compiled twice at once.
    """
    symbols = list(symbols)
    pipeline = pipeline or jit.Pipeline(speed_level, vectorize)
    digest_hex = _digest(key, pipeline)
    use_disk = cache_enabled()
    directory = cache_dir() if use_disk else None

    if _compiled(digest_hex, directory):
        return
    with _key_lock(digest_hex):
        if _compiled(digest_hex, directory):
            return
        obj = _compile_and_store(key, digest_hex, build, symbols, label, pipeline, kind, directory)
        with _LOCK:
            _OBJECTS[digest_hex] = obj


def available(key: str, pipeline: jit.Pipeline) -> bool:
    """Whether :func:`load_or_compile` of ``key`` with ``pipeline`` would only link (the
    object is linked already, compiled by ``precompile``, in the open bundle or on disk),
    without compiling; nothing is read or compiled here."""
    return _compiled(_digest(key, pipeline), cache_dir() if cache_enabled() else None)


def _compiled(digest_hex: str, directory) -> bool:
    """Whether the object of ``digest_hex`` exists: linked, in memory, in the open bundle,
    or in ``directory`` (None: no disk cache)."""
    with _LOCK:
        if digest_hex in _LINKED or digest_hex in _OBJECTS:
            return True
    bundle = _BUNDLE.get()
    if bundle is not None and bundle._member(digest_hex) is not None:
        return True
    return directory is not None and (directory / (digest_hex + _SUFFIX)).exists()


def _digest(key: str, pipeline: jit.Pipeline) -> str:
    """The full key of ``key`` compiled with ``pipeline`` (the full pipeline's keys are
    the caller's keys unchanged)."""
    return full_key(key if pipeline == jit.FULL else f"{key}|opt={pipeline.tag()}")


def _load_or_compile_locked(key, digest_hex, build, symbols, label, pipeline,
                            kind=None, prepare=None) -> jit.LoadedLibrary:
    digest = bytes.fromhex(digest_hex)
    use_disk = cache_enabled()
    directory = cache_dir() if use_disk else None
    name = digest_hex + _SUFFIX
    label = label if label is not None else key[:_KEY_PREVIEW]
    kind = kind or kind_of(key)
    bundle = _BUNDLE.get()
    with _LOCK:
        obj = _OBJECTS.pop(digest_hex, None)
    if obj is not None:  # compiled by ``precompile`` (recorded there)
        if prepare is not None:
            prepare()
        lib = _load(obj, symbols, digest_hex, label)
        compile_times.memory_hit()
        if bundle is not None:
            bundle._used[digest_hex] = obj
        return lib
    if use_disk:
        # the open bundle's copy first (one file for the whole plan), else the kernel's own
        reads = [] if bundle is None else [lambda: bundle._member(digest_hex)]
        reads.append(lambda: _read_entry(directory / name, digest))
        for read in reads:
            t0 = time.perf_counter()
            payload = read()
            if payload is None:
                continue
            if prepare is not None:
                prepare()
            t1 = time.perf_counter()
            try:
                lib = _load(payload, symbols, digest_hex, label)
            except Exception:
                _bump("disk_rejects")  # verified but unloadable: the next source, else recompile
                continue
            _bump("hits_disk")
            if bundle is not None:
                bundle._used[digest_hex] = payload
            compile_times.add_module(compile_times.ModuleTimes(
                label, kind, "disk", {"read": t1 - t0, "link": time.perf_counter() - t1}, len(payload)))
            return lib
    steps: dict = {}
    obj = _compile_and_store(key, digest_hex, build, symbols, label, pipeline, kind,
                             directory, steps, record=False)
    if prepare is not None:
        prepare()
    t1 = time.perf_counter()
    lib = _load(obj, symbols, digest_hex, label)  # raises for a symbol the module lacks
    steps["link"] = time.perf_counter() - t1
    if bundle is not None:
        bundle._used[digest_hex] = obj
    compile_times.add_module(compile_times.ModuleTimes(label, kind, "compiled", steps, len(obj)))
    return lib


def _compile_and_store(key, digest_hex, build, symbols, label, pipeline, kind,
                       directory, steps=None, record=True) -> bytes:
    """``build()`` compiled to an object file, written to ``directory`` (unless None);
    ``steps`` receives the seconds of each step; ``record``: tell LUCID_DEBUG's record."""
    label = label if label is not None else key[:_KEY_PREVIEW]
    kind = kind or kind_of(key)
    steps = {} if steps is None else steps
    t0 = time.perf_counter()
    with gc_pause.paused():   # (the IR's objects, a few thousand per module)
        module = _renamed(build(), symbols, digest_hex)
        steps["build IR"] = time.perf_counter() - t0
        obj = jit.compile_to_object(module, pipeline.speed_level, pipeline.vectorize, times=steps,
                                    unroll=pipeline.unroll, passes=pipeline.passes, codegen=pipeline.codegen)
    seconds = time.perf_counter() - t0
    _bump("compiles")
    if directory is not None:
        meta = {
            "label": label,
            "kind": kind,
            "symbols": symbols,
            "compile_seconds": round(seconds, 6),
            "created": time.time(),
            "object_bytes": len(obj),
            "fingerprint": _target_fingerprint(),
            "pipeline": _pipeline_stamp(),
            "codegen_version": CODEGEN_VERSION,
            "opt": pipeline.tag(),
        }
        t1 = time.perf_counter()
        _write_entry(directory, digest_hex + _SUFFIX, _encode(bytes.fromhex(digest_hex), obj, meta))
        steps["store"] = time.perf_counter() - t1
    if record:
        compile_times.add_module(compile_times.ModuleTimes(label, kind, "compiled", steps, len(obj)))
    return obj


def kind_of(key: str) -> str:
    """The kernel family a cache key names: its leading word (letters, digits, ``_``).

    >>> kind_of("elementwise/3f2a|..."), kind_of("gemm:float32:bias1"), kind_of("?")
    ('elementwise', 'gemm', 'other')
    """
    n = 0
    while n < len(key) and (key[n].isalnum() or key[n] == "_"):
        n += 1
    return key[:n] or "other"


def _entry_files(directory: Path) -> list[Path]:
    try:
        return sorted(p for p in directory.iterdir()
                      if p.name.endswith(_SUFFIX) and not p.name.startswith("."))
    except OSError:
        return []


def list_entries() -> list[CacheEntry]:
    """``(name, size, mtime)`` of every entry file in :func:`cache_dir`, by name.

    Temp files of unfinished writes are not listed. Pass ``name`` to
    :func:`entry_metadata` for the human-readable details.

    >>> for name, size, mtime in list_entries():  # doctest: +SKIP
    ...     print(name, size)
    3f1c...e2.lucidk 1232
    """
    out = []
    for path in _entry_files(cache_dir()):
        try:
            st = path.stat()
        except OSError:
            continue
        out.append(CacheEntry(path.name, st.st_size, st.st_mtime))
    return out


def entry_metadata(name: str) -> dict | None:
    """The JSON metadata stored with entry ``name`` (from :func:`list_entries`), or None.

    Keys: ``label`` (the caller's key, shortened), ``kind`` (the kernel family),
    ``symbols``, ``compile_seconds``, ``created``, ``object_bytes``, ``fingerprint``,
    ``pipeline`` (its stamp), ``codegen_version`` (entries written before kinds and
    versions were stored lack those two). Only the header is checked here, not the
    payload checksum.

    >>> entry_metadata(list_entries()[0].name)["symbols"]  # doctest: +SKIP
    ['add']
    """
    try:
        with open(cache_dir() / name, "rb") as f:
            head = f.read(_HEADER.size)
            if len(head) < _HEADER.size:
                return None
            magic, version, _flags, _key, _length, _sum, meta_len = _HEADER.unpack(head)
            if magic != _MAGIC or version != CACHE_FORMAT or meta_len > _MAX_META:
                return None
            meta = json.loads(f.read(meta_len).decode())
    except (OSError, ValueError):
        return None
    return meta if isinstance(meta, dict) else None


def cache_info() -> dict:
    """Summary of the disk cache: ``dir`` (Path), ``enabled``, ``entries``, ``bytes``.

    >>> cache_info()  # doctest: +SKIP
    {'dir': PosixPath('/home/me/.cache/lucid'), 'enabled': True, 'entries': 12, 'bytes': 48311}
    """
    entries = list_entries()
    return {"dir": cache_dir(), "enabled": cache_enabled(),
            "entries": len(entries), "bytes": sum(e.size for e in entries)}


def clear_cache() -> int:
    """Delete every entry and leftover temp file in :func:`cache_dir`; return how many.

    Other files in the directory are left alone, and kernels already loaded in
    this process keep working (see :func:`reset_memory_cache` for the memory side).

    >>> clear_cache()  # doctest: +SKIP
    12
    """
    directory = cache_dir()
    removed = 0
    try:
        paths = list(directory.iterdir())
    except OSError:
        return 0
    for path in paths:
        n = path.name
        is_entry = n.endswith(_SUFFIX) and not n.startswith(".")
        is_tmp = n.startswith(".") and n.endswith(_TMP_SUFFIX) and _SUFFIX in n
        if not (is_entry or is_tmp):
            continue
        try:
            path.unlink()
            removed += 1
        except OSError:
            pass
    return removed


def stats() -> dict[str, int]:
    """Counters since start (or :func:`reset_stats`): a copy.

    ``hits_memory``, ``hits_disk``, ``compiles``, ``disk_writes``,
    ``disk_rejects`` (files that failed verification or loading) and
    ``write_errors``.

    >>> sorted(stats())
    ['compiles', 'disk_rejects', 'disk_writes', 'hits_disk', 'hits_memory', 'write_errors']
    """
    with _LOCK:
        return dict(_STATS)


def reset_stats() -> None:
    """Set every counter of :func:`stats` back to zero."""
    with _LOCK:
        for name in _STAT_NAMES:
            _STATS[name] = 0


def reset_memory_cache(*, clear_stats: bool = True) -> None:
    """Forget the in-memory kernels (and, by default, the counters); for tests.

    The machine code stays mapped (libraries handed out remain valid); the next
    ``load_or_compile`` goes to disk again.

    >>> reset_memory_cache(); stats()["hits_memory"]
    0
    """
    with _LOCK:
        _MEMORY.clear()
        _OBJECTS.clear()
        _LINKED.clear()
    if clear_stats:
        reset_stats()
