"""How ``tensor[key]`` is computed: a key parsed once into an ``IndexPlan`` per structure.

PyTorch's indexing rules, in two stages:

* **basic**: integers (negative count from the end; they *select*, so their axis is gone
  before any advanced index is placed, unlike numpy), slices with positive steps, ``None``
  (a new axis) and ``...``; one ``slice`` and one ``reshape``: a view of the data.
* **advanced**: integer tensors, lists or numpy arrays (and boolean masks, which become
  the integer positions of their true elements) index the remaining axes; all of them
  broadcast together to one shape B. The advanced axes are moved to the front, flattened
  into one axis of their combined positions (``sum_j index_j * stride_j``, computed in
  the graph, so traced indices work in ``lucid.compile``), and read with one ``gather``;
  B replaces them where the first one was when they are adjacent, else at the front.
  The gradient of ``gather`` is ``scatter_add``: duplicate indices accumulate.

A plan depends on the tensor's shape and on each index's kind, shape and dtype (and the
integers' and slices' values), never on the values of index tensors: repeated eager
calls with new index values reuse one plan, one chain and one compiled kernel. A key of
ints, slices, None, ``...`` and integer tensors is found by its structure without being
parsed (``prepare``). Indices are range-checked (IndexError) wherever their values are
known; inside ``lucid.compile`` a traced index is taken modulo its axis's size. A mask's
positions are values, so each new count of true elements is a new signature (its first
call builds the chain's entry, a few milliseconds).

>>> import numpy as np
>>> import lucid
>>> x = lucid.tensor(np.arange(24.0).reshape(2, 3, 4))
>>> x[0, :, [0, 3]].tolist()
[[0.0, 3.0], [4.0, 7.0], [8.0, 11.0]]
>>> x[[1, 0], :, [2, 2]].shape, x[:, [[0], [2]], [1, 3]].shape
((2, 3), (2, 2, 2))
>>> x[x > 20].tolist()
[21.0, 22.0, 23.0]
"""
from __future__ import annotations

import operator

import numpy as np

from . import dispatch, tracing

_PLANS: dict = {}
_PLAN_LIMIT = 4096
_INT_KINDS = "iu"


def _is_tensor(x) -> bool:
    return type(x) in dispatch._TENSOR_TYPES


def _as_index_array(e):
    """A list, tuple or numpy array as a numpy index array (ints or bools); IndexError for
    any other element type (PyTorch's wording)."""
    a = np.asarray(e)
    if a.size == 0 and a.dtype.kind == "f":
        a = a.astype(np.int64)  # ``x[[]]``: an empty integer index
    if a.dtype.kind not in _INT_KINDS + "b":
        raise IndexError(f"tensors used as indices must be long, int, byte or bool tensors "
                         f"(got {a.dtype} index of shape {a.shape})")
    return a


def _mask_positions(mask: np.ndarray, shape, dim: int) -> list:
    """The integer index arrays a boolean mask stands for (its true positions), after
    checking the mask's shape against the axes ``dim, dim+1, ...`` of ``shape``."""
    for k, n in enumerate(mask.shape):
        if dim + k >= len(shape) or shape[dim + k] != n:
            raise IndexError(f"The shape of the mask {list(mask.shape)} at index {k} does not match "
                             f"the shape of the indexed tensor {list(shape)} at index {dim + k}")
    return list(np.nonzero(mask))


