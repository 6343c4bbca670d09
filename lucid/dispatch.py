"""Applying ops to tensors eagerly: one general path for every op.

Every eager call (``x + y``, ``x.sum()``, ``F.linear``) is a *chain* of primitive ops
(most chains are one op) applied to tensors and Python numbers. The first call of a
*signature* -- the chain, and each operand's shape, strides and dtype, or the type of
a Python number -- checks the ops' shape rules (the clear errors come from there),
builds the chain's graph, fuses it and prepares one native call: an ``Entry``. Every
later call of that signature is a dictionary lookup and that call:

    key = (chain, x.shape, x.strides, x.dtype, ...)  ->  entry.run(x_array, ...)  ->  Tensor

No IR is built on the hot path, and no graph node unless autograd records one.

Each chain also keeps an *inline cache* of the signature it last ran (``Chain.hot``):
that entry's native call in a variant that checks its operands' layouts itself (type,
dtype object, shape, strides; ``eager_call.fast_call(checked=...)``), so a repeated call
skips the key and the lookup and costs one native call. A call the check refuses goes
to the table, which re-arms the cache; a chain whose calls keep changing signature
(``HOT_MISS_LIMIT`` misses: an ``add`` used by two layers) stops arming it.

Python numbers are operands like tensors (*weak*: they take the tensors' dtype, as in
PyTorch), passed to the kernel as immediate arguments: ``x * 2.0`` and ``x * 3.0`` share
one signature and one kernel, and a number never becomes a tensor with a launch of its
own. (Inside ``lucid.compile`` a number is a constant of the traced graph.)

>>> import lucid
>>> x = lucid.tensor([1.0, 2.0, 3.0])
>>> (x * 2.0).tolist(), (x * 3).tolist(), (10.0 - x).tolist()
([2.0, 4.0, 6.0], [3.0, 6.0, 9.0], [9.0, 8.0, 7.0])
"""
from __future__ import annotations

import itertools
import os

import numpy as np

from lucid_ir.builder import make_node
from lucid_ir.graph import Graph, Node, Value
from lucid_ir.types import TensorType, default_float, promote, result_type

from . import backend, grad_mode, tracing
from .autograd import Record

_NUMBERS = (float, int, bool)
_ENTRY_LIMIT = 8192


class Chain:
    """A fixed sequence of primitive ops applied as one eager call.

    ``steps`` are ``(op, attrs, wires)``: a wire ``k >= 0`` is the chain's operand k, a
    wire ``-j`` the result of the step j places back (-1: the previous step). The last
    step's result is the chain's. A chain object is part of every signature key, so make
    each once (module level, or cached by its parameters) and reuse it.

    When autograd records a chain of several steps, the results of inner steps that its
    gradient reads are computed by the same native run and kept (see ``Entry.saved``);
    the others are never materialised.

    >>> LINEAR = Chain([("matmul", {"trans_b": True}, (0, 1)), ("add", {}, (-1, 2))])
    >>> LINEAR.n_operands
    3
    """

    __slots__ = ("steps", "n_operands", "name", "key", "hot", "hot_misses")

    def __init__(self, steps, name: str | None = None, key=None):
        self.steps = tuple((op, dict(attrs), tuple(wires)) for op, attrs, wires in steps)
        self.n_operands = 1 + max((w for _, _, ws in self.steps for w in ws), default=-1)
        self.name = name or "+".join(op for op, _, _ in self.steps)
        #: the chain's part of a signature key: the chain itself, or for one op its name
        #: (and attributes), so the unrolled ``unary``/``binary`` paths share its entries
        self.key = self if key is None else key
        #: the inline cache of the unrolled paths (``_HotRun``): the last signature's
        #: native call, which checks its operands' layouts itself
        self.hot = None
        self.hot_misses = 0

    def __repr__(self) -> str:
        return f"Chain({self.name})"


