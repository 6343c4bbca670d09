"""``tensor[key] = value``: every key ``tensor[key]`` takes (see ``lucid.index_plan``),
with a tensor or a number as the value (broadcast to the indexed shape).

The new contents are computed functionally and then stored into the tensor's own array
(views of that array see them, as in PyTorch):

* a key that is one boolean mask, with a value that does not depend on the number of
  true elements (a number, or a tensor broadcasting to the axes after the mask):
  ``select(mask, value, x)``. No data-dependent shape, so traced masks work in
  ``lucid.compile`` (``x[x < 0] = 0``).
* anything else: the flat positions the key names (computed with numpy from the concrete
  indices; for a repeated position the last value wins, as numpy and PyTorch on CPU),
  then ``select(written, scatter_add(positions, gather(value, which)), x)``.

A write that autograd does not record, outside ``lucid.compile``, is numpy's own
assignment into the array (the same values, without the functional detour).

Autograd follows PyTorch: assigning into a leaf that requires grad is a RuntimeError;
into a recorded tensor (or a value that requires grad), the tensor becomes the result of
the assignment (``lucid.rebase``), so the gradient reaches the old values outside the
written positions and the value at them; ops recorded before the assignment keep the
old history (``h[idx] += v`` differentiates as in PyTorch), and an assignment into a
recorded view (``h[0][1:] = v``) gives its base the new history too. Every assignment
bumps the memory's version counter: a backward pass that reads values assigned over
after they were saved (``z = h * h; h[0] = 0; z.backward()``) is PyTorch's RuntimeError.

>>> import lucid
>>> x = lucid.zeros(2, 3)
>>> x[0, 1:] = 5.0
>>> x[[1, 1], [0, 2]] = lucid.tensor([7.0, 8.0])
>>> x[x == 0] = -1.0
>>> x.tolist()
[[-1.0, 5.0, 5.0], [7.0, -1.0, 8.0]]
>>> w = lucid.tensor([1.0, 2.0, 3.0], requires_grad=True)
>>> h = w * 2
>>> h[1] = 0.0
>>> h.sum().backward(); w.grad.tolist()
[2.0, 0.0, 2.0]
"""
from __future__ import annotations

import numpy as np

from . import dispatch, grad_mode, index_plan, rebase, tracing, versions

_CHAINS: dict = dispatch.ChainCache()


def _is_tensor(x) -> bool:
    return type(x) in dispatch._TENSOR_TYPES


def setitem(x, key, value) -> None:
    """``x[key] = value`` (see the module docstring)."""
    tracer = tracing._state.tracer
    _check_target(x, tracer)
    mask = _lone_mask(key)
    if mask is not None:
        v = _value_tensor(x, value, exact_dtype=True)
        if _fits_mask(x, mask, v):
            if _plain(x, v, tracer) and mask._data is not None:
                x._data[mask._data] = v._data
                versions.bump(x)
            else:
                _store(x, _masked(x, mask, v), tracer)
            return
    entries = index_plan.normalize(x.shape, key)
    advanced = [e[1] for e in entries if isinstance(e, tuple)]
    if tracer is not None and any(_is_tensor(a) for a in advanced):
        raise tracing.TracingError(
            f"x[index] = value with an index tensor inside lucid.compile (at "
            f"{tracing.user_location()}): the written positions must be known while tracing; "
            f"index with a list or a numpy array, or a boolean mask and a value that does not "
            f"depend on how many elements it selects")
    plan = index_plan.plan_for(x.shape, entries)
    plan.check(advanced)
    v = _value_tensor(x, value, exact_dtype=bool(advanced))
    basic, rest = _numpy_keys(entries)
    if _plain(x, v, tracer):
        _write_plain(x._data, basic, rest if advanced else None, v)
        versions.bump(x)
        return
    flat = np.arange(int(np.prod(x.shape, dtype=np.int64)), dtype=np.int64).reshape(x.shape)
    positions = flat[basic][rest]
    if not _broadcasts(v.shape, positions.shape):
        raise _mismatch(v.shape, positions.shape)
    _store(x, _scattered(x, v, positions), tracer)


