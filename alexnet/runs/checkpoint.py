"""Checkpoints: written atomically, read without ever running code from the file.

A checkpoint is a dict of plain values and tensors. `model` is a plain state_dict; `model_config`,
`preset` and `classes` say what network it is, so it can be rebuilt without the run folder
(`trained.model_from_checkpoint`). Loading uses `torch.load(..., weights_only=True)`, which refuses
pickled objects of any other kind.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from ..errors import AlexNetError
from ..files import atomic_file

CHECKPOINT_FORMAT = "alexnet-checkpoint"
CHECKPOINT_VERSION = 1
LAST = "last.pt"


def save_checkpoint(path: str | Path, payload: dict[str, Any]) -> None:
    """Write `payload` to `path` so that a crash at any moment leaves the old file or the new one."""
    with atomic_file(path, "wb", what="checkpoint") as f:
        torch.save({"format": CHECKPOINT_FORMAT, "version": CHECKPOINT_VERSION, **payload}, f)


def resolve_checkpoint(run_or_checkpoint: str | Path) -> Path:
    """A run folder means its last.pt; a file means itself."""
    path = Path(run_or_checkpoint)
    if path.is_dir():
        path = path / LAST
        if not path.is_file():
            raise AlexNetError(f"{path.parent}: no {LAST} in this run folder (has it trained an epoch?)")
    elif not path.is_file():
        raise AlexNetError(f"{path}: no such run folder or checkpoint file")
    return path


def read_torch_file(path: Path, what: str) -> Any:
    """torch.load with weights_only=True: tensors and plain values only, never code from the file."""
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # truncated, not a torch file, or a pickle with foreign objects
        text = str(exc).strip()
        reason = text.splitlines()[0] if text else type(exc).__name__
        if "weights_only" in text or "Unsupported global" in text:
            reason = "it holds pickled objects other than tensors and plain values; refused, not executed"
        raise AlexNetError(f"{path}: not a readable {what} ({reason})") from None


def load_checkpoint(run_or_checkpoint: str | Path) -> dict[str, Any]:
    """Read a checkpoint safely (weights_only) and check that it is one of ours."""
    path = resolve_checkpoint(run_or_checkpoint)
    ckpt = read_torch_file(path, "alexnet checkpoint")
    if not isinstance(ckpt, dict) or ckpt.get("format") != CHECKPOINT_FORMAT:
        raise AlexNetError(f"{path}: not an alexnet checkpoint (no '{CHECKPOINT_FORMAT}' marker)")
    if ckpt.get("version") != CHECKPOINT_VERSION:
        raise AlexNetError(f"{path}: checkpoint version {ckpt.get('version')!r}, "
                           f"this alexnet reads version {CHECKPOINT_VERSION}")
    for key in ("model", "model_config", "preset", "classes"):
        if key not in ckpt:
            raise AlexNetError(f"{path}: checkpoint lacks its {key!r} entry")
    ckpt["path"] = str(path)
    return ckpt
