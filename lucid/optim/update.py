"""Optimiser updates as compiled kernels: each rule is a small elementwise graph
(parameter, gradient, state buffers and hyper-parameters in; new parameter and state
out), run as one fused native loop that writes the parameter and its state in place.
Hyper-parameters are run-time scalars, so a learning-rate schedule never recompiles.
"""
from __future__ import annotations

import numpy as np

from lucid_ir.builder import GraphBuilder

from .. import backend


class InPlaceRule:
    """``rule(b, *values) -> new values`` over ``n_buffers`` arrays (updated in place,
    in order), ``n_reads`` read-only arrays and ``n_scalars`` scalars."""

    def __init__(self, rule, n_buffers: int, n_reads: int, n_scalars: int):
        self.rule = rule
        self.n_buffers, self.n_reads, self.n_scalars = n_buffers, n_reads, n_scalars
        self._runs: dict = {}
        self._scalars: dict = {}

    def _build(self, shape, dtype: str):
        b = GraphBuilder()
        arrays = [b.input(shape, dtype) for _ in range(self.n_buffers + self.n_reads)]
        scalars = [b.input((), dtype) for _ in range(self.n_scalars)]
        outs = self.rule(b, *arrays, *scalars)
        return backend.in_place_executable(b.build(list(outs)))

    def __call__(self, buffers, reads, scalars, state: dict | None = None) -> None:
        """Update ``buffers`` in place. ``state`` (the optimiser's dict for this
        parameter) keeps the prepared kernel call between steps."""
        p = buffers[0]
        key = (p.shape, p.dtype, backend.backend_name())
        run = self._runs.get(key)
        if run is None:
            run = self._runs[key] = self._build(p.shape, p.dtype.name)
        values = (p.dtype, *scalars)
        constants = self._scalars.get(values)
        if constants is None:  # hyper-parameters as 0-d arrays, made once per value
            if len(self._scalars) > 1024:
                self._scalars.clear()
            constants = self._scalars[values] = [np.asarray(p.dtype.type(s)) for s in scalars]
        prepared = None if state is None else state.setdefault("prepared", {})
        if prepared is not None and prepared.get("key") != key:
            prepared.clear()
            prepared["key"] = key
        run(list(buffers) + list(reads) + constants, buffers, prepared)


    def trace(self, tracer, buffers, reads, scalars) -> None:
        """The same update inside a ``lucid.compile`` trace: the rule's nodes join the
        traced graph, ``scalars()`` is read at every call, and ``buffers`` (tensors) are
        assigned their new values (written back in place by each call)."""
        dtype = buffers[0].dtype
        values = [tracer.value_of(t) for t in list(buffers) + list(reads)]
        values += [tracer.value_of(s) for s in tracer.scalars(scalars, self.n_scalars, dtype)]
        for t, v in zip(buffers, self.rule(tracer.builder, *values)):
            tracer.assign(t, tracer.symbolic(v, False))


def _sgd(b, p, buf, g, lr, wd, decay, grad_scale, momentum, nesterov):
    """d = g + wd·p;  buf' = decay·buf + grad_scale·d;  p' = p - lr·(nesterov ? d + momentum·buf' : buf')."""
    d = b.emit("add", g, b.emit("mul", wd, p))
    buf2 = b.emit("add", b.emit("mul", decay, buf), b.emit("mul", grad_scale, d))
    step = b.emit("add", b.emit("mul", nesterov, b.emit("add", d, b.emit("mul", momentum, buf2))),
                  b.emit("mul", b.emit("sub", b.constant(1.0, (), p.dtype), nesterov), buf2))
    return b.emit("sub", p, b.emit("mul", lr, step)), buf2


def _sgd_plain(b, p, g, lr, wd):
    return (b.emit("sub", p, b.emit("mul", lr, b.emit("add", g, b.emit("mul", wd, p)))),)


def _adam(b, p, m, v, g, wd, b1, b2, step, inv_bc2, eps):
    """m' = b1·m + (1-b1)·g;  v' = b2·v + (1-b2)·g²;  p' = p - step·m' / (√(v'·inv_bc2) + eps)."""
    one = b.constant(1.0, (), p.dtype)
    g = b.emit("add", g, b.emit("mul", wd, p))
    m2 = b.emit("add", b.emit("mul", b1, m), b.emit("mul", b.emit("sub", one, b1), g))
    v2 = b.emit("add", b.emit("mul", b2, v), b.emit("mul", b.emit("sub", one, b2), b.emit("mul", g, g)))
    denom = b.emit("add", b.emit("sqrt", b.emit("mul", v2, inv_bc2)), eps)
    return b.emit("sub", p, b.emit("div", b.emit("mul", step, m2), denom)), m2, v2


SGD_PLAIN = InPlaceRule(_sgd_plain, n_buffers=1, n_reads=1, n_scalars=2)
SGD_MOMENTUM = InPlaceRule(_sgd, n_buffers=2, n_reads=1, n_scalars=6)
ADAM = InPlaceRule(_adam, n_buffers=3, n_reads=1, n_scalars=6)
