"""The settings, each declared once: what a preset is made of, the network's shape (`ModelConfig`) and
the training recipe (`Recipe`), and what `alexnet train` is asked to do (`TrainConfig`).

All are frozen dataclasses of plain values, checked where they are defined, so a preset can be printed,
saved into a checkpoint as a dict and rebuilt from it (`from_dict`), and compared. The presets
themselves live in `presets.py`; the command line of `train` is generated from TrainConfig.
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import AlexNetError, ConfigError, UsageError, require

LAYOUTS = ("paper", "torchvision")   # ModelConfig.layout
INITS = ("normal", "pytorch")          # ModelConfig.init
STAGE_OPS = ("conv", "relu", "lrn", "within_map_norm", "pool")   # ConvSpec.ops
SCHEDULES = ("plateau", "steps")       # Recipe.schedule
MEAN_CROPS = ("aligned", "center")     # Recipe.mean_crop
DROPOUT_STYLES = ("paper", "inverted")   # ModelConfig.dropout_style (model/dropout.py)
PCA_SCALES = ("eigenvalues", "sqrt")     # Recipe.pca_scale


def _finite(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


def _whole(x: Any, minimum: int, maximum: float = math.inf) -> bool:
    return isinstance(x, int) and not isinstance(x, bool) and minimum <= x <= maximum


def _within(obj: Any, where: str, names: tuple[str, ...], low: float, high: float, whole: bool = False) -> None:
    """Each named setting a finite number (a whole one if `whole`) from low to high."""
    for name in names:
        value = getattr(obj, name)
        ok = _whole(value, int(low), high) if whole else (_finite(value) and low <= value <= high)
        require(ok, f"{where}.{name}", value, f"a {'whole ' if whole else ''}number from {_number(low)} to {_number(high)}")


def _number(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else f"{x:g}"


MAX_WIDTH = 65_536      # maps or neurons in one layer
MAX_SIDE = 4096         # pixels
MAX_EPOCHS = 100_000
MAX_BATCH = 1 << 20
MAX_COUNT = 10**9       # images, steps, workers, seconds: beyond any machine, and no overflow anywhere below
MAX_SEED = 2**63 - 1
LAYER_NAME = re.compile(r"^(conv|fc)([1-9][0-9]?)$")


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
        _within(self, "model.convs", ("out_channels",), 1, MAX_WIDTH, whole=True)
        _within(self, "model.convs", ("kernel", "stride", "groups"), 1, 64, whole=True)
        require(self.out_channels % self.groups == 0, "model.convs.groups", self.groups, "must divide out_channels")
        require(len(self.padding) == 4 and all(_whole(p, 0, 64) for p in self.padding), "model.convs.padding",
                self.padding, "four whole numbers from 0 to 64: left, right, top, bottom")
        _within(self, "model.convs", ("init_std",), 0, 10)
        _within(self, "model.convs", ("bias_init",), -100, 100)
        require("conv" in self.ops and set(self.ops) <= set(STAGE_OPS) and len(self.ops) <= 8, "model.convs.ops",
                self.ops, f"'conv' and any of {', '.join(STAGE_OPS)}")


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
        _within(self, "model", ("input_size",), 1, MAX_SIDE, whole=True)
        require(1 <= len(self.convs) <= 16 and all(isinstance(c, ConvSpec) for c in self.convs), "model.convs",
                self.convs, "1 to 16 convolutional stages")
        require(1 <= len(self.fc_widths) <= 8 and all(_whole(w, 1, MAX_WIDTH) for w in self.fc_widths),
                "model.fc_widths", self.fc_widths, f"1 to 8 hidden layers of 1 to {MAX_WIDTH} neurons")
        _within(self, "model", ("fc_init_std", "fc_out_init_std"), 0, 10)
        _within(self, "model", ("fc_bias_init",), -100, 100)
        _within(self, "model", ("lrn_alpha", "lrn_beta", "within_map_scale", "within_map_power"), 0, 10)
        for name in ("lrn_k", "within_map_k"):  # not 0: that would divide an all-zero window by 0
            value = getattr(self, name)
            require(_finite(value) and 0 < value <= 1000, f"model.{name}", value, "a number above 0, at most 1000")
        require(_finite(self.dropout) and 0 <= self.dropout < 1, "model.dropout", self.dropout, "in [0, 1)")
        require(self.dropout_style in DROPOUT_STYLES, "model.dropout_style", self.dropout_style,
                f"one of {', '.join(DROPOUT_STYLES)}")
        _within(self, "model", ("lrn_size", "within_map_size", "pool_kernel", "pool_stride"), 1, 64, whole=True)
        require(self.layout in LAYOUTS, "model.layout", self.layout, f"one of {', '.join(LAYOUTS)}")
        _within(self, "model", ("adaptive_pool",), 0, 64, whole=True)
        require(self.init in INITS, "model.init", self.init, f"one of {', '.join(INITS)}")
        require(len(self.input_mean) in (0, 3) and all(_finite(v) and 0 <= v <= 255 for v in self.input_mean),
                "model.input_mean", self.input_mean, "empty, or three numbers (R, G, B) from 0 to 255")
        require(len(self.input_std) in (0, 3) and all(_finite(v) and 0 < v <= 1000 for v in self.input_std),
                "model.input_std", self.input_std, "empty, or three numbers (R, G, B) above 0, at most 1000")


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
        _within(self, "recipe", ("batch_size", "eval_batch_size"), 1, MAX_BATCH, whole=True)
        _within(self, "recipe", ("epochs",), 1, MAX_EPOCHS, whole=True)
        _within(self, "recipe", ("plateau_patience",), 1, 1000, whole=True)
        _within(self, "recipe", ("max_lr_drops",), 0, 1000, whole=True)
        _within(self, "recipe", ("conv1_slow_epoch", "conv1_freeze_epoch", "pca_off_epoch", "warmup_epochs"), 0,
                MAX_EPOCHS, whole=True)
        require(_finite(self.lr) and 0 < self.lr <= 100, "recipe.lr", self.lr, "a number above 0, at most 100")
        require(_finite(self.momentum) and 0 <= self.momentum < 1, "recipe.momentum", self.momentum, "in [0, 1)")
        _within(self, "recipe", ("weight_decay", "plateau_min_delta", "plateau_start_margin", "conv1_slow_factor"), 0, 1)
        _within(self, "recipe", ("bias_lr_multiplier", "pca_std"), 0, 100)
        require(_finite(self.warmup_start_factor) and 0 < self.warmup_start_factor <= 1, "recipe.warmup_start_factor",
                self.warmup_start_factor, "in (0, 1]")
        require(self.schedule in SCHEDULES, "recipe.schedule", self.schedule, f"one of {', '.join(SCHEDULES)}")
        require(len(self.lr_steps) <= 100 and all(
                    len(step) == 2 and _whole(step[0], 1, MAX_EPOCHS) and _finite(step[1]) and 0 <= step[1] <= 100
                    for step in self.lr_steps), "recipe.lr_steps", self.lr_steps,
                "up to 100 pairs (first epoch >= 1, factor of the base rate from 0 to 100)")
        require(_finite(self.crop_fraction) and 0 < self.crop_fraction <= 1, "recipe.crop_fraction",
                self.crop_fraction, "in (0, 1]")
        require(self.pca_scale in PCA_SCALES, "recipe.pca_scale", self.pca_scale, f"one of {', '.join(PCA_SCALES)}")
        require(_finite(self.train_input_scale) and 0 < self.train_input_scale <= 10, "recipe.train_input_scale",
                self.train_input_scale, "a number above 0, at most 10")
        require(all(isinstance(x, str) and LAYER_NAME.match(x) for x in self.frozen_bias_layers),
                "recipe.frozen_bias_layers", self.frozen_bias_layers, "layer names such as conv1 or fc6")
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
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(d) - set(fields), key=str)
    if unknown:
        raise ConfigError(f"{where} has unknown setting(s) {', '.join(map(str, unknown))} "
                          f"(known: {', '.join(sorted(fields))})")
    for name, value in d.items():
        expected = str(fields[name].type).split("[")[0].split(" ")[0]
        if not _of_type(value, expected):
            raise ConfigError(f"{where}.{name} must be {_TYPE_WORDS.get(expected, expected)}, got "
                              f"{' '.join(repr(value).split())[:60]}")
    return set(fields)


_TYPE_WORDS = {"int": "a whole number", "float": "a number", "bool": "true or false", "str": "a string",
               "tuple": "a list"}


def _of_type(value: Any, expected: str) -> bool:
    """Exactly the declared kind: no "no" for a switch, no 1.0 for a count, no string for a number."""
    if expected == "int":
        return isinstance(value, int) and not isinstance(value, bool)
    if expected == "float":
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if expected == "bool":
        return isinstance(value, bool)
    if expected == "str":
        return isinstance(value, str)
    if expected == "tuple":
        return isinstance(value, (list, tuple))
    return True


def recipe_from_dict(d: dict[str, Any]) -> Recipe:
    _known(d, Recipe, "recipe")
    return Recipe(**{k: _tuplify(v) for k, v in d.items()})


def model_config_from_dict(d: dict[str, Any]) -> ModelConfig:
    if not isinstance(d, dict):
        raise ConfigError(f"model config is not a mapping of settings: {type(d).__name__}")
    known = _known(d, ModelConfig, "model")
    for conv in d.get("convs") or []:
        _known(conv, ConvSpec, "model.convs")
    values = {k: _tuplify(v) for k, v in d.items() if k in known and k != "convs"}
    convs = tuple(ConvSpec(**{k: _tuplify(v) for k, v in c.items()}) for c in d["convs"])
    return ModelConfig(convs=convs, **values)


# --- what `alexnet train` is asked to do -----------------------------------------------------------------
# Each setting is declared once, below, with its type, default, range and help; the command line is
# generated from the declarations (`add_flags`), and the ranges are checked when a TrainConfig is made,
# whoever makes it (the command line, the Python API, the experiments).

PIPELINES = {
    "host": "the loader's workers crop and reflect (and on the CPU do the float work too)",
    "device": "the workers gather whole stored images (decoding JPEGs on the CPU); crop, reflection, mean, "
              "colour noise and layout run on the training device in one place",
    "nvjpeg": "the workers gather JPEG bytes only; the GPU decodes them (torchvision's nvJPEG), then as 'device'",
}
PRECISIONS = ("fp32", "bf16", "fp16")
LR_SCALINGS = ("none", "linear")


@dataclass(frozen=True)
class Flag:
    """How a setting appears on the command line and what values it takes."""
    help: str
    name: str | None = None            # e.g. "--epochs"; None: not on the command line (Python API only)
    parse: Any = str                   # what turns the flag's text into the value
    kind: str = "value"                # "value", "switch" (--x), "toggle" (--x/--no-x), "list" (repeatable)
    metavar: str | None = None
    choices: str | tuple[str, ...] | None = None   # the allowed values, or the name of a set the parser is given
    low: float | None = None           # inclusive bounds
    high: float | None = None
    positive: bool = False             # a number > 0 (and finite)
    high_text: str | None = None       # how the upper bound reads in the message, if not "at most HIGH"


def setting(default: Any = dataclasses.MISSING, **flag: Any) -> Any:
    """A dataclass field declared with its Flag (see TrainConfig)."""
    return dataclasses.field(default=default, metadata={"flag": Flag(**flag)})


def _two_devices(text: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in text.split(","))


@dataclass(frozen=True)
class TrainConfig:
    """Every setting of `alexnet train`. Numbers have bounds; None means "the preset's" or "the device's"."""
    data: Path = setting(name="--data", parse=Path, metavar="DATA", help="prepared dataset folder")
    out: Path = setting(name="--out", parse=Path, metavar="RUN", help="run folder for checkpoints and metrics")
    preset: str | None = setting(None, name="--preset", choices="presets",
                                 help="network and recipe (default cuda-convnet-2012, what produced the paper's "
                                      "numbers; `paper` is the text read literally): {choices}")
    config: str | None = setting(None, name="--config", metavar="FILE",
                                 help="network and recipe from a JSON file instead of a preset (`alexnet config show "
                                      "NAME` prints one to edit; a run's config.json works too)")
    epochs: int | None = setting(None, name="--epochs", parse=int, low=1, high=MAX_EPOCHS,
                                 help="most epochs to train (default: the preset's)")
    batch_size: int | None = setting(None, name="--batch-size", parse=int, low=1, high=MAX_BATCH,
                                     help="images per step (default: the preset's)")
    lr: float | None = setting(None, name="--lr", parse=float, positive=True, high=100.0,
                               help="initial learning rate (default: the preset's)")
    lr_scaling: str = setting("none", name="--lr-scaling", choices=LR_SCALINGS,
                              help="not the paper's: 'linear' multiplies the rate by --batch-size / the preset's batch "
                                   "and warms it up over 5 epochs (Goyal et al. 2017), for large batches (default none)")
    warmup_epochs: int | None = setting(None, name="--warmup-epochs", parse=int, low=0, high=MAX_EPOCHS,
                                        help="epochs of linear warm-up (default: 5 with --lr-scaling linear to a larger "
                                             "batch, else 0)")
    seed: int | None = setting(None, name="--seed", parse=int, low=0, high=MAX_SEED, high_text="below 2**63",
                               help="seed for init, data order, augmentation, dropout (default 0; a resumed run "
                                    "keeps its own)")
    device: str | None = setting(None, name="--device", help="cpu, cuda or cuda:N (default: cuda when available)")
    resume: bool = setting(False, name="--resume", kind="switch", help="continue the run in RUN from its last.pt")
    auto_resume: bool = setting(False, name="--auto-resume", kind="switch",
                                help="resume when RUN/last.pt exists, else start (for restarts: torchrun "
                                     "--max-restarts, requeues)")
    time_limit: float | None = setting(None, name="--time-limit", parse=float, positive=True, high=MAX_COUNT,
                                       metavar="SECONDS", help="start no epoch that would end after this many seconds "
                                                               "of training (resume to go on)")
    precision: str | None = setting(None, name="--precision", choices=PRECISIONS,
                                    help="training arithmetic (default: bf16 on CUDA, fp16 where bf16 is missing, with the "
                                         "LRN's fp32 sums on TF32; fp32 on CPU; fp32 asked: IEEE products throughout)")
    channels_last: bool | None = setting(None, name="--channels-last", kind="toggle",
                                         help="NHWC memory layout (default: on for CUDA, off on CPU)")
    compile: bool | None = setting(None, name="--compile", kind="toggle",
                                   help="torch.compile the model (default: on for CUDA, except with --model-parallel; "
                                        "refused on CPU, where it is slower and miscomputes gradients)")
    workers: int | None = setting(None, name="--workers", parse=int, low=0, high=1024,
                                  help="data-loading processes (default on cuda: this rank's share of the usable cores less two, "
                                       "at most 16; 0 on cpu, where the loading runs in the training process, beside the "
                                       "training threads)")
    pipeline: str = setting("host", name="--pipeline", choices=tuple(PIPELINES),
                            help="where crops are cut and JPEGs decoded: "
                                 + "; ".join(f"{k}: {v}" for k, v in PIPELINES.items()) + " (default host)")
    model_parallel: tuple[str, ...] | None = setting(
        None, name="--model-parallel", parse=_two_devices, metavar="DEV0,DEV1",
        help="the paper's own parallelism (Section 3.2): one column of the network per device, e.g. cuda:0,cuda:1; "
             "they exchange activations only at conv3 and the fully-connected layers (default: the whole network "
             "on --device)")
    ablations: tuple[str, ...] = setting((), name="--ablate", kind="list", choices="ablations", metavar="NAME",
                                         help="remove one ingredient of the preset (repeatable): {choices}")
    init_from: str | None = setting(None, name="--init-from", metavar="RUN_OR_CHECKPOINT",
                                    help="start from another run's weights (fine-tuning); a different class count gets "
                                         "a new output layer")
    checkpoint_every: int | None = setting(None, name="--checkpoint-every", parse=int, low=1, high=MAX_COUNT,
                                           metavar="STEPS", help="also write last.pt every STEPS steps inside an epoch "
                                                                 "(resumable to the step)")
    skip_bad_batches: bool = setting(False, name="--skip-bad-batches", kind="switch",
                                     help="skip (and count) a batch whose loss is not finite or explodes, instead of "
                                          "stopping")
    log_steps: int | None = setting(None, name="--log-steps", parse=int, low=1, high=MAX_COUNT, metavar="N",
                                    help="also append the mean training loss of every N steps to RUN/steps.csv (rank "
                                         "0's share)")
    tensorboard: bool = setting(False, name="--tensorboard", kind="switch",
                                help="also log scalars, learning rate and the conv1 kernels to RUN/tensorboard")
    progress: bool = setting(True, help="show progress bars (the command line's --quiet turns them off)")
    log: Any = dataclasses.field(default=None, compare=False, repr=False)  # takes each line to print; None: print

    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):
            check_setting(f, getattr(self, f.name))
        if self.config and self.preset:
            raise AlexNetError("give --preset or --config, not both")
        if self.model_parallel is not None and (len(self.model_parallel) != 2 or not all(self.model_parallel)):
            raise UsageError(f"--model-parallel takes two devices, e.g. cuda:0,cuda:1; got "
                             f"{','.join(self.model_parallel)!r}")
        repeated = sorted({a for a in self.ablations if self.ablations.count(a) > 1})
        if repeated:  # one-column twice would halve the kernels again, no-middle-conv twice drop conv5 too
            raise UsageError(f"--ablate {repeated[0]} is given twice; each ablation removes its ingredient once")
        data, out = Path(self.data).resolve(), Path(self.out).resolve()
        blocking = next((p for p in (out, *out.parents) if p.exists() and not p.is_dir()), None)
        if blocking is not None:
            raise AlexNetError(f"--out {self.out}: {blocking} is a file, not a folder")
        if out == data or data in out.parents:
            raise AlexNetError(f"--out {self.out}: the run folder must not be inside the dataset folder {self.data}")


def check_setting(f: dataclasses.Field, value: Any) -> None:
    """One setting against its declared choices and bounds; UsageError (exit status 2) naming the flag."""
    spec: Flag | None = f.metadata.get("flag")
    if spec is None or value is None:
        return
    name = spec.name or f.name
    if isinstance(spec.choices, tuple):
        for item in (value if spec.kind == "list" else (value,)):
            if item not in spec.choices:
                raise UsageError(f"{name} must be one of {', '.join(spec.choices)}, got {item!r}")
    if spec.low is None and spec.high is None and not spec.positive:
        return
    if not _finite(value):
        raise UsageError(f"{name} must be a {'positive ' if spec.positive else ''}number, got {value!r}")
    if spec.positive and not value > 0:
        raise UsageError(f"{name} must be a positive number, got {value}")
    if spec.low is not None and value < spec.low:
        raise UsageError(f"{name} must be at least {spec.low}, got {value}")
    if spec.high is not None and value > spec.high:
        raise UsageError(f"{name} must be {spec.high_text or f'at most {_number(spec.high)}'}, got {value}")


def add_flags(parser: Any, cls: type, choices: dict[str, tuple[str, ...]]) -> None:
    """The command line of a settings class: one argparse argument per declared flag. `choices` names the
    allowed values that live above this module (preset and ablation names)."""
    for f in dataclasses.fields(cls):
        spec: Flag | None = f.metadata.get("flag")
        if spec is None or spec.name is None:
            continue
        allowed = choices[spec.choices] if isinstance(spec.choices, str) else spec.choices
        text = spec.help.replace("{choices}", ", ".join(allowed or ()))
        kw: dict[str, Any] = {"dest": f.name, "help": text}
        if spec.kind == "switch":
            kw.update(action="store_true")
        elif spec.kind == "toggle":
            kw.update(action=argparse.BooleanOptionalAction, default=None)
        else:
            required = f.default is dataclasses.MISSING
            kw.update(type=spec.parse, metavar=spec.metavar, choices=allowed, required=required,
                      default=[] if spec.kind == "list" else (None if required else f.default))
            if spec.kind == "list":
                kw.update(action="append")
        parser.add_argument(spec.name, **kw)


def config_from_args(cls: type, args: Any, **extra: Any) -> Any:
    """The settings class made from parsed arguments (lists become tuples), plus `extra` values."""
    values = {}
    for f in dataclasses.fields(cls):
        spec: Flag | None = f.metadata.get("flag")
        if spec is not None and spec.name is not None and hasattr(args, f.name):
            value = getattr(args, f.name)
            values[f.name] = tuple(value) if isinstance(value, list) else value
    return cls(**values, **extra)
