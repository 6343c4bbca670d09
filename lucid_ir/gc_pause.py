"""Python's cyclic garbage collector held back while a compilation allocates.

A compilation allocates Python objects by the hundred thousand (graph nodes, llvmlite
instructions and their operands, which refer to one another in cycles) and keeps most
of them until the module is compiled. At the default threshold (a first-generation
collection every 700 net allocations) the collector runs hundreds of times during one
compilation, promotes the IR it finds alive and scans it again in the older
generations: about a tenth of the first call of a compiled MLP training step with an
empty kernel cache (77 of 800 ms, ``gc.callbacks``), all of it holding the GIL, so the
compile threads wait on it too. ``paused()`` raises the first generation's threshold
while any thread is inside it (nested and concurrent uses count; the last one out
restores the thresholds it found), as mypy does for its whole run. In ``lucid_ir``
because every layer compiles: lucid's tracing and passes, lucid_codegen's IR building: the collector still
runs, every :data:`PAUSED_THRESHOLD` allocations, and frees the modules' cycles after.

>>> import gc
>>> before = gc.get_threshold()
>>> with paused():
...     gc.get_threshold()[0] >= PAUSED_THRESHOLD or before[0] == 0
True
>>> gc.get_threshold() == before
True
"""
from __future__ import annotations

import contextlib
import gc
import threading

__all__ = ["paused", "PAUSED_THRESHOLD"]

#: the first generation's threshold inside ``paused()`` (unless it was higher, or 0: off)
PAUSED_THRESHOLD = 100_000

_LOCK = threading.Lock()
_STATE = {"depth": 0, "saved": None}


@contextlib.contextmanager
def paused():
    """Run the block with the collector's first-generation threshold raised (see above)."""
    with _LOCK:
        if _STATE["depth"] == 0:
            saved = _STATE["saved"] = gc.get_threshold()
            if saved[0] and saved[0] < PAUSED_THRESHOLD:
                gc.set_threshold(PAUSED_THRESHOLD, *saved[1:])
        _STATE["depth"] += 1
    try:
        yield
    finally:
        with _LOCK:
            _STATE["depth"] -= 1
            if _STATE["depth"] == 0:
                gc.set_threshold(*_STATE["saved"])
