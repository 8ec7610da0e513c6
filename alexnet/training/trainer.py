"""`alexnet train`: the paper's recipe on a prepared dataset, one epoch at a time.

Each epoch: set the learning rates from the schedule, train on random crops with reflections and
colour noise, validate on the centre patch, log a row to metrics.csv, and write last.pt. Every
source of randomness (data order, crops, colour noise, dropout) is keyed by (seed, epoch), so a run
resumed from last.pt ends with the same weights as one that never stopped.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from ..config import Recipe, recipe_from_dict, to_dict
from ..data.augment import Preprocessor, crop_size_for
from ..data.loader import TrainBatches, make_loader
from ..data.prepared import PreparedDataset
from ..device import resolve_device
from ..errors import AlexNetError
from ..evaluation.evaluate import predict_probabilities, topk_errors
from ..model import AlexNet
from ..presets import get_preset
from ..progress import Progress
from .checkpoint import LAST, load_checkpoint, save_checkpoint
from .optim import PaperSGD
from .schedule import LearningRateSchedule, parameter_groups

METRICS_COLUMNS = ("epoch", "lr", "train_loss", "train_top1_error", "val_top1_error", "val_top5_error", "seconds")


@dataclass
class TrainSettings:
    data: Path
    out: Path
    preset: str = "paper"
    epochs: int | None = None        # None: the preset's
    batch_size: int | None = None
    lr: float | None = None
    seed: int = 0
    device: str | None = None        # None: cuda if available, else cpu
    resume: bool = False
    workers: int | None = None       # None: a default for the device
    progress: bool = True
    log: Any = None                  # a callable taking one line of text; None: print


def epoch_seed(seed: int, epoch: int) -> int:
    """The torch seed for one epoch's dropout masks."""
    return int(np.random.SeedSequence((seed, epoch, 0x5EED)).generate_state(1)[0])


def _check_settings(s: TrainSettings) -> None:
    for flag, value in (("--epochs", s.epochs), ("--batch-size", s.batch_size)):
        if value is not None and value < 1:
            raise AlexNetError(f"{flag} must be at least 1, got {value}")
    if s.lr is not None and not (s.lr > 0 and math.isfinite(s.lr)):
        raise AlexNetError(f"--lr must be a positive number, got {s.lr}")
    if s.workers is not None and s.workers < 0:
        raise AlexNetError(f"--workers must be 0 or more, got {s.workers}")
    data, out = Path(s.data).resolve(), Path(s.out).resolve()
    if out == data or data in out.parents:
        raise AlexNetError(f"--out {s.out}: the run folder must not be inside the dataset folder {s.data}")


def write_metrics_csv(path: Path, history: list[dict[str, Any]]) -> None:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=METRICS_COLUMNS, lineterminator="\n")
    writer.writeheader()
    for row in history:
        writer.writerow({k: row[k] for k in METRICS_COLUMNS})
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(buf.getvalue())
    os.replace(tmp, path)


def _resume_state(s: TrainSettings, dataset: PreparedDataset) -> dict[str, Any]:
    ckpt = load_checkpoint(Path(s.out) / LAST)
    where = ckpt["path"]
    if ckpt["preset"] != s.preset:
        raise AlexNetError(f"{where}: checkpoint is from preset {ckpt['preset']!r}, not {s.preset!r}")
    if list(ckpt["classes"]) != dataset.classes:
        raise AlexNetError(f"{where}: checkpoint was trained on {len(ckpt['classes'])} classes, "
                           f"dataset {dataset.root} has {dataset.num_classes} (or other names)")
    if ckpt.get("data_size") != dataset.size:
        raise AlexNetError(f"{where}: checkpoint was trained on {ckpt.get('data_size')} px images, "
                           f"dataset {dataset.root} holds {dataset.size} px")
    return ckpt