class ChainCache(dict):
    """Chains (or anything) made per parameters, often shapes (a model fed sequences of
    every length makes one per length): started over when it holds ``limit`` of them
    (default: ``_ENTRY_LIMIT``, the signature tables' own). Lookups are a dict's own.
    Every such cache of lucid is one (``single``'s, ``ChainMemo``'s, the modules' chains).

    >>> cache = ChainCache(limit=2)
    >>> cache["a"], cache["b"] = 1, 2
    >>> cache["c"] = 3          # full: started over
    >>> sorted(cache)
    ['c']
    """

    __slots__ = ("limit",)

    def __init__(self, limit: int | None = None):
        super().__init__()
        self.limit = limit

    def __setitem__(self, key, value):
        if len(self) >= (self.limit or _ENTRY_LIMIT) and key not in self:
            self.clear()
        super().__setitem__(key, value)

    def setdefault(self, key, default=None):
        if key not in self:
            self[key] = default
        return self[key]


_SINGLE: dict = ChainCache()


def single(op: str, attrs_key: tuple = (), n_operands: int | None = None) -> Chain:
    """The one-op chain for ``op`` with these attributes; its key is ``op`` alone, or
    ``(op, attrs)``, so equal chains made at different times share their entries."""
    key = (op, attrs_key) if attrs_key else op
    chain = _SINGLE.get(key)
    if chain is None:
        if n_operands is None:
            from lucid_ir.ops import get_op
            n_operands = get_op(op).arity or 0
        chain = _SINGLE[key] = Chain([(op, dict(attrs_key), tuple(range(n_operands)))], name=op, key=key)
    return chain


# ---------------------------------------------------------------- signature entries
_uids = itertools.count(1)


class Entry:
    """What one signature needs, prepared once: ``run(*arrays) -> array`` (the native
    call), and the steps' ops, attributes and output types for autograd records."""

    __slots__ = ("run", "steps", "scalar_dtypes", "uid", "saved", "graph", "_run_saving", "views",
                 "name", "checked_run")

    def __init__(self, run, steps, scalar_dtypes, saved=(), graph=None, name=""):
        self.run = run
        self.name = name                    # the chain's name (grad_fn names known ones)
        self.steps = steps                  # ((op, attrs tuple, wires, out type), ...)
        self.scalar_dtypes = scalar_dtypes  # {operand position: dtype of that number}
        self.uid = next(_uids)
        #: inner steps whose results a gradient rule reads: recorded calls compute them
        #: too (``run_saving``), as extra outputs of the same fused graph
        self.saved = saved
        self.graph = graph if saved else None
        self._run_saving = None
        #: a reshape or transpose: its result views its operand's data
        self.views = len(steps) == 1 and steps[0][0] in ("reshape", "transpose")
        #: ``run``'s variant checking its operands' layouts natively (``run.block`` when
        #: they differ), when the backend has one: the chain's inline cache calls it
        self.checked_run = getattr(run, "checked", None)

    def run_saving(self, arrays):
        """``[result, *saved step results]`` of one call (the graph with extra outputs)."""
        if self._run_saving is None:
            g = self.graph
            extra = tuple(self._step_values()[k] for k in self.saved)
            self._run_saving = backend.eager_runner_all(Graph(g.inputs, g.nodes, g.outputs + extra))
        return self._run_saving(arrays)

    def _step_values(self):
        """The graph value each chain step defines (the scalar casts come first)."""
        nodes = self.graph.nodes
        return [n.out for n in nodes[len(nodes) - len(self.steps):]]


_TABLES: dict = {}   # (LUCID_BACKEND, LUCID_CHECK_BOUNDS) raw values -> {key: Entry}
_RAW_ENV = getattr(os.environ, "_data", None)
_ENCODE = getattr(os.environ, "encodekey", None)
if _RAW_ENV is None or _ENCODE is None:  # pragma: no cover - no raw mapping: no inline caches
    _RAW_ENV = None
