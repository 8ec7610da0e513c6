"""`alexnet train`: Section 5's loop on a prepared dataset.

    config -> resolve (plan.py) -> TrainState (state.py) -> per epoch: the step loop (TrainingInput's
    batches -> SGDStep), validation on the centre patch, the learning-rate schedule, a metrics.csv row
    and last.pt.

Every source of randomness (data order, crops, colour noise, dropout) is keyed by (seed, epoch), so a run
resumed from last.pt, mid-epoch included, ends with the same weights as one that never stopped. What
happens between steps (the warm-up's rate, the steps.csv log, the chance watch, a mid-epoch checkpoint,
a stop request) is one guard each, in `StepGuards`.
"""

from __future__ import annotations

import math
import signal
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..config import TrainConfig, to_dict
from ..data.augment import EvalViews
from ..data.loader import WORKER_DIED, loader_failure
from ..data.pipeline import TrainingInput
from ..data.stores import DECODER
from ..errors import AlexNetError
from ..interrupt import StopRequest, TrainingInterrupted
from ..progress import Progress
from ..runs.checkpoint import LAST
from ..runs.inference import errors_from_hits, predict_probabilities, topk_hits
from ..runs.writer import RunWriter
from .chance import CHECK_EVERY, ChanceWatch, at_chance
from .distributed import all_reduce_sum, barrier, global_batch_count, init_distributed
from .plan import Plan, resolve
from .state import TrainState
from .step import EpochSums, RunningTotals, SGDStep


def train(config: TrainConfig) -> dict[str, Any]:
    """Train (or resume) a run; return its last metrics row, with `stopped_because`."""
    plan = resolve(config, init_distributed(config.device))
    with RunWriter(plan.out, enabled=plan.ctx.is_main, resuming=plan.checkpoint is not None) as writer:
        state = TrainState.start(plan)
        if plan.checkpoint and state.schedule.finished and state.epoch >= plan.recipe.epochs:
            plan.log(f"{plan.out}: this run already finished after epoch {state.epoch}; nothing to do")
            return {**state.history[-1], "stopped_because": "already finished",
                    "main_process": plan.ctx.is_main}
        state.schedule.finished = False
        writer.start(run_config(plan))
        inputs = TrainingInput(plan.dataset, plan.recipe, plan.mean_image, crop=plan.model_cfg.input_size,
                               seed=plan.seed, device=plan.device, pipeline=config.pipeline, workers=plan.workers,
                               batch_size=plan.batch_per_rank, rank=plan.ctx.rank, world_size=plan.ctx.world_size,
                               validated=True)
        step = state.sgd_step(plan.device, plan.speed, distributed=plan.ctx.enabled)
        announce(plan, state)
        try:
            stopped_because = run_epochs(plan, state, inputs, step, writer)
        except RuntimeError as exc:
            failed = loader_failure(exc)
            if failed is None:
                raise
            raise AlexNetError(f"{failed}; {how_to_go_on(plan, fewer_workers=WORKER_DIED in str(exc))}") from None
        return {**state.history[-1], "stopped_because": stopped_because,
                "resumable": stopped_because.startswith("time limit"), "main_process": plan.ctx.is_main}


