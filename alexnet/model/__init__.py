"""The network: AlexNet (Figure 2), its local response normalisation, and the per-layer summary."""

from .alexnet import AlexNet, layer_name, mean_image_for
from .lrn import LocalResponseNorm, WithinMapResponseNorm

__all__ = ["AlexNet", "layer_name", "mean_image_for", "LocalResponseNorm", "WithinMapResponseNorm"]
