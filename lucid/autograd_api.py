"""The autograd API as PyTorch users know it: ``lucid.autograd.grad``, tensor hooks,
``grad_fn``, ``detach_`` and ``backward(inputs=...)``.

All of it runs the machinery of ``lucid.autograd`` (recorded calls, one derived and
compiled backward graph, or a node-by-node walk when hooks on intermediates or
compiled calls need it).

>>> import lucid
>>> x = lucid.tensor([1.0, 2.0, 3.0], requires_grad=True)
>>> y = (x * x).sum()
>>> y.grad_fn
<SumBackward0>
>>> (g,) = lucid.autograd.grad(y, x)
>>> g
Tensor([2.0, 4.0, 6.0], grad=None)
>>> x.grad is None
True
>>> h = x.register_hook(lambda g: g * 10)
>>> (x * 3).sum().backward()
>>> x.grad
Tensor([30.0, 30.0, 30.0], grad=None)
>>> h.remove()
"""
from __future__ import annotations

import itertools

import numpy as np

from . import autograd
from .autograd import CallOutput, Record
from .tracing import TracingError
from .tracing import _state as _tracing_state

_Tensor = None   # lucid.Tensor, set by _install (this module loads before it exists)


# ------------------------------------------------------------------ lucid.autograd.grad
def grad(outputs, inputs, grad_outputs=None, retain_graph=None, create_graph=False,
         allow_unused=None, is_grads_batched=False, materialize_grads=False):
    """The gradients of ``outputs`` with respect to ``inputs``, as a tuple of tensors
    (one per input), without touching any ``.grad``.

    ``grad_outputs`` weights each output (needed for non-scalar outputs, as in
    PyTorch). An input the outputs do not depend on is an error unless
    ``allow_unused=True`` (its gradient is then None, or zeros with
    ``materialize_grads=True``). The graph is freed afterwards unless
    ``retain_graph=True``. Hooks registered on the inputs and intermediates run as in
    ``backward``. ``create_graph=True`` (gradients that are themselves differentiable)
    is not supported yet.

    >>> import lucid
    >>> x = lucid.tensor([1.0, 2.0], requires_grad=True)
    >>> z = x * 3
    >>> y = (z * z).sum()
    >>> gx, gz = lucid.autograd.grad(y, [x, z])
    >>> gx, gz
    (Tensor([18.0, 36.0], grad=None), Tensor([6.0, 12.0], grad=None))
    """
    outputs = _as_tuple(outputs, "outputs")
    inputs = _as_tuple(inputs, "inputs")
    if create_graph:
        raise ValueError("autograd.grad: create_graph=True (differentiable gradients, for "
                         "higher-order derivatives) is not supported yet")
    if is_grads_batched:
        raise ValueError("autograd.grad: is_grads_batched=True is not supported yet")
    if materialize_grads and allow_unused is False:
        raise ValueError("autograd.grad: materialize_grads=True needs allow_unused to be "
                         "True or None")
    allow_unused = bool(materialize_grads or allow_unused)
    retain_graph = bool(create_graph if retain_graph is None else retain_graph)
    if _tracing_state.tracer is not None or any(t._data is None for t in outputs + inputs):
        raise TracingError("autograd.grad is not supported inside a function compiled by "
                           "lucid.compile yet; call loss.backward() there and read .grad")
    if not inputs:
        raise RuntimeError("autograd.grad: grad requires at least one input tensor")
    for i, t in enumerate(inputs):
        if not t.requires_grad:
            raise RuntimeError(f"autograd.grad: one of the differentiated tensors (input {i}, "
                               f"shape {tuple(t.shape)}) does not require grad")
    seeds = _seeds(outputs, grad_outputs)
    order, leaves = autograd.collect(*outputs)
    while autograd.autograd_versions.check(order, outputs):   # a stale view regenerated
        order, leaves = autograd.collect(*outputs)
    if len(outputs) == 1 and order and order[-1] is outputs[0] and not any(
            isinstance(t._node, CallOutput) or t._hooks for t in order):
        found = _grad_whole(order, leaves, seeds[0][1], inputs)
    else:
        found = _grad_by_record(order, seeds, inputs)
    if not retain_graph:
        autograd.free(order)
    result, handed = [], set()
    for i, t in enumerate(inputs):
        g = found.get(id(t))
        if g is None:
            if not allow_unused:
                raise RuntimeError(f"autograd.grad: the differentiated tensor at index {i} "
                                   f"(shape {tuple(t.shape)}) appears to not have been used in "
                                   f"the graph; set allow_unused=True if this is the desired "
                                   f"behavior")
            result.append(_Tensor._wrap(np.zeros(t.shape, t._data.dtype))
                          if materialize_grads else None)
            continue
        if id(g) in handed:
            g = g.copy()   # one array handed to two inputs: each gets its own
        handed.add(id(g))
        result.append(_Tensor._wrap(g))
    return tuple(result)


