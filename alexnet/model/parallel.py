"""The paper's own parallelism (Section 3.2): the two columns on two devices.

Each device holds half of every layer: half of conv1's and conv3's kernels (which see all maps of the
previous layer), its own column of the grouped conv2, conv4 and conv5, and half of the neurons of each
fully-connected layer. The columns exchange activations only where the paper says the GPUs
communicate: before conv3 and before each fully-connected layer. Weights are interchangeable with the
grouped single-device `AlexNet` (`from_grouped`, `grouped_state_dict`), so a network trained one way
can be evaluated or fine-tuned the other.

Dropout, which acts on each neuron alone, runs once on the gathered layer on the first device, so the
split network draws exactly the grouped network's masks and the two train alike step for step.
`alexnet train --model-parallel DEV0,DEV1` trains this way (training/model_parallel.py). This is model
parallelism for memory, as in 2012 (two 3 GB GPUs); on one modern GPU the grouped model is faster, and
data parallelism (`torchrun`) is the way to use many.
"""

from __future__ import annotations

import copy

import torch
from torch import nn

from .alexnet import AlexNet
from .dropout import PaperDropout
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
        # ("apply", name of a ModuleList), ("gather", "") or ("whole", name in `whole`: applied after a gather)
        self.steps: list[tuple[str, str]] = []
        self.columns = nn.ModuleDict()
        self.whole = nn.ModuleDict()   # modules run once on the gathered layer (dropout)
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
        held: list[str] = []  # dropout waiting for the next exchange
        linears = [n for n, m in grouped.classifier.named_children() if isinstance(m, nn.Linear)]
        for name, module in grouped.classifier.named_children():
            if isinstance(module, nn.Linear):
                if name != linears[0]:
                    self.steps.append(("gather", ""))  # fc7, fc8: inputs from both halves
                    self.steps.extend(("whole", n) for n in held)  # the dropout held back
                    held = []
                self._split(name, module, grouped_input=False, conv=False)
            elif isinstance(module, (PaperDropout, nn.Dropout)):
                # Dropout acts neuron by neuron, so it may wait for the exchange and run once on the whole
                # layer on the first device: one mask drawn as the grouped network draws it (the same random
                # numbers, so the two train alike step for step), sent to the second device with the values.
                self.whole[name] = module
                held.append(name)
            else:
                self._same(name, module)
        if held:
            raise ValueError("dropout after the output layer cannot be split over two devices")
        dtype = next(grouped.parameters()).dtype
        for column, device in enumerate(self.devices):
            for modules in self.columns.values():
                modules[column].to(device=device, dtype=dtype)
        self.load_grouped_state_dict(grouped.state_dict())

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

    # -- names and tensors in the grouped network's terms ----------------------------------------------
    def paper_name(self, module_path: str) -> str:
        """The paper's name of a module: "columns.conv1.0" -> "conv1" (what the schedule's layer rules key on)."""
        parts = module_path.split(".")
        return parts[1] if parts[0] in ("columns", "whole") and len(parts) > 1 else parts[-1]

    def _split_name(self, name: str, column: int) -> str:
        layer, kind = name.split(".")
        return f"columns.{layer}.{column}.{kind}"

    def grouped_tensors(self, split: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Per-parameter tensors named as this network names them (`named_parameters`), e.g. optimizer
        velocities -> the same tensors as the grouped network names and shapes them (on the first device).
        Parameters missing from `split` are missing from the result."""
        parts: dict[str, list[torch.Tensor]] = {}
        for name, column, _ in self._param_map:
            value = split.get(self._split_name(name, column))
            if value is not None:
                parts.setdefault(name, []).append(value.to(self.devices[0]))
        prefix = {name: "features" if name.startswith("conv") else "classifier" for name in parts}
        return {f"{prefix[name]}.{name}": torch.cat(values) for name, values in parts.items()
                if len(values) == COLUMNS}

    def split_tensors(self, grouped: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """The inverse of `grouped_tensors`: each column's rows, on its device."""
        out = {}
        for name, column, rows in self._param_map:
            value = grouped.get(f"features.{name}", grouped.get(f"classifier.{name}"))
            if value is not None:
                out[self._split_name(name, column)] = value[rows].to(self.devices[column])
        return out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        xs = [x.to(d, non_blocking=True) for d in self.devices]
        for kind, name in self.steps:
            if kind == "apply":
                xs = [m(v) for m, v in zip(self.columns[name], xs)]
            elif kind == "whole":  # on the gathered layer, then to the second device as it is
                full = self.whole[name](xs[0])
                xs = [full, full.to(self.devices[1], non_blocking=True)]
            else:  # the columns exchange activations: each device gets both halves, in column order
                if kind == "gather_flat":
                    xs = [v.flatten(1) if v.dim() > 2 else v for v in xs]
                full = torch.cat([xs[0], xs[1].to(self.devices[0], non_blocking=True)], dim=1)
                xs = [full, full.to(self.devices[1], non_blocking=True)]
        return torch.cat([xs[0], xs[1].to(self.devices[0], non_blocking=True)], dim=1)
