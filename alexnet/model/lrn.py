"""Local response normalisation, Section 3.3 of the paper, taken literally.

    b[i] = a[i] / (k + alpha * sum_{j = max(0, i - n//2)}^{min(N - 1, i + n//2)} a[j]^2) ** beta

Here `alpha` multiplies the *sum* of squares. PyTorch's `nn.LocalResponseNorm` and Caffe divide
alpha by n, so this layer with alpha=1e-4 equals `nn.LocalResponseNorm(5, alpha=5e-4, ...)`.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


def cross_map_window_sum(values: torch.Tensor, size: int, groups: int = 1) -> torch.Tensor:
    """Sum of `values` over the `size` maps centred on each map, zero beyond the edges of each group.

    Computed as in-place adds of shifted channel slices into one buffer: no padding copies and no
    autograd graph (pooling along the channel axis, as `nn.LocalResponseNorm` does, has a very slow
    CPU backward). The window is symmetric (odd `size`), so this is also its own transpose.
    """
    n, c, h, w = values.shape
    per_group = values.reshape(n, groups, c // groups, h, w)
    total = per_group.clone()
    maps = per_group.shape[2]
    for shift in range(1, min(size // 2, maps - 1) + 1):
        total[:, :, shift:] += per_group[:, :, :maps - shift]   # maps below the centre
        total[:, :, :maps - shift] += per_group[:, :, shift:]   # maps above the centre
    return total.reshape(n, c, h, w)


def _wide(dtype: torch.dtype) -> torch.dtype:
    """The dtype the squares and sums are computed in: at least fp32 (a half-precision value above 256
    squares to inf in fp16, and the layer would output 0), fp64 stays fp64."""
    return torch.promote_types(dtype, torch.float32)


class _CrossMapNorm(torch.autograd.Function):
    """b = a * d^-beta with d = k + alpha * window_sum(a^2), and its hand-derived gradient.

    da[j] = g[j] * d[j]^-beta - 2 * alpha * beta * a[j] * window_sum(g * a * d^(-beta-1))[j].
    Written out because the autograd graph of the plain expression costs ~10x the convolutions on CPU.
    Squares, sums and the scale are computed in at least fp32 whatever the input's dtype.
    """

    @staticmethod
    def compute(x: torch.Tensor, size: int, alpha: float, beta: float, k: float, groups: int):
        """(output, denominator, scale): the forward pass with what the backward needs."""
        wide = x.to(_wide(x.dtype))
        denominator = cross_map_window_sum(wide * wide, size, groups).mul_(alpha).add_(k)
        scale = denominator.pow(-beta)
        return (wide * scale).to(x.dtype), denominator, scale

    @staticmethod
    def forward(ctx, x: torch.Tensor, size: int, alpha: float, beta: float, k: float, groups: int):
        out, denominator, scale = _CrossMapNorm.compute(x, size, alpha, beta, k, groups)
        ctx.save_for_backward(x, denominator, scale)
        ctx.settings = (size, alpha, beta, groups)
        return out

    @staticmethod
    def backward(ctx, grad_out: torch.Tensor):
        x, denominator, scale = ctx.saved_tensors
        size, alpha, beta, groups = ctx.settings
        wide, g = x.to(scale.dtype), grad_out.to(scale.dtype)
        inner = cross_map_window_sum(g * wide * scale / denominator, size, groups)
        grad_x = g * scale - inner.mul_(wide).mul_(2 * alpha * beta)
        return grad_x.to(x.dtype), None, None, None, None, None


def channel_band(channels: int, size: int, groups: int, dtype: torch.dtype, device) -> torch.Tensor:
    """0/1 matrix B with B[i, j] = 1 where maps i and j are at most size//2 apart in the same group,
    so that (per-pixel row of maps) @ B is the window sum of `cross_map_window_sum`."""
    i = torch.arange(channels, device=device)
    per_group = channels // groups
    same_group = (i[:, None] // per_group) == (i[None, :] // per_group)
    return (((i[:, None] - i[None, :]).abs() <= size // 2) & same_group).to(dtype)


class _BandedCrossMapNorm(torch.autograd.Function):
    """The same layer and gradient for GPUs: the window sums are matrix products of each pixel's row of
    maps with `channel_band`, and the rest is elementwise work torch.compile fuses (faster than shifted
    adds on a GPU: BENCHMARKS.md). Squares, sums, the denominator and the scale are computed in at least
    fp32 whatever the input's dtype; rows are read in place for channels-last tensors (the permute is free).
    """

    @staticmethod
    def compute(x: torch.Tensor, size: int, alpha: float, beta: float, k: float, groups: int):
        """(output, per-pixel rows of maps, denominator, scale, band): the forward pass and what the
        backward needs."""
        n, c, h, w = x.shape
        rows = x.permute(0, 2, 3, 1).reshape(-1, c)
        wide = rows.to(_wide(x.dtype))
        band = channel_band(c, size, groups, wide.dtype, x.device)
        with torch.autocast(x.device.type, enabled=False):  # autocast would cast the product back to bf16/fp16
            denominator = ((wide * wide) @ band).mul_(alpha).add_(k)
        scale = denominator.pow(-beta)
        out = (wide * scale).to(x.dtype).reshape(n, h, w, c).permute(0, 3, 1, 2)
        return out, rows, denominator, scale, band

    @staticmethod
    def forward(ctx, x: torch.Tensor, size: int, alpha: float, beta: float, k: float, groups: int):
        out, rows, denominator, scale, band = _BandedCrossMapNorm.compute(x, size, alpha, beta, k, groups)
        ctx.save_for_backward(rows, denominator, scale, band)
        ctx.settings = (x.shape[0], x.shape[2], x.shape[3], x.shape[1], 2 * alpha * beta)
        return out

    @staticmethod
    def backward(ctx, grad_out: torch.Tensor):
        rows, denominator, scale, band = ctx.saved_tensors
        n, h, w, c, two_alpha_beta = ctx.settings
        g = grad_out.permute(0, 2, 3, 1).reshape(-1, c).to(scale.dtype)
        wide = rows.to(scale.dtype)
        with torch.autocast(rows.device.type, enabled=False):
            inner = (g * wide * scale / denominator) @ band
        grad_x = g * scale - inner * wide * two_alpha_beta
        return grad_x.to(rows.dtype).reshape(n, h, w, c).permute(0, 3, 1, 2), None, None, None, None, None


class LocalResponseNorm(nn.Module):
    """The paper's brightness normalisation across `size` adjacent kernel maps.

    `groups` > 1 normalises each column separately (the window never crosses a column boundary),
    which is what two GPUs holding one column each could compute; `groups=1` is one window over
    all maps, as in the formula's N.
    """

    def __init__(self, size: int = 5, alpha: float = 1e-4, beta: float = 0.75, k: float = 2.0,
                 groups: int = 1) -> None:
        super().__init__()
        if not isinstance(size, int) or size < 1 or size % 2 == 0:
            raise ValueError(f"LocalResponseNorm size must be a positive odd number, got {size!r}")
        if not (0 <= alpha < math.inf and 0 <= beta < math.inf and 0 < k < math.inf):  # NaN fails each
            raise ValueError(f"LocalResponseNorm needs finite alpha >= 0, beta >= 0 and k > 0 (a zero window "
                             f"would divide by 0), got alpha={alpha}, beta={beta}, k={k}")
        if not isinstance(groups, int) or groups < 1:
            raise ValueError(f"LocalResponseNorm groups must be a whole number of at least 1, got {groups!r}")
        self.size, self.alpha, self.beta, self.k, self.groups = size, alpha, beta, k, groups

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # Two implementations of one formula, each the faster where it runs (both tested against it).
        norm = _BandedCrossMapNorm if x.is_cuda else _CrossMapNorm
        if torch.is_grad_enabled() and x.requires_grad:  # training: the hand-written backward
            return norm.apply(x, self.size, self.alpha, self.beta, self.k, self.groups)
        # Inference: plain tensor operations, which torch.jit.trace and the ONNX exporter can record.
        return norm.compute(x, self.size, self.alpha, self.beta, self.k, self.groups)[0]

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
        wide = x.to(_wide(x.dtype))  # squares in at least fp32: fp16 overflows above 256
        mean = F.avg_pool2d(wide * wide, self.size, stride=1, padding=half, count_include_pad=True)
        # mean * size^2 is the neighbourhood sum; times scale / size^2 leaves scale * mean.
        return (wide / (self.k + self.scale * mean).pow(self.power)).to(x.dtype)

    def extra_repr(self) -> str:
        return f"size={self.size}, scale={self.scale}, power={self.power}, k={self.k}"
