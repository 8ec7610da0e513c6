"""Local response normalisation, Section 3.3 of the paper, taken literally.

    b[i] = a[i] / (k + alpha * sum_{j = max(0, i - n//2)}^{min(N - 1, i + n//2)} a[j]^2) ** beta

Here `alpha` multiplies the *sum* of squares. PyTorch's `nn.LocalResponseNorm` and Caffe divide
alpha by n, so this layer with alpha=1e-4 equals `nn.LocalResponseNorm(5, alpha=5e-4, ...)`.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def cross_map_sum_of_squares(x: torch.Tensor, size: int) -> torch.Tensor:
    """Sum of a[j]^2 over the `size` maps centred on each map (zero beyond the edges)."""
    half = size // 2
    squares = F.pad(x * x, (0, 0, 0, 0, half, half))  # zero maps before the first and after the last
    channels = x.shape[1]
    # A sum of `size` shifted views: cheap forward and backward on every device (pooling along
    # the channel axis has a very slow CPU backward).
    total = squares[:, 0:channels]
    for shift in range(1, size):
        total = total + squares[:, shift:shift + channels]
    return total


class LocalResponseNorm(nn.Module):
    """The paper's brightness normalisation across `size` adjacent kernel maps.

    `groups` > 1 normalises each column separately (the window never crosses a column boundary),
    which is what two GPUs holding one column each could compute; `groups=1` is one window over
    all maps, as in the formula's N.
    """

    def __init__(self, size: int = 5, alpha: float = 1e-4, beta: float = 0.75, k: float = 2.0,
                 groups: int = 1) -> None:
        super().__init__()
        if size < 1 or size % 2 == 0:
            raise ValueError(f"LocalResponseNorm size must be a positive odd number, got {size}")
        self.size, self.alpha, self.beta, self.k, self.groups = size, alpha, beta, k, groups

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.groups == 1:
            sums = cross_map_sum_of_squares(x, self.size)
        else:
            n, c, h, w = x.shape
            per_column = x.reshape(n * self.groups, c // self.groups, h, w)
            sums = cross_map_sum_of_squares(per_column, self.size).reshape(n, c, h, w)
        return x / (self.k + self.alpha * sums).pow(self.beta)

    def extra_repr(self) -> str:
        return f"size={self.size}, alpha={self.alpha}, beta={self.beta}, k={self.k}, groups={self.groups}"


class WithinMapResponseNorm(nn.Module):
    """cuda-convnet's same-map ("rnorm") normalisation, used only by the `cuda-convnet-2012` preset.

    b = a / (k + scale / size^2 * sum over the size x size neighbourhood of a^2) ** pow.
    cuda-convnet divided its `scale` by the neighbourhood's size^2, as it divided the cross-map scale
    by n; we follow that reading.
    """

    def __init__(self, size: int = 5, scale: float = 1e-3, power: float = 0.75, k: float = 1.0) -> None:
        super().__init__()
        if size < 1 or size % 2 == 0:
            raise ValueError(f"WithinMapResponseNorm size must be a positive odd number, got {size}")
        self.size, self.scale, self.power, self.k = size, scale, power, k

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        half = self.size // 2
        mean = F.avg_pool2d(x * x, self.size, stride=1, padding=half, count_include_pad=True)
        # mean * size^2 is the neighbourhood sum; times scale / size^2 leaves scale * mean.
        return x / (self.k + self.scale * mean).pow(self.power)

    def extra_repr(self) -> str:
        return f"size={self.size}, scale={self.scale}, power={self.power}, k={self.k}"
