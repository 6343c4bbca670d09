"""Fused scaled dot-product attention: ``attention`` and its gradient ``attention_backward``.

* ``attention[is_causal, scale](q, k, v)``: q ``(…, L, E)``, k ``(…, S, E)``, v ``(…, S, Ev)``
  with the same leading (batch, head) dims, float32 or float64, ``S >= 1``. The result is
  one *packed* array ``(…, L·Ev + L)``: per leading index, the output
  ``softmax(q·kᵀ·scale + mask)·v`` as ``L·Ev`` values in C order, then the ``L`` per-row
  log-sum-exps of the scaled, masked scores (``lse``). Users take the two parts with
  views (``attention_parts``): the output for the next op, ``lse`` for the backward,
  which then never recomputes a softmax normaliser. ``is_causal`` masks key j for query
  i when ``j > i`` (PyTorch's top-left alignment, ``ones(L, S).tril()``).
* ``attention_backward[is_causal, scale](q, k, v, packed, g)``: ``g`` is the gradient of
  the packed result (the output's gradient, then the ``lse`` gradient, usually zeros),
  or the output's gradient alone, in the output's shape ``(…, L, Ev)`` (``lse``'s is 0:
  what ``simplify`` makes of a packed gradient that is zero past the output).
  The result packs ``dq`` ``(L·E)``, ``dk`` ``(S·E)`` and ``dv`` ``(S·Ev)`` the same way
  (``gradient_parts``). With ``P = exp(s - lse)``, ``D = rowsum(dO ∘ O) - g_lse``:
  ``dv = Pᵀ·dO``, ``dS = P ∘ (dO·vᵀ - D)``, ``dq = scale·dS·k``, ``dk = scale·dSᵀ·q``.

Nothing of size L×S is ever materialised by the native kernels (``lucid_codegen``'s
``attention_kernels``); the numpy references below do, as definitions. Where a masked
key's row of k or v holds an inf or NaN (a value of the future), the result is left
unspecified, as PyTorch's flash kernels leave it: the references multiply it by a
masked probability of 0 (NaN), the kernels never visit the tiles above the diagonal
(no NaN) but do visit the masked pairs of a diagonal tile (NaN), so it depends on the
blocking. Everywhere else they agree.

>>> import numpy as np
>>> from lucid_ir.builder import GraphBuilder
>>> from lucid_ir.interpreter import interpret
>>> b = GraphBuilder()
>>> q, k, v = b.input((1, 2, 1), "float64"), b.input((1, 2, 1), "float64"), b.input((1, 2, 1), "float64")
>>> packed = b.emit("attention", q, k, v, is_causal=True, scale=1.0)
>>> out, lse = attention_parts(b, packed, (1, 2, 1))
>>> [a.round(4).tolist() for a in interpret(b.build([out, lse]),
...     [np.ones((1, 2, 1)), np.array([[[0.0], [1.0]]]), np.array([[[1.0], [3.0]]])])]
[[[[1.0], [2.4621]]], [[0.0, 1.3133]]]
"""
from __future__ import annotations

import math

import numpy as np

from ..types import TensorType
from . import OpDef, register, same_dtype

_FLOATS = ("float32", "float64")


def _check(op: str, types):
    q, k, v = types[:3]
    for name, t in zip("qkv", (q, k, v)):
        if t.ndim < 2:
            raise ValueError(f"{op}: {name} needs at least 2 dims (…, length, features), got {t.shape}")
    dtype = same_dtype(op, (q, k, v))
    if dtype not in _FLOATS:
        raise TypeError(f"{op}: expects float32 or float64 q, k, v, got {dtype}")
    lead = q.shape[:-2]
    if k.shape[:-2] != lead or v.shape[:-2] != lead:
        raise ValueError(f"{op}: q {q.shape}, k {k.shape} and v {v.shape} need the same leading dims")
    if q.shape[-1] != k.shape[-1] or k.shape[-2] != v.shape[-2]:
        raise ValueError(f"{op}: q {q.shape}, k {k.shape} and v {v.shape} do not fit: q and k need "
                         f"the same feature dim, k and v the same length")
    if k.shape[-2] == 0:
        raise ValueError(f"{op}: k {k.shape} has no keys to attend to")
    return lead, q.shape[-2], k.shape[-2], q.shape[-1], v.shape[-1], dtype


def _attrs(op, inputs, attrs):
    types = tuple(x.type for x in inputs[:3])
    e = _check(op, types)[3]
    scale = attrs.get("scale")
    scale = 1.0 / math.sqrt(e) if scale is None and e else (1.0 if scale is None else float(scale))
    return {"is_causal": bool(attrs.get("is_causal", False)), "scale": scale}


def _probabilities(q, k, lse, is_causal: bool, scale: float):
    """``exp(q·kᵀ·scale - lse)`` in float64, zero where masked (the reference's P)."""
    s = np.matmul(q.astype(np.float64), np.swapaxes(k.astype(np.float64), -1, -2)) * scale
    if is_causal:
        L, S = s.shape[-2:]
        s = np.where(np.tril(np.ones((L, S), bool)), s, -np.inf)
    if lse is None:
        m = s.max(axis=-1, keepdims=True)
        e = np.exp(s - m)
        lse = (m + np.log(e.sum(axis=-1, keepdims=True)))[..., 0]
    return np.exp(s - lse[..., None]), lse


