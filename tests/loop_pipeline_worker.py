"""Helper for tests/test_loop_pipelines.py: run a table of loop-kernel ops (elementwise,
reduction, row and index kernels, forward and backward, eager and compiled) in this
process and print one JSON line ``{name: sha256 of the result's bytes}``. The LLVM
pipeline the loop kernels are compiled with comes from the environment
(``LUCID_LOOP_OPT``), the kernel cache directory too.
"""
from __future__ import annotations

import hashlib
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import numpy as np  # noqa: E402

import lucid  # noqa: E402
import lucid.nn.functional as F  # noqa: E402

SHAPES = [(0, 5), (1, 1), (7, 13), (97, 131), (64, 1000)]


def cases(shape):
    """name -> function of (x, y, b) returning a tensor."""
    return {
        "add_bcast": lambda x, y, b: x + b,
        "mul_sub": lambda x, y, b: x * 0.5 - y,
        "exp": lambda x, y, b: x.exp(),
        "tanh": lambda x, y, b: x.tanh(),
        "sigmoid": lambda x, y, b: x.sigmoid(),
        "gelu": lambda x, y, b: F.gelu(x),
        "div_where": lambda x, y, b: lucid.where(x > y, x / (y.abs() + 1), y),
        "transposed": lambda x, y, b: x.T.exp() * 2,
        "sum_all": lambda x, y, b: x.sum(),
        "sum_0": lambda x, y, b: x.sum(0),
        "max_1": lambda x, y, b: x.amax(1) if shape[1] else x.sum(1),
        "mean_var": lambda x, y, b: x.var(1) + x.mean(1),
        "softmax": lambda x, y, b: F.softmax(x, -1),
        "log_softmax": lambda x, y, b: F.log_softmax(x, -1),
        "layer_norm": lambda x, y, b: F.layer_norm(x, (shape[1],)),
        "index_select": lambda x, y, b: x[lucid.tensor(np.arange(shape[0])[::-1].copy())],
    }


def digest(t) -> str:
    return hashlib.sha256(np.ascontiguousarray(t.numpy()).tobytes()).hexdigest()[:16]


def main() -> None:
    out = {}
    rng = np.random.default_rng(0)
    for shape in SHAPES:
        for dtype in (np.float32, np.float64):
            x_np, y_np = (rng.standard_normal(shape).astype(dtype) for _ in range(2))
            b_np = rng.standard_normal(shape[1:]).astype(dtype)
            for name, fn in cases(shape).items():
                tag = f"{name} {shape} {np.dtype(dtype).name}"
                x = lucid.tensor(x_np, requires_grad=True)
                y, b = lucid.tensor(y_np), lucid.tensor(b_np)
                r = fn(x, y, b)
                out[tag] = digest(r)
                (r * r).sum().backward()
                out[tag + " grad"] = digest(x.grad)
                out[tag + " compiled"] = digest(lucid.compile(fn)(x.detach(), y, b))
    print(json.dumps(out))


if __name__ == "__main__":
    main()