if _RAW_ENV is not None:
    _ENV_GET = _RAW_ENV.get
    _K_BACKEND, _K_BOUNDS = _ENCODE("LUCID_BACKEND"), _ENCODE("LUCID_CHECK_BOUNDS")

    def _table() -> dict:
        """The entries valid under the environment now (the backend and bounds mode
        decide how an entry runs); read raw, in ~0.1 µs."""
        env = (_RAW_ENV.get(_K_BACKEND), _RAW_ENV.get(_K_BOUNDS))
        table = _TABLES.get(env)
        if table is None:
            backend.backend_name()  # validates LUCID_BACKEND (a clear error for a bad name)
            table = _TABLES[env] = {}
        return table
else:  # pragma: no cover - platforms without os.environ's raw mapping
    def _table() -> dict:
        env = (os.environ.get("LUCID_BACKEND"), os.environ.get("LUCID_CHECK_BOUNDS"))
        table = _TABLES.get(env)
        if table is None:
            backend.backend_name()
            table = _TABLES[env] = {}
        return table


# ---------------------------------------------------------------- the inline cache
#: a chain whose inline cache missed this often stops arming it (its calls change
#: signature, as an ``add`` used by two layers of a model does): the table serves them
HOT_MISS_LIMIT = 4


class _HotRun:
    """A chain's inline cache: the native call of the signature it last ran (checking
    its operands' layouts itself) and the raw environment values its entry was made
    under (the backend and bounds mode decide how entries run)."""

    __slots__ = ("run", "block", "backend", "bounds", "pattern")

    def __init__(self, run, backend, bounds, pattern):
        self.run, self.block, self.backend, self.bounds = run, run.block, backend, bounds
        #: the operands' kinds (``_T``: a tensor; ``float``, ``int``: a number of that
        #: type, which the native check cannot see): a call of another pattern misses
        self.pattern = pattern


_T = "tensor"
_PATTERNS = {p: p for p in [(_T,), (_T, _T), (_T, _T, _T), (_T, float), (_T, int), (float, _T), (int, _T)]}


def _arm(chain: Chain, entry: Entry, pattern: tuple) -> None:
    """Make ``entry`` (just found in the table for operands of ``pattern``) ``chain``'s
    inline cache, unless the chain has missed too often or the entry has no checked
    call."""
    if entry.checked_run is not None and chain.hot_misses < HOT_MISS_LIMIT and _RAW_ENV is not None:
        hot = chain.hot
        if hot is None or hot.run is not entry.checked_run:
            chain.hot = _HotRun(entry.checked_run, _RAW_ENV.get(_K_BACKEND), _RAW_ENV.get(_K_BOUNDS),
                                _PATTERNS[pattern])


_T1, _TT, _TTT, _T_FLOAT, _T_INT, _FLOAT_T, _INT_T = (_PATTERNS[p] for p in [
    (_T,), (_T, _T), (_T, _T, _T), (_T, float), (_T, int), (float, _T), (int, _T)])


def _missed(chain: Chain) -> None:
    chain.hot = None
    chain.hot_misses += 1


def _build_entry(chain: Chain, operands, arrays) -> Entry:
    """Check ``chain`` on these operands (shape rules: the clear errors) and prepare its
    native call. Numbers take the dtype the tensors promote to; they enter the graph as
    float64 scalars cast to that dtype inside the kernel."""
    from .tensor import Tensor
    tensor_dtypes = [o.dtype for o in operands if isinstance(o, Tensor)]
    weak = promote(*tensor_dtypes) if tensor_dtypes else default_float()
    inputs, values, scalar_dtypes, scalars = [], [], {}, []
    for k, o in enumerate(operands):
        if isinstance(o, Tensor):
            v = Value(TensorType(o.shape, o.dtype))
            inputs.append(v)
            values.append(v)
        else:
            v = Value(TensorType((), "float64"))
            inputs.append(v)
            scalars.append(k)
            scalar_dtypes[k] = weak
            values.append(v if weak == "float64" else None)
    nodes = []
    for k in scalars:
        if values[k] is None:
            node = make_node("cast", [inputs[k]], {"dtype": weak})
            nodes.append(node)
            values[k] = node.out
    steps, outs = [], []
    for op, attrs, wires in chain.steps:
        node = make_node(op, [outs[w] if w < 0 else values[w] for w in wires], attrs)
        nodes.append(node)
        steps.append((op, node.attrs, wires, node.out.type))
        outs.append(node.out)
    graph = Graph(tuple(inputs), tuple(nodes), (outs[-1],))
    run = backend.eager_runner(graph, arrays, tuple(scalars), chain.name)
    return Entry(run, tuple(steps), scalar_dtypes, _saved_steps(graph, outs), graph, chain.name)


