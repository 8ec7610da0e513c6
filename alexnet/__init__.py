"""alexnet: Krizhevsky, Sutskever & Hinton (2012) on PyTorch, the whole system.

Python API:
    build_model(preset, num_classes=1000)  -> nn.Module
    LocalResponseNorm(size=5, alpha=1e-4, beta=0.75, k=2.0)   the paper's formula (alpha on the sum)
    PaperSGD(params, lr, momentum=0.9, weight_decay=5e-4)     the paper's update rule
"""

__version__ = "0.1.0"

from .errors import AlexNetError  # noqa: E402
from .model import AlexNet, LocalResponseNorm  # noqa: E402
from .presets import PRESETS, get_preset  # noqa: E402
from .training.optim import PaperSGD  # noqa: E402


def build_model(preset: str = "paper", num_classes: int = 1000, input_size: int | None = None) -> AlexNet:
    """The network of a named preset, freshly initialised as the preset says.

    `input_size` (the crop side) defaults to the preset's: 224 for `paper`, 28 for `small`.
    """
    from dataclasses import replace

    cfg = get_preset(preset).model
    if input_size is not None:
        cfg = replace(cfg, input_size=input_size)
    return AlexNet(cfg, num_classes=num_classes)


__all__ = ["AlexNet", "AlexNetError", "LocalResponseNorm", "PaperSGD", "PRESETS", "build_model", "get_preset",
           "__version__"]