def normalize(shape, key) -> list:
    """``key`` as a list of entries, one per position: ``None``, a ``slice``, an ``int``,
    or ``("adv", index, dim)`` (an integer numpy array or tensor indexing axis ``dim`` of
    the tensor; dim None for a bool scalar's new axis). Masks are replaced by their
    positions, ``...`` is expanded, concrete 0-d integer tensors become ints. IndexError
    for a wrong kind of index, too many indices or a mask of the wrong shape."""
    raw = list(key) if isinstance(key, tuple) else [key]
    typed = []
    for e in raw:
        if e is None or e is Ellipsis:
            typed.append(e)
        elif isinstance(e, slice):
            typed.append(slice(*(None if b is None else operator.index(b) for b in (e.start, e.stop, e.step))))
        elif isinstance(e, (bool, np.bool_)):
            typed.append(("bool", bool(e)))
        elif isinstance(e, (int, np.integer)):
            typed.append(int(e))
        elif _is_tensor(e):
            if e.dtype == "bool":
                if e._data is None or tracing._state.tracer is not None:
                    raise tracing.data_dependent("indexing with a boolean mask tensor (the result's "
                                                 "shape depends on its values)")
                typed.append(("mask", e._data) if e.ndim else ("bool", bool(e._data)))
            elif e.dtype in ("int64", "int32"):
                if e.ndim == 0 and e._data is not None and tracing._state.tracer is None:
                    typed.append(int(e._data))
                else:
                    typed.append(("adv", e))
            else:
                raise IndexError(f"tensors used as indices must be long, int, byte or bool tensors "
                                 f"(got a {e.dtype} tensor of shape {tuple(e.shape)})")
        elif isinstance(e, (list, tuple, np.ndarray)):
            a = _as_index_array(e)
            if a.dtype.kind == "b" or a.dtype == np.uint8:
                typed.append(("mask", a.astype(bool)) if a.ndim else ("bool", bool(a)))
            elif a.ndim == 0:
                typed.append(int(a))
            else:
                typed.append(("adv", a.astype(np.int64, copy=False)))
        else:
            raise IndexError(f"only integers, slices (`:`), ellipsis (`...`), None and long or byte "
                             f"tensors are valid indices (got {type(e).__name__})")

    def consumed(e):
        if e is None or e is Ellipsis or (isinstance(e, tuple) and e[0] == "bool"):
            return 0
        return e[1].ndim if isinstance(e, tuple) and e[0] == "mask" else 1

    used = sum(consumed(e) for e in typed)
    if sum(e is Ellipsis for e in typed) > 1:
        typed = _single_ellipsis(typed, len(shape) - used)
    if used > len(shape):
        raise IndexError(f"too many indices for tensor of dimension {len(shape)}")
    if Ellipsis in typed:
        k = typed.index(Ellipsis)
        typed[k:k + 1] = [slice(None)] * (len(shape) - used)
    else:
        typed += [slice(None)] * (len(shape) - used)
    out, dim = [], 0
    for e in typed:
        if isinstance(e, tuple) and e[0] == "mask":
            out += [("adv", p, dim + k) for k, p in enumerate(_mask_positions(e[1], shape, dim))]
            dim += e[1].ndim
        elif isinstance(e, tuple) and e[0] == "bool":  # a new axis indexed by [0] or []
            out += [None, ("adv", np.zeros(int(e[1]), np.int64), None)]
        elif isinstance(e, tuple):
            out.append(("adv", e[1], dim))
            dim += 1
        else:
            out.append(e)
            dim += e is not None
    return out


