"""`alexnet train`: the paper's recipe (Section 5) on a prepared dataset, one epoch at a time.

Each epoch: set the learning rates from the schedule, train on random crops with reflections and
colour noise, validate on the centre patch, log a row to metrics.csv, and write last.pt. Every
source of randomness (data order, crops, colour noise, dropout) is keyed by (seed, epoch), so a run
resumed from last.pt ends with the same weights as one that never stopped.
"""

from __future__ import annotations

import math
import os
import signal
import sys
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
from torch.nn.parallel import DistributedDataParallel

from ..ablations import apply_ablations
from ..config import ModelConfig, Recipe, recipe_from_dict, to_dict
from ..data.augment import Preprocessor, colour_noise_std, crop_size_for
from ..data.loader import InputFeed, TrainBatches, make_loader, pipeline_problem
from ..data.prepared import PreparedDataset
from ..data.stores import DECODER
from ..device import resolve_device
from ..errors import AlexNetError
from ..files import FolderLock, remove_stale_temporaries
from ..interrupt import StopRequest, TrainingInterrupted
from ..model import AlexNet, build_network, mean_image_for
from ..presets import Preset, get_preset, preset_from_file
from ..progress import Progress
from ..runs.inference import errors_from_hits, predict_probabilities, topk_hits
from ..runs.checkpoint import LAST
from ..runs.writer import RunWriter
from .distributed import DistributedContext, all_reduce_sum, barrier, device_for, init_distributed, per_rank_batch
from .epoch import EpochSums, Learner, RunningTotals, train_epoch
from .resume import checkpoint_to_resume, init_from, refuse_to_overwrite
from .chance import CHECK_EVERY, ChanceWatch, at_chance
from .model_parallel import SplitTraining
from .schedule import LearningRateSchedule, build_optimizer, load_optimizer_state
from .settings import TrainSettings
from .speed import SpeedSettings, grad_scaler, prepare_for_speed, resolve_speed

__all__ = ["TrainSettings", "train"]


def epoch_seed(seed: int, epoch: int) -> int:
    """The torch seed for one epoch's dropout masks."""
    return int(np.random.SeedSequence((seed, epoch, 0x5EED)).generate_state(1)[0])


@dataclass
class Run:
    """What a training run holds while it trains; `start_run` builds it."""
    settings: TrainSettings
    ctx: DistributedContext
    log: Callable[[str], None]
    device: torch.device
    speed: SpeedSettings
    dataset: PreparedDataset
    preset: Preset
    recipe: Recipe
    seed: int
    model_cfg: ModelConfig
    model: AlexNet
    optimizer: torch.optim.Optimizer
    schedule: LearningRateSchedule
    writer: RunWriter
    lock: FolderLock | None = None
    history: list[dict[str, Any]] = field(default_factory=list)
    start_epoch: int = 1
    partial: dict[str, Any] | None = None    # where a mid-epoch checkpoint stopped
    learner: Learner | None = None
    batches: TrainBatches | None = None
    loader: Any = None
    pre: Preprocessor | None = None
    feed: InputFeed | None = None    # batches -> the network's input on the device
    mean_image: np.ndarray | None = None
    max_loss: float = math.inf    # a mean loss above this is an explosion, treated like a NaN
    step_log_mark: EpochSums | None = None   # the totals at the last steps.csv row
    split: SplitTraining | None = None   # --model-parallel: the network that trains, one column per device
    chance: ChanceWatch | None = None     # warns once when the loss has sat at ln(classes) for a stretch
    chance_mark: EpochSums | None = None  # the totals at the watch's last look

    def record(self) -> AlexNet:
        """The grouped network with the trained weights (copied from the split one under --model-parallel)."""
        if self.split:
            self.split.record_weights(self.model)
        return self.model

    def optimizer_state(self) -> dict[str, Any]:
        if self.split:
            return self.split.optimizer_state(self.optimizer, self.model, self.recipe)
        return self.optimizer.state_dict()

    def payload(self, epoch_done: int, **extra: Any) -> dict[str, Any]:
        """The checkpoint: what the network is, its weights, and everything a resume needs."""
        return {
            "preset": self.preset.name, "model_config": to_dict(self.model_cfg), "recipe": to_dict(self.recipe),
            "classes": self.dataset.classes, "class_names": self.dataset.class_names,
            "ablations": list(self.settings.ablations), "data": str(Path(self.settings.data).resolve()),
            "data_size": self.dataset.size, "data_fingerprint": self.dataset.fingerprint, "seed": self.seed,
            "epoch": epoch_done,
            # The training mean travels with the weights: test-time inputs need exactly this mean.
            "mean_image": torch.from_numpy(self.mean_image),
            "model": self.record().state_dict(), "optimizer": self.optimizer_state(),
            "schedule": self.schedule.state_dict(), "scaler": self.learner.scaler.state_dict(),
            "history": self.history, **extra}


