"""`alexnet relu-tanh`: Figure 1, the four-layer net trained with ReLUs and with tanh units.

The paper: with ReLUs the net reaches 25% training error on CIFAR-10 six times faster than with tanh;
each net's learning rate chosen for speed; no regularisation of any kind (no weight decay, no dropout,
no augmentation). Here both nets start from the same weights, see the same batches in the same order,
and the training error of each epoch is the error on its own minibatches as training went, as in the
figure. Writes OUT/relu_tanh.csv, OUT/relu_tanh.png (with an SVG copy) and OUT/relu_tanh.md.
"""

from __future__ import annotations

import csv
import math
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from matplotlib.figure import Figure

from ..data.prepared import PreparedDataset
from ..device import resolve_device
from ..errors import AlexNetError
from ..files import atomic_file, refuse_to_replace_foreign_outputs, write_text
from ..drawing.charts import Line, Panel, line_chart, save_chart
from ..drawing.draw import SOFTWARE
from ..model.cifar_net import FourLayerNet
from ..progress import Progress
from ..training.optim import PaperSGD

PAPER_SPEEDUP = 6.0
# Chosen as the paper did, each for speed: on the demo's data (2,000 images at 32 px, batch 128, 8 epochs)
# we tried 0.003, 0.01, 0.03 and 0.1 for both nets. Training error after 8 epochs, ReLU: 36%, 74%
# (oscillating), 57%, 86%; tanh: 87%, 78%, 59%, 86%. So ReLU 0.003 and tanh 0.03. On CIFAR-10 (390
# steps per epoch instead of 16) other rates may be faster: --lr-relu / --lr-tanh.
DEFAULT_LR = {"relu": 0.003, "tanh": 0.03}
MAX_STORED_SIZE = 64  # the whole training split is held in memory as uint8


def _train_one(activation: str, images: torch.Tensor, labels: torch.Tensor, mean: torch.Tensor, num_classes: int,
               lr: float, epochs: int, batch_size: int, target: float, seed: int, dev: torch.device,
               run_all: bool, progress: bool, log) -> list[float]:
    torch.manual_seed(seed)  # the same initial draws for both activations
    model = FourLayerNet(activation, num_classes, images.shape[1]).to(dev)
    optimizer = PaperSGD(model.parameters(), lr=lr, momentum=0.9, weight_decay=0.0)
    errors: list[float] = []
    n = len(labels)
    for epoch in range(1, epochs + 1):
        order = torch.from_numpy(np.random.default_rng((seed, epoch)).permutation(n))
        wrong = torch.zeros((), device=dev)
        bar = Progress(n, f"{activation} epoch {epoch}", enabled=progress)
        for start in range(0, n, batch_size):
            idx = order[start:start + batch_size]
            x = (images[idx].to(dev, non_blocking=True).float() - mean).permute(0, 3, 1, 2)
            y = labels[idx].to(dev, non_blocking=True)
            logits = model(x)
            loss = F.cross_entropy(logits, y)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            wrong += (logits.detach().argmax(1) != y).sum()
            bar.update(len(idx))
        bar.close()
        error = wrong.item() / n
        if not math.isfinite(loss.item()):
            raise AlexNetError(f"{activation} net diverged in epoch {epoch} at lr {lr}; give a lower --lr-{activation}")
        errors.append(error)
        log(f"{activation} epoch {epoch}: training error {error:.2%}")
        if error <= target and not run_all:
            break
    return errors


def figure_1_chart(curves: dict[str, list[float]], target: float) -> Figure:
    """The paper's Figure 1: training error against epochs, ReLU solid, tanh dashed, the target marked."""
    lines = [Line(name, list(range(1, len(curves[act]) + 1)), [100 * e for e in curves[act]], dashed=act == "tanh")
             for act, name in (("relu", "ReLU"), ("tanh", "tanh"))]
    panel = Panel("", "epochs", "training error rate (%)", lines, ylim=(0, 100),
                  reference=(100 * target, f"target: {target:.0%} training error"))
    return line_chart([panel], "Figure 1: four-layer net, ReLU (solid) against tanh (dashed)", panel_size=(7, 4.5))


def epochs_to_reach(errors: list[float], target: float) -> int | None:
    """The first epoch (1-based) whose training error is at or below `target`, or None."""
    return next((i + 1 for i, e in enumerate(errors) if e <= target), None)