def _as_tuple(x, what: str) -> tuple:
    items = (x,) if isinstance(x, _Tensor) else tuple(x) if isinstance(x, (list, tuple)) else None
    if items is None or not all(isinstance(t, _Tensor) for t in items):
        raise TypeError(f"autograd.grad: {what} must be a tensor or a sequence of tensors, "
                        f"not {type(x).__name__}")
    return items


def _seeds(outputs, grad_outputs) -> list:
    """``(output, seed array)`` for each output; PyTorch's rules for ``grad_outputs``."""
    if grad_outputs is None or isinstance(grad_outputs, _Tensor):
        grad_outputs = (grad_outputs,) * len(outputs) if grad_outputs is None else (grad_outputs,)
    grad_outputs = tuple(grad_outputs)
    if len(grad_outputs) != len(outputs):
        raise RuntimeError(f"autograd.grad: grad_outputs has {len(grad_outputs)} entries for "
                           f"{len(outputs)} outputs")
    seeds = []
    for i, (out, g) in enumerate(zip(outputs, grad_outputs)):
        if not out.requires_grad:
            raise RuntimeError(f"autograd.grad: element {i} of the outputs (shape "
                               f"{tuple(out.shape)}) does not require grad and has no grad_fn")
        if g is None:
            if out._data.size != 1:
                raise RuntimeError(f"autograd.grad: grad can be implicitly created only for "
                                   f"scalar outputs; output {i} has shape {tuple(out.shape)}, "
                                   f"pass grad_outputs")
            seeds.append((out, np.ones(out.shape, out._data.dtype)))
            continue
        seed = np.asarray(getattr(g, "_data", g), dtype=out._data.dtype)
        if seed.shape != out.shape:
            raise RuntimeError(f"autograd.grad: mismatch in shape: grad_outputs[{i}] has shape "
                               f"{seed.shape} and outputs[{i}] has shape {tuple(out.shape)}")
        seeds.append((out, seed))
    return seeds


def _grad_whole(order, leaves, seed, inputs) -> dict:
    """One compiled backward graph for the inputs only (leaves by position, recorded
    intermediates as retained results). ``{id(input): gradient}``."""
    leaf_pos = {id(t): i for i, t in enumerate(leaves)}
    order_pos = {id(t): i for i, t in enumerate(order)}
    wrt = tuple(dict.fromkeys(leaf_pos[id(t)] for t in inputs if id(t) in leaf_pos))
    retained = tuple(dict.fromkeys(order_pos[id(t)] for t in inputs if id(t) in order_pos))
    if not wrt and not retained:
        return {}
    _, grads = autograd._run_backward(order, leaves, seed, retained, wrt)
    found = {}
    for k, g in enumerate(grads):
        t = leaves[wrt[k]] if k < len(wrt) else order[retained[k - len(wrt)]]
        found[id(t)] = run_hooks(t, g) if t._hooks and t._node is None else g
    return found