def train(s: TrainSettings) -> dict[str, Any]:
    """Train (or resume) a run; return its last metrics row, with `stopped_because`."""
    ctx = init_distributed(s.device)
    run, ckpt = start_run(s, ctx)
    try:
        if ckpt and run.schedule.finished and run.start_epoch > run.recipe.epochs:
            run.log(f"{s.out}: this run already finished after epoch {ckpt['epoch']}; nothing to do")
            return {**run.history[-1], "stopped_because": "already finished"}
        run.schedule.finished = False
        prepare_inputs(run, ckpt)
        board = _tensorboard(run)
        stop = StopRequest().install()
        try:
            stopped_because = run_epochs(run, stop, board)
        finally:
            stop.restore()
            if board:
                board.close()
    finally:
        if run.lock:
            run.lock.release()
    return {**run.history[-1], "stopped_because": stopped_because}


def start_run(s: TrainSettings, ctx: DistributedContext) -> tuple[Run, dict[str, Any] | None]:
    """Settle the preset and recipe, build the network and its optimizer, and restore a resumed run."""
    log = (s.log or print) if ctx.is_main else (lambda line: None)
    device = _training_device(s, ctx)
    # --model-parallel: not compiled unless asked (the split network's device hops are untested compiled)
    speed = resolve_speed(device, s.precision, s.channels_last, False if s.model_parallel and s.compile is None
                          else s.compile)
    dataset = PreparedDataset(s.data)
    problem = pipeline_problem(s.pipeline, dataset.manifest.get("storage", "raw"), dataset.root, device)
    if problem:  # before anything is written to the run folder
        raise AlexNetError(problem)
    base = preset_from_file(s.config) if s.config else get_preset(s.preset)
    s = replace(s, preset=base.name)
    preset = apply_ablations(base, s.ablations)
    ckpt = checkpoint_to_resume(s, dataset)
    recipe = _recipe(s, preset, ckpt, log)
    seed = int(ckpt["seed"]) if ckpt else s.seed
    model_cfg, model = _network(preset, recipe, dataset, seed)
    model.to(device)
    lock = _lock_run_folder(s, ctx, ckpt)
    try:
        if s.init_from and not ckpt:
            log(init_from(model, s.init_from))
        split = SplitTraining(model, s.model_parallel) if s.model_parallel else None
    except AlexNetError:
        if lock:
            lock.release()
        raise
    run = Run(s, ctx, log, device, speed, dataset, preset, recipe, seed, model_cfg, model,
              build_optimizer(split.net if split else model, recipe), LearningRateSchedule(recipe, dataset.num_classes),
              RunWriter(s.out, enabled=ctx.is_main), lock=lock, split=split, chance=ChanceWatch(dataset.num_classes))
    if ckpt:
        _restore(run, ckpt)
    return run, ckpt


