"""``lucid.save`` / ``lucid.load``: round trips of state dicts and nested structures,
the no-pickle guarantee, atomic writes and the ``.safetensors`` path."""
import io
import math
import os
import sys
from collections import OrderedDict

import numpy as np
import pytest
import torch

import lucid
import lucid.nn as nn


def round_trip(obj):
    buffer = io.BytesIO()
    lucid.save(obj, buffer)
    buffer.seek(0)
    return lucid.load(buffer)


def test_state_dict_round_trip_through_a_path(tmp_path):
    lucid.manual_seed(0)
    model = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2))
    model.register_buffer("steps", lucid.tensor([3, 4], dtype=lucid.int32))
    path = tmp_path / "model.ckpt"
    lucid.save(model.state_dict(), path)
    assert os.listdir(tmp_path) == ["model.ckpt"]  # no suffix appended, no temporary left
    state = lucid.load(path)
    assert isinstance(state, OrderedDict) and list(state) == list(model.state_dict())
    for k, v in model.state_dict().items():
        assert state[k].dtype == v.dtype and np.array_equal(state[k].numpy(), v.numpy())
    other = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2))
    other.register_buffer("steps", lucid.zeros(2, dtype=lucid.int32))
    other.load_state_dict(lucid.load(str(path)))
    x = lucid.randn(5, 3)
    np.testing.assert_array_equal(other(x).numpy(), model(x).numpy())
    loaded = lucid.load(path)["0.weight"]
    loaded.numpy()[0, 0] = 99.0  # loaded arrays are writable and the loader's own
    torch_model = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.ReLU(), torch.nn.Linear(4, 2))
    torch_model.load_state_dict({k: torch.from_numpy(v.numpy()) for k, v in state.items() if k != "steps"})


def test_nested_values_round_trip():
    shared = lucid.tensor([1.0, 2.0])
    obj = {
        "state": {0: {"step": 3, "exp_avg": shared}, 1: {"exp_avg": shared}},
        "param_groups": [{"lr": 0.01, "betas": (0.9, 0.999), "params": [0, 1], "nesterov": False,
                          "name": "héllo", "none": None}],
        "floats": [math.inf, -math.inf, 1e-300, 1.0, 2],
        "tensors": (lucid.tensor(True), lucid.zeros(0, 3), lucid.tensor(5, dtype=lucid.int64),
                    lucid.arange(6, dtype=lucid.float64).reshape(2, 3).T),
        "numpy": np.arange(4, dtype=np.int32), "scalar": np.float32(1.5),
        ("tuple", 1): "tuple keys", "dtype": lucid.float64, "size": lucid.Size([2, 3]),
    }
    back = round_trip(obj)
    assert back["state"][0]["step"] == 3 and type(back["state"][0]["step"]) is int
    assert back["state"][0]["exp_avg"] is back["state"][1]["exp_avg"]  # stored once
    assert back["param_groups"] == [{"lr": 0.01, "betas": (0.9, 0.999), "params": [0, 1],
                                     "nesterov": False, "name": "héllo", "none": None}]
    assert back["floats"] == [math.inf, -math.inf, 1e-300, 1.0, 2] and type(back["floats"][3]) is float
    b, empty, i, t = back["tensors"]
    assert b.dtype == lucid.bool and b.item() is True and empty.shape == (0, 3)
    assert i.dtype == lucid.int64 and i.shape == () and i.item() == 5
    assert t.tolist() == [[0.0, 3.0], [1.0, 4.0], [2.0, 5.0]] and t.dtype == lucid.float64
    assert back["numpy"].dtype == np.int32 and back["numpy"].tolist() == [0, 1, 2, 3]
    assert back["scalar"] == np.float32(1.5) and back["scalar"].dtype == np.float32
    assert back[("tuple", 1)] == "tuple keys" and back["dtype"] is lucid.float64
    assert back["size"] == (2, 3)
    nan = round_trip([math.nan])[0]
    assert math.isnan(nan)


