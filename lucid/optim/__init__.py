"""Optimisers, as ``torch.optim``. They update parameters' arrays in place (one fused
native kernel per parameter), so compiled functions that read those arrays see every
update; ``lr_scheduler`` changes their learning rates."""
from .adagrad import Adagrad
from .adam import Adam, AdamW
from .optimizer import Optimizer
from .rmsprop import RMSprop
from .sgd import SGD
from . import lr_scheduler  # noqa: E402

__all__ = ["Optimizer", "SGD", "Adam", "AdamW", "RMSprop", "Adagrad", "lr_scheduler"]
