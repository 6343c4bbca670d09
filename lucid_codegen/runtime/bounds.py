"""Bounds checking for native kernels (``LUCID_CHECK_BOUNDS=1``).

With the variable set when a :class:`~lucid_codegen.runtime.plan.Plan` is built, the plan
is a :class:`CheckedPlan`: every kernel writes its outputs into views that sit in the
middle of a larger buffer whose *guard regions* (``GUARD_BYTES`` on each side) hold a
fixed pseudo-random byte pattern. After each kernel call the guards are compared with
the pattern, and the kernel's inputs (when they are small enough to snapshot) with
their contents before the call. A change raises ``RuntimeError`` naming the kernel,
the output and how many bytes changed, before the plan goes on.

The interior of each output is also filled with the pattern, so an element the kernel
forgets to write comes out as garbage that the differential fuzzer sees.

Normal plans are untouched: the choice is made once, when the plan is built.

>>> import numpy as np
>>> view, buf = guarded_empty((2, 3), np.float32)
>>> view.shape, check_guards(buf, view.nbytes)
((2, 3), None)
"""
from __future__ import annotations

import functools
import os

import numpy as np


from lucid_codegen.runtime.plan import Plan

__all__ = ["enabled", "GUARD_BYTES", "guarded_empty", "check_guards", "guard_damage",
           "CheckedStep", "CheckedPlan"]

#: bytes of guard before and after each output (a multiple of 64: alignment is kept)
GUARD_BYTES = 256
#: inputs larger than this are not snapshotted (broadcast views of huge shapes)
SNAPSHOT_LIMIT = 1 << 24


def enabled() -> bool:
    return os.environ.get("LUCID_CHECK_BOUNDS", "0").strip().lower() not in ("", "0", "false", "off", "no")


@functools.cache
def _base_pattern() -> np.ndarray:
    """The fill pattern's 64 KiB (made on first use: ``numpy.random`` takes ~10 ms to
    import, which a plan's first call would otherwise pay with the check off)."""
    return np.random.default_rng(0x1AC1D).integers(0, 256, size=1 << 16, dtype=np.uint8)


def _pattern(n: int) -> np.ndarray:
    base = _base_pattern()
    reps = -(-n // base.size)
    return np.tile(base, reps)[:n] if reps > 1 else base[:n]


def guarded_empty(shape, dtype) -> tuple[np.ndarray, np.ndarray]:
    """``(view, buffer)``: a C-contiguous array of ``shape`` inside ``buffer`` (uint8),
    with ``GUARD_BYTES`` of pattern on both sides (and pattern inside)."""
    dtype = np.dtype(dtype)
    nbytes = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    buf = np.empty(nbytes + 2 * GUARD_BYTES, np.uint8)
    buf[:] = _pattern(buf.size)
    view = buf[GUARD_BYTES:GUARD_BYTES + nbytes].view(dtype).reshape(shape)
    return view, buf


def guard_damage(buf: np.ndarray, nbytes: int) -> tuple[int, int]:
    """How many guard bytes changed (before, after) the ``nbytes`` of payload."""
    pat = _pattern(buf.size)
    before = int(np.count_nonzero(buf[:GUARD_BYTES] != pat[:GUARD_BYTES]))
    after = int(np.count_nonzero(buf[GUARD_BYTES + nbytes:] != pat[GUARD_BYTES + nbytes:]))
    return before, after


def check_guards(buf: np.ndarray, nbytes: int, what: str = "kernel") -> None:
    before, after = guard_damage(buf, nbytes)
    if before or after:
        raise RuntimeError(f"bounds check: {what} wrote outside its output buffer "
                           f"({before} guard bytes changed before it, {after} after it)")


def kernel_name(node) -> str:
    ops = [op for op in getattr(node, "ops", [node.op]) if op != "constant"]
    shapes = ", ".join(str(v.type) for v in node.outs)
    return f"kernel[{getattr(node, 'kind', node.op)}: {' + '.join(ops)}] -> ({shapes})"


class CheckedStep:
    """Runs one kernel step into guarded outputs, then checks guards and inputs."""

    def __init__(self, step, node):
        self.step, self.node = step, node
        self.name = kernel_name(node)
        self.out_types = [(v.shape, np.dtype(v.dtype)) for v in node.outs]

    def __call__(self, *arrays):
        snaps = [(k, a, a.tobytes()) for k, a in enumerate(arrays)
                 if isinstance(a, np.ndarray) and a.size <= SNAPSHOT_LIMIT]
        guarded = [guarded_empty(shape, dtype) for shape, dtype in self.out_types]
        results = self.step.call_into([v for v, _ in guarded], *arrays)
        for k, ((view, buf), r) in enumerate(zip(guarded, results)):
            before, after = guard_damage(buf, view.nbytes)
            if before or after:
                raise RuntimeError(f"bounds check: {self.name} wrote outside output {k} "
                                   f"{view.dtype}{list(view.shape)} ({before} guard bytes changed "
                                   f"before it, {after} after it)")
            if r is not view:
                raise RuntimeError(f"bounds check: {self.name} did not write into the output "
                                   f"buffer it was given (output {k})")
        for k, a, snap in snaps:
            if a.tobytes() != snap:
                raise RuntimeError(f"bounds check: {self.name} modified its input {k} "
                                   f"{a.dtype}{list(a.shape)}")
        return results


class CheckedPlan(Plan):
    """A plan whose kernel steps run through :class:`CheckedStep` (``self.steps`` keeps
    the plain steps, for introspection). Donated inputs (``in_place``) are never written
    by a kernel here: every kernel writes a guarded buffer, copied into the input at the
    end of the call."""

    writes_in_place = False

    def __init__(self, fused, in_place=None):
        super().__init__(fused, in_place)
        self.exec_steps = [(CheckedStep(fn, node) if kind != "view" else fn, ins, outs)
                           for (fn, ins, outs), kind, node in zip(self.steps, self.kinds, self.step_nodes)]
        self.single = None
