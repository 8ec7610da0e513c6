"""The one inference routine: test views of uint8 images -> the softmax averaged over the views.

Ten-patch testing (Section 4.1, end) averages the softmax outputs of the four corner patches, the
centre patch and their reflections; centre-patch testing uses one view. `view_outputs` does it for
one batch; evaluation, validation during training, `predict`, the figures and retrieval all call it.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn

from ..data.augment import EvalViews, views_for
from ..data.loader import EvalBatches, make_loader
from ..data.prepared import PreparedDataset
from ..progress import Progress
from .trained import Trained


@torch.no_grad()
def view_outputs(model: nn.Module, test_views: EvalViews, images: torch.Tensor, views: list[tuple[int, int, bool]],
                 features: bool = False) -> torch.Tensor:
    """Softmax outputs (float32) of uint8 images (B, S, S, 3) averaged over `views`, on the device; with
    `features`, the last hidden layer's activations averaged instead."""
    total = None
    for x in test_views(images, views):
        out = model.forward_features(x) if features else torch.softmax(model(x).float(), dim=1)
        total = out.float() if total is None else total + out.float()
    return total / len(views)


@torch.no_grad()
def predict_probabilities(model: nn.Module, dataset: PreparedDataset, test_views: EvalViews,
                          split: str = "val", tta: str = "center", batch_size: int = 128,
                          workers: int = 0, progress: bool = False, rank: int = 0,
                          world_size: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    """Averaged softmax outputs of a whole split, (N, classes) on the CPU, and the labels.

    With `world_size` > 1, only this rank's share of the images (see `loader._Batches`).
    """
    views = views_for(tta, dataset.size, test_views.crop)
    batches = EvalBatches(dataset.images[split], dataset.labels[split],
                          batch_size, rank, world_size)
    was_training = model.training
    model.eval()
    probs, labels = [], []
    bar = Progress(len(dataset.labels[split]), f"evaluate ({tta})", enabled=progress)
    try:
        for batch in make_loader(batches, workers, test_views.device):
            probs.append(view_outputs(model, test_views, batch.images, views).cpu())
            labels.append(batch.labels)
            bar.update(len(batch.labels))
    finally:
        model.train(was_training)
    bar.close()
    return torch.cat(probs), torch.cat(labels)


@torch.no_grad()
def outputs(trained: Trained, split: str, indices: np.ndarray, tta: str = "center", features: bool = False,
            batch_size: int = 128, progress: bool = False) -> torch.Tensor:
    """`view_outputs` for chosen images of a split, in the given order, on the CPU (features: centre patch)."""
    images = trained.dataset.images[split]
    views = views_for("center" if features else tta, trained.dataset.size, trained.views.crop)
    result = []
    bar = Progress(len(indices), f"{'features' if features else 'predictions'} ({split})", enabled=progress)
    for start in range(0, len(indices), batch_size):
        chunk = indices[start:start + batch_size]
        batch = torch.from_numpy(np.asarray(images[chunk]))
        result.append(view_outputs(trained.model, trained.views, batch, views, features).cpu())
        bar.update(len(chunk))
    bar.close()
    return torch.cat(result) if result else torch.empty(0)


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
