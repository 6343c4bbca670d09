"""Calling the generated GEMM kernels from Python.

>>> import numpy as np
>>> from lucid_codegen.gemm.epilogue import Epilogue
>>> g = Gemm(GemmSpec("float32", Epilogue.chain("float32", bias=True, activation="relu")))
>>> x = np.ones((2, 3), np.float32); w = np.ones((4, 3), np.float32)
>>> out = np.empty((2, 4), np.float32)
>>> g(x, w.T, out, bias=np.full(4, -1.0, np.float32))     # relu(x @ w.T + b)
>>> out.tolist()
[[2.0, 2.0, 2.0, 2.0], [2.0, 2.0, 2.0, 2.0]]

``Gemm(spec)`` compiles (or loads from the kernel cache) once. ``g(a, b, c_out,
bias=None, residual=None, alpha=1.0)`` computes in place
``c_out = E(alpha * a @ b, bias, residual)  [+ c_out if spec.accumulate]``, E being
the spec's epilogue subgraph (``gemm_epilogue``), ``bias`` its row operand (N,) and
``residual`` its (M, N) operand (a residual, a relu mask's R, a saved activation);
with ``spec.gate_a``, ``g(a, b, c_out, gate_a=r)`` with r of a's shape computes
``E(alpha * where(r > 0, a, 0) @ b, bias)``, relu's backward applied by a GEMM
consuming the gradient,
for numpy arrays of the spec's dtype: a is MxK and b is KxN with any strides
(pass ``w.T`` for x @ w.T, no copy is made), c_out is MxN with unit column stride.
Everything is validated (TypeError / ValueError naming 'gemm' and the shapes)
before native code runs; c_out must not overlap a, b or residual except that
inputs overlapping c_out are copied first on the general path.

Single-thread calls (work that ``split_pays`` keeps on the calling thread, or one
thread configured) go through the kernel's ``_py`` entry, which reads pointers and
strides straight from the array objects and uses a per-thread scratch buffer: one
ctypes call, no per-array Python attribute reads. Others (and the fallbacks) go
through :meth:`Gemm.run_ptrs`, which splits rows (or columns) across
:mod:`lucid_codegen.runtime.threads` as ``split_spans`` says; results are bit-identical for
any thread count because K is never split and no part crosses the small-shape
threshold of the kernel (``gemm_small``), whose summation order differs.
"""
from __future__ import annotations

import ctypes
import threading

import numpy as np

from lucid_codegen.runtime import threads
from lucid_codegen.runtime import work_split
from lucid_codegen.runtime.pyarray import LAYOUT_OK, data_ptr
from lucid_codegen.gemm.kernel import GemmSpec, build_gemm_module, gemm_symbol, workspace_elems
from lucid_codegen.gemm.batched import batched_symbol
from lucid_codegen.gemm.core import ensure_core, ensure_paths, paths_for, precompile_core
from lucid_codegen.jit import compile_pool
from lucid_codegen.jit.llvm import gemm_pipeline
from lucid_codegen.gemm.small import SMALL_M, SMALL_N

__all__ = ["Gemm", "GemmSpec", "get_gemm", "split_pays", "split_spans"]

# Whether a GEMM splits across threads: ``work_split.gemm_splits`` (one cost model for
# every kernel family; re-exported here under its former name).
split_pays = work_split.gemm_splits