def _saved_steps(graph: Graph, outs) -> tuple:
    """Positions of the inner steps whose results the chain's gradient reads."""
    if len(outs) < 2:
        return ()
    from lucid_ir import pipeline
    wrt = [i for i, v in enumerate(graph.inputs) if v.dtype in ("float32", "float64")]
    residuals = set(pipeline.run(graph, pipeline.differentiate(wrt)).backward.residuals)
    return tuple(k for k, v in enumerate(outs[:-1]) if v in residuals)


def _miss(table: dict, key, chain: Chain, operands, arrays) -> Entry:
    entry = _build_entry(chain, operands, arrays)
    if len(table) >= _ENTRY_LIMIT:
        table.clear()
    table[key] = entry
    return entry


# ---------------------------------------------------------------- autograd records
def _record(entry: Entry, out: np.ndarray, operands, saved=()):
    """The result tensor of a call autograd records: it keeps one ``Record`` (the entry,
    the operands, and ``saved``, the results of ``entry.saved``'s inner steps); the
    backward pass builds the graph from it only when it has not derived it before."""
    t = _new(_TENSOR_TYPES[0])
    t._data = out
    t._node = Record(entry, operands, saved)
    t._parents = parents = tuple([o for o in operands if type(o) in _TENSOR_TYPES])
    t.requires_grad, t._is_leaf = True, False
    if entry.views:  # a reshaped or transposed leaf is another view of it (the seed's
        p = parents[0]  # bias = Tensor(...).reshape(1, -1)): backward fills its .grad too
        t._retains_grad = p.requires_grad and (p._is_leaf or p._retains_grad)
    return t


_new = object.__new__


# ---------------------------------------------------------------- the general path
def call(chain: Chain, operands, check=None):
    """Apply ``chain`` to ``operands`` (tensors and Python numbers) eagerly and return
    the result tensor. ``check(*operands)``, if given, runs on a signature's first call
    only, before the shape rules (an op's own, friendlier errors)."""
    if _TRACES[0] and _tracing_state.tracer is not None:
        if check is not None:
            check(*operands)
        return _traced(chain, operands)
    n = len(operands)
    if n == 2:  # (the common counts unrolled: the key built in place)
        a, b = operands
        if type(a) in _TENSOR_TYPES and type(b) in _TENSOR_TYPES:
            out = _two_tensors(chain, a, b)
            if out is not None:
                return out
    elif n == 1:
        (a,) = operands
        if type(a) in _TENSOR_TYPES and a._data is not None:
            x = a._data
            entry = _table().get((chain.key, x.shape, x.strides, x.dtype))
            if entry is not None:
                if a.requires_grad and _grad_state.enabled:
                    return _recorded(entry, [x], (a,))
                return _wrap(entry.run(x))
    return _call_general(chain, operands, check)


def call_as(alias: Chain, chain: Chain, tensors):
    """``call(chain, tensors)`` (tensors only), with the entry also kept under ``alias``'s
    signature for these layouts, so that the next ``call2``/``call3`` of ``alias`` on
    tensors like these finds it in one lookup. ``chain`` must compute what ``alias``
    means for them (``F.linear`` on a 3-D input: the 2-D product between reshapes, one
    eager call where the general path made three)."""
    out = call(chain, tensors)
    if not _TRACES[0] or _tracing_state.tracer is None:
        table, key = _table(), []
        for t in tensors:
            a = t._data
            key += (a.shape, a.strides, a.dtype)
        entry = table.get((chain.key, *key))
        if entry is not None:
            table[(alias.key, *key)] = entry
    return out


