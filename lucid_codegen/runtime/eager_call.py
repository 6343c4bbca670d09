"""One native call for one eager op: ``fast_call``.

A loop kernel (elementwise or reduction) takes an int64 argument block with its
operands' addresses written in. Done from Python, that is one data-pointer read and one
store per operand and then a five-argument ctypes call: about 2 µs for ``x + y``,
several times the kernel. The trampolines here do that natively:
``lucid_eager_call_<n>(block, o_1, …, o_n)`` receives the operands as Python objects,
copies the block's argument template onto its own stack (so threads may share one
block), writes each operand's address into the copy and calls the kernel. The Python
side of an eager op is then one ctypes call with ``n + 1`` object arguments.

Block layout (int64 words, a numpy array passed as an object)::

    [0] kernel address   [1..4] the kernel's four range arguments   [5] template length L
    [6 .. 6+n)     where operand k's address goes in the template
    [6+n .. 6+2n)  how to find operand k's address: d >= 0, the pointer stored at byte d
                   of the object (a numpy array's data field); d < 0, the object's own
                   address + (-d) (the double inside a Python ``float``)
    [6+2n .. 6+2n+L)  the template
    [6+2n+L ..)    (``lucid_eager_checked_<n>`` only) the operands' layout records
                   (``layout_checks``): a call whose operands differ runs nothing and
                   returns the block itself

Only layouts numpy and CPython are verified to have (``pyarray.LAYOUT_OK``, and a
float's value at byte 16) get trampolines; elsewhere ``fast_call`` returns None and
callers keep the general path.

>>> import numpy as np
>>> from lucid_ir.builder import GraphBuilder
>>> from lucid_codegen.kernels.elementwise import ElementwiseKernel
>>> b = GraphBuilder()
>>> x = b.input((2, 3), "float32"); s = b.input((), "float64")
>>> k = ElementwiseKernel.for_graph(b.build([b.emit("mul", x, b.emit("cast", s, dtype="float32"))]))
>>> a = np.ones((2, 3), np.float32)
>>> run = fast_call(k, [a, np.float64(2.5)], scalars=(1,))
>>> run(a, 4.0).tolist()   # the scalar is read from the float object itself
[[4.0, 4.0, 4.0], [4.0, 4.0, 4.0]]
"""
from __future__ import annotations

import ctypes
import threading

import llvmlite.ir as ir
import numpy as np

from lucid_codegen.jit import llvm
from lucid_codegen.jit.cache import load_or_compile, source_stamp
from lucid_codegen.runtime.pyarray import DESCR_OFFSET, LAYOUT_OK, ND_OFFSET, PYARRAY_OFFSETS, TYPE_OFFSET

__all__ = ["fast_call", "gemm_fast_call", "MAX_OPERANDS", "FLOAT_VALUE_OFFSET"]

MAX_OPERANDS = 8        # trampolines for 1..8 operands
GEMM_WORDS = 4          # the GEMM adapter's block words before its checked variant's records
MAX_TEMPLATE = 256      # words of argument template a trampoline copies (its stack copy)
HEADER = 6

I64 = ir.IntType(64)
I8P = ir.IntType(8).as_pointer()


def _float_value_offset() -> int | None:
    """Byte offset of the double inside a CPython ``float`` object, if it is 16."""
    probe = 1.2345678
    try:
        if ctypes.c_double.from_address(id(probe) + 16).value == probe:
            return 16
    except Exception:  # noqa: BLE001 - another runtime: no scalar operands by address
        pass
    return None


FLOAT_VALUE_OFFSET = _float_value_offset()


def _build() -> ir.Module:
    """``PyObject* lucid_eager_call_<n>(PyObject* block, PyObject** objs, i64 nargs)``:
    a ``METH_FASTCALL`` function (CPython calls it as a builtin, with the block as its
    ``self``). It returns the last operand (the output) with one more reference, or
    NULL (Python raises ``SystemError``) for a wrong argument count.
    ``lucid_eager_checked_<n>`` first checks the operands' layouts against the block's
    records (``layout_checks``) and returns the block itself, having run nothing, when one
    differs."""
    module = ir.Module("lucid_eager_call")
    for n in range(1, MAX_OPERANDS + 1):
        _build_checked(module, n, _build_trampoline(module, n))
    _build_gemm_adapter(module)
    return module


