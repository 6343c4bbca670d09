"""In-place writes that autograd records: the written tensor takes a new history.

An in-place op (``y.mul_(w)``, ``y += w``, ``y[0] = v``) computes its result out of
place, then writes it into ``y``'s own array. When the result is recorded (``y`` or an
operand requires grad, grad mode on), ``y`` becomes the result of that call, as in
PyTorch:

* ``old``, a new tensor object, takes over ``y``'s history (its recorded call, parents,
  hooks): it is ``y`` as it was. The in-place call reads ``old`` (a copy of the old
  values, when the op's gradient may read them: PyTorch's "original self").
* Calls recorded before the write keep seeing ``old``: ``y`` remembers the clock of the
  write (``_rebased_at``) and its previous incarnation (``_previous``), and the backward
  pass (``lucid.autograd_versions``) resolves each call's operands to the incarnation
  they had when the call was made. Nothing is searched at write time.
* When ``y`` is a recorded view of another tensor (``h[0:2].mul_(w)``, ``h.T.add_(w)``),
  that base takes a new history too (PyTorch's CopySlices): ``h`` becomes ``h`` with the
  view's positions replaced by the view's new values, up the chain of views.
* Other recorded views of the written memory, taken before the write and used after it,
  take the new history lazily: the backward pass finds them (``autograd_versions``) and
  ``regenerate`` gives each, from the write on, the same view of its base as it is after
  the write (PyTorch regenerates a view's ``grad_fn``).

A write autograd does not record (grad mode off, nothing requires grad) is a plain
copy into the array; either way the memory's version counter is bumped (see
``lucid.versions``).

>>> import lucid
>>> w = lucid.tensor([1.0, 2.0, 3.0], requires_grad=True)
>>> h = w * 2.0
>>> z = h * 3.0            # recorded before the write: sees the old h
>>> h[0:2].mul_(w[0:2])    # a view written in place: h's history changes too
Tensor([2.0, 8.0], grad=None)
>>> (z.sum() + h.sum()).backward()
>>> w.grad.tolist()
[10.0, 14.0, 8.0]
"""
from __future__ import annotations

import numpy as np

from . import autograd_versions, dispatch, grad_mode, versions
from .autograd import Record

# ``select(true, values, old)``: values that do not depend on the old ones (fill_,
# zero_, copy_ of a constant) written into a recorded tensor: it stays recorded, and
# its old history gets a zero gradient (PyTorch's FillBackward, CopyBackwards)
_REPLACE = dispatch.Chain([("constant", {"value": 1.0, "shape": (), "dtype": "bool"}, ()),
                           ("select", {}, (-1, 0, 1))], name="copy")


def begin(x) -> None:
    """Mark the start of an in-place op on the concrete tensor ``x`` (before its result
    is computed): calls recorded from here on are the op's own."""
    x._fence = versions.fence()


def store(x, new, reads_self: bool = True):
    """Write ``new`` (``x``'s shape and dtype) into ``x`` and return ``x``: recorded when
    ``new`` is, or when ``x`` is recorded and grad mode is on. ``reads_self``: the
    gradient of the op may read ``x``'s old values (they are then kept in a copy)."""
    if new is x:
        versions.bump(x)
        return x
    if grad_mode._state.enabled:
        if new.requires_grad:
            return _rebase(x, new, reads_self)
        if x.requires_grad and not x._is_leaf:
            return _rebase(x, new, False, replace=True)
    np.copyto(x._data, new._data, casting="unsafe")
    versions.bump(x)
    return x


def check_view_of_leaf(x, op: str) -> None:
    """PyTorch's refusal: an in-place op autograd would record on a view of a leaf that
    requires grad (``w[0].add_(1)``, ``w.T.mul_(2)``)."""
    for _view, base in _view_chain(x, stop_at_leaf=False):
        if base._is_leaf and base.requires_grad:
            raise RuntimeError(f"{op}: a view of a leaf Variable that requires grad is being used "
                               f"in an in-place operation (a view of shape {tuple(x.shape)} of a "
                               f"leaf of shape {tuple(base.shape)}); wrap it in lucid.no_grad() or "
                               f"clone() the view")


def _rebase(x, new, reads_self: bool, replace: bool = False):
    views = _view_chain(x)
    fence = x.__dict__.pop("_fence", None)
    if fence is None:  # no begin(): only the result's own call is the op's
        fence = new._node.clock if new._node is not None else versions.clock[0]
    when = versions.bump(x, recorded=True)
    old = _takeover(x, reads_self and not replace, fence)
    if replace:
        new = dispatch.call(_REPLACE, (dispatch.cast(new, x.dtype), old))
    np.copyto(x._data, new._data, casting="unsafe")
    _adopt(x, new, when, old)
    _resolve_op(x, fence)
    for view, base in views:
        _copy_slices(view, base, when)
    versions.fence()   # calls recorded from here on come after the write (not its own)
    return x


def _takeover(x, snapshot: bool, fence: int):
    """A new tensor object holding ``x``'s history (and, with ``snapshot``, a copy of its
    values, valid for the calls recorded from ``fence`` on)."""
    old = object.__new__(type(x))
    old.__dict__.update(x.__dict__)
    old.__dict__.pop("_grad_view", None)
    old._grad, old._retains_grad, old._post_accumulate_hooks = None, False, None
    old._superseded = True
    if old._current is None:
        old._current = x   # the object that carries the history on
    x._hooks = None   # hooks registered before the write see the old value's gradient (PyTorch)
    if snapshot:
        old._data = x._data.copy()
        old._vc = versions.for_write(x)   # its memory's counter: earlier readers still fail
        old._snapshot_from = fence
    return old