def _grad_by_record(order, seeds, inputs) -> dict:
    """The node-by-node walk: intermediates' gradients as they reach them (before their
    own hooks, as PyTorch's), leaves' complete gradients after theirs."""
    wanted = {id(t) for t in inputs}
    found = {}

    def visit(t, g):
        if id(t) in wanted:
            found[id(t)] = g
        return run_hooks(t, g) if t._hooks else g

    for p, g in autograd.reverse_walk(seeds, order, visit):
        if id(p) in wanted:
            found[id(p)] = run_hooks(p, g) if p._hooks else g
    return found


# ------------------------------------------------------------------ hooks
class RemovableHandle:
    """What ``register_hook`` returns: ``remove()`` takes the hook off again."""

    _ids = itertools.count()

    def __init__(self, hooks: dict):
        self._hooks = hooks
        self.id = next(self._ids)

    def remove(self) -> None:
        self._hooks.pop(self.id, None)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.remove()
        return False


def register_hook(self, hook):
    """Call ``hook(grad)`` whenever a gradient for this tensor is computed (by
    ``backward`` or ``autograd.grad``), before it is accumulated into ``.grad`` or passed
    on; a hook that returns a tensor (or array) replaces the gradient. Returns a handle
    whose ``remove()`` unregisters it.

    >>> import lucid
    >>> x = lucid.tensor([1.0, 2.0], requires_grad=True)
    >>> y = x * 2
    >>> _ = y.register_hook(lambda g: g * 0.5)
    >>> (y * y).sum().backward()
    >>> x.grad
    Tensor([4.0, 8.0], grad=None)
    """
    if not callable(hook):
        raise TypeError(f"register_hook: the hook must be callable, not {type(hook).__name__}")
    if self._data is None or _tracing_state.tracer is not None:
        raise TracingError("register_hook is not supported inside a function compiled by "
                           "lucid.compile; register hooks outside it and run the backward eagerly")
    if not self.requires_grad:
        raise RuntimeError(f"register_hook: cannot register a hook on a tensor that doesn't "
                           f"require gradient (shape {tuple(self.shape)})")
    if self._hooks is None:
        self._hooks = {}
    handle = RemovableHandle(self._hooks)
    self._hooks[handle.id] = hook
    return handle


def register_post_accumulate_grad_hook(self, hook):
    """Call ``hook(tensor)`` after a gradient has been accumulated into this leaf's
    ``.grad`` by ``backward`` (PyTorch 2.1's API; what data-parallel training uses to
    start communicating a gradient as soon as it is ready). Returns a removable handle.

    >>> import lucid
    >>> w = lucid.tensor([1.0, 2.0], requires_grad=True)
    >>> seen = []
    >>> _ = w.register_post_accumulate_grad_hook(lambda t: seen.append(t.grad.tolist()))
    >>> (w * 3).sum().backward()
    >>> seen
    [[3.0, 3.0]]
    """
    if not callable(hook):
        raise TypeError(f"register_post_accumulate_grad_hook: the hook must be callable, "
                        f"not {type(hook).__name__}")
    if not self.requires_grad:
        raise RuntimeError("cannot register a hook on a tensor that doesn't require gradient")
    if self._node is not None:
        raise RuntimeError("post accumulate grad hooks cannot be registered on non-leaf tensors")
    if self._post_accumulate_hooks is None:
        self._post_accumulate_hooks = {}
    handle = RemovableHandle(self._post_accumulate_hooks)
    self._post_accumulate_hooks[handle.id] = hook
    return handle


def run_hooks(t, g: np.ndarray) -> np.ndarray:
    """``g`` passed through ``t``'s hooks in the order they were registered."""
    for hook in list(t._hooks.values()):
        out = hook(_Tensor._wrap(g))
        if out is None:
            continue
        new = np.asarray(getattr(out, "_data", out))
        if new.shape != g.shape:
            raise RuntimeError(f"hook: a hook returned a gradient of shape {new.shape} for a "
                               f"tensor of shape {g.shape}")
        g = new.astype(g.dtype, copy=False)
    return g


