"""alexnet: Krizhevsky, Sutskever & Hinton (2012) on PyTorch, the whole system.

Python API:
    build_model(preset, num_classes=1000)  -> nn.Module
    LocalResponseNorm(size=5, alpha=1e-4, beta=0.75, k=2.0)   the paper's formula (alpha on the sum)
    PaperSGD(params, lr, momentum=0.9, weight_decay=5e-4)     the paper's update rule
    load_exported("model.safetensors")                        a network exported by `alexnet export`

The names are imported when first used, so that `import alexnet` (and the command line's start) does
not load PyTorch before it is needed.
"""

from __future__ import annotations

import importlib

from .version import __version__

_WHERE = {"AlexNet": ".model", "LocalResponseNorm": ".model", "build_model": ".model", "PaperSGD": ".training.optim",
          "load_exported": ".export.load", "PRESETS": ".presets", "get_preset": ".presets", "AlexNetError": ".errors"}

__all__ = sorted(_WHERE) + ["__version__"]


def __getattr__(name: str):
    if name not in _WHERE:
        raise AttributeError(f"module 'alexnet' has no attribute {name!r}")
    return getattr(importlib.import_module(_WHERE[name], __name__), name)