def _call_general(chain: Chain, operands, check=None):
    """``call`` for any operands: the key built in a loop (numbers, any count)."""
    key = [chain.key]
    arrays = []
    needs_grad = False
    for o in operands:
        if type(o) in _TENSOR_TYPES:
            a = o._data
            if a is None:
                raise tracing.TracingError("a tensor traced by a compiled function was used "
                                           "outside it")
            key += (a.shape, a.strides, a.dtype)
            arrays.append(a)
            if o.requires_grad:
                needs_grad = True
        elif type(o) in _NUMBERS:
            key.append(type(o))
            arrays.append(float(o))
        else:
            return call(chain, [_operand(o, chain.name) for o in operands], check)
    table = _table()
    key = tuple(key)
    entry = table.get(key)
    if entry is None:
        if check is not None:
            check(*operands)
        entry = _miss(table, key, chain, operands, arrays)
    if needs_grad and _grad_state.enabled:
        return _recorded(entry, arrays, operands)
    return _wrap(entry.run(*arrays))


def _recorded(entry: Entry, arrays, operands):
    """The recorded result of ``entry`` on ``arrays``: with the inner step results its
    gradient reads (``entry.saved``) computed by the same native run when it has any.
    An integer or bool result (an index, a mask) is a plain tensor, as in PyTorch: no
    gradient flows through it."""
    if entry.saved:
        out, *saved = entry.run_saving(arrays)
        return _record(entry, out, operands, saved) if out.dtype.kind == "f" else _wrap(out)
    out = entry.run(*arrays)
    return _record(entry, out, operands) if out.dtype.kind == "f" else _wrap(out)


def record_as(chain: Chain, operands, data: np.ndarray):
    """The recorded result of ``chain`` on the tensors ``operands``, whose values the
    caller computed as ``data`` (a view of an operand's memory where the chain's kernels
    would copy: ``Tensor.unfold``). The backward pass differentiates the chain."""
    key, arrays = [chain.key], []
    for o in operands:
        a = o._data
        key += (a.shape, a.strides, a.dtype)
        arrays.append(a)
    table = _table()
    key = tuple(key)
    entry = table.get(key)
    if entry is None:
        entry = _miss(table, key, chain, operands, arrays)
    saved = entry.run_saving(arrays)[1:] if entry.saved else ()
    return _record(entry, data, operands, saved)


def _traced(chain: Chain, operands):
    """The chain appended to the active trace (numbers become constants of the graph)."""
    from .tensor import Tensor
    tracer = tracing.current()
    dtypes = [o.dtype for o in operands if isinstance(o, Tensor)]
    weak = promote(*dtypes) if dtypes else default_float()
    ins = [o if isinstance(o, Tensor) else
           tracer.apply("constant", [], {"value": float(o), "shape": (), "dtype": weak})
           for o in operands]
    outs = []
    for op, attrs, wires in chain.steps:
        outs.append(tracer.apply(op, [outs[w] if w < 0 else ins[w] for w in wires], attrs))
    return outs[-1]


_tracing_state = tracing._state
_TRACES = tracing.ACTIVE   # [traces active in any thread]: 0 spares the thread-local read
_grad_state = grad_mode._state


def call1(chain: Chain, x):
    """``chain`` on one tensor: the general path unrolled (the signature key built in
    place, no loop)."""
    if (not _TRACES[0] or _tracing_state.tracer is None) and type(x) in _TENSOR_TYPES:
        a = x._data
        hot = chain.hot
        if hot is not None and hot.pattern is _T1 and not (x.requires_grad and _grad_state.enabled) \
                and _ENV_GET(_K_BACKEND) is hot.backend and _ENV_GET(_K_BOUNDS) is hot.bounds:
            out = hot.run(a)
            if out is not hot.block:
                return _wrap(out)
            _missed(chain)
        if a is not None:
            try:
                entry = _table().get((chain.key, a.shape, a.strides, a.dtype))
            except TypeError:  # unhashable attributes in the key: the general path says so
                entry = None
            if entry is not None:
                _arm(chain, entry, _T1)
                if x.requires_grad and _grad_state.enabled:
                    return _recorded(entry, [a], (x,))
                return _wrap(entry.run(a))
    x = as_tensor(x)
    if chain.name in _FLOAT_ONLY and x.dtype not in ("float32", "float64"):
        x = cast(x, default_float())  # as PyTorch: sin of an int tensor is float32
    return call(chain, (x,))