def run_epochs(plan: Plan, state: TrainState, inputs: TrainingInput, step: SGDStep, writer: RunWriter) -> str:
    """Section 5's loop: train, validate, adjust the learning rate, checkpoint; return why it ended."""
    stop, tensorboard_log = StopRequest().install(), tensorboard(plan)
    guards = StepGuards(plan, state, writer, stop, len(inputs))
    started = time.monotonic()
    try:
        for epoch in range(state.epoch + 1, plan.recipe.epochs + 1):
            if out_of_time(plan, state, epoch, started):
                return f"time limit of {plan.config.time_limit:.0f}s: another epoch would not fit"
            lr = state.schedule.apply(state.optimizer, epoch)
            sums, epoch_started, rate = train_one_epoch(plan, state, inputs, step, guards, epoch)
            val = validate(plan, state)
            row = epoch_row(plan, epoch, lr, sums, val, time.monotonic() - epoch_started, rate)
            state.history.append(row)
            state.epoch, state.mid_epoch = epoch, None
            event = state.schedule.end_epoch(epoch, val["top1_error"])
            writer.end_epoch(state.state_dict(plan), state.history)
            if tensorboard_log:
                tensorboard_log.epoch(row, state.model)
            barrier()  # no rank runs ahead of the checkpoint that a restart would resume from
            log_epoch(plan, state, row, event)
            if not guards.projected:  # an epoch shorter than the first few hundred steps: its own rate
                guards.project(rate, f"epoch {epoch}'s steps")  # already over all ranks
            if event == "stop":
                return ("validation error stopped improving after the last learning-rate drop"
                        if epoch < plan.recipe.epochs else "reached --epochs")
            if stop.requested and epoch < plan.recipe.epochs:
                raise TrainingInterrupted(interrupted_message(stop, plan.out, f"the end of epoch {epoch}"))
        return "reached --epochs"
    finally:
        stop.restore()
        if tensorboard_log:
            tensorboard_log.close()


def train_one_epoch(plan: Plan, state: TrainState, inputs: TrainingInput, step: SGDStep, guards: "StepGuards",
                    epoch: int) -> tuple[EpochSums, float, float]:
    """The SGD steps of one epoch (from where a mid-epoch checkpoint stopped, if it did); return its sums
    over all ranks, when it started (earlier by a resumed part's seconds) and its training rate in images/s."""
    ctx, batch = plan.ctx, plan.batch_per_rank
    resumed = state.mid_epoch if state.mid_epoch and state.mid_epoch["epoch"] == epoch else None
    first = resumed["step"] if resumed else 0
    restore_random_state(plan, epoch, resumed)
    totals = RunningTotals(plan.device, resumed["totals"] if resumed and ctx.is_main else None)
    started = time.monotonic() - (resumed["seconds"] if resumed else 0.0)
    guards.start_epoch(epoch, totals, started, first)
    images = len(inputs.batches.labels)
    bar = Progress(images, f"epoch {epoch}/{plan.recipe.epochs}", enabled=plan.config.progress and ctx.is_main)
    bar.update(min(images, first * batch * ctx.world_size))
    stepping = time.monotonic()
    step.module.train()
    for i, (x, y) in enumerate(inputs.epoch(epoch, first), start=first):
        # the mean over the global batch, also when ranks hold different numbers of images
        loss_sum, wrong = step(x, y, ctx.world_size / max(1, global_batch_count(i, batch, ctx, images)),
                               guards.max_loss)
        totals.add(loss_sum, wrong, len(y))
        if loss_sum is None:
            plan.log(f"skipped batch {i}: its loss was not finite or above {guards.max_loss:.0f}")
        bar.update(len(y) * ctx.world_size, postfix=guards.shown_loss(totals, bar))
        if guards.after_step(epoch, i):
            bar.close()
            raise TrainingInterrupted(interrupted_message(guards.stop, plan.out,
                                                          f"epoch {epoch}, step {i + 1} of {len(inputs)}"))
    bar.close(postfix=f"mean loss {totals.local().mean_loss:.4f}" if bar.enabled else None)
    sums = totals.summed()
    if not math.isfinite(sums.mean_loss) or sums.mean_loss > guards.explosion:
        raise AlexNetError(f"training diverged in epoch {epoch} (mean loss {sums.mean_loss:.4g}); the last good "
                           f"checkpoint {plan.out / LAST} is kept; try a lower --lr, or --skip-bad-batches")
    # training images per second of this epoch's steps, all ranks' images (this process's part of a resumed epoch)
    rate = (sums.images - (resumed["totals"][2] if resumed else 0)) / max(1e-9, time.monotonic() - stepping)
    return sums, started, rate


