"""Where a run starts from: its own last checkpoint (`--resume`), or another run's weights
(`--init-from`, the paper's pre-training then fine-tuning)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..data.prepared import PreparedDataset
from ..errors import AlexNetError
from ..model import AlexNet
from ..runs.checkpoint import LAST, load_checkpoint
from ..runs.trained import check_classes
from .settings import TrainSettings


def checkpoint_to_resume(s: TrainSettings, dataset: PreparedDataset) -> dict[str, Any] | None:
    """The checkpoint a `--resume` continues, checked against this run's preset, data and ablations;
    None for a new run (which must not overwrite one)."""
    last = Path(s.out) / LAST
    resume = last.exists() if s.auto_resume else s.resume
    if not resume:
        refuse_to_overwrite(last)
        return None
    if not last.exists():
        raise AlexNetError(f"--resume: no checkpoint {last} to resume from")
    ckpt = load_checkpoint(last)
    where = ckpt["path"]
    if ckpt["preset"] != s.preset:
        raise AlexNetError(f"{where}: checkpoint is from preset {ckpt['preset']!r}, not {s.preset!r}")
    check_classes(ckpt, dataset)
    if ckpt.get("data_size") != dataset.size:
        raise AlexNetError(f"{where}: checkpoint was trained on {ckpt.get('data_size')} px images, "
                           f"dataset {dataset.root} holds {dataset.size} px")
    if ckpt.get("data_fingerprint") not in (None, dataset.fingerprint):
        raise AlexNetError(f"{where}: the dataset changed since this run started (manifest fingerprint "
                           f"{ckpt['data_fingerprint']}, now {dataset.fingerprint}: other images or counts); "
                           "resume on the dataset it started with, or start a new run with --init-from")
    if tuple(ckpt.get("ablations", ())) != tuple(s.ablations):
        raise AlexNetError(f"{where}: the run was trained with ablations {list(ckpt.get('ablations', ()))}, "
                           f"not {list(s.ablations)}; resume with the same --ablate flags")
    return ckpt


def refuse_to_overwrite(last: Path) -> None:
    if last.exists():
        raise AlexNetError(f"{last} exists: pass --resume to continue that run, or choose a new --out")


def init_from(model: AlexNet, source: str) -> str:
    """Copy another run's weights into `model`; a last layer of another class count starts afresh.

    This is the paper's pre-training then fine-tuning (Section 6, "1 CNN*"): every layer but the
    output one must have the same shape.
    """
    other = load_checkpoint(source)
    mine = model.state_dict()
    last = [name for name in mine if name.startswith("classifier.")][-2:]  # the output layer's weight, bias
    copied, fresh = 0, []
    for name, value in other["model"].items():
        if name not in mine:
            raise AlexNetError(f"--init-from {other['path']}: it has a layer {name} this network lacks "
                               "(another preset?)")
        if value.shape == mine[name].shape:
            mine[name] = value
            copied += 1
        elif name in last:
            fresh.append(name)
        else:
            raise AlexNetError(f"--init-from {other['path']}: {name} has shape {tuple(value.shape)}, this network's "
                               f"is {tuple(mine[name].shape)} (another preset or image size?)")
    model.load_state_dict(mine)
    new_layer = f"; new output layer for {model.num_classes} classes" if fresh else ""
    return f"initialised from {other['path']} (epoch {other.get('epoch')}): {copied} tensors copied{new_layer}"
