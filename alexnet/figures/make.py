"""`alexnet figures RUN`: write the paper's pictures for a trained run.

- kernels.png: Figure 3, the conv1 kernels, one block per column, with each column's colour specificity
  beside that of the same network freshly initialised;
- predictions.png: Figure 4 left, validation images with their top-5 labels (ten-patch softmax);
- neighbors.png: Figure 4 right, query images and the training images nearest in the last hidden layer;
- curves.png: the run's learning curves, with curves.svg beside it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from ..drawing.charts import save_chart
from ..drawing.curves import curves_figure
from ..drawing.draw import SOFTWARE, save_png
from ..drawing.kernels import colour_specificity, kernels_figure
from ..drawing.neighbors import nearest, neighbors_figure
from ..drawing.predictions import predictions_figure
from ..errors import AlexNetError
from ..files import refuse_to_replace_foreign_outputs
from ..runs.checkpoint import resolve_checkpoint
from ..runs.inference import outputs
from ..model import build_network
from ..runs.trained import Trained, load_trained
from ..runs.writer import METRICS, read_metrics


def _pick(count: int, available: int, seed: int) -> np.ndarray:
    return np.sort(np.random.default_rng(seed).choice(available, size=min(count, available), replace=False))


def _conv1(model: nn.Module) -> nn.Conv2d:
    return next(m for m in model.features if isinstance(m, nn.Conv2d))


def _initial_network(trained: Trained) -> nn.Module:
    """The run's network as training began: its config, initialised from its seed (as `train` does), without
    touching the caller's random state. (A fine-tuned run began from other weights; this is still the
    reference for what initialisation alone gives.)"""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(int(trained.ckpt.get("seed", 0)))
        return build_network(trained.model.cfg, len(trained.names))


FIGURE_FILES = {name: (SOFTWARE, "a picture")
                for name in ("kernels.png", "predictions.png", "neighbors.png", "curves.png", "curves.svg")}


def make_figures(run: str, out: str | Path, data: str | None = None, device: str | None = None,
                 predictions: int = 8, queries: int = 5, neighbors: int = 6, pool: int = 10000,
                 seed: int = 0, progress: bool = False, log=print, force: bool = False) -> dict[str, Any]:
    """Write kernels.png, predictions.png, neighbors.png and curves.png into `out`; return what they show.
    Pictures of ours there are replaced; a file of those names that is not ours only with `force`."""
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise AlexNetError(f"--out {out}: a file, not a folder for the pictures")
    if not force:
        refuse_to_replace_foreign_outputs(out, FIGURE_FILES)
    run_dir = resolve_checkpoint(run).parent
    rows = read_metrics(run_dir) if (run_dir / METRICS).is_file() else None  # a bad file fails before any drawing
    trained = load_trained(run, data, device)
    dataset, names = trained.dataset, trained.names
    result: dict[str, Any] = {"files": {}}

    # Figure 3. The columns are the network's (conv1's maps are split between them in order).
    conv1 = _conv1(trained.model)
    columns = max(spec.groups for spec in trained.model.cfg.convs)
    initial = _conv1(_initial_network(trained)).weight.detach().numpy()
    name = "/".join(run_dir.resolve().parts[-2:])
    title = f"conv1 kernels of {name} ({trained.ckpt.get('preset')}), after epoch {trained.ckpt.get('epoch')}"
    image, specificity = kernels_figure(conv1.weight.detach().float().cpu().numpy(), columns, initial=initial,
                                        title=title)
    result["files"]["kernels"] = save_png(image, out / "kernels.png")
    result["colour_specificity"] = specificity
    result["initial_colour_specificity"] = [float(colour_specificity(part).mean())
                                            for part in np.split(initial, columns)]
    log(f"kernels.png: {conv1.out_channels} conv1 kernels in {columns} column(s); colour specificity per column "
        f"(0 = the same in R, G and B): {', '.join(f'{s:.3f}' for s in specificity)}; the same network freshly "
        f"initialised: {', '.join(f'{s:.3f}' for s in result['initial_colour_specificity'])}")

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
                             [names[int(dataset.labels["val"][q])] for q in query_ids],
                             [[names[int(dataset.labels["train"][pool_ids[j]])] for j in row.tolist()] for row in found])
    result["files"]["neighbors"] = save_png(image, out / "neighbors.png")
    same = [float(np.mean([dataset.labels["train"][pool_ids[j]] == dataset.labels["val"][q] for j in row.tolist()]))
            for q, row in zip(query_ids, found)]
    result["neighbors_same_class"] = float(np.mean(same)) if same else 0.0
    log(f"neighbors.png: {len(query_ids)} queries x {found.shape[1]} nearest of {len(pool_ids)} training images "
        f"({pool_features.shape[1]}-d last hidden layer); {result['neighbors_same_class']:.0%} share the query's class")

    if rows is not None:
        chart = curves_figure(rows, str(trained.ckpt.get("preset", "")), classes=len(names))
        result["files"]["curves"] = save_chart(chart, out / "curves.png")
        log(f"curves.png (and curves.svg): {len(rows)} epoch(s) from {run_dir / 'metrics.csv'}")
    return result