#: unary ops defined on floats only: integer and bool operands are cast to float32 first
_FLOAT_ONLY = frozenset(("exp", "log", "tanh", "sigmoid", "sqrt", "log2", "log1p", "expm1", "rsqrt",
                         "sin", "cos", "erf", "erfc"))


def unary(op: str, x):
    """``op(x)`` for one primitive op without attributes."""
    chain = _SINGLE.get(op)
    return call1(chain if chain is not None else single(op, (), 1), x)


def apply1(op: str, x, attrs_key: tuple):
    """``op[attrs](x)`` with the attributes as a ``((name, value), ...)`` tuple."""
    try:
        chain = _SINGLE.get((op, attrs_key))
    except TypeError:  # a list of axes: canonical tuples, through ``apply``
        return apply(op, x, **dict(attrs_key))
    return call1(chain if chain is not None else single(op, attrs_key, 1), x)


def binary(op: str, a, b):
    """``op(a, b)`` for tensors and numbers: tensors of different dtypes are promoted
    (float32 with float64 gives float64), numbers take the tensor's dtype."""
    chain = _SINGLE.get(op)
    return binary_chain(chain if chain is not None else single(op, (), 2), a, b)


def unary_method(op: str, name: str | None = None):
    """A ``Tensor`` method ``name(self)`` (default: ``op``) applying the one-op chain of
    ``op``: the chain is bound once, so a call goes straight to ``call1`` (no lookup of the op's chain).

    >>> import lucid
    >>> lucid.Tensor.exp.__name__, lucid.tensor([0.0]).exp().tolist()
    ('exp', [1.0])
    """
    chain = single(op, (), 1)

    def method(self):
        return call1(chain, self)
    method.__name__ = method.__qualname__ = name or op
    method.__doc__ = f"``{op}`` of every element (see ``lucid.{op}``)."
    return method


def binary_method(op: str, name: str | None = None, reflected: bool = False):
    """A ``Tensor`` method ``name(self, other)`` (default: ``op``) applying ``op`` to
    (self, other), or to (other, self) when ``reflected`` (``__radd__``): the chain bound
    once, as ``unary_method``."""
    chain = single(op, (), 2)
    if reflected:
        def method(self, other):
            return binary_chain(chain, other, self)
    else:
        def method(self, other):
            return binary_chain(chain, self, other)
    method.__name__ = method.__qualname__ = name or op
    method.__doc__ = f"``{op}`` elementwise, broadcasting, numbers weak (as in PyTorch)."
    return method


def binary_chain(chain: Chain, a, b):
    """``chain`` on two operands (tensors or numbers): the general path unrolled."""
    if not _TRACES[0] or _tracing_state.tracer is None:
        ta, tb = type(a), type(b)
        key = chain.key
        try:
            if ta in _TENSOR_TYPES:
                x = a._data
                if tb in _TENSOR_TYPES:
                    out = _two_tensors(chain, a, b)
                    if out is not None:
                        return out
                elif tb is float or tb is int:
                    hot, pattern = chain.hot, (_T_FLOAT if tb is float else _T_INT)
                    if hot is not None and hot.pattern is pattern and not (a.requires_grad and _grad_state.enabled) \
                            and _ENV_GET(_K_BACKEND) is hot.backend and _ENV_GET(_K_BOUNDS) is hot.bounds:
                        out = hot.run(x, float(b))
                        if out is not hot.block:
                            return _wrap(out)
                        _missed(chain)
                    entry = _table().get((key, x.shape, x.strides, x.dtype, tb))
                    if entry is not None:
                        _arm(chain, entry, pattern)
                        if a.requires_grad and _grad_state.enabled:
                            return _recorded(entry, [x, float(b)], (a, b))
                        return _wrap(entry.run(x, float(b)))
            elif (ta is float or ta is int) and tb in _TENSOR_TYPES:
                y = b._data
                hot, pattern = chain.hot, (_FLOAT_T if ta is float else _INT_T)
                if hot is not None and hot.pattern is pattern and not (b.requires_grad and _grad_state.enabled) \
                        and _ENV_GET(_K_BACKEND) is hot.backend and _ENV_GET(_K_BOUNDS) is hot.bounds:
                    out = hot.run(float(a), y)
                    if out is not hot.block:
                        return _wrap(out)
                    _missed(chain)
                entry = _table().get((key, ta, y.shape, y.strides, y.dtype))
                if entry is not None:
                    _arm(chain, entry, pattern)
                    if b.requires_grad and _grad_state.enabled:
                        return _recorded(entry, [float(a), y], (a, b))
                    return _wrap(entry.run(float(a), y))
        except AttributeError:  # a traced tensor outside its trace: the general path says so
            pass
    return _binary_slow(chain, a, b)