# ------------------------------------------------------------------ grad_fn
class BackwardNode:
    """What ``Tensor.grad_fn`` returns: the recorded call that made a tensor, named as
    PyTorch names its backward nodes (``MulBackward0``, ``SumBackward0``, ...).

    >>> import lucid
    >>> x = lucid.tensor([1.0, 2.0], requires_grad=True)
    >>> f = (x * lucid.tensor([3.0, 4.0])).grad_fn
    >>> f.name(), f.next_functions
    ('MulBackward0', ((<AccumulateGrad>, 0), (None, 0)))
    """

    def __init__(self, name: str, parents=()):
        self._name, self._parents = name, parents

    def name(self) -> str:
        return self._name

    @property
    def next_functions(self) -> tuple:
        """``(node, 0)`` for each tensor operand: its grad_fn, ``AccumulateGrad`` for a
        leaf that requires grad, None otherwise (numbers count as constant operands)."""
        return tuple((_node_of(p, leaf=True), 0) for p in self._parents)

    def __repr__(self) -> str:
        return f"<{self._name}>"


class AccumulateGrad(BackwardNode):
    """The node that accumulates a leaf's gradient into its ``.grad``."""

    def __init__(self, variable):
        super().__init__("AccumulateGrad")
        self.variable = variable


# PyTorch's names for lucid's primitive ops where they differ from the CamelCased op name
_TORCH_NAMES = {"matmul": "Mm", "reshape": "View", "transpose": "Permute", "broadcast_to": "Expand",
                "cast": "ToCopy", "concat": "Cat", "select": "Where", "embed": "Embedding",
                "log1p": "Log1P", "stop_gradient": "Detach"}


def _op_name(op: str) -> str:
    return _TORCH_NAMES.get(op) or "".join(w.capitalize() for w in op.split("_"))


# PyTorch's names for chains (``Chain.name``) that are one op in PyTorch
_CHAIN_NAMES = {"softmax": "Softmax", "log_softmax": "LogSoftmax", "layer_norm": "NativeLayerNorm",
                "conv1d": "Convolution", "conv2d": "Convolution", "conv3d": "Convolution",
                "embedding": "Embedding", "mse_loss": "MseLoss", "cross_entropy": "NllLoss",
                "gelu": "Gelu", "pow": "Pow", "stack": "Stack", "max_dim": "Max", "min_dim": "Min"}


def entry_name(entry) -> str:
    """The backward node's name for a recorded eager call: its chain's ops (constants
    and casts of numbers are not part of the name), PyTorch's name for known chains."""
    steps = entry.steps
    ops = tuple(s[0] for s in steps)
    known = _CHAIN_NAMES.get(entry.name)
    if known is not None:
        base = known
    elif entry.name == "getitem" and "gather" in ops:
        base = "Index"          # advanced indexing (basic slices keep their view names)
    elif ops == ("matmul",) and len(steps[0][3].shape) == 3:
        base = "Bmm"
    elif ops == ("matmul", "add"):
        base = "Addmm"          # F.linear with a bias
    elif ops == ("constant", "maximum") and dict(steps[0][1]).get("value") == 0.0:
        base = "Relu"
    else:
        named = [op for op in ops if op not in ("constant", "cast")] or list(ops)
        if ops[-1] == "select" or (len(named) > 1 and named[-1] == "select"):
            named = ["select"]  # where: the condition's cast is not part of the name
        base = "".join(_op_name(op) for op in named)
    return base + "Backward0"