def _fastcall_entry(module: ir.Module, name: str, n: int):
    """A ``METH_FASTCALL`` function ``name`` of ``n`` arguments: ``(fn, builder)``, the
    builder past the argument count's check (a wrong count returns NULL)."""
    fn = ir.Function(module, ir.FunctionType(I8P, [I8P, I8P.as_pointer(), I64]), name)
    b = ir.IRBuilder(fn.append_basic_block("entry"))
    good, bad = fn.append_basic_block("good"), fn.append_basic_block("bad")
    b.cbranch(b.icmp_signed("==", fn.args[2], I64(n)), good, bad)
    b.position_at_end(bad)
    b.ret(ir.Constant(I8P, None))
    b.position_at_end(good)
    return fn, b


def _build_checked(module: ir.Module, n: int, trampoline: ir.Function) -> None:
    """``lucid_eager_checked_<n>``: the layout checks, then ``trampoline`` (a tail call)."""
    fn, b = _fastcall_entry(module, f"lucid_eager_checked_{n}", n)
    block_obj, objs, nargs = fn.args
    words = _words_of(b, block_obj)
    at = b.add(b.load(b.gep(words, [I64(5)])), I64(HEADER + 2 * n))  # past the template
    _emit_layout_checks(fn, b, block_obj, objs, at, n - 1)
    b.ret(b.call(trampoline, [block_obj, objs, nargs], tail=True))


def _build_trampoline(module: ir.Module, n: int) -> ir.Function:
    P = I64.as_pointer()
    kernel_ty = ir.FunctionType(ir.VoidType(), [P, I64, I64, I64, I64])
    data_off = PYARRAY_OFFSETS[0]
    fn, b = _fastcall_entry(module, f"lucid_eager_call_{n}", n)
    fn.attributes.add("noinline")  # (its checked variant calls it: one copy of the code)
    block_obj, objs, nargs = fn.args
    words = b.load(b.bitcast(b.gep(block_obj, [I64(data_off)]), P.as_pointer()))
    copy = b.alloca(I64, MAX_TEMPLATE, name="args")

    def word(k):
        return b.load(b.gep(words, [k if isinstance(k, ir.Value) else I64(k)]))
    length = word(5)
    template = b.gep(words, [I64(HEADER + 2 * n)])
    pre = b.block  # copy the template (a counted loop; L is small)
    hdr, body, end = (fn.append_basic_block(s) for s in ("copy.hdr", "copy.body", "copy.end"))
    b.branch(hdr)
    b.position_at_end(hdr)
    i = b.phi(I64)
    i.add_incoming(I64(0), pre)
    b.cbranch(b.icmp_signed("<", i, length), body, end)
    b.position_at_end(body)
    b.store(b.load(b.gep(template, [i])), b.gep(copy, [i]))
    i.add_incoming(b.add(i, I64(1)), body)
    b.branch(hdr)
    b.position_at_end(end)
    last = None
    for k in range(n):
        obj = last = b.load(b.gep(objs, [I64(k)]))
        pos, how = word(HEADER + k), word(HEADER + n + k)
        stored = b.load(b.bitcast(b.gep(obj, [how]), P))        # d >= 0: *(obj + d)
        inside = b.ptrtoint(b.gep(obj, [b.neg(how)]), I64)       # d < 0: obj - d
        address = b.select(b.icmp_signed(">=", how, I64(0)), stored, inside)
        b.store(address, b.gep(copy, [pos]))
    kernel = b.inttoptr(word(0), kernel_ty.as_pointer())
    b.call(kernel, [copy, word(1), word(2), word(3), word(4)])
    refcount = b.bitcast(last, P)  # ob_refcnt, the first field of every object
    b.store(b.add(b.load(refcount), I64(1)), refcount)
    b.ret(last)
    return fn


def _emit_layout_checks(fn, b: ir.IRBuilder, block_obj, objs, at, n) -> None:
    """Check operands ``0 .. n-1`` against the records from word ``at`` on
    (``layout_checks``) with one call of the module's shared checker; on a difference
    return ``block_obj`` (one more reference). The builder is left where every check
    passed."""
    P = I64.as_pointer()
    checker = _layout_checker(fn.module)
    words = _words_of(b, block_obj)
    ok = b.call(checker, [objs, n if isinstance(n, ir.Value) else I64(n), words, at])
    good, mismatch = fn.append_basic_block("layouts.ok"), fn.append_basic_block("mismatch")
    b.cbranch(b.icmp_signed("!=", ok, I64(0)), good, mismatch)
    b.position_at_end(mismatch)
    refcount = b.bitcast(block_obj, P)
    b.store(b.add(b.load(refcount), I64(1)), refcount)
    b.ret(block_obj)
    b.position_at_end(good)


