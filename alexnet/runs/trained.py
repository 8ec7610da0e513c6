"""A trained network ready for inference: rebuilt from its checkpoint, with the preprocessing it was
trained with (its own training mean image), checked against the dataset it is shown."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from ..config import model_config_from_dict, recipe_from_dict
from ..data.augment import EvalViews, crop_size_for
from ..data.prepared import PreparedDataset
from ..device import resolve_device
from ..errors import AlexNetError, ConfigError
from ..model import AlexNet, build_network
from .checkpoint import load_checkpoint


def model_from_checkpoint(ckpt: dict[str, Any]) -> AlexNet:
    """The network a checkpoint describes, with its weights loaded."""
    try:
        model = build_network(model_config_from_dict(ckpt["model_config"]), num_classes=len(ckpt["classes"]))
        model.load_state_dict(ckpt["model"])
    except ConfigError as exc:
        raise AlexNetError(f"{ckpt.get('path', 'checkpoint')}: {exc}") from None
    except (RuntimeError, KeyError, TypeError, ValueError) as exc:
        first = str(exc).strip().splitlines()[0]
        raise AlexNetError(f"{ckpt.get('path', 'checkpoint')}: weights do not fit the network it "
                           f"describes ({first})") from None
    return model


def check_classes(ckpt: dict[str, Any], dataset: PreparedDataset) -> None:
    if list(ckpt["classes"]) != dataset.classes:
        raise AlexNetError(f"{ckpt['path']}: the network knows {len(ckpt['classes'])} classes, dataset "
                           f"{dataset.root} has {dataset.num_classes} (or other names)")


def checkpoint_test_views(ckpt: dict[str, Any], dataset: PreparedDataset, dev: torch.device) -> EvalViews:
    """Test-time preprocessing for a checkpoint's network on `dataset`: its own training mean image."""
    recipe = recipe_from_dict(ckpt.get("recipe", {}))
    crop = ckpt["model_config"]["input_size"]
    if crop_size_for(dataset.size, recipe.crop_fraction) != crop or dataset.size < crop:
        raise AlexNetError(f"{ckpt['path']}: the network takes {crop} px crops, dataset {dataset.root} "
                           f"stores {dataset.size} px images")
    # The network's own training mean (stored in the checkpoint), whatever dataset it is tested on.
    mean = ckpt["mean_image"].numpy() if "mean_image" in ckpt else dataset.mean_image
    if mean.shape != dataset.mean_image.shape:
        raise AlexNetError(f"{ckpt['path']}: trained on {mean.shape[0]} px images, dataset {dataset.root} "
                           f"stores {dataset.size} px")
    return EvalViews(mean, crop, recipe.mean_crop, dev)


def file_test_views(ckpt: dict[str, Any], dev: torch.device) -> EvalViews:
    """Test-time preprocessing for image files (no dataset): the checkpoint's mean image and crop."""
    if "mean_image" not in ckpt or "data_size" not in ckpt:
        raise AlexNetError(f"{ckpt['path']}: no training mean image in this checkpoint; cannot preprocess")
    recipe = recipe_from_dict(ckpt.get("recipe", {}))
    return EvalViews(ckpt["mean_image"].numpy(), int(ckpt["model_config"]["input_size"]), recipe.mean_crop, dev)


@dataclass
class Trained:
    """A checkpoint's network with the dataset and preprocessing it is shown on."""
    ckpt: dict[str, Any]
    model: nn.Module
    dataset: PreparedDataset
    views: EvalViews
    names: list[str]


def load_trained(run: str, data: str | None = None, device: str | None = None) -> Trained:
    """A run's (or checkpoint's) network in inference mode on `data` (default: the dataset it trained on)."""
    ckpt = load_checkpoint(run)
    dev = resolve_device(device)
    dataset = PreparedDataset(data or ckpt.get("data", ""))
    check_classes(ckpt, dataset)
    model = model_from_checkpoint(ckpt).to(dev).eval()
    return Trained(ckpt, model, dataset, checkpoint_test_views(ckpt, dataset, dev), dataset.class_names)