def _node_of(t, leaf: bool = False):
    node = t._node
    if node is None:
        spent = t._spent
        if spent is not None:       # its graph was freed by backward: the name remains
            return BackwardNode(spent if isinstance(spent, str) else entry_name(spent))
        return AccumulateGrad(t) if leaf and t.requires_grad else None
    if type(node) is Record:
        return BackwardNode(entry_name(node.entry), t._parents)
    if isinstance(node, CallOutput):
        return BackwardNode(getattr(node.record, "name", "CompiledFunctionBackward"), node.record.parents)
    return None


def grad_fn(self):
    """The backward node of the call that made this tensor (None for leaves and for
    tensors that do not require grad)."""
    if self._data is None:
        return None
    return _node_of(self)


# ------------------------------------------------------------------ detaching, backward
def detach_(self):
    """Cut this tensor from the graph in place: it becomes a leaf that does not require
    grad (as PyTorch's ``detach_``).

    >>> import lucid
    >>> y = lucid.tensor([1.0], requires_grad=True) * 2
    >>> y.detach_().is_leaf, y.requires_grad, y.grad_fn
    (True, False, None)
    """
    if self._data is None or _tracing_state.tracer is not None:
        raise TracingError("detach_ is not supported inside a function compiled by "
                           "lucid.compile; use detach()")
    self._node = self._parents = self._spent = None
    self._freed = False
    self._is_leaf, self._retains_grad, self.requires_grad = True, False, False
    return self


def backward(self, gradient=None, retain_graph=None, create_graph=False, inputs=None):
    """Accumulate d(self)/d(leaf) into every leaf's ``.grad`` (or only into the tensors
    ``inputs``, leaves or intermediates, when given).

    A non-scalar tensor is seeded with ones (the seed page's convention) unless
    ``gradient`` is given. The graph is freed unless ``retain_graph=True``.

    >>> import lucid
    >>> a = lucid.tensor([1.0, 2.0], requires_grad=True)
    >>> b = lucid.tensor([3.0, 4.0], requires_grad=True)
    >>> (a * b).sum().backward(inputs=[a])
    >>> a.grad, b.grad
    (Tensor([3.0, 4.0], grad=None), None)
    """
    if create_graph:
        raise ValueError("backward: create_graph=True (differentiable gradients, for "
                         "higher-order derivatives) is not supported yet")
    retain_graph = bool(retain_graph)
    if inputs is None:
        autograd.backward(self, gradient, retain_graph)
        return
    inputs = _as_tuple(inputs, "inputs")
    if not inputs:
        raise RuntimeError("backward: 'inputs' argument to backward() cannot be empty")
    if self._data is None or _tracing_state.tracer is not None:
        raise TracingError("backward(inputs=...) is not supported inside a function compiled "
                           "by lucid.compile yet; call backward() without inputs there")
    if not self.requires_grad:
        raise RuntimeError("backward: this tensor does not require grad (no input of the "
                           "computation that made it has requires_grad=True)")
    seed = autograd._seed(self, gradient)
    grads = grad(self, inputs, [seed], retain_graph=retain_graph, allow_unused=True)
    for t, g in zip(inputs, grads):
        if g is not None:
            t._grad = g._data if t._grad is None else t._grad + g._data
            if t._post_accumulate_hooks and t._node is None:
                for hook in list(t._post_accumulate_hooks.values()):
                    hook(t)


def _install(Tensor) -> None:
    """Attach this module's methods to ``Tensor`` (called once, at the end of tensor.py)."""
    global _Tensor
    _Tensor = Tensor
    Tensor._hooks = None     # {handle id: hook}, made by the first register_hook
    Tensor._spent = None     # a freed graph's entry (grad_fn still names the op)
    Tensor.register_hook = register_hook
    Tensor._post_accumulate_hooks = None   # {handle id: hook}, on leaves
    Tensor.register_post_accumulate_grad_hook = register_post_accumulate_grad_hook
    Tensor.grad_fn = property(grad_fn)
    Tensor.detach_ = detach_
    Tensor.backward = backward
