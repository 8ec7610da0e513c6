"""Per-layer output shapes, neuron counts and parameter counts, computed on shapes only (meta device)."""

from __future__ import annotations

import copy
from dataclasses import dataclass

import torch
from torch import nn

from .alexnet import layer_name


@dataclass(frozen=True)
class LayerRow:
    name: str
    kind: str
    output_shape: tuple[int, ...]   # without the batch dimension: (C, H, W) or (features,)
    neurons: int
    parameters: int


def summarize(model: nn.Module, input_size: int) -> list[LayerRow]:
    """One row per leaf module of `model`, in forward order, for a (1, 3, S, S) input."""
    probe = copy.deepcopy(model).to("meta")
    rows: list[LayerRow] = []

    def record(name: str):
        def hook(module: nn.Module, _inputs, output: torch.Tensor) -> None:
            shape = tuple(output.shape[1:])
            params = sum(p.numel() for p in module.parameters(recurse=False))
            rows.append(LayerRow(name, type(module).__name__, shape, int(torch.Size(shape).numel()), params))
        return hook

    for name, module in probe.named_modules():
        if name and not list(module.children()):
            module.register_forward_hook(record(layer_name(probe, name)))
    probe.eval()
    probe(torch.empty(1, 3, input_size, input_size, device="meta"))
    return rows


def format_summary(rows: list[LayerRow], input_size: int) -> str:
    """A plain-text table with the total parameter count on the last line."""
    header = f"{'layer':<10}{'type':<24}{'output (C x H x W)':<22}{'neurons':>12}{'parameters':>14}"
    lines = [f"input: 3 x {input_size} x {input_size} = {3 * input_size * input_size:,} values", header,
             "-" * len(header)]
    for r in rows:
        shape = " x ".join(str(d) for d in r.output_shape)
        lines.append(f"{r.name:<10}{r.kind:<24}{shape:<22}{r.neurons:>12,}{r.parameters:>14,}")
    lines.append("-" * len(header))
    total = sum(r.parameters for r in rows)
    lines.append(f"{'total':<56}{'':>12}{total:>14,}")
    return "\n".join(lines)
