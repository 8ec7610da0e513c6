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
import signal
import sys
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.nn.parallel import DistributedDataParallel

from ..config import Recipe, recipe_from_dict, to_dict
from ..data.augment import Preprocessor, crop_size_for
from ..data.loader import TrainBatches, make_loader
from ..data.prepared import PreparedDataset
from ..device import resolve_device
from ..errors import AlexNetError
from ..evaluation.evaluate import errors_from_hits, predict_probabilities, topk_hits
from ..model import AlexNet, mean_image_for
from ..ablations import apply_ablations
from ..presets import get_preset, preset_from_file
from ..progress import Progress
from .checkpoint import LAST, load_checkpoint, save_checkpoint
from .interrupt import StopRequest, TrainingInterrupted
from .distributed import (DistributedContext, all_reduce_sum, barrier, device_for, global_batch_count,
                          init_distributed, per_rank_batch)
from .optim import PaperSGD
from .schedule import LearningRateSchedule, parameter_groups
from .speed import SpeedSettings, grad_scaler, prepare_for_speed, resolve_speed, train_step

METRICS_COLUMNS = ("epoch", "lr", "train_loss", "train_top1_error", "val_top1_error", "val_top5_error", "seconds")


@dataclass
class TrainSettings:
    data: Path
    out: Path
    preset: str = "paper"
    config: Path | str | None = None  # a JSON preset file (`alexnet config show`), instead of `preset`
    epochs: int | None = None        # None: the preset's
    batch_size: int | None = None
    lr: float | None = None
    seed: int = 0
    device: str | None = None        # None: cuda if available, else cpu
    resume: bool = False
    workers: int | None = None       # None: a default for the device
    time_limit: float | None = None  # seconds: no epoch is started that would be predicted to end later
    precision: str | None = None     # None: the device's default (see speed.py)
    channels_last: bool | None = None
    compile: bool | None = None
    init_from: str | None = None     # a run or checkpoint whose weights start this run (fine-tuning)
    ablations: tuple[str, ...] = ()  # names from alexnet.ablations, applied to the preset
    checkpoint_every: int | None = None  # steps: also write last.pt mid-epoch (resumable to the step)
    skip_bad_batches: bool = False   # a batch with a non-finite or exploding loss is skipped, not fatal
    auto_resume: bool = False        # resume if OUT/last.pt exists, else start (for restarts under torchrun)
    tensorboard: bool = False        # also log to OUT/tensorboard (scalars, lr, conv1 kernels)
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
    if s.checkpoint_every is not None and s.checkpoint_every < 1:
        raise AlexNetError(f"--checkpoint-every must be at least 1 step, got {s.checkpoint_every}")
    if s.time_limit is not None and not (s.time_limit > 0 and math.isfinite(s.time_limit)):
        raise AlexNetError(f"--time-limit must be a positive number of seconds, got {s.time_limit}")
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
    try:
        tmp.write_text(buf.getvalue())
        os.replace(tmp, path)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise AlexNetError(f"could not write {path} ({exc.strerror or exc}); the previous file is intact") from None


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
    if ckpt.get("data_fingerprint") not in (None, dataset.fingerprint):
        raise AlexNetError(f"{where}: the dataset changed since this run started (manifest fingerprint "
                           f"{ckpt['data_fingerprint']}, now {dataset.fingerprint}: other images or counts); "
                           "resume on the dataset it started with, or start a new run with --init-from")
    return ckpt


