"""Neural-network building blocks: ``Module``, ``Parameter``, layers; functions in
``lucid.nn.functional``."""
from . import functional  # noqa: F401
from .layers import Linear, Sequential
from .module import Module
from .parameter import Parameter
from .activation import (CELU, ELU, GELU, GLU, SELU, Hardsigmoid, Hardswish, Hardtanh,  # noqa: E402
                         LeakyReLU, LogSigmoid, LogSoftmax, Mish, ReLU, ReLU6, Sigmoid, SiLU, Softmax,
                         Softmin, Softplus, Softsign, Tanh, Tanhshrink, Threshold)
from .normalization import BatchNorm1d, BatchNorm2d, GroupNorm, LayerNorm, RMSNorm  # noqa: E402
from .dropout import AlphaDropout, Dropout, Dropout1d, Dropout2d  # noqa: E402
from .sparse import Embedding  # noqa: E402
from .padding import (CircularPad1d, CircularPad2d, ConstantPad1d, ConstantPad2d,  # noqa: E402
                      ReflectionPad1d, ReflectionPad2d, ReplicationPad1d, ReplicationPad2d,
                      ZeroPad1d, ZeroPad2d)
from .distance import CosineSimilarity, PairwiseDistance  # noqa: E402

__all__ = ["Module", "Parameter", "Linear", "Sequential", "functional",
           "ReLU", "ReLU6", "LeakyReLU", "ELU", "SELU", "CELU", "GELU", "SiLU", "Mish", "Softplus",
           "Softsign", "Hardtanh", "Hardsigmoid", "Hardswish", "LogSigmoid", "Tanhshrink", "GLU",
           "Softmax", "LogSoftmax", "Softmin", "Sigmoid", "Tanh", "Threshold",
           "LayerNorm", "RMSNorm", "GroupNorm", "BatchNorm1d", "BatchNorm2d",
           "Dropout", "Dropout1d", "Dropout2d", "AlphaDropout", "Embedding",
           "ZeroPad1d", "ZeroPad2d", "ConstantPad1d", "ConstantPad2d", "ReflectionPad1d", "ReflectionPad2d",
           "ReplicationPad1d", "ReplicationPad2d", "CircularPad1d", "CircularPad2d",
           "CosineSimilarity", "PairwiseDistance"]
