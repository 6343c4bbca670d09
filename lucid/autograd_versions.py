"""What in-place writes mean for a backward pass (see ``lucid.rebase`` for the writes).

Two things happen when ``backward()`` (or ``autograd.grad``) collects the recorded calls:

* ``resolve``: a call's operands are resolved to the incarnation each had when the call
  was made (a tensor written in place by a recorded op after the call is, for that
  call, the tensor it was before). Done once, the record keeps the answer.
* ``check``: PyTorch's version check. Each call's gradient reads some of its operands'
  values (or its own result's): ``y = w * x`` reads ``x``; ``y = x.exp()`` reads ``y``.
  A value written after the call was recorded is a RuntimeError, as in PyTorch.
* a recorded view used after another tensor over its memory was written by a recorded
  in-place op (``v = h[0]; h.mul_(w); v.sum()``) is given, from the write on, the history
  of the same view of its base after the write (``lucid.rebase.regenerate``, as PyTorch
  regenerates a view's ``grad_fn``); the pass then collects again.

All of it costs nothing unless something was written in place after the oldest call the
pass collects.

>>> import lucid
>>> w = lucid.tensor([1.0, 2.0], requires_grad=True)
>>> y = w.exp()
>>> y += 1.0               # exp's gradient reads y: the old y is gone
>>> y.sum().backward()
Traceback (most recent call last):
...
RuntimeError: one of the variables needed for gradient computation has been modified by an inplace operation: [lucid.FloatTensor [2]] is at version 1; expected version 0 instead. Hint: the operation that saved it is Exp; clone() the tensor before writing it in place, or write it after backward()
"""
from __future__ import annotations

from lucid_ir.graph import Graph, Node, Value
from lucid_ir import pipeline
from lucid_ir.types import TensorType

from . import versions
from .autograd import Record

_READS: dict = {}   # (entry uid, requires-grad mask) -> (operand positions read, result read)


# ---------------------------------------------------------------- resolving operands
def resolve(t) -> None:
    """Point the call that made ``t`` (and ``t``'s parents) at the incarnation each
    tensor operand had when the call was recorded."""
    node = t._node
    when = node.clock
    if type(node) is Record:
        node.operands = tuple([at(o, when) if hasattr(o, "_rebased_at") else o for o in node.operands])
    else:
        rec = node.record
        rec.inputs = [at(o, when) if hasattr(o, "_rebased_at") else o for o in rec.inputs]
        rec.parents = tuple([at(p, when) for p in rec.parents])
    t._parents = tuple([at(p, when) for p in t._parents])


def at(t, when: int):
    """``t`` as it was for a call recorded at clock ``when``."""
    while t._rebased_at > when:
        t = t._previous
    return t


# ---------------------------------------------------------------- the checks
def check(order, roots=()) -> bool:
    """RuntimeError when a value the gradient of the calls ``order`` reads was written
    in place after the call that read it; see the module docstring. True when a stale
    view was given a new history (``lucid.rebase.regenerate``): collect again."""
    now = versions.clock[0]
    if not now:
        return False
    oldest = now
    for t in order:
        when = t._node.clock
        if when < oldest:
            oldest = when
    if oldest >= now:
        return False  # nothing was written since the calls were recorded
    written = versions.written_since(oldest)
    if not written:
        return False
    stale = {k: c for k, c in written.items() if c.recorded and c.recorded[-1] > oldest}
    # a call can read a stale view only if it was recorded after a recorded write
    first_write = min((w for c in stale.values() for w in c.recorded if w > oldest), default=now)
    owner = versions._owner
    calls_checked = set()
    for t in order:
        node = t._node
        when = node.clock
        if when < now:
            if type(node) is Record:
                _check_record(t, node, when, written)
            elif id(node.record) not in calls_checked:
                calls_checked.add(id(node.record))
                _check_call(node.record, when)
        if when > first_write:
            for p in t._parents:
                if p._node is not None and p._snapshot_from is None:
                    a = p._data
                    counter = stale.get(id(a) if a.base is None else id(owner(a)))
                    if counter is not None and _stale(p, counter, when):
                        return True
    for r in roots if stale else ():
        a = r._data
        counter = stale.get(id(a) if a.base is None else id(owner(a)))
        if counter is not None and r._node is not None and r._snapshot_from is None \
                and _stale(r, counter, now + 1):
            return True
    return False