def _words_of(b: ir.IRBuilder, block_obj):
    """The block's int64 words (its numpy data pointer)."""
    P = I64.as_pointer()
    return b.load(b.bitcast(b.gep(block_obj, [I64(PYARRAY_OFFSETS[0])]), P.as_pointer()))


def _layout_checker(module: ir.Module) -> ir.Function:
    """``i64 lucid_eager_layouts(PyObject** objs, i64 n, i64* words, i64 at)``: 1 when
    operands ``0 .. n-1`` have the layouts of the records from word ``at`` on, else 0
    (one function for every checked trampoline: a loop, not n copies)."""
    name = "lucid_eager_layouts"
    if name in module.globals:
        return module.globals[name]
    P = I64.as_pointer()
    fn = ir.Function(module, ir.FunctionType(I64, [I8P.as_pointer(), I64, P, I64]), name)
    fn.linkage = "internal"
    fn.attributes.add("noinline")  # (one copy for the eight checked trampolines)
    objs, n, words, at = fn.args
    b = ir.IRBuilder(fn.append_basic_block("entry"))
    fail = fn.append_basic_block("fail")
    b.position_at_end(fail)
    b.ret(I64(0))
    b.position_at_end(fn.entry_basic_block)

    def word(k):
        return b.load(b.gep(words, [k]))

    def check(ok):
        cont = fn.append_basic_block("ok")
        b.cbranch(ok, cont, fail)
        b.position_at_end(cont)

    def field(obj, offset, ty=I64):
        return b.load(b.bitcast(b.gep(obj, [I64(offset)]), ty.as_pointer()))

    ndarray = word(at)
    pos = b.alloca(I64, name="record")
    b.store(b.add(at, I64(1)), pos)
    with _counted(fn, b, n, "operand") as k:
        rec = b.load(pos)
        is_array, scalar, after = (fn.append_basic_block(s) for s in ("array", "scalar", "next"))
        b.cbranch(b.icmp_signed("!=", word(rec), I64(0)), is_array, scalar)
        b.position_at_end(scalar)
        b.store(b.add(rec, I64(1)), pos)
        b.branch(after)
        b.position_at_end(is_array)
        obj = b.load(b.gep(objs, [k]))
        check(b.icmp_signed("==", field(obj, TYPE_OFFSET), ndarray))
        nd = b.sext(field(obj, ND_OFFSET, ir.IntType(32)), I64)
        check(b.and_(b.icmp_signed("==", field(obj, DESCR_OFFSET), word(b.add(rec, I64(1)))),
                     b.icmp_signed("==", nd, word(b.add(rec, I64(2))))))
        dims = b.inttoptr(field(obj, PYARRAY_OFFSETS[1]), P)
        strides = b.inttoptr(field(obj, PYARRAY_OFFSETS[2]), P)
        shape_at = b.add(rec, I64(3))
        with _counted(fn, b, nd, "dim") as d:
            same_dim = b.icmp_signed("==", b.load(b.gep(dims, [d])), word(b.add(shape_at, d)))
            same_stride = b.icmp_signed("==", b.load(b.gep(strides, [d])), word(b.add(b.add(shape_at, nd), d)))
            check(b.and_(same_dim, same_stride))
        b.store(b.add(shape_at, b.add(nd, nd)), pos)
        b.branch(after)
        b.position_at_end(after)
    b.ret(I64(1))
    return fn


class _counted:
    """``with _counted(fn, b, n, name) as i:`` the body for i = 0 .. n-1 (it may
    branch out)."""

    def __init__(self, fn, b, n, name):
        self.fn, self.b, self.n, self.name = fn, b, n, name

    def __enter__(self):
        fn, b = self.fn, self.b
        pre = b.block
        self.hdr, body, self.end = (fn.append_basic_block(f"{self.name}.{s}") for s in ("hdr", "body", "end"))
        b.branch(self.hdr)
        b.position_at_end(self.hdr)
        self.i = b.phi(I64)
        self.i.add_incoming(I64(0), pre)
        b.cbranch(b.icmp_signed("<", self.i, self.n), body, self.end)
        b.position_at_end(body)
        return self.i

    def __exit__(self, *exc):
        b = self.b
        self.i.add_incoming(b.add(self.i, I64(1)), b.block)
        b.branch(self.hdr)
        b.position_at_end(self.end)
        return False