def train(s: TrainSettings) -> dict[str, Any]:
    """Train (or resume) a run; return its last metrics row, with `stopped_because`."""
    _check_settings(s)
    ctx = init_distributed(s.device)
    log = (s.log or print) if ctx.is_main else (lambda line: None)
    device = device_for(ctx, resolve_device(s.device))
    speed = resolve_speed(device, s.precision, s.channels_last, s.compile)
    dataset = PreparedDataset(s.data)
    base = preset_from_file(s.config) if s.config else get_preset(s.preset)
    s = replace(s, preset=base.name)
    preset = apply_ablations(base, s.ablations)
    out = Path(s.out)
    if s.auto_resume:
        s = replace(s, resume=(out / LAST).exists())
    if not s.resume and (out / LAST).exists():
        raise AlexNetError(f"{out / LAST} exists: pass --resume to continue that run, or choose a new --out")
    if s.resume and not (out / LAST).exists():
        raise AlexNetError(f"--resume: no checkpoint {out / LAST} to resume from")

    ckpt = _resume_state(s, dataset) if s.resume else None
    if ckpt and tuple(ckpt.get("ablations", ())) != tuple(s.ablations):
        raise AlexNetError(f"{ckpt['path']}: the run was trained with ablations {list(ckpt.get('ablations', ()))}, "
                           f"not {list(s.ablations)}; resume with the same --ablate flags")
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
    partial: dict[str, Any] | None = None  # where a mid-epoch checkpoint stopped
    if s.init_from and not ckpt:
        log(_init_from(model, s.init_from))
    if ckpt:
        model.load_state_dict(ckpt["model"])
        optimizer.load_state_dict(ckpt["optimizer"])
        schedule.load_state_dict(ckpt["schedule"])
        history = list(ckpt["history"])
        start_epoch = int(ckpt["epoch"]) + 1
        partial = ckpt.get("partial")
        if partial:
            log(f"resuming epoch {partial['epoch']} at step {partial['step']} of {partial['steps']}")
        if schedule.finished and start_epoch > recipe.epochs:
            log(f"{out}: this run already finished after epoch {ckpt['epoch']}; nothing to do")
            return {**history[-1], "stopped_because": "already finished"}
        schedule.finished = False

    batch = per_rank_batch(recipe.batch_size, ctx)
    if ctx.is_main:
        out.mkdir(parents=True, exist_ok=True)
        run_config = {
            "preset": preset.name, "data": str(Path(s.data).resolve()), "data_fingerprint": dataset.fingerprint,
            "seed": seed, "device": str(device), "crop": crop, "classes": dataset.classes,
            "recipe": to_dict(recipe), "model_config": to_dict(model_cfg),
            "speed": to_dict(speed), "world_size": ctx.world_size, "ablations": list(s.ablations),
        }
        (out / "config.json").write_text(json.dumps(run_config, indent=1) + "\n")
    # Train through `runner` (layout, DDP, compile); save and evaluate through `model` (same parameters).
    wrap = (lambda m: DistributedDataParallel(m, device_ids=[device.index] if device.type == "cuda" else None)
            ) if ctx.enabled else None
    runner = prepare_for_speed(model, device, speed, wrap)
    scaler = grad_scaler(device, speed)
    if ckpt and "scaler" in ckpt:
        scaler.load_state_dict(ckpt["scaler"])

    # On CPU the loader would compete with the training threads for the same cores (measured slower on
    # 2 cores: 30-45 s per demo epoch with one worker, 22 s without), so it runs in-process there.
    workers = s.workers if s.workers is not None else (min(8, os.cpu_count() or 1) if device.type == "cuda" else 0)
    batches = TrainBatches(dataset.root / dataset.manifest["splits"]["train"]["images"], dataset.labels["train"],
                           batch, crop, seed, recipe.pca_std, recipe.flip, ctx.rank, ctx.world_size)
    mean_image = mean_image_for(model_cfg, dataset.mean_image)  # the dataset's, unless the preset fixes one
    pre = Preprocessor(mean_image, dataset.eigenvalues, dataset.eigenvectors, crop, recipe.mean_crop, device)
    n_params = sum(p.numel() for p in model.parameters())
    log(f"{'resuming' if ckpt else 'training'} preset {preset.name!r} ({n_params:,} parameters) on {device}: "
        f"{dataset.describe()}, crops {crop}x{crop}, batch {recipe.batch_size}, lr {recipe.lr}, "
        f"epochs {start_epoch}..{recipe.epochs}, seed {seed}, {speed.describe()}")
    if ctx.enabled:
        log(f"data parallel: {ctx.world_size} processes x {batch} images = global batch {recipe.batch_size}, "
            f"learning rate {recipe.lr} (the recipe's, for the global batch)")

    loader = make_loader(batches, workers, device)  # workers persist across epochs (EpochKeys)
    stopped_because = "reached --epochs"
    training_started = time.monotonic()
    # Explosion: a mean loss 100 times that of guessing uniformly is treated like a NaN.
    max_loss = 100 * math.log(max(2, dataset.num_classes))

    def payload(epoch_done: int, **extra: Any) -> dict[str, Any]:
        return {
            "preset": preset.name, "model_config": to_dict(model_cfg), "recipe": to_dict(recipe),
            "classes": dataset.classes, "class_names": dataset.class_names, "ablations": list(s.ablations),
            "data": str(Path(s.data).resolve()), "data_size": dataset.size,
            "data_fingerprint": dataset.fingerprint, "seed": seed, "epoch": epoch_done,
            # The training mean travels with the weights: test-time inputs need exactly this mean.
            "mean_image": torch.from_numpy(mean_image),
            "model": model.state_dict(), "optimizer": optimizer.state_dict(), "schedule": schedule.state_dict(),
            "scaler": scaler.state_dict(), "history": history, **extra}

    board = None
    if s.tensorboard and ctx.is_main:
        from .tensorboard import TensorBoardLog
        board = TensorBoardLog(out)
    stop = StopRequest().install()
    try:
        for epoch in range(start_epoch, recipe.epochs + 1):
            started = time.monotonic()
            if s.time_limit is not None and epoch > start_epoch:
                # Predict this epoch from the slowest one so far: stop before the limit, not after.
                slowest = max(row["seconds"] for row in history[-(epoch - start_epoch):])
                over = torch.tensor([float(started - training_started + slowest > s.time_limit)])
                all_reduce_sum(over)  # every rank stops together (the clocks of ranks differ a little)
                if over.item() > 0:
                    stopped_because = f"time limit of {s.time_limit:.0f}s: another epoch would not fit"
                    break
            lr = schedule.apply(optimizer, epoch)
            pca_on = not (recipe.pca_off_epoch and epoch >= recipe.pca_off_epoch)
            resume_here = partial if partial and partial["epoch"] == epoch else None
            batches.set_epoch(epoch, recipe.pca_std if pca_on else 0.0, resume_here["step"] if resume_here else 0)
            if resume_here:  # dropout continues from the exact random state of the interrupted step
                torch.set_rng_state(resume_here["rng"])
                if device.type == "cuda" and resume_here.get("cuda_rng") is not None:
                    torch.cuda.set_rng_state(resume_here["cuda_rng"], device)
                started -= resume_here["seconds"]
            else:
                torch.manual_seed(epoch_seed(seed, epoch))
            totals = torch.zeros(4, device=device, dtype=torch.float64)  # loss sum, wrong, images, skipped
            if resume_here and ctx.is_main:  # the sums so far, over all ranks, carried by rank 0 alone
                totals += torch.tensor(resume_here["totals"], dtype=torch.float64, device=device)

            def at_step(step: int) -> bool:
                """After each step: write a mid-epoch checkpoint when due or asked to stop; True to stop."""
                asked = stop.requested
                if ctx.enabled and (step + 1) % 10 == 0:  # ranks agree every 10 steps (a collective each)
                    flag = torch.tensor([float(asked)])
                    all_reduce_sum(flag)
                    asked = flag.item() > 0
                elif ctx.enabled:
                    asked = False
                if step + 1 == len(batches):  # the epoch's end writes its checkpoint, then stops if asked
                    return False
                due = s.checkpoint_every is not None and (step + 1) % s.checkpoint_every == 0
                if not (asked or due):
                    return False
                summed = totals.clone()
                all_reduce_sum(summed)
                if not math.isfinite(summed[0].item()):
                    raise AlexNetError(f"training diverged in epoch {epoch} (loss not finite by step {step + 1}); "
                                       f"the last good checkpoint {out / LAST} is kept; try a lower --lr")
                if ctx.is_main:
                    save_checkpoint(out / LAST, payload(epoch - 1, partial={
                        "epoch": epoch, "step": step + 1, "steps": len(batches), "totals": summed.tolist(),
                        "rng": torch.get_rng_state(),
                        "cuda_rng": torch.cuda.get_rng_state(device) if device.type == "cuda" else None,
                        "seconds": time.monotonic() - started}))
                barrier()
                return asked

            stopped_at = _train_epoch(runner, optimizer, scaler, loader, pre, speed, ctx, totals,
                                      Progress(len(batches.labels), f"epoch {epoch}/{recipe.epochs}",
                                               enabled=s.progress and ctx.is_main),
                                      batches.start, at_step, max_loss if s.skip_bad_batches else None, log)
            if stopped_at is not None:
                raise TrainingInterrupted(_interrupted_message(stop, out, f"epoch {epoch}, step {stopped_at} of "
                                                                          f"{len(batches)}"))
            all_reduce_sum(totals)
            loss_sum, wrong, seen, skipped = totals.tolist()
            train_loss, train_err = loss_sum / max(1, seen), wrong / max(1, seen)
            if not math.isfinite(train_loss) or train_loss > max_loss:
                raise AlexNetError(f"training diverged in epoch {epoch} (mean loss {train_loss:.4g}); the last good "
                                   f"checkpoint {out / LAST} is kept; try a lower --lr, or --skip-bad-batches")
            probs, labels = predict_probabilities(model, dataset, pre, "val", "center", recipe.eval_batch_size,
                                                  rank=ctx.rank, world_size=ctx.world_size)
            hits = topk_hits(probs, labels)
            all_reduce_sum(hits)
            val = errors_from_hits(hits)
            row = {"epoch": epoch, "lr": lr, "train_loss": round(train_loss, 6),
                   "train_top1_error": round(train_err, 6), "val_top1_error": round(val["top1_error"], 6),
                   "val_top5_error": round(val["top5_error"], 6), "seconds": round(time.monotonic() - started, 2),
                   "skipped_batches": int(skipped)}
            history.append(row)
            event = schedule.end_epoch(epoch, val["top1_error"])
            if ctx.is_main:
                _save_epoch(out, payload(epoch), history)
                if board:
                    board.epoch(row, model)
            barrier()  # no rank runs ahead of the checkpoint that a restart would resume from
            log(f"epoch {epoch}: lr {lr:g}  train loss {train_loss:.4f}  train top-1 err {train_err:.2%}  "
                f"val top-1 err {val['top1_error']:.2%}  top-5 err {val['top5_error']:.2%}  ({row['seconds']:.1f}s)"
                + (f"  skipped {int(skipped)} bad batch(es)" if skipped else ""))
            if event == "drop":
                log(f"validation error stopped improving: learning rate divided by 10 (drop {schedule.drops} "
                    f"of {recipe.max_lr_drops})")
            if event == "stop":
                stopped_because = ("validation error stopped improving after the last learning-rate drop"
                                   if epoch < recipe.epochs else "reached --epochs")
                break
            if stop.requested and epoch < recipe.epochs:
                raise TrainingInterrupted(_interrupted_message(stop, out, f"the end of epoch {epoch}"))
    finally:
        stop.restore()
        if board:
            board.close()
    return {**history[-1], "stopped_because": stopped_because}


