"""Neural-network building blocks: ``Module``, ``Parameter``, layers, containers and
``init``; functions in ``lucid.nn.functional``."""
from . import functional, init  # noqa: F401
from .container import ModuleDict, ModuleList, ParameterDict, ParameterList, Sequential
from .flatten import Flatten, Unflatten
from .layers import Bilinear, Identity, Linear, ReLU, Sigmoid, Tanh
from .loss import (BCELoss, BCEWithLogitsLoss, CosineEmbeddingLoss, CrossEntropyLoss,  # noqa: F401
                   HingeEmbeddingLoss, HuberLoss, KLDivLoss, L1Loss, MarginRankingLoss, MSELoss, NLLLoss,
                   PoissonNLLLoss, SmoothL1Loss, SoftMarginLoss)
from .module import Module
from .parameter import Buffer, Parameter
from .rnn import GRU, LSTM, RNN, GRUCell, LSTMCell, RNNBase, RNNCell, RNNCellBase

__all__ = ["Module", "Parameter", "Buffer", "Linear", "Bilinear", "Identity", "Flatten", "Unflatten",
           "ReLU", "Sigmoid", "Tanh", "Sequential", "ModuleList", "ModuleDict", "ParameterList",
           "ParameterDict", "functional", "init",
           "RNNBase", "RNN", "LSTM", "GRU", "RNNCellBase", "RNNCell", "LSTMCell", "GRUCell",
           "L1Loss", "MSELoss", "SmoothL1Loss", "HuberLoss", "BCELoss", "BCEWithLogitsLoss", "NLLLoss",
           "CrossEntropyLoss", "KLDivLoss", "SoftMarginLoss", "MarginRankingLoss", "HingeEmbeddingLoss",
           "PoissonNLLLoss", "CosineEmbeddingLoss"]


def __getattr__(name):
    """``lucid.nn.parallel`` (DistributedDataParallel) is imported on first use."""
    if name == "parallel":
        import importlib
        return importlib.import_module(".parallel", __name__)
    raise AttributeError(f"module 'lucid.nn' has no attribute {name!r}")
