"""Learning-rate schedules, and the optimizer groups they drive.

- "plateau" (the paper, Section 5): start at `lr`, divide by 10 when the validation error stops
  improving, three times; the next time it stops improving, training ends. "Stops improving" is
  our named reading: no drop of the val top-1 error by at least `plateau_min_delta` for
  `plateau_patience` epochs in a row, counted only once the network has started to learn (its val
  top-1 error at least `plateau_start_margin` below chance, 1 - 1/classes). The paper's rule presumes
  a run that improves; read literally it fires while the network still sits on the flat start of
  its initialisation and ends the run at chance (FIDELITY.md, "Known traps").
- "steps" (cuda-convnet's logged run): the base rate times a factor that changes at given epochs.

Epochs are numbered from 1, as in the logs and in `metrics.csv`.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from torch import nn

from ..config import Recipe
from ..model import layer_name
from .optim import PaperSGD


# Layers the schedule treats on their own (cuda-convnet's late-run slowing and freezing of conv1).
SCHEDULED_LAYERS = ("conv1",)


def parameter_groups(model: nn.Module, recipe: Recipe) -> list[dict[str, Any]]:
    """The model's parameters grouped by what sets their update: (learning-rate multiplier, weight
    decay, schedule layer, whether the rate follows the schedule). A handful of groups, so the optimizer's multi-tensor kernels each see many
    tensors: two for `paper` (conv1, the rest), four for `cuda-convnet-2012` (and weights vs biases).

    Biases get `bias_lr_multiplier` times the rate (the initial rate all run unless
    `bias_lr_follows_schedule`; none in `frozen_bias_layers`), and no weight decay unless
    `bias_weight_decay`.
    Each group lists its parameters' names in `names`, and its schedule layer in `layer` ("" for none).
    """
    groups: dict[tuple, dict[str, Any]] = {}
    for name, param in model.named_parameters():
        module_path, kind = name.rsplit(".", 1)
        layer = layer_name(model, module_path)  # e.g. "conv1", also for torchvision's "features.0"
        is_bias = kind == "bias"
        frozen = is_bias and layer in recipe.frozen_bias_layers
        key = (0.0 if frozen else recipe.bias_lr_multiplier if is_bias else 1.0,
               recipe.weight_decay if (not is_bias or recipe.bias_weight_decay) else 0.0,
               layer if layer in SCHEDULED_LAYERS else "",
               recipe.bias_lr_follows_schedule if is_bias else True)
        group = groups.setdefault(key, {"params": [], "names": [], "lr_multiplier": key[0],
                                        "weight_decay": key[1], "layer": key[2], "follows_schedule": key[3]})
        group["params"].append(param)
        group["names"].append(name)
    return list(groups.values())


def build_optimizer(model: nn.Module, recipe: Recipe, fused: bool = False) -> PaperSGD:
    """The optimizer `alexnet train` runs (and `bench train` times): PaperSGD over `parameter_groups`."""
    return PaperSGD(parameter_groups(model, recipe), lr=recipe.lr, momentum=recipe.momentum, fused=fused,
                    weight_decay=recipe.weight_decay)


def large_batch(recipe: Recipe, paper_batch: int, scaling: str, warmup_epochs: int | None) -> Recipe:
    """Goyal et al. (2017)'s linear scaling rule, a named departure from the paper: with k = batch /
    the preset's batch, the rate x k, reached by a linear warm-up from the unscaled rate over 5 epochs.
    `warmup_epochs` (not None) sets the warm-up's length whatever the rule."""
    k = recipe.batch_size / paper_batch
    if scaling == "linear" and k != 1:
        recipe = replace(recipe, lr=recipe.lr * k, warmup_epochs=5 if k > 1 else 0,
                         warmup_start_factor=min(1.0, 1 / k))
    return recipe if warmup_epochs is None else replace(recipe, warmup_epochs=warmup_epochs)