class StepGuards:
    """What happens between two steps, each a small guard called at its named point."""

    def __init__(self, plan: Plan, state: TrainState, writer: RunWriter, stop: StopRequest, steps: int) -> None:
        self.plan, self.state, self.writer, self.stop, self.steps = plan, state, writer, stop, steps
        # Explosion: a mean loss 100 times that of guessing uniformly is treated like a NaN.
        self.explosion = 100 * math.log(max(2, plan.dataset.num_classes))
        self.max_loss = self.explosion if plan.config.skip_bad_batches else None
        self.chance = ChanceWatch(plan.dataset.num_classes)
        self.steps_run, self.speed_mark, self.projected = 0, None, False
        self.loss_read = 0.0
        self.step_log_window, self.chance_window = LossWindow(), LossWindow()

    def start_epoch(self, epoch: int, totals: RunningTotals, started: float, first: int) -> None:
        self.epoch, self.totals, self.started = epoch, totals, started
        self.step_log_window.start_epoch(totals)
        self.chance_window.start_epoch(totals)
        if self.state.schedule.warming_up(epoch):
            self.state.schedule.apply(self.state.optimizer, epoch, first / self.steps)

    def shown_loss(self, totals: RunningTotals, bar: Progress) -> str | None:
        """The progress bar's mean loss, read from the device at most once a second (a read waits for the
        device), so that the bar never shows a stale mean for long, on a fast GPU or a slow CPU."""
        now = time.monotonic()
        if not bar.enabled or now - self.loss_read < 1.0:
            return None
        self.loss_read = now
        return f"mean loss {totals.local().mean_loss:.4f}"

    def after_step(self, epoch: int, i: int) -> bool:
        """After step i: the warm-up's rate, the logs, a checkpoint when due or asked; True to stop."""
        done = i + 1
        global_step = (epoch - 1) * self.steps + done  # counted across epochs: an epoch may be shorter than N
        if self.state.schedule.warming_up(epoch):  # the large-batch warm-up moves the rate every step
            self.state.schedule.apply(self.state.optimizer, epoch, done / self.steps)
        if self.plan.config.log_steps and global_step % self.plan.config.log_steps == 0:
            self.log_steps(epoch, done, global_step)
        if global_step % CHECK_EVERY == 0:
            self.watch_chance()
        self.steps_run += 1
        if self.steps_run in (SPEED_FROM, SPEED_FROM + SPEED_OVER) and not self.projected:
            self.watch_speed()
        asked = self.stop.requested
        if self.plan.ctx.enabled:  # ranks agree every 10 steps (a collective each)
            asked = any_rank(asked) if done % 10 == 0 else False
        every = self.plan.config.checkpoint_every
        if done == self.steps or not (asked or (every is not None and done % every == 0)):
            return False  # the epoch's end writes its own checkpoint, then stops if asked
        self.checkpoint_mid_epoch(epoch, done)
        return asked

    def log_steps(self, epoch: int, done: int, global_step: int) -> None:
        """A steps.csv row: rank 0's mean training loss over the last `log_steps` steps."""
        loss_sum, images = self.step_log_window.take()
        self.writer.log_step({"epoch": epoch, "step": done, "global_step": global_step,
                              "lr": self.state.schedule.base_lr(epoch, done / self.steps),
                              "train_loss": round(loss_sum / max(1.0, images), 6)})

    def watch_chance(self) -> None:
        """Feed the chance watch the loss of the steps since its last look; print its warning when due."""
        mean = self.chance.add(*self.chance_window.take(), CHECK_EVERY)
        if mean is not None:
            self.plan.log(self.chance.message(mean))

    def watch_speed(self) -> None:
        """After the first few hundred steps (the first SPEED_FROM left out: compiling, warming up), the
        measured rate and what the whole recipe would take at it."""
        now = (time.monotonic(), self.totals.local().images)
        if self.speed_mark is None:
            self.speed_mark = now
            return
        (t0, n0), (t1, n1) = self.speed_mark, now
        if n1 > n0 and t1 > t0:
            self.project((n1 - n0) * self.plan.ctx.world_size / (t1 - t0), f"over {SPEED_OVER} steps")

    def project(self, rate: float, how: str) -> None:
        """Print once: the rate, and the recipe's epochs at it."""
        self.projected = True
        epochs, images = self.plan.recipe.epochs, len(self.plan.dataset.labels["train"])
        self.plan.log(f"speed: {rate:,.0f} training images/s ({how}); {epochs} epoch{'s' if epochs != 1 else ''} of "
                      f"{images:,} images at this rate: {projected_duration(epochs * images / rate)} "
                      "(validation not included; --time-limit bounds a run)")

    def checkpoint_mid_epoch(self, epoch: int, done: int) -> None:
        sums = self.totals.summed()
        if not math.isfinite(sums.loss_sum):
            raise AlexNetError(f"training diverged in epoch {epoch} (loss not finite by step {done}); the last good "
                               f"checkpoint {self.plan.out / LAST} is kept; try a lower --lr")
        device = self.plan.device
        self.writer.checkpoint(self.state.state_dict(self.plan, mid_epoch={
            "epoch": epoch, "step": done, "steps": self.steps, "totals": list(sums), "rng": torch.get_rng_state(),
            "cuda_rng": torch.cuda.get_rng_state(device) if device.type == "cuda" else None,
            "seconds": time.monotonic() - self.started}))
        barrier()


