"""The network: AlexNet (Figure 2), its local response normalisation, and the per-layer summary."""

from .alexnet import AlexNet
from .lrn import LocalResponseNorm, WithinMapResponseNorm

__all__ = ["AlexNet", "LocalResponseNorm", "WithinMapResponseNorm"]