def _adopt(x, new, when: int, old) -> None:
    """``x`` becomes the recorded result ``new`` of the write at clock ``when``."""
    x._node, x._parents, x._value = new._node, new._parents, new._value
    x.requires_grad, x._is_leaf = True, False
    x._rebased_at, x._previous, x._born = when, old, when
    x._freed, x._spent = False, None


def _resolve_op(x, fence: int) -> None:
    """The calls the op recorded (from ``fence`` on) read ``x`` as it was: point them at
    its earlier incarnation now (so no history reaches ``x`` from itself)."""
    stack, seen = [x], set()
    while stack:
        t = stack.pop()
        node = t._node
        if node is None or id(t) in seen or node.clock < fence:
            continue
        seen.add(id(t))
        autograd_versions.resolve(t)
        stack.extend(t._parents)


def regenerate(v, written: int) -> bool:
    """``v``, a recorded view (``h[0]``, ``h.T``) whose memory the recorded write at clock
    ``written`` changed through another tensor, takes a new incarnation from just after
    that write: the same view of its base as the base is then (PyTorch regenerates a
    view's ``grad_fn`` the same way). Calls recorded before keep the old one. False if
    ``v`` is not such a view."""
    rec = v._node
    tensors = dispatch._TENSOR_TYPES
    if type(rec) is not Record or rec.saved:
        return False
    current = [(o if o._current is None else o._current) if type(o) in tensors else o
               for o in rec.operands]   # (an earlier incarnation may hold a copy of the values)
    if not any(type(o) in tensors and np.may_share_memory(o._data, v._data) for o in current):
        return False
    when = written + 1    # the fence that ends the write (``_rebase``)
    old = _takeover(v, False, when)
    operands = tuple(autograd_versions.at(o, when) if type(o) in tensors else o for o in current)
    new = Record(rec.entry, operands, ())
    new.clock = when
    v._node, v._parents, v._value = new, tuple(o for o in operands if type(o) in tensors), None
    v._rebased_at, v._previous, v._born = when, old, when
    v._freed, v._spent = False, None
    return True


def _view_chain(x, stop_at_leaf: bool = True) -> list:
    """``[(view, base), ...]``: ``x`` a recorded view of ``base``, ``base`` a recorded view
    of the next, ... (the bases whose memory the write changes). A base that is an
    earlier incarnation of a rewritten tensor ends the chain (the view is stale; backward
    says so if it matters)."""
    chain, v = [], x
    while type(v._node) is Record and v._parents:
        data = v._data
        base = next((p for p in v._parents
                     if p._data is not None and np.may_share_memory(p._data, data)), None)
        if base is None or base._superseded or (stop_at_leaf and base._is_leaf):
            break
        chain.append((v, base))
        if base._is_leaf:
            break
        v = base
    return chain


def _copy_slices(view, base, when: int) -> None:
    """``base`` (whose memory ``view`` shares) becomes ``base`` with the view's positions
    replaced by the view's new values; the memory already holds them."""
    from .setitem import _scattered
    positions = positions_in(base._data, view._data)
    if positions is None:
        raise RuntimeError(f"in-place operation on a view of shape {tuple(view.shape)} whose "
                           f"elements lucid cannot place in its base of shape "
                           f"{tuple(base.shape)}; clone() the view first")
    old = _takeover(base, False, when)
    new = _scattered(old, view, positions)
    _adopt(base, new, when, old)


def positions_in(base: np.ndarray, view: np.ndarray):
    """For each element of ``view``, its flat (row-major) position in ``base``; None when
    some element is not one of base's (the two only overlap).

    >>> b = np.arange(12.0).reshape(3, 4)
    >>> positions_in(b, b.T[1:3, ::2]).tolist()
    [[1, 9], [2, 10]]
    """
    if view.dtype != base.dtype:
        return None
    flat = _byte_offsets(base).reshape(-1)
    order = np.argsort(flat, kind="stable")
    ordered = flat[order]
    want = _byte_offsets(view)
    found = np.searchsorted(ordered, want)
    found = np.minimum(found, max(ordered.size - 1, 0))
    if ordered.size == 0 and want.size:
        return None
    if want.size and not np.array_equal(ordered[found], want):
        return None
    return order[found] if want.size else np.zeros(view.shape, np.int64)


def _byte_offsets(a: np.ndarray) -> np.ndarray:
    """The address of every element of ``a`` (relative to a common origin)."""
    offsets = np.full(a.shape, a.__array_interface__["data"][0], dtype=np.int64)
    for axis, (n, stride) in enumerate(zip(a.shape, a.strides)):
        shape = [1] * a.ndim
        shape[axis] = n
        offsets = offsets + (np.arange(n, dtype=np.int64) * stride).reshape(shape)
    return offsets


def _install(Tensor) -> None:
    """The per-incarnation attributes, as class defaults (a tensor never written in place
    carries none of them)."""
    Tensor._rebased_at = 0          # clock of the recorded write that made this incarnation
    Tensor._previous = None         # the incarnation before it
    Tensor._born = None             # clock at which its values were written (None: its call's)
    Tensor._superseded = False      # an earlier incarnation (``old``) of a rewritten tensor
    Tensor._snapshot_from = None    # its values are a copy, valid for calls from this clock on
    Tensor._vc = None               # a counter of its own (else its memory's)
    Tensor._current = None          # for an earlier incarnation: the tensor it became