def test_parameters_and_requires_grad_are_kept():
    p = nn.Parameter(lucid.ones(2))
    frozen = nn.Parameter(lucid.ones(2), requires_grad=False)
    back = round_trip({"p": p, "frozen": frozen, "t": lucid.ones(1, requires_grad=True)})
    assert isinstance(back["p"], nn.Parameter) and back["p"].requires_grad
    assert isinstance(back["frozen"], nn.Parameter) and not back["frozen"].requires_grad
    assert type(back["t"]) is lucid.Tensor and back["t"].requires_grad


@pytest.mark.parametrize("bad, what", [({"a": {1, 2}}, r"the object\['a'\] is a set"),
                                       ([object()], r"the object\[0\] is a object"),
                                       ({"f": lambda: 0}, "is a function"),
                                       (np.array(["a"]), "dtype <U1")])
def test_unsupported_values_raise_type_error(bad, what):
    with pytest.raises(TypeError, match=what):
        lucid.save(bad, io.BytesIO())


def test_loading_never_unpickles(tmp_path):
    path = tmp_path / "evil.npz"
    np.savez(path, __lucid_structure__=np.frombuffer(b'{"format": 1, "root": {"ndarray": "0"}}', np.uint8),
             **{"0": np.array([{"x": 1}], dtype=object)})
    with pytest.raises(ValueError, match="allow_pickle"):
        lucid.load(path)
    np.savez(tmp_path / "plain.npz", a=np.zeros(2))
    with pytest.raises(RuntimeError, match="not a lucid checkpoint"):
        lucid.load(tmp_path / "plain.npz")
    (tmp_path / "junk").write_bytes(b"not a zip file at all")
    with pytest.raises(RuntimeError, match="not a lucid checkpoint"):
        lucid.load(tmp_path / "junk")
    with pytest.raises(ValueError, match="CPU only"):
        lucid.load(tmp_path / "plain.npz", map_location="cuda")


def test_write_is_atomic(tmp_path, monkeypatch):
    path = tmp_path / "ckpt"
    lucid.save({"v": 1}, path)

    def failing_replace(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", failing_replace)
    with pytest.raises(OSError, match="disk full"):
        lucid.save({"v": 2}, path)
    monkeypatch.undo()
    assert lucid.load(path) == {"v": 1} and os.listdir(tmp_path) == ["ckpt"]
    lucid.save({"v": 3}, path)
    assert lucid.load(path) == {"v": 3}
    umask = os.umask(0o022)
    try:  # the permissions a plain open() gives (as torch.save's), not the temporary file's 0600
        lucid.save({"v": 4}, path)
        assert os.stat(path).st_mode & 0o777 == 0o644
    finally:
        os.umask(umask)


def test_safetensors_path(tmp_path, monkeypatch):
    pytest.importorskip("safetensors")
    model = nn.Linear(3, 2)
    path = tmp_path / "model.safetensors"
    lucid.save(model.state_dict(), path)
    from safetensors.numpy import load_file
    raw = load_file(str(path))
    assert sorted(raw) == ["bias", "weight"] and raw["weight"].dtype == np.float32
    state = lucid.load(path)
    assert list(state) == ["weight", "bias"] and np.array_equal(state["weight"].numpy(), model.weight.numpy())
    nn.Linear(3, 2).load_state_dict(state)
    with pytest.raises(TypeError, match="holds only tensors, but 'nested' is a dict"):
        lucid.save({"nested": {"a": lucid.zeros(1)}}, tmp_path / "bad.safetensors")
    with pytest.raises(TypeError, match="flat dict of named tensors"):
        lucid.save([lucid.zeros(1)], tmp_path / "bad.safetensors")
    monkeypatch.setitem(sys.modules, "safetensors", None)
    monkeypatch.setitem(sys.modules, "safetensors.numpy", None)
    with pytest.raises(ImportError, match=r"lucid\[checkpoints\]"):
        lucid.save(model.state_dict(), tmp_path / "other.safetensors")
