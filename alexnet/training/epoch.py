"""One pass over the training batches: the SGD steps of Section 5, with running totals on the device.

Loss and error accumulate on the device and are read at the end (and every 20 steps when a progress
bar shows them), so the loop never waits for the device otherwise (except with `max_loss`, which
checks each batch's loss before applying it).
"""

from __future__ import annotations

from typing import Callable, NamedTuple, Sequence

import torch
from torch import nn
from torch.utils.data import DataLoader

from ..data.loader import InputFeed
from ..progress import Progress
from .distributed import DistributedContext, all_reduce_sum, global_batch_count
from .speed import SpeedSettings, train_step


class EpochSums(NamedTuple):
    """An epoch's totals over all ranks."""
    loss_sum: float
    wrong: float
    images: float
    skipped: float

    @property
    def mean_loss(self) -> float:
        return self.loss_sum / max(1.0, self.images)

    @property
    def error(self) -> float:
        return self.wrong / max(1.0, self.images)


class RunningTotals:
    """This rank's loss sum, wrong answers, images and skipped batches so far, kept on the device."""

    def __init__(self, device: torch.device, start: Sequence[float] | None = None) -> None:
        self.values = torch.zeros(len(EpochSums._fields), device=device, dtype=torch.float64)
        if start is not None:  # a resumed epoch: the sums so far, over all ranks, carried by rank 0 alone
            self.values += torch.tensor(list(start), dtype=torch.float64, device=device)

    def add(self, loss_sum: torch.Tensor, wrong: torch.Tensor, images: int) -> None:
        self.values[0] += loss_sum
        self.values[1] += wrong
        self.values[2] += images

    def add_skipped(self) -> None:
        self.values[3] += 1

    def local(self) -> EpochSums:
        """This rank's totals so far (reads the device)."""
        return EpochSums(*self.values.tolist())

    def mean_loss_so_far(self) -> float:
        return self.values[0].item() / max(1.0, self.values[2].item())

    def summed(self) -> EpochSums:
        """The totals summed over all ranks (a collective: every rank must call it)."""
        values = self.values.clone()
        all_reduce_sum(values)
        return EpochSums(*values.tolist())


class Learner:
    """What one SGD step needs: the module to run (compiled, DDP-wrapped), its optimizer, the scaler."""

    def __init__(self, runner: nn.Module, optimizer: torch.optim.Optimizer, scaler: torch.amp.GradScaler,
                 speed: SpeedSettings, device: torch.device) -> None:
        self.runner, self.optimizer, self.scaler, self.speed, self.device = runner, optimizer, scaler, speed, device

    def step(self, x: torch.Tensor, y: torch.Tensor, weight: float, max_loss: float | None):
        return train_step(self.runner, self.optimizer, self.scaler, x, y, self.device, self.speed, weight, max_loss)


def train_epoch(learner: Learner, loader: DataLoader, feed: InputFeed, ctx: DistributedContext,
                totals: RunningTotals, bar: Progress, start: int = 0,
                after_step: Callable[[int], bool] | None = None, max_loss: float | None = None,
                log=print) -> int | None:
    """Train on the loader's batches from batch `start`, adding into `totals`; return None, or the
    number of steps done when `after_step(step)` asked to stop."""
    learner.runner.train()
    batches = loader.dataset
    total_images = len(batches.labels)
    bar.update(min(total_images, start * batches.batch_size * ctx.world_size))
    for step, (_, x, y) in enumerate(feed(loader), start=start):
        # The mean over the global batch, also when ranks hold different numbers of images.
        weight = ctx.world_size / max(1, global_batch_count(step, batches.batch_size, ctx, total_images))
        loss_sum, wrong = learner.step(x, y, weight, max_loss)
        if loss_sum is None:
            totals.add_skipped()
            log(f"skipped batch {step}: its loss was not finite or above {max_loss:.0f}")
        else:
            totals.add(loss_sum, wrong, len(y))
        show = bar.enabled and step % 20 == 0
        bar.update(len(y) * ctx.world_size, postfix=f"mean loss {totals.mean_loss_so_far():.4f}" if show else None)
        if after_step is not None and after_step(step):
            bar.close()
            return step + 1
    # the loss shown is refreshed every 20 steps; the last line shows the epoch's mean
    bar.close(postfix=f"mean loss {totals.mean_loss_so_far():.4f}" if bar.enabled else None)
    return None