def layout_checks(arrays) -> list:
    """The block words ``lucid_eager_checked_<n>`` compares its operands with:
    ``numpy.ndarray``'s address, then per operand ``[1, dtype object's address, ndim,
    shape..., strides...]`` for an array, ``[0]`` for a Python float (not checked).

    >>> layout_checks([np.zeros((2, 3), np.float32), 1.5])[1:]
    [1, ..., 2, 2, 3, 12, 4, 0]
    """
    words = [id(np.ndarray)]
    for a in arrays:
        words += [1, id(a.dtype), a.ndim, *a.shape, *a.strides] if isinstance(a, np.ndarray) else [0]
    return words


def _build_gemm_adapter(module: ir.Module) -> None:
    """``PyObject* lucid_eager_gemm(PyObject* block, PyObject** objs, i64 nargs)``: a
    ``METH_FASTCALL`` function calling a GEMM's ``_py`` entry (``gemm.py``) on
    ``a, b, c[, bias][, r]`` with the block's ``[entry address, alpha bits, has bias,
    has r]``, the stack workspace (no shared scratch: threads may share one block).
    Returns ``c`` (one more reference) when the entry computed it, else the block
    itself (the entry declined: odd strides, overlap, a workspace too big)."""
    P = I64.as_pointer()
    D = ir.DoubleType()
    entry_ty = ir.FunctionType(ir.IntType(32), [I8P, I8P, I8P, I8P, I8P, D, I8P, I64])
    fn = ir.Function(module, ir.FunctionType(I8P, [I8P, I8P.as_pointer(), I64]), "lucid_eager_gemm")
    fn.attributes.add("noinline")  # (its checked variant calls it)
    block_obj, objs, nargs = fn.args
    b = ir.IRBuilder(fn.append_basic_block("entry"))
    words = b.load(b.bitcast(b.gep(block_obj, [I64(PYARRAY_OFFSETS[0])]), P.as_pointer()))

    def word(k):
        return b.load(b.gep(words, [I64(k)]))
    has_bias, has_r = word(2), word(3)
    good, bad = fn.append_basic_block("good"), fn.append_basic_block("bad")
    b.cbranch(b.icmp_signed("==", nargs, b.add(I64(3), b.add(has_bias, has_r))), good, bad)
    b.position_at_end(bad)
    b.ret(ir.Constant(I8P, None))
    b.position_at_end(good)

    def obj(k):
        return b.load(b.gep(objs, [k if isinstance(k, ir.Value) else I64(k)]))
    null = ir.Constant(I8P, None)
    c = obj(2)
    bias = b.select(b.icmp_signed("!=", has_bias, I64(0)), obj(b.add(I64(3), I64(0))), null)
    r = b.select(b.icmp_signed("!=", has_r, I64(0)), obj(b.add(I64(2), b.add(has_bias, has_r))), null)
    alpha = b.bitcast(word(1), D)
    status = b.call(b.inttoptr(word(0), entry_ty.as_pointer()), [obj(0), obj(1), c, bias, r, alpha, null, I64(0)])
    result = b.select(b.icmp_signed("==", status, ir.Constant(ir.IntType(32), 0)), c, block_obj)
    refcount = b.bitcast(result, P)
    b.store(b.add(b.load(refcount), I64(1)), refcount)
    b.ret(result)
    _build_gemm_checked(module, fn)


def _build_gemm_checked(module: ir.Module, adapter: ir.Function) -> None:
    """``lucid_eager_gemm_checked``: the operands' layouts checked against the records
    after the adapter's four words (the output's record unchecked), then the adapter;
    the block itself when one differs (as when the entry declines)."""
    fn = ir.Function(module, adapter.function_type, "lucid_eager_gemm_checked")
    block_obj, objs, nargs = fn.args
    b = ir.IRBuilder(fn.append_basic_block("entry"))
    words = _words_of(b, block_obj)
    count = b.add(I64(3), b.add(b.load(b.gep(words, [I64(2)])), b.load(b.gep(words, [I64(3)]))))
    good, bad = fn.append_basic_block("good"), fn.append_basic_block("bad")
    b.cbranch(b.icmp_signed("==", nargs, count), good, bad)  # (the records cover this many)
    b.position_at_end(bad)
    b.ret(ir.Constant(I8P, None))
    b.position_at_end(good)
    _emit_layout_checks(fn, b, block_obj, objs, I64(GEMM_WORDS), nargs)
    b.ret(b.call(adapter, [block_obj, objs, nargs], tail=True))