class IndexPlan:
    """``x[key]`` for one structure: ``chain`` takes the tensor and then the advanced
    indices (in key order) as operands; ``check`` range-checks concrete indices."""

    __slots__ = ("chain", "adv_sizes", "adv_dims")

    def __init__(self, shape, entries):
        starts, stops, steps, basic_shape, adv_pos = [], [], [], [], []
        self.adv_sizes, self.adv_dims = [], []
        axis = 0
        for e in entries:
            if e is None:
                basic_shape.append(1)
                continue
            if isinstance(e, tuple) and e[2] is None:  # a bool scalar: indexes the new axis
                adv_pos.append(len(basic_shape) - 1)
                continue
            size = shape[axis]
            if isinstance(e, slice):
                if e.step is not None and e.step <= 0:
                    raise ValueError("step must be greater than zero")
                start, stop, step = e.indices(size)
                starts.append(start)
                stops.append(stop)
                steps.append(step)
                basic_shape.append(len(range(start, stop, step)))
            elif isinstance(e, int):
                if not -size <= e < size:
                    raise IndexError(f"index {e} is out of bounds for dimension {axis} with size {size}")
                starts.append(e % size)
                stops.append(e % size + 1)
                steps.append(1)
            else:
                starts.append(0)
                stops.append(size)
                steps.append(1)
                adv_pos.append(len(basic_shape))
                basic_shape.append(size)
            axis += 1
        for e in entries:  # a bool scalar's new axis (dimension None) has size 1
            if isinstance(e, tuple):
                self.adv_dims.append(e[2])
        steps_ = [("slice", {"starts": tuple(starts), "stops": tuple(stops), "steps": tuple(steps)}, (0,)),
                  ("reshape", {"shape": tuple(basic_shape)}, (-1,))]
        self.adv_sizes = [basic_shape[p] for p in adv_pos]
        if adv_pos:
            index_shapes = [tuple(e[1].shape) for e in entries if isinstance(e, tuple)]
            try:
                bshape = tuple(np.broadcast_shapes(*index_shapes))
            except ValueError:
                raise IndexError("shape mismatch: indexing tensors could not be broadcast together "
                                 "with shapes " + ", ".join(str(list(s)) for s in index_shapes)) from None
            index_dtypes = [str(e[1].dtype) for e in entries if isinstance(e, tuple)]
            steps_ = _advanced_steps((steps_, ("step", 1)), basic_shape, adv_pos, bshape, index_dtypes)
        self.chain = dispatch.Chain(steps_, name="getitem")

    def check(self, indices) -> None:
        """IndexError for a concrete index outside its axis (PyTorch's message)."""
        for a, n, d in zip(indices, self.adv_sizes, self.adv_dims):
            a = a if isinstance(a, np.ndarray) else a._data
            if a is None or not a.size:
                continue
            lo, hi = int(a.min()), int(a.max())
            if lo < -n or hi >= n:
                bad = lo if lo < -n else hi
                where = "" if d is None else f" for dimension {d}"
                raise IndexError(f"index {bad} is out of bounds{where} with size {n}")


class _Steps:
    """Chain steps written with absolute references: ``("step", t)`` is step t's
    result, an int k >= 0 operand k; ``emit`` returns the new step's reference."""

    def __init__(self, steps):
        self.steps = list(steps)

    def emit(self, op, attrs, *refs) -> tuple:
        at = len(self.steps)
        self.steps.append((op, attrs, tuple(r[1] - at if isinstance(r, tuple) else r for r in refs)))
        return ("step", at)


def _advanced_steps(basic, basic_shape, adv_pos, bshape, index_dtypes) -> list:
    """Chain steps after the basic stage (its result is ``basic``): the advanced axes
    moved to the front and flattened, the combined position of every index, one
    ``gather``, and the broadcast shape put in place. Operand j+1 is advanced index j."""
    rank, k = len(basic_shape), len(adv_pos)
    rest = [d for d in range(rank) if d not in adv_pos]
    rest_shape = tuple(basic_shape[d] for d in rest)
    sizes = [basic_shape[p] for p in adv_pos]
    r_flat = int(np.prod(rest_shape, dtype=np.int64))
    k_flat = int(np.prod(bshape, dtype=np.int64))
    b = _Steps(basic[0])
    x = basic[1]
    perm = tuple(adv_pos) + tuple(rest)
    if perm != tuple(range(rank)):
        x = b.emit("transpose", {"perm": perm}, x)
    x = b.emit("reshape", {"shape": (int(np.prod(sizes, dtype=np.int64)), r_flat)}, x)
    combined, stride = None, 1
    for j in reversed(range(k)):  # the last index varies fastest
        idx = j + 1
        if index_dtypes[j] != "int64":
            idx = b.emit("cast", {"dtype": "int64"}, idx)
        n = b.emit("constant", {"value": max(sizes[j], 1), "shape": (), "dtype": "int64"})
        pos = b.emit("remainder", {}, idx, n)  # negative indices count from the end
        if stride != 1:
            pos = b.emit("mul", {}, pos, b.emit("constant", {"value": stride, "shape": (), "dtype": "int64"}))
        combined = pos if combined is None else b.emit("add", {}, combined, pos)
        stride *= sizes[j]
    col = b.emit("reshape", {"shape": (k_flat, 1)}, combined)
    wide = b.emit("broadcast_to", {"shape": (k_flat, r_flat)}, col)
    out = b.emit("reshape", {"shape": bshape + rest_shape}, b.emit("gather", {"axis": 0}, x, wide))
    first = adv_pos[0]
    if adv_pos == list(range(first, first + k)) and first > 0:  # adjacent: B goes in their place
        nb = len(bshape)
        perm = tuple(range(nb, nb + first)) + tuple(range(nb)) + tuple(range(nb + first, nb + len(rest)))
        b.emit("transpose", {"perm": perm}, out)
    return b.steps


