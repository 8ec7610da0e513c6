"""`alexnet convert torchvision WEIGHTS --out RUN`: a torchvision AlexNet weights file as a run folder.

The weights file (torchvision's `alexnet-owt-*.pth`, or any state_dict saved from
`torchvision.models.alexnet`) is read with `weights_only=True`, so it cannot run code. Its keys and
shapes must be exactly those of the `torchvision` preset. The run folder gets a `last.pt` like a
trained run's, so `evaluate` (ten-patch testing), `predict`, `figures`, `export` and
`train --init-from` (fine-tuning) take it as they take our own runs.

The mean a torchvision network expects is ImageNet's per-channel mean (its std is divided inside the
network), so the checkpoint's mean image is that constant, whatever dataset it is evaluated on.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..config import to_dict
from ..data.augment import crop_size_for
from ..errors import AlexNetError
from ..data.prepared import PreparedDataset
from ..model import AlexNet, build_network, mean_image_for
from ..presets import get_preset
from ..runs.checkpoint import LAST, read_torch_file, save_checkpoint

DEFAULT_STORED_SIZE = 256  # torchvision's evaluation: shorter side 256, central 224 crop


def read_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    """A state_dict from a weights file, safely; unwraps {"state_dict": ...} / {"model": ...} and DDP's
    "module." prefixes, which training scripts commonly add."""
    path = Path(path)
    if not path.is_file():
        raise AlexNetError(f"{path}: no such weights file")
    state = read_torch_file(path, "weights file")
    for wrapper in ("state_dict", "model"):
        if isinstance(state, dict) and isinstance(state.get(wrapper), dict):
            state = state[wrapper]
    if not isinstance(state, dict) or not state or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise AlexNetError(f"{path}: not a state_dict (a mapping of names to tensors)")
    return {k.removeprefix("module."): v for k, v in state.items()}


def _classes(num_outputs: int, data: str | None, classes_file: str | None) -> tuple[list[str], list[str], Any]:
    """(classes, class names, prepared dataset or None) for a network of `num_outputs` outputs."""
    if data and classes_file:
        raise AlexNetError("give --data or --classes, not both")
    if data:
        dataset = PreparedDataset(data)
        if dataset.num_classes != num_outputs:
            raise AlexNetError(f"the weights have {num_outputs} outputs, dataset {dataset.root} has "
                               f"{dataset.num_classes} classes; convert with --classes (or none), then fine-tune "
                               "with train --preset torchvision --init-from RUN")
        return dataset.classes, dataset.class_names, dataset
    if classes_file:
        try:
            text = Path(classes_file).read_text(encoding="utf-8")
        except UnicodeDecodeError:
            raise AlexNetError(f"{classes_file}: not a text file (UTF-8); give the class names, one per line") from None
        except OSError as exc:
            raise AlexNetError(f"{classes_file}: cannot read the class list ({exc.strerror or exc})") from None
        names = [line.strip() for line in text.splitlines() if line.strip()]
        if len(names) != num_outputs:
            raise AlexNetError(f"{classes_file}: {len(names)} class names, the weights have {num_outputs} outputs")
        return names, names, None
    names = [str(i) for i in range(num_outputs)]
    return names, names, None


def convert_torchvision(weights: str, out: str, data: str | None = None, classes_file: str | None = None,
                        log=print) -> Path:
    """Write RUN/last.pt (`out`) holding the torchvision network of `weights`; returns its path."""
    out_dir = Path(out)
    if (out_dir / LAST).exists():
        raise AlexNetError(f"{out_dir / LAST} exists; choose a new --out")
    state = read_state_dict(weights)
    if "classifier.6.weight" not in state:
        raise AlexNetError(f"{weights}: no classifier.6.weight; not torchvision AlexNet weights "
                           f"(first keys: {', '.join(list(state)[:4])})")
    num_outputs = int(state["classifier.6.weight"].shape[0])
    classes, class_names, dataset = _classes(num_outputs, data, classes_file)

    preset = get_preset("torchvision")
    stored = dataset.size if dataset is not None else DEFAULT_STORED_SIZE
    try:
        model_cfg = replace(preset.model, input_size=crop_size_for(stored, preset.recipe.crop_fraction))
        model = build_network(model_cfg, num_outputs)
    except ValueError as exc:
        raise AlexNetError(f"dataset {data}: its {stored} px images are too small for torchvision's AlexNet "
                           f"({exc})") from None
    _load_exactly(model, state, weights)

    training_mean = np.zeros((stored, stored, 3), np.float32)  # only its shape is used
    payload = {
        "preset": preset.name, "model_config": to_dict(model_cfg), "recipe": to_dict(preset.recipe),
        "classes": classes, "class_names": class_names, "ablations": [], "data_size": stored,
        "mean_image": torch.from_numpy(mean_image_for(model_cfg, training_mean)),
        "model": model.state_dict(), "history": [], "epoch": 0, "seed": 0,
        "converted_from": str(Path(weights).resolve()),
    }
    if dataset is not None:
        payload.update(data=str(dataset.root.resolve()), data_fingerprint=dataset.fingerprint)
    out_dir.mkdir(parents=True, exist_ok=True)
    save_checkpoint(out_dir / LAST, payload)
    n = sum(v.numel() for v in state.values())
    log(f"{out_dir / LAST}: torchvision AlexNet from {weights} ({len(state)} tensors, {n:,} parameters, "
        f"{num_outputs} classes, {model_cfg.input_size} px crops of {stored} px images)")
    return out_dir / LAST


def _load_exactly(model: AlexNet, state: dict[str, torch.Tensor], weights: str) -> None:
    mine = model.state_dict()
    missing = [k for k in mine if k not in state]
    extra = [k for k in state if k not in mine]
    if missing or extra:
        raise AlexNetError(f"{weights}: keys differ from torchvision's AlexNet (missing: {', '.join(missing) or '-'}; "
                           f"unexpected: {', '.join(extra) or '-'})")
    for k, v in state.items():
        if tuple(v.shape) != tuple(mine[k].shape):
            raise AlexNetError(f"{weights}: {k} has shape {tuple(v.shape)}, torchvision's AlexNet has "
                               f"{tuple(mine[k].shape)}")
        if not v.is_floating_point() or not torch.isfinite(v).all():
            raise AlexNetError(f"{weights}: {k} holds {'non-finite values' if v.is_floating_point() else v.dtype}")
    model.load_state_dict({k: v.float() for k, v in state.items()})
