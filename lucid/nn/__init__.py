"""Neural-network building blocks. ``lucid.nn.functional`` holds the functions."""
from . import functional  # noqa: F401