class LossWindow:
    """The loss sum and image count of the steps since it was last taken, across epoch ends (each epoch's
    running totals start again at zero, and an epoch may have fewer steps than a window)."""

    def __init__(self) -> None:
        self.carried = (0.0, 0.0)                   # from epochs already ended
        self.totals: RunningTotals | None = None
        self.mark = (0.0, 0.0)                      # this epoch's totals when last taken

    def start_epoch(self, totals: RunningTotals) -> None:
        self.carried = self.take()                      # what the ended epoch left untaken
        self.totals = totals
        self.mark = self._now()                         # a resumed epoch starts from its saved sums

    def take(self) -> tuple[float, float]:
        """(loss sum, images) since the last take; reads the device once."""
        now = self._now()
        taken = (self.carried[0] + now[0] - self.mark[0], self.carried[1] + now[1] - self.mark[1])
        self.carried, self.mark = (0.0, 0.0), now
        return taken

    def _now(self) -> tuple[float, float]:
        sums = self.totals.local() if self.totals is not None else None
        return (sums.loss_sum, sums.images) if sums else (0.0, 0.0)


SPEED_FROM, SPEED_OVER = 20, 200   # the projection's window: steps 20-220 of this process


def projected_duration(seconds: float) -> str:
    # a toy run's "about 1 min" would overstate it many times over
    return f"about {hours_and_minutes(seconds)}" if seconds >= 30 else "under half a minute"


def hours_and_minutes(seconds: float) -> str:
    minutes = max(1, round(seconds / 60))
    return f"{minutes // 60} h {minutes % 60} min" if minutes >= 60 else f"{minutes} min"


def epoch_seed(seed: int, epoch: int) -> int:
    """The torch seed for one epoch's dropout masks."""
    return int(np.random.SeedSequence((seed, epoch, 0x5EED)).generate_state(1)[0])


def restore_random_state(plan: Plan, epoch: int, resumed: dict[str, Any] | None) -> None:
    """Dropout's random state: the epoch's own seed, or exactly where an interrupted step left it."""
    if not resumed:
        torch.manual_seed(epoch_seed(plan.seed, epoch))
        return
    torch.set_rng_state(resumed["rng"])
    if plan.device.type == "cuda" and resumed.get("cuda_rng") is not None:
        torch.cuda.set_rng_state(resumed["cuda_rng"], plan.device)