def _interrupted_message(stop: StopRequest, out: Path, where: str) -> str:
    name = signal.Signals(stop.signal).name if stop.signal else "a stop request"
    again = " ".join(a for a in sys.argv[1:] if a != "--resume") if sys.argv[1:] else "train ..."
    return (f"interrupted by {name} at {where}; checkpoint {out / LAST} written. Resume with: "
            f"alexnet {again} --resume")


def _init_from(model: AlexNet, source: str) -> str:
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


def _save_epoch(out: Path, checkpoint: dict[str, Any], history: list[dict[str, Any]]) -> None:
    save_checkpoint(out / LAST, checkpoint)
    write_metrics_csv(out / "metrics.csv", history)


def _train_epoch(runner, optimizer, scaler, loader, pre: Preprocessor, speed: SpeedSettings,
                 ctx: DistributedContext, totals: torch.Tensor, bar: Progress, start: int = 0,
                 at_step=None, max_loss: float | None = None, log=print) -> int | None:
    """One pass over the training batches from batch `start`, adding (loss sum, wrong, images, skipped)
    into `totals` on the device; returns None, or the step after which `at_step` asked to stop.

    Loss and error accumulate on the device and are read at the end (and every 20 steps when a
    progress bar shows them), so the loop never waits for the device otherwise (except with
    `max_loss`, which checks each batch's loss before applying it).
    """
    runner.train()
    device = pre.device
    total_images = len(loader.dataset.labels)
    bar.update(min(total_images, start * loader.dataset.batch_size * ctx.world_size))
    for step, (crops, labels, corners, flips, alphas) in enumerate(loader, start=start):
        x = pre.train_batch(crops, corners, flips, alphas)
        y = labels.to(device, non_blocking=True)
        weight = ctx.world_size / max(1, global_batch_count(step, loader.dataset.batch_size, ctx, total_images))
        loss_sum, wrong = train_step(runner, optimizer, scaler, x, y, device, speed, weight, max_loss)
        if loss_sum is None:
            totals[3] += 1
            log(f"skipped batch {step}: its loss was not finite or above {max_loss:.0f}")
        else:
            totals[0] += loss_sum
            totals[1] += wrong
            totals[2] += len(y)
        show = bar.enabled and step % 20 == 0
        bar.update(len(y) * ctx.world_size,
                   postfix=f"loss {totals[0].item() / max(1.0, totals[2].item()):.4f}" if show else None)
        if at_step is not None and at_step(step):
            bar.close()
            return step + 1
    bar.close()
    return None
