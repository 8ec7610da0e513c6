"""The network: AlexNet (Figure 2), its local response normalisation, and the per-layer summary."""

from .alexnet import AlexNet, flat_features, layer_name, mean_image_for
from .build import build_model, build_network
from .lrn import LocalResponseNorm, WithinMapResponseNorm
from .torchvision_layout import TorchvisionAlexNet

__all__ = ["AlexNet", "TorchvisionAlexNet", "build_model", "build_network", "flat_features", "layer_name", "mean_image_for",
           "LocalResponseNorm", "WithinMapResponseNorm"]
