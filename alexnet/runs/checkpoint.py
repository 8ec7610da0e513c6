"""Checkpoints: written atomically, read without ever running code from the file, and checked whole.

A checkpoint is a dict of plain values and tensors (its fields: training/state.py). `model` is a plain
state_dict; `model_config`, `preset` and `classes` say what network it is, so it can be rebuilt without
the run folder (`trained.model_from_checkpoint`). Loading uses `torch.load(..., weights_only=True)`,
which refuses pickled objects of any other kind. A digest of everything in it (BLAKE2b over every value
and every tensor's bytes, about half a second for the paper network with its optimizer state) is written
with it and checked by every reader: a flipped byte or shuffled class names are refused, never used.
"""

from __future__ import annotations

import hashlib
import warnings
from pathlib import Path
from typing import Any

import torch

from ..config import model_config_from_dict, recipe_from_dict
from ..errors import AlexNetError, ConfigError
from ..files import atomic_file

CHECKPOINT_FORMAT = "alexnet-checkpoint"
CHECKPOINT_VERSION = 2    # 2: with its digest; version 1 (no digest) was never released
LAST = "last.pt"
_NOT_CONTENT = ("format", "version", "digest", "path")   # what the digest does not cover
MAX_WEIGHT = 1e4          # no weight of a trained AlexNet comes near; a larger one is damage, not learning


def save_checkpoint(path: str | Path, payload: dict[str, Any]) -> None:
    """Write `payload` to `path` so that a crash at any moment leaves the old file or the new one."""
    content = {k: v for k, v in payload.items() if k not in _NOT_CONTENT}
    with atomic_file(path, "wb", what="checkpoint") as f:
        torch.save({"format": CHECKPOINT_FORMAT, "version": CHECKPOINT_VERSION, "digest": digest(content),
                    **content}, f)


def digest(value: Any) -> str:
    """BLAKE2b of a checkpoint's content: every key, plain value, tensor dtype, shape and byte, in a fixed order."""
    h = hashlib.blake2b(digest_size=32)
    _feed(h, value)
    return h.hexdigest()


def _feed(h, value: Any) -> None:
    if isinstance(value, torch.Tensor):
        t = value.detach().cpu().contiguous()
        h.update(f"T{t.dtype}{tuple(t.shape)}".encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy())
    elif isinstance(value, dict):
        h.update(f"D{len(value)}".encode())
        for key in sorted(value, key=repr):
            h.update(repr(key).encode())
            _feed(h, value[key])
    elif isinstance(value, (list, tuple)):
        h.update(f"L{len(value)}".encode())
        for item in value:
            _feed(h, item)
    else:  # str, int, float, bool, None
        h.update(f"V{type(value).__name__}:{value!r}".encode())


def resolve_checkpoint(run_or_checkpoint: str | Path) -> Path:
    """A run folder means its last.pt; a file means itself."""
    path = Path(run_or_checkpoint)
    if path.is_dir():
        if (path / "manifest.json").is_file():
            raise AlexNetError(f"{path}: a prepared dataset, not a run folder; give the run folder (the --out of "
                               f"`alexnet train`), and this as --data {path}")
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
    problem = checkpoint_problem(ckpt)  # the fields first: a field of the wrong kind is named as such
    if problem is None and ckpt.get("digest") != digest({k: v for k, v in ckpt.items() if k not in _NOT_CONTENT}):
        problem = "its contents do not match the digest written with them (changed or corrupt since it was saved)"
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
    return _weights_problem(model, len(classes)) or _mean_image_problem(ckpt)


def _weights_problem(model: dict[str, torch.Tensor], classes: int) -> str | None:
    """Weights of the wrong dtype (never cast in silence), non-finite or absurd values, an output layer
    that does not fit the class list."""
    def named(keys: list[str]) -> str:
        return f"{', '.join(keys[:3])}{' ...' if len(keys) > 3 else ''}"

    wrong = [k for k, v in model.items() if v.dtype != torch.float32]
    if wrong:
        return f"weights {named(wrong)} are {model[wrong[0]].dtype}, not float32"
    bad = [k for k, v in model.items() if not torch.isfinite(v).all()]
    if bad:
        return f"weights {named(bad)} hold NaN or infinite values"
    huge = [k for k, v in model.items() if v.numel() and v.abs().max() > MAX_WEIGHT]
    if huge:
        return f"weights {named(huge)} hold values of absurd magnitude (up to {model[huge[0]].abs().max():.3g})"
    output = [k for k in model if k.startswith("classifier.") and k.endswith(".weight")]
    if output and model[output[-1]].dim() == 2 and model[output[-1]].shape[0] != classes:
        return (f"its output layer {output[-1]} has {model[output[-1]].shape[0]} outputs, but 'classes' names "
                f"{classes}")
    return None


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
