"""``lucid.Tensor``: a numpy array plus what autograd needs.

>>> import lucid
>>> x = lucid.Tensor([[1.0, 2.0, 3.0]], requires_grad=True)
>>> y = (x * x).sum()
>>> y
Tensor(14.0, grad=None)
>>> y.backward()
>>> x.grad
Tensor([[2.0, 4.0, 6.0]], grad=None)
"""
from __future__ import annotations

import numpy as np

from lucid_ir.graph import Value
from lucid_ir.types import TensorType

from . import dispatch, dtypes, versions
from .data import to_array
from .tracing import _state as _tracing_state


class Tensor:
    """A tensor backed by a numpy array (float32 by default, or float64).

    ``requires_grad=True`` makes operations on it record a graph, so that
    ``backward()`` can fill its ``.grad`` (a Tensor, or None before any backward).
    """

    __array_priority__ = 1000  # so numpy_array + tensor gives a Tensor

    # the state of a plain leaf, as class defaults: an op's result sets only ``_data``
    _data = None
    _grad = None
    _value = None
    _node = None
    _parents = None
    _freed = False
    _is_leaf = True
    _retains_grad = False
    requires_grad = False

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        dispatch._TENSOR_TYPES.append(cls)  # the eager fast paths accept subclasses too

    def __init__(self, data, requires_grad: bool = False, dtype=None):
        self._data = to_array(data, dtype)
        if requires_grad and self._data.dtype.kind != "f":
            raise TypeError("only floating-point tensors can require gradients")
        self.requires_grad = bool(requires_grad)
        self._grad: np.ndarray | None = None
        self._value: Value | None = None
        self._node = None        # the node that produced this tensor (None for leaves)
        self._parents = None     # the input tensors of that node
        self._freed = False      # set once backward has consumed the graph
        self._is_leaf = True
        self._retains_grad = False

    @classmethod
    def _from_node(cls, data: np.ndarray, node, parents):
        t = cls.__new__(cls)
        t._data, t._grad, t._freed = data, None, False
        t._value = node.out
        t.requires_grad = parents is not None
        t._is_leaf = parents is None
        t._node = node if parents is not None else None
        t._parents = tuple(parents) if parents is not None else None
        if not node.inputs:  # a source (a constant, iota): keep the node, so recorded
            t._node, t._parents = node, ()  # graphs show it
        # A reshaped or transposed leaf is another view of that leaf (the seed's
        # ``bias = Tensor(...).reshape(1, -1)``): backward fills its .grad too.
        t._retains_grad = t.requires_grad and node.op in ("reshape", "transpose") and all(
            p._is_leaf or p._retains_grad for p in parents)
        return t

    @classmethod
    def _wrap(cls, data: np.ndarray):
        """A new leaf tensor around an op's result (no checks: the op made it)."""
        t = _new(cls)
        t._data = data
        return t

    @classmethod
    def _symbolic(cls, value: Value, requires_grad: bool):
        """A tensor being traced: a graph value with no data yet."""
        t = cls.__new__(cls)
        t._data, t._grad, t._freed, t._value = None, None, False, value
        t.requires_grad, t._is_leaf, t._retains_grad = requires_grad, True, False
        t._node = t._parents = None
        return t

    @classmethod
    def _from_call(cls, data: np.ndarray, record, index: int):
        """Output ``index`` of a compiled function's call; its backward is the call's."""
        from .autograd import CallOutput
        t = cls.__new__(cls)
        t._data, t._grad, t._freed, t._value = data, None, False, None
        t.requires_grad, t._is_leaf, t._retains_grad = True, False, False
        t._node, t._parents = CallOutput(record, index), record.parents
        return t

    def _concrete(self, what: str) -> np.ndarray:
        if self._data is None:
            from .tracing import data_dependent
            raise data_dependent(what)
        return self._data

    # -- data access ---------------------------------------------------------------
    @property
    def value(self) -> Value:
        """The graph value standing for this tensor."""
        if self._value is None:
            self._value = Value(TensorType(self._data.shape, self._data.dtype.name))
        return self._value

    @property
    def grad(self) -> "Tensor | None":
        """The accumulated gradient (a Tensor sharing memory with it, see
        ``lucid.grad_tensor``), or None. Inside a function being compiled it is the
        traced gradient (see ``lucid.tracing``)."""
        tracer = _tracing_state.tracer
        if tracer is not None:
            return tracer.read_grad(self)
        return grad_tensor.read(self)

    @grad.setter
    def grad(self, value) -> None:
        tracer = _tracing_state.tracer
        if tracer is not None:
            tracer.write_grad(self, value)
            return
        self._grad = grad_tensor.to_array(self, value)

    @property
    def data(self) -> "Tensor":
        """A tensor sharing this one's memory, cut from the graph (PyTorch's ``.data``):
        ``p.data.normal_()`` or ``p.data.copy_(x)`` write into ``p``; assigning
        ``p.data = t`` makes ``p`` hold ``t``'s array."""
        if _tracing_state.tracer is not None:
            return self.detach()
        t = Tensor._wrap(self._concrete("Tensor.data"))
        t._vc = versions.Counter()  # writes through .data are hidden from autograd (PyTorch)
        return t

    @data.setter
    def data(self, value) -> None:
        if not isinstance(value, Tensor):
            raise TypeError(f"Tensor.data: expected a Tensor, got {type(value).__name__}")
        self._data, self._value = value._concrete("Tensor.data"), None

    @property
    def shape(self) -> tuple[int, ...]:
        return self._data.shape if self._data is not None else self._value.shape

    @property
    def dtype(self) -> "dtypes.dtype":
        """``lucid.float32``, ``float64``, ``int32``, ``int64`` or ``bool`` (equal to its name)."""
        d = self._data
        return _BY_NUMPY[d.dtype] if d is not None else _BY_NAME[self._value.dtype]

    @property
    def ndim(self) -> int:
        return len(self.shape)

    @property
    def is_leaf(self) -> bool:
        """True for tensors made by the user, False for results of recorded ops."""
        return self._is_leaf

    def requires_grad_(self, requires_grad: bool = True) -> "Tensor":
        """Start (or stop) recording operations on this leaf tensor, in place."""
        if requires_grad and self._data is not None and self._data.dtype.kind != "f":
            raise RuntimeError(f"requires_grad_: only floating-point tensors can require "
                               f"gradients, this one is {self.dtype!r}")
        if not self._is_leaf:
            raise RuntimeError("requires_grad_: only leaf tensors' flags can change; use "
                               "detach() to make a leaf of this result")
        self.requires_grad = bool(requires_grad)
        return self

    def retain_grad(self) -> "Tensor":
        """Make backward fill this non-leaf tensor's ``.grad`` too (as in PyTorch)."""
        if not self.requires_grad:
            raise RuntimeError("retain_grad: this tensor does not require grad")
        self._retains_grad = not self._is_leaf
        return self

    def numpy(self) -> np.ndarray:
        return self._concrete("Tensor.numpy()")

    def item(self):
        """The one element as a Python number (float, int or bool, as the dtype)."""
        data = self._concrete("Tensor.item()")
        if data.size != 1:
            raise ValueError(f"item: only a one-element tensor has an item, this one has shape {self.shape}")
        return data.reshape(()).item()

    def tolist(self):
        return self._concrete("Tensor.tolist()").tolist()

    def __array__(self, dtype=None, copy=None):
        data = self._concrete("converting a tensor to a numpy array")
        return data if dtype is None else data.astype(dtype)

    def detach(self) -> "Tensor":
        """The same data, cut from the graph (shares memory, like PyTorch)."""
        if self._data is None or _tracing_state.tracer is not None:
            # tracing: the graph must know no gradient flows here (and a parameter's
            # detached copy is that parameter's value, not a second input)
            return dispatch.apply("stop_gradient", self)
        t = Tensor._wrap(self._data)
        if self._vc is not None:
            t._vc = self._vc   # the same version counter (PyTorch)
        return t

    def zero_grad(self) -> None:
        self.grad = None

    def __getitem__(self, index):
        """Basic indexing (integers, slices, None, ...) as a view, advanced indexing
        (integer tensors, masks) as a copy; see ``lucid.indexing``."""
        return indexing.getitem(self, index)

    def __setitem__(self, index, value) -> None:
        """``self[index] = value`` in place, for every index ``[]`` takes; see ``lucid.setitem``."""
        setitem.setitem(self, index, value)

    def __len__(self) -> int:
        if not self.shape:
            raise TypeError("len() of a 0-d tensor")
        return self.shape[0]

    def __repr__(self) -> str:
        if self._data is None:
            return f"Tensor(<traced {self._value.type}>, requires_grad={self.requires_grad})"
        return f"Tensor({format_array(self._data)}, grad={format_grad(self.grad)})"

    __str__ = __repr__

    # backward, size(), numel(), grad_fn, clone, in-place ops ...: installed at the end of
    # this module from autograd_api.py, tensor_ops.py, inplace.py and reductions.py

    # -- operators ------------------------------------------------------------------
    __add__ = dispatch.binary_method("add", "__add__")
    __radd__ = dispatch.binary_method("add", "__radd__", reflected=True)
    __sub__ = dispatch.binary_method("sub", "__sub__")
    __rsub__ = dispatch.binary_method("sub", "__rsub__", reflected=True)
    __mul__ = dispatch.binary_method("mul", "__mul__")
    __rmul__ = dispatch.binary_method("mul", "__rmul__", reflected=True)
    __truediv__ = dispatch.binary_method("div", "__truediv__")
    __rtruediv__ = dispatch.binary_method("div", "__rtruediv__", reflected=True)
    __neg__ = dispatch.unary_method("neg", "__neg__")
    __gt__ = dispatch.binary_method("gt", "__gt__")
    __ge__ = dispatch.binary_method("ge", "__ge__")
    __lt__ = dispatch.binary_method("lt", "__lt__")
    __le__ = dispatch.binary_method("le", "__le__")
    __eq__ = dispatch.binary_method("eq", "__eq__")      # elementwise, as
    __ne__ = dispatch.binary_method("ne", "__ne__")      # in PyTorch
    # __floordiv__, __mod__ and their reflections: lucid.functions (the zero-divisor check)
    __and__ = dispatch.binary_method("bitwise_and", "__and__")
    __rand__ = dispatch.binary_method("bitwise_and", "__rand__", reflected=True)
    __or__ = dispatch.binary_method("bitwise_or", "__or__")
    __ror__ = dispatch.binary_method("bitwise_or", "__ror__", reflected=True)
    __xor__ = dispatch.binary_method("bitwise_xor", "__xor__")
    __rxor__ = dispatch.binary_method("bitwise_xor", "__rxor__", reflected=True)
    __invert__ = dispatch.unary_method("bitwise_not", "__invert__")
    __abs__ = dispatch.unary_method("abs", "__abs__")

    # -- dtypes -------------------------------------------------------------------------
    def to(self, *args, dtype=None, **kwargs) -> "Tensor":
        """``to(dtype)``, ``to("cpu")``, ``to(other_tensor)``: the tensor in that dtype
        (itself when it already is); lucid runs on the CPU only."""
        device = kwargs.pop("device", None)
        for a in args:
            if isinstance(a, Tensor):
                dtype = a.dtype
            elif isinstance(a, str) and a.split(":")[0] in ("cpu", "cuda", "mps", "xpu", "meta"):
                device = a
            elif a is not None and hasattr(a, "type") and not isinstance(a, (str, type)):
                device = a  # a device object
            elif a is not None:
                dtype = a
        if device is not None and str(getattr(device, "type", device)).split(":")[0] != "cpu":
            raise ValueError(f"to: lucid runs on the CPU only, not on {device!r}")
        kwargs.pop("non_blocking", None), kwargs.pop("copy", None)
        if kwargs:
            raise TypeError(f"to: unexpected arguments {sorted(kwargs)}")
        return self if dtype is None else dispatch.cast(self, dtypes.as_dtype(dtype))

    def float(self): return dispatch.cast(self, dtypes.float32)
    def double(self): return dispatch.cast(self, dtypes.float64)
    def int(self): return dispatch.cast(self, dtypes.int32)
    def long(self): return dispatch.cast(self, dtypes.int64)
    def bool(self): return dispatch.cast(self, dtypes.bool)

    def is_floating_point(self) -> bool:
        return self.dtype.is_floating_point

    def element_size(self) -> int:
        return self.dtype.itemsize

    def __matmul__(self, o):
        return functional_core.matmul(self, o)

    def __rmatmul__(self, o):
        return functional_core.matmul(dispatch.as_tensor(o), self)

    # matrix products (lucid/products.py)
    def matmul(self, other):
        return products.matmul(self, other)

    def mm(self, mat2):
        return products.mm(self, mat2)

    def bmm(self, mat2):
        return products.bmm(self, mat2)

    def __bool__(self):
        data = self._concrete("bool(tensor) (an `if` or `while` on a tensor)")
        if data.size != 1:
            raise ValueError("the truth value of a tensor with more than one element is ambiguous")
        return bool(data.reshape(()))

    def __float__(self):
        return self.item()

    __hash__ = object.__hash__

    # -- methods --------------------------------------------------------------------
    exp = dispatch.unary_method("exp")
    log = dispatch.unary_method("log")
    tanh = dispatch.unary_method("tanh")
    sqrt = dispatch.unary_method("sqrt")
    sigmoid = dispatch.unary_method("sigmoid")
    log2 = dispatch.unary_method("log2")
    log1p = dispatch.unary_method("log1p")
    expm1 = dispatch.unary_method("expm1")
    rsqrt = dispatch.unary_method("rsqrt")
    sin = dispatch.unary_method("sin")
    cos = dispatch.unary_method("cos")
    erf = dispatch.unary_method("erf")
    erfc = dispatch.unary_method("erfc")
    floor = dispatch.unary_method("floor")
    ceil = dispatch.unary_method("ceil")
    round = dispatch.unary_method("round")
    abs = dispatch.unary_method("abs")
    sign = dispatch.unary_method("sign")
    neg = dispatch.unary_method("neg")
    isnan = dispatch.unary_method("isnan")
    isfinite = dispatch.unary_method("isfinite")
    def logical_not(self): return dispatch.unary("logical_not", dispatch.cast(self, "bool"))
    logical_and = dispatch.binary_method("logical_and")
    logical_or = dispatch.binary_method("logical_or")
    logical_xor = dispatch.binary_method("logical_xor")
    def pow(self, exponent):
        """``self ** exponent``. A float tensor to the power of the number 2, 3 or 0.5 is
        computed as PyTorch computes it: ``x * x``, ``x * x * x``, ``sqrt(x)`` (exact, and
        a multiply rather than ``exp(n·log x)``).

        >>> import lucid
        >>> (lucid.tensor([-3.0, 0.5]) ** 2).tolist(), (lucid.tensor([4.0]) ** 0.5).tolist()
        ([9.0, 0.25], [2.0])
        """
        if type(exponent) in (int, float):
            chain = _POWERS.get(exponent)
            data = self._data
            if chain is not None and (data.dtype.kind == "f" if data is not None else self.is_floating_point()):
                return dispatch.call1(chain, self)
        return dispatch.binary("pow", self, exponent)

    __pow__ = pow
    __rpow__ = dispatch.binary_method("pow", "__rpow__", reflected=True)

    def relu(self):
        """``max(x, 0)``: the 0 is part of the op (a constant folded into its kernel, and
        into a GEMM epilogue when compiled)."""
        d = self._data
        chain = _RELU.get(d.dtype) if d is not None else None  # (numpy's dtype: no name lookup)
        return dispatch.call1(chain if chain is not None else _RELU[self.dtype], self)

    def sum(self, axis=None, keepdims: bool = False):
        return dispatch.apply1("sum", self, (("axes", axis), ("keepdims", keepdims)))

    def mean(self, axis=None, keepdims: bool = False):
        return dispatch.apply1("mean", self, (("axes", axis), ("keepdims", keepdims)))

    def max(self, axis=None, keepdims: bool = False):
        return dispatch.apply1("max", self, (("axes", axis), ("keepdims", keepdims)))

    def reshape(self, *shape):
        if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
            shape = tuple(shape[0])
        try:
            return dispatch.apply1("reshape", self, (("shape", shape),))
        except ValueError:  # the IR's message: PyTorch's, as a RuntimeError and ValueError
            _shape_ops.check_shape(tuple(shape), self.numel(), "reshape", self.shape)
            raise

    def flatten(self, start_dim: int = 0, end_dim: int = -1):
        """The axes ``start_dim .. end_dim`` merged into one (a 0-d tensor becomes 1-d)."""
        shape = self.shape
        if not shape:
            return self.reshape(1)
        n = len(shape)
        a, b = _dim(start_dim, n, "flatten"), _dim(end_dim, n, "flatten")
        if a > b:
            raise ValueError(f"flatten: start_dim {start_dim} comes after end_dim {end_dim}")
        merged = 1
        for d in shape[a:b + 1]:
            merged *= d
        return self.reshape(*shape[:a], merged, *shape[b + 1:])

    def unsqueeze(self, dim: int):
        """A new axis of size 1 at ``dim`` (``-1``: last)."""
        shape = list(self.shape)
        shape.insert(_dim(dim, len(shape) + 1, "unsqueeze"), 1)
        return self.reshape(*shape)

    def squeeze(self, dim=None):
        """The axes of size 1 removed (only ``dim`` when given, if it has size 1)."""
        shape = self.shape
        if dim is None:
            return self.reshape(*[d for d in shape if d != 1])
        dims = {_dim(d, len(shape), "squeeze") for d in ((dim,) if isinstance(dim, int) else dim)}
        return self.reshape(*[d for k, d in enumerate(shape) if not (k in dims and d == 1)])

    def expand(self, *sizes):
        """A broadcast view to ``sizes`` (``-1`` keeps that axis's size), as PyTorch's."""
        if len(sizes) == 1 and isinstance(sizes[0], (tuple, list)):
            sizes = tuple(sizes[0])
        lead = len(sizes) - self.ndim
        if lead < 0:
            raise ValueError(f"expand: {len(sizes)} sizes for a tensor of dimension {self.ndim}")
        shape = tuple(self.shape[k - lead] if s == -1 and k >= lead else int(s) for k, s in enumerate(sizes))
        return dispatch.apply("broadcast_to", self, shape=shape)

    def expand_as(self, other):
        return self.expand(*other.shape)

    def dim(self) -> int:
        return self.ndim

    def transpose(self, *axes):
        """No arguments: reverse the axes. Two axes: swap them (PyTorch). All axes: permute."""
        if len(axes) == 1 and isinstance(axes[0], (tuple, list)):
            axes = tuple(axes[0])
        if not axes:
            return dispatch.apply("transpose", self)
        if len(axes) == 2 and self.ndim != 2:
            perm = list(range(self.ndim))
            a, b = (int(x) % max(self.ndim, 1) for x in axes)
            perm[a], perm[b] = perm[b], perm[a]
            axes = tuple(perm)
        elif len(axes) == 2 and self.ndim == 2 and sorted(int(x) % 2 for x in axes) == [0, 0]:
            return self  # swapping an axis with itself
        elif len(axes) == 2 and self.ndim == 2:
            axes = (1, 0)
        return dispatch.apply("transpose", self, perm=axes)

    def permute(self, *axes):
        if len(axes) == 1 and isinstance(axes[0], (tuple, list)):
            axes = tuple(axes[0])
        return dispatch.apply("transpose", self, perm=axes)

    @property
    def T(self):
        return dispatch.apply("transpose", self)


