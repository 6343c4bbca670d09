"""Neural-network building blocks: ``Module``, ``Parameter``, layers, containers and
``init``; functions in ``lucid.nn.functional``."""
from . import functional, init  # noqa: F401
from .container import ModuleDict, ModuleList, ParameterDict, ParameterList, Sequential
from .flatten import Flatten, Unflatten
from .layers import Bilinear, Identity, Linear, ReLU, Sigmoid, Tanh
from .module import Module
from .parameter import Buffer, Parameter

__all__ = ["Module", "Parameter", "Buffer", "Linear", "Bilinear", "Identity", "Flatten", "Unflatten",
           "ReLU", "Sigmoid", "Tanh", "Sequential", "ModuleList", "ModuleDict", "ParameterList",
           "ParameterDict", "functional", "init"]
