"""Top-1 / top-5 error with centre-patch or ten-patch testing (Section 4.1, end).

Ten-patch testing averages the softmax outputs of the four corner patches, the centre patch and
their reflections. The same function serves validation during training (centre patch, for speed)
and `alexnet evaluate`.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from ..config import recipe_from_dict
from ..data.augment import Preprocessor, center_view, crop_size_for, ten_crop_views
from ..data.loader import EvalBatches, make_loader
from ..data.prepared import PreparedDataset
from ..device import resolve_device
from ..errors import AlexNetError
from ..progress import Progress
from ..training.checkpoint import load_checkpoint, model_from_checkpoint

TTA_MODES = ("center", "10crop")


def views_for(tta: str, stored: int, crop: int) -> list[tuple[int, int, bool]]:
    if tta == "center":
        return center_view(stored, crop)
    if tta == "10crop":
        return ten_crop_views(stored, crop)
    raise ValueError(f"unknown test-time mode {tta!r}; choose from {', '.join(TTA_MODES)}")


@torch.no_grad()
def predict_probabilities(model: nn.Module, dataset: PreparedDataset, preprocessor: Preprocessor,
                          split: str = "val", tta: str = "center", batch_size: int = 128,
                          workers: int = 0, progress: bool = False, rank: int = 0,
                          world_size: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    """Softmax outputs averaged over the test views, (N, classes) on the CPU, and the labels.

    With `world_size` > 1, only this rank's share of the images (see `loader._Batches`).
    """
    views = views_for(tta, dataset.size, preprocessor.crop)
    batches = EvalBatches(dataset.root / dataset.manifest["splits"][split]["images"], dataset.labels[split],
                          batch_size, rank, world_size)
    was_training = model.training
    model.eval()
    probs, labels = [], []
    bar = Progress(len(dataset.labels[split]), f"evaluate ({tta})", enabled=progress)
    try:
        for images, y in make_loader(batches, workers, preprocessor.device):
            total = None
            for x in preprocessor.test_views(images, views):
                p = torch.softmax(model(x).float(), dim=1)
                total = p if total is None else total + p
            probs.append((total / len(views)).cpu())
            labels.append(y)
            bar.update(len(y))
    finally:
        model.train(was_training)
    bar.close()
    return torch.cat(probs), torch.cat(labels)


def topk_hits(probs: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """(top-1 hits, top-5 hits, images) as a float64 tensor, to be summed over ranks if need be.

    Top-5 is top-k with k = min(5, classes).
    """
    k = min(5, probs.shape[1])
    hit = probs.topk(k, dim=1).indices == labels[:, None]
    return torch.tensor([hit[:, 0].sum().item(), hit.any(dim=1).sum().item(), len(labels)], dtype=torch.float64)


def errors_from_hits(hits: torch.Tensor) -> dict[str, Any]:
    top1, top5, n = hits.tolist()
    n = max(1.0, n)
    return {"top1_error": 1.0 - top1 / n, "top5_error": 1.0 - top5 / n, "images": int(hits[2])}


def topk_errors(probs: torch.Tensor, labels: torch.Tensor) -> dict[str, Any]:
    """Top-1 and top-5 error as fractions (top-5 is top-k with k = min(5, classes))."""
    return errors_from_hits(topk_hits(probs, labels))


def checkpoint_preprocessor(ckpt: dict[str, Any], dataset: PreparedDataset, dev: torch.device) -> Preprocessor:
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
    return Preprocessor(mean, dataset.eigenvalues, dataset.eigenvectors, crop, recipe.mean_crop, dev)


def evaluate_checkpoints(runs: list[str], data: str | None = None, tta: str = "10crop", device: str | None = None,
                         batch_size: int | None = None, workers: int = 0, progress: bool = False,
                         split: str = "val") -> dict[str, Any]:
    """Top-1/top-5 error of one network, or of several whose softmax outputs are averaged (Section 6's
    "5 CNNs"), on a prepared dataset's `split`. `data` defaults to the dataset the first run trained on.
    """
    if tta not in TTA_MODES:
        raise AlexNetError(f"--tta must be one of {', '.join(TTA_MODES)}, got {tta!r}")
    if batch_size is not None and batch_size < 1:
        raise AlexNetError(f"--batch-size must be at least 1, got {batch_size}")
    if not runs:
        raise AlexNetError("no run or checkpoint to evaluate")
    checkpoints = [load_checkpoint(r) for r in runs]
    dev = resolve_device(device)
    dataset = PreparedDataset(data or checkpoints[0].get("data", ""))
    if split not in dataset.labels:
        raise AlexNetError(f"{dataset.root}: no {split!r} split (it has {', '.join(dataset.labels)})")
    total, labels = None, None
    for ckpt in checkpoints:
        if list(ckpt["classes"]) != dataset.classes:
            raise AlexNetError(f"{ckpt['path']}: the network knows {len(ckpt['classes'])} classes, dataset "
                               f"{dataset.root} has {dataset.num_classes} (or other names)")
        pre = checkpoint_preprocessor(ckpt, dataset, dev)
        model = model_from_checkpoint(ckpt).to(dev)
        eval_batch = batch_size or recipe_from_dict(ckpt.get("recipe", {})).eval_batch_size
        probs, labels = predict_probabilities(model, dataset, pre, split, tta, eval_batch, workers, progress)
        total = probs if total is None else total + probs
    result = topk_errors(total / len(checkpoints), labels)
    return {**result, "tta": tta, "split": split, "networks": len(checkpoints),
            "checkpoint": ", ".join(c["path"] for c in checkpoints), "data": str(dataset.root)}


def evaluate_checkpoint(run_or_checkpoint: str, data: str | None = None, tta: str = "10crop",
                        device: str | None = None, batch_size: int | None = None, workers: int = 0,
                        progress: bool = False, split: str = "val") -> dict[str, Any]:
    """Top-1/top-5 error of a run's (or checkpoint's) network on a prepared dataset's split."""
    return evaluate_checkpoints([run_or_checkpoint], data, tta, device, batch_size, workers, progress, split)
