"""Reading a numpy array's data pointer fast, from the array object itself.

``arr.ctypes.data`` costs about 1.1 µs and ``arr.__array_interface__`` 2 µs; reading the
field of numpy's ``PyArrayObject`` at its known offset costs 0.2 µs. The offsets are
verified against numpy at import; if they do not match (another numpy or Python build),
the slow public attribute is used instead.

>>> import numpy as np
>>> a = np.arange(6.0)[::2]
>>> data_ptr(a) == a.ctypes.data
True
"""
from __future__ import annotations

import ctypes

import numpy as np

# numpy's PyArrayObject_fields layout (64-bit CPython, not free-threaded): byte offsets
# of data, dimensions and strides. The GEMM's native ``_py`` entry reads them too.
PYARRAY_OFFSETS = (16, 32, 40)
#: byte offsets of the number of dimensions (a C int), the dtype (``descr``) and the flags
#: (a C int), and of every object's type pointer (``ob_type``): a native program checks
#: layouts with them
ND_OFFSET, DESCR_OFFSET, FLAGS_OFFSET, TYPE_OFFSET = 24, 56, 64, 8
WRITEABLE_FLAG = 0x0400   # NPY_ARRAY_WRITEABLE


def _layout_matches() -> bool:
    """True if numpy's array struct has the field offsets above (and flag bit)."""
    try:
        a = np.zeros((3, 5), np.float32)[:, ::2]
        off_data, off_dims, off_strides = PYARRAY_OFFSETS
        base = id(a)
        data = ctypes.c_void_p.from_address(base + off_data).value
        dims = ctypes.cast(ctypes.c_void_p.from_address(base + off_dims).value,
                           ctypes.POINTER(ctypes.c_int64))
        strides = ctypes.cast(ctypes.c_void_p.from_address(base + off_strides).value,
                              ctypes.POINTER(ctypes.c_int64))
        nd = ctypes.c_int.from_address(base + ND_OFFSET).value
        descr = ctypes.c_void_p.from_address(base + DESCR_OFFSET).value
        kind = ctypes.c_void_p.from_address(base + TYPE_OFFSET).value
        flags = ctypes.c_int.from_address(base + FLAGS_OFFSET)
        writeable = flags.value & WRITEABLE_FLAG
        a.setflags(write=False)
        read_only = flags.value & WRITEABLE_FLAG
        return (data == a.__array_interface__["data"][0] and (dims[0], dims[1]) == a.shape
                and (strides[0], strides[1]) == a.strides and nd == a.ndim
                and descr == id(a.dtype) and kind == id(np.ndarray)
                and writeable != 0 and read_only == 0)
    except Exception:  # noqa: BLE001 - any surprise: use the public attribute
        return False


LAYOUT_OK = _layout_matches()
_from_address = ctypes.c_void_p.from_address
_DATA_OFF = PYARRAY_OFFSETS[0]

if LAYOUT_OK:
    def data_ptr(x: np.ndarray) -> int:
        """Address of ``x``'s first element."""
        return _from_address(id(x) + _DATA_OFF).value or 0
else:  # pragma: no cover - other numpy layouts
    def data_ptr(x: np.ndarray) -> int:
        """Address of ``x``'s first element."""
        return x.ctypes.data


def aligned_empty(n: int, dtype, align: int = 64) -> np.ndarray:
    """``np.empty(n, dtype)`` whose first element sits on an ``align``-byte boundary
    (numpy aligns to 16 bytes only): kernels' full-width vector loads and stores of it
    stay within cache lines. The view keeps its larger buffer alive.

    >>> a = aligned_empty(5, np.float64)
    >>> data_ptr(a) % 64, a.shape, a.dtype
    (0, (5,), dtype('float64'))
    """
    itemsize = np.dtype(dtype).itemsize
    raw = np.empty(n + align // itemsize, dtype)
    skip = (-data_ptr(raw) % align) // itemsize
    return raw[skip:skip + n]
