"""Counter-based random numbers: ``random_uniform`` and ``random_normal``.

``random_uniform[shape, dtype](key)`` gives, at every element, a number that depends
only on the int64 scalar ``key`` and the element's position: its C-order linear index
``i`` within ``shape``. Nothing else (no state, no thread split, no fusion) can change
it, so a compiled kernel and this numpy reference agree bit for bit, and running the
same graph with the same key reproduces it. ``lucid.compile`` feeds a fresh key drawn
from lucid's generator at every call (see ``lucid.tracing.Tracer.seed``).

The bits are SplitMix64's output for state ``key + c * GAMMA``: a 64-bit integer
mixing (two xor-shift-multiply rounds, Stafford's "Mix13") of a Weyl sequence. The
counter ``c`` is ``i + 1`` for ``random_uniform``; ``random_normal`` takes two values,
``c = 2i + 1`` and ``2i + 2``. From 64 bits ``z``:

- uniform on [0, 1): ``(z >> 40) * 2**-24`` in float32, ``(z >> 11) * 2**-53`` in
  float64 (exact, so never 1.0; numpy's own conversion);
- normal: Box-Muller, ``sqrt(-2 log u1) * cos(2 pi u2)`` with ``u1`` in (0, 1] (the
  uniform above plus one step) and ``u2`` in [0, 1), computed in the output dtype
  (float32 samples reach 5.8 standard deviations, float64 ones 8.6).

They take no gradient (the key is an integer) and are elementwise in the sense that
matters for fusion: a kernel computes them in its own loop, from the index of the
element it is at (``lucid_codegen.kernels.lowering``), so they fuse only into a loop over
exactly their shape.

>>> import numpy as np
>>> from lucid_ir.builder import GraphBuilder
>>> from lucid_ir.interpreter import interpret
>>> b = GraphBuilder()
>>> key = b.input((), "int64")
>>> u = b.emit("random_uniform", key, shape=(2, 3), dtype="float64")
>>> str(u.type)
'f64[2,3]'
>>> a, = interpret(b.build([u]), [np.array(7)])
>>> bool(((a >= 0) & (a < 1)).all()), len(set(a.ravel().tolist()))
(True, 6)
>>> bool((interpret(b.build([u]), [np.array(7)])[0] == a).all())  # a function of the key
True
"""
from __future__ import annotations

import numpy as np

from ..types import FLOAT_DTYPES, TensorType, check_dtype
from . import OpDef, register

#: SplitMix64's constants: the Weyl increment (2**64 / golden ratio) and the mixer's
GAMMA = 0x9E3779B97F4A7C15
MIX1 = 0xBF58476D1CE4E5B9
MIX2 = 0x94D049BB133111EB
#: right shifts that keep the mantissa's worth of top bits, and their scale
MANTISSA = {"float32": (40, 2.0 ** -24), "float64": (11, 2.0 ** -53)}


def counter_bits(key, counters: np.ndarray) -> np.ndarray:
    """SplitMix64 of ``key + counters * GAMMA`` (uint64 arithmetic, wrapping)."""
    k = np.asarray(key, np.int64).reshape(()).view(np.uint64)
    z = k + counters.astype(np.uint64) * np.uint64(GAMMA)
    z = (z ^ (z >> np.uint64(30))) * np.uint64(MIX1)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(MIX2)
    return z ^ (z >> np.uint64(31))


def to_unit(z: np.ndarray, dtype: str, open_below: bool = False) -> np.ndarray:
    """64 random bits as a float of ``dtype`` in [0, 1) (in (0, 1] if ``open_below``)."""
    shift, scale = MANTISSA[dtype]
    top = z >> np.uint64(shift)
    if open_below:
        top = top + np.uint64(1)
    return top.astype(dtype) * np.asarray(scale, dtype)


class _Random(OpDef):
    group, kind, random = "elementwise", "random", True
    arity = 1
    attr_names = ("shape", "dtype")

    def normalize_attrs(self, inputs, attrs):
        super().normalize_attrs(inputs, attrs)
        shape = tuple(int(d) for d in attrs["shape"])
        if any(d < 0 for d in shape):
            raise ValueError(f"{self.name}: negative dimension in shape {shape}")
        dtype = check_dtype(attrs.get("dtype", "float32"))
        if dtype not in FLOAT_DTYPES:
            raise TypeError(f"{self.name}: draws float32 or float64 numbers, not {dtype}")
        return {"shape": shape, "dtype": dtype}

    def infer(self, types, attrs):
        (key,) = types
        if key.dtype != "int64" or key.shape != ():
            raise TypeError(f"{self.name}: the key must be an int64 scalar (i64[]), got {key}")
        return TensorType(attrs["shape"], attrs["dtype"])

    def grad(self, b, node, g):
        return [None]


@register
class RandomUniform(_Random):
    """``random_uniform[shape, dtype](key)``: uniform on [0, 1) (see the module doc)."""

    name = "random_uniform"

    def evaluate(self, arrays, attrs):
        shape, dtype = attrs["shape"], attrs["dtype"]
        counters = np.arange(1, int(np.prod(shape)) + 1, dtype=np.uint64)
        return to_unit(counter_bits(arrays[0], counters), dtype).reshape(shape)


@register
class RandomNormal(_Random):
    """``random_normal[shape, dtype](key)``: standard normal, by Box-Muller (see the
    module doc)."""

    name = "random_normal"

    def evaluate(self, arrays, attrs):
        shape, dtype = attrs["shape"], attrs["dtype"]
        first = np.arange(int(np.prod(shape)), dtype=np.uint64) * np.uint64(2) + np.uint64(1)
        u1 = to_unit(counter_bits(arrays[0], first), dtype, open_below=True)
        u2 = to_unit(counter_bits(arrays[0], first + np.uint64(1)), dtype)
        two, two_pi = np.asarray(-2.0, dtype), np.asarray(2.0 * np.pi, dtype)
        r = np.sqrt(two * np.log(u1))
        return (r * np.cos(two_pi * u2)).reshape(shape)
