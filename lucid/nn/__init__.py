"""Neural-network building blocks: ``Module``, ``Parameter``, layers; functions in
``lucid.nn.functional``."""
from . import functional  # noqa: F401
from .layers import Linear, ReLU, Sequential, Sigmoid, Tanh
from .module import Module
from .parameter import Parameter
from .rnn import GRU, LSTM, RNN, GRUCell, LSTMCell, RNNBase, RNNCell, RNNCellBase

__all__ = ["Module", "Parameter", "Linear", "ReLU", "Sigmoid", "Tanh", "Sequential", "functional",
           "RNNBase", "RNN", "LSTM", "GRU", "RNNCellBase", "RNNCell", "LSTMCell", "GRUCell"]


def __getattr__(name):
    """``lucid.nn.parallel`` (DistributedDataParallel) is imported on first use."""
    if name == "parallel":
        import importlib
        return importlib.import_module(".parallel", __name__)
    raise AttributeError(f"module 'lucid.nn' has no attribute {name!r}")