def _training_device(s: TrainSettings, ctx: DistributedContext) -> torch.device:
    """The device the input, the loss and the grouped network live on: --device, or under --model-parallel
    the first column's device."""
    if not s.model_parallel:
        return device_for(ctx, resolve_device(s.device))
    if s.device is not None and s.device != s.model_parallel[0]:
        raise AlexNetError(f"--device {s.device} and --model-parallel {','.join(s.model_parallel)}: the run's device "
                           "is the first column's; leave --device out")
    if ctx.enabled:
        raise AlexNetError("--model-parallel splits one network over two devices in one process; it does not "
                           "combine with torchrun's data parallelism")
    first, _ = (resolve_device(d) for d in s.model_parallel)
    return first


def _lock_run_folder(s: TrainSettings, ctx: DistributedContext, ckpt: dict[str, Any] | None) -> FolderLock | None:
    """One training process per run folder (rank 0 holds the lock): a second `train` on the same --out
    is refused instead of silently overwriting the first's files."""
    if not ctx.is_main:
        return None
    lock = FolderLock(s.out, "this run folder").acquire()
    remove_stale_temporaries(s.out)  # temporaries of writers killed before they could clean up
    if not ckpt:  # a run that ended while this one started may have written it since the first check
        try:
            refuse_to_overwrite(Path(s.out) / LAST)
        except AlexNetError:
            lock.release()
            raise
    return lock


def _recipe(s: TrainSettings, preset: Preset, ckpt: dict[str, Any] | None, log) -> Recipe:
    """The preset's recipe with the flags' overrides; a resumed run keeps its own (only --epochs changes)."""
    recipe = recipe_from_dict(ckpt["recipe"]) if ckpt else preset.recipe
    overrides = {k: v for k, v in (("epochs", s.epochs), ("batch_size", s.batch_size), ("lr", s.lr)) if v is not None}
    if ckpt:
        ignored = sorted(k for k in overrides if k != "epochs" and overrides[k] != getattr(recipe, k))
        if ignored:
            log(f"note: resuming keeps the run's {', '.join(ignored)}; ignoring the new value(s)")
        overrides = {k: v for k, v in overrides.items() if k == "epochs"}
        return replace(recipe, **overrides)
    recipe = replace(recipe, **overrides)
    return large_batch(recipe, preset.recipe.batch_size, s.lr_scaling, s.warmup_epochs)


def large_batch(recipe: Recipe, paper_batch: int, scaling: str, warmup_epochs: int | None) -> Recipe:
    """Goyal et al. (2017)'s linear scaling rule, a named departure from the paper: with k = batch /
    the preset's batch, the rate x k, reached by a linear warm-up from the unscaled rate over 5 epochs."""
    k = recipe.batch_size / paper_batch
    if scaling == "linear" and k != 1:
        recipe = replace(recipe, lr=recipe.lr * k, warmup_epochs=5 if k > 1 else 0,
                         warmup_start_factor=min(1.0, 1 / k))
    return recipe if warmup_epochs is None else replace(recipe, warmup_epochs=warmup_epochs)


def _network(preset: Preset, recipe: Recipe, dataset: PreparedDataset, seed: int) -> tuple[ModelConfig, AlexNet]:
    """The preset's network for this dataset's crops, initialised from `seed` (Section 5's init)."""
    crop = crop_size_for(dataset.size, recipe.crop_fraction)
    model_cfg = replace(preset.model, input_size=crop)
    torch.manual_seed(seed)
    try:
        return model_cfg, build_network(model_cfg, dataset.num_classes)
    except ValueError as exc:
        raise AlexNetError(f"preset {preset.name!r} cannot take {crop} px crops of {dataset.size} px images "
                           f"({exc}); use a larger --size in prepare or another preset") from None