def plan_for(shape, entries) -> IndexPlan:
    """The cached plan of ``entries`` (from ``normalize``) on a tensor of ``shape``."""
    sig = [tuple(shape)]
    for e in entries:
        if isinstance(e, tuple):
            sig.append(("adv", tuple(e[1].shape), e[1].dtype, e[2]))
        elif isinstance(e, slice):
            sig.append((e.start, e.stop, e.step))
        else:
            sig.append(e)
    sig = tuple(sig)
    plan = _PLANS.get(sig)
    if plan is None:
        if len(_PLANS) >= _PLAN_LIMIT:
            _PLANS.clear()
        plan = _PLANS[sig] = IndexPlan(tuple(shape), entries)
    return plan


def _single_ellipsis(typed: list, spans: int) -> list:
    """An index with several ``...`` as PyTorch reads it: each one skips the ``spans``
    axes the other entries leave, so the later ones are only harmless where they skip
    nothing or nothing follows them (dropped then); else an IndexError, as PyTorch's."""
    first = typed.index(Ellipsis)
    rest = typed[first + 1:]
    for i, e in enumerate(rest):
        if e is Ellipsis and spans and any(f is not Ellipsis for f in rest[i + 1:]):
            raise IndexError(f"index: an entry after a repeated ellipsis ('...') falls past the "
                             f"last dimension (each '...' spans {spans} dimensions)")
    return typed[:first + 1] + [e for e in rest if e is not Ellipsis]


def prepare(t, key):
    """``(plan, indices)`` for ``t[key]``: the plan and the advanced index tensors its
    chain takes after ``t``. A key of ints, slices, None, ``...`` and concrete integer
    tensors is looked up by a signature of its structure (no parsing); any other key is
    normalised first."""
    raw = key if type(key) is tuple else (key,)
    sig = _fast_signature(t, raw)
    if sig is not None:
        hit = _FAST.get(sig)
        if hit is not None:
            plan, where = hit
            return plan, [raw[k] for k in where]
    entries = normalize(t.shape, key)
    plan = plan_for(t.shape, entries)
    indices = index_tensors(entries)
    if sig is not None:
        if len(_FAST) >= _PLAN_LIMIT:
            _FAST.clear()
        _FAST[sig] = plan, tuple(k for k, e in enumerate(raw) if type(e) in dispatch._TENSOR_TYPES)
    return plan, indices


_FAST: dict = {}
_INDEX_DTYPES = (np.dtype(np.int64), np.dtype(np.int32))


def _fast_signature(t, raw):
    """The structure of a simple key (see ``prepare``), or None for any other key."""
    if tracing._state.tracer is not None or t._data is None:
        return None
    sig = [t._data.shape]
    for e in raw:
        te = type(e)
        if te is int or e is None or e is Ellipsis:
            sig.append(e)
        elif te is slice:
            if not all(b is None or type(b) is int for b in (e.start, e.stop, e.step)):
                return None
            sig.append((e.start, e.stop, e.step))
        elif te in dispatch._TENSOR_TYPES:
            a = e._data
            if a is None or a.dtype not in _INDEX_DTYPES or not a.ndim:
                return None
            sig.append((a.shape, a.dtype))
        else:
            return None
    return tuple(sig)


def index_tensors(entries) -> list:
    """The advanced entries' indices as tensors (numpy arrays wrapped without a copy)."""
    return [e[1] if _is_tensor(e[1]) else dispatch._wrap(e[1])
            for e in entries if isinstance(e, tuple)]