@register
class Attention(OpDef):
    name = "attention"
    group = "attention"
    arity = 3
    attr_names = ("is_causal", "scale")

    def normalize_attrs(self, inputs, attrs):
        super().normalize_attrs(inputs, attrs)
        return _attrs(self.name, inputs, attrs)

    def infer(self, types, attrs):
        lead, L, _, _, ev, dtype = _check(self.name, types)
        return TensorType((*lead, L * ev + L), dtype)

    def evaluate(self, a, attrs):
        q, k, v = a
        p, lse = _probabilities(q, k, None, attrs["is_causal"], attrs["scale"])
        out = np.matmul(p, v.astype(np.float64))
        lead, L = q.shape[:-2], q.shape[-2]
        packed = np.concatenate([out.reshape(*lead, L * v.shape[-1]), lse.reshape(*lead, L)], axis=-1)
        return packed.astype(q.dtype)

    def grad(self, b, node, g):
        q, k, v = node.inputs
        grads = b.emit("attention_backward", q, k, v, node.out, g, **node.attr_dict)
        return list(gradient_parts(b, grads, q.shape, k.shape, v.shape))


@register
class AttentionBackward(OpDef):
    name = "attention_backward"
    group = "attention"
    arity = 5
    attr_names = ("is_causal", "scale")

    def normalize_attrs(self, inputs, attrs):
        super().normalize_attrs(inputs, attrs)
        q, k, v, packed, g = inputs
        lead, L, _, _, ev, _ = _check(self.name, tuple(x.type for x in inputs[:3]))
        want = (*lead, L * ev + L)
        for name, x in (("packed", packed), ("g", g)):
            if (x.shape != want and (name, x.shape) != ("g", (*lead, L, ev))) or x.dtype != q.dtype:
                alone = f" nor the output's gradient {q.dtype}{[*lead, L, ev]}" if name == "g" else ""
                raise ValueError(f"{self.name}: {name} {x.type} is not the packed attention result "
                                 f"{q.dtype}{list(want)}{alone} of q {q.shape}, v {v.shape}")
        return _attrs(self.name, inputs, attrs)

    def infer(self, types, attrs):
        lead, L, S, e, ev, dtype = _check(self.name, types)
        return TensorType((*lead, L * e + S * e + S * ev), dtype)

    def evaluate(self, a, attrs):
        q, k, v, packed, g = (x.astype(np.float64) for x in a)
        lead, (L, e), (S, ev) = q.shape[:-2], q.shape[-2:], v.shape[-2:]
        out, lse = packed[..., :L * ev].reshape(*lead, L, ev), packed[..., L * ev:]
        if g.shape == (*lead, L, ev):   # the output's gradient alone
            d_out, d_lse = g, np.zeros((*lead, L))
        else:
            d_out, d_lse = g[..., :L * ev].reshape(*lead, L, ev), g[..., L * ev:]
        p, _ = _probabilities(q, k, lse, attrs["is_causal"], attrs["scale"])
        dv = np.matmul(np.swapaxes(p, -1, -2), d_out)
        dp = np.matmul(d_out, np.swapaxes(v, -1, -2))
        delta = (d_out * out).sum(axis=-1) - d_lse
        ds = p * (dp - delta[..., None]) * attrs["scale"]
        dq, dk = np.matmul(ds, k), np.matmul(np.swapaxes(ds, -1, -2), q)
        parts = [x.reshape(*lead, x.shape[-2] * x.shape[-1]) for x in (dq, dk, dv)]
        return np.concatenate(parts, axis=-1).astype(a[0].dtype)

    def grad(self, b, node, g):
        raise NotImplementedError("attention_backward: a second derivative of fused attention is "
                                  "not supported (use the unfused composition for higher orders)")


def _part(b, packed, start: int, stop: int, shape):
    """``packed[..., start:stop]`` reshaped to ``shape`` (views: no data moves)."""
    n = packed.ndim
    starts = (None,) * (n - 1) + (start,)
    stops = (None,) * (n - 1) + (stop,)
    piece = b.emit("slice", packed, starts=starts, stops=stops, steps=(1,) * n)
    return b.emit("reshape", piece, shape=tuple(shape)) if tuple(shape) != piece.shape else piece


def attention_parts(b, packed, v_shape_or_out_shape):
    """``(out, lse)`` of a packed ``attention`` result, given the output's shape
    ``(…, L, Ev)``."""
    *lead, L, ev = v_shape_or_out_shape
    return (_part(b, packed, 0, L * ev, (*lead, L, ev)),
            _part(b, packed, L * ev, L * ev + L, (*lead, L)))


def gradient_parts(b, grads, q_shape, k_shape, v_shape):
    """``(dq, dk, dv)`` of a packed ``attention_backward`` result."""
    nq, nk = math.prod(q_shape[-2:]), math.prod(k_shape[-2:])
    nv = math.prod(v_shape[-2:])
    return (_part(b, grads, 0, nq, q_shape), _part(b, grads, nq, nq + nk, k_shape),
            _part(b, grads, nq + nk, nq + nk + nv, v_shape))