def _write_plain(data, basic, rest, v) -> None:
    """numpy's assignment into ``data``: ``data[basic][rest] = v`` (``rest`` None: only
    the basic key, for which all-integer keys leave no view to write through)."""
    if rest is None:
        shape = np.shape(data[basic])
        if not _broadcasts(v.shape, shape):
            raise _mismatch(v.shape, shape)
        data[basic] = v._data
        return
    target = data[basic]
    shape = target[rest].shape
    if not _broadcasts(v.shape, shape):
        raise _mismatch(v.shape, shape)
    target[rest] = v._data


def _plain(x, v, tracer) -> bool:
    """Whether ``x[key] = v`` is a plain write: not traced, and nothing autograd records."""
    return tracer is None and not ((x.requires_grad or v.requires_grad) and grad_mode.is_grad_enabled())


def _mismatch(value_shape, result_shape) -> RuntimeError:
    return RuntimeError(f"shape mismatch: value tensor of shape {list(value_shape)} cannot be "
                        f"broadcast to indexing result of shape {list(result_shape)}")


# ---------------------------------------------------------------- checks and operands
def _check_target(x, tracer) -> None:
    """PyTorch's refusals, before anything is computed: a leaf that requires grad, and an
    expanded view (several elements share one memory location)."""
    outside = tracer is None or x._data is not None or id(x) in tracer.arg_index
    if outside and x.requires_grad and x._is_leaf and grad_mode.is_grad_enabled():
        raise RuntimeError(f"a leaf Variable that requires grad is being used in an in-place "
                           f"operation (x[index] = value on a tensor of shape {tuple(x.shape)}); "
                           f"wrap it in lucid.no_grad() or assign into a clone()")
    if tracer is not None and id(x) in tracer.arg_index:
        raise tracing.TracingError(f"x[index] = value: an argument of a compiled function cannot "
                                   f"be updated in place (at {tracing.user_location()}); clone() "
                                   f"it, or return the new value")
    data = x._data
    if data is not None and not data.flags.writeable:
        raise RuntimeError(f"unsupported operation: more than one element of the written-to tensor "
                           f"(shape {tuple(x.shape)}) refers to a single memory location (an "
                           f"expanded view); clone() it first")
    if tracer is None:
        if x.requires_grad and not x._is_leaf and grad_mode.is_grad_enabled():
            rebase.check_view_of_leaf(x, "x[index] = value")
        rebase.begin(x)


def _value_tensor(x, value, exact_dtype: bool):
    """The value as a tensor of ``x``'s dtype. A number or array converts; a tensor of
    another dtype converts for basic keys and is a RuntimeError for advanced ones (as
    PyTorch's ``index_put_``)."""
    if _is_tensor(value):
        if value.dtype == x.dtype:
            return value
        if exact_dtype:
            raise RuntimeError(f"Index put requires the source and destination dtypes match, got "
                               f"{x.dtype} for the destination and {value.dtype} for the source")
        return dispatch.cast(value, x.dtype)
    try:
        return dispatch._wrap(np.array(value, dtype=x._data.dtype if x._data is not None else str(x.dtype)))
    except (TypeError, ValueError):
        raise TypeError(f"x[index] = value: cannot assign a {type(value).__name__} to a tensor of "
                        f"dtype {x.dtype}") from None


def _broadcasts(src, dst) -> bool:
    try:
        return len(src) <= len(dst) and np.broadcast_shapes(tuple(src), tuple(dst)) == tuple(dst)
    except ValueError:
        return False


def _squeeze_leading(shape, rank: int) -> tuple:
    """``shape`` without leading 1s beyond ``rank`` dimensions (None if they are not 1s)."""
    extra = len(shape) - rank
    if extra <= 0:
        return tuple(shape)
    return tuple(shape[extra:]) if all(d == 1 for d in shape[:extra]) else None


# ---------------------------------------------------------------- x[mask] = value
def _lone_mask(key):
    """The boolean mask (tensor or array) when it is the whole key, else None."""
    k = key[0] if isinstance(key, tuple) and len(key) == 1 else key
    if _is_tensor(k) and k.dtype == "bool":
        return k
    if isinstance(k, np.ndarray) and k.dtype == bool:
        return dispatch._wrap(k)
    return None