def _counter_in(t, written: dict):
    """``t``'s counter if it is among ``written`` (or is its own), else None."""
    own = t._vc
    if own is not None:
        return own
    a = t._data
    if a is None:
        return None
    return written.get(id(a) if a.base is None else id(versions._owner(a)))


def _check_record(t, rec: Record, when: int, written: dict) -> None:
    tensors = _tensor_types()
    for o in rec.operands:   # a quick look first: does anything it holds count a later write?
        if type(o) in tensors:
            counter = _counter_in(o, written)
            if counter is not None and counter.last > when:
                break
    else:
        counter = _counter_in(t, written)
        if counter is None or counter.last <= (t._born if t._born is not None else when):
            return
    positions, reads_result = _reads(rec)
    for k in positions:
        o = rec.operands[k]
        start = o._snapshot_from
        if start is not None and when >= start:
            continue  # the in-place op's own copy of the old values
        counter = _counter_in(o, written)
        if counter is not None and counter.last > when:
            raise versions.modified_error(o, counter, when, _name(rec))
    if reads_result:
        counter = _counter_in(t, written)
        born = t._born if t._born is not None else when
        if counter is not None and counter.last > born:
            raise versions.modified_error(t, counter, born, _name(rec))


def _check_call(rec, when: int) -> None:
    """A compiled function's call: the arrays its backward reads (inputs and outputs
    it saved) must not have been written since."""
    for a in rec.residuals:
        counter = versions.of_array(a)
        if counter is not None and counter.last > when:
            raise versions.modified_error(_Shaped(a), counter, when, "a compiled function's call")


class _Shaped:
    def __init__(self, a):
        self.shape, self.dtype = a.shape, a.dtype.name


def _stale(o, counter, when: int) -> bool:
    """``o`` (whose memory ``counter`` counts) read by a call recorded at ``when``, after
    a recorded in-place op on another tensor wrote that memory: ``o``, a view, takes the
    history of the same view of its base after the write (PyTorch regenerates it too);
    True then. RuntimeError if ``o`` is not a view lucid can regenerate."""
    from .rebase import regenerate
    born = o._born if o._born is not None else o._node.clock
    for written in counter.recorded:
        if born < written < when:  # (calls at the write's own clock are the write's)
            if regenerate(o, written):
                return True
            raise RuntimeError(
                f"backward: a tensor of shape {tuple(o.shape)} was used after an in-place "
                f"operation autograd recorded wrote its memory through another tensor, and it "
                f"is not a view of that tensor's memory lucid can rebuild the history of; "
                f"clone() it before the in-place operation, or compute it again after")
    return False


_TENSORS = None


def _tensor_types():
    global _TENSORS
    if _TENSORS is None:
        from .dispatch import _TENSOR_TYPES
        _TENSORS = _TENSOR_TYPES
    return _TENSORS


def _name(rec: Record) -> str:
    from .autograd_api import entry_name
    return entry_name(rec.entry)[:-len("Backward0")]


def _reads(rec: Record) -> tuple:
    """Which operands (positions) the gradient of ``rec``'s call reads, and whether it
    reads the call's result; once per signature and requires-grad pattern."""
    _TENSOR_TYPES = _tensor_types()
    operands = rec.operands
    entry = rec.entry
    mask = tuple(type(o) in _TENSOR_TYPES and o.requires_grad for o in operands)
    key = (entry.uid, mask)
    hit = _READS.get(key)
    if hit is not None:
        return hit
    inputs = []
    for k, o in enumerate(operands):
        if type(o) in _TENSOR_TYPES:
            inputs.append(Value(TensorType(tuple(o.shape), str(o.dtype))))
        else:
            inputs.append(Value(TensorType((), entry.scalar_dtypes[k])))
    nodes, outs = [], []
    for op, attrs, wires, out_type in entry.steps:
        out = Value(out_type)
        nodes.append(Node(op, tuple([outs[w] if w < 0 else inputs[w] for w in wires]), attrs, out))
        outs.append(out)
    wrt = [k for k, m in enumerate(mask) if m and inputs[k].dtype in ("float32", "float64")]
    residuals = set(pipeline.run(Graph(tuple(inputs), tuple(nodes), (outs[-1],)),
                                 pipeline.differentiate(wrt)).backward.residuals) if wrt else ()
    hit = (tuple(k for k, v in enumerate(inputs) if v in residuals and type(operands[k]) in _TENSOR_TYPES),
           outs[-1] in residuals)
    if len(_READS) > 4096:
        _READS.clear()
    _READS[key] = hit
    return hit
