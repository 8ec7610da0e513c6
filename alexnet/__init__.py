"""alexnet: Krizhevsky, Sutskever & Hinton (2012) on PyTorch, the whole system.

Python API:
    build_model(preset, num_classes=1000)  -> nn.Module
    LocalResponseNorm(size=5, alpha=1e-4, beta=0.75, k=2.0)   the paper's formula (alpha on the sum)
    PaperSGD(params, lr, momentum=0.9, weight_decay=5e-4)     the paper's update rule
    load_exported("model.safetensors")                        a network exported by `alexnet export`
"""

from .errors import AlexNetError
from .export.load import load_exported
from .model import AlexNet, LocalResponseNorm, build_model
from .presets import PRESETS, get_preset
from .training.optim import PaperSGD
from .version import __version__


__all__ = ["AlexNet", "AlexNetError", "LocalResponseNorm", "PaperSGD", "PRESETS", "build_model", "get_preset",
           "load_exported", "__version__"]