_BY_NUMPY, _BY_NAME = dtypes._BY_NUMPY, dtypes._BY_NAME


def _dim(dim: int, ndim: int, op: str) -> int:
    """``dim`` counted from the front (negative counts from the end); IndexError as
    PyTorch's when it is out of range."""
    if not -max(ndim, 1) <= dim < max(ndim, 1):
        raise IndexError(f"{op}: dimension out of range (expected to be in range of "
                         f"[{-max(ndim, 1)}, {max(ndim, 1) - 1}], but got {dim})")
    return dim % max(ndim, 1)
_new = object.__new__


def _wrap_result(data: np.ndarray) -> Tensor:
    """``Tensor._wrap`` as a plain function (the eager hot path's last step)."""
    t = _new(Tensor)
    t._data = data
    return t


dispatch._wrap = _wrap_result
from . import functional_core, grad_tensor, indexing, products, setitem  # noqa: E402  (they build on Tensor's module)
dispatch._TENSOR_TYPES.insert(0, Tensor)
_POWERS = {2: dispatch.Chain([("mul", {}, (0, 0))], name="pow"),
           3: dispatch.Chain([("mul", {}, (0, 0)), ("mul", {}, (-1, 0))], name="pow"),
           0.5: dispatch.Chain([("sqrt", {}, (0,))], name="pow")}
