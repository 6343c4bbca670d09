"""The augmented assignments (``x += y``, ``x //= 2``, ``m &= k`` ...) and the in-place
``*_`` methods beyond ``lucid.inplace``'s: each is its eager op's result written into the
tensor's own array, with ``lucid.inplace``'s rules (PyTorch's dtype rule, its autograd
refusals, version counters, a recorded write's new history).

``x += y`` writes into ``x`` (views see it) instead of rebinding ``x`` to ``x + y``:

>>> import lucid
>>> x = lucid.tensor([1.0, 2.0, 3.0])
>>> view = x[1:]
>>> x += 1.0
>>> x **= 2
>>> view.tolist(), x._version
([9.0, 16.0], 2)
>>> i = lucid.tensor([7, 8])
>>> i //= 2
>>> i.tolist()
[3, 4]
>>> i += 0.5
Traceback (most recent call last):
...
lucid.inplace.CastError: add_: result type Float can't be cast to the desired output type Long (shape (2,))
>>> x.sqrt_().neg_().tolist(), x.masked_fill_(x < -3.5, 0.0).tolist()
([-2.0, -3.0, -4.0], [-2.0, -3.0, 0.0])
"""
from __future__ import annotations

from . import dispatch
from .inplace import _check_target, _write, add_, div_, mul_, sub_

# the ``x.name_()`` of each unary method ``x.name()``; True: its gradient may read the
# old values (autograd keeps a copy of them when it records the write)
_UNARY = {"neg": False, "abs": True, "exp": True, "log": True, "log2": True, "log1p": True,
          "expm1": True, "sqrt": True, "rsqrt": True, "sigmoid": True, "tanh": True,
          "sin": True, "cos": True, "erf": True, "erfc": True, "relu": True, "floor": False, "ceil": False,
          "round": False, "trunc": False, "sign": False, "square": True, "reciprocal": True}


def _unary(name: str, reads_self: bool):
    op = name + "_"

    def method(self):
        _check_target(self, op)
        return _write(self, getattr(self, name)(), op, reads_self=reads_self)
    method.__name__ = op
    method.__doc__ = f"``self.{name}()`` written into ``self``; returns ``self``."
    return method


def _binary(name: str, compute, reads_self: bool = True, op: str | None = None):
    op = op or name + "_"

    def method(self, other):
        _check_target(self, op)
        return _write(self, compute(self, other), op, reads_self=reads_self)
    method.__name__ = op
    method.__doc__ = f"``self.{name}(other)`` written into ``self``; returns ``self``."
    return method


def pow_(self, exponent):
    """``self ** exponent`` written into ``self``.

    >>> import lucid
    >>> lucid.tensor([2.0, 3.0]).pow_(2).tolist()
    [4.0, 9.0]
    """
    _check_target(self, "pow_")
    return _write(self, self.pow(exponent), "pow_")


def masked_fill_(self, mask, value):
    """``self.masked_fill(mask, value)`` written into ``self`` (``mask`` broadcasts to
    ``self``'s shape).

    >>> import lucid
    >>> x = lucid.tensor([1, 2, 3])
    >>> x.masked_fill_(x > 1, -1).tolist()
    [1, -1, -1]
    """
    from .tensor_ops import masked_fill
    _check_target(self, "masked_fill_")
    return _write(self, masked_fill(self, mask, value), "masked_fill_", reads_self=False)


def index_fill_(self, dim, index, value):
    """``self.index_fill(dim, index, value)`` written into ``self``.

    >>> import lucid
    >>> lucid.zeros(2, 3).index_fill_(1, lucid.tensor([0, 2]), 7.0).tolist()
    [[7.0, 0.0, 7.0], [7.0, 0.0, 7.0]]
    """
    from .index_fill import index_fill
    _check_target(self, "index_fill_")
    return _write(self, index_fill(self, dim, index, value), "index_fill_", reads_self=False)


def _floor_divide(a, b):
    return a.floor_divide(b)


def _remainder(a, b):
    return a.remainder(b)


def _fmod(a, b):
    return a.fmod(b)


def _bitwise(op: str):
    return lambda a, b: dispatch.binary(op, a, b)


floor_divide_ = _binary("floor_divide", _floor_divide)
remainder_ = _binary("remainder", _remainder)
fmod_ = _binary("fmod", _fmod)
bitwise_and_ = _binary("bitwise_and", _bitwise("bitwise_and"), reads_self=False)
bitwise_or_ = _binary("bitwise_or", _bitwise("bitwise_or"), reads_self=False)
bitwise_xor_ = _binary("bitwise_xor", _bitwise("bitwise_xor"), reads_self=False)

_OPERATORS = {"__iadd__": add_, "__isub__": sub_, "__imul__": mul_, "__itruediv__": div_,
              "__ifloordiv__": floor_divide_, "__imod__": remainder_, "__ipow__": pow_,
              "__iand__": bitwise_and_, "__ior__": bitwise_or_, "__ixor__": bitwise_xor_}


def _install(Tensor) -> None:
    """Attach the methods and operators to ``Tensor`` (from ``lucid.tensor``)."""
    for name, reads_self in _UNARY.items():
        setattr(Tensor, name + "_", _unary(name, reads_self))
    for fn in (pow_, masked_fill_, index_fill_, floor_divide_, remainder_, fmod_, bitwise_and_,
               bitwise_or_, bitwise_xor_):
        setattr(Tensor, fn.__name__, fn)
    Tensor.true_divide_ = Tensor.div_
    Tensor.fix_ = Tensor.trunc_
    for name, fn in _OPERATORS.items():
        setattr(Tensor, name, fn)
