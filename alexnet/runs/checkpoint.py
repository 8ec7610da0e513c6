"""Checkpoints: written atomically, read without ever running code from the file.

A checkpoint is a dict of plain values and tensors. `model` is a plain state_dict; `model_config`,
`preset` and `classes` say what network it is, so it can be rebuilt without the run folder
(`trained.model_from_checkpoint`). Loading uses `torch.load(..., weights_only=True)`, which refuses
pickled objects of any other kind.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import torch

from ..config import model_config_from_dict, recipe_from_dict
from ..errors import AlexNetError, ConfigError
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
    with open(path, "rb") as f:
        head = f.read(4)
    if not (head.startswith(b"PK\x03\x04") or head[:1] == b"\x80"):  # a zip archive, or a legacy pickle
        raise AlexNetError(f"{path}: not a readable {what} (not a PyTorch file: neither a zip archive nor a pickle)")
    try:
        with warnings.catch_warnings():  # torch's note on a pickle protocol it did not write: ours is below
            warnings.filterwarnings("ignore", message="Detected pickle protocol")
            return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # truncated, not a torch file, or a pickle with foreign objects
        text = str(exc).strip()
        reason = text.splitlines()[0] if text else type(exc).__name__
        if "weights_only" in text or "Unsupported global" in text:
            reason = ("a pickle holding more than tensors and plain values, or in a form the safe reader does not "
                      "take; refused, not executed")
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
    problem = checkpoint_problem(ckpt)
    if problem:
        raise AlexNetError(f"{path}: {problem}; refused")
    ckpt["path"] = str(path)
    return ckpt


def checkpoint_problem(ckpt: dict[str, Any]) -> str | None:
    """What is wrong with a checkpoint's fields (types, shapes, settings, non-finite numbers), or None.
    Cheap checks every reader relies on; a NaN weight must not become an error rate with exit 0."""
    classes, names = ckpt["classes"], ckpt.get("class_names")
    if not isinstance(classes, list) or not classes or not all(isinstance(c, str) for c in classes):
        return "'classes' is not a list of class names"
    if names is not None and (not isinstance(names, list) or len(names) != len(classes)):
        return "'class_names' does not name every class"
    try:
        model_config_from_dict(ckpt["model_config"])
        recipe_from_dict(ckpt.get("recipe", {}))
    except (ConfigError, TypeError, ValueError, KeyError, AttributeError, RuntimeError) as exc:
        # RuntimeError: a tensor where a setting should be (its truth value is ambiguous)
        return f"its settings are unusable ({' '.join(str(exc).split())[:200]})"
    model = ckpt["model"]
    if not isinstance(model, dict) or not all(isinstance(v, torch.Tensor) for v in model.values()):
        return "'model' is not a state_dict of tensors"
    bad = [k for k, v in model.items() if v.is_floating_point() and not torch.isfinite(v).all()]
    if bad:
        return f"weights {', '.join(bad[:3])}{' ...' if len(bad) > 3 else ''} hold NaN or infinite values"
    return _mean_image_problem(ckpt)


def _mean_image_problem(ckpt: dict[str, Any]) -> str | None:
    if "data_size" in ckpt and (not isinstance(ckpt["data_size"], int) or ckpt["data_size"] < 1):
        return f"'data_size' is not a positive whole number ({ckpt['data_size']!r})"
    if "mean_image" not in ckpt:
        return None
    mean, size = ckpt["mean_image"], ckpt.get("data_size")
    if not isinstance(mean, torch.Tensor) or mean.dim() != 3 or mean.shape[2] != 3 or mean.shape[0] != mean.shape[1]:
        return "'mean_image' is not an S x S x 3 tensor"
    if size is not None and mean.shape[0] != size:
        return f"'mean_image' is {mean.shape[0]} px, the images {size} px"
    if not torch.isfinite(mean).all():
        return "'mean_image' holds NaN or infinite values"
    return None
