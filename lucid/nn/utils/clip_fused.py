"""Gradient clipping of many tensors in one native call each (PyTorch's ``foreach``
path of ``clip_grad_norm_``): the joint norm of every gradient is one chain of ops
(one eager call, traced as is by ``lucid.compile``), and the rescaling writes every
gradient in place from one plan (one native call for the whole list, where the
op-by-op path made one call per gradient).

The arithmetic is PyTorch's: the norm of each tensor, then the norm of those norms
(one tensor: its own norm); the scale ``min(1, max_norm / (total + 1e-6))`` in the
gradients' dtype.

>>> import numpy as np, lucid
>>> grads = [np.array([3.0, 0.0]), np.array([[4.0]])]
>>> total = joint_norm([lucid.Tensor(g) for g in grads], 2.0)
>>> total.item()
5.0
>>> scale_in_place(grads, total._data, 1.0)
True
>>> [g.round(6).tolist() for g in grads]
[[0.6, 0.0], [[0.8]]]
"""
from __future__ import annotations

import numpy as np

from lucid_ir import pipeline
from lucid_ir.builder import GraphBuilder

from ... import backend, dispatch
from ..chain_steps import cached_chain

__all__ = ["joint_norm", "scale_in_place"]


def joint_norm(tensors, norm_type: float):
    """The ``norm_type``-norm of the non-empty ``tensors`` (one float dtype) together,
    a 0-d tensor: one chain over all of them."""
    shapes = tuple(tuple(t.shape) for t in tensors)

    def build(s):
        from ...linalg import _vector_steps  # (lucid.linalg builds on lucid.nn's chain steps)

        def norm(x, shape):   # (a 0-d tensor as one element, as ``reshape(-1)``)
            x = x if shape else s("reshape", x, shape=(1,))
            return _vector_steps(s, x, norm_type, tuple(range(max(len(shape), 1))), False)
        if len(shapes) == 1:
            return norm(0, shapes[0])
        each = [s("reshape", norm(k, shape), shape=(1,)) for k, shape in enumerate(shapes)]
        return norm(s("concat", *each, axis=0), (len(each),))
    chain = cached_chain("clip_grad_norm", (shapes, norm_type), build, str(tensors[0].dtype))
    return dispatch.call(chain, tensors)


_SCALES = dispatch.ChainCache(256)   # (shapes, dtype, backend) -> in-place executable


def scale_in_place(arrays, total: np.ndarray, max_norm: float) -> bool:
    """Multiply each of ``arrays`` (gradients: writeable numpy arrays of one float dtype,
    no two the same) in place by ``min(1, max_norm / (total + 1e-6))``, in one call.
    False (nothing done) when they are not such arrays or ``total`` is not a 0-d array
    of their dtype: the caller then scales them one by one."""
    dtype = arrays[0].dtype if arrays else None
    if (dtype is None or dtype.kind != "f" or not isinstance(total, np.ndarray) or total.shape != ()
            or total.dtype != dtype or len({id(a) for a in arrays}) != len(arrays)
            or any(type(a) is not np.ndarray or a.dtype != dtype or not a.flags.writeable for a in arrays)):
        return False
    key = (tuple(a.shape for a in arrays), dtype, backend.backend_name())
    run = _SCALES.get(key)
    if run is None:
        run = _SCALES[key] = _scale_executable(key[0], dtype.name)
    run([*arrays, total, np.asarray(max_norm, dtype)])
    return True


def _scale_executable(shapes, dtype: str):
    """The plan writing ``g * min(1, max_norm / (total + 1e-6))`` into each ``g``; its
    inputs are the gradients, then ``total`` and ``max_norm`` (0-d)."""
    b = GraphBuilder()
    grads = [b.input(shape, dtype) for shape in shapes]
    total, max_norm = b.input((), dtype), b.input((), dtype)
    coef = b.emit("div", max_norm, b.emit("add", total, b.constant(1e-6, dtype=dtype)))
    one = b.constant(1.0, dtype=dtype)
    coef = b.emit("select", b.emit("gt", coef, one), one, coef)   # clamp(max=1), NaN kept
    graph = b.build([b.emit("mul", g, coef) for g in grads])
    fused = pipeline.run(graph, pipeline.EAGER, "clip_grad_norm_").fused
    return backend.executable(fused, in_place={j: j for j in range(len(shapes))})