_RELU = {dtype: dispatch.Chain([("constant", {"value": 0.0, "shape": (), "dtype": dtype}, ()),
                                ("maximum", {}, (0, -1))], name="relu") for dtype in _BY_NAME.values()}
_RELU.update({np.dtype(str(dtype)): chain for dtype, chain in list(_RELU.items())})


def format_array(a: np.ndarray) -> str:
    if a.ndim == 0:
        return str(a.dtype.type(a))
    return np.array2string(a, separator=", ", formatter={"float_kind": lambda x: str(x)})


def format_grad(g) -> str:
    return "None" if g is None else format_array(np.asarray(g))
from . import new_tensor as _new_tensor; _new_tensor._install(Tensor)  # noqa: E402,E702  (x.new_zeros ...)
from . import autograd_api as _autograd_api; _autograd_api._install(Tensor)  # noqa: E402
from . import reductions as _reductions; _reductions._install(Tensor)  # noqa: E402
from . import tensor_ops as _tensor_ops; _tensor_ops._install(Tensor)  # noqa: E402  size(), clone, clamp, in-place ops
from . import random_inplace as _random_inplace; _random_inplace._install(Tensor)  # noqa: E402  uniform_, normal_
from . import functions as _functions; _functions._install(Tensor)  # noqa: E402,E702  x.add(y, alpha=), x.eq(y) ...
from . import shape_ops as _shape_ops; _shape_ops._install(Tensor)  # noqa: E402,E702  view, split, roll, tril ...
from . import index_ops as _index_ops; _index_ops._install(Tensor)  # noqa: E402,E702  gather, scatter_add_ ...
from . import sorting as _sorting; _sorting._install(Tensor)  # noqa: E402,E702  sort, argsort, topk ...
from . import cumulative as _cumulative; _cumulative._install(Tensor)  # noqa: E402,E702  cumprod, cummax ...
from . import inplace_ops as _inplace_ops; _inplace_ops._install(Tensor)  # noqa: E402,E702  x += y, exp_, pow_ ...
from . import layout as _layout; _layout._install(Tensor)  # noqa: E402,E702  stride(), unfold, _version ...
from . import index_fill as _index_fill; _index_fill._install(Tensor)  # noqa: E402,E702
from . import rebase as _rebase; _rebase._install(Tensor)  # noqa: E402,E702  in-place writes autograd records
from . import products as _products_m; _products_m._install(Tensor)  # noqa: E402,E702  x.addmm, x.baddbmm
