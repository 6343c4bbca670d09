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

Only layouts numpy and CPython are verified to have (``pyarray.LAYOUT_OK``, and a
float's value at byte 16) get trampolines; elsewhere ``fast_call`` returns None and
callers keep the general path.

>>> import numpy as np
>>> from lucid_ir.builder import GraphBuilder
>>> from lucid_codegen.elementwise import ElementwiseKernel
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

from .cache import load_or_compile
from .pyarray import LAYOUT_OK, PYARRAY_OFFSETS

__all__ = ["fast_call", "MAX_OPERANDS", "FLOAT_VALUE_OFFSET"]

MAX_OPERANDS = 8        # trampolines for 1..8 operands
MAX_TEMPLATE = 256      # words of argument template a trampoline copies (its stack copy)
HEADER = 6
VERSION = 1             # part of the cache key: bump when the trampolines change

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
    module = ir.Module("lucid_eager_call")
    P = I64.as_pointer()
    kernel_ty = ir.FunctionType(ir.VoidType(), [P, I64, I64, I64, I64])
    data_off = PYARRAY_OFFSETS[0]
    for n in range(1, MAX_OPERANDS + 1):
        fn = ir.Function(module, ir.FunctionType(ir.VoidType(), [I8P] * (n + 1)), f"lucid_eager_call_{n}")
        block_obj, *objs = fn.args
        b = ir.IRBuilder(fn.append_basic_block("entry"))
        words = b.load(b.bitcast(b.gep(block_obj, [I64(data_off)]), P.as_pointer()))
        copy = b.alloca(I64, MAX_TEMPLATE, name="args")

        def word(k):
            return b.load(b.gep(words, [k if isinstance(k, ir.Value) else I64(k)]))
        length = word(5)
        template = b.gep(words, [I64(HEADER + 2 * n)])
        # copy the template (a counted loop; L is small)
        pre = b.block
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
        for k, obj in enumerate(objs):
            pos, how = word(HEADER + k), word(HEADER + n + k)
            stored = b.load(b.bitcast(b.gep(obj, [how]), P))        # d >= 0: *(obj + d)
            inside = b.ptrtoint(b.gep(obj, [b.neg(how)]), I64)       # d < 0: obj - d
            address = b.select(b.icmp_signed(">=", how, I64(0)), stored, inside)
            b.store(address, b.gep(copy, [pos]))
        kernel = b.inttoptr(word(0), kernel_ty.as_pointer())
        b.call(kernel, [copy, word(1), word(2), word(3), word(4)])
        b.ret_void()
    return module


_LOCK = threading.Lock()
_TRAMPOLINES: list = []


def _trampolines():
    """The ctypes entries ``[None, call_1, …, call_8]`` (compiled once per machine)."""
    with _LOCK:
        if not _TRAMPOLINES:
            lib = load_or_compile(f"eager_call:v{VERSION}:n{MAX_OPERANDS}:t{MAX_TEMPLATE}", _build,
                                  [f"lucid_eager_call_{n}" for n in range(1, MAX_OPERANDS + 1)])
            entries = [None]
            for n in range(1, MAX_OPERANDS + 1):
                # PYFUNCTYPE keeps the GIL: these calls are small (big work splits across
                # threads on the general path), and releasing it costs more than they do
                proto = ctypes.PYFUNCTYPE(None, *([ctypes.py_object] * (n + 1)))
                entries.append(proto(lib.address(f"lucid_eager_call_{n}")))
            entries.append(lib)  # keep the library alive with its entries
            _TRAMPOLINES.extend(entries)
        return _TRAMPOLINES


def fast_call(kernel, arrays, scalars=(), order=None):
    """``run(*operands) -> output`` calling ``kernel`` (an ``ElementwiseKernel`` or
    ``ReductionKernel`` with one output) for operands with exactly the layouts of
    ``arrays``, through one trampoline call; None when this call cannot take that path
    (a layout the kernel plans differently, work big enough to split across threads,
    too many operands, or a runtime whose object layouts are not verified).

    ``scalars`` are the positions of 0-d float64 operands that callers pass as Python
    ``float`` objects (a Python number reaching the kernel as an immediate argument).
    ``order[k]`` is the kernel input that operand k is (default: the same position);
    the output comes last."""
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
    address, ranges, template, kernel_positions, out_shape, out_dtype = call
    positions = [kernel_positions[j] for j in order] + [kernel_positions[-1]]
    n = len(positions)
    if n > MAX_OPERANDS or len(template) > MAX_TEMPLATE:
        return None
    how = [-FLOAT_VALUE_OFFSET if k in scalars else PYARRAY_OFFSETS[0] for k in range(n)]
    block = np.array([address, *ranges, len(template), *positions, *how, *template], np.int64)
    trampoline = _trampolines()[n]
    empty = np.empty

    def run(*operands):
        out = empty(out_shape, out_dtype)
        trampoline(block, *operands, out)
        return out
    run.block = block  # kept alive with the closure; visible to tests
    return run
