"""`train --model-parallel DEV0,DEV1`: the paper's two columns on two devices (Section 3.2).

The split network (`model.parallel.TwoColumnAlexNet`) is what trains. The grouped one-device network
stays the run's record: the weights are copied into it before it validates or is saved, and the
optimizer's velocities are saved under its names and shapes. So a checkpoint is the same file whether
the run trained split or not, and resumes either way. The optimizer's groups come from the same
`parameter_groups` as always: the split network names its layers as the paper does (conv1 ...), so the
schedule's per-layer rules (conv1's slow-down and freeze) reach it.
"""

from __future__ import annotations

from typing import Any

import torch

from ..config import Recipe
from ..errors import AlexNetError
from ..model import AlexNet
from ..model.parallel import TwoColumnAlexNet
from .optim import PaperSGD
from .schedule import build_optimizer


def velocities(optimizer: PaperSGD) -> dict[str, torch.Tensor]:
    """The optimizer's velocity of each parameter, by parameter name (none yet before the first step)."""
    return {name: optimizer.state[p]["velocity"] for group in optimizer.param_groups
            for name, p in zip(group["names"], group["params"]) if "velocity" in optimizer.state.get(p, {})}


class SplitTraining:
    """The split network of a run and the translations between it and the grouped `model`."""

    def __init__(self, model: AlexNet, devices: tuple[str, str]) -> None:
        try:
            self.net = TwoColumnAlexNet(model, devices)
        except ValueError as exc:
            raise AlexNetError(f"--model-parallel: {exc}") from None

    def describe(self) -> str:
        return f"model parallel: one column on {self.net.devices[0]}, the other on {self.net.devices[1]}"

    def record_weights(self, model: AlexNet) -> None:
        """Copy the trained weights into the grouped network (before it validates or is saved)."""
        model.load_state_dict(self.net.grouped_state_dict())

    def optimizer_state(self, optimizer: PaperSGD, model: AlexNet, recipe: Recipe) -> dict[str, Any]:
        """The split optimizer's state as the grouped network's optimizer would hold it."""
        grouped = build_optimizer(model, recipe)  # never steps: it only shapes the saved state
        by_name = self.net.grouped_tensors(velocities(optimizer))
        for name, p in model.named_parameters():
            if name in by_name:
                grouped.state[p] = {"velocity": by_name[name].to(p.device)}
        return grouped.state_dict()

    def load_optimizer_state(self, optimizer: PaperSGD, saved: dict[str, Any], model: AlexNet,
                             recipe: Recipe) -> None:
        """A saved (grouped) optimizer state, split into the columns' parameters."""
        grouped = build_optimizer(model, recipe)
        grouped.load_state_dict(saved)
        params = dict(self.net.named_parameters())
        for name, velocity in self.net.split_tensors(velocities(grouped)).items():
            optimizer.state[params[name]] = {"velocity": velocity.clone()}
