"""Everything a run changes as it trains, and nothing else: `TrainState`. Its `state_dict()` is the
checkpoint, written here and nowhere else, and `load_state_dict()` the one reader of the training part
of it (`runs/checkpoint.py` checks what every reader needs; evaluation and export read the network part
through `runs/trained.py`).

The checkpoint holds: what the network is (preset, model_config, classes, class_names, ablations,
mean_image, data_size) and its weights (model); what a resume needs (recipe, seed, data,
data_fingerprint, optimizer, schedule, scaler, history, epoch: the last finished one; partial: where a
mid-epoch checkpoint stopped, with the random state and the epoch's sums so far).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from ..config import Recipe, to_dict
from ..errors import AlexNetError
from ..model import AlexNet, build_network
from ..runs.checkpoint import load_checkpoint
from .model_parallel import SplitTraining
from .plan import Plan
from .schedule import LearningRateSchedule, build_optimizer
from .step import SGDStep, SpeedSettings, grad_scaler


class TrainState:
    def __init__(self, model: AlexNet, recipe: Recipe, classes: int, device: torch.device, speed: SpeedSettings,
                 split: SplitTraining | None = None) -> None:
        """A network's training state at its start: the optimizer over its parameter groups (the split
        network's, under --model-parallel), the schedule, the gradient scaler, no history."""
        self.model, self.split = model, split
        self.optimizer = build_optimizer(split.net if split else model, recipe, fused=speed.fused_optimizer)
        self.schedule = LearningRateSchedule(recipe, classes)
        self.scaler = grad_scaler(device, speed)
        self.history: list[dict[str, Any]] = []
        self.epoch = 0                            # the last finished epoch
        self.mid_epoch: dict[str, Any] | None = None  # where a mid-epoch checkpoint stopped (its "partial")

    @classmethod
    def start(cls, plan: Plan) -> "TrainState":
        """The plan's network from its initialisation (or --init-from), restored from the plan's checkpoint."""
        torch.manual_seed(plan.seed)  # Section 5's init, the same for every rank
        model = build_network(plan.model_cfg, plan.dataset.num_classes).to(plan.device)
        if plan.config.init_from and not plan.checkpoint:
            plan.log(init_from(model, plan.config.init_from))
        split = SplitTraining(model, plan.config.model_parallel) if plan.config.model_parallel else None
        state = cls(model, plan.recipe, plan.dataset.num_classes, plan.device, plan.speed, split)
        if plan.checkpoint:
            state.load_state_dict(plan.checkpoint)
        return state

    def sgd_step(self, device: torch.device, speed: SpeedSettings, distributed: bool = False) -> SGDStep:
        """The step `alexnet train` runs on this state (and `bench train` times)."""
        wrap = (lambda m: DistributedDataParallel(m, device_ids=[device.index] if device.type == "cuda" else None)
                ) if distributed else None
        return SGDStep(self.split.net if self.split else self.model, self.optimizer, self.scaler, device, speed, wrap,
                       move=not self.split)

    def trained_network(self) -> AlexNet:
        """The grouped network with the trained weights (copied from the split one under --model-parallel)."""
        if self.split:
            self.split.record_weights(self.model)
        return self.model

    # -- the checkpoint ----------------------------------------------------------------------------------
    def state_dict(self, plan: Plan, mid_epoch: dict[str, Any] | None = None) -> dict[str, Any]:
        """The checkpoint; with `mid_epoch` (where in the epoch, the sums so far, the random state), one of a
        step inside an epoch, stored under the key "partial"."""
        dataset = plan.dataset
        optimizer = (self.split.optimizer_state(self.optimizer, self.model, plan.recipe) if self.split
                     else self.optimizer.state_dict())
        return {
            "preset": plan.preset.name, "model_config": to_dict(plan.model_cfg), "recipe": to_dict(plan.recipe),
            "classes": dataset.classes, "class_names": dataset.class_names, "ablations": list(plan.preset.ablations),
            "data": str(dataset.root.resolve()), "data_size": dataset.size, "data_fingerprint": dataset.fingerprint,
            "seed": plan.seed, "epoch": self.epoch,
            # The training mean travels with the weights: test-time inputs need exactly this mean.
            "mean_image": torch.from_numpy(plan.mean_image),
            "model": self.trained_network().state_dict(), "optimizer": optimizer,
            "schedule": self.schedule.state_dict(), "scaler": self.scaler.state_dict(),
            "history": self.history, **({"partial": mid_epoch} if mid_epoch else {})}

    def load_state_dict(self, ckpt: dict[str, Any]) -> None:
        """What a resume restores; a field that does not fit is named in one line (load_checkpoint has
        checked what every reader needs, this what resuming needs)."""
        try:
            self.model.load_state_dict(ckpt["model"])
            if self.split:
                self.split.net.load_grouped_state_dict(self.model.state_dict())
                self.split.load_optimizer_state(self.optimizer, ckpt["optimizer"], self.model, self.schedule.recipe)
            else:
                self.optimizer.load_state_dict(ckpt["optimizer"])
            self.schedule.load_state_dict(ckpt["schedule"])
            if "scaler" in ckpt:
                self.scaler.load_state_dict(ckpt["scaler"])
            if not isinstance(ckpt["history"], list) or not all(isinstance(r, dict) for r in ckpt["history"]):
                raise TypeError("'history' is not a list of epoch rows")
            self.history, self.epoch, self.mid_epoch = list(ckpt["history"]), int(ckpt["epoch"]), ckpt.get("partial")
            if self.mid_epoch is not None and not isinstance(self.mid_epoch.get("rng"), torch.Tensor):
                raise TypeError("'partial' holds no random-generator state")
        except (KeyError, TypeError, ValueError, RuntimeError, IndexError, AttributeError) as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise AlexNetError(f"{ckpt['path']}: cannot resume from it ({first}); start a new run, or --init-from it "
                               "for its weights") from None


def init_from(model: nn.Module, source: str) -> str:
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