def _restore(run: Run, ckpt: dict[str, Any]) -> None:
    """The network, optimizer, schedule and history of the checkpoint; a field that does not fit is
    named in one line (the checkpoint's own checks cover what every reader needs, these what resuming needs)."""
    try:
        run.model.load_state_dict(ckpt["model"])
        if run.split:
            run.split.net.load_grouped_state_dict(run.model.state_dict())
            run.split.load_optimizer_state(run.optimizer, ckpt["optimizer"], run.model, run.recipe)
        else:
            load_optimizer_state(run.optimizer, ckpt["optimizer"])
        run.schedule.load_state_dict(ckpt["schedule"])
        if not isinstance(ckpt["history"], list) or not all(isinstance(r, dict) for r in ckpt["history"]):
            raise TypeError("'history' is not a list of epoch rows")
        run.history = list(ckpt["history"])
        run.start_epoch = int(ckpt["epoch"]) + 1
        run.partial = ckpt.get("partial")
        if run.partial is not None and not isinstance(run.partial.get("rng"), torch.Tensor):
            raise TypeError("'partial' holds no random-generator state")
    except (KeyError, TypeError, ValueError, RuntimeError, IndexError, AttributeError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise AlexNetError(f"{ckpt['path']}: cannot resume from it ({first}); start a new run, or --init-from it "
                           "for its weights") from None
    if run.partial:
        run.log(f"resuming epoch {run.partial['epoch']} at step {run.partial['step']} of {run.partial['steps']}")


def prepare_inputs(run: Run, ckpt: dict[str, Any] | None) -> None:
    """Write config.json, set up the fast path (layout, DDP, compile) and the batches that feed it."""
    s, ctx, device, dataset, recipe = run.settings, run.ctx, run.device, run.dataset, run.recipe
    batch = per_rank_batch(recipe.batch_size, ctx)
    run.writer.start(_run_config(run))
    # Train through `runner` (layout, DDP, compile); save and evaluate through `model` (same parameters).
    wrap = (lambda m: DistributedDataParallel(m, device_ids=[device.index] if device.type == "cuda" else None)
            ) if ctx.enabled else None
    runner = prepare_for_speed(run.split.net if run.split else run.model, device, run.speed, wrap,
                               move=not run.split)
    scaler = grad_scaler(device, run.speed)
    if ckpt and "scaler" in ckpt:
        scaler.load_state_dict(ckpt["scaler"])
    run.learner = Learner(runner, run.optimizer, scaler, run.speed, device)
    # On CPU the loader would compete with the training threads for the same cores (measured slower on
    # 2 cores: 30-45 s per demo epoch with one worker, 22 s without), so it runs in-process there.
    workers = s.workers if s.workers is not None else (min(8, os.cpu_count() or 1) if device.type == "cuda" else 0)
    run.mean_image = mean_image_for(run.model_cfg, dataset.mean_image)  # the dataset's, unless the preset fixes one
    run.pre = Preprocessor(run.mean_image, colour_scales(recipe, dataset.eigenvalues), dataset.eigenvectors,
                           run.model_cfg.input_size, recipe.mean_crop, device)
    run.batches = TrainBatches(dataset.images["train"], dataset.labels["train"],
                               batch, run.model_cfg.input_size, run.seed, recipe.pca_std, recipe.flip, ctx.rank,
                               ctx.world_size, preprocessor=run.pre if device.type == "cpu" and workers else None,
                               pipeline=s.pipeline, input_scale=recipe.train_input_scale)
    run.feed = InputFeed.for_pipeline(run.pre, s.pipeline)
    run.loader = make_loader(run.batches, workers, device)  # workers persist across epochs (EpochKeys)
    # Explosion: a mean loss 100 times that of guessing uniformly is treated like a NaN.
    run.max_loss = 100 * math.log(max(2, dataset.num_classes))
    _announce(run, ckpt is not None, batch)


def colour_scales(recipe: Recipe, eigenvalues: np.ndarray) -> np.ndarray:
    """What multiplies each colour-noise alpha: the eigenvalues (the paper) or their square roots."""
    return eigenvalues if recipe.pca_scale == "eigenvalues" else np.sqrt(np.maximum(eigenvalues, 0))


def _run_config(run: Run) -> dict[str, Any]:
    """config.json: the run's resolved configuration (`train --config` takes it back)."""
    return {"preset": run.preset.name, "data": str(Path(run.settings.data).resolve()),
            "data_fingerprint": run.dataset.fingerprint, "seed": run.seed, "device": str(run.device),
            "crop": run.model_cfg.input_size, "classes": run.dataset.classes, "recipe": to_dict(run.recipe),
            "model_config": to_dict(run.model_cfg), "speed": to_dict(run.speed),
            "world_size": run.ctx.world_size, "ablations": list(run.settings.ablations),
            "pipeline": run.settings.pipeline}


def _announce(run: Run, resuming: bool, per_rank: int) -> None:
    r, crop = run.recipe, run.model_cfg.input_size
    n_params = sum(p.numel() for p in run.model.parameters())
    jpeg = run.dataset.manifest.get("storage") == "jpeg"
    run.log(f"{'resuming' if resuming else 'training'} preset {run.preset.name!r} ({n_params:,} parameters) on "
            f"{run.device}: {run.dataset.describe()}{f' (JPEG decoder: {DECODER})' if jpeg else ''}, "
            f"crops {crop}x{crop}, batch {r.batch_size}, lr {r.lr}, "
            f"epochs {run.start_epoch}..{r.epochs}, seed {run.seed}, {run.speed.describe()}, "
            f"input pipeline {run.settings.pipeline!r}")
    if run.dataset.num_classes == 1:
        run.log(f"warning: {run.dataset.root} has one class: every prediction is right, every error rate 0%")
    if run.split:
        run.log(run.split.describe())
    if run.ctx.enabled:
        run.log(f"data parallel: {run.ctx.world_size} processes x {per_rank} images = global batch "
                f"{r.batch_size}, learning rate {r.lr} (the recipe's, for the global batch)")


def _tensorboard(run: Run):
    if not (run.settings.tensorboard and run.ctx.is_main):
        return None
    from .tensorboard import TensorBoardLog  # needs the optional tensorboard package

    return TensorBoardLog(run.settings.out)


def run_epochs(run: Run, stop: StopRequest, board) -> str:
    """Section 5's loop: train, validate, adjust the learning rate, checkpoint; return why it ended."""
    recipe, training_started = run.recipe, time.monotonic()
    for epoch in range(run.start_epoch, recipe.epochs + 1):
        if _out_of_time(run, epoch, training_started):
            return f"time limit of {run.settings.time_limit:.0f}s: another epoch would not fit"
        lr = run.schedule.apply(run.optimizer, epoch)
        started = time.monotonic()
        sums, started, rate = _train_one_epoch(run, epoch, stop, started)
        val = validate(run)
        row = {"epoch": epoch, "lr": lr, "train_loss": round(sums.mean_loss, 6),
               "at_chance": int(at_chance(sums.mean_loss, run.dataset.num_classes)),
               "train_top1_error": round(sums.error, 6), "val_top1_error": round(val["top1_error"], 6),
               "val_top5_error": round(val["top5_error"], 6), "seconds": round(time.monotonic() - started, 2),
               "images_per_second": round(rate, 1), "skipped_batches": int(sums.skipped)}
        run.history.append(row)
        event = run.schedule.end_epoch(epoch, val["top1_error"])
        run.writer.end_epoch(run.payload(epoch), run.history)
        if board:
            board.epoch(row, run.model)
        barrier()  # no rank runs ahead of the checkpoint that a restart would resume from
        _log_epoch(run, row, event)
        if event == "stop":
            return ("validation error stopped improving after the last learning-rate drop"
                    if epoch < recipe.epochs else "reached --epochs")
        if stop.requested and epoch < recipe.epochs:
            raise TrainingInterrupted(_interrupted_message(stop, run.settings.out, f"the end of epoch {epoch}"))
    return "reached --epochs"


def _out_of_time(run: Run, epoch: int, training_started: float) -> bool:
    """Predict this epoch from the slowest one so far: stop before --time-limit, not after."""
    if run.settings.time_limit is None or epoch == run.start_epoch:
        return False
    slowest = max(row["seconds"] for row in run.history[-(epoch - run.start_epoch):])
    over = torch.tensor([float(time.monotonic() - training_started + slowest > run.settings.time_limit)])
    all_reduce_sum(over)  # every rank stops together (the clocks of ranks differ a little)
    return over.item() > 0


def _train_one_epoch(run: Run, epoch: int, stop: StopRequest, started: float) -> tuple[EpochSums, float, float]:
    """Train epoch `epoch` (from where a mid-epoch checkpoint stopped, if it did); return its sums over
    all ranks, its effective start time and its training rate. Raises TrainingInterrupted when asked to stop."""
    recipe, batches, ctx = run.recipe, run.batches, run.ctx
    resume_here = run.partial if run.partial and run.partial["epoch"] == epoch else None
    batches.set_epoch(epoch, colour_noise_std(recipe, epoch), resume_here["step"] if resume_here else 0)
    if run.schedule.warming_up(epoch):
        run.schedule.apply(run.optimizer, epoch, batches.start / len(batches))
    if resume_here:  # dropout continues from the exact random state of the interrupted step
        torch.set_rng_state(resume_here["rng"])
        if run.device.type == "cuda" and resume_here.get("cuda_rng") is not None:
            torch.cuda.set_rng_state(resume_here["cuda_rng"], run.device)
        started -= resume_here["seconds"]
    else:
        torch.manual_seed(epoch_seed(run.seed, epoch))
    totals = RunningTotals(run.device, resume_here["totals"] if resume_here and ctx.is_main else None)
    run.step_log_mark = totals.local() if run.settings.log_steps else None
    run.chance_mark = totals.local()
    bar = Progress(len(batches.labels), f"epoch {epoch}/{recipe.epochs}", enabled=run.settings.progress and ctx.is_main)
    stepping = time.monotonic()
    stopped_at = train_epoch(run.learner, run.loader, run.feed, ctx, totals, bar, batches.start,
                             lambda step: _after_step(run, epoch, step, totals, started, stop),
                             run.max_loss if run.settings.skip_bad_batches else None, run.log)
    if stopped_at is not None:
        raise TrainingInterrupted(_interrupted_message(stop, run.settings.out,
                                                       f"epoch {epoch}, step {stopped_at} of {len(batches)}"))
    sums = totals.summed()
    # training images per second of this epoch's steps (validation excluded; this process's part of a resumed epoch)
    rate = (sums.images - (resume_here["totals"][2] if resume_here else 0)) / max(1e-9, time.monotonic() - stepping)
    if not math.isfinite(sums.mean_loss) or sums.mean_loss > run.max_loss:
        raise AlexNetError(f"training diverged in epoch {epoch} (mean loss {sums.mean_loss:.4g}); the last good "
                           f"checkpoint {run.writer.last} is kept; try a lower --lr, or --skip-bad-batches")
    return sums, started, rate


def _after_step(run: Run, epoch: int, step: int, totals: RunningTotals, started: float, stop: StopRequest) -> bool:
    """After each step: log the loss and write a mid-epoch checkpoint when due or asked to stop; True
    to stop."""
    ctx, every = run.ctx, run.settings.checkpoint_every
    if run.schedule.warming_up(epoch):  # the large-batch warm-up moves the rate every step
        run.schedule.apply(run.optimizer, epoch, (step + 1) / len(run.batches))
    if run.settings.log_steps and (step + 1) % run.settings.log_steps == 0:
        _log_steps(run, epoch, step, totals)
    if (step + 1) % CHECK_EVERY == 0:
        _watch_chance(run, totals)
    asked = stop.requested
    if ctx.enabled:  # ranks agree every 10 steps (a collective each)
        asked = _any_rank(asked) if (step + 1) % 10 == 0 else False
    if step + 1 == len(run.batches):  # the epoch's end writes its checkpoint, then stops if asked
        return False
    if not (asked or (every is not None and (step + 1) % every == 0)):
        return False
    sums = totals.summed()
    if not math.isfinite(sums.loss_sum):
        raise AlexNetError(f"training diverged in epoch {epoch} (loss not finite by step {step + 1}); "
                           f"the last good checkpoint {run.writer.last} is kept; try a lower --lr")
    run.writer.checkpoint(run.payload(epoch - 1, partial={
        "epoch": epoch, "step": step + 1, "steps": len(run.batches), "totals": list(sums),
        "rng": torch.get_rng_state(),
        "cuda_rng": torch.cuda.get_rng_state(run.device) if run.device.type == "cuda" else None,
        "seconds": time.monotonic() - started}))
    barrier()
    return asked


def _log_steps(run: Run, epoch: int, step: int, totals: RunningTotals) -> None:
    """A steps.csv row: rank 0's mean training loss over the last `log_steps` steps."""
    before, now = run.step_log_mark, totals.local()
    run.step_log_mark = now
    images = now.images - before.images
    run.writer.log_step({"epoch": epoch, "step": step + 1, "global_step": (epoch - 1) * len(run.batches) + step + 1,
                         "lr": run.schedule.base_lr(epoch, (step + 1) / len(run.batches)),
                         "train_loss": round((now.loss_sum - before.loss_sum) / max(1.0, images), 6)})


def _watch_chance(run: Run, totals: RunningTotals) -> None:
    """Feed the chance watch the loss of the steps since its last look; print its warning when due."""
    before, now = run.chance_mark, totals.local()
    run.chance_mark = now
    mean = run.chance.add(now.loss_sum - before.loss_sum, now.images - before.images, CHECK_EVERY)
    if mean is not None:
        run.log(run.chance.message(mean))


def _any_rank(flag: bool) -> bool:
    total = torch.tensor([float(flag)])
    all_reduce_sum(total)
    return total.item() > 0


def validate(run: Run) -> dict[str, Any]:
    """Centre-patch top-1/top-5 error on the validation split, over all ranks' shares."""
    probs, labels = predict_probabilities(run.record(), run.dataset, run.pre, "val", "center", run.recipe.eval_batch_size,
                                          rank=run.ctx.rank, world_size=run.ctx.world_size)
    hits = topk_hits(probs, labels)
    all_reduce_sum(hits)
    return errors_from_hits(hits)


def _log_epoch(run: Run, row: dict[str, Any], event: str | None) -> None:
    skipped = row["skipped_batches"]
    run.log(f"epoch {row['epoch']}: lr {row['lr']:g}  train loss {row['train_loss']:.4f}"
            f"{' (at chance)' if row['at_chance'] else ''}  train top-1 err "
            f"{row['train_top1_error']:.2%}  val top-1 err {row['val_top1_error']:.2%}  top-5 err "
            f"{row['val_top5_error']:.2%}  ({row['seconds']:.1f}s, training {row['images_per_second']:.0f} images/s)"
            + (f"  skipped {skipped} bad batch(es)" if skipped else ""))
    if event == "drop":
        run.log(f"validation error stopped improving: learning rate divided by 10 (drop {run.schedule.drops} "
                f"of {run.recipe.max_lr_drops})")


def _interrupted_message(stop: StopRequest, out: Path, where: str) -> str:
    name = signal.Signals(stop.signal).name if stop.signal else "a stop request"
    again = " ".join(a for a in sys.argv[1:] if a != "--resume") if sys.argv[1:] else "train ..."
    return (f"interrupted by {name} at {where}; checkpoint {Path(out) / 'last.pt'} written. Resume with: "
            f"alexnet {again} --resume")
