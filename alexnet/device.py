"""Choosing the device a command runs on."""

from __future__ import annotations

import re

import torch

from .errors import AlexNetError


def resolve_device(name: str | None) -> torch.device:
    """`cpu`, `cuda` or `cuda:N`; None means cuda when available, else cpu."""
    if name is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if not re.fullmatch(r"cpu|cuda(:\d{1,4})?", name):
        raise AlexNetError(f"--device must be cpu or cuda (cuda:N for one of several), got {name!r}")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise AlexNetError(f"--device {name}: CUDA is not available on this machine")
    device = torch.device(name)
    if device.index is not None and device.index >= torch.cuda.device_count():
        raise AlexNetError(f"--device {name}: this machine has {torch.cuda.device_count()} CUDA device(s), "
                           f"cuda:0 to cuda:{torch.cuda.device_count() - 1}")
    return device