def call2(chain: Chain, a, b, general):
    """``chain`` on two tensors through the general path unrolled (the signature key
    built in place); ``general(a, b)`` for anything else, including a signature's first
    call (it checks, promotes, reshapes, and ends in ``call``)."""
    if (not _TRACES[0] or _tracing_state.tracer is None) and type(a) in _TENSOR_TYPES \
            and type(b) in _TENSOR_TYPES:
        out = _two_tensors(chain, a, b)
        if out is not None:
            return out
    return general(a, b)


def _two_tensors(chain: Chain, a, b):
    """``chain`` on two tensors (outside any trace) through its inline cache or the
    signature table; None when neither has the call (a first call, a traced tensor)."""
    x, y = a._data, b._data
    hot = chain.hot
    if hot is not None and hot.pattern is _TT and not ((a.requires_grad or b.requires_grad) and _grad_state.enabled) \
            and _ENV_GET(_K_BACKEND) is hot.backend and _ENV_GET(_K_BOUNDS) is hot.bounds:
        out = hot.run(x, y)
        if out is not hot.block:
            return _wrap(out)
        _missed(chain)
    if x is not None and y is not None:
        entry = _table().get((chain.key, x.shape, x.strides, x.dtype, y.shape, y.strides, y.dtype))
        if entry is not None:
            _arm(chain, entry, _TT)
            if (a.requires_grad or b.requires_grad) and _grad_state.enabled:
                return _recorded(entry, [x, y], (a, b))
            return _wrap(entry.run(x, y))
    return None


def call3(chain: Chain, a, b, c, general):
    """``chain`` on three tensors, unrolled as ``call2``; ``general(a, b, c)`` otherwise."""
    T = _TENSOR_TYPES
    if (not _TRACES[0] or _tracing_state.tracer is None) and type(a) in T and type(b) in T and type(c) in T:
        x, y, z = a._data, b._data, c._data
        hot = chain.hot
        if hot is not None and hot.pattern is _TTT \
                and not ((a.requires_grad or b.requires_grad or c.requires_grad) and _grad_state.enabled) \
                and _ENV_GET(_K_BACKEND) is hot.backend and _ENV_GET(_K_BOUNDS) is hot.bounds:
            out = hot.run(x, y, z)
            if out is not hot.block:
                return _wrap(out)
            _missed(chain)
        if x is not None and y is not None and z is not None:
            entry = _table().get((chain.key, x.shape, x.strides, x.dtype, y.shape, y.strides, y.dtype,
                                  z.shape, z.strides, z.dtype))
            if entry is not None:
                _arm(chain, entry, _TTT)
                if (a.requires_grad or b.requires_grad or c.requires_grad) and _grad_state.enabled:
                    return _recorded(entry, [x, y, z], (a, b, c))
                return _wrap(entry.run(x, y, z))
    return general(a, b, c)


