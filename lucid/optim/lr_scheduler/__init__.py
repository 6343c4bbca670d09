"""Learning-rate schedulers, as ``torch.optim.lr_scheduler`` (the same sequences).

A compiled training step reads each group's ``lr`` at every call, so stepping a
scheduler between calls never retraces it.
"""
from .base import LRScheduler
from .composite import ChainedScheduler, SequentialLR
from .cosine import CosineAnnealingLR, CosineAnnealingWarmRestarts
from .multiplicative import LambdaLR, MultiplicativeLR
from .one_cycle import OneCycleLR
from .plateau import ReduceLROnPlateau
from .steps import ExponentialLR, MultiStepLR, StepLR
from .warmup import ConstantLR, LinearLR, PolynomialLR

__all__ = ["LRScheduler", "LambdaLR", "MultiplicativeLR", "StepLR", "MultiStepLR", "ConstantLR", "LinearLR",
           "ExponentialLR", "CosineAnnealingLR", "PolynomialLR", "OneCycleLR", "CosineAnnealingWarmRestarts",
           "ReduceLROnPlateau", "SequentialLR", "ChainedScheduler"]