class _MethodDef(ctypes.Structure):
    _fields_ = [("ml_name", ctypes.c_char_p), ("ml_meth", ctypes.c_void_p),
                ("ml_flags", ctypes.c_int), ("ml_doc", ctypes.c_char_p)]


_METH_FASTCALL = 0x0080
#: The modules whose source decides the generated code (their stamp is in the key).
GENERATOR = ("runtime.eager_call", "runtime.pyarray")
_LOCK = threading.Lock()
_DEFS: list = []   # [None, PyMethodDef for 1 operand, ..., the GEMM adapter's]; kept alive


def _method_defs():
    """One ``PyMethodDef`` per trampoline (compiled once per machine)."""
    with _LOCK:
        if not _DEFS:
            names = ([f"lucid_eager_call_{n}" for n in range(1, MAX_OPERANDS + 1)] + ["lucid_eager_gemm"]
                     + [f"lucid_eager_checked_{n}" for n in range(1, MAX_OPERANDS + 1)] + ["lucid_eager_gemm_checked"])
            lib = load_or_compile(f"eager_call:{source_stamp(*GENERATOR)}:n{MAX_OPERANDS}:t{MAX_TEMPLATE}", _build, names,
                                  pipeline=llvm.LOOPS)
            defs = [None]
            for name in names:  # defs[n]: n operands; defs[MAX_OPERANDS + 1]: the GEMM adapter;
                # defs[MAX_OPERANDS + 1 + n]: n operands, their layouts checked; last, the
                # GEMM adapter's checked variant
                defs.append(_MethodDef(name.encode(), lib.address(name), _METH_FASTCALL, None))
            _DEFS.extend(defs)
            _DEFS.append(lib)  # the machine code lives as long as the definitions
        return _DEFS


_new_builtin = ctypes.pythonapi.PyCFunction_NewEx
_new_builtin.restype = ctypes.py_object
_new_builtin.argtypes = [ctypes.c_void_p, ctypes.py_object, ctypes.c_void_p]


def _builtin(n: int, block: np.ndarray, checked: bool = False):
    """A builtin function object calling trampoline ``n`` (its checked variant) with
    ``block`` as its self."""
    return _new_builtin(ctypes.addressof(_method_defs()[n + (MAX_OPERANDS + 1 if checked else 0)]), block, None)


def fast_call(kernel, arrays, scalars=(), order=None, counter=None, out_shape=None, checked=None):
    """``run(*operands) -> output`` calling ``kernel`` (an ``ElementwiseKernel`` or
    ``ReductionKernel`` with one output) for operands with exactly the layouts of
    ``arrays``, through one trampoline call; None when this call cannot take that path
    (a layout the kernel plans differently, work big enough to split across threads,
    too many operands, or a runtime whose object layouts are not verified).

    ``scalars`` are the positions of 0-d float64 operands that callers pass as Python
    ``float`` objects (a Python number reaching the kernel as an immediate argument).
    ``order[k]`` is the kernel input that operand k is (default: the same position);
    the output comes last. ``counter[0]`` (a one-element list) counts the calls.
    ``out_shape``: the shape the output is allocated in (C order, the kernel's bytes:
    a reshape of its output), by default the kernel's own.

    ``checked``: the operands' example arrays as callers pass them (``arrays`` may be
    views of them): then ``run`` checks natively that its operands have exactly their
    layouts (type, dtype object, shape, strides) and returns ``run.block``, having run
    nothing, when one differs; for callers that skip the signature lookup."""
    if not LAYOUT_OK or (scalars and FLOAT_VALUE_OFFSET is None):
        return None
    order = list(range(len(arrays))) if order is None else list(order)
    operands = [np.asarray(a, np.float64) if k in scalars else a for k, a in enumerate(arrays)]
    kernel_inputs = [None] * len(operands)
    for k, j in enumerate(order):
        kernel_inputs[j] = operands[k]
    call = kernel.call_block(kernel_inputs)
    if call is None:
        return None
    address, ranges, template, kernel_positions, kernel_shape, out_dtype = call
    out_shape = kernel_shape if out_shape is None else out_shape
    positions = [kernel_positions[j] for j in order] + [kernel_positions[-1]]
    n = len(positions)
    if n > MAX_OPERANDS or len(template) > MAX_TEMPLATE:
        return None
    how = [-FLOAT_VALUE_OFFSET if k in scalars else PYARRAY_OFFSETS[0] for k in range(n)]
    checks = [] if checked is None else layout_checks([0.0 if k in scalars else a for k, a in enumerate(checked)])
    block = np.array([address, *ranges, len(template), *positions, *how, *template, *checks], np.int64)
    native = _builtin(n, block, checked is not None)  # holds the block
    empty, count = np.empty, counter if counter is not None else _Count
    if checked is not None:  # counted only when it ran (a declined call runs nothing)
        if n == 2:
            def run(a):
                out = native(a, empty(out_shape, out_dtype))
                if out is not block:
                    count[0] += 1
                return out
        elif n == 3:
            def run(a, b):
                out = native(a, b, empty(out_shape, out_dtype))
                if out is not block:
                    count[0] += 1
                return out
        else:
            def run(*operands):
                out = native(*operands, empty(out_shape, out_dtype))
                if out is not block:
                    count[0] += 1
                return out
    elif n == 2:  # one operand and the output (the unary ops): no argument tuples
        def run(a):
            count[0] += 1
            return native(a, empty(out_shape, out_dtype))
    elif n == 3:
        def run(a, b):
            count[0] += 1
            return native(a, b, empty(out_shape, out_dtype))
    else:
        def run(*operands):
            count[0] += 1
            return native(*operands, empty(out_shape, out_dtype))
    run.block = block
    return run