def validate(plan: Plan, state: TrainState) -> dict[str, Any]:
    """Centre-patch top-1/top-5 error on the validation split, over all ranks' shares, and its seconds."""
    started = time.monotonic()
    views = EvalViews(plan.mean_image, plan.model_cfg.input_size, plan.recipe.mean_crop, plan.device)
    # the run's workers: loaded in this process, ILSVRC's validation set adds a fifth to an epoch (BENCHMARKS.md)
    probs, labels = predict_probabilities(state.trained_network(), plan.dataset, views, "val", "center",
                                          plan.recipe.eval_batch_size, plan.workers, rank=plan.ctx.rank,
                                          world_size=plan.ctx.world_size)
    hits = topk_hits(probs, labels)
    all_reduce_sum(hits)
    return {**errors_from_hits(hits), "seconds": time.monotonic() - started}


def epoch_row(plan: Plan, epoch: int, lr: float, sums: EpochSums, val: dict[str, Any], seconds: float,
              rate: float) -> dict[str, Any]:
    """The epoch's row of metrics.csv."""
    return {"epoch": epoch, "lr": lr, "train_loss": round(sums.mean_loss, 6),
            "at_chance": int(at_chance(sums.mean_loss, plan.dataset.num_classes)),
            "train_top1_error": round(sums.error, 6), "val_top1_error": round(val["top1_error"], 6),
            "val_top5_error": round(val["top5_error"], 6), "seconds": round(seconds, 2),
            "val_seconds": round(val["seconds"], 2), "images_per_second": round(rate, 1),
            "skipped_batches": int(sums.skipped)}


def out_of_time(plan: Plan, state: TrainState, epoch: int, training_started: float) -> bool:
    """Predict this epoch from the slowest one this process has run: stop before --time-limit, not after."""
    ran = state.history[-(epoch - 1 - first_epoch(plan)):] if epoch - 1 > first_epoch(plan) else []
    if plan.config.time_limit is None or not ran:
        return False
    slowest = max(row["seconds"] for row in ran)
    over = torch.tensor([float(time.monotonic() - training_started + slowest > plan.config.time_limit)])
    all_reduce_sum(over)  # every rank stops together (the clocks of ranks differ a little)
    return over.item() > 0


def first_epoch(plan: Plan) -> int:
    """The last epoch finished before this process started."""
    return int(plan.checkpoint["epoch"]) if plan.checkpoint else 0


def any_rank(flag: bool) -> bool:
    total = torch.tensor([float(flag)])
    all_reduce_sum(total)
    return total.item() > 0


def run_config(plan: Plan) -> dict[str, Any]:
    """config.json: the run's resolved configuration (`train --config` takes it back)."""
    return {"preset": plan.preset.name, "data": str(Path(plan.config.data).resolve()),
            "data_fingerprint": plan.dataset.fingerprint, "seed": plan.seed, "device": str(plan.device),
            "crop": plan.model_cfg.input_size, "classes": plan.dataset.classes, "recipe": to_dict(plan.recipe),
            "model_config": to_dict(plan.model_cfg), "speed": to_dict(plan.speed),
            "world_size": plan.ctx.world_size, "ablations": list(plan.preset.ablations),
            "pipeline": plan.config.pipeline}


