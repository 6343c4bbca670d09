"""Neural-network building blocks: ``Module``, ``Parameter``, layers, containers and
``init``; functions in ``lucid.nn.functional``."""
from . import functional, init, utils  # noqa: F401
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
           "ParameterDict", "functional", "init", "utils",
           "RNNBase", "RNN", "LSTM", "GRU", "RNNCellBase", "RNNCell", "LSTMCell", "GRUCell",
           "L1Loss", "MSELoss", "SmoothL1Loss", "HuberLoss", "BCELoss", "BCEWithLogitsLoss", "NLLLoss",
           "CrossEntropyLoss", "KLDivLoss", "SoftMarginLoss", "MarginRankingLoss", "HingeEmbeddingLoss",
           "PoissonNLLLoss", "CosineEmbeddingLoss"]

# activations, normalisation, dropout, embedding, padding, distances (issue 15)
from .activation import (CELU, ELU, GELU, GLU, SELU, Hardsigmoid, Hardswish, Hardtanh,  # noqa: E402
                         LeakyReLU, LogSigmoid, LogSoftmax, Mish, PReLU, ReLU6, SiLU, Softmax, Softmin,
                         Softplus, Softsign, Tanhshrink, Threshold)
from .normalization import BatchNorm1d, BatchNorm2d, GroupNorm, LayerNorm, RMSNorm  # noqa: E402
from .dropout import AlphaDropout, Dropout, Dropout1d, Dropout2d, Dropout3d  # noqa: E402
from .sparse import Embedding  # noqa: E402
from .padding import (CircularPad1d, CircularPad2d, ConstantPad1d, ConstantPad2d,  # noqa: E402
                      ReflectionPad1d, ReflectionPad2d, ReplicationPad1d, ReplicationPad2d,
                      ZeroPad1d, ZeroPad2d)
from .distance import CosineSimilarity, PairwiseDistance  # noqa: E402
from .transformer import (MultiheadAttention, Transformer, TransformerDecoder,  # noqa: E402
                          TransformerDecoderLayer, TransformerEncoder, TransformerEncoderLayer)

__all__ += ["PReLU", "ReLU6", "LeakyReLU", "ELU", "SELU", "CELU", "GELU", "SiLU", "Mish", "Softplus", "Softsign",
            "Hardtanh", "Hardsigmoid", "Hardswish", "LogSigmoid", "Tanhshrink", "GLU", "Softmax",
            "LogSoftmax", "Softmin", "Threshold", "LayerNorm", "RMSNorm", "GroupNorm", "BatchNorm1d",
            "BatchNorm2d", "Dropout", "Dropout1d", "Dropout2d", "Dropout3d", "AlphaDropout", "Embedding",
            "ZeroPad1d", "ZeroPad2d", "ConstantPad1d", "ConstantPad2d", "ReflectionPad1d",
            "ReflectionPad2d", "ReplicationPad1d", "ReplicationPad2d", "CircularPad1d", "CircularPad2d",
            "CosineSimilarity", "PairwiseDistance", "MultiheadAttention", "Transformer",
            "TransformerEncoder", "TransformerDecoder", "TransformerEncoderLayer", "TransformerDecoderLayer"]

# convolution, pooling and resizing layers
from .conv import Conv1d, Conv2d, Conv3d, ConvTranspose1d, ConvTranspose2d, ConvTranspose3d  # noqa: E402
from .pooling import (AdaptiveAvgPool1d, AdaptiveAvgPool2d, AdaptiveAvgPool3d, AdaptiveMaxPool1d,  # noqa: E402
                      AdaptiveMaxPool2d, AdaptiveMaxPool3d, AvgPool1d, AvgPool2d, AvgPool3d, MaxPool1d,
                      MaxPool2d, MaxPool3d, MaxUnpool1d, MaxUnpool2d, MaxUnpool3d)
from .upsampling import (Fold, PixelShuffle, PixelUnshuffle, Unfold, Upsample, UpsamplingBilinear2d,  # noqa: E402
                         UpsamplingNearest2d)
__all__ += ["Conv1d", "Conv2d", "Conv3d", "ConvTranspose1d", "ConvTranspose2d", "ConvTranspose3d",
            "MaxPool1d", "MaxPool2d", "MaxPool3d", "AvgPool1d", "AvgPool2d", "AvgPool3d", "AdaptiveAvgPool1d",
            "AdaptiveAvgPool2d", "AdaptiveAvgPool3d", "AdaptiveMaxPool1d", "AdaptiveMaxPool2d",
            "AdaptiveMaxPool3d", "MaxUnpool1d", "MaxUnpool2d", "MaxUnpool3d", "Upsample", "UpsamplingNearest2d", "UpsamplingBilinear2d", "PixelShuffle",
            "PixelUnshuffle", "Fold", "Unfold"]


def __getattr__(name):
    """``lucid.nn.parallel`` (DistributedDataParallel) is imported on first use."""
    if name == "parallel":
        import importlib
        return importlib.import_module(".parallel", __name__)
    raise AttributeError(f"module 'lucid.nn' has no attribute {name!r}")
