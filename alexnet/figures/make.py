"""`alexnet figures RUN`: write the paper's pictures for a trained run.

- kernels.png: Figure 3, the conv1 kernels, one block per column, with each column's colour specificity;
- predictions.png: Figure 4 left, validation images with their top-5 labels (ten-patch softmax);
- neighbors.png: Figure 4 right, query images and the training images nearest in the last hidden layer;
- curves.png: the run's learning curves.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from ..data.augment import Preprocessor
from ..data.prepared import PreparedDataset
from ..device import resolve_device
from ..errors import AlexNetError
from ..evaluation.evaluate import checkpoint_preprocessor, views_for
from ..progress import Progress
from ..training.checkpoint import load_checkpoint, model_from_checkpoint, resolve_checkpoint
from .curves import curves_figure, read_metrics
from .draw import save_png
from .kernels import kernels_figure
from .neighbors import nearest, neighbors_figure
from .predictions import predictions_figure


@dataclass
class Trained:
    """A checkpoint's network with the dataset and preprocessing it is shown on."""
    ckpt: dict[str, Any]
    model: nn.Module
    dataset: PreparedDataset
    pre: Preprocessor
    names: list[str]


def load_trained(run: str, data: str | None = None, device: str | None = None) -> Trained:
    ckpt = load_checkpoint(run)
    dev = resolve_device(device)
    dataset = PreparedDataset(data or ckpt.get("data", ""))
    if list(ckpt["classes"]) != dataset.classes:
        raise AlexNetError(f"{ckpt['path']}: the network knows {len(ckpt['classes'])} classes, dataset "
                           f"{dataset.root} has {dataset.num_classes} (or other names)")
    model = model_from_checkpoint(ckpt).to(dev).eval()
    return Trained(ckpt, model, dataset, checkpoint_preprocessor(ckpt, dataset, dev), dataset.class_names)


@torch.no_grad()
def outputs(trained: Trained, split: str, indices: np.ndarray, tta: str = "center", features: bool = False,
            batch_size: int = 128, progress: bool = False) -> torch.Tensor:
    """Softmax outputs averaged over the test views (or, with `features`, the last hidden layer's
    activations of the centre patch) for the chosen images of a split, on the CPU."""
    images = trained.dataset.images[split]
    views = views_for("center" if features else tta, trained.dataset.size, trained.pre.crop)
    result = []
    bar = Progress(len(indices), f"{'features' if features else 'predictions'} ({split})", enabled=progress)
    for start in range(0, len(indices), batch_size):
        chunk = indices[start:start + batch_size]
        batch = torch.from_numpy(np.asarray(images[chunk]))  # in the caller's order
        total = None
        for x in trained.pre.test_views(batch, views):
            out = trained.model.forward_features(x) if features else torch.softmax(trained.model(x).float(), 1)
            total = out.float() if total is None else total + out.float()
        result.append((total / len(views)).cpu())
        bar.update(len(chunk))
    bar.close()
    return torch.cat(result) if result else torch.empty(0)


def _pick(count: int, available: int, seed: int) -> np.ndarray:
    return np.sort(np.random.default_rng(seed).choice(available, size=min(count, available), replace=False))


def make_figures(run: str, out: str | Path, data: str | None = None, device: str | None = None,
                 predictions: int = 8, queries: int = 5, neighbors: int = 6, pool: int = 10000,
                 seed: int = 0, progress: bool = False, log=print) -> dict[str, Any]:
    """Write kernels.png, predictions.png, neighbors.png and curves.png into `out`; return what they show."""
    out = Path(out)
    trained = load_trained(run, data, device)
    dataset, names = trained.dataset, trained.names
    result: dict[str, Any] = {"files": {}}
    display_scale = max(1, 96 // dataset.size)

    # Figure 3. The columns are the network's (conv1's maps are split between them in order).
    conv1 = next(m for m in trained.model.features if isinstance(m, nn.Conv2d))
    columns = max(spec.groups for spec in trained.model.cfg.convs)
    image, specificity = kernels_figure(conv1.weight.detach().float().cpu().numpy(), columns)
    result["files"]["kernels"] = save_png(image, out / "kernels.png")
    result["colour_specificity"] = specificity
    log(f"kernels.png: {conv1.out_channels} conv1 kernels in {columns} column(s); colour specificity per column "
        f"(0 = the same in R, G and B): {', '.join(f'{s:.3f}' for s in specificity)}")

    # Figure 4, left: ten-patch predictions of a random sample of validation images.
    val = dataset.images["val"]
    picked = _pick(predictions, len(val), seed)
    probs = outputs(trained, "val", picked, tta="10crop", progress=progress)
    k = min(5, len(names))
    tops, ranks, truths = [], [], []
    for row, index in zip(probs, picked):
        top = row.topk(k)
        label = int(dataset.labels["val"][index])
        ids = top.indices.tolist()
        tops.append([(names[i], float(p)) for p, i in zip(top.values.tolist(), ids)])
        ranks.append(ids.index(label) if label in ids else None)
        truths.append(names[label])
    image = predictions_figure([np.asarray(val[i]) for i in picked], truths, tops, ranks)
    result["files"]["predictions"] = save_png(image, out / "predictions.png")
    result["predictions_top1_correct"] = sum(r == 0 for r in ranks)
    log(f"predictions.png: {len(picked)} validation images, {result['predictions_top1_correct']} right at top-1, "
        f"{sum(r is not None for r in ranks)} within the top {k}")

    # Figure 4, right: nearest training images in the last hidden layer (Euclidean distance).
    train = dataset.images["train"]
    pool_ids = _pick(pool, len(train), seed + 1)
    query_ids = _pick(queries, len(val), seed + 2)
    pool_features = outputs(trained, "train", pool_ids, features=True, progress=progress)
    query_features = outputs(trained, "val", query_ids, features=True)
    _, found = nearest(query_features, pool_features, neighbors)
    image = neighbors_figure([np.asarray(val[i]) for i in query_ids],
                             [[np.asarray(train[pool_ids[j]]) for j in row.tolist()] for row in found],
                             scale=display_scale)
    result["files"]["neighbors"] = save_png(image, out / "neighbors.png")
    same = [float(np.mean([dataset.labels["train"][pool_ids[j]] == dataset.labels["val"][q] for j in row.tolist()]))
            for q, row in zip(query_ids, found)]
    result["neighbors_same_class"] = float(np.mean(same)) if same else 0.0
    log(f"neighbors.png: {len(query_ids)} queries x {found.shape[1]} nearest of {len(pool_ids)} training images "
        f"({pool_features.shape[1]}-d last hidden layer); {result['neighbors_same_class']:.0%} share the query's class")

    run_dir = resolve_checkpoint(run).parent
    if (run_dir / "metrics.csv").is_file():
        rows = read_metrics(run_dir)
        result["files"]["curves"] = save_png(curves_figure(rows, str(trained.ckpt.get("preset", ""))),
                                             out / "curves.png")
        log(f"curves.png: {len(rows)} epochs from {run_dir / 'metrics.csv'}")
    return result
