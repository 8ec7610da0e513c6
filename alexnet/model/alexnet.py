"""The network of Figure 2, built from a `ModelConfig`, top to bottom in the paper's order.

Five convolutional stages (Section 3.5) each made of the operations its config lists ("conv",
"relu", "lrn", "within_map_norm", "pool"), then the fully-connected layers with dropout on the
outputs of the hidden ones, then the class scores (softmax is applied by the loss or the caller).

The two columns of Section 3.2 are `groups=2` on the layers that see only their own column's maps
(conv2, conv4, conv5 in the paper); conv3 and the fully-connected layers see both columns.
"""

from __future__ import annotations

import numbers
from collections import OrderedDict

import numpy as np
import torch
from torch import nn

from ..config import ConvSpec, ModelConfig
from .dropout import dropout
from .lrn import LocalResponseNorm, WithinMapResponseNorm


def _conv_stage(index: int, spec: ConvSpec, in_channels: int, cfg: ModelConfig) -> OrderedDict:
    """The named modules of convolutional stage `index` (1-based), e.g. conv1, relu1, norm1, pool1."""
    layers: OrderedDict[str, nn.Module] = OrderedDict()
    columns = max(c.groups for c in cfg.convs)
    for op in spec.ops:
        if op == "conv":
            left, right, top, bottom = spec.padding
            if left == right == top == bottom:
                layers[f"conv{index}"] = nn.Conv2d(in_channels, spec.out_channels, spec.kernel,
                                                   spec.stride, left, groups=spec.groups)
            else:  # asymmetric (the ceil-padding of conv1): pad explicitly, then convolve
                layers[f"pad{index}"] = nn.ZeroPad2d(spec.padding)
                layers[f"conv{index}"] = nn.Conv2d(in_channels, spec.out_channels, spec.kernel,
                                                   spec.stride, 0, groups=spec.groups)
        elif op == "relu":
            layers[f"relu{index}"] = nn.ReLU(inplace=True)
        elif op == "lrn":
            layers[f"norm{index}"] = LocalResponseNorm(
                cfg.lrn_size, cfg.lrn_alpha, cfg.lrn_beta, cfg.lrn_k,
                groups=columns if cfg.lrn_within_column else 1)
        elif op == "within_map_norm":
            layers[f"mapnorm{index}"] = WithinMapResponseNorm(
                cfg.within_map_size, cfg.within_map_scale, cfg.within_map_power, cfg.within_map_k)
        elif op == "pool":
            layers[f"pool{index}"] = nn.MaxPool2d(cfg.pool_kernel, cfg.pool_stride)
        else:
            raise ValueError(f"unknown stage operation {op!r} in conv{index}")
    return layers


