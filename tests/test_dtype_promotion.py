"""Dtypes of the IR and PyTorch's promotion rules, checked against torch.result_type."""
from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch

from lucid_ir.types import DTYPES, TensorType, check_dtype, fill_value, promote, result_type

TORCH = {"float32": torch.float32, "float64": torch.float64, "int32": torch.int32,
         "int64": torch.int64, "bool": torch.bool}
FROM_TORCH = {v: k for k, v in TORCH.items()}
SCALARS = [True, 3, 2.5]


def _tensor(dtype):
    return torch.zeros(2, dtype=TORCH[dtype])


@pytest.mark.parametrize("a,b", list(itertools.product(DTYPES, DTYPES)))
def test_promote_matches_torch_for_every_pair(a, b):
    assert promote(a, b) == FROM_TORCH[torch.result_type(_tensor(a), _tensor(b))]


@pytest.mark.parametrize("a,b,c", [("bool", "int32", "float32"), ("int64", "int32", "bool"),
                                   ("float32", "int64", "float64"), ("bool", "bool", "bool")])
def test_promote_three_operands(a, b, c):
    want = torch.promote_types(torch.promote_types(TORCH[a], TORCH[b]), TORCH[c])
    assert promote(a, b, c) == FROM_TORCH[want]


@pytest.mark.parametrize("dtype,scalar", list(itertools.product(DTYPES, SCALARS)))
def test_weak_python_scalars_match_torch(dtype, scalar):
    assert result_type(dtype, scalar) == FROM_TORCH[torch.result_type(_tensor(dtype), scalar)]
    assert result_type(scalar, dtype) == FROM_TORCH[torch.result_type(scalar, _tensor(dtype))]


@pytest.mark.parametrize("s1,s2", list(itertools.product(SCALARS, SCALARS)))
def test_scalars_alone(s1, s2):
    assert result_type(s1, s2) == FROM_TORCH[torch.result_type(torch.tensor(s1), s2)]


def test_the_issue_examples():
    assert result_type("float32", 2) == "float32"      # int scalar keeps the float tensor's dtype
    assert result_type("int64", 2.0) == "float32"      # float scalar: the default float dtype
    assert result_type("bool", 2) == "int64"
    assert result_type("int32", False) == "int32"


@pytest.mark.parametrize("given,name", [(np.int32, "int32"), ("int64", "int64"), (np.bool_, "bool"),
                                        (bool, "bool"), ("f4", "float32"), (np.dtype("float64"), "float64")])
def test_check_dtype_accepts_numpy_forms(given, name):
    assert check_dtype(given) == name


@pytest.mark.parametrize("bad", ["int8", np.uint32, "float16", "complex64"])
def test_check_dtype_rejects_others_naming_the_supported_ones(bad):
    with pytest.raises(TypeError, match="int32, int64, bool"):
        check_dtype(bad)


@pytest.mark.parametrize("dtype,short", [("float32", "f32"), ("float64", "f64"), ("int32", "i32"),
                                         ("int64", "i64"), ("bool", "bool")])
def test_short_names_round_trip(dtype, short):
    for shape in [(), (0, 3), (2, 5)]:
        t = TensorType(shape, dtype)
        assert str(t).startswith(short + "[")
        assert TensorType.parse(str(t)) == t


def test_fill_values_are_exact_for_their_dtype():
    assert fill_value(2**62 + 1, "int64") == 2**62 + 1   # not rounded through a float
    assert fill_value(0.0, "bool") is False
    with pytest.raises(ValueError, match="whole number"):
        fill_value(2.5, "int32")
    with pytest.raises(ValueError, match="out of range"):
        fill_value(2**31, "int32")
