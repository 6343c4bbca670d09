"""Optimiser updates as compiled kernels: each rule is a small elementwise graph
(parameter, gradient, state buffers and hyper-parameters in; new parameter and state
out), run as one fused native loop that writes the parameter and its state in place.
Hyper-parameters are run-time scalars, so a learning-rate schedule never recompiles.
Eagerly, the parameters of one rule and dtype are updated together (``InPlaceRule.many``,
PyTorch's ``foreach``): one native call runs every parameter's loop.
"""
from __future__ import annotations

import numpy as np

from lucid_ir import pipeline
from lucid_ir.builder import GraphBuilder

from .. import backend, dispatch


class InPlaceRule:
    """``rule(b, *values) -> new values`` over ``n_buffers`` arrays (updated in place,
    in order), ``n_reads`` read-only arrays and ``n_scalars`` scalars."""

    def __init__(self, rule, n_buffers: int, n_reads: int, n_scalars: int):
        self.rule = rule
        self.n_buffers, self.n_reads, self.n_scalars = n_buffers, n_reads, n_scalars
        self._runs: dict = {}
        self._scalars: dict = {}
        self._many: dict = dispatch.ChainCache(64)   # (shapes, dtype, backend) -> executable

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
        constants = self._constants(p.dtype, scalars)
        prepared = None if state is None else state.setdefault("prepared", {})
        if prepared is not None and prepared.get("key") != key:
            prepared.clear()
            prepared["key"] = key
        run(list(buffers) + list(reads) + constants, buffers, prepared)

    def _constants(self, dtype, scalars) -> list:
        """The hyper-parameters as 0-d arrays of ``dtype``, made once per value."""
        values = (dtype, *scalars)
        constants = self._scalars.get(values)
        if constants is None:
            if len(self._scalars) > 1024:
                self._scalars.clear()
            constants = self._scalars[values] = [np.asarray(dtype.type(s)) for s in scalars]
        return constants

    def many(self, items) -> None:
        """Several parameters' updates in one call: ``items`` are ``(buffers, reads,
        scalars)`` as ``__call__`` takes them, every buffer of one float dtype and no
        array in two items. Each item is the rule's graph on its own arrays, so the
        values are one call's each (the same operations in the same order)."""
        dtype = items[0][0][0].dtype
        key = (tuple((bufs[0].shape, tuple(r.shape for r in reads)) for bufs, reads, _ in items), dtype,
               backend.backend_name())
        run = self._many.get(key)
        if run is None:
            run = self._many[key] = self._build_many(key[0], dtype.name)
        arrays = []
        for buffers, reads, scalars in items:
            arrays += [*buffers, *reads, *self._constants(dtype, scalars)]
        run(arrays)

    def _build_many(self, shapes, dtype: str):
        """The plan of ``many`` for parameters of ``shapes`` (each item's buffers' shape
        and its reads'): every item's new buffers written into its buffers."""
        b = GraphBuilder()
        outs, donated, at = [], {}, 0
        for shape, read_shapes in shapes:
            arrays = [b.input(shape, dtype) for _ in range(self.n_buffers)]
            arrays += [b.input(r, dtype) for r in read_shapes]
            scalars = [b.input((), dtype) for _ in range(self.n_scalars)]
            for j, v in enumerate(self.rule(b, *arrays, *scalars)):
                donated[len(outs)] = at + j
                outs.append(v)
            at += len(arrays) + len(scalars)
        fused = pipeline.run(b.build(outs), pipeline.EAGER, "update").fused
        return backend.executable(fused, in_place=donated)


    def trace(self, tracer, buffers, reads, scalars) -> None:
        """The same update inside a ``lucid.compile`` trace: the rule's nodes join the
        traced graph, ``scalars()`` is read at every call, and ``buffers`` (tensors) are
        assigned their new values (written back in place by each call)."""
        dtype = buffers[0].dtype
        values = [tracer.value_of(t) for t in list(buffers) + list(reads)]
        values += [tracer.value_of(s) for s in tracer.scalars(scalars, self.n_scalars, dtype)]
        for t, v in zip(buffers, self.rule(tracer.builder, *values)):
            tracer.assign(t, tracer.symbolic(v, False))


def _direction(b, p, g, maximize: bool, wd):
    """The update's gradient: negated to maximise, plus ``wd·p`` (L2 weight decay) when
    ``wd`` is given (each optimiser omits what its options turn off, as PyTorch does)."""
    d = b.emit("neg", g) if maximize else g
    return d if wd is None else b.emit("add", d, b.emit("mul", wd, p))


def _lerp(b, start, end, weight):
    """start + weight·(end - start) (``torch.lerp`` for weights below one half)."""
    return b.emit("add", start, b.emit("mul", weight, b.emit("sub", end, start)))


def _variants(make):
    """``make(*flags) -> InPlaceRule``, built once per combination of flags."""
    made: dict = {}

    def variant(*flags):
        rule = made.get(flags)
        if rule is None:
            rule = made[flags] = make(*flags)
        return rule
    return variant


