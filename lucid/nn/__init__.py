"""Neural-network building blocks: ``Module``, ``Parameter``, layers; functions in
``lucid.nn.functional``."""
from . import functional  # noqa: F401
from .layers import Linear, ReLU, Sequential, Sigmoid, Tanh
from .module import Module
from .parameter import Parameter
from .rnn import GRU, LSTM, RNN, GRUCell, LSTMCell, RNNBase, RNNCell, RNNCellBase

__all__ = ["Module", "Parameter", "Linear", "ReLU", "Sigmoid", "Tanh", "Sequential", "functional",
           "RNNBase", "RNN", "LSTM", "GRU", "RNNCellBase", "RNNCell", "LSTMCell", "GRUCell"]

# activations, normalisation, dropout, embedding, padding, distances (issue 15)
from .activation import (CELU, ELU, GELU, GLU, SELU, Hardsigmoid, Hardswish, Hardtanh,  # noqa: E402
                         LeakyReLU, LogSigmoid, LogSoftmax, Mish, ReLU6, SiLU, Softmax, Softmin,
                         Softplus, Softsign, Tanhshrink, Threshold)
from .normalization import BatchNorm1d, BatchNorm2d, GroupNorm, LayerNorm, RMSNorm  # noqa: E402
from .dropout import AlphaDropout, Dropout, Dropout1d, Dropout2d  # noqa: E402
from .sparse import Embedding  # noqa: E402
from .padding import (CircularPad1d, CircularPad2d, ConstantPad1d, ConstantPad2d,  # noqa: E402
                      ReflectionPad1d, ReflectionPad2d, ReplicationPad1d, ReplicationPad2d,
                      ZeroPad1d, ZeroPad2d)
from .distance import CosineSimilarity, PairwiseDistance  # noqa: E402

__all__ += ["ReLU6", "LeakyReLU", "ELU", "SELU", "CELU", "GELU", "SiLU", "Mish", "Softplus", "Softsign",
            "Hardtanh", "Hardsigmoid", "Hardswish", "LogSigmoid", "Tanhshrink", "GLU", "Softmax",
            "LogSoftmax", "Softmin", "Threshold", "LayerNorm", "RMSNorm", "GroupNorm", "BatchNorm1d",
            "BatchNorm2d", "Dropout", "Dropout1d", "Dropout2d", "AlphaDropout", "Embedding",
            "ZeroPad1d", "ZeroPad2d", "ConstantPad1d", "ConstantPad2d", "ReflectionPad1d",
            "ReflectionPad2d", "ReplicationPad1d", "ReplicationPad2d", "CircularPad1d", "CircularPad2d",
            "CosineSimilarity", "PairwiseDistance"]


def __getattr__(name):
    """``lucid.nn.parallel`` (DistributedDataParallel) is imported on first use."""
    if name == "parallel":
        import importlib
        return importlib.import_module(".parallel", __name__)
    raise AttributeError(f"module 'lucid.nn' has no attribute {name!r}")
