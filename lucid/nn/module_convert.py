"""``Module.to``, ``float()``, ``double()``, ``half()``, ``cpu()``: converting every
parameter and buffer. As in PyTorch, a dtype conversion changes only floating tensors,
and the parameters stay the same objects (their arrays are replaced, so a compiled
function traced before the conversion retraces on the new dtype).

>>> import lucid, lucid.nn as nn
>>> layer = nn.Linear(2, 2).double()
>>> layer.weight.dtype, layer.to(lucid.float32).bias.dtype
(lucid.float64, lucid.float32)
"""
from __future__ import annotations

from .. import dtypes
from ..tensor import Tensor
from ..tensor_ops import device as _device_type

_DEVICE_NAMES = ("cpu", "cuda", "mps", "xpu", "meta")


def _check_cpu(device, op: str) -> None:
    kind = str(getattr(device, "type", device)).split(":")[0]
    if kind != "cpu":
        raise ValueError(f"{op}: lucid runs on the CPU only, not on {device!r}")


def _parse_to(args, kwargs):
    """``(device, dtype)`` from ``to``'s arguments (PyTorch's four forms)."""
    device, dtype = kwargs.pop("device", None), kwargs.pop("dtype", None)
    kwargs.pop("non_blocking", None), kwargs.pop("memory_format", None), kwargs.pop("copy", None)
    if kwargs:
        raise TypeError(f"to() got unexpected keyword arguments {sorted(kwargs)}")
    for a in args:
        if isinstance(a, Tensor):
            dtype = a.dtype
        elif isinstance(a, _device_type) or (isinstance(a, str) and a.split(":")[0] in _DEVICE_NAMES):
            device = a
        elif isinstance(a, bool) or a is None:
            continue  # non_blocking given positionally
        else:
            dtype = a
    return device, dtype


class ConvertMixin:
    """The conversion methods of ``Module``."""

    def _apply(self, fn) -> "Module":
        """Replace the array of every parameter, buffer and gradient by ``fn(array)``."""
        for module in self.children():
            module._apply(fn)
        for tensors in (self._parameters, self._buffers):
            for t in tensors.values():
                if t is None:
                    continue
                t._data = fn(t._data)
                t._value = None
                if t._grad is not None:
                    t._grad = fn(t._grad)
        return self

    def to(self, *args, **kwargs) -> "Module":
        """``to(dtype)``, ``to("cpu")``, ``to(device, dtype)``, ``to(tensor)``: the floating
        parameters and buffers converted to ``dtype``, in place; returns the module."""
        device, dtype = _parse_to(args, dict(kwargs))
        if device is not None:
            _check_cpu(device, "Module.to")
        if dtype is None:
            return self
        dt = dtypes.as_dtype(dtype)
        if not dt.is_floating_point:
            raise TypeError(f"nn.Module.to only accepts floating point or complex dtypes, but got "
                            f"desired dtype={dt!r}")
        target = str(dt)
        return self._apply(lambda a: a.astype(target) if a.dtype.kind == "f" and a.dtype != target else a)

    def float(self) -> "Module":
        """Floating parameters and buffers to float32."""
        return self.to(dtypes.float32)

    def double(self) -> "Module":
        """Floating parameters and buffers to float64."""
        return self.to(dtypes.float64)

    def half(self) -> "Module":
        raise TypeError(f"{type(self).__name__}.half(): lucid has no float16 dtype (it supports "
                        f"float32 and float64); use float() or double()")

    def bfloat16(self) -> "Module":
        raise TypeError(f"{type(self).__name__}.bfloat16(): lucid has no bfloat16 dtype (it "
                        f"supports float32 and float64); use float() or double()")

    def cpu(self) -> "Module":
        return self

    def cuda(self, device=None) -> "Module":
        raise ValueError(f"{type(self).__name__}.cuda(): lucid runs on the CPU only")

    def type(self, dst_type) -> "Module":
        """All parameters and buffers (floating or not) converted to ``dst_type``."""
        target = str(dtypes.as_dtype(dst_type))
        return self._apply(lambda a: a if a.dtype == target else a.astype(target))