# The first words of each file written, by which a result of ours is told from a user's file of its name.
TITLE = "# Figure 1: ReLU against tanh on "
CSV_HEADER = ["epoch", "relu_train_error", "tanh_train_error"]
OUTPUTS = {"relu_tanh.csv": (",".join(CSV_HEADER), "a table"), "relu_tanh.md": (TITLE, "a table"),
           "relu_tanh.png": (SOFTWARE, "a chart"), "relu_tanh.svg": (SOFTWARE, "a chart")}


def run_relu_tanh(data: str | Path, out: str | Path, epochs: int = 40, batch_size: int = 128, target: float = 0.25,
                  lr_relu: float | None = None, lr_tanh: float | None = None, seed: int = 0,
                  device: str | None = None, run_all: bool = False, progress: bool = True, log=print,
                  force: bool = False) -> dict[str, Any]:
    if epochs < 1 or batch_size < 1:
        raise AlexNetError("--epochs and --batch-size must be at least 1")
    if not 0 < target < 1:
        raise AlexNetError(f"--target must be a training error between 0 and 1, got {target}")
    dataset = PreparedDataset(data)
    if dataset.size > MAX_STORED_SIZE:
        raise AlexNetError(f"{dataset.root}: images stored at {dataset.size} px; Figure 1's net is for small images "
                           f"(prepare at --size 32, as CIFAR-10 is)")
    out = Path(out)
    if not force:  # before any training: a results file of these names that is not ours stays
        refuse_to_replace_foreign_outputs(out, OUTPUTS)
    out.mkdir(parents=True, exist_ok=True)
    dev = resolve_device(device)
    images = torch.from_numpy(dataset.read("train", np.arange(len(dataset.labels["train"]))))  # in memory
    labels = torch.from_numpy(dataset.labels["train"].astype(np.int64))
    if dev.type == "cuda":
        images, labels = images.pin_memory(), labels.pin_memory()
    mean = torch.from_numpy(dataset.mean_image).float().to(dev)
    lrs = {"relu": lr_relu or DEFAULT_LR["relu"], "tanh": lr_tanh or DEFAULT_LR["tanh"]}
    log(f"Figure 1 on {dataset.root}: {len(labels)} training images, {dataset.num_classes} classes, "
        f"{dataset.size}x{dataset.size}, batch {batch_size}, target {target:.0%} training error, "
        f"lr ReLU {lrs['relu']}, tanh {lrs['tanh']}, no regularisation, {dev}")
    curves = {act: _train_one(act, images, labels, mean, dataset.num_classes, lrs[act], epochs, batch_size, target,
                              seed, dev, run_all, progress, log) for act in ("relu", "tanh")}
    reached = {act: epochs_to_reach(errs, target) for act, errs in curves.items()}
    ratio = reached["tanh"] / reached["relu"] if reached["relu"] and reached["tanh"] else None

    with atomic_file(out / "relu_tanh.csv", "w", what="table") as f:
        writer = csv.writer(f)
        writer.writerow(CSV_HEADER)
        for e in range(max(len(c) for c in curves.values())):
            writer.writerow([e + 1] + [f"{c[e]:.6f}" if e < len(c) else "" for c in curves.values()])
    png = save_chart(figure_1_chart(curves, target), out / "relu_tanh.png")

    def said(act: str) -> str:
        return f"{reached[act]}" if reached[act] else f"not within {len(curves[act])}"

    verdict = (f"**{ratio:.1f}x** as many epochs with tanh (the paper: about {PAPER_SPEEDUP:.0f}x)" if ratio else
               "the ratio is undefined: a net did not reach the target (raise --epochs)")
    lines = [f"{TITLE}{dataset.root}", "",
             "| units | learning rate | epochs to reach {:.0%} training error |".format(target),
             "| --- | --- | --- |",
             f"| ReLU | {lrs['relu']} | {said('relu')} |", f"| tanh | {lrs['tanh']} | {said('tanh')} |", "",
             f"Ratio: {verdict}.", "", f"Curves: `{png.name}`, per-epoch values: `relu_tanh.csv`."]
    write_text(out / "relu_tanh.md", "\n".join(lines) + "\n", what="table")
    log("\n".join(lines))
    return {"epochs_to_target": reached, "ratio": ratio, "curves": curves, "lrs": lrs,
            "files": [out / "relu_tanh.csv", png, png.with_suffix(".svg"), out / "relu_tanh.md"]}
