"""Neural-network building blocks: ``Module``, ``Parameter``, layers; functions in
``lucid.nn.functional``."""
from . import functional, utils  # noqa: F401
from .layers import Linear, ReLU, Sequential, Sigmoid, Tanh
from .module import Module
from .parameter import Parameter

__all__ = ["Module", "Parameter", "Linear", "ReLU", "Sigmoid", "Tanh", "Sequential", "functional", "utils"]