def train(s: TrainSettings) -> dict[str, Any]:
    """Train (or resume) a run; return its last metrics row, with `stopped_because`."""
    log = s.log or print
    _check_settings(s)
    device = resolve_device(s.device)
    dataset = PreparedDataset(s.data)
    preset = get_preset(s.preset)
    out = Path(s.out)
    if not s.resume and (out / LAST).exists():
        raise AlexNetError(f"{out / LAST} exists: pass --resume to continue that run, or choose a new --out")
    if s.resume and not (out / LAST).exists():
        raise AlexNetError(f"--resume: no checkpoint {out / LAST} to resume from")

    ckpt = _resume_state(s, dataset) if s.resume else None
    recipe: Recipe = recipe_from_dict(ckpt["recipe"]) if ckpt else preset.recipe
    overrides = {k: v for k, v in (("epochs", s.epochs), ("batch_size", s.batch_size), ("lr", s.lr)) if v is not None}
    if ckpt:  # a resumed run keeps its recipe; only the number of epochs may change
        ignored = sorted(k for k in overrides if k != "epochs" and overrides[k] != getattr(recipe, k))
        if ignored:
            log(f"note: resuming keeps the run's {', '.join(ignored)}; ignoring the new value(s)")
        overrides = {k: v for k, v in overrides.items() if k == "epochs"}
    recipe = replace(recipe, **overrides)
    seed = int(ckpt["seed"]) if ckpt else s.seed

    crop = crop_size_for(dataset.size, recipe.crop_fraction)
    model_cfg = replace(preset.model, input_size=crop)
    torch.manual_seed(seed)
    try:
        model = AlexNet(model_cfg, dataset.num_classes)
    except ValueError as exc:
        raise AlexNetError(f"preset {preset.name!r} cannot take {crop} px crops of {dataset.size} px images "
                           f"({exc}); use a larger --size in prepare or another preset") from None
    model.to(device)
    optimizer = PaperSGD(parameter_groups(model, recipe), lr=recipe.lr, momentum=recipe.momentum,
                         weight_decay=recipe.weight_decay)
    schedule = LearningRateSchedule(recipe)
    history: list[dict[str, Any]] = []
    start_epoch = 1
    if ckpt:
        model.load_state_dict(ckpt["model"])
        optimizer.load_state_dict(ckpt["optimizer"])
        schedule.load_state_dict(ckpt["schedule"])
        history = list(ckpt["history"])
        start_epoch = int(ckpt["epoch"]) + 1
        if schedule.finished and start_epoch > recipe.epochs:
            log(f"{out}: this run already finished after epoch {ckpt['epoch']}; nothing to do")
            return {**history[-1], "stopped_because": "already finished"}
        schedule.finished = False

    out.mkdir(parents=True, exist_ok=True)
    run_config = {
        "preset": preset.name, "data": str(Path(s.data).resolve()), "data_fingerprint": dataset.fingerprint,
        "seed": seed, "device": str(device), "crop": crop, "classes": dataset.classes,
        "recipe": to_dict(recipe), "model_config": to_dict(model_cfg),
    }
    (out / "config.json").write_text(json.dumps(run_config, indent=1) + "\n")

    # On CPU the loader would compete with the training threads for the same cores (measured slower on
    # 2 cores: 30-45 s per demo epoch with one worker, 22 s without), so it runs in-process there.
    workers = s.workers if s.workers is not None else (min(8, os.cpu_count() or 1) if device.type == "cuda" else 0)
    batches = TrainBatches(dataset.root / dataset.manifest["splits"]["train"]["images"], dataset.labels["train"],
                           recipe.batch_size, crop, seed, recipe.pca_std, recipe.flip)
    pre = Preprocessor(dataset.mean_image, dataset.eigenvalues, dataset.eigenvectors, crop, recipe.mean_crop, device)
    n_params = sum(p.numel() for p in model.parameters())
    log(f"{'resuming' if ckpt else 'training'} preset {preset.name!r} ({n_params:,} parameters) on {device}: "
        f"{dataset.describe()}, crops {crop}x{crop}, batch {recipe.batch_size}, lr {recipe.lr}, "
        f"epochs {start_epoch}..{recipe.epochs}, seed {seed}")

    stopped_because = "reached --epochs"
    for epoch in range(start_epoch, recipe.epochs + 1):
        started = time.monotonic()
        lr = schedule.apply(optimizer, epoch)
        pca_on = not (recipe.pca_off_epoch and epoch >= recipe.pca_off_epoch)
        batches.set_epoch(epoch, recipe.pca_std if pca_on else 0.0)
        torch.manual_seed(epoch_seed(seed, epoch))
        train_loss, train_err = _train_epoch(model, optimizer, make_loader(batches, workers, device), pre,
                                             Progress(len(batches.labels), f"epoch {epoch}/{recipe.epochs}",
                                                      enabled=s.progress))
        if not math.isfinite(train_loss):
            raise AlexNetError(f"training diverged in epoch {epoch} (loss {train_loss}); the last good "
                               f"checkpoint {out / LAST} is kept; try a lower --lr")
        probs, labels = predict_probabilities(model, dataset, pre, "val", "center", recipe.eval_batch_size)
        val = topk_errors(probs, labels)
        row = {"epoch": epoch, "lr": lr, "train_loss": round(train_loss, 6), "train_top1_error": round(train_err, 6),
               "val_top1_error": round(val["top1_error"], 6), "val_top5_error": round(val["top5_error"], 6),
               "seconds": round(time.monotonic() - started, 2)}
        history.append(row)
        event = schedule.end_epoch(epoch, val["top1_error"])
        save_checkpoint(out / LAST, {
            "preset": preset.name, "model_config": to_dict(model_cfg), "recipe": to_dict(recipe),
            "classes": dataset.classes, "data": str(Path(s.data).resolve()), "data_size": dataset.size,
            "data_fingerprint": dataset.fingerprint, "seed": seed, "epoch": epoch,
            # The training mean travels with the weights: test-time inputs need exactly this mean.
            "mean_image": torch.from_numpy(dataset.mean_image),
            "model": model.state_dict(), "optimizer": optimizer.state_dict(), "schedule": schedule.state_dict(),
            "history": history,
        })
        write_metrics_csv(out / "metrics.csv", history)
        log(f"epoch {epoch}: lr {lr:g}  train loss {train_loss:.4f}  train top-1 err {train_err:.2%}  "
            f"val top-1 err {val['top1_error']:.2%}  top-5 err {val['top5_error']:.2%}  ({row['seconds']:.1f}s)")
        if event == "drop":
            log(f"validation error stopped improving: learning rate divided by 10 (drop {schedule.drops} "
                f"of {recipe.max_lr_drops})")
        if event == "stop":
            stopped_because = ("validation error stopped improving after the last learning-rate drop"
                               if epoch < recipe.epochs else "reached --epochs")
            break
    return {**history[-1], "stopped_because": stopped_because}


def _train_epoch(model, optimizer, loader, pre: Preprocessor, bar: Progress) -> tuple[float, float]:
    """One pass over the training batches; returns mean loss and top-1 error (read once at the end)."""
    model.train()
    device = pre.device
    loss_sum = torch.zeros((), device=device)
    wrong = torch.zeros((), device=device, dtype=torch.long)
    seen = 0
    for step, (crops, labels, corners, flips, alphas) in enumerate(loader):
        x = pre.train_batch(crops, corners, flips, alphas)
        y = labels.to(device, non_blocking=True)
        logits = model(x)
        loss = F.cross_entropy(logits, y)  # the multinomial logistic regression objective
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        loss_sum += loss.detach() * len(y)
        wrong += (logits.detach().argmax(1) != y).sum()
        seen += len(y)
        # Reading the loss forces a device sync: only every 20 steps, for the progress display.
        show = bar.enabled and step % 20 == 0
        bar.update(len(y), postfix=f"loss {loss_sum.item() / seen:.4f}" if show else None)
    bar.close()
    return loss_sum.item() / max(1, seen), wrong.item() / max(1, seen)
