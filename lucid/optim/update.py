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


def _sgd(b, p, buf, g, sign, lr, wd, decay, grad_scale, momentum, nesterov):
    """d = ±g + wd·p;  buf' = decay·buf + grad_scale·d;  p' = p - lr·(nesterov ? d + momentum·buf' : buf')."""
    d = _decayed_gradient(b, p, g, sign, wd)
    buf2 = b.emit("add", b.emit("mul", decay, buf), b.emit("mul", grad_scale, d))
    step = b.emit("add", b.emit("mul", nesterov, b.emit("add", d, b.emit("mul", momentum, buf2))),
                  b.emit("mul", b.emit("sub", b.constant(1.0, (), p.dtype), nesterov), buf2))
    return b.emit("sub", p, b.emit("mul", lr, step)), buf2


def _sgd_plain(b, p, g, sign, lr, wd):
    """p' = p - lr·(±g + wd·p)."""
    d = _decayed_gradient(b, p, g, sign, wd)
    return (b.emit("sub", p, b.emit("mul", lr, d)),)


def _decayed_gradient(b, p, g, sign, wd):
    """±g + wd·p: the gradient, negated to maximise, with L2 weight decay."""
    return b.emit("add", b.emit("mul", sign, g), b.emit("mul", wd, p))


def _lerp(b, start, end, weight):
    """start + weight·(end - start) (``torch.lerp`` for weights below one half)."""
    return b.emit("add", start, b.emit("mul", weight, b.emit("sub", end, start)))


def _adam_rule(amsgrad: bool):
    def adam(b, p, m, v, *rest):
        """m' = lerp(m, g, 1-b1);  v' = b2·v + (1-b2)·g²;  v̂ = max(v̂, v') if amsgrad;
        p' = p·shrink - step·m' / (√v̂ / √(1-b2^t) + eps)  (shrink = 1 - lr·wd for AdamW)."""
        vmax, rest = (rest[0], rest[1:]) if amsgrad else (None, rest)
        g, sign, wd, shrink, w1, b2, w2, step, bc2_sqrt, eps = rest
        g = _decayed_gradient(b, p, g, sign, wd)
        m2 = _lerp(b, m, g, w1)
        v2 = b.emit("add", b.emit("mul", v, b2), b.emit("mul", w2, b.emit("mul", g, g)))
        vmax2 = b.emit("maximum", vmax, v2) if amsgrad else v2
        denom = b.emit("add", b.emit("div", b.emit("sqrt", vmax2), bc2_sqrt), eps)
        p2 = b.emit("sub", b.emit("mul", p, shrink), b.emit("mul", step, b.emit("div", m2, denom)))
        return (p2, m2, v2, vmax2) if amsgrad else (p2, m2, v2)
    return adam


def _rmsprop_rule(centered: bool, momentum: bool):
    def rmsprop(b, p, sq, *rest):
        """s' = α·s + (1-α)·g²;  a' = lerp(a, g, 1-α) if centered;  d = √(s' - a'²) + eps;
        buf' = μ·buf + g/d, p' = p - lr·buf' with momentum, else p' = p - lr·g/d."""
        rest = list(rest)
        avg = rest.pop(0) if centered else None
        buf = rest.pop(0) if momentum else None
        g, sign, wd, alpha, w, eps, lr, mu = rest
        g = _decayed_gradient(b, p, g, sign, wd)
        sq2 = b.emit("add", b.emit("mul", sq, alpha), b.emit("mul", w, b.emit("mul", g, g)))
        outs = [sq2]
        if centered:
            avg2 = _lerp(b, avg, g, w)
            d = b.emit("sqrt", b.emit("sub", sq2, b.emit("mul", avg2, avg2)))
            outs.append(avg2)
        else:
            d = b.emit("sqrt", sq2)
        d = b.emit("add", d, eps)
        if momentum:
            buf2 = b.emit("add", b.emit("mul", buf, mu), b.emit("div", g, d))
            outs.append(buf2)
            p2 = b.emit("sub", p, b.emit("mul", lr, buf2))
        else:
            p2 = b.emit("sub", p, b.emit("mul", lr, b.emit("div", g, d)))
        return (p2, *outs)
    return rmsprop


def _adagrad(b, p, total, g, sign, wd, clr, eps):
    """s' = s + g²;  p' = p - clr·g / (√s' + eps)."""
    g = _decayed_gradient(b, p, g, sign, wd)
    total2 = b.emit("add", total, b.emit("mul", g, g))
    d = b.emit("add", b.emit("sqrt", total2), eps)
    return b.emit("sub", p, b.emit("mul", clr, b.emit("div", g, d))), total2


SGD_PLAIN = InPlaceRule(_sgd_plain, n_buffers=1, n_reads=1, n_scalars=3)
SGD_MOMENTUM = InPlaceRule(_sgd, n_buffers=2, n_reads=1, n_scalars=7)
ADAM = {ams: InPlaceRule(_adam_rule(ams), n_buffers=4 if ams else 3, n_reads=1, n_scalars=9)
        for ams in (False, True)}
RMSPROP = {(c, m): InPlaceRule(_rmsprop_rule(c, m), n_buffers=2 + c + m, n_reads=1, n_scalars=7)
           for c in (False, True) for m in (False, True)}
ADAGRAD = InPlaceRule(_adagrad, n_buffers=2, n_reads=1, n_scalars=4)
