"""``lucid.save`` and ``lucid.load``: checkpoints of tensors and of the nested dicts,
lists and tuples that hold them (state dicts, optimiser state dicts), with numbers,
strings, booleans and None.

The file is a numpy ``.npz`` archive: one array per distinct tensor, plus the
structure as JSON. Loading never unpickles (``allow_pickle=False``), so a checkpoint
cannot run code. A tensor that appears twice is stored once and loads as one tensor.
A path ending in ``.safetensors`` is written in that format instead (a flat dict of
named tensors; needs the optional ``safetensors`` package: ``pip install
lucid[checkpoints]``). Writes to a path are atomic: a temporary file, then a rename.

>>> import io, lucid, lucid.nn as nn
>>> model = nn.Linear(3, 2)
>>> buffer = io.BytesIO()
>>> lucid.save({"model": model.state_dict(), "epoch": 3}, buffer)
>>> _ = buffer.seek(0); checkpoint = lucid.load(buffer)
>>> checkpoint["epoch"], list(checkpoint["model"])
(3, ['weight', 'bias'])
>>> model.load_state_dict(checkpoint["model"])
<All keys matched successfully>
"""
from __future__ import annotations

import io
import os
from collections import OrderedDict

import numpy as np

from .dtypes import as_dtype, dtype
from .tensor import Tensor


def _json():
    """The json module, imported when a file is written or read (not by ``import lucid``)."""
    import json
    return json


__all__ = ["save", "load"]

_STRUCTURE = "__lucid_structure__"
_FORMAT = 1


def _c_order(a: np.ndarray) -> np.ndarray:
    """``a`` in C order (a transposed view is copied; a 0-d array stays 0-d)."""
    return a if a.flags.c_contiguous else a.copy(order="C")


class _Encoder:
    """Turns an object into JSON-ready data plus the arrays it refers to."""

    def __init__(self):
        self.arrays: dict[str, np.ndarray] = {}
        self.names: dict[int, str] = {}
        self.keep: list = []  # keeps encoded objects alive, so ids stay unique

    def array(self, a: np.ndarray, owner) -> str:
        if id(owner) not in self.names:
            self.names[id(owner)] = str(len(self.arrays))
            self.arrays[self.names[id(owner)]] = _c_order(a)
            self.keep.append(owner)
        return self.names[id(owner)]

    def encode(self, obj, where: str):
        from .nn.parameter import Parameter
        if isinstance(obj, dtype):
            return {"dtype": str(obj)}
        if obj is None or isinstance(obj, (bool, str)):
            return obj
        if isinstance(obj, (int, float)) and type(obj) in (int, float):
            return obj
        if isinstance(obj, Tensor):
            data = obj._concrete("lucid.save")
            return {"tensor": self.array(data, obj), "requires_grad": bool(obj.requires_grad),
                    "parameter": isinstance(obj, Parameter)}
        if isinstance(obj, np.ndarray):
            if obj.dtype.kind not in "biuf":
                raise TypeError(f"lucid.save: {where} is a numpy array of dtype {obj.dtype}; only "
                                f"numeric and boolean arrays can be saved")
            return {"ndarray": self.array(obj, obj)}
        if isinstance(obj, np.generic):
            return {"scalar": self.array(np.asarray(obj), obj)}
        if isinstance(obj, dict):
            items = [[self.encode(k, f"a key of {where}"), self.encode(v, f"{where}[{k!r}]")]
                     for k, v in obj.items()]
            return {"dict": items, "ordered": isinstance(obj, OrderedDict)}
        if isinstance(obj, (list, tuple)):
            kind = "list" if isinstance(obj, list) else "tuple"
            return {kind: [self.encode(v, f"{where}[{i}]") for i, v in enumerate(obj)]}
        raise TypeError(f"lucid.save: {where} is a {type(obj).__name__}; a checkpoint holds tensors, "
                        f"numpy arrays, numbers, strings, booleans, None, and dicts, lists and "
                        f"tuples of them")


def _decode(node, arrays, tensors: dict):
    from .nn.parameter import Parameter
    if not isinstance(node, dict):
        return node
    if "tensor" in node:
        name = node["tensor"]
        if name not in tensors:
            data = np.array(arrays[name])  # a writable array of its own
            if node.get("parameter"):
                tensors[name] = Parameter(data, requires_grad=bool(node.get("requires_grad")))
            else:
                tensors[name] = Tensor._wrap(data)
                tensors[name].requires_grad = bool(node.get("requires_grad"))
        return tensors[name]
    if "ndarray" in node:
        return np.array(arrays[node["ndarray"]])
    if "scalar" in node:
        return np.asarray(arrays[node["scalar"]])[()]
    if "dtype" in node:
        return as_dtype(node["dtype"])
    if "dict" in node:
        pairs = [(_decode(k, arrays, tensors), _decode(v, arrays, tensors)) for k, v in node["dict"]]
        return OrderedDict(pairs) if node.get("ordered") else dict(pairs)
    if "list" in node:
        return [_decode(v, arrays, tensors) for v in node["list"]]
    if "tuple" in node:
        return tuple(_decode(v, arrays, tensors) for v in node["tuple"])
    raise ValueError(f"lucid.load: unknown entry {sorted(node)} in the checkpoint's structure")


