"""lucid's random number state: ``lucid.random.seed(n)`` makes ``randn`` repeatable."""
from __future__ import annotations

import numpy as np

_rng = np.random.default_rng()


def seed(n: int) -> None:
    global _rng
    _rng = np.random.default_rng(n)


def generator() -> np.random.Generator:
    return _rng