@_variants
def sgd_rule(momentum: bool, nesterov: bool, maximize: bool, decay: bool) -> InPlaceRule:
    """d = ±g (+ wd·p);  buf' = decay·buf + grad_scale·d;  p' = p - lr·(nesterov ? d + μ·buf' : buf'),
    or p' = p - lr·d without momentum. Scalars: lr, [wd], [decay, grad_scale], [μ]."""
    def rule(b, p, *rest):
        rest = list(rest)
        buf = rest.pop(0) if momentum else None
        g, lr = rest.pop(0), rest.pop(0)
        d = _direction(b, p, g, maximize, rest.pop(0) if decay else None)
        if not momentum:
            return (b.emit("sub", p, b.emit("mul", lr, d)),)
        keep, grad_scale = rest.pop(0), rest.pop(0)
        buf2 = b.emit("add", b.emit("mul", keep, buf), b.emit("mul", grad_scale, d))
        step = b.emit("add", d, b.emit("mul", rest.pop(0), buf2)) if nesterov else buf2
        return b.emit("sub", p, b.emit("mul", lr, step)), buf2
    return InPlaceRule(rule, n_buffers=1 + momentum, n_reads=1,
                       n_scalars=1 + decay + 2 * momentum + (momentum and nesterov))


@_variants
def adam_rule(amsgrad: bool, maximize: bool, decay: bool, decoupled: bool) -> InPlaceRule:
    """m' = lerp(m, g, 1-b1);  v' = b2·v + (1-b2)·g²;  v̂ = max(v̂, v') if amsgrad;
    p' = p·shrink - step·m' / (√v̂ / √(1-b2^t) + eps). With decay, the first scalar is
    L2's wd (Adam) or shrink = 1 - lr·wd (AdamW). Scalars: [wd | shrink], 1-b1, b2, 1-b2,
    step, √(1-b2^t), eps."""
    def rule(b, p, m, v, *rest):
        rest = list(rest)
        vmax = rest.pop(0) if amsgrad else None
        g = rest.pop(0)
        wd = rest.pop(0) if decay else None
        w1, b2, w2, step, bc2_sqrt, eps = rest
        g = _direction(b, p, g, maximize, None if decoupled else wd)
        m2 = _lerp(b, m, g, w1)
        v2 = b.emit("add", b.emit("mul", v, b2), b.emit("mul", w2, b.emit("mul", g, g)))
        vmax2 = b.emit("maximum", vmax, v2) if amsgrad else v2
        denom = b.emit("add", b.emit("div", b.emit("sqrt", vmax2), bc2_sqrt), eps)
        start = b.emit("mul", p, wd) if decay and decoupled else p
        p2 = b.emit("sub", start, b.emit("mul", step, b.emit("div", m2, denom)))
        return (p2, m2, v2, vmax2) if amsgrad else (p2, m2, v2)
    return InPlaceRule(rule, n_buffers=3 + amsgrad, n_reads=1, n_scalars=6 + decay)


@_variants
def rmsprop_rule(centered: bool, momentum: bool, maximize: bool, decay: bool) -> InPlaceRule:
    """s' = α·s + (1-α)·g²;  a' = lerp(a, g, 1-α) if centered;  d = √(s' - a'²) + eps;
    buf' = μ·buf + g/d, p' = p - lr·buf' with momentum, else p' = p - lr·g/d.
    Scalars: [wd], α, 1-α, eps, lr, [μ]."""
    def rule(b, p, sq, *rest):
        rest = list(rest)
        avg = rest.pop(0) if centered else None
        buf = rest.pop(0) if momentum else None
        g = rest.pop(0)
        g = _direction(b, p, g, maximize, rest.pop(0) if decay else None)
        alpha, w, eps, lr = rest[:4]
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
            buf2 = b.emit("add", b.emit("mul", buf, rest[4]), b.emit("div", g, d))
            outs.append(buf2)
            p2 = b.emit("sub", p, b.emit("mul", lr, buf2))
        else:
            p2 = b.emit("sub", p, b.emit("mul", lr, b.emit("div", g, d)))
        return (p2, *outs)
    return InPlaceRule(rule, n_buffers=2 + centered + momentum, n_reads=1, n_scalars=4 + decay + momentum)


@_variants
def adagrad_rule(maximize: bool, decay: bool) -> InPlaceRule:
    """s' = s + g²;  p' = p - clr·g / (√s' + eps). Scalars: [wd], clr, eps."""
    def rule(b, p, total, g, *rest):
        rest = list(rest)
        g = _direction(b, p, g, maximize, rest.pop(0) if decay else None)
        clr, eps = rest
        total2 = b.emit("add", total, b.emit("mul", g, g))
        d = b.emit("add", b.emit("sqrt", total2), eps)
        return b.emit("sub", p, b.emit("mul", clr, b.emit("div", g, d))), total2
    return InPlaceRule(rule, n_buffers=2, n_reads=1, n_scalars=2 + decay)
