"""Choosing the device a command runs on."""

from __future__ import annotations

import torch

from .errors import AlexNetError


def resolve_device(name: str | None) -> torch.device:
    """`cpu`, `cuda` or `cuda:N`; None means cuda when available, else cpu."""
    if name is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name not in ("cpu", "cuda") and not name.startswith("cuda:"):
        raise AlexNetError(f"--device must be cpu or cuda, got {name!r}")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise AlexNetError(f"--device {name}: CUDA is not available on this machine")
    return torch.device(name)
