"""Optimisers. They update parameters' arrays in place, so compiled functions that
read those arrays see every update."""
from .adam import Adam
from .optimizer import Optimizer
from .sgd import SGD

__all__ = ["Optimizer", "SGD", "Adam"]