class LearningRateSchedule:
    """Decides each epoch's learning rates and whether training is over."""

    def __init__(self, recipe: Recipe, classes: int) -> None:
        if recipe.schedule not in ("plateau", "steps"):
            raise ValueError(f"unknown schedule {recipe.schedule!r}")
        self.recipe = recipe
        # The plateau count starts below this val top-1 error: chance less a clear margin.
        self.learning_below = 1.0 - 1.0 / max(1, classes) - recipe.plateau_start_margin
        self.factor = 1.0            # plateau: current fraction of the base rate
        self.drops = 0
        self.best_error = float("inf")
        self.epochs_without_improvement = 0
        self.finished = False

    # -- rates ------------------------------------------------------------------------------------
    def base_factor(self, epoch: int) -> float:
        """Fraction of the initial rate in `epoch` (1-based), before per-group multipliers."""
        if self.recipe.schedule == "plateau":
            return self.factor
        factor = 1.0
        for start, f in self.recipe.lr_steps:
            if epoch >= start:
                factor = f
        return factor

    def base_lr(self, epoch: int, fraction: float = 0.0) -> float:
        """The rate at `fraction` (0-1) of the way through `epoch`."""
        return self.recipe.lr * self.base_factor(epoch) * self.warmup_factor(epoch, fraction)

    def warmup_factor(self, epoch: int, fraction: float = 0.0) -> float:
        """The large-batch warm-up (not the paper's): linear in steps from warmup_start_factor to 1."""
        recipe = self.recipe
        done = (epoch - 1 + fraction) / recipe.warmup_epochs if recipe.warmup_epochs else 1.0
        return recipe.warmup_start_factor + (1.0 - recipe.warmup_start_factor) * min(1.0, done)

    def warming_up(self, epoch: int) -> bool:
        return epoch <= self.recipe.warmup_epochs

    def layer_factor(self, layer: str, epoch: int, follows_schedule: bool = True) -> float:
        """cuda-convnet's late-run treatment of conv1: its weights slowed (the run's notes change epsW
        only, so biases that keep a constant rate are not slowed), then weights and biases at a rate of
        0, which PaperSGD treats as frozen (no update at all, as the original's `Weights::update`)."""
        recipe = self.recipe
        if layer == "conv1":
            if recipe.conv1_freeze_epoch and epoch >= recipe.conv1_freeze_epoch:
                return 0.0
            if recipe.conv1_slow_epoch and epoch >= recipe.conv1_slow_epoch and follows_schedule:
                return recipe.conv1_slow_factor
        return 1.0

    def apply(self, optimizer: Any, epoch: int, fraction: float = 0.0) -> float:
        """Set every group's rate at `fraction` of `epoch`; return the base rate (what metrics.csv logs)."""
        base = self.base_lr(epoch, fraction)
        warm = self.warmup_factor(epoch, fraction)
        for group in optimizer.param_groups:
            follows = group.get("follows_schedule", True)
            rate = base if follows else self.recipe.lr * warm
            group["lr"] = rate * group.get("lr_multiplier", 1.0) * self.layer_factor(group.get("layer", ""), epoch,
                                                                                     follows)
        return base

    # -- end of epoch ------------------------------------------------------------------------------
    def end_epoch(self, epoch: int, val_top1_error: float) -> str | None:
        """Record the epoch's validation error; return "drop", "stop" or None.

        The plateau bookkeeping is updated first, whatever the epoch limit, so that a run stopped
        at its --epochs and resumed with more holds the same state as one that never stopped.
        """
        event = self._plateau(val_top1_error) if self.recipe.schedule == "plateau" else None
        if event != "stop" and epoch >= self.recipe.epochs:
            self.finished = True
            return "stop"
        return event

    @property
    def learning(self) -> bool:
        """Whether the network has left chance: only then can its validation error stop improving."""
        return self.best_error <= self.learning_below

    def _plateau(self, val_top1_error: float) -> str | None:
        recipe = self.recipe
        if val_top1_error < self.best_error - recipe.plateau_min_delta:
            self.best_error = val_top1_error
            self.epochs_without_improvement = 0
            return None
        if not self.learning:  # still at chance: the initial rate stays
            return None
        self.epochs_without_improvement += 1
        if self.epochs_without_improvement < recipe.plateau_patience:
            return None
        self.epochs_without_improvement = 0
        if self.drops < recipe.max_lr_drops:
            self.drops += 1
            self.factor /= 10.0
            return "drop"
        self.finished = True
        return "stop"

    def state_dict(self) -> dict[str, Any]:
        return {"factor": self.factor, "drops": self.drops, "best_error": self.best_error,
                "epochs_without_improvement": self.epochs_without_improvement, "finished": self.finished}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.factor = float(state["factor"])
        self.drops = int(state["drops"])
        self.best_error = float(state["best_error"])
        self.epochs_without_improvement = int(state["epochs_without_improvement"])
        self.finished = bool(state["finished"])