def _binary_slow(chain: Chain, a, b):
    """A binary op's first call of a signature, or operands of different dtypes: the
    operands cast to the op's operand dtype (PyTorch's promotion, numbers weak)."""
    Tensor = _TENSOR_TYPES[0]
    a, b = _operand(a, chain.name), _operand(b, chain.name)
    if type(a) not in _TENSOR_TYPES and type(b) not in _TENSOR_TYPES:
        a = Tensor(a)
    target = operand_dtype(chain.name, [o.dtype if type(o) in _TENSOR_TYPES else o for o in (a, b)])
    if type(a) in _TENSOR_TYPES:
        a = cast(a, target)
    if type(b) in _TENSOR_TYPES:
        b = cast(b, target)
    return call(chain, (a, b))


_TRUE_DIVISION = ("div",)
_LOGICAL = ("logical_and", "logical_or", "logical_xor")


def operand_dtype(op: str, operands) -> str:
    """The dtype a binary op's operands are cast to: ``result_type`` of the tensors'
    dtypes and the (weak) numbers, as PyTorch; true division of integers in the default
    float dtype; logical ops on bool.

    >>> operand_dtype("add", ["int32", 2.5]), operand_dtype("div", ["int64", "int32"])
    ('float32', 'float32')
    """
    if op in _LOGICAL:
        return "bool"
    if op == "sub" and any(type(o) is bool or o == "bool" for o in operands):
        raise RuntimeError("sub: subtracting bool tensors or values is not supported (as in "
                           "PyTorch); to invert a mask use ~ or logical_not")
    dtype = result_type(*operands)
    if op in _TRUE_DIVISION and dtype not in ("float32", "float64"):
        return default_float()
    return dtype


def _operand(x, op):
    """A tensor, or a Python number kept as one (it becomes an immediate argument)."""
    if type(x) in _TENSOR_TYPES or type(x) in _NUMBERS:
        return x
    if isinstance(x, (np.floating, np.integer, np.bool_)) and np.ndim(x) == 0:
        return x.item()
    return as_tensor(x)


def apply(op: str, *inputs, **attrs):
    """Apply one primitive op to tensors (and numbers) through the general path."""
    attrs_key = tuple(attrs.items()) if attrs else ()
    try:
        chain = _SINGLE.get((op, attrs_key) if attrs_key else op)
    except TypeError:
        chain = None
    if chain is None:
        try:
            hash(attrs_key)
        except TypeError:  # unhashable attributes (a list of axes): canonical tuples
            attrs_key = tuple((k, tuple(v) if isinstance(v, list) else v) for k, v in attrs.items())
        chain = single(op, attrs_key, len(inputs))
    return call(chain, inputs)


def apply_chain(steps):
    """Apply ``[(op, inputs, attrs), ...]`` (an input None: the previous step's result)
    as one call. Prefer a module-level ``Chain`` and ``call`` on hot paths."""
    operands, wired = [], []
    for op, inputs, attrs in steps:
        wires = []
        for t in inputs:
            if t is None:
                wires.append(-1)
                continue
            for k, o in enumerate(operands):
                if o is t:
                    break
            else:
                k = len(operands)
                operands.append(t)
            wires.append(k)
        wired.append((op, attrs, wires))
    chain = _CHAINS.get(repr(wired))
    if chain is None:
        chain = _CHAINS.setdefault(repr(wired), Chain(wired))
    return call(chain, operands)


_CHAINS: dict = ChainCache()


def as_tensor(x, like=None):
    """A tensor from ``x`` (a Python number next to a tensor ``like`` takes its dtype)."""
    if type(x) in _TENSOR_TYPES:
        return x
    tensor = _TENSOR_TYPES[0]
    if like is not None and type(x) in _NUMBERS:
        return tensor(np.array(x, dtype=like.dtype))
    return tensor(x)


def cast(t, dtype: str):
    return t if t.dtype == dtype else apply("cast", t, dtype=dtype)


#: ``Tensor`` and its subclasses (``lucid.tensor`` registers them; Tensor first)
_TENSOR_TYPES: list = []
#: ``_wrap(array) -> Tensor``: a new leaf around an op's result (``lucid.tensor`` sets it)
_wrap = None
