"""Every named preset in one place, each difference from the paper stated beside it.

- `paper`: the paper read literally (Sections 3-5 and FIDELITY.md).
- `cuda-convnet-2012`: what the original code's configuration files ran, where they differ.
- `small`: the same eight-layer structure scaled for 32-64 px images and CPU training.
- `paper-6conv`, `small-6conv`: those with the sixth convolutional layer of Section 6.
- `torchvision`: torchvision's AlexNet, whose weight files load as they are (not the paper's network).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from .config import ConvSpec, ModelConfig, Recipe, model_config_from_dict, recipe_from_dict, to_dict
from .errors import AlexNetError, ConfigError


@dataclass(frozen=True)
class Preset:
    name: str
    description: str
    model: ModelConfig
    recipe: Recipe
    ablations: tuple[str, ...] = ()   # already applied to model and recipe (a run's config.json may carry some)


# --- paper -----------------------------------------------------------------------------------
# 224 vs 55: a 224-pixel input with an 11x11 stride-4 kernel gives 54.25 positions. Our choice,
# named "ceil-padding": pad 3 zero pixels on the right and bottom only, which is what cuda-convnet's
# ceiling in its output-size formula amounted to, so conv1 is 55x55x96 as in the paper's counts
# (and not Caffe's 227 input or torchvision's 2 pixels on every side).
CONV1_CEIL_PADDING = (0, 3, 0, 3)

_PAPER_CONVS = (
    ConvSpec(96, 11, stride=4, padding=CONV1_CEIL_PADDING, groups=1, bias_init=0.0,
             ops=("conv", "relu", "lrn", "pool")),
    ConvSpec(256, 5, padding=(2, 2, 2, 2), groups=2, bias_init=1.0,
             ops=("conv", "relu", "lrn", "pool")),
    ConvSpec(384, 3, padding=(1, 1, 1, 1), groups=1, bias_init=0.0, ops=("conv", "relu")),
    ConvSpec(384, 3, padding=(1, 1, 1, 1), groups=2, bias_init=1.0, ops=("conv", "relu")),
    ConvSpec(256, 3, padding=(1, 1, 1, 1), groups=2, bias_init=1.0, ops=("conv", "relu", "pool")),
)

PAPER = Preset(
    name="paper",
    description="The paper taken literally: two columns, LRN after ReLU (alpha on the sum), "
                "3/2 pooling, dropout after fc6/fc7, N(0,0.01) init, the paper's SGD rule, "
                "lr /10 on plateau three times.",
    model=ModelConfig(input_size=224, convs=_PAPER_CONVS, fc_widths=(4096, 4096)),
    recipe=Recipe(),
)

# --- cuda-convnet-2012 --------------------------------------------------------------------------
# The original layers-145 / layer-params-145 files, as FIDELITY.md reports them:
# conv1: LRN on the linear output, pooling, then ReLU; conv2: ReLU, LRN, then a within-map
# normalisation (size 5, scale 0.001, pow 0.75); conv5: pooling before ReLU (the same function).
# The LRN scale 1e-4 was divided by the size 5, so each squared term is weighted 2e-5: in our
# formula, where alpha multiplies the sum, alpha = 2e-5 (PyTorch's nn.LocalResponseNorm alpha=1e-4).
# Init std 0.03 for conv3-conv5. Biases: epsB = 0.02 (twice the initial weight rate) in every layer,
# constant all run (the run's notes lower only the weights' epsW), no weight decay. conv1's epsB is
# 0.02 too in every parameter file where its weights still learn (layer-params-126-2012-full, -141);
# only -145, written after the freeze, shows 0.
# The logged schedule: 0.01, 0.001 at epoch 25, 0.0001 at 51, 0.00001 at 79, stop after 90;
# conv1's weights 0.0001 -> 0.00001 at 67 (x0.1, recorded in the file's notes), and conv1's weights and
# biases at 0 from 72: frozen exactly (a rate of 0 skips the update, velocity included, as the
# original's Weights::update does); colour noise off from 67, and with it the division by 1.1 (both sit
# under one `if` in convdata.py); mean = centre crop of the mean. Dropout as the paper (kept outputs unscaled).
# Colour noise: alpha_i x "colour standard deviation" (our reading: sqrt of the eigenvalue), then the
# whole training crop divided by 1.1. Not reproduced (named choices): the pool of 1,024 noise vectors
# drawn in advance and one crop position per chunk of 32 images; we draw per image and presentation.
_CUDA_CONVS = (
    replace(_PAPER_CONVS[0], ops=("conv", "lrn", "pool", "relu")),
    replace(_PAPER_CONVS[1], ops=("conv", "relu", "lrn", "within_map_norm", "pool")),
    replace(_PAPER_CONVS[2], init_std=0.03),
    replace(_PAPER_CONVS[3], init_std=0.03),
    replace(_PAPER_CONVS[4], init_std=0.03, ops=("conv", "pool", "relu")),
)

CUDA_CONVNET_2012 = Preset(
    name="cuda-convnet-2012",
    description="What the original 2012 code ran: LRN before ReLU in conv1, extra within-map "
                "norm in conv2, LRN alpha 2e-5 per term, conv3-5 init 0.03, biases at a constant 0.02 "
                "without decay, colour noise by sqrt eigenvalues then crops /1.1, the "
                "logged step schedule with conv1 slowed and then frozen and colour noise off late.",
    model=replace(PAPER.model, convs=_CUDA_CONVS, lrn_alpha=2e-5),
    recipe=replace(
        PAPER.recipe,
        bias_lr_multiplier=2.0,
        bias_lr_follows_schedule=False,
        bias_weight_decay=False,
        pca_scale="sqrt",
        train_input_scale=1 / 1.1,
        schedule="steps",
        lr_steps=((25, 0.1), (51, 0.01), (79, 0.001)),
        epochs=90,
        conv1_slow_epoch=67,
        conv1_slow_factor=0.1,
        conv1_freeze_epoch=72,
        pca_off_epoch=67,
        mean_crop="center",
    ),
)

# --- small ---------------------------------------------------------------------------------------
# Same structure (five convs in two columns where the paper has them, LRN after conv1/conv2,
# overlapping 3/2 pooling after conv1/conv2/conv5, two dropout fc layers), a quarter to a third
# of the paper's widths in the convs and 1/16 in the fc layers, with a 5x5 stride-1 conv1 for 28-56 px
# crops. Departures, each for CPU-speed on small images:
# - the init std is 0.05 for the convs and 0.03 for fc (N(0, 0.01) learns far too slowly at this
#   width in a few CPU epochs; see the README);
# - the fc biases start at 0.1;
# - batch 32 gives four times the paper's steps per epoch on small datasets: measured on the demo's
#   data, batch 32 reached 37% val error after 4 epochs where batch 64 was still at 73%;
# - lr 0.005 (0.01 diverged in the demo at batch 64 and learned more slowly at batch 32).
_SMALL_CONVS = (
    ConvSpec(32, 5, stride=1, padding=(2, 2, 2, 2), groups=1, init_std=0.05, bias_init=0.0,
             ops=("conv", "relu", "lrn", "pool")),
    ConvSpec(64, 5, padding=(2, 2, 2, 2), groups=2, init_std=0.05, bias_init=1.0,
             ops=("conv", "relu", "lrn", "pool")),
    ConvSpec(96, 3, padding=(1, 1, 1, 1), groups=1, init_std=0.05, bias_init=0.0, ops=("conv", "relu")),
    ConvSpec(96, 3, padding=(1, 1, 1, 1), groups=2, init_std=0.05, bias_init=1.0, ops=("conv", "relu")),
    ConvSpec(64, 3, padding=(1, 1, 1, 1), groups=2, init_std=0.05, bias_init=1.0,
             ops=("conv", "relu", "pool")),
)

SMALL = Preset(
    name="small",
    description="The paper's eight-layer structure scaled for 32-64 px images and CPU training "
                "(crops 7/8 of the stored size).",
    model=ModelConfig(input_size=28, convs=_SMALL_CONVS, fc_widths=(256, 256),
                      fc_init_std=0.03, fc_bias_init=0.1, fc_out_init_std=0.03),
    recipe=replace(PAPER.recipe, batch_size=32, lr=0.005, epochs=30),
)


# --- six convolutional layers ------------------------------------------------------------------
# Section 6: "one CNN, with an extra sixth convolutional layer over the last pooling layer", pre-trained
# on ImageNet Fall 2011 and fine-tuned on ILSVRC-2012 (39.0% / 16.6%). The paper gives no shape for it;
# our named choice: 3x3 kernels, as many maps as conv5, padding 1 (the fc input keeps its size), the two
# columns kept apart as in conv4/conv5, ReLU, bias 1, the stage's init std.
def with_sixth_conv(preset: Preset, name: str) -> Preset:
    last = preset.model.convs[-1]
    sixth = ConvSpec(last.out_channels, 3, padding=(1, 1, 1, 1), groups=last.groups, init_std=last.init_std,
                     bias_init=1.0, ops=("conv", "relu"))
    return Preset(name=name,
                  description=f"{preset.name} with a sixth 3x3 convolutional layer over the last pooling layer "
                              "(Section 6's pre-trained network).",
                  model=replace(preset.model, convs=preset.model.convs + (sixth,)),
                  recipe=preset.recipe)


PAPER_6CONV = with_sixth_conv(PAPER, "paper-6conv")
SMALL_6CONV = with_sixth_conv(SMALL, "small-6conv")


# --- torchvision ---------------------------------------------------------------------------------
# torchvision.models.alexnet, key for key and shape for shape, so its weight files load as they are
# (`alexnet convert torchvision`). It is not the paper's network, and each difference is torchvision's:
# one column (no groups), 64/192/384/256/256 maps, no LRN, 2 pixels of padding on every side of conv1,
# a 6x6 adaptive average pool before fc6, dropout on the inputs of fc6/fc7, PyTorch's default init,
# and inputs normalised per channel with ImageNet's mean and std (255 x (0.485, 0.456, 0.406) and
# 255 x (0.229, 0.224, 0.225) on our 0-255 scale; the division happens inside the network).
# Trained or fine-tuned here, it follows the paper's recipe (our choice: torchvision's own training
# recipe, random-resized crops and lr steps every 30 epochs, is not reproduced).
IMAGENET_CHANNEL_MEAN = (0.485 * 255, 0.456 * 255, 0.406 * 255)
IMAGENET_CHANNEL_STD = (0.229 * 255, 0.224 * 255, 0.225 * 255)

_TORCHVISION_CONVS = (
    ConvSpec(64, 11, stride=4, padding=(2, 2, 2, 2), ops=("conv", "relu", "pool")),
    ConvSpec(192, 5, padding=(2, 2, 2, 2), ops=("conv", "relu", "pool")),
    ConvSpec(384, 3, padding=(1, 1, 1, 1), ops=("conv", "relu")),
    ConvSpec(256, 3, padding=(1, 1, 1, 1), ops=("conv", "relu")),
    ConvSpec(256, 3, padding=(1, 1, 1, 1), ops=("conv", "relu", "pool")),
)

TORCHVISION = Preset(
    name="torchvision",
    description="torchvision.models.alexnet exactly (state_dict keys features.0 ... classifier.6): one column, "
                "no LRN, 6x6 average pool, dropout before fc6/fc7, ImageNet mean/std inputs; the paper's recipe.",
    model=ModelConfig(input_size=224, convs=_TORCHVISION_CONVS, fc_widths=(4096, 4096), layout="torchvision",
                      dropout_style="inverted", adaptive_pool=6, init="pytorch", input_mean=IMAGENET_CHANNEL_MEAN,
                      input_std=IMAGENET_CHANNEL_STD),
    recipe=PAPER.recipe,
)

PRESETS: dict[str, Preset] = {p.name: p for p in (PAPER, CUDA_CONVNET_2012, SMALL, PAPER_6CONV, SMALL_6CONV,
                                                  TORCHVISION)}

# What `alexnet train` trains when no preset is named: the configuration that produced the paper's numbers.
# The paper read literally starts on a plateau it may not leave: on the 1000-class proxy at 224 px its loss
# stayed at ln 1000 for all 370 steps of a CPU run, where cuda-convnet-2012's fell below ln 1000 - 0.5 at step
# 150 (BENCHMARKS.md, "Learning at full size"); on an H200, 6,350 steps at chance against under 6.0 by step 250
# (BENCHMARKS.md, the learn phase). `--preset paper` still trains the literal reading.
DEFAULT_PRESET = "cuda-convnet-2012"


def _read_json_file(path: Path) -> dict[str, Any]:
    """A JSON object from a regular file of at most MAX_CONFIG_BYTES (never /dev/zero read until memory
    runs out, never a traceback for JSON nested 100,000 deep)."""
    if not path.exists():
        raise AlexNetError(f"{path}: no such configuration file")
    if not path.is_file():
        raise AlexNetError(f"{path}: not a regular file; a configuration is a JSON file")
    try:
        with open(path, "rb") as f:
            raw = f.read(MAX_CONFIG_BYTES + 1)
        if len(raw) > MAX_CONFIG_BYTES:
            raise AlexNetError(f"{path}: larger than {MAX_CONFIG_BYTES // 1024} KiB; not a configuration file")
        d = json.loads(raw)
    except (OSError, ValueError) as exc:
        raise AlexNetError(f"{path}: not a JSON configuration ({' '.join(str(exc).split())[:120]})") from None
    except RecursionError:
        raise AlexNetError(f"{path}: not a JSON configuration (nested too deeply to read)") from None
    if not isinstance(d, dict):
        raise AlexNetError(f"{path}: not a JSON object")
    return d


def get_preset(name: str) -> Preset:
    """The preset called `name`, or an error listing the known ones."""
    try:
        return PRESETS[name]
    except KeyError:
        raise AlexNetError(f"unknown preset {name!r}; known presets: {', '.join(PRESETS)}") from None


# --- presets as files -------------------------------------------------------------------------------
def preset_to_dict(preset: Preset) -> dict[str, Any]:
    """What `alexnet config show NAME` prints and `--config FILE` reads back."""
    return {"name": preset.name, "description": preset.description, "model": to_dict(preset.model),
            "recipe": to_dict(preset.recipe)}


MAX_CONFIG_BYTES = 1 << 20   # a preset file is a few kilobytes
# What a preset file (`config show`) or a run's config.json holds; any other key is refused, not ignored.
PRESET_FILE_KEYS = {"name", "description", "model", "recipe"}
RUN_CONFIG_KEYS = {"preset", "data", "data_fingerprint", "seed", "device", "crop", "classes", "recipe", "model_config",
                   "speed", "world_size", "ablations", "pipeline"}


def preset_from_file(path: str | Path) -> Preset:
    """A preset from a JSON file: `config show`'s output, edited, or a run's config.json."""
    path = Path(path)
    d = _read_json_file(path)
    unknown = sorted(set(d) - (PRESET_FILE_KEYS | RUN_CONFIG_KEYS), key=str)
    if unknown:
        raise AlexNetError(f"{path}: unknown key(s) {', '.join(map(str, unknown))} (a preset file holds "
                           f"{', '.join(sorted(PRESET_FILE_KEYS))}; a run's config.json its own keys)")
    model, recipe = d.get("model", d.get("model_config")), d.get("recipe")
    if not isinstance(model, dict) or not isinstance(recipe, dict):
        raise AlexNetError(f"{path}: needs a 'model' (or 'model_config') object and a 'recipe' object")
    name, description = d.get("name", d.get("preset", path.stem)), d.get("description", f"from {path}")
    if not isinstance(name, str) or not name.strip() or not isinstance(description, str):
        raise AlexNetError(f"{path}: 'name' and 'description' must be strings, got {name!r}")
    ablations = d.get("ablations", [])
    if not isinstance(ablations, list) or not all(isinstance(a, str) for a in ablations):
        raise AlexNetError(f"{path}: 'ablations' must be a list of ablation names, got {ablations!r}")
    try:
        return Preset(name=name, description=description, model=model_config_from_dict(model),
                      recipe=recipe_from_dict(recipe), ablations=tuple(ablations))
    except ConfigError as exc:  # a setting out of range, found by the dataclass that defines it
        raise AlexNetError(f"{path}: {exc}") from None
    except AlexNetError:
        raise
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise AlexNetError(f"{path}: malformed configuration ({type(exc).__name__}: {exc})") from None
