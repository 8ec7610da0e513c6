"""What a preset is made of: the network's shape (`ModelConfig`) and the training recipe (`Recipe`).

Both are frozen dataclasses of plain values, so a preset can be printed, saved into a checkpoint as
a dict and rebuilt from it (`from_dict`), and compared. The presets themselves live in `presets.py`.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any

from .errors import ConfigError, require

LAYOUTS = ("paper", "torchvision")   # ModelConfig.layout
INITS = ("normal", "pytorch")          # ModelConfig.init
STAGE_OPS = ("conv", "relu", "lrn", "within_map_norm", "pool")   # ConvSpec.ops
SCHEDULES = ("plateau", "steps")       # Recipe.schedule
MEAN_CROPS = ("aligned", "center")     # Recipe.mean_crop
DROPOUT_STYLES = ("paper", "inverted")   # ModelConfig.dropout_style (model/dropout.py)
PCA_SCALES = ("eigenvalues", "sqrt")     # Recipe.pca_scale


def _finite(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


def _whole(x: Any, minimum: int) -> bool:
    return isinstance(x, int) and not isinstance(x, bool) and x >= minimum


@dataclass(frozen=True)
class ConvSpec:
    out_channels: int
    kernel: int
    stride: int = 1
    # (left, right, top, bottom) zero padding, as nn.ZeroPad2d takes it.
    padding: tuple[int, int, int, int] = (0, 0, 0, 0)
    # 2: the layer sees only its own column's maps (the paper's conv2, conv4, conv5).
    groups: int = 1
    init_std: float = 0.01
    bias_init: float = 0.0
    # The operations of this stage in order, from "conv", "relu", "lrn", "within_map_norm", "pool".
    ops: tuple[str, ...] = ("conv", "relu")

    def __post_init__(self) -> None:
        for name in ("out_channels", "kernel", "stride", "groups"):
            require(_whole(getattr(self, name), 1), f"model.convs.{name}", getattr(self, name), "a whole number >= 1")
        require(self.out_channels % self.groups == 0, "model.convs.groups", self.groups, "must divide out_channels")
        require(len(self.padding) == 4 and all(_whole(p, 0) for p in self.padding), "model.convs.padding",
                self.padding, "four whole numbers >= 0: left, right, top, bottom")
        require(_finite(self.init_std) and self.init_std >= 0, "model.convs.init_std", self.init_std, "a number >= 0")
        require(_finite(self.bias_init), "model.convs.bias_init", self.bias_init, "a finite number")
        require("conv" in self.ops and set(self.ops) <= set(STAGE_OPS), "model.convs.ops", self.ops,
                f"'conv' and any of {', '.join(STAGE_OPS)}")


@dataclass(frozen=True)
class ModelConfig:
    input_size: int
    convs: tuple[ConvSpec, ...]
    fc_widths: tuple[int, ...]          # hidden fully-connected layers (fc6, fc7)
    fc_init_std: float = 0.01
    fc_bias_init: float = 1.0           # hidden fc layers; the output layer's bias starts at 0
    fc_out_init_std: float = 0.01
    dropout: float = 0.5
    # "paper": kept outputs pass unchanged while training, all are halved at test time (Section 4.2 and
    # the original code); "inverted": torch.nn.Dropout (x2 while training, nothing at test time).
    dropout_style: str = "paper"
    lrn_size: int = 5
    lrn_alpha: float = 1e-4             # multiplies the sum of squares (the paper's literal reading)
    lrn_beta: float = 0.75
    lrn_k: float = 2.0
    lrn_within_column: bool = True
    within_map_size: int = 5
    within_map_scale: float = 1e-3
    within_map_power: float = 0.75
    within_map_k: float = 1.0
    pool_kernel: int = 3
    pool_stride: int = 2
    # How the modules are laid out and named. "paper": named stages (features.conv1, classifier.fc6),
    # dropout on the outputs of fc6/fc7. "torchvision": torchvision's numbered layout
    # (features.0 ... classifier.6), dropout on the inputs of fc6/fc7, as torchvision.models.alexnet.
    layout: str = "paper"
    adaptive_pool: int = 0              # >0: average-pool the last maps to this side (torchvision: 6)
    # "normal": the paper's N(0, std) weights and constant biases; "pytorch": each layer's own default.
    init: str = "normal"
    # What input the network expects. Empty: minus the training set's per-pixel mean image, 0-255
    # scale (the paper). Otherwise minus this per-channel mean, then divided by this per-channel std
    # (0-255 scale; torchvision's ImageNet normalisation is mean 255*(0.485, 0.456, 0.406)).
    input_mean: tuple[float, ...] = ()
    input_std: tuple[float, ...] = ()

    def __post_init__(self) -> None:
        require(_whole(self.input_size, 1), "model.input_size", self.input_size, "a whole number >= 1")
        require(len(self.convs) >= 1 and all(isinstance(c, ConvSpec) for c in self.convs), "model.convs",
                self.convs, "at least one convolutional stage")
        require(all(_whole(w, 1) for w in self.fc_widths), "model.fc_widths", self.fc_widths, "whole numbers >= 1")
        for name in ("fc_init_std", "fc_out_init_std", "lrn_alpha", "lrn_beta", "lrn_k", "within_map_scale",
                     "within_map_power", "within_map_k"):
            require(_finite(getattr(self, name)) and getattr(self, name) >= 0, f"model.{name}", getattr(self, name),
                    "a number >= 0")
        require(_finite(self.fc_bias_init), "model.fc_bias_init", self.fc_bias_init, "a finite number")
        require(_finite(self.dropout) and 0 <= self.dropout < 1, "model.dropout", self.dropout, "in [0, 1)")
        require(self.dropout_style in DROPOUT_STYLES, "model.dropout_style", self.dropout_style,
                f"one of {', '.join(DROPOUT_STYLES)}")
        for name in ("lrn_size", "within_map_size", "pool_kernel", "pool_stride"):
            require(_whole(getattr(self, name), 1), f"model.{name}", getattr(self, name), "a whole number >= 1")
        require(self.layout in LAYOUTS, "model.layout", self.layout, f"one of {', '.join(LAYOUTS)}")
        require(_whole(self.adaptive_pool, 0), "model.adaptive_pool", self.adaptive_pool, "a whole number >= 0")
        require(self.init in INITS, "model.init", self.init, f"one of {', '.join(INITS)}")
        require(len(self.input_mean) in (0, 3) and all(_finite(v) for v in self.input_mean), "model.input_mean",
                self.input_mean, "empty, or three numbers (R, G, B)")
        require(len(self.input_std) in (0, 3) and all(_finite(v) and v > 0 for v in self.input_std),
                "model.input_std", self.input_std, "empty, or three positive numbers (R, G, B)")


@dataclass(frozen=True)
class Recipe:
    batch_size: int = 128
    lr: float = 0.01
    momentum: float = 0.9
    weight_decay: float = 5e-4
    bias_lr_multiplier: float = 1.0
    # False: biases keep bias_lr_multiplier x the initial rate all run (cuda-convnet's constant epsB),
    # whatever the schedule does to the weights' rate.
    bias_lr_follows_schedule: bool = True
    frozen_bias_layers: tuple[str, ...] = ()   # layers whose biases never learn (no preset: a knob for configs)
    # The paper's text reads "for weight w"; whether biases decay too is not said. Our reading: they do.
    bias_weight_decay: bool = True
    epochs: int = 90
    schedule: str = "plateau"            # "plateau" (paper) or "steps" (cuda-convnet's logged run)
    plateau_patience: int = 3            # epochs without improvement before lr /= 10
    plateau_min_delta: float = 1e-3      # an improvement is a drop of val top-1 error by this much
    # Epochs without improvement count only once val top-1 error has been this far below chance
    # (1 - 1/classes): a run still on its initial plateau keeps its rate (our reading, schedule.py).
    plateau_start_margin: float = 0.02
    max_lr_drops: int = 3                # the paper: "reduced three times prior to termination"
    lr_steps: tuple[tuple[int, float], ...] = ()   # (first epoch, factor of base lr), 1-based
    # Not the paper's (named departure for large batches, Goyal et al. 2017): over the first warmup_epochs
    # the rate rises step by step, linearly, from warmup_start_factor x its value to its value.
    warmup_epochs: int = 0
    warmup_start_factor: float = 1.0
    conv1_slow_epoch: int = 0            # 0 = never
    conv1_slow_factor: float = 0.1
    conv1_freeze_epoch: int = 0          # 0 = never
    crop_fraction: float = 7 / 8         # 224 of 256
    flip: bool = True
    pca_std: float = 0.1                 # std of the colour-noise alphas; 0 turns it off
    # What multiplies each alpha: "eigenvalues" (the paper's text, alpha_i x lambda_i) or "sqrt" (the
    # original code's "colour standard deviations", read as sqrt(lambda_i)).
    pca_scale: str = "eigenvalues"
    train_input_scale: float = 1.0       # training crops x this after the colour noise (cuda-convnet: 1/1.1)
    pca_off_epoch: int = 0               # 0 = never
    mean_crop: str = "aligned"           # "aligned": mean cropped with the image; "center": always centre
    eval_batch_size: int = 128

    def __post_init__(self) -> None:
        for name in ("batch_size", "epochs", "plateau_patience", "eval_batch_size"):
            require(_whole(getattr(self, name), 1), f"recipe.{name}", getattr(self, name), "a whole number >= 1")
        for name in ("max_lr_drops", "conv1_slow_epoch", "conv1_freeze_epoch", "pca_off_epoch", "warmup_epochs"):
            require(_whole(getattr(self, name), 0), f"recipe.{name}", getattr(self, name), "a whole number >= 0")
        require(_finite(self.lr) and self.lr > 0, "recipe.lr", self.lr, "a positive number")
        require(_finite(self.momentum) and 0 <= self.momentum < 1, "recipe.momentum", self.momentum, "in [0, 1)")
        for name in ("weight_decay", "bias_lr_multiplier", "plateau_min_delta", "plateau_start_margin",
                     "conv1_slow_factor", "pca_std"):
            require(_finite(getattr(self, name)) and getattr(self, name) >= 0, f"recipe.{name}", getattr(self, name),
                    "a number >= 0")
        require(_finite(self.warmup_start_factor) and 0 < self.warmup_start_factor <= 1, "recipe.warmup_start_factor",
                self.warmup_start_factor, "in (0, 1]")
        require(self.schedule in SCHEDULES, "recipe.schedule", self.schedule, f"one of {', '.join(SCHEDULES)}")
        require(all(len(step) == 2 and _whole(step[0], 1) and _finite(step[1]) and step[1] >= 0
                    for step in self.lr_steps), "recipe.lr_steps", self.lr_steps,
                "pairs (first epoch >= 1, factor of the base rate >= 0)")
        require(_finite(self.crop_fraction) and 0 < self.crop_fraction <= 1, "recipe.crop_fraction",
                self.crop_fraction, "in (0, 1]")
        require(self.pca_scale in PCA_SCALES, "recipe.pca_scale", self.pca_scale, f"one of {', '.join(PCA_SCALES)}")
        require(_finite(self.train_input_scale) and self.train_input_scale > 0, "recipe.train_input_scale",
                self.train_input_scale, "a positive number")
        require(all(isinstance(x, str) for x in self.frozen_bias_layers), "recipe.frozen_bias_layers",
                self.frozen_bias_layers, "layer names such as conv1")
        require(self.mean_crop in MEAN_CROPS, "recipe.mean_crop", self.mean_crop, f"one of {', '.join(MEAN_CROPS)}")


def to_dict(obj: Any) -> dict[str, Any]:
    return dataclasses.asdict(obj)


def _tuplify(value: Any) -> Any:
    if isinstance(value, list):
        return tuple(_tuplify(v) for v in value)
    return value


def _known(d: dict[str, Any], cls, where: str) -> set[str]:
    """The field names of `cls`; a key of `d` that is not one is refused by name (a run must never go on
    with defaults in place of settings it cannot read)."""
    if not isinstance(d, dict):
        raise ConfigError(f"{where} is not a mapping of settings: {type(d).__name__}")
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(d) - known)
    if unknown:
        raise ConfigError(f"{where} has unknown setting(s) {', '.join(unknown)} (known: {', '.join(sorted(known))})")
    return known


def recipe_from_dict(d: dict[str, Any]) -> Recipe:
    _known(d, Recipe, "recipe")
    return Recipe(**{k: _tuplify(v) for k, v in d.items()})


def model_config_from_dict(d: dict[str, Any]) -> ModelConfig:
    known = _known(d, ModelConfig, "model config")
    for conv in d.get("convs") or []:
        _known(conv, ConvSpec, "model config convs")
    values = {k: _tuplify(v) for k, v in d.items() if k in known and k != "convs"}
    # Written before dropout_style existed, when every network used torch's inverted dropout: a
    # checkpoint or file of that time keeps computing what it was trained to compute.
    values.setdefault("dropout_style", "inverted")
    convs = tuple(ConvSpec(**{k: _tuplify(v) for k, v in c.items()}) for c in d["convs"])
    return ModelConfig(convs=convs, **values)
