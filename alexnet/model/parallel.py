"""The paper's own parallelism (Section 3.2): the two columns on two devices.

Each device holds half of every layer: half of conv1's and conv3's kernels (which see all maps of the
previous layer), its own column of the grouped conv2, conv4 and conv5, and half of the neurons of each
fully-connected layer. The columns exchange activations only where the paper says the GPUs
communicate: before conv3 and before each fully-connected layer. Weights are interchangeable with the
grouped single-device `AlexNet` (`from_grouped`, `grouped_state_dict`), so a network trained one way
can be evaluated or fine-tuned the other.

This is model parallelism for memory, as in 2012 (two 3 GB GPUs); on one modern GPU the grouped model
is faster, and data parallelism (`torchrun`) is the way to use many.
"""

from __future__ import annotations

import copy

import torch
from torch import nn

from .alexnet import AlexNet
from .lrn import LocalResponseNorm

COLUMNS = 2


def _halves(n: int) -> list[slice]:
    first = (n + 1) // 2
    return [slice(0, first), slice(first, n)]


class TwoColumnAlexNet(nn.Module):
    """`AlexNet` split by column over `devices` (two of them; both may be the same, e.g. for tests)."""

    def __init__(self, grouped: AlexNet, devices: tuple[str | torch.device, str | torch.device] = ("cuda:0", "cuda:1")):
        super().__init__()
        if len(devices) != COLUMNS:
            raise ValueError(f"two devices are needed, got {devices}")
        if grouped.cfg.layout != "paper":
            raise ValueError(f"only the paper's layout can be split over two devices, not {grouped.cfg.layout!r}")
        if any(c.groups not in (1, COLUMNS) for c in grouped.cfg.convs):
            raise ValueError("only networks of one or two columns can be split over two devices")
        self.devices = tuple(torch.device(d) for d in devices)
        self.cfg, self.num_classes = grouped.cfg, grouped.num_classes
        self.steps: list[tuple[str, str]] = []   # ("gather", "") or ("apply", name of a ModuleList)
        self.columns = nn.ModuleDict()
        # (grouped parameter name, column, the column's slice of the output rows)
        self._param_map: list[tuple[str, int, slice]] = []
        first_conv = True
        for name, module in grouped.features.named_children():
            if isinstance(module, nn.Conv2d):
                if module.groups == 1 and not first_conv:
                    self.steps.append(("gather", ""))  # conv3: every kernel sees both columns' maps
                self._split(name, module, grouped_input=module.groups == COLUMNS, conv=True)
                first_conv = False
            elif isinstance(module, LocalResponseNorm):
                if module.groups != COLUMNS:
                    raise ValueError("LRN must stay within a column (lrn_within_column) to split the network")
                per_column = LocalResponseNorm(module.size, module.alpha, module.beta, module.k, groups=1)
                self._same(name, per_column)
            else:
                self._same(name, module)
        self.steps.append(("gather_flat", ""))
        linears = [n for n, m in grouped.classifier.named_children() if isinstance(m, nn.Linear)]
        for name, module in grouped.classifier.named_children():
            if isinstance(module, nn.Linear):
                if name != linears[0]:
                    self.steps.append(("gather", ""))  # fc7, fc8: inputs from both halves
                self._split(name, module, grouped_input=False, conv=False)
            else:
                self._same(name, module)
        self.load_grouped_state_dict(grouped.state_dict())
        for column, device in enumerate(self.devices):
            for modules in self.columns.values():
                modules[column].to(device)

    def _same(self, name: str, module: nn.Module) -> None:
        self.columns[name] = nn.ModuleList([copy.deepcopy(module) for _ in range(COLUMNS)])
        self.steps.append(("apply", name))

    def _split(self, name: str, module: nn.Module, grouped_input: bool, conv: bool) -> None:
        halves = []
        out_features = module.out_channels if conv else module.out_features
        in_features = module.in_channels if conv else module.in_features
        for column, rows in enumerate(_halves(out_features)):
            n_out = rows.stop - rows.start
            if conv:
                n_in = in_features // COLUMNS if grouped_input else in_features
                half = nn.Conv2d(n_in, n_out, module.kernel_size, module.stride, module.padding)
            else:
                half = nn.Linear(in_features, n_out)
            halves.append(half)
            self._param_map.append((f"{name}.weight", column, rows))
            self._param_map.append((f"{name}.bias", column, rows))
        self.columns[name] = nn.ModuleList(halves)
        self.steps.append(("apply", name))

    def load_grouped_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        """Copy the grouped model's weights (features.conv1.weight, ...) into the two halves."""
        with torch.no_grad():
            for name, column, rows in self._param_map:
                layer, kind = name.split(".")
                source = state.get(f"features.{name}", state.get(f"classifier.{name}"))
                if source is None:
                    raise KeyError(f"grouped state dict has no {name}")
                getattr(self.columns[layer][column], kind).copy_(source[rows])

    def grouped_state_dict(self, gradients: bool = False) -> dict[str, torch.Tensor]:
        """The weights (or their gradients) as the grouped single-device model names and shapes them."""
        parts: dict[str, list[torch.Tensor]] = {}
        for name, column, _ in self._param_map:
            layer, kind = name.split(".")
            param = getattr(self.columns[layer][column], kind)
            value = param.grad if gradients else param
            if value is None:
                raise ValueError(f"{name} of column {column} has no gradient yet")
            parts.setdefault(name, []).append(value.detach().cpu())
        state = {}
        for name, tensors in parts.items():
            prefix = "features" if name.startswith("conv") else "classifier"
            state[f"{prefix}.{name}"] = torch.cat(tensors)
        return state

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        xs = [x.to(d, non_blocking=True) for d in self.devices]
        for kind, name in self.steps:
            if kind == "apply":
                xs = [m(v) for m, v in zip(self.columns[name], xs)]
            else:  # the columns exchange activations: each device gets both halves, in column order
                if kind == "gather_flat":
                    xs = [v.flatten(1) if v.dim() > 2 else v for v in xs]
                full = torch.cat([xs[0], xs[1].to(self.devices[0], non_blocking=True)], dim=1)
                xs = [full, full.to(self.devices[1], non_blocking=True)]
        return torch.cat([xs[0], xs[1].to(self.devices[0], non_blocking=True)], dim=1)