def announce(plan: Plan, state: TrainState) -> None:
    recipe, crop = plan.recipe, plan.model_cfg.input_size
    n_params = sum(p.numel() for p in state.model.parameters())
    jpeg = plan.dataset.manifest.get("storage") == "jpeg"
    plan.log(f"{'resuming' if plan.checkpoint else 'training'} preset {plan.preset.name!r} ({n_params:,} parameters) "
             f"on {plan.device}: {plan.dataset.describe()}{f' (JPEG decoder: {DECODER})' if jpeg else ''}, "
             f"crops {crop}x{crop}, batch {recipe.batch_size}, lr {recipe.lr}, "
             f"epochs {state.epoch + 1}..{recipe.epochs}, seed {plan.seed}, {plan.speed.describe()}, "
             f"input pipeline {plan.config.pipeline!r}")
    if plan.speed.compile:  # else the bar sits at 0% without a word while the kernels are built
        plan.log("the first step compiles the network and its update for this device before it trains (the bar "
                 "waits meanwhile; once per batch shape, the epoch's smaller last batch included)")
    if state.mid_epoch:
        where = state.mid_epoch
        plan.log(f"resuming epoch {where['epoch']} at step {where['step']} of {where['steps']}")
    if plan.dataset.num_classes == 1:
        plan.log(f"warning: {plan.dataset.root} has one class: every prediction is right, every error rate 0%")
    if state.split:
        plan.log(state.split.describe())
    if plan.ctx.enabled:
        plan.log(f"data parallel: {plan.ctx.world_size} processes x {plan.batch_per_rank} images = global batch "
                 f"{recipe.batch_size}, learning rate {recipe.lr} (the recipe's, for the global batch)")


def log_epoch(plan: Plan, state: TrainState, row: dict[str, Any], event: str | None) -> None:
    skipped = row["skipped_batches"]
    plan.log(f"epoch {row['epoch']}: lr {row['lr']:g}  train loss {row['train_loss']:.4f}"
             f"{' (at chance)' if row['at_chance'] else ''}  train top-1 err {row['train_top1_error']:.2%}  "
             f"val top-1 err {row['val_top1_error']:.2%}  top-5 err {row['val_top5_error']:.2%}  "
             f"({row['seconds']:.1f}s, training {row['images_per_second']:.0f} images/s, "
             f"validation {row['val_seconds']:.1f}s)"
             + (f"  skipped {skipped} bad batch(es)" if skipped else "") + time_left(plan, row))
    if event == "drop":
        plan.log(f"validation error stopped improving: learning rate divided by 10 (drop {state.schedule.drops} "
                 f"of {plan.recipe.max_lr_drops})")


def time_left(plan: Plan, row: dict[str, Any]) -> str:
    """The epochs still to run at this epoch's pace, validation included ("at most": the plateau rule or
    --time-limit may end the run sooner)."""
    left = plan.recipe.epochs - row["epoch"]
    if left <= 0:
        return ""
    return (f"; {left} epoch{'s' if left != 1 else ''} left at most, "
            f"{projected_duration(left * row['seconds'])} at this pace")


def tensorboard(plan: Plan):
    if not (plan.config.tensorboard and plan.ctx.is_main):
        return None
    from .tensorboard import TensorBoardLog  # needs the optional tensorboard package

    return TensorBoardLog(plan.out)


def how_to_go_on(plan: Plan, fewer_workers: bool) -> str:
    """After the loader failed: the checkpoint kept, and the command to go on (with fewer workers where one
    died, its own --workers left out)."""
    kept = plan.out / LAST
    again = command_again(drop=("--workers",)) + " --workers N" if fewer_workers else command_again()
    fewer = f" with fewer workers (now {plan.workers})" if fewer_workers else ""
    if kept.is_file():
        return f"checkpoint {kept} is kept; go on{fewer}: alexnet {again} --resume"
    return f"no checkpoint yet; start again{fewer}: alexnet {again}"


def command_again(drop: tuple[str, ...] = ()) -> str:
    """This command's arguments without --resume (and without the flags in `drop`, with their values)."""
    args, kept = iter(sys.argv[1:]), []
    for arg in args:
        name = arg.split("=", 1)[0]
        if name in drop:
            if "=" not in arg:
                next(args, None)  # its value
        elif arg != "--resume":
            kept.append(arg)
    return " ".join(kept) if sys.argv[1:] else "train ..."


def interrupted_message(stop: StopRequest, out: Path, where: str) -> str:
    name = signal.Signals(stop.signal).name if stop.signal else "a stop request"
    return (f"interrupted by {name} at {where}; checkpoint {Path(out) / LAST} written. Resume with: "
            f"alexnet {command_again()} --resume")