class AlexNet(nn.Module):
    """AlexNet as configured by `cfg`, for `num_classes` classes and square `cfg.input_size` inputs.

    Input: float tensor (N, 3, S, S) of mean-subtracted raw RGB values (0-255 scale).
    Output: (N, num_classes) unnormalised scores. Modules are named as in the paper (features.conv1,
    classifier.fc6); `TorchvisionAlexNet` (torchvision_layout.py) numbers them as torchvision does.
    """

    def __init__(self, cfg: ModelConfig, num_classes: int = 1000) -> None:
        super().__init__()
        if not isinstance(num_classes, numbers.Integral) or isinstance(num_classes, bool) or num_classes < 1:
            raise ValueError(f"num_classes must be a whole number of at least 1, got {num_classes!r}")
        self.cfg, self.num_classes = cfg, int(num_classes)
        features: OrderedDict[str, nn.Module] = OrderedDict()
        channels = 3
        for i, spec in enumerate(cfg.convs, start=1):
            features.update(_conv_stage(i, spec, channels, cfg))
            channels = spec.out_channels
        # The fully-connected input size follows from the input size (6x6x256 = 9216 in the paper).
        classifier = self.classifier_layers(flat_features(cfg), len(cfg.convs) + 1)
        self.features = self.sequential(features)
        # torchvision averages the last maps to 6x6 whatever the input size; the paper has no such layer.
        self.avgpool = nn.AdaptiveAvgPool2d(cfg.adaptive_pool) if cfg.adaptive_pool else None
        self.classifier = self.sequential(classifier)
        self._paper_names = self.module_names(features, classifier)
        # Division by the input std happens inside, so exported models need only the mean subtracted.
        scale = 1.0 / torch.tensor(cfg.input_std).view(1, 3, 1, 1) if cfg.input_std else None
        self.register_buffer("input_scale", scale, persistent=False)  # not in state_dict
        self.reset_parameters()

    # -- the parts a layout may arrange differently ------------------------------------------------
    def classifier_layers(self, width: int, first: int) -> OrderedDict:
        """fc6, fc7 with ReLU and dropout on their outputs (Section 4.2), then the class scores."""
        layers: OrderedDict[str, nn.Module] = OrderedDict()
        for n, hidden in enumerate(self.cfg.fc_widths, start=first):
            layers[f"fc{n}"] = nn.Linear(width, hidden)
            layers[f"relu{n}"] = nn.ReLU(inplace=True)
            if self.cfg.dropout > 0:
                layers[f"drop{n}"] = dropout(self.cfg.dropout, self.cfg.dropout_style)
            width = hidden
        layers[f"fc{first + len(self.cfg.fc_widths)}"] = nn.Linear(width, self.num_classes)
        return layers

    def sequential(self, layers: OrderedDict) -> nn.Sequential:
        return nn.Sequential(layers)

    def module_names(self, features: OrderedDict, classifier: OrderedDict) -> dict[str, str]:
        return {}  # modules already carry their paper names

    # -- weights -----------------------------------------------------------------------------------
    def paper_name(self, module_path: str) -> str:
        """The paper's name of a module: "features.conv1" -> "conv1" ("features.0" in torchvision's)."""
        return self._paper_names.get(module_path, module_path.rsplit(".", 1)[-1])

    def reset_parameters(self) -> None:
        """The paper's init (Section 5): weights N(0, std), biases constant, per layer as configured;
        or, with `init="pytorch"`, each layer's own default (as torchvision's AlexNet is initialised)."""
        convs = [m for m in self.features if isinstance(m, nn.Conv2d)]
        linears = [m for m in self.classifier if isinstance(m, nn.Linear)]
        if self.cfg.init == "pytorch":
            for layer in convs + linears:
                layer.reset_parameters()
            return
        for conv, spec in zip(convs, self.cfg.convs):
            nn.init.normal_(conv.weight, 0.0, spec.init_std)
            nn.init.constant_(conv.bias, spec.bias_init)
        for fc in linears[:-1]:
            nn.init.normal_(fc.weight, 0.0, self.cfg.fc_init_std)
            nn.init.constant_(fc.bias, self.cfg.fc_bias_init)
        nn.init.normal_(linears[-1].weight, 0.0, self.cfg.fc_out_init_std)
        nn.init.zeros_(linears[-1].bias)

    # -- forward -----------------------------------------------------------------------------------
    def _flat(self, x: torch.Tensor) -> torch.Tensor:
        if self.input_scale is not None:
            x = x * self.input_scale
        x = self.features(x)
        if self.avgpool is not None:
            x = self.avgpool(x)
        return x.flatten(1)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """The last hidden layer's activations (fc7 after ReLU, 4096-d in the paper): Figure 4's space.

        Before the dropout that follows fc7, whose test-time scaling is not part of the activations."""
        x = self._flat(x)
        modules = list(self.classifier)
        last_relu = max(i for i, m in enumerate(modules) if isinstance(m, nn.ReLU))
        for module in modules[:last_relu + 1]:
            x = module(x)
        return x

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self._flat(x))


def layer_name(model: nn.Module, module_path: str) -> str:
    """The paper's name of a module of `model` ("features.0" -> "conv1" in the torchvision layout,
    "columns.conv1.0" -> "conv1" in the two-device network); for other networks, the last part of the path."""
    paper_name = getattr(model, "paper_name", None)
    return paper_name(module_path) if paper_name is not None else module_path.rsplit(".", 1)[-1]


def mean_image_for(cfg: ModelConfig, training_mean: np.ndarray) -> np.ndarray:
    """The (S, S, 3) image subtracted from this network's inputs: the training set's per-pixel mean (the
    paper), or the configured per-channel mean filling the same shape (torchvision's normalisation)."""
    if not cfg.input_mean:
        return training_mean
    return np.broadcast_to(np.asarray(cfg.input_mean, np.float32), training_mean.shape).copy()


def flat_features(cfg: ModelConfig) -> int:
    """Number of values the conv stages produce for one input, by the output-size formulas."""
    side = cfg.input_size
    for spec in cfg.convs:
        for op in spec.ops:
            if op == "conv":
                left, right, top, bottom = spec.padding
                if left + right != top + bottom:
                    raise ValueError("conv padding must add the same amount to height and width")
                padded = side + left + right
                side = (padded - spec.kernel) // spec.stride + 1 if padded >= spec.kernel else 0
            elif op == "pool":
                side = (side - cfg.pool_kernel) // cfg.pool_stride + 1 if side >= cfg.pool_kernel else 0
        if side < 1:
            raise ValueError(f"input size {cfg.input_size} is too small for this network")
    if cfg.adaptive_pool:
        side = cfg.adaptive_pool
    return side * side * cfg.convs[-1].out_channels