def _is_path(f) -> bool:
    return isinstance(f, (str, bytes, os.PathLike))


def _write_atomically(path, payload: bytes) -> None:
    path = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(path))
    while True:  # created as open() creates files (0666 less the umask), not mkstemp's 0600
        tmp = os.path.join(directory, f".lucid-save-{os.urandom(8).hex()}")
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o666)
            break
        except FileExistsError:
            continue
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(payload)
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def _is_safetensors(f) -> bool:
    return _is_path(f) and os.fsdecode(f).endswith(".safetensors")


def _safetensors():
    try:
        import safetensors.numpy
    except ImportError:
        raise ImportError("lucid.save/load: a .safetensors path needs the optional 'safetensors' "
                          "package: pip install 'lucid[checkpoints]' (or pip install safetensors), "
                          "or save to another name (lucid's .npz format)") from None
    return safetensors.numpy


def _save_safetensors(obj) -> bytes:
    if not isinstance(obj, dict) or not all(isinstance(k, str) for k in obj):
        raise TypeError(f"lucid.save: a .safetensors file holds a flat dict of named tensors "
                        f"(a state_dict), got {type(obj).__name__}")
    arrays = {}
    for k, v in obj.items():
        if not isinstance(v, (Tensor, np.ndarray)):
            raise TypeError(f"lucid.save: a .safetensors file holds only tensors, but {k!r} is a "
                            f"{type(v).__name__}")
        arrays[k] = _c_order(v._concrete("lucid.save") if isinstance(v, Tensor) else v)
    return _safetensors().save(arrays, metadata={"lucid_order": _json().dumps(list(arrays))})


def _safetensors_order(payload: bytes, names) -> list:
    """The saved key order (safetensors sorts its header; lucid records the order in the
    header's metadata), else the file's order."""
    size = int.from_bytes(payload[:8], "little")
    metadata = _json().loads(payload[8:8 + size].decode("utf-8")).get("__metadata__") or {}
    order = _json().loads(metadata.get("lucid_order", "[]"))
    return order if sorted(order) == sorted(names) else list(names)


def save(obj, f) -> None:
    """Write ``obj`` (tensors, numbers, strings, None, and dicts/lists/tuples of them) to
    ``f``: a path (written atomically) or a binary file object."""
    if _is_safetensors(f):
        _write_atomically(f, _save_safetensors(obj))
        return
    encoder = _Encoder()
    structure = {"format": _FORMAT, "root": encoder.encode(obj, "the object")}
    text = _json().dumps(structure, allow_nan=True).encode("utf-8")
    arrays = dict(encoder.arrays)
    arrays[_STRUCTURE] = np.frombuffer(text, dtype=np.uint8)
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    if _is_path(f):
        _write_atomically(f, buffer.getvalue())
    elif hasattr(f, "write"):
        f.write(buffer.getvalue())
    else:
        raise TypeError(f"lucid.save: f must be a path or a binary file object, got {type(f).__name__}")


def load(f, map_location=None, *, weights_only: bool = True, **kwargs):
    """Read what ``lucid.save`` wrote (or a ``.safetensors`` file: an ``OrderedDict`` of
    tensors). ``map_location`` may only name the CPU; loading never unpickles."""
    if map_location is not None and str(getattr(map_location, "type", map_location)).split(":")[0] != "cpu":
        raise ValueError(f"lucid.load: lucid runs on the CPU only, map_location={map_location!r}")
    if _is_safetensors(f):
        with open(f, "rb") as src:
            payload = src.read()
        arrays = _safetensors().load(payload)
        return OrderedDict((k, Tensor._wrap(np.array(arrays[k]))) for k in _safetensors_order(payload, arrays))
    try:
        archive = np.load(f, allow_pickle=False)
    except (ValueError, OSError) as exc:
        raise RuntimeError(f"lucid.load: {f!r} is not a lucid checkpoint ({exc})") from None
    if not isinstance(archive, np.lib.npyio.NpzFile) or _STRUCTURE not in archive.files:
        if isinstance(archive, np.lib.npyio.NpzFile):
            archive.close()
        raise RuntimeError(f"lucid.load: {f!r} is not a lucid checkpoint (no structure entry)")
    with archive:
        structure = _json().loads(bytes(archive[_STRUCTURE]).decode("utf-8"))
        if structure.get("format") != _FORMAT:
            raise RuntimeError(f"lucid.load: checkpoint format {structure.get('format')} is not "
                               f"supported (this lucid reads format {_FORMAT})")
        arrays = {name: archive[name] for name in archive.files if name != _STRUCTURE}
    return _decode(structure["root"], arrays, {})