def split_spans(M: int, N: int, nt: int, mr: int, nr: int):
    """How a GEMM is split into ``nt`` parts: ``(split_m, [(offset, size), ...])``,
    rows when M >= N (in whole MR micro-tiles) else columns (NR), or None when it
    yields one part.

    No part takes the other side of the small-shape threshold from the whole
    (``gemm_small.SMALL_M`` rows, ``SMALL_N`` columns): its summation order differs,
    so that would change the bits of the parts' results.

    >>> split_spans(1, 256, 2, 6, 16)
    (False, [(0, 128), (128, 128)])
    >>> split_spans(20, 4, 2, 6, 16) is None    # not 12 + 8: 8 rows take the dot path
    True
    """
    split_m = M >= N
    tile, total, small = (mr, M, SMALL_M) if split_m else (nr, N, SMALL_N)
    step = -(-total // (nt * tile)) * tile
    if total > small:
        step = max(step, -(-(small + 1) // tile) * tile)
    spans = [(o, min(step, total - o)) for o in range(0, total, step)]
    if total > small and len(spans) > 1 and spans[-1][1] <= small:
        o, n = spans.pop()
        spans[-1] = (spans[-1][0], spans[-1][1] + n)
    return (split_m, spans) if len(spans) > 1 else None

_i64 = ctypes.c_int64
_vp = ctypes.c_void_p
_FULL_SIG = ctypes.CFUNCTYPE(ctypes.c_int32, _i64, _i64, _i64, ctypes.c_double,
                             _vp, _i64, _i64, _vp, _i64, _i64, _vp, _i64,
                             _vp, _vp, _i64, _i64, _vp)
_PY_SIG = ctypes.CFUNCTYPE(ctypes.c_int32, ctypes.py_object, ctypes.py_object,
                           ctypes.py_object, ctypes.py_object, ctypes.py_object,
                           ctypes.c_double, _vp, _i64)


_PY_OK = LAYOUT_OK
_data_ptr = data_ptr


def _variant(spec: GemmSpec) -> tuple:
    """(key, build, symbols) of the spec's kernel library in the kernel cache."""
    sym = gemm_symbol(spec)
    return (spec.key(), lambda: build_gemm_module(spec),
            [sym] if spec.gather else [sym, sym + "_py", batched_symbol(sym)])


def _load(spec: GemmSpec, use=None):
    """Compile or fetch the kernel library for ``spec`` (the one place to switch caching);
    the shared core (gemm_core.py) is loaded before the variant's object links (with the
    lazy parts ``use`` will likely run compiled alongside: see ``precompile_tasks``)."""
    from lucid_codegen.jit.cache import load_or_compile
    compile_pool.run_all(precompile_tasks([spec], [use]))   # the core's parts and the variant at once
    key, build, symbols = _variant(spec)
    return load_or_compile(key, build, symbols, pipeline=gemm_pipeline(),
                           prepare=lambda: ensure_core(spec.dtype, spec.blocking))


def precompile_tasks(specs, uses=None) -> list:
    """Callables that compile the object files of ``specs``' kernels and of their cores
    without linking them (``cache.precompile``), independent of one another: run them on
    the compile pool, then ``get_gemm`` only links. Nothing for a spec already loaded.
    ``uses``: for each spec, None or ``paths_for``'s arguments of the call it will likely
    make, whose lazy parts of the core (gemm/core.py ``LAZY``) compile alongside (a
    guess: each call still loads what it runs, ``Gemm.prepare``)."""
    from lucid_codegen.jit.cache import precompile
    tasks, cores = [], {}
    for spec, use in zip(specs, uses or [None] * len(specs)):
        lazy = () if use is None or spec.gather or spec.gate_a else paths_for(*use)
        cores.setdefault((spec.dtype, spec.blocking), set()).update(lazy)
    for (dtype, blk), kinds in cores.items():
        tasks.extend(precompile_core(dtype, blk, kinds))
    for spec in dict.fromkeys(specs):
        if spec in _GEMMS:
            continue
        key, build, symbols = _variant(spec)
        tasks.append(lambda key=key, build=build, symbols=symbols: precompile(
            key, build, symbols, pipeline=gemm_pipeline()))
    return tasks


# -- workspace buffers (64-byte aligned), shared by all kernels ------------------
_WS_FREE: list[np.ndarray] = []
_WS_LOCK = threading.Lock()


def _take_ws(nbytes: int) -> np.ndarray:
    with _WS_LOCK:
        for k, buf in enumerate(_WS_FREE):
            if buf.nbytes >= nbytes + 64:
                return _WS_FREE.pop(k)
    return np.empty(nbytes + 64, np.uint8)


def _give_ws(buf: np.ndarray) -> None:
    with _WS_LOCK:
        _WS_FREE.append(buf)
        if len(_WS_FREE) > 8:
            _WS_FREE.sort(key=lambda x: x.nbytes)
            del _WS_FREE[0]


def _aligned(buf: np.ndarray) -> int:
    p = _data_ptr(buf)
    return (p + 63) & ~63


# One scratch buffer per calling thread for the ``_py`` entry (big enough for any
# single-thread call except an accumulating nonlinear kernel with huge K).
_TLS = threading.local()
_TLS_WS_BYTES = 4 << 20


def _thread_ws() -> tuple[int, int]:
    """(aligned address, bytes) of this thread's scratch buffer."""
    try:
        return _TLS.ws
    except AttributeError:
        buf = np.empty(_TLS_WS_BYTES + 64, np.uint8)
        _TLS.buf = buf
        _TLS.ws = (_aligned(buf), _TLS_WS_BYTES)
        return _TLS.ws


_GEMMS: dict[GemmSpec, "Gemm"] = {}
_GEMMS_LOCK = threading.Lock()                     # guards the two dicts
_SPEC_LOCKS: dict[GemmSpec, threading.Lock] = {}   # one per spec being built


def get_gemm(spec: GemmSpec, use=None) -> "Gemm":
    """The process-wide ``Gemm`` for ``spec`` (compiled once; ``use``: see
    ``precompile_tasks``). Threads asking for different specs build them at the same
    time; two asking for one build it once."""
    g = _GEMMS.get(spec)
    if g is None:
        with _GEMMS_LOCK:
            lock = _SPEC_LOCKS.setdefault(spec, threading.Lock())
        with lock:
            g = _GEMMS.get(spec)
            if g is None:
                g = Gemm(spec, use)
                with _GEMMS_LOCK:
                    _GEMMS[spec] = g
    return g


def _shape_error(msg, a, b, c):
    return ValueError(f"gemm: {msg} (a {tuple(a.shape)}, b {tuple(b.shape)}, "
                      f"c_out {tuple(c.shape)})")


class Gemm:
    """One compiled GEMM kernel (see the module docstring)."""

    def __init__(self, spec: GemmSpec, use=None):
        if not isinstance(spec, GemmSpec):
            raise TypeError(f"gemm: expected a GemmSpec, got {type(spec).__name__}")
        self.spec = spec
        self.dtype = np.dtype(spec.dtype)
        self._itemsize = self.dtype.itemsize
        #: whether a shape may still need one of the core's lazy parts (``prepare``)
        self._lazy = not (spec.gather or spec.gate_a)
        self.lib = _load(spec, use)
        sym = gemm_symbol(spec)
        self._address = self.lib.address(sym)
        self._fn = _FULL_SIG(self._address)
        gathers = bool(spec.gather)  # (no numpy-array entries: a gathered operand has tables)
        self._pyfn = _PY_SIG(self.lib.address(sym + "_py")) if _PY_OK and not gathers else None
        self._batched_address = None if gathers else self.lib.address(batched_symbol(sym))
        self._batched_fn = None if gathers else _FULL_SIG(self._batched_address)  # the same 17 words
        blk = spec.blocking
        self._mc, self._nc, self._kc = blk.MC, blk.NC, blk.KC
        self._mr, self._nr = blk.MR, blk.NR

    def __repr__(self) -> str:
        return f"Gemm({self.spec.key()})"

    def prepare(self, M: int, N: int, csa: int = 1, rsb: int = 1, csb: int = 1) -> None:
        """Load the core's parts the driver may run for C(M, N) and these strides in
        elements (gemm/core.py ``paths_for``, ``ensure_paths``: the small path's and the
        few-rows path's kernels are compiled for the first call that may take them).
        Every entry does this before native code runs, with the strides it passes
        (a caller that does not know them leaves them 1: every path of the shape)."""
        if self._lazy:
            kinds = paths_for(M, N, csa, rsb, csb)
            if kinds and ensure_paths(self.spec.dtype, self.spec.blocking, kinds):
                self._lazy = False

    def _prepare_arrays(self, a, b) -> None:
        """:meth:`prepare` for the ``_py`` entry's arrays (strides in bytes; one that is
        not whole elements makes the entry decline)."""
        size = self._itemsize
        self.prepare(a.shape[0], b.shape[1], a.strides[1] // size, b.strides[0] // size, b.strides[1] // size)

    # -- numpy entry ------------------------------------------------------------
    def __call__(self, a, b, c_out, bias=None, residual=None, alpha=1.0, gate_a=None) -> None:
        nd = np.ndarray
        if type(a) is not nd or type(b) is not nd or type(c_out) is not nd:
            if not (isinstance(a, nd) and isinstance(b, nd) and isinstance(c_out, nd)):
                raise TypeError("gemm: a, b and c_out must be numpy arrays, got "
                                f"{type(a).__name__}, {type(b).__name__}, {type(c_out).__name__}")
        dt = self.dtype
        if a.dtype != dt or b.dtype != dt or c_out.dtype != dt:
            raise TypeError(f"gemm: kernel is {dt.name}, got a {a.dtype}, b {b.dtype}, "
                            f"c_out {c_out.dtype}")
        if a.ndim != 2 or b.ndim != 2 or c_out.ndim != 2:
            raise _shape_error("a, b and c_out must be 2-D", a, b, c_out)
        M, K = a.shape
        K2, N = b.shape
        if K2 != K or c_out.shape != (M, N):
            raise _shape_error("need a (M, K), b (K, N), c_out (M, N)", a, b, c_out)
        if c_out.strides[1] != self._itemsize and N > 1 and M > 0:  # (numpy gives empty arrays 0 strides)
            raise _shape_error("c_out needs unit column stride (a row-major view)", a, b, c_out)
        if not c_out.flags.writeable:
            raise ValueError("gemm: c_out is read-only")
        spec = self.spec
        if spec.bias:
            if type(bias) is not nd:
                raise TypeError(f"gemm: this kernel needs a bias array of shape ({N},)")
            if bias.dtype != dt:
                raise TypeError(f"gemm: bias must be {dt.name}, got {bias.dtype}")
            if bias.shape != (N,):
                raise ValueError(f"gemm: bias shape {bias.shape} does not match N={N} "
                                 f"(a {a.shape}, b {b.shape})")
            if N > 1 and bias.strides[0] != self._itemsize:
                bias = np.ascontiguousarray(bias)
        elif bias is not None:
            raise ValueError("gemm: bias given but the kernel's epilogue has no row operand")
        # the R operand: the epilogue's (M, N) operand, or a gate on A (M, K)
        given = [(k, v) for k, v in (("residual", residual), ("gate_a", gate_a)) if v is not None]
        wanted = "residual" if spec.reads_r else "gate_a" if spec.gate_a else None
        if len(given) > 1:
            raise ValueError(f"gemm: give one of residual and gate_a, not {[k for k, _ in given]}")
        if given and given[0][0] != wanted:
            raise ValueError(f"gemm: {given[0][0]} given but the kernel's epilogue does not read it")
        r_shape = (M, K) if spec.gate_a else (M, N)
        if wanted is not None:
            residual = given[0][1] if given else None
            if type(residual) is not nd:
                raise TypeError(f"gemm: this kernel needs a {wanted} array of shape {r_shape}")
            if residual.dtype != dt:
                raise TypeError(f"gemm: {wanted} must be {dt.name}, got {residual.dtype}")
            if residual.shape != r_shape:
                raise ValueError(f"gemm: {wanted} shape {residual.shape} does not match {r_shape} "
                                 f"(a {a.shape}, c_out {c_out.shape})")

        if not self._single_thread_entry(a, b, c_out, bias, residual, alpha, M, N, K):
            self._general(a, b, c_out, bias, residual, alpha, M, N, K)

    def _single_thread_entry(self, a, b, c_out, bias, residual, alpha, M, N, K) -> bool:
        """The native ``_py`` entry for work that stays on this thread; False when it
        declines (misaligned strides, overlap, too big) or the work should be split."""
        if self._pyfn is None or (threads.get_num_threads() > 1 and split_pays(M, N, K, self._itemsize)):
            return False
        try:
            ws, nbytes = _TLS.ws
        except AttributeError:
            ws, nbytes = _thread_ws()
        if self._lazy:
            self._prepare_arrays(a, b)
        return self._pyfn(a, b, c_out, bias, residual, alpha, ws, nbytes // self._itemsize) == 0

    def runner(self, out_shape, trans_a: bool, trans_b: bool, alpha: float):
        """``run(a, b[, bias][, residual]) -> new C`` for one plan step whose shapes and
        dtypes were checked when the plan was built: the leanest call there is (small
        eager ops pay ~1 µs of Python instead of ~3). Anything unusual (strides, overlap,
        big work) goes through ``trusted``."""
        dtype, pyfn, itemsize = self.dtype, self._pyfn, self._itemsize
        has_bias, has_res, a_gate = self.spec.bias, self.spec.uses_r, self.spec.gate_a
        M, N = out_shape
        may = bool(paths_for(M, N))  # (else no stride takes a lazy part: no check per call)
        empty = np.empty
        stays = {}  # K -> whether the work stays on the calling thread at any thread count

        def run(a, b, *extra):
            c = empty(out_shape, dtype)
            if trans_a:
                a = a.T
            if trans_b:
                b = b.T
            bias = extra[0] if has_bias else None
            res = extra[-1] if has_res else None
            if a_gate and trans_a:  # A's gate has A's layout
                res = res.T
            K = a.shape[1]
            here = stays.get(K)
            if here is None:
                here = stays[K] = not split_pays(M, N, K, itemsize)
            if pyfn is not None and (bias is None or bias.strides[0] == itemsize) and (
                    here or threads.get_num_threads() == 1):
                try:
                    ws, nbytes = _TLS.ws
                except AttributeError:
                    ws, nbytes = _thread_ws()
                if may and self._lazy:
                    self._prepare_arrays(a, b)
                if pyfn(a, b, c, bias, res, alpha, ws, nbytes // itemsize) == 0:
                    return c
            if M and N:
                self.trusted(a, b, c, bias, res, alpha)
            return c
        return run

    def trusted(self, a, b, c_out, bias=None, residual=None, alpha=1.0) -> None:
        """``__call__`` for callers that validated types, dtypes and shapes once for this
        signature and whose ``c_out`` is their own fresh buffer, overlapping no input
        (the runtime's plans): only what may still vary (strides, size) is left to the
        native entry, which falls back to the checked path."""
        size = self._itemsize
        if bias is None or bias.strides[0] == size:
            M, K = a.shape
            N = b.shape[1]
            if self._single_thread_entry(a, b, c_out, bias, residual, alpha, M, N, K):
                return
            if M and N and split_pays(M, N, K, size) and (N == 1 or c_out.strides[1] == size) and all(
                    st % size == 0 for x in (a, b, c_out, residual) if x is not None for st in x.strides):
                self._run_arrays(a, b, c_out, bias, residual, alpha, M, N, K)
                return
        spec = self.spec
        r_kind = "gate_a" if spec.gate_a else "residual"
        self(a, b, c_out, bias=bias, alpha=alpha, **{r_kind: residual})

    def _general(self, a, b, c, bias, r, alpha, M, N, K) -> None:
        if M == 0 or N == 0:
            return
        size = self._itemsize

        def prep(x):
            if x is None:
                return None
            if any(s % size for s in x.strides) or (
                    x is not c and x.size and np.may_share_memory(x, c)):
                x = np.array(x, copy=True)
            return x

        self._run_arrays(prep(a), prep(b), c, prep(bias), prep(r), alpha, M, N, K)

    def _run_arrays(self, a, b, c, bias, r, alpha, M, N, K) -> None:
        """``run_ptrs`` on arrays whose strides are whole elements, c not overlapping."""
        size = self._itemsize

        def ptr(x):
            return 0 if x is None else _data_ptr(x)
        rsr, csr = (r.strides[0] // size, r.strides[1] // size) if r is not None else (0, 0)
        self.run_ptrs(M, N, K, ptr(a), a.strides[0] // size, a.strides[1] // size,
                      ptr(b), b.strides[0] // size, b.strides[1] // size,
                      ptr(c), c.strides[0] // size, ptr(bias), ptr(r), rsr, csr, alpha)

    # -- raw entry ----------------------------------------------------------------
    def run_ptrs(self, M: int, N: int, K: int, a_ptr: int, rsa: int, csa: int,
                 b_ptr: int, rsb: int, csb: int, c_ptr: int, ldc: int,
                 bias_ptr: int = 0, r_ptr: int = 0, rsr: int = 0, csr: int = 0,
                 alpha: float = 1.0, num_threads: int | None = None) -> None:
        """The kernel on raw addresses; strides in elements (C's column stride is 1).

        No validation: the caller guarantees that every addressed element is inside
        its buffer, that C does not overlap A, B or R, and that bias/R are given
        exactly when the spec has them. Splits over threads as described above.
        """
        if M <= 0 or N <= 0:
            return
        if self._lazy:
            self.prepare(M, N, csa, rsb, csb)
        spec, size = self.spec, self._itemsize
        nt = 1
        if split_pays(M, N, K, size):
            nt = threads.get_num_threads() if num_threads is None else max(1, int(num_threads))
        split = split_spans(M, N, nt, self._mr, self._nr) if nt > 1 else None
        fn = self._fn
        if split is None:
            buf = _take_ws(workspace_elems(spec, M, N, K) * size)
            try:
                fn(M, N, K, alpha, a_ptr, rsa, csa, b_ptr, rsb, csb, c_ptr, ldc,
                   bias_ptr or None, r_ptr or None, rsr, csr, _aligned(buf))
            finally:
                _give_ws(buf)
            return
        split_m, parts = split
        bufs = [_take_ws(workspace_elems(spec, n if split_m else M, N if split_m else n, K)
                         * size) for _, n in parts]

        alpha_bits = int(np.float64(alpha).view(np.int64))
        address = self._address
        jobs = []
        for (o, n), buf in zip(parts, bufs):
            ws = _aligned(buf)
            if split_m and spec.gather == "a":  # rsa: the address of A's row table (gemm.gather)
                jobs.append((address, n, N, K, alpha_bits, a_ptr, rsa + 8 * o, csa,
                             b_ptr, rsb, csb, c_ptr + o * ldc * size, ldc, bias_ptr,
                             (r_ptr + o * rsr * size) if r_ptr else 0, rsr, csr, ws))
            elif split_m:  # the words of the GEMM entry's arguments (see spin.GEMM_ARGS)
                jobs.append((address, n, N, K, alpha_bits, a_ptr + o * rsa * size, rsa, csa,
                             b_ptr, rsb, csb, c_ptr + o * ldc * size, ldc, bias_ptr,
                             (r_ptr + o * rsr * size) if r_ptr else 0, rsr, csr, ws))
            else:  # (B gathered: csb is the address of its column table, gemm.gather)
                b_at, csb_at = (b_ptr, csb + 8 * o) if spec.gather == "b" else (b_ptr + o * csb * size, csb)
                jobs.append((address, M, n, K, alpha_bits, a_ptr, rsa, csa,
                             b_at, rsb, csb_at, c_ptr + o * size, ldc,
                             (bias_ptr + o * size) if bias_ptr else 0,
                             (r_ptr + o * csr * size) if r_ptr and not spec.gate_a else r_ptr,
                             rsr, csr, ws))
        try:
            threads.run_native(jobs)  # the parts run in native workers, without the GIL
        finally:
            for buf in bufs:
                _give_ws(buf)