def _fits_mask(x, mask, v) -> bool:
    """Whether ``x[mask] = v`` can be a ``select``: the mask's shape is x's leading one
    (else IndexError, PyTorch's message), and v broadcasts to one selected element."""
    m = mask.ndim
    for k, n in enumerate(mask.shape):
        if k >= x.ndim or x.shape[k] != n:
            raise IndexError(f"The shape of the mask {list(mask.shape)} at index {k} does not match "
                             f"the shape of the indexed tensor {list(x.shape)} at index {k}")
    rest = tuple(x.shape[m:])
    return _broadcasts(v.shape, (1,) + rest)


def _masked(x, mask, v):
    rest = tuple(x.shape[mask.ndim:])
    v_shape = _squeeze_leading(v.shape, len(rest))
    key = ("mask", tuple(mask.shape), len(rest), tuple(v.shape), v_shape)
    chain = _CHAINS.get(key)
    if chain is None:
        steps = [("reshape", {"shape": tuple(mask.shape) + (1,) * len(rest)}, (1,))]
        if v_shape != tuple(v.shape):
            steps.append(("reshape", {"shape": v_shape}, (2,)))
            steps.append(("select", {}, (-2, -1, 0)))
        else:
            steps.append(("select", {}, (-1, 2, 0)))
        chain = _cached(key, steps)
    return dispatch.call(chain, [x, mask, v])


# ---------------------------------------------------------------- any other key
def _numpy_keys(entries) -> tuple:
    """Two numpy keys that index as PyTorch's ``entries`` do: the basic one (integers
    select, as in PyTorch), then one of slices and the advanced index arrays for its
    result (numpy then places them as PyTorch does)."""
    basic, advanced = [], []
    for e in entries:
        if e is None:
            basic.append(None)
            advanced.append(slice(None))
        elif isinstance(e, tuple) and e[2] is None:  # a bool scalar indexes its new axis
            advanced[-1] = e[1]
        elif isinstance(e, tuple):
            basic.append(slice(None))
            advanced.append(e[1] if isinstance(e[1], np.ndarray) else e[1]._data)
        else:
            basic.append(e)
            if isinstance(e, slice):
                advanced.append(slice(None))
    return tuple(basic), tuple(advanced)


def _scattered(x, v, positions):
    """``x`` with ``v`` (broadcast to ``positions``' shape) written at ``positions``."""
    if x.dtype == "bool":  # scatter_add adds numbers: write bools as int32
        return dispatch.cast(_scattered(dispatch.cast(x, "int32"), dispatch.cast(v, "int32"), positions), "bool")
    numel = int(np.prod(x.shape, dtype=np.int64))
    flat = positions.reshape(-1)
    unique, last_rev = np.unique(flat[::-1], return_index=True)
    which = flat.size - 1 - last_rev   # where each written position's value comes from
    written = np.zeros(numel, dtype=bool)
    written[unique] = True
    key = ("scatter", tuple(x.shape), tuple(v.shape), positions.shape, unique.size)
    chain = _CHAINS.get(key)
    if chain is None:
        steps = [("broadcast_to", {"shape": positions.shape}, (1,)),
                 ("reshape", {"shape": (flat.size,)}, (-1,)),
                 ("gather", {"axis": 0}, (-1, 3)),
                 ("scatter_add", {"axis": 0, "shape": (numel,)}, (2, -1)),
                 ("reshape", {"shape": (numel,)}, (0,)),
                 ("select", {}, (4, -2, -1)),
                 ("reshape", {"shape": tuple(x.shape)}, (-1,))]
        chain = _cached(key, steps)
    operands = [x, v, dispatch._wrap(unique), dispatch._wrap(which.astype(np.int64)), dispatch._wrap(written)]
    return dispatch.call(chain, operands)


def _cached(key, steps):
    if len(_CHAINS) >= 4096:
        _CHAINS.clear()
    chain = _CHAINS[key] = dispatch.Chain(steps, name="setitem")
    return chain


# ---------------------------------------------------------------- storing the result
def _store(x, new, tracer) -> None:
    """Make ``new`` (computed from ``x``) the contents of ``x``."""
    if tracer is not None:
        if x._data is not None:
            tracer.assign(x, new)   # from outside the function: every call updates its array
        else:                       # computed inside: later reads see the new value
            x._value, x.requires_grad = new._value, new.requires_grad
        return
    rebase.store(x, new, reads_self=False)