_Count = [0]  # where calls are counted when the caller gives no counter


def gemm_fast_call(step, counter=None, whole: bool = False, checked=None):
    """``run(a, b[, bias][, r]) -> C`` for an eager plan's one GEMM step (``steps.GemmStep``)
    small enough to stay on the calling thread: one builtin call into the kernel's
    ``_py`` entry, the step's general ``direct`` call when that entry declines. None for
    steps this does not cover (a 2-D bias, A read through a broadcast, a batched product, operands
    seen with other rows (``views``), no ``_py`` entry, or work that may split across
    threads, unless ``whole``: the caller runs it on this thread knowing it).

    ``checked``: example operands ``(a, b[, bias][, r])`` as callers pass them: ``run``
    then checks their layouts natively and returns ``run.block``, having run nothing,
    when one differs or the entry declines (see ``fast_call``); not for a transposed A."""
    gemm = step.gemm
    if (not LAYOUT_OK or gemm._pyfn is None or step.bias_2d or step.a_shape is not None
            or step.empty or (step.splits and not whole) or step.batched or step.views):
        return None
    trans_a, trans_b, a_gate_t = step.trans_a, step.trans_b, step.r_is_a_gate and step.trans_a
    if checked is not None and (trans_a or a_gate_t):
        return None
    address = ctypes.cast(gemm._pyfn, ctypes.c_void_p).value
    alpha_bits = int(np.float64(step.alpha).view(np.int64))
    words = [address, alpha_bits, int(step.has_bias), int(step.has_residual)]
    if checked is not None:  # the objects the adapter receives: a, b (or b.T), C (unchecked), extras
        a, b, *extra = checked
        b = b.T if trans_b else b
        words += layout_checks([a, b, 0.0, *extra])
        gemm._prepare_arrays(a, b)  # the GEMM core's paths of these layouts
    else:
        gemm.prepare(*step.matrix)  # ... or of any layout
    block = np.array(words, np.int64)
    defs = _method_defs()
    native = _new_builtin(ctypes.addressof(defs[MAX_OPERANDS + 1] if checked is None else defs[2 * MAX_OPERANDS + 2]),
                          block, None)
    out_shape, dtype, general = step.out_shape, gemm.dtype, step.direct
    empty, count = np.empty, counter if counter is not None else _Count
    if checked is not None:  # counted only when it ran (a declined call runs nothing)
        def run(a, b, *extra):
            c = native(a, b.T if trans_b else b, empty(out_shape, dtype), *extra)
            if c is not block:
                count[0] += 1
            return c
        run.block = block
        return run

    if not (trans_a or a_gate_t):
        if trans_b:
            def run(a, b, *extra):
                count[0] += 1
                c = native(a, b.T, empty(out_shape, dtype), *extra)
                return c if c is not block else general(a, b, *extra)
        else:
            def run(a, b, *extra):
                count[0] += 1
                c = native(a, b, empty(out_shape, dtype), *extra)
                return c if c is not block else general(a, b, *extra)
        return run

    def run(a, b, *extra):
        count[0] += 1
        if a_gate_t:
            extra = extra[:-1] + (extra[-1].T,)
        c = native(a.T, b.T if trans_b else b, empty(out_shape, dtype), *extra)
        return c if c is not block else general(a, b, *extra)
    return run
