"""The four-layer CIFAR-10 network of Figure 1 (ReLU against tanh), as FIDELITY.md describes it.

cuda-convnet's "18%" CIFAR-10 net: conv 5x5x32 pad 2, act, max-pool 3/2, norm; conv 5x5x32 pad 2,
act, avg-pool 3/2, norm; conv 5x5x64 pad 2, act, avg-pool 3/2; fully connected to the classes.
Its normalisation is within-map (size 3, scale 5e-5, pow 0.75). Pooling rounds the output size up,
as cuda-convnet did (32 -> 16 -> 8 -> 4). Our reading of its init: N(0, 1e-4) for conv1 and N(0, 0.01)
elsewhere, biases 0. The activation is the one thing Figure 1 changes.
"""

from __future__ import annotations

import torch
from torch import nn

from .lrn import WithinMapResponseNorm

ACTIVATIONS = {"relu": nn.ReLU, "tanh": nn.Tanh}


class FourLayerNet(nn.Module):
    def __init__(self, activation: str = "relu", num_classes: int = 10, input_size: int = 32,
                 norm: bool = True) -> None:
        super().__init__()
        if activation not in ACTIVATIONS:
            raise ValueError(f"activation must be one of {', '.join(ACTIVATIONS)}, got {activation!r}")
        act = ACTIVATIONS[activation]

        def normalise() -> nn.Module:
            return WithinMapResponseNorm(3, 5e-5, 0.75, 1.0) if norm else nn.Identity()

        self.activation = activation
        self.features = nn.Sequential(
            nn.Conv2d(3, 32, 5, padding=2), act(), nn.MaxPool2d(3, 2, ceil_mode=True), normalise(),
            nn.Conv2d(32, 32, 5, padding=2), act(), nn.AvgPool2d(3, 2, ceil_mode=True), normalise(),
            nn.Conv2d(32, 64, 5, padding=2), act(), nn.AvgPool2d(3, 2, ceil_mode=True),
        )
        side = input_size
        for _ in range(3):
            side = -(-(side - 3) // 2) + 1  # ceil((side - 3) / 2) + 1
        if side < 1:
            raise ValueError(f"input size {input_size} is too small for the four-layer net")
        self.classifier = nn.Linear(64 * side * side, num_classes)
        for i, conv in enumerate(m for m in self.features if isinstance(m, nn.Conv2d)):
            nn.init.normal_(conv.weight, 0.0, 1e-4 if i == 0 else 0.01)
            nn.init.zeros_(conv.bias)
        nn.init.normal_(self.classifier.weight, 0.0, 0.01)
        nn.init.zeros_(self.classifier.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x).flatten(1))
