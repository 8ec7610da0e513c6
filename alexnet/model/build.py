"""Networks by configuration or by preset name: the one place that picks the class for a layout."""

from __future__ import annotations

from dataclasses import replace

from ..config import ModelConfig
from ..presets import get_preset
from .alexnet import AlexNet
from .torchvision_layout import TorchvisionAlexNet

NETWORKS = {"paper": AlexNet, "torchvision": TorchvisionAlexNet}   # by ModelConfig.layout


def build_network(cfg: ModelConfig, num_classes: int = 1000) -> AlexNet:
    """The network `cfg` describes, freshly initialised."""
    return NETWORKS[cfg.layout](cfg, num_classes)


def build_model(preset: str = "paper", num_classes: int = 1000, input_size: int | None = None) -> AlexNet:
    """The network of a named preset, freshly initialised as the preset says.

    `input_size` (the crop side) defaults to the preset's: 224 for `paper`, 28 for `small`.
    """
    cfg = get_preset(preset).model
    if input_size is not None:
        cfg = replace(cfg, input_size=input_size)
    return build_network(cfg, num_classes)
